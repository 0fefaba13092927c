#include "engine/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <limits>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "spdlog/spdlog.h"

namespace uringest::engine {
namespace {

constexpr int kListenBacklog = 4096;
// Until shards have measured their connections, a new one is assumed to bring this much
// (a 2.5 Mbit/s stream).
constexpr uint64_t kAssumedConnectionRate = 2'500'000 / 8;

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Create(const ServerOptions& options) {
  auto server = std::unique_ptr<Server>(new Server(options));
  ServerOptions& o = server->options_;
  if (o.shards == 0) o.shards = std::max(1u, std::thread::hardware_concurrency());
  if (o.ring_size == 0 || (o.ring_size & (o.ring_size - 1)) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--ring-size ", o.ring_size, " is not a power of two"));
  }
  if (!o.tls_cert.empty() || !o.tls_key.empty()) {
    if (o.tls_cert.empty() || o.tls_key.empty()) {
      return absl::InvalidArgumentError("RTMPS needs both --tls-cert and --tls-key");
    }
    absl::StatusOr<std::unique_ptr<TlsCertificates>> tls =
        TlsCertificates::Create(o.tls_cert, o.tls_key);
    if (!tls.ok()) return tls.status();
    server->tls_ = *std::move(tls);
  }
  if (!o.trusted_proxies.empty()) {
    if (!o.proxy_protocol) {
      return absl::InvalidArgumentError("--trusted-proxies needs --proxy-protocol");
    }
    absl::StatusOr<CidrList> trusted = CidrList::Parse(o.trusted_proxies);
    if (!trusted.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--trusted-proxies: ", trusted.status().message()));
    }
    server->trusted_proxies_ = std::make_unique<CidrList>(*std::move(trusted));
  }
  if (!o.drain_redirect.empty() && !o.drain_redirect.starts_with("rtmp://") &&
      !o.drain_redirect.starts_with("rtmps://")) {
    return absl::InvalidArgumentError(absl::StrCat("--drain-redirect '", o.drain_redirect,
                                                   "' is not an rtmp:// or rtmps:// URL"));
  }
  if (absl::Status s = server->ChooseBackend(); !s.ok()) return s;
  return server;
}

Server::Server(const ServerOptions& options) : options_(options) {}

Server::~Server() {
  // Every shard stops before any is destroyed: a running shard may still hand a
  // connection or an eviction to another.
  for (auto& shard : shards_) shard->PostShutdown();
  for (auto& shard : shards_) shard->Join();
  // The hook's thread posts approvals to shards: it stops while they still exist.
  access_.reset();
  shards_.clear();
  for (int fd : listen_fds_) close(fd);
  for (int fd : tls_listen_fds_) close(fd);
  rings_.reset();  // removes the shared-memory objects
}

// io_uring when the kernel lets us; epoll only when io_uring is unavailable (blocked or
// too old), never because of a resource error once it works.
absl::Status Server::ChooseBackend() {
  if (options_.backend == Backend::kEpoll) {
    backend_ = "epoll";
    return absl::OkStatus();
  }
  io_uring_ = ProbeIoUring();
  if (io_uring_.usable()) {
    backend_ = "io_uring";
    return absl::OkStatus();
  }
  if (options_.backend == Backend::kIoUring) {
    return absl::FailedPreconditionError(
        absl::StrCat("--backend=io_uring, but ", io_uring_.reason));
  }
  backend_ = "epoll";
  backend_reason_ = io_uring_.reason;
  return absl::OkStatus();
}

absl::StatusOr<int> Server::BindListener(const std::string& host, uint16_t* resolved,
                                         std::string* address, bool reuse_port) {
  sockaddr_storage ss{};
  socklen_t len;
  const uint16_t port = *resolved;
  auto* in4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, host.c_str(), &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons(port);
    len = sizeof(*in4);
  } else if (inet_pton(AF_INET6, host.c_str(), &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    len = sizeof(*in6);
  } else {
    return absl::InvalidArgumentError(absl::StrCat("--listen: '", host, "' is not an IP address"));
  }
  const int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::ErrnoToStatus(errno, "socket");
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (reuse_port) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || listen(fd, kListenBacklog) != 0) {
    const int err = errno;
    close(fd);
    return absl::ErrnoToStatus(err, absl::StrCat("listening on ", host, ":", port));
  }
  if (port == 0) {
    getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    *resolved = ntohs(ss.ss_family == AF_INET ? in4->sin_port : in6->sin6_port);
  }
  *address = ss.ss_family == AF_INET ? absl::StrCat(host, ":", *resolved)
                                     : absl::StrCat("[", host, "]:", *resolved);
  return fd;
}

// `count` RTMP listeners, and as many RTMPS ones with --tls-cert.
absl::Status Server::BindListeners(size_t count, bool reuse_port) {
  port_ = options_.listen_port;
  for (size_t i = 0; i < count; ++i) {
    absl::StatusOr<int> fd =
        BindListener(options_.listen_host, &port_, &listen_address_, reuse_port);
    if (!fd.ok()) return fd.status();
    listen_fds_.push_back(*fd);
  }
  if (tls_ == nullptr) return absl::OkStatus();
  tls_port_ = options_.tls_listen_port;
  for (size_t i = 0; i < count; ++i) {
    absl::StatusOr<int> fd =
        BindListener(options_.tls_listen_host, &tls_port_, &tls_listen_address_, reuse_port);
    if (!fd.ok()) {
      return absl::Status(fd.status().code(),
                          absl::StrCat("--tls-listen: ", fd.status().message()));
    }
    tls_listen_fds_.push_back(*fd);
  }
  spdlog::info("RTMPS: listening on {} (certificate {}; SIGHUP reloads it)", tls_listen_address_,
               options_.tls_cert);
  spdlog::info("{}", DescribeKtls());
  return absl::OkStatus();
}

absl::Status Server::Start() {
  metrics_ = std::make_unique<ServerMetrics>(options_.shards);
  if (absl::Status s = CreateRings(); !s.ok()) return s;
  const bool by_load = options_.placement == Placement::kLoad && options_.shards > 1;
  const size_t listeners = by_load ? 1 : options_.shards;
  if (absl::Status s = BindListeners(listeners, /*reuse_port=*/!by_load && options_.shards > 1);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CreateAdmission(); !s.ok()) return s;
  return StartShards(by_load);
}

absl::Status Server::CreateRings() {
  gid_t group = gid_t(-1);
  if (!options_.ring_group.empty()) {
    absl::StatusOr<gid_t> gid = ringbuf::ResolveGroup(options_.ring_group);
    if (!gid.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--ring-group: ", gid.status().message()));
    }
    group = *gid;
  }
  absl::StatusOr<std::unique_ptr<ringbuf::RingServer>> rings =
      ringbuf::RingServer::Create({.name = options_.ring_name,
                                   .shards = options_.shards,
                                   .ring_capacity = options_.ring_size,
                                   .directory_slots = options_.stream_slots(),
                                   .group = group,
                                   .batch_wakes = true});
  if (!rings.ok()) return rings.status();
  rings_ = std::move(*rings);
  if (rings_->replaced_stale()) {
    spdlog::warn("ring '{}': removed the shared memory a crashed server left", options_.ring_name);
  }
  return absl::OkStatus();
}

// What decides who may publish what: the names' registry, the connection caps, and the
// publish keys and hook.
absl::Status Server::CreateAdmission() {
  registry_ = std::make_unique<StreamRegistry>(options_.on_duplicate, [this](const Publisher& old) {
    shards_[old.shard]->PostEviction(old.connection);
  });
  limits_ =
      std::make_unique<ConnectionLimits>(options_.max_connections, options_.max_connections_per_ip);
  if (options_.auth_file.empty() && options_.on_publish_url.empty() &&
      options_.on_publish_done_url.empty()) {
    return absl::OkStatus();
  }
  absl::StatusOr<std::unique_ptr<AccessControl>> access =
      AccessControl::Create({.auth_file = options_.auth_file,
                             .hook = {.url = options_.on_publish_url,
                                      .done_url = options_.on_publish_done_url,
                                      .timeout = options_.on_publish_timeout,
                                      .metrics = &metrics_->on_publish,
                                      .done_metrics = &metrics_->on_publish_done,
                                      .done_dropped = &metrics_->publish_done_dropped}});
  if (!access.ok()) return access.status();
  access_ = *std::move(access);
  LogAccessControl();
  return absl::OkStatus();
}

// `by_load`: shard 0 accepts every connection and hands each to the shard with the least
// ingress; otherwise each shard accepts on its own listener.
absl::Status Server::StartShards(bool by_load) {
  context_ = ShardContext{.options = &options_,
                          .io_uring = backend_ == "io_uring" ? &io_uring_ : nullptr,
                          .registry = registry_.get(),
                          .limits = limits_.get(),
                          .next_serial = &next_serial_,
                          .access = access_.get(),
                          .tls = tls_.get(),
                          .metrics = metrics_.get(),
                          .trusted_proxies = trusted_proxies_.get()};
  context_.post_approval = [this](uint32_t shard, Approval&& approval) {
    shards_[shard]->PostApproval(std::move(approval));
  };
  if (by_load) {
    context_.pick_shard = [this] { return PickShard(); };
    context_.hand_over = [this](uint32_t shard, int fd, bool tls) {
      shards_[shard]->PostConnection(fd, tls);
    };
  }
  for (uint32_t k = 0; k < options_.shards; ++k) {
    const size_t listener = by_load ? 0 : k;
    const bool listens = !by_load || k == 0;
    const int fd = listens ? listen_fds_[listener] : -1;
    const int tls_fd = listens && tls_ != nullptr ? tls_listen_fds_[listener] : -1;
    shards_.push_back(std::make_unique<Shard>(k, &context_, &rings_->shard(k), fd, tls_fd));
  }
  for (auto& shard : shards_) {
    if (absl::Status s = shard->Start(); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("shard ", shard->index(), ": ", s.message()));
    }
  }
  // Only now: the acceptor may hand a connection to any shard.
  for (auto& shard : shards_) shard->PostListen();
  return absl::OkStatus();
}

