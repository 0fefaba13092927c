// Reader: late join (sequence headers first, then the latest keyframe), start points,
// loss accounting and keyframe resync, lossless eviction, stream end and dead servers.

#include "ringbuf/reader.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "ringbuf/internal/test_util.h"
#include "ringbuf/ring_server.h"
#include "ringbuf/stream_follower.h"

namespace uringest::ringbuf {
namespace {

constexpr uint8_t kConfig = kFlagKeyframe | kFlagSequenceHeader;

class ReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = RingServer::Create({.name = name_.name(),
                                      .shards = 2,
                                      .ring_capacity = kMinRingCapacity,
                                      .directory_slots = 8,
                                      .lossless_timeout = absl::Milliseconds(20)});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    auto stream = server_->shard(1).BeginStream("live/cam", "");
    ASSERT_TRUE(stream.ok());
    stream_ = *std::move(stream);
    auto reader = Reader::Open(name_.name());
    ASSERT_TRUE(reader.ok()) << reader.status();
    reader_ = *std::move(reader);
  }

  void Write(RecordType type, uint8_t flags, size_t size, int64_t dts = 0) {
    std::vector<uint8_t> payload(size);
    testing::FillPayload(stream_.stream_id(), stream_.frames() + 1, payload);
    // Sequence headers are kept for late joiners, as the engine keeps them.
    const Keep keep = (flags & kFlagSequenceHeader) != 0 ? Keep::kAsConfig : Keep::kNo;
    ASSERT_TRUE(
        stream_.WriteFrame({.type = type, .flags = flags, .dts = dts, .pts = dts}, payload, keep)
            .ok());
  }
  // A GOP: one keyframe and `inter` inter frames; returns the keyframe's sequence.
  uint64_t WriteGop(int inter, size_t size = 300) {
    Write(RecordType::kVideo, kFlagKeyframe, size);
    uint64_t keyframe = stream_.frames();
    for (int i = 0; i < inter; ++i) Write(RecordType::kVideo, 0, size);
    return keyframe;
  }

  Frame NextFrame() {
    Frame frame;
    EXPECT_EQ(reader_->Next(&frame, absl::Seconds(5)), ReadResult::kFrame);
    return frame;
  }

  testing::ScopedRingName name_;
  std::unique_ptr<RingServer> server_;
  StreamWriter stream_;
  std::unique_ptr<Reader> reader_;
};

TEST_F(ReaderTest, LapBeforeTheFirstFrameCountsEveryLostFrame) {
  const uint64_t keyframe = WriteGop(3);
  ASSERT_TRUE(reader_->Follow("live/cam", {.sequence_headers = false}).ok());
  // Before the reader reads anything, the producer writes more than the ring holds.
  const size_t frames_per_lap = kMinRingCapacity / 1000 + 1;
  for (size_t i = 0; i < 2 * frames_per_lap; ++i) WriteGop(0, 900);
  const uint64_t last = WriteGop(0, 900);
  Frame f = NextFrame();
  EXPECT_GT(f.meta.sequence, keyframe);
  EXPECT_EQ(f.lost_before, f.meta.sequence - keyframe);  // every frame from the keyframe on
  EXPECT_EQ(reader_->lost(), f.meta.sequence - keyframe);
  EXPECT_LE(f.meta.sequence, last);
}

