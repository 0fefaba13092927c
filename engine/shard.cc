#include "engine/shard.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/connection.h"
#include "engine/connection_limits.h"
#include "engine/epoll_loop.h"
#include "engine/status_text.h"
#include "engine/uring_loop.h"
#include "ringbuf/clock.h"
#include "spdlog/spdlog.h"

namespace uringest::engine {
namespace {

// A shard that ran or waited for a CPU this share of a second is saturated.
constexpr double kSaturated = 0.95;
constexpr size_t kMaxQueuedOutput = 1 << 20;

int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

// Where a drained publisher of `app` is sent: --drain-redirect as given when it names an
// app (rtmp://host:port/app), else with the publisher's own app appended; "" (the same
// address) without one.
std::string RedirectUrl(std::string_view redirect, std::string_view app) {
  if (redirect.empty()) return {};
  const size_t scheme = redirect.find("://");
  const size_t path = redirect.find('/', scheme == std::string_view::npos ? 0 : scheme + 3);
  if (path != std::string_view::npos && path + 1 < redirect.size()) return std::string(redirect);
  if (path != std::string_view::npos) redirect.remove_suffix(1);
  return absl::StrCat(std::string(redirect), "/", std::string(app));
}

}  // namespace

Shard::Shard(uint32_t index, ShardContext* context, ringbuf::ShardWriter* ring, int listen_fd,
             int tls_listen_fd)
    : index_(index),
      context_(context),
      ring_(ring),
      listen_fd_(listen_fd),
      tls_listen_fd_(tls_listen_fd),
      connection_options_(context->options->connection) {
  connection_options_.reader.allocator = &slab_;
  slab_.set_budget(context->options->max_assembly_memory);
  if (context->tls != nullptr) tls_plain_.resize(kTlsMaxRecordPlaintext);
}

Shard::~Shard() {
  Join();
  internal::MutexLock lock(&inbox_mu_);
  for (const Accepted& a : inbox_.fds) close(a.fd);  // handed over after this shard stopped
}

absl::Status Shard::Start() {
  thread_ = std::thread([this] { ThreadMain(); });
  started_.wait();
  return start_status_;
}

void Shard::Join() {
  if (thread_.joinable()) thread_.join();
}

// The loop is created on the shard's own thread: an io_uring set up with SINGLE_ISSUER
// belongs to the thread that created it.
absl::Status Shard::CreateLoop() {
  const ServerOptions& options = *context_->options;
  if (options.pin_cpus) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(index_ % std::thread::hardware_concurrency(), &set);
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
  }
  absl::StatusOr<std::unique_ptr<EventLoop>> loop =
      context_->io_uring != nullptr ? CreateUringLoop(options.loop, *context_->io_uring)
                                    : CreateEpollLoop(options.loop);
  if (!loop.ok()) return loop.status();
  loop_ = std::move(*loop);
  return absl::OkStatus();
}

void Shard::ThreadMain() {
  pthread_setname_np(pthread_self(), absl::StrCat("shard-", index_).c_str());
  start_status_ = CreateLoop();
  thread_load_ = std::make_unique<ThreadLoad>();
  const bool ok = start_status_.ok();
  running_.store(ok, std::memory_order_release);
  started_.count_down();
  if (!ok) {
    finished_.store(true, std::memory_order_release);
    return;
  }
  loop_->Run(this);
  // Stopped: whatever is left (a grace period ran out) is torn down without ceremony.
  for (auto& c : connections_) {
    if (c != nullptr && !c->closing() && c->admitted()) context_->limits->Leave(c->address());
  }
  connections_.clear();
  live_ = 0;
  connection_count_.store(0, std::memory_order_relaxed);
  PublishMetrics();
  finished_.store(true, std::memory_order_release);
  // The loop stays until the Shard is destroyed: another shard may still Wake() it.
}

void Shard::PostListen() {
  {
    internal::MutexLock lock(&inbox_mu_);
    inbox_.listen = true;
  }
  Wake();
}

