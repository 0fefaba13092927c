// shm.h: shared-memory objects of the frame ring: their names, creating and mapping
// them, huge pages, and removing them.
//
//   absl::StatusOr<ShmRegion> ring =
//       ShmRegion::Create(ObjectPath(kShmDir, "live", ".ring.0"), size, {.mode = 0640});
//   uint8_t* base = ring->data();  // valid while `ring` lives
//
// A region is a file under /dev/shm (tmpfs: what shm_open() creates) or, for huge pages,
// under a hugetlbfs mount. Opening by path keeps both cases the same. A region may have
// pages of another object mapped over part of it (Overlay): that is how a ring that its
// consumers may only read still has a page they write (FORMAT.md, "Permissions").

#ifndef URINGEST_RINGBUF_SHM_H_
#define URINGEST_RINGBUF_SHM_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace uringest::ringbuf {

// A ring name is what `--ring NAME` gives: 1..kMaxNameLength characters of
// [A-Za-z0-9._-], not starting with '.'.
absl::Status ValidateRingName(std::string_view name);

// "<dir>/<name><suffix>", e.g. ObjectPath("/dev/shm", "live", ".dir").
std::string ObjectPath(std::string_view dir, std::string_view name, std::string_view suffix);
std::string RingSuffix(uint32_t shard);  // ".ring.<shard>"

struct ShmCreateOptions {
  mode_t mode = 0600;       // file mode of the new object (0640 lets a group read)
  gid_t group = gid_t(-1);  // the new object's group; -1 keeps the creator's
  bool prefault = true;     // MAP_POPULATE: no page faults on the data path
  bool huge_pages = false;  // madvise(MADV_HUGEPAGE): transparent huge pages on tmpfs
};

// A MAP_SHARED mapping of a whole shared-memory file. Move-only; unmaps on destruction
// (the file stays until unlinked).
class ShmRegion {
 public:
  // Creates `path` (it must not exist), sizes it to `size` bytes and maps it read-write.
  // The contents start zeroed.
  static absl::StatusOr<ShmRegion> Create(const std::string& path, size_t size,
                                          const ShmCreateOptions& options);
  // Maps an existing object, read-write if `writable`, else read-only.
  static absl::StatusOr<ShmRegion> Open(const std::string& path, bool writable, bool prefault);

  // Maps all of object `path` over this region's bytes from `offset` (MAP_FIXED, shared,
  // read-write if `writable`): from then on those bytes are that object's. The region
  // still unmaps the whole range at the end.
  // REQUIRES: `offset` and the object's size are multiples of the page size and the
  // object fits in the region.
  absl::Status Overlay(size_t offset, const std::string& path, bool writable);

  ShmRegion() = default;
  ShmRegion(ShmRegion&& other) noexcept;
  ShmRegion& operator=(ShmRegion&& other) noexcept;
  ShmRegion(const ShmRegion&) = delete;
  ShmRegion& operator=(const ShmRegion&) = delete;
  ~ShmRegion();

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  bool writable() const { return writable_; }

 private:
  ShmRegion(uint8_t* data, size_t size, bool writable)
      : data_(data), size_(size), writable_(writable) {}

  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool writable_ = false;
};

// A hugetlbfs mount point with at least `bytes` of free default-size huge pages, or ""
// when the machine has none (then rings use /dev/shm with transparent huge pages).
std::string FindHugetlbfs(size_t bytes);
size_t HugePageSize();

// A group given by name ("video") or number ("44").
absl::StatusOr<gid_t> ResolveGroup(const std::string& group);

// Unlinks every object of ring `name` under /dev/shm and under `hugetlbfs_dir` (if not
// empty), readers pages included, except the lock file. Missing objects are fine.
absl::Status RemoveRingObjects(std::string_view name, std::string_view hugetlbfs_dir);

}  // namespace uringest::ringbuf

#endif  // URINGEST_RINGBUF_SHM_H_
