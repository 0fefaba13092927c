#include "consumer/stream_tap.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "ringbuf/ring_server.h"

namespace uringest::consumer {
namespace {

using ringbuf::Keep;
using ringbuf::kFlagKeyframe;
using ringbuf::kFlagSequenceHeader;
using ringbuf::RecordMeta;
using ringbuf::RecordType;
using ringbuf::RingServer;
using ringbuf::StreamWriter;

std::string UniqueName() {
  static std::atomic<int> counter{0};
  return absl::StrCat("uringest-tap-test-", getpid(), "-", counter.fetch_add(1));
}

// Everything the tap says, as lines that tests compare.
class Recorder : public TapHandler {
 public:
  void OnStreamStart(const ringbuf::StreamInfo& info, bool joined) override {
    names[info.stream_id] = info.name;
    events.push_back(absl::StrCat(joined ? "join " : "start ", info.name));
  }
  void OnFrame(uint32_t id, const RecordMeta& meta, std::span<const uint8_t> payload,
               bool from_directory) override {
    // Each test payload starts with its frame number.
    events.push_back(absl::StrCat(names[id], from_directory ? " dir " : " frame ", int(meta.type),
                                  ":", payload.empty() ? -1 : payload[0]));
    ++frames;
  }
  void OnLoss(uint32_t id, uint64_t count) override {
    events.push_back(absl::StrCat(names[id], " lost ", count));
    lost += count;
  }
  void OnStreamEnd(uint32_t id, bool clean) override {
    events.push_back(absl::StrCat(names[id], clean ? " end" : " gone"));
  }
  void OnEvicted(uint32_t shard) override { events.push_back(absl::StrCat("evicted ", shard)); }
  void OnLossless(uint32_t shard) override { events.push_back(absl::StrCat("lossless ", shard)); }

  std::map<uint32_t, std::string> names;
  std::vector<std::string> events;
  uint64_t frames = 0;
  uint64_t lost = 0;
};

class StreamTapTest : public ::testing::Test {
 protected:
  void SetUp() override { Serve(2, absl::Milliseconds(250)); }