TEST_F(ReaderTest, LateJoinerGetsSequenceHeadersThenStartsAtLatestKeyframe) {
  std::vector<uint8_t> meta = {0x02, 0x00, 0x0A, 'o', 'n', 'M', 'e', 't', 'a', 'D', 'a', 't', 'a'};
  ASSERT_TRUE(
      stream_
          .WriteFrame({.type = RecordType::kData, .flags = kFlagKeyframe}, meta, Keep::kAsMetadata)
          .ok());
  Write(RecordType::kVideo, kConfig, 40);
  Write(RecordType::kAudio, kConfig, 4);
  WriteGop(5);
  uint64_t keyframe = WriteGop(3);
  Write(RecordType::kAudio, kFlagKeyframe, 20);
  ASSERT_TRUE(reader_->Follow("live/cam").ok());
  Frame f = NextFrame();
  EXPECT_TRUE(f.from_directory);
  EXPECT_EQ(f.meta.type, RecordType::kData);
  EXPECT_EQ(std::vector<uint8_t>(f.payload.begin(), f.payload.end()), meta);
  f = NextFrame();
  EXPECT_TRUE(f.from_directory);
  EXPECT_EQ(f.meta.type, RecordType::kVideo);
  EXPECT_EQ(f.meta.flags, kConfig);
  EXPECT_EQ(f.payload.size(), 40u);
  f = NextFrame();
  EXPECT_EQ(f.meta.type, RecordType::kAudio);
  EXPECT_EQ(f.payload.size(), 4u);
  f = NextFrame();
  EXPECT_FALSE(f.from_directory);
  EXPECT_EQ(f.meta.sequence, keyframe);
  EXPECT_EQ(f.meta.flags & kFlagKeyframe, kFlagKeyframe);
  EXPECT_TRUE(testing::CheckPayload(stream_.stream_id(), f.meta.sequence, f.payload));
  EXPECT_TRUE(reader_->Check(f));
  for (uint64_t seq = keyframe + 1; seq <= stream_.frames(); ++seq)
    EXPECT_EQ(NextFrame().meta.sequence, seq);
  EXPECT_EQ(reader_->Next(&f, absl::Milliseconds(10)), ReadResult::kTimeout);
  EXPECT_EQ(reader_->lost(), 0u);
}

TEST_F(ReaderTest, FollowFromNowSkipsHistory) {
  WriteGop(3);
  ASSERT_TRUE(reader_->Follow("live/cam", {.start = StartAt::kNow}).ok());
  Write(RecordType::kVideo, 0, 10);
  EXPECT_EQ(NextFrame().meta.sequence, stream_.frames());
}

TEST_F(ReaderTest, FollowFromOldestStartsAtFirstKeyframeInRing) {
  WriteGop(2);  // sequence 2..4 after stream-begin
  WriteGop(2);
  ASSERT_TRUE(reader_->Follow("live/cam", {.start = StartAt::kOldest}).ok());
  EXPECT_EQ(NextFrame().meta.sequence, 1u);  // stream-begin
  EXPECT_EQ(NextFrame().meta.sequence, 2u);  // the first keyframe
}

TEST_F(ReaderTest, StreamEndIsDeliveredThenReported) {
  WriteGop(1);
  ASSERT_TRUE(reader_->Follow("live/cam").ok());
  NextFrame();
  NextFrame();
  stream_.End();
  Frame f = NextFrame();
  EXPECT_EQ(f.meta.type, RecordType::kStreamEnd);
  EXPECT_EQ(reader_->Next(&f, absl::Seconds(5)), ReadResult::kStreamEnded);
}

// The server writes a stream's last frames, then marks it ended in the directory. A
// reader that finds nothing to read must not take the directory's "ended" for the end
// when the last frames came meanwhile: every frame, the end record last, then the end.
TEST_F(ReaderTest, FramesWrittenJustBeforeTheEndAreAllDelivered) {
  auto& shard = server_->shard(1);
  for (int round = 0; round < 1000; ++round) {
    auto stream = shard.BeginStream("live/race", "");
    ASSERT_TRUE(stream.ok());
    // From the tail: the reader waits at the end of the ring for what comes (a start at
    // the oldest record of this full ring would race the writer for the space, a lap).
    ASSERT_TRUE(reader_->Follow("live/race", {.start = StartAt::kNow}).ok());
    std::thread writer([&] {
      std::vector<uint8_t> payload(64);
      for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(
            stream->WriteFrame({.type = RecordType::kAudio, .flags = kFlagKeyframe}, payload).ok());
      }
      stream->End();
    });
    // The reader looks without sleeping, so that its looks interleave with the writer's
    // last steps as often as they can.
    int frames = 0;
    Frame f;
    ReadResult r;
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while ((r = reader_->Next(&f, absl::ZeroDuration())) == ReadResult::kFrame ||
           (r == ReadResult::kTimeout && absl::Now() < deadline)) {
      if (r == ReadResult::kTimeout) continue;
      frames += f.meta.type == RecordType::kAudio;
      if (f.meta.type == RecordType::kStreamEnd) {
        EXPECT_EQ(frames, 3) << "round " << round;
      }
    }
    writer.join();
    ASSERT_EQ(r, ReadResult::kStreamEnded);
    ASSERT_EQ(frames, 3) << "round " << round;
  }
}

