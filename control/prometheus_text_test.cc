// PrometheusText: the exposition format's lines, escaping and histograms. (promtool
// checks whole pages from a running server in tests/integration/control_test.cc.)

#include "control/prometheus_text.h"

#include <cstdint>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace uringest::control {
namespace {

TEST(PrometheusTextTest, WritesHelpTypeAndSamples) {
  PrometheusText out;
  out.Family("uringest_kicks_total", "counter", "Publishers kicked.");
  out.Sample("uringest_kicks_total", {}, 3);
  out.Family("uringest_stream_received_bytes_per_second", "gauge", "Bitrate.");
  out.Sample("uringest_stream_received_bytes_per_second", {{"app", "live"}, {"name", "cam"}},
             2500000.5);
  EXPECT_EQ(out.Take(),
            "# HELP uringest_kicks_total Publishers kicked.\n"
            "# TYPE uringest_kicks_total counter\n"
            "uringest_kicks_total 3\n"
            "# HELP uringest_stream_received_bytes_per_second Bitrate.\n"
            "# TYPE uringest_stream_received_bytes_per_second gauge\n"
            "uringest_stream_received_bytes_per_second{app=\"live\",name=\"cam\"} 2500000.5\n");
}

TEST(PrometheusTextTest, EscapesLabelValues) {
  EXPECT_EQ(PrometheusText::EscapeLabel("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  PrometheusText out;
  out.Sample("x", {{"name", "say \"hi\"\n"}}, 1);
  EXPECT_EQ(out.Take(), "x{name=\"say \\\"hi\\\"\\n\"} 1\n");
}

TEST(PrometheusTextTest, HistogramBucketsAreCumulativeAndEndInInf) {
  PrometheusText out;
  const std::vector<double> bounds = {0.1, 1};
  const std::vector<uint64_t> counts = {2, 3, 1};  // <=0.1, <=1, >1
  out.Histogram("h_seconds", {{"hook", "on_publish"}}, bounds, counts, 4.25);
  EXPECT_EQ(out.Take(),
            "h_seconds_bucket{hook=\"on_publish\",le=\"0.1\"} 2\n"
            "h_seconds_bucket{hook=\"on_publish\",le=\"1\"} 5\n"
            "h_seconds_bucket{hook=\"on_publish\",le=\"+Inf\"} 6\n"
            "h_seconds_sum{hook=\"on_publish\"} 4.25\n"
            "h_seconds_count{hook=\"on_publish\"} 6\n");
}

TEST(PrometheusTextTest, SpecialValues) {
  PrometheusText out;
  out.Sample("a", {}, 1.0 / 0.0);
  out.Sample("b", {}, -2);
  EXPECT_EQ(out.Take(), "a +Inf\nb -2\n");
}

}  // namespace
}  // namespace uringest::control
