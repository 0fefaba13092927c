#include "loadgen/latency_histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace uringest::loadgen {

int LatencyHistogram::BucketOf(uint64_t us) {
  constexpr uint64_t kLinear = uint64_t{1} << kSubBits;
  if (us < kLinear) return int(us);
  const int exponent = std::min(int(std::bit_width(us)) - 1, kMaxExponent);
  if (exponent == kMaxExponent && us >= (uint64_t{2} << kMaxExponent)) return kBuckets - 1;
  const int sub = int((us >> (exponent - kSubBits)) & (kLinear - 1));
  return ((exponent - kSubBits + 1) << kSubBits) + sub;
}

uint64_t LatencyHistogram::BucketLowUs(int bucket) {
  constexpr int kLinear = 1 << kSubBits;
  if (bucket < kLinear) return uint64_t(bucket);
  const int exponent = (bucket >> kSubBits) + kSubBits - 1;
  const uint64_t sub = uint64_t(bucket & (kLinear - 1));
  return (uint64_t{1} << exponent) + (sub << (exponent - kSubBits));
}

void LatencyHistogram::Record(int64_t ns) {
  ns = std::max<int64_t>(ns, 0);
  ++buckets_[BucketOf(uint64_t(ns) / 1000)];
  ++count_;
  max_ns_ = std::max(max_ns_, ns);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (int i = 0; i < kBuckets; ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  max_ns_ = std::max(max_ns_, other.max_ns_);
}

int64_t LatencyHistogram::PercentileNs(double q) const {
  if (count_ == 0) return 0;
  const uint64_t rank = std::max<uint64_t>(1, uint64_t(std::ceil(q * double(count_))));
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += buckets_[i];
    if (seen < rank) continue;
    const uint64_t low = BucketLowUs(i);
    const uint64_t high = i + 1 < kBuckets ? BucketLowUs(i + 1) : low;
    const int64_t mid_ns = int64_t((low + high) * 500);  // (low + high) / 2 µs, in ns
    return std::min(mid_ns, max_ns_);
  }
  return max_ns_;
}

}  // namespace uringest::loadgen
