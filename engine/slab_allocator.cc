#include "engine/slab_allocator.h"

#include <bit>
#include <cassert>

namespace uringest::engine {

SlabAllocator::SlabAllocator(size_t retained_large_bytes)
    : retained_large_bytes_(retained_large_bytes) {}

SlabAllocator::~SlabAllocator() {
  for (size_t cls = 0; cls < kClasses; ++cls) {
    if ((kMinClassSize << cls) <= kMaxCarvedSize) continue;  // inside slabs_
    for (uint8_t* p : free_[cls]) delete[] p;
  }
}

size_t SlabAllocator::ClassOf(size_t size) {
  if (size <= kMinClassSize) return 0;
  return std::bit_width(size - 1) - std::bit_width(kMinClassSize - 1);
}

void SlabAllocator::CarveSlab(size_t cls) {
  const size_t size = kMinClassSize << cls;
  slabs_.push_back(std::make_unique_for_overwrite<uint8_t[]>(kSlabSize));
  ++stats_.slabs;
  uint8_t* slab = slabs_.back().get();
  for (size_t offset = 0; offset + size <= kSlabSize; offset += size) {
    free_[cls].push_back(slab + offset);
  }
}

uint8_t* SlabAllocator::Allocate(size_t size, size_t* capacity) {
  assert(size > 0);
  const size_t real = size > kMaxClassSize ? size : kMinClassSize << ClassOf(size);
  if (budget_ != 0 && stats_.in_use + real > budget_) return nullptr;
  if (size > kMaxClassSize) {  // not an RTMP message: no class for it
    *capacity = size;
    stats_.in_use += size;
    return new uint8_t[size];
  }
  const size_t cls = ClassOf(size);
  *capacity = kMinClassSize << cls;
  stats_.in_use += *capacity;
  std::vector<uint8_t*>& list = free_[cls];
  if (list.empty()) {
    if (*capacity <= kMaxCarvedSize) {
      CarveSlab(cls);
    } else {
      stats_.large_allocated += *capacity;
      return new uint8_t[*capacity];
    }
  }
  uint8_t* p = list.back();
  list.pop_back();
  if (*capacity > kMaxCarvedSize) retained_large_ -= *capacity;
  return p;
}

void SlabAllocator::Free(uint8_t* p, size_t capacity) {
  stats_.in_use -= capacity;
  if (capacity > kMaxClassSize) {
    delete[] p;
    return;
  }
  const size_t cls = ClassOf(capacity);
  assert((kMinClassSize << cls) == capacity);
  if (capacity > kMaxCarvedSize) {
    if (retained_large_ + capacity > retained_large_bytes_) {
      stats_.large_allocated -= capacity;
      delete[] p;
      return;
    }
    retained_large_ += capacity;
  }
  free_[cls].push_back(p);
}

}  // namespace uringest::engine
