// RingServer: the lock that keeps two servers off one name, stale objects, clean
// shutdown, restarts seen by readers, and what ShardWriter puts in the directory.

#include "ringbuf/ring_server.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gtest/gtest.h"
#include "ringbuf/internal/test_util.h"
#include "ringbuf/reader.h"

namespace uringest::ringbuf {
namespace {

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

class RingServerTest : public ::testing::Test {
 protected:
  RingServerOptions Options() {
    return {.name = name_.name(),
            .shards = 2,
            .ring_capacity = 1 << 20,
            .directory_slots = 16,
            .mode = 0640};
  }
  testing::ScopedRingName name_;
};

TEST_F(RingServerTest, CreatesEveryObjectAndRemovesThemOnShutdown) {
  auto server = RingServer::Create(Options());
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_FALSE((*server)->replaced_stale());
  std::string dir = ObjectPath(kShmDir, name_.name(), kDirectorySuffix);
  EXPECT_TRUE(Exists(dir));
  EXPECT_TRUE(Exists(name_.RingPath(0)));
  EXPECT_TRUE(Exists(name_.RingPath(1)));
  struct stat st;
  ASSERT_EQ(stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  EXPECT_TRUE(ServerLock::IsHeld(name_.name()));
  server->reset();
  EXPECT_FALSE(Exists(dir));
  EXPECT_FALSE(Exists(name_.RingPath(0)));
  EXPECT_FALSE(Exists(ObjectPath(kShmDir, name_.name(), kLockSuffix)));
  EXPECT_FALSE(ServerLock::IsHeld(name_.name()));
}

TEST_F(RingServerTest, SecondLiveServerIsRefused) {
  auto first = RingServer::Create(Options());
  ASSERT_TRUE(first.ok());
  auto second = RingServer::Create(Options());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Exists(name_.RingPath(0)));  // the first one's objects are untouched
}

TEST_F(RingServerTest, StaleObjectsOfADeadServerAreReplaced) {
  // A crashed server leaves its objects and an unlocked lock file.
  for (const std::string& path :
       {ObjectPath(kShmDir, name_.name(), kDirectorySuffix), name_.RingPath(0), name_.RingPath(7),
        ObjectPath(kShmDir, name_.name(), kLockSuffix)}) {
    int fd = open(path.c_str(), O_CREAT | O_WRONLY, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, "junk", 4), 4);
    close(fd);
  }
  auto server = RingServer::Create(Options());
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_TRUE((*server)->replaced_stale());
  EXPECT_FALSE(Exists(name_.RingPath(7)));
  auto reader = Reader::Open(name_.name());
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ((*reader)->epoch(), (*server)->epoch());
}

TEST_F(RingServerTest, ReaderTellsCleanShutdownFromRestart) {
  auto server = RingServer::Create(Options());
  ASSERT_TRUE(server.ok());
  auto stream = (*server)->shard(1).BeginStream("live/a", "");
  ASSERT_TRUE(stream.ok());
  auto reader = Reader::Open(name_.name());
  ASSERT_TRUE(reader.ok());
  ASSERT_TRUE((*reader)->Follow("live/a").ok());
  EXPECT_EQ((*reader)->CheckServer(), ServerState::kAlive);
  uint64_t old_epoch = (*server)->epoch();
  *stream = StreamWriter();
  server->reset();
  EXPECT_EQ((*reader)->CheckServer(), ServerState::kClosed);
  auto restarted = RingServer::Create(Options());
  ASSERT_TRUE(restarted.ok());
  EXPECT_NE((*restarted)->epoch(), old_epoch);
  EXPECT_EQ((*reader)->CheckServer(), ServerState::kRestarted);
}

TEST_F(RingServerTest, SilentServerHoldingItsLockIsBusyNotDead) {
  auto server = RingServer::Create(Options());
  ASSERT_TRUE(server.ok());
  auto reader = Reader::Open(name_.name(), {.dead_after = absl::Milliseconds(50)});
  ASSERT_TRUE(reader.ok());
  (*server)->HeartbeatAll();
  absl::SleepFor(absl::Milliseconds(60));
  EXPECT_EQ((*reader)->CheckServer(), ServerState::kAlive);  // stale, but the lock is held
}

TEST_F(RingServerTest, MissedHeartbeatsReadAsDeadServer) {
  auto server = RingServer::Create(Options());
  ASSERT_TRUE(server.ok());
  auto reader = Reader::Open(
      name_.name(), {.dead_after = absl::Milliseconds(50), .hung_after = absl::Milliseconds(50)});
  ASSERT_TRUE(reader.ok());
  (*server)->HeartbeatAll();
  EXPECT_EQ((*reader)->CheckServer(), ServerState::kAlive);
  absl::SleepFor(absl::Milliseconds(60));
  EXPECT_EQ((*reader)->CheckServer(), ServerState::kDead);
  (*server)->HeartbeatAll();
  EXPECT_EQ((*reader)->CheckServer(), ServerState::kAlive);
}

TEST_F(RingServerTest, ShardWriterKeepsTheDirectoryCurrent) {
  auto server = RingServer::Create(Options());
  ASSERT_TRUE(server.ok());
  ShardWriter& shard = (*server)->shard(1);
  auto stream = shard.BeginStream("live/cam", "192.0.2.1:1935");
  ASSERT_TRUE(stream.ok());
  std::vector<uint8_t> avc = {0x17, 0, 0, 0, 0, 1, 2, 3};
  std::vector<uint8_t> aac = {0xAF, 0, 0x12, 0x10};
  std::vector<uint8_t> meta = {0x02, 0x00, 0x0A, 'o', 'n', 'M', 'e',
                               't',  'a',  'D',  'a', 't', 'a', 8};
  std::vector<uint8_t> idr(5000, 0x17), inter(100, 0x27);
  const uint8_t config = kFlagKeyframe | kFlagSequenceHeader;
  ASSERT_TRUE(stream->WriteFrame({.type = RecordType::kData, .flags = kFlagKeyframe}, meta).ok());
  ASSERT_TRUE(stream->WriteFrame({.type = RecordType::kVideo, .flags = config}, avc).ok());
  ASSERT_TRUE(stream->WriteFrame({.type = RecordType::kAudio, .flags = config}, aac).ok());
  ASSERT_TRUE(
      stream->WriteFrame({.type = RecordType::kVideo, .flags = kFlagKeyframe, .dts = 40}, idr)
          .ok());
  ASSERT_TRUE(stream->WriteFrame({.type = RecordType::kVideo, .dts = 80}, inter).ok());
  std::vector<uint8_t> huge(shard.producer().max_payload_length() + 1);
  EXPECT_FALSE(stream->WriteFrame({.type = RecordType::kVideo}, huge).ok());
  std::optional<StreamInfo> info = (*server)->directory().Find("live/cam");
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->shard, 1u);
  EXPECT_EQ(info->video_config, avc);
  EXPECT_EQ(info->audio_config, aac);
  EXPECT_EQ(info->metadata, meta);
  EXPECT_EQ(info->frames, 6u);  // stream-begin + 5
  EXPECT_EQ(info->drops, 1u);
  EXPECT_EQ(info->last_dts, 80);
  ASSERT_TRUE(info->latest_keyframe.has_value());
  EXPECT_EQ(shard.producer().PayloadAt(*info->latest_keyframe).size(), idr.size());
  stream->End();
  EXPECT_EQ((*server)->directory().Find("live/cam")->state, SlotState::kEnded);
}

}  // namespace
}  // namespace uringest::ringbuf
