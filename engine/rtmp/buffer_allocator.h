// buffer_allocator.h: where the chunk reader's message-assembly buffers come from. The
// engine gives each shard a slab allocator with size classes (engine/slab_allocator.h),
// so assembling a message costs no trip to malloc; by default they come from the heap.
//
//   ChunkReaderOptions options;
//   options.allocator = &shard_slab;  // must outlive every reader that uses it

#ifndef URINGEST_ENGINE_RTMP_BUFFER_ALLOCATOR_H_
#define URINGEST_ENGINE_RTMP_BUFFER_ALLOCATOR_H_

#include <cstddef>
#include <cstdint>

namespace uringest::rtmp {

class BufferAllocator {
 public:
  virtual ~BufferAllocator() = default;
  // A buffer of at least `size` bytes (size > 0); *capacity receives its real size.
  // nullptr when the allocator's budget is spent (the heap allocator has none).
  virtual uint8_t* Allocate(size_t size, size_t* capacity) = 0;
  // REQUIRES: `p` came from Allocate() on this allocator, which gave it `capacity`.
  virtual void Free(uint8_t* p, size_t capacity) = 0;
};

// new[] and delete[]; thread-safe.
BufferAllocator* HeapBufferAllocator();

}  // namespace uringest::rtmp

#endif  // URINGEST_ENGINE_RTMP_BUFFER_ALLOCATOR_H_
