// memory_region.h: one anonymous mapping for the engine's big fixed allocations (the
// receive buffer slab of each shard): explicit huge pages when the machine has them
// reserved, else transparent huge pages where the kernel allows, prefaulted so the data
// path never takes a page fault on it.
//
//   absl::StatusOr<MemoryRegion> slab = MemoryRegion::Map(512 * 32768);
//   uint8_t* buffer = slab->data() + bid * 32768;

#ifndef URINGEST_ENGINE_MEMORY_REGION_H_
#define URINGEST_ENGINE_MEMORY_REGION_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"

namespace uringest::engine {

class MemoryRegion {
 public:
  // Maps `size` bytes (rounded up to the page size used).
  static absl::StatusOr<MemoryRegion> Map(size_t size);

  MemoryRegion() = default;
  MemoryRegion(MemoryRegion&& other) noexcept;
  MemoryRegion& operator=(MemoryRegion&& other) noexcept;
  MemoryRegion(const MemoryRegion&) = delete;
  MemoryRegion& operator=(const MemoryRegion&) = delete;
  ~MemoryRegion();

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  // Backed by explicit huge pages (MAP_HUGETLB).
  bool huge_pages() const { return huge_pages_; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool huge_pages_ = false;
};

}  // namespace uringest::engine

#endif  // URINGEST_ENGINE_MEMORY_REGION_H_