TEST_F(ReaderTest, LappedReaderCountsEveryLostFrameAndResyncsAtKeyframe) {
  WriteGop(9);
  ASSERT_TRUE(reader_->Follow("live/cam").ok());
  uint64_t last = NextFrame().meta.sequence;
  for (int gop = 0; gop < 40; ++gop) WriteGop(9);  // several laps of a 64 KiB ring
  Frame f = NextFrame();
  EXPECT_GT(f.lost_before, 0u);
  // Overwritten ones, then the inter frames it passed over to reach the keyframe.
  EXPECT_EQ(f.lost_before + reader_->skipped(), f.meta.sequence - last - 1);
  EXPECT_EQ(f.meta.flags & kFlagKeyframe, kFlagKeyframe);
  uint64_t gaps = f.meta.sequence - last - 1;
  last = f.meta.sequence;
  while (reader_->Next(&f, absl::Milliseconds(1)) == ReadResult::kFrame) {
    ASSERT_TRUE(reader_->Check(f));
    gaps += f.meta.sequence - last - 1;
    last = f.meta.sequence;
  }
  EXPECT_EQ(last, stream_.frames());
  EXPECT_EQ(reader_->lost() + reader_->skipped(), gaps);
  EXPECT_GT(reader_->lost(), 0u);
}

// A follower that starts mid-GOP passes over the inter frames before the next keyframe:
// nothing was lost, and audio before that keyframe is delivered.
TEST_F(ReaderTest, FollowerStartingMidGopSkipsInterFramesWithoutALoss) {
  auto ring = RingReader::Open(name_.RingPath(1));
  ASSERT_TRUE(ring.ok()) << ring.status();
  (*ring)->SeekToTail();
  StreamFollower follower(ring->get(), stream_.stream_id(), /*await_keyframe=*/true);
  Write(RecordType::kAudio, kFlagKeyframe, 20);
  Write(RecordType::kVideo, 0, 30);
  Write(RecordType::kVideo, 0, 30);
  const uint64_t keyframe = WriteGop(1);
  RecordView view;
  uint64_t lost_before = 99;
  ASSERT_TRUE(follower.Poll(&view, &lost_before));
  EXPECT_EQ(view.type(), RecordType::kAudio);
  ASSERT_TRUE(follower.Poll(&view, &lost_before));
  EXPECT_EQ(view.header.sequence, keyframe);
  EXPECT_EQ(lost_before, 0u);
  ASSERT_TRUE(follower.Poll(&view, &lost_before));
  EXPECT_EQ(view.header.sequence, keyframe + 1);
  EXPECT_EQ(follower.lost(), 0u);
  EXPECT_EQ(follower.skipped(), 2u);
}

