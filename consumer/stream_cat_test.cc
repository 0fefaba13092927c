// CatStream against an in-process ring server: the whole clip comes out as the FLV it was,
// a reader that gets lapped reports DataLoss, a silent server is found dead in time.

#include "consumer/stream_cat.h"

#include <unistd.h>

#include <atomic>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "media/script_data.h"
#include "ringbuf/ring_server.h"
#include "tests/rtmp_testing.h"

namespace uringest::consumer {
namespace {

using ringbuf::RecordType;
using ringbuf::RingServer;
using ringbuf::StreamWriter;

std::string UniqueName() {
  static std::atomic<int> counter{0};
  return absl::StrCat("uringest-cat-test-", getpid(), "-", counter.fetch_add(1));
}

uint8_t FlagsOf(const testing::FlvTag& tag) {
  if (tag.type != 9) return ringbuf::kFlagKeyframe;  // audio and data
  uint8_t flags = (tag.body[0] >> 4) == 1 ? ringbuf::kFlagKeyframe : 0;
  if (tag.body.size() > 1 && tag.body[1] == 0) flags |= ringbuf::kFlagSequenceHeader;
  return flags;
}

class StreamCatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = RingServer::Create({.name = name_,
                                      .ring_capacity = ringbuf::kMinRingCapacity,
                                      .directory_slots = 8,
                                      .huge_pages = false,
                                      .prefault = false});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }
  void TearDown() override {
    if (server_ != nullptr) stream_.End();
    server_.reset();
  }

  void Begin() {
    auto stream = server_->shard(0).BeginStream("live/test", "127.0.0.1:4000");
    ASSERT_TRUE(stream.ok()) << stream.status();
    stream_ = *std::move(stream);
  }
  // Writes `tag` as the engine would, keeping sequence headers and onMetaData in the
  // directory for late joiners.
  void Write(const testing::FlvTag& tag) {
    const uint8_t flags = FlagsOf(tag);
    const ringbuf::Keep keep =
        (flags & ringbuf::kFlagSequenceHeader) != 0       ? ringbuf::Keep::kAsConfig
        : tag.type == 18 && media::IsOnMetaData(tag.body) ? ringbuf::Keep::kAsMetadata
                                                          : ringbuf::Keep::kNo;
    ASSERT_TRUE(stream_
                    .WriteFrame({.type = RecordType(tag.type),
                                 .flags = flags,
                                 .dts = tag.timestamp,
                                 .pts = tag.timestamp},
                                tag.body, keep)
                    .ok());
  }

  // Options whose log callback fulfils `followed` once the reader has its start point.
  CatOptions Options(std::promise<void>* followed) {
    CatOptions options{.ring = name_, .stream = "live/test"};
    options.log = [followed, done = false](std::string_view line) mutable {
      if (!done && line.starts_with("following")) {
        done = true;
        followed->set_value();
      }
    };
    return options;
  }

  std::string name_ = UniqueName();
  std::unique_ptr<RingServer> server_;
  StreamWriter stream_;
};

