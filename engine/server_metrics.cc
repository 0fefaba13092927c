#include "engine/server_metrics.h"

#include <algorithm>
#include <cmath>

namespace uringest::engine {

std::string_view ProtocolErrorName(ProtocolError kind) {
  switch (kind) {
    case ProtocolError::kWrongPort:
      return "wrong_port";
    case ProtocolError::kTlsHandshake:
      return "tls_handshake";
    case ProtocolError::kRtmpHandshake:
      return "rtmp_handshake";
    case ProtocolError::kLimit:
      return "limit";
    case ProtocolError::kOutOfOrder:
      return "out_of_order";
    case ProtocolError::kMalformed:
      return "malformed";
    case ProtocolError::kProxyProtocol:
      return "proxy_protocol";
  }
  return "malformed";
}

std::string_view RefusalName(rtmp::Session::Refusal kind) {
  using Refusal = rtmp::Session::Refusal;
  switch (kind) {
    case Refusal::kInvalidName:
      return "invalid_name";
    case Refusal::kTaken:
      return "name_taken";
    case Refusal::kBanned:
      return "banned";
    case Refusal::kNoRoom:
      return "no_room";
    case Refusal::kDenied:
      return "denied";
  }
  return "denied";
}

void HookMetrics::Observe(double seconds, long status) {
  Counter& outcome = status == 0 ? failed : status >= 200 && status < 300 ? ok : refused;
  outcome.fetch_add(1, std::memory_order_relaxed);
  const size_t bucket =
      size_t(std::lower_bound(kBuckets.begin(), kBuckets.end(), seconds) - kBuckets.begin());
  buckets[bucket].fetch_add(1, std::memory_order_relaxed);
  latency_us.fetch_add(uint64_t(std::llround(std::max(seconds, 0.0) * 1e6)),
                       std::memory_order_relaxed);
}

}  // namespace uringest::engine
