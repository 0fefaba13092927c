// server_metrics.h: the counters uringestd keeps for `GET /metrics`, beside what the ring
// itself says (streams, frames, drops, tails). Shards and the hook's thread bump them
// with relaxed atomic adds on control-plane events (a connection opens or closes, a
// publish is refused, a timeout fires), never per frame; the HTTP control thread reads
// them. Per-shard figures the shard already keeps (bytes received, buffer shortages) are
// copied into its ShardMetrics once a tick.
//
//   ServerMetrics metrics(shards);
//   metrics.Add(metrics.idle_timeouts);                               // a shard
//   metrics.shard(k).bytes_received.store(bytes_in_, relaxed);        // shard k, per tick
//   uint64_t n = metrics.Get(metrics.idle_timeouts);                  // the control thread
//
// Thread safety: every member is an atomic; any thread may read or bump any.

#ifndef URINGEST_ENGINE_SERVER_METRICS_H_
#define URINGEST_ENGINE_SERVER_METRICS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string_view>

#include "engine/rtmp/session.h"

namespace uringest::engine {

using Counter = std::atomic<uint64_t>;

// Why a connection ended with an error the peer caused ("protocol errors by kind").
enum class ProtocolError : uint8_t {
  kWrongPort,      // TLS on the plain port, plain RTMP on the TLS port
  kTlsHandshake,   // the TLS handshake failed
  kRtmpHandshake,  // C0/C1/C2 were not RTMP
  kLimit,          // a message, the partial bytes or unapproved media over a cap
  kOutOfOrder,     // a command where it can't come (publish before connect, ...)
  kMalformed,      // a chunk, control message or AMF0 command that does not parse
  kProxyProtocol,  // --proxy-protocol: no valid PROXY header, or one from an untrusted source
};
inline constexpr size_t kProtocolErrorKinds = 7;
// The label value: "wrong_port", "tls_handshake", ...
std::string_view ProtocolErrorName(ProtocolError kind);
// The label value of a publish refusal: "invalid_name", "name_taken", "banned",
// "no_room", "denied".
std::string_view RefusalName(rtmp::Session::Refusal kind);

// One HTTP hook (--on-publish, --on-publish-done): calls by outcome and their latency.
struct HookMetrics {
  // Upper bounds, seconds, of the latency histogram's buckets (+Inf is implied).
  static constexpr std::array<double, 11> kBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                      0.5,   1,    2.5,   5,    10};
  Counter ok{0};                                       // a 2xx answer
  Counter refused{0};                                  // another status
  Counter failed{0};                                   // no answer: connection error or timeout
  std::array<Counter, kBuckets.size() + 1> buckets{};  // not cumulative; last: +Inf
  Counter latency_us{0};                               // sum, microseconds

  // Counts one call that took `seconds`; `status` is the HTTP status, 0 for none.
  void Observe(double seconds, long status);
};

struct alignas(64) ShardMetrics {
  Counter connections{0};       // open now (a gauge)
  Counter accepted{0};          // connections adopted since start
  Counter bytes_received{0};    // from the sockets, TLS records included
  Counter buffer_shortages{0};  // times the loop ran out of receive buffers
};

struct ServerMetrics {
  explicit ServerMetrics(uint32_t shards)
      : shard_count(shards), shard_metrics(std::make_unique<ShardMetrics[]>(shards)) {}

  static void Add(Counter& c, uint64_t n = 1) { c.fetch_add(n, std::memory_order_relaxed); }
  static uint64_t Get(const Counter& c) { return c.load(std::memory_order_relaxed); }
  ShardMetrics& shard(uint32_t k) { return shard_metrics[k]; }
  const ShardMetrics& shard(uint32_t k) const { return shard_metrics[k]; }

  const uint32_t shard_count;
  std::unique_ptr<ShardMetrics[]> shard_metrics;

  Counter connections_refused{0};  // over --max-connections or --max-connections-per-ip
  Counter publishes{0};            // publishes that started
  std::array<Counter, rtmp::Session::kRefusalKinds> publishes_refused{};
  Counter handshake_timeouts{0};
  Counter publish_timeouts{0};
  Counter idle_timeouts{0};
  std::array<Counter, kProtocolErrorKinds> protocol_errors{};
  Counter tls_handshakes{0};  // RTMPS handshakes completed
  Counter kicks{0};           // publishers ended through the HTTP API
  // --proxy-protocol: headers taken, by version (v1, v2), and v2 LOCAL commands (a
  // balancer's health checks), closed quietly.
  std::array<Counter, 2> proxy_headers{};
  Counter proxy_local{0};
  // Draining (POST /v1/drain, SIGUSR1): whether one runs (a gauge, 0 or 1), when it
  // began (Unix seconds), the reconnect requests sent, and the connections closed at
  // --drain-timeout.
  Counter draining{0};
  Counter drain_started_s{0};
  Counter drain_reconnect_requests{0};
  Counter drain_timeouts{0};
  HookMetrics on_publish;
  HookMetrics on_publish_done;
  Counter publish_done_dropped{0};  // notifications given up (queue full, or retries spent)
};

}  // namespace uringest::engine

#endif  // URINGEST_ENGINE_SERVER_METRICS_H_
