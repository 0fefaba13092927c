// slab_allocator.h: a shard's allocator for message-assembly buffers, sized by message
// length: power-of-two size classes from 256 B to 16 MiB. Classes up to 256 KiB are
// carved from 1 MiB slabs that the shard keeps; larger buffers are allocated singly and,
// once freed, kept on their class's free list up to a byte budget. Allocation and free are
// a free-list pop and push: no malloc per message once the shard is warm.
//
//   SlabAllocator slab;                   // one per shard
//   options.reader.allocator = &slab;     // every connection of the shard
//
// Thread safety: none; a SlabAllocator belongs to its shard's thread.

#ifndef URINGEST_ENGINE_SLAB_ALLOCATOR_H_
#define URINGEST_ENGINE_SLAB_ALLOCATOR_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/rtmp/buffer_allocator.h"

namespace uringest::engine {

class SlabAllocator final : public rtmp::BufferAllocator {
 public:
  static constexpr size_t kMinClassSize = 256;
  static constexpr size_t kMaxClassSize = 16 << 20;  // holds the largest RTMP message
  static constexpr size_t kSlabSize = 1 << 20;
  static constexpr size_t kMaxCarvedSize = 256 << 10;
  static constexpr size_t kClasses = 17;  // 256 B << 0 .. 16
  static_assert(kMinClassSize << (kClasses - 1) == kMaxClassSize);

  struct Stats {
    size_t slabs = 0;            // 1 MiB slabs carved so far
    size_t large_allocated = 0;  // bytes of single allocations alive or cached
    size_t in_use = 0;           // bytes handed out and not yet freed
  };

  // `retained_large_bytes`: how many bytes of freed large buffers to keep for reuse.
  explicit SlabAllocator(size_t retained_large_bytes = 64 << 20);
  SlabAllocator(const SlabAllocator&) = delete;
  SlabAllocator& operator=(const SlabAllocator&) = delete;
  ~SlabAllocator() override;

  // nullptr when the buffer would take the bytes in use past the budget.
  uint8_t* Allocate(size_t size, size_t* capacity) override;
  void Free(uint8_t* p, size_t capacity) override;

  // The most bytes handed out at once (stats().in_use); 0: no limit. A shard's budget
  // bounds what all its connections' partial messages hold together, whatever they send.
  void set_budget(size_t bytes) { budget_ = bytes; }
  const Stats& stats() const { return stats_; }

 private:
  static size_t ClassOf(size_t size);
  void CarveSlab(size_t cls);

  const size_t retained_large_bytes_;
  size_t budget_ = 0;
  size_t retained_large_ = 0;  // bytes on the large classes' free lists
  std::array<std::vector<uint8_t*>, kClasses> free_;
  std::vector<std::unique_ptr<uint8_t[]>> slabs_;
  Stats stats_;
};

}  // namespace uringest::engine

#endif  // URINGEST_ENGINE_SLAB_ALLOCATOR_H_
