#include "engine/memory_region.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace uringest::engine {
namespace {

constexpr size_t kHugePage = 2 << 20;
constexpr size_t kPage = 4096;

size_t RoundUp(size_t n, size_t unit) { return (n + unit - 1) / unit * unit; }

}  // namespace

absl::StatusOr<MemoryRegion> MemoryRegion::Map(size_t size) {
  MemoryRegion region;
  const int flags = MAP_PRIVATE | MAP_ANONYMOUS;
  // Explicit huge pages exist only where an operator reserved them (vm.nr_hugepages).
  size_t rounded = RoundUp(size, kHugePage);
  void* p =
      mmap(nullptr, rounded, PROT_READ | PROT_WRITE, flags | MAP_HUGETLB | MAP_POPULATE, -1, 0);
  if (p != MAP_FAILED) {
    region.huge_pages_ = true;
  } else {
    rounded = RoundUp(size, kPage);
    p = mmap(nullptr, rounded, PROT_READ | PROT_WRITE, flags, -1, 0);
    if (p == MAP_FAILED) {
      return absl::ErrnoToStatus(errno, absl::StrCat("mmap of ", rounded, " bytes"));
    }
    // Transparent huge pages where enabled: advise before the first touch, then fault
    // every page in now rather than on the data path.
    madvise(p, rounded, MADV_HUGEPAGE);
    std::memset(p, 0, rounded);
  }
  region.data_ = static_cast<uint8_t*>(p);
  region.size_ = rounded;
  return region;
}

MemoryRegion::MemoryRegion(MemoryRegion&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      huge_pages_(other.huge_pages_) {}

MemoryRegion& MemoryRegion::operator=(MemoryRegion&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) munmap(data_, size_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    huge_pages_ = other.huge_pages_;
  }
  return *this;
}

MemoryRegion::~MemoryRegion() {
  if (data_ != nullptr) munmap(data_, size_);
}

}  // namespace uringest::engine
