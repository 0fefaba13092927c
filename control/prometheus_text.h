// prometheus_text.h: Prometheus's text exposition format (version 0.0.4), written by
// hand: Debian 12 packages no C++ Prometheus client. One family at a time: its HELP and
// TYPE lines, then its samples.
//
//   PrometheusText out;
//   out.Family("uringest_kicks_total", "counter", "Publishers ended through the HTTP API.");
//   out.Sample("uringest_kicks_total", {}, 3);
//   out.Family("uringest_stream_frames_total", "counter", "Frames written, by stream.");
//   out.Sample("uringest_stream_frames_total", {{"app", "live"}, {"name", "cam"}}, 1200);
//   std::string page = out.Take();
//
// Label values are escaped (\\, \", \n); names are the caller's and must be valid.

#ifndef URINGEST_CONTROL_PROMETHEUS_TEXT_H_
#define URINGEST_CONTROL_PROMETHEUS_TEXT_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace uringest::control {

using Labels = std::vector<std::pair<std::string_view, std::string>>;

class PrometheusText {
 public:
  // `type`: "counter", "gauge" or "histogram".
  void Family(std::string_view name, std::string_view type, std::string_view help);
  void Sample(std::string_view name, const Labels& labels, double value);
  // A histogram's series: `counts` per bucket (not cumulative), the last one +Inf's.
  // REQUIRES: counts.size() == bounds.size() + 1.
  void Histogram(std::string_view name, const Labels& labels, std::span<const double> bounds,
                 std::span<const uint64_t> counts, double sum);
  std::string Take() { return std::move(out_); }

  // `value` escaped for a label value (without the quotes).
  static std::string EscapeLabel(std::string_view value);

 private:
  void Series(std::string_view name, std::string_view suffix, const Labels& labels,
              const std::pair<std::string_view, std::string>* extra, double value);
  std::string out_;
};

}  // namespace uringest::control

#endif  // URINGEST_CONTROL_PROMETHEUS_TEXT_H_