// An Enhanced RTMP Metadata packet (colorInfo, as ffmpeg sends it before the first
// keyframe) and a command frame hold no picture: a follower waiting for a keyframe
// delivers them, and counts nothing as lost.
TEST_F(ReaderTest, FollowerWaitingForAKeyframeDeliversVideoPacketsWithoutAPicture) {
  auto ring = RingReader::Open(name_.RingPath(1));
  ASSERT_TRUE(ring.ok()) << ring.status();
  (*ring)->SeekToTail();
  StreamFollower follower(ring->get(), stream_.stream_id(), /*await_keyframe=*/true);
  std::vector<uint8_t> color_info(40), command(2);
  ASSERT_TRUE(stream_
                  .WriteFrame({.type = RecordType::kVideo,
                               .flags = kFlagExHeader,
                               .packet_type = kVideoPacketMetadata},
                              color_info)
                  .ok());
  ASSERT_TRUE(
      stream_.WriteFrame({.type = RecordType::kVideo, .flags = kFlagCommand}, command).ok());
  Write(RecordType::kVideo, 0, 30);  // a picture: still skipped
  const uint64_t keyframe = WriteGop(0);
  RecordView view;
  uint64_t lost_before = 0;
  ASSERT_TRUE(follower.Poll(&view, &lost_before));
  EXPECT_EQ(view.header.packet_type, kVideoPacketMetadata);
  ASSERT_TRUE(follower.Poll(&view, &lost_before));
  EXPECT_EQ(view.header.flags, kFlagCommand);
  ASSERT_TRUE(follower.Poll(&view, &lost_before));
  EXPECT_EQ(view.header.sequence, keyframe);
  EXPECT_EQ(follower.lost(), 0u);
  EXPECT_EQ(follower.skipped(), 1u);
}

TEST_F(ReaderTest, OverwrittenFrameFailsCheckAndCountsAsLost) {
  WriteGop(3);
  ASSERT_TRUE(reader_->Follow("live/cam", {.start = StartAt::kOldest}).ok());
  Frame f = NextFrame();
  for (int gop = 0; gop < 30; ++gop) WriteGop(9);
  EXPECT_FALSE(reader_->Check(f));
  std::vector<uint8_t> copy;
  EXPECT_FALSE(reader_->CopyOut(f, &copy));
  EXPECT_EQ(reader_->lost(), 1u);  // once, however often it is checked
}

TEST_F(ReaderTest, StalledLosslessReaderIsEvictedAndToldSo) {
  WriteGop(1);
  ASSERT_TRUE(reader_->Follow("live/cam", {.lossless = true}).ok());
  NextFrame();
  for (int gop = 0; gop < 30; ++gop) WriteGop(9);  // waits 20 ms, then evicts
  EXPECT_EQ(server_->shard(1).producer().header().lossless_evictions, 1u);
  Frame f;
  EXPECT_EQ(reader_->Next(&f, absl::Seconds(5)), ReadResult::kEvicted);
  EXPECT_EQ(reader_->evictions(), 1u);
  EXPECT_EQ(reader_->Next(&f, absl::Seconds(5)), ReadResult::kFrame);
  EXPECT_GT(f.lost_before, 0u);
}

TEST_F(ReaderTest, LosslessReaderThatKeepsUpLosesNothing) {
  ASSERT_TRUE(reader_->Follow("live/cam", {.start = StartAt::kOldest, .lossless = true}).ok());
  Frame f;
  for (int gop = 0; gop < 30; ++gop) {
    WriteGop(9);
    while (reader_->Next(&f, absl::ZeroDuration()) == ReadResult::kFrame) {
      ASSERT_TRUE(reader_->Check(f));
    }
  }
  EXPECT_EQ(reader_->lost(), 0u);
  EXPECT_EQ(f.meta.sequence, stream_.frames());
}

