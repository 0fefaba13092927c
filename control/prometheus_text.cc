#include "control/prometheus_text.h"

#include <charconv>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace uringest::control {
namespace {

// Integers as integers (counters are, and read better); the rest in the shortest form
// that reads back as the same double ("0.005", not "0.0050000000000000001").
std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return absl::StrFormat("%.0f", v);
  char text[32];
  const std::to_chars_result end = std::to_chars(text, text + sizeof(text), v);
  return std::string(text, end.ptr);
}

}  // namespace

std::string PrometheusText::EscapeLabel(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

void PrometheusText::Family(std::string_view name, std::string_view type, std::string_view help) {
  absl::StrAppend(&out_, "# HELP ", std::string(name), " ", std::string(help), "\n# TYPE ",
                  std::string(name), " ", std::string(type), "\n");
}

void PrometheusText::Sample(std::string_view name, const Labels& labels, double value) {
  Series(name, "", labels, nullptr, value);
}

void PrometheusText::Histogram(std::string_view name, const Labels& labels,
                               std::span<const double> bounds, std::span<const uint64_t> counts,
                               double sum) {
  uint64_t cumulative = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    cumulative += counts[i];
    const std::pair<std::string_view, std::string> le{
        "le", i < bounds.size() ? FormatValue(bounds[i]) : "+Inf"};
    Series(name, "_bucket", labels, &le, double(cumulative));
  }
  Series(name, "_sum", labels, nullptr, sum);
  Series(name, "_count", labels, nullptr, double(cumulative));
}

void PrometheusText::Series(std::string_view name, std::string_view suffix, const Labels& labels,
                            const std::pair<std::string_view, std::string>* extra, double value) {
  out_.append(name).append(suffix);
  if (!labels.empty() || extra != nullptr) {
    out_ += '{';
    bool first = true;
    auto add = [&](const std::pair<std::string_view, std::string>& label) {
      if (!first) out_ += ',';
      first = false;
      out_.append(label.first).append("=\"").append(EscapeLabel(label.second)).append("\"");
    };
    for (const auto& label : labels) add(label);
    if (extra != nullptr) add(*extra);
    out_ += '}';
  }
  out_.append(" ").append(FormatValue(value)).append("\n");
}

}  // namespace uringest::control
