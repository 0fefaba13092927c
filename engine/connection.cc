#include "engine/connection.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace uringest::engine {
namespace {

// A send buffer larger than this is freed once it has been sent.
constexpr size_t kRetainedSendBuffer = 256;

}  // namespace

std::string PeerAddress::ToString() const {
  if (ip == "?") return ip;
  return ip.find(':') != std::string::npos ? absl::StrCat("[", ip, "]:", port)
                                           : absl::StrCat(ip, ":", port);
}

PeerAddress PeerOf(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {.ip = "?"};
  char ip[INET6_ADDRSTRLEN] = "?";
  if (ss.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
    return {.ip = ip, .port = ntohs(in->sin_port)};
  }
  const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
  inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
  return {.ip = ip, .port = ntohs(in6->sin6_port)};
}

Connection::Connection(ConnectionId id, uint64_t serial, PeerAddress peer,
                       const rtmp::ServerConnectionOptions& options, StreamRegistry* registry,
                       uint32_t shard, ringbuf::ShardWriter* ring, int64_t now_ms,
                       bool server_has_tls, const AccessControl* access,
                       const ApprovalPoster* poster, ServerMetrics* metrics, bool proxy_protocol)
    : id_(id),
      serial_(serial),
      address_(std::move(peer)),
      peer_(address_.ToString()),
      accepted_ms_(now_ms),
      last_activity_ms_(now_ms),
      server_has_tls_(server_has_tls),
      awaiting_proxy_(proxy_protocol),
      names_(registry, Publisher{.shard = shard, .connection = serial}),
      sink_(ring, peer_, address_.ip, address_.port, access != nullptr ? access->hook() : nullptr,
            metrics != nullptr ? &metrics->publishes : nullptr),
      auth_(access, poster, Publisher{.shard = shard, .connection = serial}, address_.ip,
            address_.port),
      rtmp_(options, &sink_, &names_, access != nullptr ? &auth_ : nullptr) {}

std::string Connection::Describe(int64_t now_ms) const {
  return absl::StrFormat("%u bytes in %.1f s, %u frames", bytes_in_,
                         (now_ms - accepted_ms_) / 1000.0, sink_.counters().frames);
}

// The session takes the certificate in force now: a reload (SIGHUP) changes it for the
// connections that come after.
absl::Status Connection::StartTls(std::shared_ptr<const TlsContext> context) {
  absl::StatusOr<std::unique_ptr<TlsSession>> session = TlsSession::Create(std::move(context));
  if (!session.ok()) return session.status();
  tls_ = *std::move(session);
  return absl::OkStatus();
}

// The first byte tells a TLS ClientHello (a handshake record, 0x16) from RTMP's C0 (the
// version, 0x03): a client on the wrong port gets one clear line instead of a parse error.
std::string Connection::WrongPort(uint8_t first_byte) const {
  if (tls_ == nullptr && first_byte == kTlsHandshakeRecord) {
    return server_has_tls_
               ? "TLS client on the plain RTMP port (rtmps:// goes to the --tls-listen port)"
               : "TLS client on the plain RTMP port (this server has no RTMPS: --tls-listen)";
  }
  if (tls_ != nullptr && first_byte != kTlsHandshakeRecord) {
    return absl::StrFormat(
        "plain RTMP on the TLS port (first byte 0x%02x, not a TLS handshake; rtmp:// goes to "
        "the --listen port)",
        first_byte);
  }
  return {};
}

// On RTMPS every whole record that arrived is decrypted into the RTMP core; what is left
// in the session is at most one partial record.
absl::Status Connection::Receive(std::span<const uint8_t> bytes, bool more_queued, int64_t now_ms,
                                 std::span<uint8_t> tls_scratch) {
  last_activity_ms_ = now_ms;
  bytes_in_ += bytes.size();
  if (!port_checked_ && !bytes.empty()) {
    port_checked_ = true;
    if (std::string wrong = WrongPort(bytes[0]); !wrong.empty()) {
      wrong_port_ = true;
      return absl::InvalidArgumentError(wrong);
    }
  }
  absl::Status s = ReceiveAfterProxyHeader(bytes, more_queued, tls_scratch);
  // `bytes` may have been the rest of a PROXY header's copy: taken, so freed.
  if (!proxy_bytes_.empty()) std::vector<uint8_t>().swap(proxy_bytes_);
  return s;
}

absl::Status Connection::ReceiveAfterProxyHeader(std::span<const uint8_t> bytes, bool more_queued,
                                                 std::span<uint8_t> tls_scratch) {
  if (tls_ == nullptr) return rtmp_.Receive(bytes, more_queued);
  tls_->Feed(bytes);
  for (;;) {
    absl::StatusOr<size_t> n = tls_->Read(tls_scratch);
    if (!n.ok() || *n == 0) return n.status();
    const bool more = more_queued || *n == tls_scratch.size();
    if (absl::Status s = rtmp_.Receive(tls_scratch.first(*n), more); !s.ok()) return s;
  }
}