// loop_ is set before Start() returns and stays until the destructor; a shard that
// failed to start has none, and nothing to wake.
void Shard::Wake() {
  if (running_.load(std::memory_order_acquire)) loop_->Wake();
}

void Shard::PostConnection(int fd, bool tls) {
  fresh_.fetch_add(1, std::memory_order_relaxed);
  {
    internal::MutexLock lock(&inbox_mu_);
    inbox_.fds.push_back(Accepted{.fd = fd, .tls = tls});
  }
  Wake();
}

void Shard::PostEviction(uint64_t serial) {
  {
    internal::MutexLock lock(&inbox_mu_);
    inbox_.evictions.push_back(serial);
  }
  Wake();
}

void Shard::PostKick(uint64_t serial, std::string notice) {
  {
    internal::MutexLock lock(&inbox_mu_);
    inbox_.kicks.emplace_back(serial, std::move(notice));
  }
  Wake();
}

void Shard::PostDrain() {
  {
    internal::MutexLock lock(&inbox_mu_);
    inbox_.drain = true;
  }
  Wake();
}

void Shard::PostApproval(Approval&& approval) {
  {
    internal::MutexLock lock(&inbox_mu_);
    inbox_.approvals.push_back(std::move(approval));
  }
  Wake();
}

void Shard::PostShutdown() {
  {
    internal::MutexLock lock(&inbox_mu_);
    inbox_.shutdown = true;
  }
  Wake();
}

void Shard::OnWake() {
  Inbox inbox;
  {
    internal::MutexLock lock(&inbox_mu_);
    std::swap(inbox, inbox_);
  }
  if (inbox.listen && !shutting_down_ && !draining_) {
    if (listen_fd_ >= 0) Listen(listen_fd_, /*tls=*/false);
    if (tls_listen_fd_ >= 0) Listen(tls_listen_fd_, /*tls=*/true);
  }
  for (const Accepted& a : inbox.fds) Adopt(a.fd, a.tls);
  for (uint64_t serial : inbox.evictions) {
    if (Connection* c = FindBySerial(serial); c != nullptr) {
      CloseConnection(*c, end_reason::kTakeover,
                      "a new publisher took its stream over (--on-duplicate=takeover)");
    }
  }
  for (auto& [serial, notice] : inbox.kicks) {
    Connection* c = FindBySerial(serial);
    if (c == nullptr || c->flushing()) continue;
    spdlog::info("conn {} {}: {}", c->serial(), c->peer(), notice);
    Count(&ServerMetrics::kicks);
    c->Kick(notice);
    Flush(*c);
  }
  for (const Approval& approval : inbox.approvals) Approve(approval);
  if (inbox.drain && !draining_ && !shutting_down_) BeginDrain();
  if (inbox.shutdown && !shutting_down_) BeginShutdown();
}

// The loop numbers listeners in the order of Listen(): listener_is_tls_ keeps that order.
void Shard::Listen(int fd, bool tls) {
  if (absl::Status s = loop_->Listen(fd); !s.ok()) {
    spdlog::critical("shard {}: listening: {}", index_, StatusText(s));
    std::abort();  // can't happen with the loops we have: Listen only arms a request
  }
  listener_is_tls_.push_back(tls);
}

// A linear scan: evictions and approvals are rare control-plane events.
Connection* Shard::FindBySerial(uint64_t serial) {
  for (auto& c : connections_) {
    if (c != nullptr && c->serial() == serial && !c->closing()) return c.get();
  }
  return nullptr;
}

// A connection that went away meanwhile has nothing left to approve.
void Shard::Approve(const Approval& approval) {
  Connection* c = FindBySerial(approval.connection);
  if (c == nullptr || c->flushing()) return;
  absl::Status status = c->rtmp().CompleteApproval(approval.stream_id, approval.ticket,
                                                   approval.allowed, approval.reason);
  LogSessionNotices(*c);
  if (!status.ok()) {
    CloseConnection(*c, end_reason::kError, StatusText(status), /*flush_first=*/true);
    return;
  }
  Flush(*c);
}

