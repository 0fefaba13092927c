// status_text.h: an absl::Status's message as a std::string_view. Debian's abseil has its
// own string_view type, which neither fmt (spdlog) nor std::string_view parameters take.
//
//   spdlog::warn("{}: {}", peer, StatusText(status));

#ifndef URINGEST_ENGINE_STATUS_TEXT_H_
#define URINGEST_ENGINE_STATUS_TEXT_H_

#include <string_view>

#include "absl/status/status.h"

namespace uringest::engine {

inline std::string_view StatusText(const absl::Status& status) {
  const auto message = status.message();
  return std::string_view(message.data(), message.size());
}

}  // namespace uringest::engine

#endif  // URINGEST_ENGINE_STATUS_TEXT_H_
