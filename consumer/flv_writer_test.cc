#include "consumer/flv_writer.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"
#include "media/byte_order.h"
#include "tests/rtmp_testing.h"

namespace uringest::consumer {
namespace {

using ringbuf::RecordType;
using testing::FlvTag;
using testing::ParseFlvTags;

bool IsSequenceHeader(const FlvTag& tag) {
  return (tag.type == 8 || tag.type == 9) && tag.body.size() >= 2 && tag.body[1] == 0;
}

// Writes `tags` as the ring would carry them, with their own timestamps as dts.
std::vector<uint8_t> Rewrite(const std::vector<FlvTag>& tags, FlvTracks tracks) {
  VectorSink sink;
  FlvWriter writer(&sink);
  EXPECT_TRUE(writer.WriteHeader(tracks).ok());
  for (const FlvTag& tag : tags) {
    EXPECT_TRUE(
        writer.WriteTag(RecordType(tag.type), tag.timestamp, tag.body, IsSequenceHeader(tag)).ok());
  }
  return sink.bytes();
}

TEST(FlvWriterTest, SourceClipRoundTripsTagForTag) {
  const std::vector<uint8_t> source = testing::ReadTestData("source_testsrc.flv");
  const std::vector<FlvTag> tags = ParseFlvTags(source);
  const std::vector<uint8_t> out = Rewrite(tags, {.video = true});
  const std::vector<FlvTag> again = ParseFlvTags(out);
  ASSERT_EQ(again.size(), tags.size());
  for (size_t i = 0; i < tags.size(); ++i) {
    EXPECT_EQ(again[i].type, tags[i].type) << i;
    EXPECT_EQ(again[i].timestamp, tags[i].timestamp) << i;
    EXPECT_EQ(again[i].body, tags[i].body) << i;
  }
  // ffmpeg's muxer writes the same layout, so the bytes are the same (its header flags
  // say video only, as ours do).
  EXPECT_EQ(out, source);
}

TEST(FlvWriterTest, HeaderFlagsFollowTracks) {
  for (auto [tracks, flags] : {std::pair{FlvTracks{}, 0},
                               {FlvTracks{.audio = true}, 4},
                               {FlvTracks{.video = true}, 1},
                               {FlvTracks{true, true}, 5}}) {
    VectorSink sink;
    FlvWriter writer(&sink);
    ASSERT_TRUE(writer.WriteHeader(tracks).ok());
    const std::vector<uint8_t> expected = {'F', 'L', 'V', 1, uint8_t(flags), 0, 0, 0, 9,
                                           0,   0,   0,   0};
    EXPECT_EQ(sink.bytes(), expected);
  }
}

TEST(FlvWriterTest, PreviousTagSizeCountsHeaderAndBody) {
  VectorSink sink;
  FlvWriter writer(&sink);
  ASSERT_TRUE(writer.WriteHeader({.audio = true}).ok());
  const std::vector<uint8_t> body = {0xAF, 0x01, 1, 2, 3};
  ASSERT_TRUE(writer.WriteTag(RecordType::kAudio, 0, body, false).ok());
  const std::vector<uint8_t>& out = sink.bytes();
  ASSERT_EQ(out.size(), 13 + 11 + body.size() + 4);
  EXPECT_EQ(media::LoadU32(out.data() + out.size() - 4), 11 + body.size());
  EXPECT_EQ(writer.bytes(), out.size());
}

TEST(FlvWriterTest, TimestampsRebaseToFirstFrameAndUseExtendedByte) {
  VectorSink sink;
  FlvWriter writer(&sink);
  ASSERT_TRUE(writer.WriteHeader({.video = true}).ok());
  const std::vector<uint8_t> config = {0x17, 0x00, 0, 0, 0, 1};
  const std::vector<uint8_t> frame = {0x17, 0x01, 0, 0, 0, 9};
  const int64_t base = 5'000'000'000;  // a stream joined 58 days in
  ASSERT_TRUE(writer.WriteTag(RecordType::kVideo, base - 40, config, true).ok());
  ASSERT_TRUE(writer.WriteTag(RecordType::kVideo, base, frame, false).ok());
  ASSERT_TRUE(writer.WriteTag(RecordType::kAudio, base - 10, frame, false).ok());  // clamped
  ASSERT_TRUE(writer.WriteTag(RecordType::kVideo, base + 0x01234567, frame, false).ok());
  const std::vector<FlvTag> tags = ParseFlvTags(sink.bytes());
  ASSERT_EQ(tags.size(), 4u);
  EXPECT_EQ(tags[0].timestamp, 0u);
  EXPECT_EQ(tags[1].timestamp, 0u);
  EXPECT_EQ(tags[2].timestamp, 0u);
  EXPECT_EQ(tags[3].timestamp, 0x01234567u);  // needs the TimestampExtended byte
}

// An encoder may send its configurations again mid-stream (a MultichannelConfig that
// ffmpeg's reader takes for an empty packet, for one): the writer writes what it is given.
TEST(FlvWriterTest, RepeatedConfigurationsAreWrittenAsGiven) {
  VectorSink sink;
  FlvWriter writer(&sink);
  ASSERT_TRUE(writer.WriteHeader({.audio = true, .video = true}).ok());
  const std::vector<uint8_t> avc = {0x17, 0x00, 0, 0, 0, 1};
  const std::vector<uint8_t> key = {0x17, 0x01, 0, 0, 0, 0x65};
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(writer.WriteTag(RecordType::kVideo, 40 * i, avc, true).ok());
    ASSERT_TRUE(writer.WriteTag(RecordType::kVideo, 40 * i, key, false).ok());
  }
  const std::vector<FlvTag> tags = ParseFlvTags(sink.bytes());
  ASSERT_EQ(tags.size(), 4u);
  EXPECT_EQ(tags[2].body, avc);
  EXPECT_EQ(tags[2].timestamp, 40u);
}

TEST(FlvWriterTest, StreamMarkersAreNotTags) {
  VectorSink sink;
  FlvWriter writer(&sink);
  ASSERT_TRUE(writer.WriteHeader({}).ok());
  const std::vector<uint8_t> name = {'l', 'i', 'v', 'e'};
  ASSERT_TRUE(writer.WriteTag(RecordType::kStreamBegin, 0, name, false).ok());
  ASSERT_TRUE(writer.WriteTag(RecordType::kStreamEnd, 0, {}, false).ok());
  EXPECT_EQ(sink.bytes().size(), 13u);
}

TEST(FlvWriterTest, BodyOverTwentyFourBitsIsRefused) {
  VectorSink sink;
  FlvWriter writer(&sink);
  ASSERT_TRUE(writer.WriteHeader({.video = true}).ok());
  const std::vector<uint8_t> huge(media::kFlvMaxTagBody + 1, 0x27);
  EXPECT_EQ(writer.WriteTag(RecordType::kVideo, 0, huge, false).code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(sink.bytes().size(), 13u);
}

}  // namespace
}  // namespace uringest::consumer