// What the session noticed and the log should say. Refused publishes (BadName) leave the
// connection open for another try: one line per batch of them, so a peer that retries in
// a loop can't flood the log. Media on a message stream the peer never created, taken as
// the publishing stream's: once per connection.
void Shard::LogSessionNotices(Connection& c) {
  if (std::string remap = c.rtmp().TakeRemapNotice(); !remap.empty()) {
    spdlog::warn("conn {} {}: {}", c.serial(), c.peer(), remap);
  }
  const rtmp::Session::Refusals refusals = c.rtmp().TakeRefusals();
  CountRefusals(refusals);
  if (refusals.count == 0) return;
  if (refusals.count == 1) {
    spdlog::warn("conn {} {}: publish refused: {}", c.serial(), c.peer(), refusals.last);
  } else {
    spdlog::warn("conn {} {}: {} publishes refused, the last: {}", c.serial(), c.peer(),
                 refusals.count, refusals.last);
  }
}

void Shard::OnAccept(int fd, uint32_t listener) {
  if (shutting_down_ || draining_) {
    close(fd);
    return;
  }
  const bool tls = listener < listener_is_tls_.size() && listener_is_tls_[listener];
  if (context_->pick_shard) {
    const uint32_t target = context_->pick_shard();
    if (target != index_) {
      context_->hand_over(target, fd, tls);
      return;
    }
    fresh_.fetch_add(1, std::memory_order_relaxed);
  }
  Adopt(fd, tls);
}

