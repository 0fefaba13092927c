// ring_server.h: the server side of `--ring NAME`: takes the name's lock, replaces stale
// objects that a crashed server left, creates the directory and one ring per shard, and
// on a clean shutdown closes and removes them.
//
//   absl::StatusOr<std::unique_ptr<RingServer>> rings = RingServer::Create(
//       {.name = "live", .shards = 4, .ring_capacity = 64 << 20});
//   ShardWriter& shard = (*rings)->shard(k);  // handed to shard thread k
//
// Objects (FORMAT.md, "Objects"): /dev/shm/NAME.lock, /dev/shm/NAME.dir, and
// /dev/shm/NAME.ring.<k> with its readers page /dev/shm/NAME.ring.<k>.readers (or
// <hugetlbfs>/NAME.ring.<k> when huge pages are available). Consumers in `group` may read
// them all and write only the readers pages (FORMAT.md, "Permissions").
//
// Thread safety: shard(k) belongs to shard thread k from then on. Create and destroy
// the RingServer on one thread, while no shard thread uses it.

#ifndef URINGEST_RINGBUF_RING_SERVER_H_
#define URINGEST_RINGBUF_RING_SERVER_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ringbuf/directory.h"
#include "ringbuf/producer.h"
#include "ringbuf/server_lock.h"
#include "ringbuf/shard_writer.h"

namespace uringest::ringbuf {

struct RingServerOptions {
  std::string name;  // --ring NAME
  uint32_t shards = 1;
  uint64_t ring_capacity = 64 << 20;  // per shard, a power of two
  uint32_t directory_slots = 4096;    // streams at once, ended ones included
  mode_t mode = 0640;                 // of the lock, the directory and the rings
  mode_t readers_mode = 0660;         // of the readers pages (and of hugetlbfs rings)
  gid_t group = gid_t(-1);            // of every object created; -1: the server's
  bool huge_pages = true;             // hugetlbfs if it has room, else THP
  bool prefault = true;
  absl::Duration lossless_timeout = absl::Milliseconds(250);
  bool batch_wakes = false;  // RingOptions::batch_wakes: the owner calls ShardWriter::Flush()
};

class RingServer {
 public:
  static absl::StatusOr<std::unique_ptr<RingServer>> Create(const RingServerOptions& options);

  RingServer(const RingServer&) = delete;
  RingServer& operator=(const RingServer&) = delete;
  // A clean shutdown: marks the directory and rings closed (readers see it at once),
  // removes the objects and the lock file.
  ~RingServer();

  ShardWriter& shard(uint32_t k) { return *writers_[k]; }
  uint32_t shard_count() const { return static_cast<uint32_t>(writers_.size()); }
  StreamDirectory& directory() { return *directory_; }
  uint64_t epoch() const { return epoch_; }
  // True if Create() found and removed objects of a server that had died.
  bool replaced_stale() const { return replaced_stale_; }
  // Stamps every shard's heartbeat (for callers without per-shard timers).
  void HeartbeatAll();

 private:
  RingServer() = default;
  absl::Status CreateObjects(const RingServerOptions& options);
  absl::Status CreateRing(const RingServerOptions& options, uint32_t shard,
                          const std::string& hugetlbfs, RingLocation* location);
  absl::StatusOr<ShmRegion> CreateShmRing(const RingServerOptions& options, uint32_t shard,
                                          const ShmCreateOptions& shm);

  std::string name_;
  std::string hugetlbfs_dir_;
  uint64_t epoch_ = 0;
  bool replaced_stale_ = false;
  ServerLock lock_;
  std::unique_ptr<StreamDirectory> directory_;
  std::vector<std::unique_ptr<Producer>> producers_;
  std::vector<std::unique_ptr<ShardWriter>> writers_;
};

}  // namespace uringest::ringbuf

#endif  // URINGEST_RINGBUF_RING_SERVER_H_
