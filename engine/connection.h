// connection.h: one publisher's connection on its shard: the socket, the RTMP core, the
// frame sink into the ring, the name claims, the bytes on their way out, and on the
// RTMPS port its TLS session.
//
// Thread safety: its shard's thread only.

#ifndef URINGEST_ENGINE_CONNECTION_H_
#define URINGEST_ENGINE_CONNECTION_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/access_control.h"
#include "engine/event_loop.h"
#include "engine/ring_frame_sink.h"
#include "engine/rtmp/server_connection.h"
#include "engine/stream_registry.h"
#include "engine/tls.h"

namespace uringest::engine {

class Connection {
 public:
  Connection(ConnectionId id, uint64_t serial, std::string address, std::string peer,
             const rtmp::ServerConnectionOptions& options, StreamRegistry* registry, uint32_t shard,
             ringbuf::ShardWriter* ring, int64_t now_ms, const AccessControl* access = nullptr,
             const ApprovalPoster* poster = nullptr)
      : id(id),
        serial(serial),
        address(std::move(address)),
        peer(std::move(peer)),
        accepted_ms(now_ms),
        last_activity_ms(now_ms),
        names(registry, Publisher{.shard = shard, .connection = serial}),
        sink(ring, this->peer),
        auth(access, poster, Publisher{.shard = shard, .connection = serial}, this->address,
             PortOf(this->peer)),
        rtmp(options, &sink, &names, access != nullptr ? &auth : nullptr) {}
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  const ConnectionId id;
  const uint64_t serial;      // unique for the server's life; names it in logs
  const std::string address;  // the peer's IP, for the per-address cap
  const std::string peer;     // "ip:port"
  const int64_t accepted_ms;
  int64_t last_activity_ms;
  uint64_t bytes_in = 0;

  // RTMPS (accepted on --tls-listen): what arrives is decrypted before the RTMP core sees
  // it, and what the core queues is encrypted into `sending`. nullptr on the plain port.
  std::unique_ptr<TlsSession> tls;

  // The bytes in flight: a copy of what the RTMP core queued (encrypted, with TLS), so
  // that the core can queue more while the kernel sends these.
  std::vector<uint8_t> sending;
  size_t send_offset = 0;
  bool send_in_flight = false;
  bool closing = false;            // Close() was called on the loop
  bool close_after_flush = false;  // close once `sending` and the core's output are out
  std::string close_reason;

  ConnectionNames names;
  RingFrameSink sink;
  ConnectionAuthorizer auth;    // used only when the server has access control
  rtmp::ServerConnection rtmp;  // last: it refers to sink, names and auth

 private:
  // The port of "ip:port" or "[ip]:port"; 0 if there is none.
  static uint16_t PortOf(const std::string& peer) {
    const size_t colon = peer.rfind(':');
    uint32_t port = 0;
    for (size_t i = colon + 1; colon != std::string::npos && i < peer.size(); ++i) {
      port = port * 10 + uint32_t(peer[i] - '0');
    }
    return port <= 65535 ? uint16_t(port) : 0;
  }
};

}  // namespace uringest::engine

#endif  // URINGEST_ENGINE_CONNECTION_H_
