// The C API, end to end against a RingServer; c_api_header_check.c compiles the header
// as C.

#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "ringbuf/internal/test_util.h"
#include "ringbuf/ring_server.h"
#include "ringbuf/uringest_ring.h"

extern "C" int uringest_ring_header_is_c(void);

namespace uringest::ringbuf {
namespace {

TEST(CApiTest, HeaderCompilesAsC) { EXPECT_EQ(uringest_ring_header_is_c(), 1); }

TEST(CApiTest, OpenListFollowReadCheckCopy) {
  testing::ScopedRingName name;
  auto server = RingServer::Create({.name = name.name(), .ring_capacity = 1 << 20});
  ASSERT_TRUE(server.ok());
  auto stream = (*server)->shard(0).BeginStream("live/c", "127.0.0.1:1");
  ASSERT_TRUE(stream.ok());
  std::vector<uint8_t> avc = {0x17, 0, 0, 0, 0, 9};
  std::vector<uint8_t> idr(1000, 0x17);
  ASSERT_TRUE(
      stream
          ->WriteFrame({.type = RecordType::kVideo, .flags = kFlagKeyframe | kFlagSequenceHeader},
                       avc, Keep::kAsConfig)
          .ok());
  ASSERT_TRUE(
      stream
          ->WriteFrame({.type = RecordType::kVideo, .flags = kFlagKeyframe, .dts = 33, .pts = 66},
                       idr)
          .ok());
  // Enhanced RTMP: ExHeader | inter frame | CodedFramesX, "av01", on track 2.
  const std::vector<uint8_t> av1 = {0xA3, 'a', 'v', '0', '1', 0x32};
  ASSERT_TRUE(stream
                  ->WriteFrame({.type = RecordType::kVideo,
                                .flags = kFlagExHeader,
                                .dts = 66,
                                .pts = 66,
                                .codec = 0x61763031,
                                .track_id = 2,
                                .packet_type = 3,
                                .time_offset_ns = 250'000},
                               av1)
                  .ok());

  uringest_ring_reader* r = nullptr;
  EXPECT_EQ(uringest_ring_open("no-such-ring-anywhere", &r), -ENOENT);
  ASSERT_EQ(uringest_ring_open(name.name().c_str(), &r), 0);
  EXPECT_EQ(uringest_ring_shard_count(r), 1u);
  uringest_ring_stream_info infos[4];
  ASSERT_EQ(uringest_ring_list(r, infos, 4), 1);
  EXPECT_STREQ(infos[0].name, "live/c");
  EXPECT_STREQ(infos[0].publisher, "127.0.0.1:1");
  EXPECT_EQ(infos[0].publishing, 1u);
  EXPECT_EQ(uringest_ring_follow(r, "live/none", URINGEST_RING_FROM_NOW, 0), -ENOENT);
  ASSERT_EQ(uringest_ring_follow(r, "live/c", URINGEST_RING_FROM_LATEST_KEYFRAME, 1), 0);

  uringest_ring_frame f;
  ASSERT_EQ(uringest_ring_next(r, &f, 1000), URINGEST_RING_FRAME);
  EXPECT_EQ(f.from_directory, 1);
  EXPECT_EQ(f.payload_length, avc.size());
  ASSERT_EQ(uringest_ring_next(r, &f, 1000), URINGEST_RING_FRAME);
  EXPECT_EQ(f.type, URINGEST_RING_VIDEO);
  EXPECT_EQ(f.flags, URINGEST_RING_FLAG_KEYFRAME);
  EXPECT_EQ(f.dts, 33);
  EXPECT_EQ(f.pts, 66);
  EXPECT_EQ(f.sequence, 3u);
  EXPECT_EQ(uringest_ring_check(r), 1);
  std::vector<uint8_t> buf(2000);
  EXPECT_EQ(uringest_ring_copy(r, buf.data(), 10), -ENOSPC);
  ASSERT_EQ(uringest_ring_copy(r, buf.data(), buf.size()), 1000);
  EXPECT_EQ(buf[999], 0x17);
  EXPECT_EQ(f.codec, 0u);
  ASSERT_EQ(uringest_ring_next(r, &f, 1000), URINGEST_RING_FRAME);
  EXPECT_EQ(f.flags, URINGEST_RING_FLAG_EX_HEADER);
  EXPECT_EQ(f.codec, 0x61763031u);  // "av01"
  EXPECT_EQ(f.track_id, 2);
  EXPECT_EQ(f.packet_type, 3);
  EXPECT_EQ(f.time_offset_ns, 250'000u);
  EXPECT_EQ(f.payload_length, av1.size());
  EXPECT_EQ(uringest_ring_next(r, &f, 10), URINGEST_RING_TIMEOUT);
  EXPECT_EQ(uringest_ring_lost(r), 0u);
  EXPECT_EQ(uringest_ring_lag(r), 0u);
  EXPECT_EQ(uringest_ring_server_state(r), URINGEST_RING_SERVER_ALIVE);
  *stream = StreamWriter();
  server->reset();
  EXPECT_EQ(uringest_ring_next(r, &f, 1000), URINGEST_RING_FRAME);  // the stream-end record
  EXPECT_EQ(f.type, URINGEST_RING_STREAM_END);
  EXPECT_EQ(uringest_ring_next(r, &f, 1000), URINGEST_RING_STREAM_ENDED);
  EXPECT_EQ(uringest_ring_server_state(r), URINGEST_RING_SERVER_CLOSED);
  uringest_ring_close(r);
}

// Waiting, in-process (servers that die: server_exit_test.cc).
TEST(CApiTest, WaitOpenTimesOutThenFindsTheServerAndItsStream) {
  testing::ScopedRingName name;
  uringest_ring_reader* r = nullptr;
  EXPECT_EQ(uringest_ring_wait_open(name.name().c_str(), 50, &r), -ETIMEDOUT);
  EXPECT_EQ(uringest_ring_wait_open("bad/name", 50, &r), -EINVAL);
  auto server = RingServer::Create({.name = name.name(), .ring_capacity = 1 << 20});
  ASSERT_TRUE(server.ok());
  ASSERT_EQ(uringest_ring_wait_open(name.name().c_str(), -1, &r), 0);
  EXPECT_EQ(uringest_ring_server_exit(r), 0);
  EXPECT_EQ(uringest_ring_wait_stream(r, "live/w", 0), URINGEST_RING_TIMEOUT);
  auto stream = (*server)->shard(0).BeginStream("live/w", "");
  ASSERT_TRUE(stream.ok());
  EXPECT_EQ(uringest_ring_wait_stream(r, "live/w", 1000), URINGEST_RING_STREAM_READY);
  EXPECT_EQ(uringest_ring_follow(r, "live/w", URINGEST_RING_FROM_OLDEST, 0), 0);
  uringest_ring_close(r);
}

TEST(CApiTest, CleanShutdownWhileWaitingForAStreamIsReportedShutDown) {
  testing::ScopedRingName name;
  auto server = RingServer::Create({.name = name.name(), .ring_capacity = 1 << 20});
  ASSERT_TRUE(server.ok());
  uringest_ring_reader* r = nullptr;
  ASSERT_EQ(uringest_ring_open(name.name().c_str(), &r), 0);
  std::thread shutdown([&] {
    absl::SleepFor(absl::Milliseconds(200));
    server->reset();
  });
  EXPECT_EQ(uringest_ring_wait_stream(r, "live/w", 10'000), URINGEST_RING_SERVER_SHUT_DOWN);
  shutdown.join();
  EXPECT_EQ(uringest_ring_server_exit(r), URINGEST_RING_SERVER_SHUT_DOWN);
  uringest_ring_close(r);
}

}  // namespace
}  // namespace uringest::ringbuf