// Placement by load: the shard with the least ingress bytes/s, counting each connection
// it was given since its last measurement as bringing the server's average rate.
uint32_t Server::PickShard() const {
  uint64_t total_rate = 0, total_connections = 0;
  for (const auto& shard : shards_) {
    total_rate += shard->ingress_rate();
    total_connections += shard->connections();
  }
  const uint64_t per_connection = total_connections > 0 && total_rate > 0
                                      ? total_rate / total_connections
                                      : kAssumedConnectionRate;
  uint32_t best = 0;
  uint64_t best_score = std::numeric_limits<uint64_t>::max();
  for (const auto& shard : shards_) {
    const uint64_t score = shard->ingress_rate() + uint64_t{shard->fresh()} * per_connection;
    if (score < best_score) {
      best_score = score;
      best = shard->index();
    }
  }
  return best;
}

void Server::Shutdown() {
  shutting_down_.store(true, std::memory_order_relaxed);
  for (auto& shard : shards_) shard->PostShutdown();
}

bool Server::Ready(std::string* why) const {
  if (shutting_down_.load(std::memory_order_relaxed)) {
    *why = "shutting down";
    return false;
  }
  if (draining_.load(std::memory_order_relaxed)) {
    uint32_t connections = 0;
    for (const auto& shard : shards_) connections += shard->connections();
    *why = absl::StrCat("draining: ", connections, " connections left");
    return false;
  }
  for (const auto& shard : shards_) {
    if (shard->finished()) {
      *why = absl::StrCat("shard ", shard->index(), " is not running its loop");
      return false;
    }
  }
  return true;
}

