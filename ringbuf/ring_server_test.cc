// RingServer: the lock that keeps two servers off one name, stale objects, clean
// shutdown, restarts seen by readers, and what ShardWriter puts in the directory.

#include "ringbuf/ring_server.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "ringbuf/internal/test_util.h"
#include "ringbuf/reader.h"
#include "ringbuf/ring_reader.h"

namespace uringest::ringbuf {
namespace {

uint64_t LoadAcquireMask(const RingHeader& h) {
  return std::atomic_ref<const uint64_t>(h.lossless_mask).load(std::memory_order_acquire);
}

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

TEST_F(RingServerTest, ObjectsAreGroupReadableAndOnlyReadersPagesGroupWritable) {
  RingServerOptions options = Options();
  options.mode = RingServerOptions{}.mode;  // the defaults
  options.group = getegid();
  auto server = RingServer::Create(options);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string ring = name_.RingPath(0);
  const struct {
    std::string path;
    mode_t mode;
  } expected[] = {{ObjectPath(kShmDir, name_.name(), kLockSuffix), 0640},
                  {ObjectPath(kShmDir, name_.name(), kDirectorySuffix), 0640},
                  {ring, 0640},
                  {ring + kReadersSuffix, 0660},
                  {name_.RingPath(1) + kReadersSuffix, 0660}};
  for (const auto& e : expected) {
    struct stat st;
    ASSERT_EQ(stat(e.path.c_str(), &st), 0) << e.path;
    EXPECT_EQ(st.st_mode & 0777, e.mode) << e.path;
    EXPECT_EQ(st.st_gid, getegid()) << e.path;
  }
  server->reset();
  EXPECT_FALSE(Exists(ring + kReadersSuffix)) << "removed with the ring";
}

// The permissions of the mappings of `path` in this process ("r--s", "rw-s"), one per
// mapping line whose file is exactly `path`.
std::vector<std::string> MappingPermissions(const std::string& path) {
  std::vector<std::string> perms;
  FILE* maps = fopen("/proc/self/maps", "re");
  char line[1024];
  while (maps != nullptr && fgets(line, sizeof(line), maps) != nullptr) {
    std::string l(line);
    if (!l.empty() && l.back() == '\n') l.pop_back();
    if (l.size() < path.size() || l.compare(l.size() - path.size(), path.size(), path) != 0 ||
        l[l.size() - path.size() - 1] != ' ') {
      continue;
    }
    perms.push_back(l.substr(l.find(' ') + 1, 4));
  }
  if (maps != nullptr) fclose(maps);
  return perms;
}

TEST_F(RingServerTest, ConsumersMapTheRingReadOnlyButForItsReadersPage) {
  auto server = RingServer::Create(Options());
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string ring = name_.RingPath(1);
  const size_t server_mappings = MappingPermissions(ring).size();
  auto reader = RingReader::Open(ring);
  ASSERT_TRUE(reader.ok()) << reader.status();
  ASSERT_TRUE((*reader)->EnableLossless().ok()) << "readers write their slot";
  // The ring's own bytes: the server's mappings read-write, the reader's (the header's
  // first page, and the data) read-only.
  const std::vector<std::string> ring_perms = MappingPermissions(ring);
  EXPECT_EQ(std::count(ring_perms.begin(), ring_perms.end(), "rw-s"), ptrdiff_t(server_mappings));
  EXPECT_EQ(std::count(ring_perms.begin(), ring_perms.end(), "r--s"), 2);
  EXPECT_EQ(ring_perms.size(), server_mappings + 2);
  const std::vector<std::string> readers_perms = MappingPermissions(ring + kReadersSuffix);
  ASSERT_EQ(readers_perms.size(), 2u) << "the server's and the reader's";
  EXPECT_EQ(readers_perms[0], "rw-s");
  EXPECT_EQ(readers_perms[1], "rw-s");
  EXPECT_EQ(LoadAcquireMask((*reader)->header()), 1u);
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
  ASSERT_TRUE(
      stream
          ->WriteFrame({.type = RecordType::kData, .flags = kFlagKeyframe}, meta, Keep::kAsMetadata)
          .ok());
  ASSERT_TRUE(
      stream->WriteFrame({.type = RecordType::kVideo, .flags = config}, avc, Keep::kAsConfig).ok());
  ASSERT_TRUE(
      stream->WriteFrame({.type = RecordType::kAudio, .flags = config}, aac, Keep::kAsConfig).ok());
  ASSERT_TRUE(
      stream->WriteFrame({.type = RecordType::kVideo, .flags = kFlagKeyframe, .dts = 40}, idr)
          .ok());
  ASSERT_TRUE(stream->WriteFrame({.type = RecordType::kVideo, .dts = 80}, inter).ok());
  std::vector<uint8_t> huge(shard.producer().max_payload_length() + 1);
  EXPECT_FALSE(stream->WriteFrame({.type = RecordType::kVideo}, huge).ok());
  std::optional<StreamInfo> info = (*server)->directory().Find("live/cam");
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->shard, 1u);
  ASSERT_EQ(info->configs.size(), 2u);
  EXPECT_EQ(info->configs[0].body, avc);
  EXPECT_EQ(info->configs[1].body, aac);
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
