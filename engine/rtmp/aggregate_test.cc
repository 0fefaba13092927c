#include "engine/rtmp/aggregate.h"

#include <cstdint>
#include <vector>

#include "engine/rtmp/rtmp_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "media/byte_order.h"
#include "media/flv_format.h"

namespace uringest::rtmp {
namespace {

using Bytes = std::vector<uint8_t>;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Appends one FLV tag with its back-pointer (11 + size unless `back_pointer` is given).
void AppendTag(Bytes* out, uint8_t type, uint32_t timestamp, const Bytes& data,
               int64_t back_pointer = -1) {
  media::AppendU8(out, type);
  media::AppendU24(out, uint32_t(data.size()));
  media::AppendU24(out, timestamp & 0xFFFFFF);
  media::AppendU8(out, uint8_t(timestamp >> 24));
  media::AppendU24(out, 0);
  media::AppendBytes(out, data);
  media::AppendU32(out, back_pointer < 0 ? uint32_t(media::kFlvTagHeaderSize + data.size())
                                         : uint32_t(back_pointer));
}

Message Aggregate(const Bytes& body, uint64_t timestamp = 1000, uint32_t stream_id = 1) {
  return Message{.header = {.chunk_stream_id = 4,
                            .type = MessageType::kAggregate,
                            .stream_id = stream_id,
                            .timestamp = timestamp},
                 .payload = body};
}

std::vector<Message> ReadAll(AggregateReader* reader) {
  std::vector<Message> subs;
  Message sub;
  while (reader->Next(&sub)) subs.push_back(sub);
  return subs;
}

std::vector<uint64_t> Times(const std::vector<Message>& subs) {
  std::vector<uint64_t> times;
  for (const Message& m : subs) times.push_back(m.header.timestamp);
  return times;
}

TEST(AggregateTest, SplitsIntoViewsOfTheBody) {
  Bytes body;
  AppendTag(&body, 9, 5000, {0x17, 0x01, 0, 0, 0, 0xAA});
  AppendTag(&body, 8, 5010, {0xAF, 0x01, 0x21});
  AppendTag(&body, 18, 5020, {0x02, 0x00, 0x01, 'x'});
  AggregateReader reader(Aggregate(body, 1000, 7));
  std::vector<Message> subs = ReadAll(&reader);
  ASSERT_TRUE(reader.status().ok()) << reader.status();
  ASSERT_EQ(subs.size(), 3u);
  EXPECT_EQ(subs[0].header.type, MessageType::kVideo);
  EXPECT_EQ(subs[1].header.type, MessageType::kAudio);
  EXPECT_EQ(subs[2].header.type, MessageType::kDataAmf0);
  EXPECT_THAT(subs[1].payload, ElementsAre(0xAF, 0x01, 0x21));
  EXPECT_EQ(subs[0].payload.data(), body.data() + media::kFlvTagHeaderSize);  // no copy
  for (const Message& m : subs) {
    EXPECT_EQ(m.header.stream_id, 7u);
    EXPECT_EQ(m.header.chunk_stream_id, 4u);
  }
}

TEST(AggregateTest, AggregateTimestampsAreRebasedOnTheAggregate) {
  Bytes body;
  AppendTag(&body, 9, 5000, {0x27});
  AppendTag(&body, 8, 5023, {0xAF});
  AppendTag(&body, 9, 5040, {0x27});
  AggregateReader reader(Aggregate(body, 1000));
  EXPECT_THAT(Times(ReadAll(&reader)), ElementsAre(1000, 1023, 1040));
  EXPECT_TRUE(reader.status().ok());
}

TEST(AggregateTest, RebasingAppliesToThe64BitAggregateTime) {
  const uint64_t late = (uint64_t{1} << 32) + 500;  // past the 32-bit wrap
  Bytes body;
  AppendTag(&body, 9, 10, {0x27});
  AppendTag(&body, 9, 50, {0x27});
  AggregateReader reader(Aggregate(body, late));
  EXPECT_THAT(Times(ReadAll(&reader)), ElementsAre(late, late + 40));
}

TEST(AggregateTest, ExtendedTimestampByteIsTheHighByte) {
  Bytes body;
  AppendTag(&body, 9, 0x01FFFFF0, {0x27});
  AppendTag(&body, 9, 0x02000010, {0x27});  // crosses into the extended byte
  AggregateReader reader(Aggregate(body, 100));
  EXPECT_THAT(Times(ReadAll(&reader)), ElementsAre(100, 132));
}

TEST(AggregateTest, TagTimestampWrapKeepsTheDistance) {
  Bytes body;
  AppendTag(&body, 9, 0xFFFFFFF0, {0x27});
  AppendTag(&body, 9, 0x00000010, {0x27});
  AggregateReader reader(Aggregate(body, 7000));
  EXPECT_THAT(Times(ReadAll(&reader)), ElementsAre(7000, 7032));
}

TEST(AggregateTest, TagBehindTheFirstIsRebasedBackwardsAndClampedAtZero) {
  Bytes body;
  AppendTag(&body, 9, 100, {0x27});
  AppendTag(&body, 8, 90, {0xAF});
  AppendTag(&body, 8, 0, {0xAF});
  AggregateReader reader(Aggregate(body, 50));
  EXPECT_THAT(Times(ReadAll(&reader)), ElementsAre(50, 40, 0));
}

TEST(AggregateTest, EmptyBodyHasNoSubMessages) {
  Bytes body;
  AggregateReader reader(Aggregate(body));
  Message sub;
  EXPECT_FALSE(reader.Next(&sub));
  EXPECT_TRUE(reader.status().ok());
}

TEST(AggregateTest, ZeroSizeTagIsYielded) {
  Bytes body;
  AppendTag(&body, 8, 0, {});
  AggregateReader reader(Aggregate(body));
  std::vector<Message> subs = ReadAll(&reader);
  ASSERT_EQ(subs.size(), 1u);
  EXPECT_TRUE(subs[0].payload.empty());
  EXPECT_TRUE(reader.status().ok());
}

TEST(AggregateTest, DataSizePastTheEndIsAnError) {
  Bytes body;
  AppendTag(&body, 9, 0, {0x27, 0x01});
  media::StoreU24(body.data() + 1, 1000);
  AggregateReader reader(Aggregate(body));
  EXPECT_TRUE(ReadAll(&reader).empty());
  EXPECT_EQ(reader.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(reader.status().message(), HasSubstr("more data than the body holds"));
}

TEST(AggregateTest, TruncatedTrailingHeaderIsAnError) {
  Bytes body;
  AppendTag(&body, 9, 0, {0x27});
  body.insert(body.end(), {9, 0, 0});
  AggregateReader reader(Aggregate(body));
  EXPECT_EQ(ReadAll(&reader).size(), 1u);  // the good tag comes first
  EXPECT_THAT(reader.status().message(), HasSubstr("truncated header"));
}

TEST(AggregateTest, ZeroFilledTailIsAnEmptyTagToSkipOrAnError) {
  // 15 zero bytes read as an empty tag of type 0 with its back-pointer: skipped.
  Bytes body;
  AppendTag(&body, 9, 0, {0x27});
  body.resize(body.size() + 15, 0);
  AggregateReader skipped(Aggregate(body));
  EXPECT_EQ(ReadAll(&skipped).size(), 1u);
  EXPECT_TRUE(skipped.status().ok()) << skipped.status();
  EXPECT_EQ(skipped.skipped(), 1u);
  // One more is the start of a header that does not fit.
  body.push_back(0);
  AggregateReader truncated(Aggregate(body));
  EXPECT_EQ(ReadAll(&truncated).size(), 1u);
  EXPECT_THAT(truncated.status().message(), HasSubstr("truncated header"));
}

// SRS skips tags other than audio and video; nginx-rtmp dispatches any type. Only media
// and data go on here: a nested aggregate or a command is skipped and counted.
TEST(AggregateTest, TagsOfOtherTypesAreSkippedAndCounted) {
  for (uint8_t type : {uint8_t(22), uint8_t(20), uint8_t(1), uint8_t(15), uint8_t(0)}) {
    Bytes body;
    AppendTag(&body, 9, 0, {0x27});
    AppendTag(&body, type, 10, {0x00, 0x01});
    AppendTag(&body, 8, 20, {0xAF});
    AggregateReader reader(Aggregate(body, 1000));
    const std::vector<Message> subs = ReadAll(&reader);
    EXPECT_TRUE(reader.status().ok()) << int(type) << ": " << reader.status();
    ASSERT_EQ(subs.size(), 2u) << int(type);
    EXPECT_EQ(subs[1].header.type, MessageType::kAudio);
    EXPECT_EQ(subs[1].header.timestamp, 1020u);
    EXPECT_EQ(reader.skipped(), 1u);
  }
}

TEST(AggregateTest, SkippedFirstTagStillSetsTheTimeBase) {
  // As in nginx-rtmp and SRS, the first tag of any type is the one times are rebased on.
  Bytes body;
  AppendTag(&body, 20, 5000, {0x02});
  AppendTag(&body, 9, 5040, {0x27});
  AggregateReader reader(Aggregate(body, 100));
  EXPECT_THAT(Times(ReadAll(&reader)), ElementsAre(140));
}

TEST(AggregateTest, SkippedTagPastTheEndIsStillAnError) {
  Bytes body;
  AppendTag(&body, 20, 0, {0x02, 0x00});
  media::StoreU24(body.data() + 1, 1000);
  AggregateReader reader(Aggregate(body));
  EXPECT_TRUE(ReadAll(&reader).empty());
  EXPECT_THAT(reader.status().message(), HasSubstr("more data than the body holds"));
}

TEST(AggregateTest, MissingBackPointerIsAnError) {
  Bytes body;
  AppendTag(&body, 9, 0, {0x27, 0x01});
  body.resize(body.size() - 2);
  AggregateReader reader(Aggregate(body));
  EXPECT_TRUE(ReadAll(&reader).empty());
  EXPECT_THAT(reader.status().message(), HasSubstr("lacks its previous-tag-size"));
}

// Neither nginx-rtmp nor SRS compares the back-pointers with the tags: some muxers write
// them as the data size alone, or 0.
TEST(AggregateTest, InnerBackPointerIsNotChecked) {
  Bytes body;
  AppendTag(&body, 9, 0, {0x27, 0x01}, /*back_pointer=*/2);
  AppendTag(&body, 9, 0, {0x27, 0x01}, /*back_pointer=*/0);
  AppendTag(&body, 8, 0, {0xAF});
  AggregateReader reader(Aggregate(body));
  EXPECT_EQ(ReadAll(&reader).size(), 3u);
  EXPECT_TRUE(reader.status().ok()) << reader.status();
}

TEST(AggregateTest, TrailingBackPointerMismatchIsTolerated) {
  for (int64_t back_pointer : {int64_t{0}, int64_t{2}, int64_t{0xFFFFFFFF}}) {
    Bytes body;
    AppendTag(&body, 9, 0, {0x27});
    AppendTag(&body, 8, 0, {0xAF, 0x01}, back_pointer);
    AggregateReader reader(Aggregate(body));
    EXPECT_EQ(ReadAll(&reader).size(), 2u);
    EXPECT_TRUE(reader.status().ok()) << reader.status();
  }
}

TEST(AggregateTest, NextAfterAnErrorStaysFalse) {
  Bytes body = {9, 0, 0};
  AggregateReader reader(Aggregate(body));
  Message sub;
  EXPECT_FALSE(reader.Next(&sub));
  EXPECT_FALSE(reader.Next(&sub));
  EXPECT_FALSE(reader.status().ok());
}

// Every truncation of a valid aggregate either yields a prefix of its tags and an error,
// or (cut exactly at a tag boundary) the whole prefix and OK; never a read past the end.
TEST(AggregateTest, EveryTruncationIsSafe) {
  Bytes full;
  AppendTag(&full, 9, 0, {0x17, 0x00, 0, 0, 0, 1, 2, 3});
  AppendTag(&full, 8, 21, {0xAF, 0x01, 9});
  for (size_t n = 0; n <= full.size(); ++n) {
    Bytes body(full.begin(), full.begin() + n);
    AggregateReader reader(Aggregate(body));
    std::vector<Message> subs = ReadAll(&reader);
    const bool boundary = n == 0 || n == 23 || n == full.size();
    EXPECT_EQ(reader.status().ok(), boundary) << n;
  }
}

}  // namespace
}  // namespace uringest::rtmp
