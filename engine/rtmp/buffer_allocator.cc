#include "engine/rtmp/buffer_allocator.h"

namespace uringest::rtmp {
namespace {

class HeapAllocator final : public BufferAllocator {
 public:
  uint8_t* Allocate(size_t size, size_t* capacity) override {
    *capacity = size;
    return new uint8_t[size];
  }
  void Free(uint8_t* p, size_t capacity) override { delete[] p; }
};

}  // namespace

BufferAllocator* HeapBufferAllocator() {
  static HeapAllocator allocator;
  return &allocator;
}

}  // namespace uringest::rtmp