Server::KickResult Server::Kick(const std::string& key, absl::Duration ban) {
  if (ban > absl::ZeroDuration()) {
    registry_->Ban(key, absl::Now() + ban);
    spdlog::info("{}: banned for {} (HTTP API)", key, absl::FormatDuration(ban));
  }
  std::optional<Publisher> publisher = registry_->Find(key);
  if (!publisher.has_value()) return {};
  shards_[publisher->shard]->PostKick(publisher->connection, "kicked by the operator (HTTP API)");
  return {.kicked = true};
}

bool Server::Drain(std::string_view by) {
  if (shutting_down_.load(std::memory_order_relaxed)) return false;
  if (draining_.exchange(true)) return false;
  const absl::Time now = absl::Now();
  drain_started_ns_.store(absl::ToUnixNanos(now), std::memory_order_relaxed);
  metrics_->draining.store(1, std::memory_order_relaxed);
  metrics_->drain_started_s.store(uint64_t(absl::ToUnixSeconds(now)), std::memory_order_relaxed);
  uint32_t connections = 0;
  for (const auto& shard : shards_) connections += shard->connections();
  spdlog::info(
      "drain: started by {}: no new connections; of {} open, publishers that announced "
      "Enhanced RTMP's Reconnect are asked to reconnect{}, the others stream on until they end "
      "or --drain-timeout ({}) passes; the server stops once none is left",
      by, connections,
      options_.drain_redirect.empty() ? " (to the same address)"
                                      : absl::StrCat(" to ", options_.drain_redirect),
      absl::FormatDuration(options_.drain_timeout));
  for (auto& shard : shards_) shard->PostDrain();
  return true;
}

Server::DrainProgress Server::drain_progress() const {
  DrainProgress p;
  p.draining = draining_.load(std::memory_order_relaxed);
  if (!p.draining) return p;
  p.started = absl::FromUnixNanos(drain_started_ns_.load(std::memory_order_relaxed));
  p.timeout = options_.drain_timeout;
  for (const auto& shard : shards_) {
    p.connections += shard->connections();
    p.asked_open += shard->drain_asked_open();
    p.unasked_open += shard->drain_unasked_open();
  }
  p.reconnect_requests = ServerMetrics::Get(metrics_->drain_reconnect_requests);
  p.closed_at_timeout = ServerMetrics::Get(metrics_->drain_timeouts);
  return p;
}

// The hook's URL is not logged: it may carry credentials.
void Server::LogAccessControl() const {
  if (std::shared_ptr<const AuthFile> file = access_->auth_file(); file != nullptr) {
    spdlog::info("publishing needs a key: --auth-file {} ({} rules; SIGHUP reloads it)",
                 options_.auth_file, file->rule_count());
  }
  if (access_->hook() != nullptr && access_->hook()->asks()) {
    spdlog::info("publishing needs the --on-publish hook's 2xx (timeout {})",
                 absl::FormatDuration(options_.on_publish_timeout));
  }
  if (access_->hook() != nullptr && access_->hook()->tells()) {
    spdlog::info("each publish's end is told to the --on-publish-done hook");
  }
}

absl::StatusOr<size_t> Server::ReloadAccess() {
  if (access_ == nullptr) return 0;
  return access_->Reload();
}

absl::Status Server::ReloadTls() {
  if (tls_ == nullptr) return absl::OkStatus();
  return tls_->Reload();
}

bool Server::Stopped() const {
  for (const auto& shard : shards_) {
    if (!shard->finished()) return false;
  }
  return true;
}

}  // namespace uringest::engine
