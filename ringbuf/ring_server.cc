#include "ringbuf/ring_server.h"

#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "ringbuf/clock.h"
#include "ringbuf/internal/futex.h"
#include "ringbuf/internal/shared_access.h"
#include "ringbuf/ring_reader.h"

namespace uringest::ringbuf {
namespace {

uint64_t NewEpoch() {
  uint64_t epoch = 0;
  while (epoch == 0) {
    if (getrandom(&epoch, sizeof(epoch), 0) != sizeof(epoch)) {
      epoch = RealtimeNs() ^ (uint64_t(getpid()) << 32);
    }
  }
  return epoch;
}

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

// Maps a ring read-write the way the server does: with its readers page over the
// header's second page, when it has one.
absl::StatusOr<ShmRegion> MapRingForWriting(const std::string& path) {
  absl::StatusOr<ShmRegion> region = ShmRegion::Open(path, /*writable=*/true, /*prefault=*/false);
  const std::string readers = path + kReadersSuffix;
  if (!region.ok() || !Exists(readers)) return region;
  if (region->size() < kRingHeaderSize) return absl::DataLossError("ring object too small");
  if (absl::Status s = region->Overlay(kRingReadersOffset, readers, true); !s.ok()) return s;
  return region;
}

// Readers may still have a dead server's rings mapped: mark them closed and wake them,
// so they learn at once rather than from the heartbeat. Returns where its huge-page
// rings were.
std::string CloseStaleObjects(std::string_view name) {
  absl::StatusOr<std::unique_ptr<StreamDirectory>> dir =
      StreamDirectory::Open(ObjectPath(kShmDir, name, kDirectorySuffix));
  if (!dir.ok()) return "";
  for (uint32_t k = 0; k < (*dir)->header().shard_count; ++k) {
    absl::StatusOr<ShmRegion> ring = MapRingForWriting((*dir)->RingPath(name, k));
    if (!ring.ok() || !CheckRingHeader(*ring).ok()) continue;
    RingHeader& h = *reinterpret_cast<RingHeader*>(ring->data());
    internal::StoreRelease(h.state, static_cast<uint32_t>(RingState::kClosed));
    internal::Shared(h.futex_word).fetch_add(1);
    internal::FutexWakeAll(&h.futex_word);
  }
  return std::string((*dir)->header().hugetlbfs_dir);
}

}  // namespace

absl::StatusOr<std::unique_ptr<RingServer>> RingServer::Create(const RingServerOptions& options) {
  if (options.shards == 0 || options.shards > kMaxShards) {
    return absl::InvalidArgumentError(absl::StrCat("shards must be 1..", kMaxShards));
  }
  absl::StatusOr<ServerLock> lock = ServerLock::Acquire(options.name, options.mode);
  if (!lock.ok()) return lock.status();
  if (options.group != gid_t(-1)) {
    const std::string lock_path = ObjectPath(kShmDir, options.name, kLockSuffix);
    if (chown(lock_path.c_str(), uid_t(-1), options.group) != 0) {
      return absl::ErrnoToStatus(errno, absl::StrCat("chown ", lock_path));
    }
  }
  auto server = std::unique_ptr<RingServer>(new RingServer());
  server->lock_ = *std::move(lock);
  server->name_ = options.name;
  server->epoch_ = NewEpoch();
  // We hold the lock, so whatever objects exist belong to a server that died.
  std::string dir_path = ObjectPath(kShmDir, options.name, kDirectorySuffix);
  server->replaced_stale_ =
      Exists(dir_path) || Exists(ObjectPath(kShmDir, options.name, RingSuffix(0)));
  std::string stale_huge = server->replaced_stale_ ? CloseStaleObjects(options.name) : "";
  if (absl::Status s = RemoveRingObjects(options.name, stale_huge); !s.ok()) return s;
  if (absl::Status s = server->CreateObjects(options); !s.ok()) {
    (void)RemoveRingObjects(options.name, server->hugetlbfs_dir_);
    return s;
  }
  return server;
}

absl::Status RingServer::CreateRing(const RingServerOptions& options, uint32_t shard,
                                    const std::string& hugetlbfs, RingLocation* location) {
  RingOptions ring{.capacity = options.ring_capacity,
                   .shard = shard,
                   .epoch = epoch_,
                   .lossless_timeout = options.lossless_timeout,
                   .batch_wakes = options.batch_wakes};
  ShmCreateOptions shm{.mode = options.mode,
                       .group = options.group,
                       .prefault = options.prefault,
                       .huge_pages = options.huge_pages};
  *location = RingLocation::kShm;
  if (!hugetlbfs.empty()) {
    // hugetlbfs files are huge-page backed by themselves (the MAP_HUGETLB of files). A
    // 4 KiB readers page can't be mapped over a huge page: readers write the ring itself.
    size_t page = HugePageSize();
    size_t size = (kRingHeaderSize + options.ring_capacity + page - 1) / page * page;
    ShmCreateOptions huge = shm;
    huge.mode = options.readers_mode;
    absl::StatusOr<ShmRegion> region =
        ShmRegion::Create(ObjectPath(hugetlbfs, name_, RingSuffix(shard)), size, huge);
    if (region.ok()) {
      absl::StatusOr<std::unique_ptr<Producer>> p = Producer::Format(*std::move(region), ring);
      if (!p.ok()) return p.status();
      producers_.push_back(*std::move(p));
      *location = RingLocation::kHugetlbfs;
      return absl::OkStatus();
    }
  }
  absl::StatusOr<ShmRegion> region = CreateShmRing(options, shard, shm);
  if (!region.ok()) return region.status();
  absl::StatusOr<std::unique_ptr<Producer>> p = Producer::Format(*std::move(region), ring);
  if (!p.ok()) return p.status();
  producers_.push_back(*std::move(p));
  return absl::OkStatus();
}

// The readers page first, then the ring with the page mapped over its header's second
// page: the producer and every reader share it (FORMAT.md, "Permissions").
absl::StatusOr<ShmRegion> RingServer::CreateShmRing(const RingServerOptions& options,
                                                    uint32_t shard, const ShmCreateOptions& shm) {
  const std::string path = ObjectPath(kShmDir, name_, RingSuffix(shard));
  const std::string readers = path + kReadersSuffix;
  absl::StatusOr<ShmRegion> page =
      ShmRegion::Create(readers, kRingReadersSize,
                        {.mode = options.readers_mode, .group = options.group, .prefault = false});
  if (!page.ok()) return page.status();
  absl::StatusOr<ShmRegion> region =
      ShmRegion::Create(path, kRingHeaderSize + options.ring_capacity, shm);
  if (!region.ok()) return region.status();
  if (absl::Status s = region->Overlay(kRingReadersOffset, readers, /*writable=*/true); !s.ok()) {
    return s;
  }
  return region;
}

absl::Status RingServer::CreateObjects(const RingServerOptions& options) {
  if (options.huge_pages) {
    hugetlbfs_dir_ = FindHugetlbfs(uint64_t{options.shards} * options.ring_capacity);
  }
  std::vector<RingLocation> locations(options.shards);
  for (uint32_t k = 0; k < options.shards; ++k) {
    if (absl::Status s = CreateRing(options, k, hugetlbfs_dir_, &locations[k]); !s.ok()) return s;
  }
  // The directory goes last: a reader that finds it finds every ring.
  DirectoryOptions dir{.shard_count = options.shards,
                       .slot_count = options.directory_slots,
                       .ring_capacity = options.ring_capacity,
                       .epoch = epoch_,
                       .hugetlbfs_dir = hugetlbfs_dir_,
                       .ring_locations = locations};
  absl::StatusOr<std::unique_ptr<StreamDirectory>> directory =
      StreamDirectory::Create(ObjectPath(kShmDir, name_, kDirectorySuffix), dir,
                              {.mode = options.mode, .group = options.group});
  if (!directory.ok()) return directory.status();
  directory_ = *std::move(directory);
  for (uint32_t k = 0; k < options.shards; ++k) {
    writers_.push_back(std::make_unique<ShardWriter>(producers_[k].get(), directory_.get(), k));
  }
  return absl::OkStatus();
}

void RingServer::HeartbeatAll() {
  for (auto& w : writers_) w->Heartbeat();
}

RingServer::~RingServer() {
  if (directory_ != nullptr) directory_->SetState(DirectoryState::kClosed);
  for (auto& p : producers_) p->Close();
  (void)RemoveRingObjects(name_, hugetlbfs_dir_);
  writers_.clear();
  producers_.clear();
  directory_.reset();
  // lock_ goes last (members are destroyed in reverse order): unlinks the lock file.
}

}  // namespace uringest::ringbuf
