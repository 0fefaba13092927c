#include "engine/slab_allocator.h"

#include <cstring>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace uringest::engine {
namespace {

TEST(SlabAllocatorTest, SizesRoundUpToTheirPowerOfTwoClass) {
  SlabAllocator slab;
  struct Case {
    size_t size, capacity;
  } cases[] = {{1, 256},         {257, 512},           {4096, 4096},
               {4097, 8192},     {65536, 65536},       {65537, 131072},
               {300000, 524288}, {0xFFFFFF, 16 << 20}, {16 << 20, 16 << 20}};
  for (const Case& c : cases) {
    size_t capacity = 0;
    uint8_t* p = slab.Allocate(c.size, &capacity);
    EXPECT_EQ(capacity, c.capacity) << c.size;
    std::memset(p, 0xAB, capacity);  // ASan: the whole capacity is ours
    slab.Free(p, capacity);
  }
  EXPECT_EQ(slab.stats().in_use, 0u);
}

TEST(SlabAllocatorTest, SmallClassesAreCarvedFromOneMegabyteSlabs) {
  SlabAllocator slab;
  std::vector<uint8_t*> buffers;
  size_t capacity;
  for (int i = 0; i < 256; ++i) buffers.push_back(slab.Allocate(4000, &capacity));
  EXPECT_EQ(slab.stats().slabs, 1u);  // 256 x 4 KiB fill exactly one slab
  buffers.push_back(slab.Allocate(4000, &capacity));
  EXPECT_EQ(slab.stats().slabs, 2u);
  for (uint8_t* p : buffers) slab.Free(p, 4096);
  // Freed buffers come back before any new slab is carved.
  for (int i = 0; i < 257; ++i) buffers[i] = slab.Allocate(4096, &capacity);
  EXPECT_EQ(slab.stats().slabs, 2u);
  for (uint8_t* p : buffers) slab.Free(p, 4096);
}

TEST(SlabAllocatorTest, FreedLargeBuffersAreReusedWithinTheBudget) {
  SlabAllocator slab(/*retained_large_bytes=*/2 << 20);
  size_t capacity;
  uint8_t* a = slab.Allocate(1 << 20, &capacity);
  uint8_t* b = slab.Allocate(1 << 20, &capacity);
  uint8_t* c = slab.Allocate(1 << 20, &capacity);
  slab.Free(a, capacity);
  slab.Free(b, capacity);
  slab.Free(c, capacity);  // over the 2 MiB budget: back to the heap
  EXPECT_EQ(slab.stats().large_allocated, 2u << 20);
  uint8_t* again = slab.Allocate(1 << 20, &capacity);
  EXPECT_TRUE(again == a || again == b);
  slab.Free(again, capacity);
}

TEST(SlabAllocatorTest, BudgetRefusesWhatWouldPassItAndFreeingMakesRoom) {
  SlabAllocator slab;
  slab.set_budget(1 << 20);
  size_t a_capacity, b_capacity, capacity;
  uint8_t* a = slab.Allocate(600 << 10, &a_capacity);  // a 1 MiB class: the whole budget
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(slab.Allocate(1, &capacity), nullptr) << "256 more bytes would pass 1 MiB";
  slab.Free(a, a_capacity);
  uint8_t* b = slab.Allocate(300 << 10, &b_capacity);  // 512 KiB
  ASSERT_NE(b, nullptr);
  uint8_t* c = slab.Allocate(512 << 10, &capacity);  // exactly up to the budget
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(slab.stats().in_use, size_t{1} << 20);
  slab.Free(b, b_capacity);
  slab.Free(c, capacity);
  EXPECT_EQ(slab.stats().in_use, 0u);
}

TEST(SlabAllocatorTest, RandomAllocationsNeverOverlap) {
  SlabAllocator slab;
  std::mt19937 rng(7);
  struct Live {
    uint8_t* p;
    size_t capacity;
    uint8_t fill;
  };
  std::vector<Live> live;
  for (int i = 0; i < 5000; ++i) {
    if (!live.empty() && rng() % 2) {
      const size_t k = rng() % live.size();
      for (size_t j = 0; j < live[k].capacity; j += 997) ASSERT_EQ(live[k].p[j], live[k].fill);
      slab.Free(live[k].p, live[k].capacity);
      live.erase(live.begin() + k);
    } else {
      Live l;
      l.fill = uint8_t(i);
      l.p = slab.Allocate(1 + rng() % (rng() % 8 == 0 ? 2 << 20 : 100000), &l.capacity);
      std::memset(l.p, l.fill, l.capacity);
      live.push_back(l);
    }
  }
  for (const Live& l : live) slab.Free(l.p, l.capacity);
  EXPECT_EQ(slab.stats().in_use, 0u);
}

}  // namespace
}  // namespace uringest::engine
