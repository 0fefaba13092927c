// connection.h: one publisher's connection on its shard: the RTMP core, the frame sink
// into the ring, the name claims, the bytes on their way in and out, and on the RTMPS
// port its TLS session. Its shard drives it: it hands it what the socket received, sends
// what NextSend() gives, and decides when to close it.
//
//   Connection c(id, serial, PeerOf(fd), options, registry, shard, ring, now_ms);
//   if (absl::Status s = c.Receive(bytes, more_queued, now_ms, scratch); !s.ok()) ...
//   absl::StatusOr<std::span<const uint8_t>> out = c.NextSend();   // then loop->Send(*out)
//   std::span<const uint8_t> rest = c.Sent(result);                // after the send
//
// Thread safety: its shard's thread only.

#ifndef URINGEST_ENGINE_CONNECTION_H_
#define URINGEST_ENGINE_CONNECTION_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/access_control.h"
#include "engine/event_loop.h"
#include "engine/proxy_protocol.h"
#include "engine/ring_frame_sink.h"
#include "engine/rtmp/server_connection.h"
#include "engine/server_metrics.h"
#include "engine/stream_registry.h"
#include "engine/tls.h"

namespace uringest::engine {

// A connected socket's peer.
struct PeerAddress {
  std::string ip;  // "192.0.2.7" or "2001:db8::7"; "?" if unknown
  uint16_t port = 0;

  std::string ToString() const;  // "ip:port", "[ip]:port" for IPv6
};

// The peer of connected socket `fd`.
PeerAddress PeerOf(int fd);

// Why a connection's publishes end: the `reason` of --on-publish-done (static strings).
// A publisher that ends its stream itself (FCUnpublish, deleteStream, closeStream)
// gives "unpublish".
namespace end_reason {
inline constexpr std::string_view kDisconnect = "disconnect";  // the peer closed or reset
inline constexpr std::string_view kIdleTimeout = "idle_timeout";
inline constexpr std::string_view kKick = "kick";
inline constexpr std::string_view kTakeover = "takeover";
inline constexpr std::string_view kShutdown = "shutdown";
inline constexpr std::string_view kError = "error";  // a protocol error, a failed send
inline constexpr std::string_view kDrain = "drain";  // closed at --drain-timeout
}  // namespace end_reason

class Connection {
 public:
  // `server_has_tls`: the server listens for RTMPS too (for the wrong-port message).
  // `proxy_protocol`: the connection begins with a PROXY protocol header, and `peer` is
  // the balancer's address until it has come.
  Connection(ConnectionId id, uint64_t serial, PeerAddress peer,
             const rtmp::ServerConnectionOptions& options, StreamRegistry* registry, uint32_t shard,
             ringbuf::ShardWriter* ring, int64_t now_ms, bool server_has_tls = false,
             const AccessControl* access = nullptr, const ApprovalPoster* poster = nullptr,
             ServerMetrics* metrics = nullptr, bool proxy_protocol = false);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  ConnectionId id() const { return id_; }
  uint64_t serial() const { return serial_; }  // unique for the server's life; names it in logs
  const std::string& address() const { return address_.ip; }  // for the per-address cap
  const std::string& peer() const { return peer_; }           // "ip:port", for logs
  // Counted in the connection caps (ConnectionLimits::Admit): from accept, or with
  // --proxy-protocol once the header named the publisher.
  bool admitted() const { return admitted_; }
  void set_admitted() { admitted_ = true; }
  int64_t accepted_ms() const { return accepted_ms_; }
  int64_t last_activity_ms() const { return last_activity_ms_; }
  uint64_t bytes_in() const { return bytes_in_; }
  // "N bytes in S s, F frames": its life so far, for the line that says it closed.
  std::string Describe(int64_t now_ms) const;

  rtmp::ServerConnection& rtmp() { return rtmp_; }
  const rtmp::ServerConnection& rtmp() const { return rtmp_; }
  bool has_published() const { return sink_.has_published(); }

  // ---- RTMPS ----
  // Makes this a TLS connection (accepted on the RTMPS port), with `context`'s
  // certificate. What arrives is decrypted before the RTMP core sees it, and what the
  // core queues is encrypted on its way out.
  absl::Status StartTls(std::shared_ptr<const TlsContext> context);
  bool tls() const { return tls_ != nullptr; }
  // The peer ended TLS in order (close_notify).
  bool peer_closed_tls() const { return tls_ != nullptr && tls_->peer_closed(); }
  // A close the server makes in order still owes a close_notify.
  bool OwesCloseNotify() const { return tls_ != nullptr && tls_->can_shut_down(); }
  // True once, when the TLS handshake has completed (for the metrics).
  bool TakeTlsHandshakeDone();

  // What kind of protocol error `error`, returned by Receive(), is (for the metrics);
  // nullopt for a publish the key file or hook refused, which is no protocol error.
  std::optional<ProtocolError> ErrorKind(const absl::Status& error) const;