// With --proxy-protocol the caps count a connection once its header has named the
// publisher (Admit()); until then the handshake timeout bounds it.
void Shard::Adopt(int fd, bool tls) {
  PeerAddress peer = PeerOf(fd);
  if (shutting_down_ || draining_) {
    close(fd);
    return;
  }
  const bool proxy = context_->options->proxy_protocol;
  if (proxy && context_->trusted_proxies != nullptr &&
      !context_->trusted_proxies->Contains(peer.ip)) {
    spdlog::warn(
        "{}: connection refused: PROXY protocol headers are taken only from "
        "--trusted-proxies, and {} is not one",
        peer.ToString(), peer.ip);
    if (context_->metrics != nullptr) {
      ServerMetrics::Add(context_->metrics->protocol_errors[size_t(ProtocolError::kProxyProtocol)]);
    }
    close(fd);
    return;
  }
  if (!proxy) {
    if (std::string refused = context_->limits->Admit(peer.ip); !refused.empty()) {
      spdlog::warn("{}: connection refused: {}", peer.ToString(), refused);
      Count(&ServerMetrics::connections_refused);
      close(fd);
      return;
    }
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  ConnectionId id;
  if (free_ids_.empty()) {
    id = ConnectionId(connections_.size());
    connections_.emplace_back();
  } else {
    id = free_ids_.back();
    free_ids_.pop_back();
  }
  const uint64_t serial = context_->next_serial->fetch_add(1, std::memory_order_relaxed);
  connections_[id] = std::make_unique<Connection>(
      id, serial, std::move(peer), connection_options_, context_->registry, index_, ring_, NowMs(),
      context_->tls != nullptr, context_->access, &context_->post_approval, context_->metrics,
      proxy);
  Connection& c = *connections_[id];
  if (!proxy) c.set_admitted();
  ++live_;
  connection_count_.store(live_, std::memory_order_relaxed);
  if (context_->metrics != nullptr) ServerMetrics::Add(context_->metrics->shard(index_).accepted);
  spdlog::info("conn {} {}: accepted on shard {}{}{}", serial, c.peer(), index_,
               tls ? " (RTMPS)" : "", proxy ? ", waiting for its PROXY protocol header" : "");
  loop_->Receive(id, fd);
  if (tls) {
    absl::Status s = context_->tls != nullptr
                         ? c.StartTls(context_->tls->Current())
                         : absl::InternalError("RTMPS connection without --tls-cert");
    if (!s.ok()) CloseConnection(c, end_reason::kError, StatusText(s));
  }
}

void Shard::OnReceive(ConnectionId id, std::span<const uint8_t> bytes, bool more_queued) {
  Connection& c = *connections_[id];
  if (c.flushing()) return;  // a protocol error already ended it
  bytes_in_ += bytes.size();
  if (c.awaiting_proxy_header() && (!TakeProxyHeader(c, &bytes) || bytes.empty())) return;
  absl::Status status = c.Receive(bytes, more_queued, NowMs(), std::span(tls_plain_));
  LogSessionNotices(c);
  if (c.TakeTlsHandshakeDone()) Count(&ServerMetrics::tls_handshakes);
  if (!status.ok()) {
    if (std::optional<ProtocolError> kind = c.ErrorKind(status);
        kind.has_value() && context_->metrics != nullptr) {
      ServerMetrics::Add(context_->metrics->protocol_errors[size_t(*kind)]);
    }
    CloseConnection(c, end_reason::kError, StatusText(status), /*flush_first=*/true);
    return;
  }
  if (c.peer_closed_tls()) {
    // The publisher ended TLS in order; the reply's close_notify goes out first.
    CloseConnection(c, end_reason::kDisconnect, "closed by the peer (TLS close_notify)",
                    /*flush_first=*/true);
    return;
  }
  if (const size_t queued = c.QueuedOutput(); queued > kMaxQueuedOutput) {
    // The server sends a publisher little; a peer that makes it queue more than this
    // (pings, unknown commands) while not reading is closed before it costs memory.
    CloseConnection(
        c, end_reason::kError,
        absl::StrCat("the peer does not read what it asks for (", queued, " bytes queued)"));
    return;
  }
  Flush(c);
}

// A header from a trusted balancer (Adopt() checked the source) names the publisher:
// from here on the logs, the caps, the hooks and the ring see its address. A LOCAL
// command is a balancer's health check: closed without a line at info.
bool Shard::TakeProxyHeader(Connection& c, std::span<const uint8_t>* bytes) {
  const std::string balancer = c.peer();
  absl::StatusOr<Connection::ProxyOutcome> header = c.ReceiveProxyHeader(*bytes, NowMs());
  if (!header.ok()) {
    if (context_->metrics != nullptr) {
      ServerMetrics::Add(context_->metrics->protocol_errors[size_t(ProtocolError::kProxyProtocol)]);
    }
    CloseConnection(c, end_reason::kError,
                    absl::StrCat("PROXY protocol (--proxy-protocol): ", header.status().message()));
    return false;
  }
  if (!header->complete) {
    *bytes = {};  // kept by the connection until the rest comes
    return true;
  }
  if (header->local) {
    Count(&ServerMetrics::proxy_local);
    spdlog::debug("conn {} {}: PROXY v2 LOCAL (a health check): closing", c.serial(), c.peer());
    c.Close(end_reason::kDisconnect);
    loop_->Close(c.id());
    return false;
  }
  if (context_->metrics != nullptr) {
    ServerMetrics::Add(context_->metrics->proxy_headers[header->version == 1 ? 0 : 1]);
  }
  if (c.balancer().empty()) {
    spdlog::info(
        "conn {} {}: PROXY v{} header without an address (UNKNOWN or AF_UNSPEC): the "
        "balancer's address stands",
        c.serial(), c.peer(), header->version);
  } else {
    spdlog::info("conn {} {}: publisher's address from the PROXY v{} header of {}", c.serial(),
                 c.peer(), header->version, balancer);
  }
  if (!Admit(c)) return false;
  *bytes = header->rest;
  return true;
}

bool Shard::Admit(Connection& c) {
  if (std::string refused = context_->limits->Admit(c.address()); !refused.empty()) {
    Count(&ServerMetrics::connections_refused);
    CloseConnection(c, end_reason::kError, absl::StrCat("connection refused: ", refused));
    return false;
  }
  c.set_admitted();
  return true;
}

// Sends what is queued, one send in flight at a time.
void Shard::Flush(Connection& c) {
  if (c.send_in_flight() || c.closing()) return;
  absl::StatusOr<std::span<const uint8_t>> out = c.NextSend();
  if (!out.ok()) {
    CloseConnection(c, end_reason::kError, StatusText(out.status()));
    return;
  }
  if (!out->empty()) {
    loop_->Send(c.id(), *out);
  } else if (c.flushing()) {
    // Its streams ended when the flush began, for the reason given then.
    CloseConnection(c, end_reason::kError, c.close_reason());
  }
}

void Shard::OnSendComplete(ConnectionId id, int result) {
  Connection& c = *connections_[id];
  if (result < 0) {
    c.SendFailed();
    CloseConnection(c, end_reason::kDisconnect, absl::StrCat("send failed: ", strerror(-result)));
    return;
  }
  if (std::span<const uint8_t> rest = c.Sent(size_t(result)); !rest.empty()) {
    loop_->Send(id, rest);
    return;
  }
  Flush(c);
}

void Shard::OnReceiveEnd(ConnectionId id, int error) {
  Connection& c = *connections_[id];
  if (c.closing()) return;
  if (c.awaiting_proxy_header() && c.bytes_in() > 0) {
    // A header cut short: its sender (a balancer) is named, since no publisher is yet.
    if (context_->metrics != nullptr) {
      ServerMetrics::Add(context_->metrics->protocol_errors[size_t(ProtocolError::kProxyProtocol)]);
    }
    CloseConnection(c, end_reason::kError,
                    absl::StrCat("PROXY protocol (--proxy-protocol): the header was cut short (",
                                 c.bytes_in(), " bytes, then the connection ended)"));
    return;
  }
  CloseConnection(
      c, end_reason::kDisconnect,
      error == 0 ? "closed by the peer" : absl::StrCat("receive failed: ", strerror(-error)));
}

// Ends the connection's streams now; with flush_first, the bytes already queued (an
// _error, say) and on RTMPS a close_notify go out before the socket closes. A connection
// already waiting for that is closed at once by the next close (a timeout, say), so a
// peer that doesn't read can't hold it open.
void Shard::CloseConnection(Connection& c, std::string_view end, std::string_view reason,
                            bool flush_first) {
  if (c.closing()) return;
  if (flush_first && !c.flushing() &&
      (c.send_in_flight() || c.QueuedOutput() > 0 || c.OwesCloseNotify())) {
    c.CloseAfterFlush(reason, end);
    Flush(c);
    return;
  }
  c.Close(end);
  spdlog::info("conn {} {}: closed: {} ({})", c.serial(), c.peer(), reason, c.Describe(NowMs()));
  if (c.admitted()) context_->limits->Leave(c.address());
  loop_->Close(c.id());
}

void Shard::OnReleased(ConnectionId id) {
  connections_[id].reset();
  free_ids_.push_back(id);
  --live_;
  connection_count_.store(live_, std::memory_order_relaxed);
  if ((shutting_down_ || draining_) && live_ == 0) loop_->Stop();
}

// One look at the ring's sleeping readers per batch of receives, not one per frame.
void Shard::OnBatchEnd() { ring_->Flush(); }

// The ticks come about 10 times a second, later when the shard is busy: the work below
// is due by the clock, once a second.
void Shard::OnTick() {
  ring_->Heartbeat();
  const int64_t now_ms = NowMs();
  if (now_ms < next_second_ms_) return;
  const int64_t elapsed_ms = next_second_ms_ == 0 ? 1000 : now_ms - next_second_ms_ + 1000;
  next_second_ms_ = now_ms + 1000;
  ReportSaturation();
  UpdateIngressRate(elapsed_ms);
  ReportBufferShortages();
  CheckTimeouts();
  PublishMetrics();
}

void Shard::PublishMetrics() {
  if (context_->metrics == nullptr) return;
  ShardMetrics& m = context_->metrics->shard(index_);
  m.connections.store(live_, std::memory_order_relaxed);
  m.bytes_received.store(bytes_in_, std::memory_order_relaxed);
  m.buffer_shortages.store(loop_->counters().buffer_shortages, std::memory_order_relaxed);
}

void Shard::Count(Counter ServerMetrics::*counter) {
  if (context_->metrics != nullptr) ServerMetrics::Add(context_->metrics->*counter);
}

void Shard::CountRefusals(const rtmp::Session::Refusals& refusals) {
  if (context_->metrics == nullptr) return;
  for (size_t kind = 0; kind < refusals.by_kind.size(); ++kind) {
    if (refusals.by_kind[kind] != 0) {
      ServerMetrics::Add(context_->metrics->publishes_refused[kind], refusals.by_kind[kind]);
    }
  }
}

// A saturated shard falls behind its publishers: TCP holds them back (it does not
// collapse), but their frames reach the ring late and every new connection on it waits.
// Once a second while it lasts, with the load it carries; a line when it ends.
void Shard::ReportSaturation() {
  const LoadMark last = load_mark_;
  load_mark_ = {.time_ns = int64_t(ringbuf::MonotonicNs()),
                .thread = thread_load_->Read(),
                .records = ring_->producer().records(),
                .bytes_in = bytes_in_};
  if (last.time_ns == 0) return;
  const double seconds = double(load_mark_.time_ns - last.time_ns) / 1e9;
  if (seconds <= 0) return;
  const double ran = double(load_mark_.thread.run_ns - last.thread.run_ns) / 1e9 / seconds;
  const double waited = double(load_mark_.thread.wait_ns - last.thread.wait_ns) / 1e9 / seconds;
  if (ran + waited >= kSaturated) {
    if (saturated_since_ns_ == 0) saturated_since_ns_ = last.time_ns;
    spdlog::warn(
        "shard {}: saturated: busy {:.0f}% of the last {:.1f} s (ran {:.0f}%, waited for a CPU "
        "{:.0f}%); connections {}, {:.1f} Mbit/s in, {:.0f} records/s; its publishers are held "
        "back (more --shards, or fewer publishers on this node)",
        index_, 100 * (ran + waited), seconds, 100 * ran, 100 * waited, live_,
        double(load_mark_.bytes_in - last.bytes_in) * 8 / 1e6 / seconds,
        double(load_mark_.records - last.records) / seconds);
  } else if (saturated_since_ns_ != 0) {
    spdlog::info("shard {}: no longer saturated after {:.0f} s (busy {:.0f}% of the last second)",
                 index_, double(last.time_ns - saturated_since_ns_) / 1e9, 100 * (ran + waited));
    saturated_since_ns_ = 0;
  }
}

// Running out of receive buffers is backpressure, not an error (TCP holds the bytes
// until buffers come back), but an operator should know: once a second at most.
void Shard::ReportBufferShortages() {
  const uint64_t shortages = loop_->counters().buffer_shortages;
  if (shortages == shortages_reported_) return;
  spdlog::warn(
      "shard {}: receive buffers ran out {} times in the last second (TCP held the "
      "bytes meanwhile; --recv-buffers raises the count)",
      index_, shortages - shortages_reported_);
  shortages_reported_ = shortages;
}

void Shard::UpdateIngressRate(int64_t elapsed_ms) {
  const uint64_t last_second =
      (bytes_in_ - bytes_in_at_rate_) * 1000 / uint64_t(std::max<int64_t>(elapsed_ms, 1));
  bytes_in_at_rate_ = bytes_in_;
  const uint64_t rate = ingress_rate_.load(std::memory_order_relaxed);
  // An exponentially weighted average over about 4 s.
  ingress_rate_.store((rate * 3 + last_second) / 4, std::memory_order_relaxed);
  fresh_.store(0, std::memory_order_relaxed);
}

void Shard::CheckTimeouts() {
  const ServerOptions& options = *context_->options;
  const int64_t now = NowMs();
  const int64_t handshake_ms = absl::ToInt64Milliseconds(options.handshake_timeout);
  const int64_t idle_ms = absl::ToInt64Milliseconds(options.idle_timeout);
  const int64_t publish_ms = absl::ToInt64Milliseconds(options.publish_timeout);
  for (auto& slot : connections_) {
    if (slot == nullptr || slot->closing()) continue;
    Connection& c = *slot;
    if (!c.rtmp().handshake_complete() && now - c.accepted_ms() >= handshake_ms) {
      Count(&ServerMetrics::handshake_timeouts);
      CloseConnection(
          c, end_reason::kError,
          c.awaiting_proxy_header()
              ? absl::StrFormat("PROXY protocol (--proxy-protocol): no complete header after %.1f "
                                "s (%u bytes came)",
                                handshake_ms / 1000.0, c.bytes_in())
              : absl::StrFormat("handshake not done after %.1f s", handshake_ms / 1000.0),
          /*flush_first=*/true);
    } else if (now - c.last_activity_ms() >= idle_ms) {
      Count(&ServerMetrics::idle_timeouts);
      CloseConnection(c, end_reason::kIdleTimeout,
                      absl::StrFormat("idle for %.1f s (--idle-timeout)", idle_ms / 1000.0),
                      /*flush_first=*/true);
    } else if (!c.has_published() && now - c.accepted_ms() >= publish_ms) {
      Count(&ServerMetrics::publish_timeouts);
      CloseConnection(
          c, end_reason::kError,
          absl::StrCat("no publish after ", publish_ms / 1000, " s (--publish-timeout)"),
          /*flush_first=*/true);
    }
  }
  if (shutting_down_ && now >= shutdown_deadline_ms_) loop_->Stop();
  if (draining_ && !shutting_down_) DrainPass(now);
}

void Shard::BeginShutdown() {
  shutting_down_ = true;
  shutdown_deadline_ms_ = NowMs() + absl::ToInt64Milliseconds(context_->options->shutdown_grace);
  loop_->StopListening();
  for (auto& c : connections_) {
    if (c != nullptr && !c->closing()) {
      CloseConnection(*c, end_reason::kShutdown, "the server is shutting down",
                      /*flush_first=*/true);
    }
  }
  if (live_ == 0) loop_->Stop();
}

// The listeners are shut down, not just left: connections the kernel would otherwise
// complete into their backlogs are refused, and a balancer tries another node at once.
void Shard::BeginDrain() {
  draining_ = true;
  drain_deadline_ms_ = NowMs() + absl::ToInt64Milliseconds(context_->options->drain_timeout);
  loop_->StopListening();
  for (int fd : {listen_fd_, tls_listen_fd_}) {
    if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
  }
  DrainPass(NowMs());
  if (live_ == 0) loop_->Stop();
}

void Shard::DrainPass(int64_t now_ms) {
  const bool deadline = now_ms >= drain_deadline_ms_;
  uint32_t asked = 0, unasked = 0;
  for (auto& slot : connections_) {
    if (slot == nullptr || slot->closing() || slot->flushing()) continue;
    Connection& c = *slot;
    if (!c.asked_to_reconnect()) AskToReconnect(c);
    if (deadline) {
      Count(&ServerMetrics::drain_timeouts);
      c.Kick(absl::StrCat("the node is draining and --drain-timeout (",
                          absl::FormatDuration(context_->options->drain_timeout), ") has passed"),
             end_reason::kDrain);
      Flush(c);
      continue;
    }
    ++(c.asked_to_reconnect() ? asked : unasked);
  }
  drain_asked_open_.store(asked, std::memory_order_relaxed);
  drain_unasked_open_.store(unasked, std::memory_order_relaxed);
}

// A connection not connected yet is asked at a later pass, once it is.
void Shard::AskToReconnect(Connection& c) {
  const std::string url = RedirectUrl(context_->options->drain_redirect, c.rtmp().session().app());
  if (!c.RequestReconnect(url, "This node is draining: reconnect, to another node.")) return;
  Count(&ServerMetrics::drain_reconnect_requests);
  spdlog::info("conn {} {}: draining: asked to reconnect{} (Enhanced RTMP reconnect request)",
               c.serial(), c.peer(), url.empty() ? "" : absl::StrCat(" to ", url));
  Flush(c);
}

}  // namespace uringest::engine
