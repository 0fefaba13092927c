#include "engine/rtmp/stream_names.h"

#include <cstdint>

#include "absl/strings/str_format.h"

namespace uringest::rtmp {

std::pair<std::string_view, std::string_view> SplitQuery(std::string_view s) {
  const size_t q = s.find('?');
  if (q == std::string_view::npos) return {s, {}};
  return {s.substr(0, q), s.substr(q + 1)};
}

absl::Status ValidateName(std::string_view what, std::string_view name, std::string_view query,
                          size_t max_name_length, size_t max_query_length) {
  if (name.empty()) return absl::InvalidArgumentError(absl::StrFormat("empty %s", what));
  if (name.size() > max_name_length) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s longer than %u bytes", what, max_name_length));
  }
  if (query.size() > max_query_length) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s query longer than %u bytes", what, max_query_length));
  }
  for (char c : name) {
    if (uint8_t(c) < 0x20 || uint8_t(c) == 0x7F) {
      return absl::InvalidArgumentError(absl::StrFormat("%s with a control character", what));
    }
  }
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string_view::npos) end = name.size();
    const std::string_view segment = name.substr(start, end - start);
    if (segment.empty() || segment == "." || segment == "..") {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s with an empty, '.' or '..' path segment", what));
    }
    start = end + 1;
  }
  return absl::OkStatus();
}

}  // namespace uringest::rtmp
