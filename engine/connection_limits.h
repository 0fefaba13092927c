// connection_limits.h: the server-wide connection caps, --max-connections and the
// per-address cap, checked when a connection is placed on a shard (the control plane:
// once per connection, under a mutex).
//
//   ConnectionLimits limits(10000, 100);
//   if (std::string why = limits.Admit("203.0.113.7"); !why.empty()) refuse(why);
//   ...
//   limits.Leave("203.0.113.7");
//
// Thread safety: thread-safe.

#ifndef URINGEST_ENGINE_CONNECTION_LIMITS_H_
#define URINGEST_ENGINE_CONNECTION_LIMITS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "engine/internal/mutex.h"

namespace uringest::engine {

class ConnectionLimits {
 public:
  // 0 means no cap.
  ConnectionLimits(uint32_t max_total, uint32_t max_per_address);

  // Counts a new connection from `address` (the peer's IP), or returns why it is refused.
  std::string Admit(std::string_view address);
  // REQUIRES: a matching Admit() succeeded.
  void Leave(std::string_view address);
  uint32_t total() const;

 private:
  const uint32_t max_total_;
  const uint32_t max_per_address_;
  mutable internal::Mutex mu_;
  uint32_t total_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, uint32_t> per_address_ ABSL_GUARDED_BY(mu_);
};

}  // namespace uringest::engine

#endif  // URINGEST_ENGINE_CONNECTION_LIMITS_H_
