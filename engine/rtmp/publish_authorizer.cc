#include "engine/rtmp/publish_authorizer.h"

namespace uringest::rtmp {
namespace {

// The value of the `key=` parameter among the '&'-separated parameters of `query`;
// *found says whether there was one.
std::string_view KeyParameter(std::string_view query, bool* found) {
  *found = false;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view param = query.substr(0, amp);
    if (param.substr(0, 4) == "key=") {
      *found = true;
      return param.substr(4);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return {};
}

std::string_view KeyOf(std::string_view query, bool* found) {
  std::string_view key = KeyParameter(query, found);
  if (!*found && !query.empty() && query.find('=') == std::string_view::npos) {
    *found = true;
    key = query;
  }
  return key;
}

}  // namespace

std::string_view PublishKey(std::string_view name_query, std::string_view app_query) {
  bool found = false;
  const std::string_view key = KeyOf(name_query, &found);
  if (found) return key;
  return KeyOf(app_query, &found);
}

}  // namespace uringest::rtmp