// The header usually comes whole in the first segment and is parsed where it lies; only
// one split across segments is copied. The copy stays bounded: the parser refuses a
// header longer than kMaxProxyHeader as soon as it can tell, so what is kept before a
// segment is appended is shorter than that.
absl::StatusOr<Connection::ProxyOutcome> Connection::ReceiveProxyHeader(
    std::span<const uint8_t> bytes, int64_t now_ms) {
  last_activity_ms_ = now_ms;
  bytes_in_ += bytes.size();
  std::span<const uint8_t> data = bytes;
  if (!proxy_bytes_.empty()) {
    proxy_bytes_.insert(proxy_bytes_.end(), bytes.begin(), bytes.end());
    data = proxy_bytes_;
  }
  ProxyParse parse = ParseProxyHeader(data);
  if (parse.result == ProxyParse::Result::kError) {
    return absl::InvalidArgumentError(std::move(parse.error));
  }
  if (parse.result == ProxyParse::Result::kIncomplete) {
    if (proxy_bytes_.empty()) proxy_bytes_.assign(bytes.begin(), bytes.end());
    return ProxyOutcome{};
  }
  awaiting_proxy_ = false;
  if (parse.header.has_address && !parse.header.local) {
    balancer_ = peer_;
    address_ = PeerAddress{.ip = parse.header.source_ip, .port = parse.header.source_port};
    peer_ = address_.ToString();
    sink_.set_peer(peer_, address_.ip, address_.port);
    auth_.set_address(address_.ip, address_.port);
  }
  ProxyOutcome outcome{.complete = true,
                       .local = parse.header.local,
                       .version = parse.header.version,
                       .rest = data.subspan(parse.length)};
  bytes_in_ -= outcome.rest.size();  // Receive() counts them
  // Receive() frees the copy once it has taken the rest.
  if (outcome.rest.empty()) std::vector<uint8_t>().swap(proxy_bytes_);
  return outcome;
}

bool Connection::RequestReconnect(std::string_view tc_url, std::string_view description) {
  if (asked_to_reconnect_ || closing_ || flush_then_close_) return false;
  if (!rtmp_.RequestReconnect(tc_url, description)) return false;
  asked_to_reconnect_ = true;
  return true;
}

size_t Connection::QueuedOutput() const {
  return rtmp_.output().size() + (tls_ != nullptr ? tls_->pending_output() : 0);
}

absl::StatusOr<std::span<const uint8_t>> Connection::NextSend() {
  sending_.clear();
  std::span<const uint8_t> out = rtmp_.output();
  if (tls_ == nullptr) {
    sending_.assign(out.begin(), out.end());
    rtmp_.TakeOutput(out.size());
  } else {
    if (!out.empty() && tls_->handshake_done()) {
      if (absl::Status s = tls_->Write(out); !s.ok()) return s;
      rtmp_.TakeOutput(out.size());
    }
    if (flush_then_close_) tls_->Shutdown();
    tls_->TakeOutput(&sending_);
  }
  if (sending_.empty()) {
    // Nothing left to send: an idle connection keeps no send buffer (the handshake's
    // 3 KiB, the connect responses), only a small one for acks and pings.
    if (sending_.capacity() > kRetainedSendBuffer) std::vector<uint8_t>().swap(sending_);
    return std::span<const uint8_t>();
  }
  send_offset_ = 0;
  send_in_flight_ = true;
  return std::span<const uint8_t>(sending_);
}

std::span<const uint8_t> Connection::Sent(size_t n) {
  send_offset_ += n;
  if (send_offset_ < sending_.size())
    return std::span<const uint8_t>(sending_).subspan(send_offset_);
  send_in_flight_ = false;
  return {};
}

bool Connection::TakeTlsHandshakeDone() {
  if (tls_counted_ || tls_ == nullptr || !tls_->handshake_done()) return false;
  tls_counted_ = true;
  return true;
}

std::optional<ProtocolError> Connection::ErrorKind(const absl::Status& error) const {
  if (absl::IsPermissionDenied(error)) return std::nullopt;
  if (wrong_port_) return ProtocolError::kWrongPort;
  if (tls_ != nullptr && !tls_->handshake_done()) return ProtocolError::kTlsHandshake;
  if (!rtmp_.handshake_complete()) return ProtocolError::kRtmpHandshake;
  if (absl::IsResourceExhausted(error)) return ProtocolError::kLimit;
  if (absl::IsFailedPrecondition(error)) return ProtocolError::kOutOfOrder;
  return ProtocolError::kMalformed;
}

void Connection::CloseAfterFlush(std::string_view reason, std::string_view end) {
  flush_then_close_ = true;
  close_reason_ = std::string(reason);
  sink_.set_end_reason(end);
  rtmp_.Close();
}

void Connection::Close(std::string_view end) {
  flush_then_close_ = false;
  closing_ = true;
  sink_.set_end_reason(end);
  rtmp_.Close();
}

void Connection::Kick(std::string_view notice, std::string_view end) {
  flush_then_close_ = true;
  close_reason_ = std::string(notice);
  sink_.set_end_reason(end);
  rtmp_.Close(notice);
}

}  // namespace uringest::engine