  void Serve(uint32_t shards, absl::Duration lossless_timeout) {
    server_.reset();
    auto server = RingServer::Create({.name = name_,
                                      .shards = shards,
                                      .ring_capacity = ringbuf::kMinRingCapacity,
                                      .directory_slots = 16,
                                      .huge_pages = false,
                                      .prefault = false,
                                      .lossless_timeout = lossless_timeout});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  std::unique_ptr<StreamTap> Open(TapOptions options = {}) {
    auto reader = ringbuf::Reader::Open(name_);
    EXPECT_TRUE(reader.ok()) << reader.status();
    auto tap = StreamTap::Open(name_, *std::move(reader), options, &handler_);
    EXPECT_TRUE(tap.ok()) << tap.status();
    return tap.ok() ? *std::move(tap) : nullptr;
  }

  StreamWriter Begin(uint32_t shard, const std::string& name) {
    auto stream = server_->shard(shard).BeginStream(name, "127.0.0.1:1935");
    EXPECT_TRUE(stream.ok()) << stream.status();
    return *std::move(stream);
  }

  // Frame `n` (its first byte), `size` bytes; video keyframes as asked.
  static void Write(StreamWriter* s, RecordType type, uint8_t n, bool keyframe = true,
                    size_t size = 16, Keep keep = Keep::kNo, uint8_t flags = 0) {
    std::vector<uint8_t> payload(size, 0);
    payload[0] = n;
    const RecordMeta meta{
        .type = type, .flags = uint8_t(flags | (keyframe ? kFlagKeyframe : 0)), .dts = n, .pts = n};
    ASSERT_TRUE(s->WriteFrame(meta, payload, keep).ok());
  }

  void PollAll(StreamTap* tap) {
    for (int i = 0; i < 4; ++i) ASSERT_EQ(tap->Poll(absl::ZeroDuration()), TapResult::kOk);
  }

  std::string name_ = UniqueName();
  std::unique_ptr<RingServer> server_;
  Recorder handler_;
};

TEST_F(StreamTapTest, StreamsThatBeginAfterOpenAreFollowedWholeOnEveryShard) {
  std::unique_ptr<StreamTap> tap =
      Open({.accept = [](std::string_view name) { return name.starts_with("live/"); }});
  ASSERT_NE(tap, nullptr);
  StreamWriter a = Begin(0, "live/a");
  StreamWriter b = Begin(1, "live/b");
  StreamWriter other = Begin(1, "test/c");  // not accepted
  Write(&a, RecordType::kVideo, 1);
  Write(&other, RecordType::kVideo, 7);
  Write(&b, RecordType::kAudio, 2);
  Write(&a, RecordType::kVideo, 3, /*keyframe=*/false);
  a.End();
  PollAll(tap.get());
  EXPECT_EQ(handler_.events,
            (std::vector<std::string>{"start live/a", "live/a frame 9:1", "live/a frame 9:3",
                                      "live/a end", "start live/b", "live/b frame 8:2"}));
  EXPECT_EQ(tap->streams(), 1u);  // live/b
  EXPECT_EQ(tap->lost(), 0u);
}

TEST_F(StreamTapTest, AStreamUnderWayIsJoinedAtItsLatestKeyframeAfterTheDirectorysCopies) {
  StreamWriter s = Begin(1, "live/cam");
  Write(&s, RecordType::kData, 50, true, 16, Keep::kAsMetadata);
  std::vector<uint8_t> meta = {0x02, 0x00, 0x0A, 'o', 'n', 'M', 'e', 't', 'a', 'D', 'a', 't', 'a'};
  ASSERT_TRUE(
      s.WriteFrame({.type = RecordType::kData, .flags = kFlagKeyframe}, meta, Keep::kAsMetadata)
          .ok());
  Write(&s, RecordType::kVideo, 60, true, 16, Keep::kAsConfig, kFlagSequenceHeader);
  Write(&s, RecordType::kVideo, 1);  // keyframe
  Write(&s, RecordType::kVideo, 2, false);
  Write(&s, RecordType::kVideo, 3);  // the latest keyframe
  Write(&s, RecordType::kVideo, 4, false);
  std::unique_ptr<StreamTap> tap = Open();
  ASSERT_NE(tap, nullptr);
  Write(&s, RecordType::kVideo, 5, false);
  s.End();
  PollAll(tap.get());
  EXPECT_EQ(handler_.events,
            (std::vector<std::string>{"join live/cam", "live/cam dir 18:2", "live/cam dir 9:60",
                                      "live/cam frame 9:3", "live/cam frame 9:4",
                                      "live/cam frame 9:5", "live/cam end"}));
  EXPECT_EQ(tap->lost(), 0u);
}

TEST_F(StreamTapTest, ALossyTapLappedByTheProducerCountsEveryLostFrame) {
  std::unique_ptr<StreamTap> tap = Open();
  ASSERT_NE(tap, nullptr);
  StreamWriter s = Begin(0, "live/fast");
  PollAll(tap.get());
  // Four times the ring's capacity in 1 KiB frames, a keyframe every 10th, unread.
  const uint64_t count = 4 * ringbuf::kMinRingCapacity / 1024;
  for (uint64_t i = 0; i < count; ++i) {
    Write(&s, RecordType::kVideo, uint8_t(i), i % 10 == 0, 1024);
  }
  Write(&s, RecordType::kVideo, 200, true, 1024);
  PollAll(tap.get());
  // Delivered, lost and skipped (non-keyframes passed over after the loss) add up.
  EXPECT_GT(handler_.lost, 0u);
  EXPECT_EQ(handler_.lost, tap->lost());
  EXPECT_LE(handler_.frames + handler_.lost, count + 1);
  EXPECT_GE(handler_.frames + handler_.lost + 9, count + 1);
  ASSERT_GE(handler_.events.size(), 3u);
  EXPECT_EQ(handler_.events[1], absl::StrCat("live/fast lost ", handler_.lost));
  // After the loss, the first frame is a keyframe (its number a multiple of 10).
  const std::string& first = handler_.events[2];
  const int n = std::stoi(first.substr(first.rfind(':') + 1));
  EXPECT_EQ(n % 10, 0) << first;
  EXPECT_EQ(handler_.events.back(), "live/fast frame 9:200");
}

TEST_F(StreamTapTest, AStreamWhoseEndRecordWasOverwrittenEndsWithItsLossCounted) {
  Serve(1, absl::Milliseconds(250));
  std::unique_ptr<StreamTap> tap = Open();
  ASSERT_NE(tap, nullptr);
  StreamWriter a = Begin(0, "live/a");
  PollAll(tap.get());  // the tap has seen a's begin record (sequence 1)
  for (uint8_t i = 0; i < 10; ++i) Write(&a, RecordType::kAudio, i);
  a.End();  // sequence 12
  StreamWriter b = Begin(0, "live/b");
  for (uint64_t i = 0; i < 4 * ringbuf::kMinRingCapacity / 1024; ++i) {
    Write(&b, RecordType::kAudio, uint8_t(i), true, 1024);  // laps the tap: a's records go
  }
  for (int i = 0; i < 20; ++i) ASSERT_EQ(tap->Poll(absl::Milliseconds(50)), TapResult::kOk);
  auto has = [&](const std::string& e) {
    return std::find(handler_.events.begin(), handler_.events.end(), e) != handler_.events.end();
  };
  EXPECT_TRUE(has("live/a lost 10"));
  EXPECT_TRUE(has("live/a end"));
  // b began in the part the tap lost: it was joined when its first record was met.
  EXPECT_TRUE(has("join live/b"));
  EXPECT_EQ(tap->streams(), 1u);
}

TEST_F(StreamTapTest, ALosslessTapEvictedSaysSoAndBecomesLosslessAgainOnceCaughtUp) {
  Serve(1, absl::Milliseconds(5));
  std::unique_ptr<StreamTap> tap = Open({.lossless = true});
  ASSERT_NE(tap, nullptr);
  StreamWriter s = Begin(0, "live/rec");
  PollAll(tap.get());
  const uint64_t count = 2 * ringbuf::kMinRingCapacity / 1024;
  for (uint64_t i = 0; i < count; ++i) Write(&s, RecordType::kVideo, uint8_t(i), true, 1024);
  PollAll(tap.get());
  auto has = [&](const std::string& e) {
    return std::find(handler_.events.begin(), handler_.events.end(), e) != handler_.events.end();
  };
  EXPECT_TRUE(has("evicted 0"));
  EXPECT_TRUE(has("lossless 0"));
  EXPECT_EQ(handler_.frames + handler_.lost, count);
}

TEST_F(StreamTapTest, AServerThatShutsDownEndsEveryStream) {
  std::unique_ptr<StreamTap> tap = Open();
  ASSERT_NE(tap, nullptr);
  StreamWriter s = Begin(0, "live/x");
  Write(&s, RecordType::kAudio, 1);
  PollAll(tap.get());
  s = StreamWriter();  // the stream's writer must go before the ring
  server_.reset();
  // The end record the writer wrote is read first, so the stream ended cleanly.
  TapResult r = TapResult::kOk;
  for (int i = 0; i < 20 && r == TapResult::kOk; ++i) r = tap->Poll(absl::Milliseconds(50));
  EXPECT_EQ(r, TapResult::kServerGone);
  EXPECT_EQ(tap->server_exit(), ringbuf::ServerExit::kShutDown);
  EXPECT_EQ(handler_.events.back(), "live/x end");
}

}  // namespace
}  // namespace uringest::consumer
