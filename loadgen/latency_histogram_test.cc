#include "loadgen/latency_histogram.h"

#include "gtest/gtest.h"

namespace uringest::loadgen {
namespace {

TEST(LatencyHistogramTest, BucketBoundsAreContiguousAndMonotonic) {
  for (int b = 1; b < LatencyHistogram::kBuckets; ++b) {
    const uint64_t low = LatencyHistogram::BucketLowUs(b);
    EXPECT_GT(low, LatencyHistogram::BucketLowUs(b - 1));
    EXPECT_EQ(LatencyHistogram::BucketOf(low), b);
    EXPECT_EQ(LatencyHistogram::BucketOf(low - 1), b - 1);
  }
}

TEST(LatencyHistogramTest, PercentilesWithinThreePercent) {
  LatencyHistogram h;
  for (int i = 1; i <= 10000; ++i) h.Record(int64_t(i) * 1000);  // 1 µs .. 10 ms
  EXPECT_NEAR(double(h.PercentileNs(0.5)), 5e6, 5e6 * 0.03);
  EXPECT_NEAR(double(h.PercentileNs(0.99)), 9.9e6, 9.9e6 * 0.03);
  EXPECT_EQ(h.MaxNs(), 10'000'000);
  EXPECT_LE(h.PercentileNs(1.0), h.MaxNs());
}

TEST(LatencyHistogramTest, NegativeAndHugeLatenciesAreClamped) {
  LatencyHistogram h;
  h.Record(-5);
  h.Record(int64_t{1} << 62);
  EXPECT_EQ(h.count(), 2u);
  EXPECT_LT(h.PercentileNs(0.5), 1000) << "the negative one counts as 0";
  EXPECT_GT(h.PercentileNs(1.0), int64_t{1} << 40) << "the huge one lands in the last bucket";
}

TEST(LatencyHistogramTest, MergeAddsCounts) {
  LatencyHistogram a, b;
  a.Record(1000);
  b.Record(2'000'000);
  a.Merge(b);
  EXPECT_EQ(a.count(), 2u);
  EXPECT_EQ(a.MaxNs(), 2'000'000);
}

}  // namespace
}  // namespace uringest::loadgen