TEST_F(StreamCatTest, StreamFollowedFromItsStartComesOutAsTheSourceFile) {
  const std::vector<uint8_t> source = testing::ReadTestData("source_testsrc.flv");
  Begin();
  std::promise<void> followed;
  CatOptions options = Options(&followed);
  VectorSink sink;
  CatSummary summary;
  auto cat = std::async(std::launch::async, [&] { return CatStream(options, &sink, &summary); });
  ASSERT_EQ(followed.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  for (const testing::FlvTag& tag : testing::ParseFlvTags(source)) Write(tag);
  stream_.End();
  ASSERT_EQ(cat.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  absl::Status status = cat.get();
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(summary.lost, 0u);
  EXPECT_EQ(sink.bytes(), source);
}

TEST_F(StreamCatTest, LateJoinerStartsWithDirectoryHeadersThenLatestKeyframe) {
  const std::vector<testing::FlvTag> tags =
      testing::ParseFlvTags(testing::ReadTestData("source_testsrc.flv"));
  Begin();
  for (size_t i = 0; i < 40; ++i) Write(tags[i]);  // metadata, config, keyframes at 0 and 30
  std::promise<void> followed;
  CatOptions options = Options(&followed);
  VectorSink sink;
  auto cat = std::async(std::launch::async, [&] { return CatStream(options, &sink); });
  ASSERT_EQ(followed.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  for (size_t i = 40; i < tags.size(); ++i) Write(tags[i]);
  stream_.End();
  ASSERT_EQ(cat.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_TRUE(cat.get().ok());
  const std::vector<testing::FlvTag> out = testing::ParseFlvTags(sink.bytes());
  ASSERT_GE(out.size(), 3u);
  EXPECT_EQ(out[0].body, tags[0].body);         // onMetaData
  EXPECT_EQ(out[1].body, tags[1].body);         // AVC sequence header
  EXPECT_EQ(out[2].body[0] >> 4, 1);            // a keyframe...
  EXPECT_EQ(out[2].timestamp, 0u);              // ...rebased to 0
  EXPECT_EQ(out.size(), 2 + tags.size() - 32);  // the GOP from frame 30 on
}

TEST_F(StreamCatTest, ReaderLappedByTheProducerReportsDataLoss) {
  Begin();
  const std::vector<uint8_t> keyframe(1000, 0x17), inter(1000, 0x27);
  Write({.type = 9, .body = keyframe});
  std::promise<void> followed;
  std::promise<void> lapped;
  CatOptions options{.ring = name_, .stream = "live/test"};
  // Blocks the reader right after it chose its start point, until the ring has lapped it.
  options.log = [&, waited = false](std::string_view line) mutable {
    if (waited) return;
    waited = true;
    followed.set_value();
    lapped.get_future().wait();
  };
  VectorSink sink;
  CatSummary summary;
  auto cat = std::async(std::launch::async, [&] { return CatStream(options, &sink, &summary); });
  ASSERT_EQ(followed.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  for (int i = 0; i < 200; ++i) Write({.type = 9, .body = i % 50 == 0 ? keyframe : inter});
  lapped.set_value();
  stream_.End();
  ASSERT_EQ(cat.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  absl::Status status = cat.get();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_GT(summary.lost, 0u);
}

TEST_F(StreamCatTest, ServerWithoutHeartbeatIsReportedDeadWithinASecond) {
  Begin();
  server_->HeartbeatAll();
  VectorSink sink;
  const absl::Time start = absl::Now();
  // In-process, the server still holds its lock, so it counts as hung, not gone, until
  // hung_after.
  CatOptions options{.ring = name_, .stream = "live/test"};
  options.reader.hung_after = absl::Milliseconds(600);
  absl::Status status = CatStream(options, &sink);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_NE(status.message().find("died"), absl::string_view::npos) << status;
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(1500));
}

// Waiting for a stream that never comes. (Killed servers: tests/integration/
// dead_server_test.cc.)
TEST_F(StreamCatTest, ServerThatHangsWhileWaitingForTheStreamIsReportedDied) {
  server_->HeartbeatAll();  // and never again
  VectorSink sink;
  CatOptions options{.ring = name_, .stream = "live/test", .wait = true};
  options.reader.hung_after = absl::Milliseconds(600);
  const absl::Time start = absl::Now();
  absl::Status status = CatStream(options, &sink);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_NE(status.message().find("the server died while waiting"), absl::string_view::npos)
      << status;
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(1500));
}

TEST_F(StreamCatTest, CleanShutdownWhileWaitingForTheStreamEndsOkWithNothingWritten) {
  CatOptions options{.ring = name_, .stream = "live/test", .wait = true};
  VectorSink sink;
  CatSummary summary;
  auto cat = std::async(std::launch::async, [&] { return CatStream(options, &sink, &summary); });
  absl::SleepFor(absl::Milliseconds(200));
  server_.reset();
  ASSERT_EQ(cat.wait_for(std::chrono::seconds(2)), std::future_status::ready);
  absl::Status status = cat.get();
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_TRUE(summary.server_shut_down);
  EXPECT_TRUE(sink.bytes().empty());
}

TEST_F(StreamCatTest, MissingStreamWithoutWaitIsNotFound) {
  VectorSink sink;
  EXPECT_EQ(CatStream({.ring = name_, .stream = "live/none"}, &sink).code(),
            absl::StatusCode::kNotFound);
}

TEST_F(StreamCatTest, EndedStreamWithoutWaitIsRefused) {
  Begin();
  stream_.End();
  VectorSink sink;
  EXPECT_EQ(CatStream({.ring = name_, .stream = "live/test"}, &sink).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(StreamCatTest, WaitGivesUpAtItsTimeout) {
  VectorSink sink;
  CatOptions options{
      .ring = name_, .stream = "live/test", .wait = true, .wait_timeout = absl::Milliseconds(50)};
  EXPECT_EQ(CatStream(options, &sink).code(), absl::StatusCode::kDeadlineExceeded);
}

TEST(StreamCatNoServerTest, MissingRingWithoutWaitIsAnError) {
  VectorSink sink;
  EXPECT_FALSE(CatStream({.ring = UniqueName(), .stream = "live/test"}, &sink).ok());
}

}  // namespace
}  // namespace uringest::consumer