TEST_F(ReaderTest, UnknownStreamIsNotFound) {
  EXPECT_EQ(reader_->Follow("live/none").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(reader_->ListStreams().size(), 1u);
}

TEST_F(ReaderTest, SilentServerIsReportedGone) {
  // The server object holds its lock: silence alone reads as dead only once it is hung.
  auto reader = Reader::Open(
      name_.name(), {.dead_after = absl::Milliseconds(100), .hung_after = absl::Milliseconds(100)});
  ASSERT_TRUE(reader.ok());
  ASSERT_TRUE((*reader)->Follow("live/cam", {.start = StartAt::kNow}).ok());
  server_->HeartbeatAll();
  Frame f;
  absl::Time start = absl::Now();
  EXPECT_EQ((*reader)->Next(&f, absl::Seconds(10)), ReadResult::kServerGone);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ((*reader)->CheckServer(), ServerState::kDead);
}

// ---- Waiting (forked servers that die: server_exit_test.cc) ----

TEST_F(ReaderTest, WaitForStreamFindsAStreamThatBeginsLater) {
  std::thread publisher([&] {
    absl::SleepFor(absl::Milliseconds(200));
    auto stream = server_->shard(0).BeginStream("live/later", "10.0.0.1:1");
    ASSERT_TRUE(stream.ok());
    stream->End();
  });
  StreamInfo info;
  // An ended stream is found only when it began after the wait started.
  EXPECT_EQ(reader_->WaitForStream("live/later", {}, &info, absl::ToUnixNanos(absl::Now())),
            WaitResult::kReady);
  publisher.join();
  EXPECT_EQ(info.name, "live/later");
  EXPECT_EQ(info.publisher, "10.0.0.1:1");
  EXPECT_EQ(reader_->WaitForStream("live/later", {.deadline = absl::Now()}, &info),
            WaitResult::kTimeout)
      << "not publishing, and no begin time given";
}

TEST_F(ReaderTest, WaitForStreamEndsAtItsStopFlag) {
  std::atomic<bool> stop{true};
  StreamInfo info;
  EXPECT_EQ(reader_->WaitForStream("live/none", {.stop = &stop}, &info), WaitResult::kStopped);
}

TEST_F(ReaderTest, CleanShutdownWhileWaitingForAStreamEndsTheWaitAsShutDown) {
  std::thread shutdown([&] {
    absl::SleepFor(absl::Milliseconds(200));
    stream_.End();
    server_.reset();
  });
  StreamInfo info;
  const absl::Time start = absl::Now();
  EXPECT_EQ(reader_->WaitForStream("live/none", {}, &info), WaitResult::kServerShutDown);
  shutdown.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  EXPECT_EQ(reader_->CheckServerExit(), ServerExit::kShutDown);
  EXPECT_EQ(reader_->WatchServer({}), WaitResult::kServerShutDown);
}

TEST_F(ReaderTest, WatchServerSleepsUntilItsDeadlineWhileTheServerLives) {
  const absl::Time start = absl::Now();
  EXPECT_EQ(reader_->WatchServer({.deadline = start + absl::Milliseconds(250)}),
            WaitResult::kTimeout);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(250));
}

TEST(ReaderWaitTest, WaitForServerReturnsOnceTheServerAppears) {
  testing::ScopedRingName name;
  std::unique_ptr<RingServer> server;
  std::thread starter([&] {
    absl::SleepFor(absl::Milliseconds(300));
    auto created = RingServer::Create({.name = name.name(), .ring_capacity = kMinRingCapacity});
    ASSERT_TRUE(created.ok()) << created.status();
    server = *std::move(created);
  });
  const absl::Time start = absl::Now();
  auto reader = Reader::WaitForServer(name.name(), {.deadline = start + absl::Seconds(10)});
  starter.join();
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(300));
  EXPECT_EQ((*reader)->epoch(), server->epoch());
}

TEST(ReaderWaitTest, WaitForServerEndsAtItsDeadlineOrStopFlag) {
  testing::ScopedRingName name;
  EXPECT_EQ(Reader::WaitForServer(name.name(), {.deadline = absl::Now() + absl::Milliseconds(50)})
                .status()
                .code(),
            absl::StatusCode::kDeadlineExceeded);
  std::atomic<bool> stop{true};
  EXPECT_EQ(Reader::WaitForServer(name.name(), {.stop = &stop}).status().code(),
            absl::StatusCode::kCancelled);
  EXPECT_EQ(Reader::WaitForServer("bad/name", {}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace uringest::ringbuf