  // ---- PROXY protocol (--proxy-protocol) ----
  // Until the header has come, what arrives goes to ReceiveProxyHeader(), not Receive().
  bool awaiting_proxy_header() const { return awaiting_proxy_; }
  struct ProxyOutcome {
    bool complete = false;  // false: more bytes are needed
    bool local = false;     // a v2 LOCAL command: a balancer's health check
    int version = 0;        // 1 or 2
    // The application's bytes that came after the header: for Receive(). Valid until
    // the next call.
    std::span<const uint8_t> rest;
  };
  // Takes what arrived while the header is incomplete (at most kMaxProxyHeader bytes are
  // kept). Once it is complete, the header's source address is the peer everywhere
  // (logs, the caps, the hooks, the ring) and balancer() the socket's own peer. An error
  // says why there is no valid header.
  absl::StatusOr<ProxyOutcome> ReceiveProxyHeader(std::span<const uint8_t> bytes, int64_t now_ms);
  // The balancer's "ip:port" once a header has come; "" without one.
  const std::string& balancer() const { return balancer_; }

  // ---- Drain ----
  // Asks the publisher to reconnect (Session::RequestReconnect), once; false when it
  // can't (no Reconnect capability, not connected) or was asked before.
  bool RequestReconnect(std::string_view tc_url, std::string_view description);
  bool asked_to_reconnect() const { return asked_to_reconnect_; }

  // ---- Receiving ----
  // Hands `bytes`, as received, to the RTMP core (on RTMPS decrypted first, each record
  // into `tls_scratch`, which must hold the largest record's plaintext). `more_queued`:
  // more received bytes follow at once. An error ends the connection: the peer broke the
  // protocol, or its first byte says it came to the wrong port (a TLS ClientHello on the
  // plain port, plain RTMP on the TLS port).
  absl::Status Receive(std::span<const uint8_t> bytes, bool more_queued, int64_t now_ms,
                       std::span<uint8_t> tls_scratch);

  // ---- Sending: one send in flight at a time ----
  // Bytes waiting to be sent: the core's output and (RTMPS) the TLS session's.
  size_t QueuedOutput() const;
  bool send_in_flight() const { return send_in_flight_; }
  // Takes what is queued (through TLS on RTMPS, with a close_notify after it once the
  // connection is closing in order) as the next send, and returns it; empty when there is
  // nothing to send, and then an idle connection keeps no send buffer. The span is valid
  // until the next NextSend(). REQUIRES: !send_in_flight().
  absl::StatusOr<std::span<const uint8_t>> NextSend();
  // After a send of `n` bytes of it: what is left of it to send, empty once it is all out
  // (then no send is in flight).
  std::span<const uint8_t> Sent(size_t n);
  // A send failed: none is in flight any more.
  void SendFailed() { send_in_flight_ = false; }

  // ---- Closing ----
  // closing(): the socket is being closed. flushing(): it closes once what is queued (an
  // _error, a close_notify) is out, for `close_reason()`.
  bool closing() const { return closing_; }
  bool flushing() const { return flush_then_close_; }
  const std::string& close_reason() const { return close_reason_; }
  // Ends the RTMP session (its streams end, for `end`: an end_reason) and closes once
  // the queued bytes are out.
  void CloseAfterFlush(std::string_view reason, std::string_view end);
  // Ends the RTMP session (for `end`); the caller closes the socket. Cancels a
  // CloseAfterFlush().
  void Close(std::string_view end);
  // The server ends the publish (the HTTP API's kick, a drain's timeout): each stream is
  // told, with onStatus NetStream.Unpublish.Success, and the connection closes once that
  // is sent; its streams end for `end`.
  void Kick(std::string_view notice, std::string_view end = end_reason::kKick);

 private:
  const ConnectionId id_;
  const uint64_t serial_;
  PeerAddress address_;  // the publisher's; the balancer's until a PROXY header came
  std::string peer_;
  const int64_t accepted_ms_;
  int64_t last_activity_ms_;
  uint64_t bytes_in_ = 0;

  std::string WrongPort(uint8_t first_byte) const;
  absl::Status ReceiveAfterProxyHeader(std::span<const uint8_t> bytes, bool more_queued,
                                       std::span<uint8_t> tls_scratch);

  const bool server_has_tls_;
  std::unique_ptr<TlsSession> tls_;  // nullptr on the plain port

  // The bytes in flight: a copy of what the RTMP core queued (encrypted, with TLS), so
  // that the core can queue more while the kernel sends these.
  std::vector<uint8_t> sending_;
  size_t send_offset_ = 0;
  bool send_in_flight_ = false;
  bool closing_ = false;
  bool flush_then_close_ = false;
  bool wrong_port_ = false;
  bool tls_counted_ = false;
  bool port_checked_ = false;  // the first application byte was looked at (WrongPort)
  bool admitted_ = false;
  bool awaiting_proxy_ = false;
  bool asked_to_reconnect_ = false;
  std::vector<uint8_t> proxy_bytes_;  // a PROXY header that came in pieces, so far
  std::string balancer_;
  std::string close_reason_;

  ConnectionNames names_;
  RingFrameSink sink_;
  ConnectionAuthorizer auth_;    // used only when the server has access control
  rtmp::ServerConnection rtmp_;  // last: it refers to sink_, names_ and auth_
};

}  // namespace uringest::engine

#endif  // URINGEST_ENGINE_CONNECTION_H_
