#include "engine/connection_limits.h"

#include "absl/strings/str_cat.h"

namespace uringest::engine {

ConnectionLimits::ConnectionLimits(uint32_t max_total, uint32_t max_per_address)
    : max_total_(max_total), max_per_address_(max_per_address) {}

std::string ConnectionLimits::Admit(std::string_view address) {
  internal::MutexLock lock(&mu_);
  if (max_total_ != 0 && total_ >= max_total_) {
    return absl::StrCat("the server holds --max-connections=", max_total_, " connections");
  }
  if (max_per_address_ != 0) {
    uint32_t& count = per_address_[std::string(address)];
    if (count >= max_per_address_) {
      return absl::StrCat(std::string(address),
                          " holds --max-connections-per-ip=", max_per_address_, " connections");
    }
    ++count;
  }
  ++total_;
  return {};
}

void ConnectionLimits::Leave(std::string_view address) {
  internal::MutexLock lock(&mu_);
  --total_;
  if (max_per_address_ == 0) return;
  auto it = per_address_.find(std::string(address));
  if (it != per_address_.end() && --it->second == 0) per_address_.erase(it);
}

uint32_t ConnectionLimits::total() const {
  internal::MutexLock lock(&mu_);
  return total_;
}

}  // namespace uringest::engine
