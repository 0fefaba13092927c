// latency_histogram.h: a fixed-size log-linear histogram of latencies, 32 buckets per
// power of two of microseconds (about 3% resolution), from 1 µs to about 35 minutes.
// Recording is a few instructions and never allocates; percentiles are read off the
// bucket bounds (each reported value is its bucket's midpoint; Max() is exact).
//
//   LatencyHistogram h;
//   h.Record(now_ns - sent_ns);
//   double p99_ms = h.PercentileNs(0.99) / 1e6;
//
// Thread safety: none.

#ifndef URINGEST_LOADGEN_LATENCY_HISTOGRAM_H_
#define URINGEST_LOADGEN_LATENCY_HISTOGRAM_H_

#include <array>
#include <cstdint>

namespace uringest::loadgen {

class LatencyHistogram {
 public:
  static constexpr int kSubBits = 5;       // 32 buckets per power of two
  static constexpr int kMaxExponent = 31;  // 2^31 µs
  static constexpr int kBuckets = (kMaxExponent - kSubBits + 2) << kSubBits;

  // A negative latency (clocks stepped) counts as 0.
  void Record(int64_t ns);
  void Merge(const LatencyHistogram& other);

  uint64_t count() const { return count_; }
  int64_t MaxNs() const { return max_ns_; }
  // The latency below which a fraction `q` of the samples fall; 0 if empty.
  int64_t PercentileNs(double q) const;

  static int BucketOf(uint64_t us);
  static uint64_t BucketLowUs(int bucket);

 private:
  std::array<uint32_t, kBuckets> buckets_{};
  uint64_t count_ = 0;
  int64_t max_ns_ = 0;
};

}  // namespace uringest::loadgen

#endif  // URINGEST_LOADGEN_LATENCY_HISTOGRAM_H_
