// test_util.h: helpers shared by the ringbuf tests and benchmarks: unique ring names,
// and payloads derived from a sequence number so a reader can check every byte.

#ifndef URINGEST_RINGBUF_INTERNAL_TEST_UTIL_H_
#define URINGEST_RINGBUF_INTERNAL_TEST_UTIL_H_

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <span>
#include <string>

#include "absl/strings/str_cat.h"
#include "ringbuf/ring_format.h"
#include "ringbuf/shm.h"

namespace uringest::ringbuf::testing {

// "uringest-test-<pid>-<n>": unique per process and call, so tests run in parallel.
inline std::string UniqueRingName() {
  static std::atomic<int> counter{0};
  return absl::StrCat("uringest-test-", getpid(), "-", counter.fetch_add(1));
}

// Removes a ring's objects, including its lock file, when a test ends.
class ScopedRingName {
 public:
  ScopedRingName() : name_(UniqueRingName()) {}
  ~ScopedRingName() {
    (void)RemoveRingObjects(name_, "");
    unlink(ObjectPath(kShmDir, name_, kLockSuffix).c_str());
  }
  const std::string& name() const { return name_; }
  std::string RingPath(uint32_t shard = 0) const {
    return ObjectPath(kShmDir, name_, RingSuffix(shard));
  }

 private:
  std::string name_;
};

inline uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
  return z ^ (z >> 31);
}

// Fills `out` with bytes derived from (stream, sequence).
inline void FillPayload(uint32_t stream, uint64_t sequence, std::span<uint8_t> out) {
  uint64_t state = (uint64_t{stream} << 48) ^ sequence;
  size_t i = 0;
  for (; i + 8 <= out.size(); i += 8) {
    uint64_t v = SplitMix64(state);
    __builtin_memcpy(out.data() + i, &v, 8);
  }
  uint64_t v = SplitMix64(state);
  for (; i < out.size(); ++i, v >>= 8) out[i] = static_cast<uint8_t>(v);
}

inline bool CheckPayload(uint32_t stream, uint64_t sequence, std::span<const uint8_t> in) {
  uint64_t state = (uint64_t{stream} << 48) ^ sequence;
  size_t i = 0;
  for (; i + 8 <= in.size(); i += 8) {
    uint64_t v = SplitMix64(state);
    if (__builtin_memcmp(in.data() + i, &v, 8) != 0) return false;
  }
  uint64_t v = SplitMix64(state);
  for (; i < in.size(); ++i, v >>= 8) {
    if (in[i] != static_cast<uint8_t>(v)) return false;
  }
  return true;
}

}  // namespace uringest::ringbuf::testing

#endif  // URINGEST_RINGBUF_INTERNAL_TEST_UTIL_H_
