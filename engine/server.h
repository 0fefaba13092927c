// server.h: uringestd's engine: binds the RTMP listener (and the RTMPS one with
// --tls-cert), creates the frame ring (--ring NAME), probes io_uring and picks the
// backend, and runs one Shard per core.
//
//   absl::StatusOr<std::unique_ptr<Server>> server = Server::Create(options);
//   (*server)->Start();                  // listening once this returns
//   ... on SIGHUP: (*server)->ReloadAccess(); (*server)->ReloadTls(); ...
//   ... on SIGTERM: (*server)->Shutdown(); until (*server)->Stopped() ...
//   server->reset();                     // joins the shards, removes the ring
//
// Thread safety: Create, Start and destruction on one thread; Shutdown(), Stopped(),
// ReloadAccess() and ReloadTls() from any.

#ifndef URINGEST_ENGINE_SERVER_H_
#define URINGEST_ENGINE_SERVER_H_

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/access_control.h"
#include "engine/cidr.h"
#include "engine/connection_limits.h"
#include "engine/io_uring_probe.h"
#include "engine/server_metrics.h"
#include "engine/server_options.h"
#include "engine/shard.h"
#include "engine/stream_registry.h"
#include "engine/tls.h"
#include "ringbuf/ring_server.h"

namespace uringest::engine {

class Server {
 public:
  // Probes the kernel and validates the options; binds nothing yet.
  static absl::StatusOr<std::unique_ptr<Server>> Create(const ServerOptions& options);
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  ~Server();

  // Creates the ring, binds the listener(s) and starts the shards.
  absl::Status Start();
  // Graceful: stop accepting, end every stream, close every connection.
  void Shutdown();
  // Every shard has left its loop.
  bool Stopped() const;
  // Re-reads --auth-file (SIGHUP): the number of rules now in force, or why the file was
  // not taken (the rules loaded before stay). 0 without --auth-file.
  absl::StatusOr<size_t> ReloadAccess();
  // Re-reads --tls-cert and --tls-key (SIGHUP) for the connections that come after; on
  // error the certificate loaded before stays. OK without RTMPS.
  absl::Status ReloadTls();
  bool tls_enabled() const { return !options_.tls_cert.empty(); }

  // ---- The HTTP control API's side (any thread, once Start() succeeded) ----
  ServerMetrics& metrics() { return *metrics_; }
  // Whether every shard runs its loop and the server is not shutting down; if not, why.
  bool Ready(std::string* why) const;
  struct KickResult {
    bool kicked = false;  // a publisher held the name and is being ended
  };
  // Ends the publish of `key`, "app/name" (its publisher is told
  // NetStream.Unpublish.Success and disconnected; the stream ends cleanly in the ring)
  // and, with a `ban` > 0, refuses the name to every publisher for that long.
  KickResult Kick(const std::string& key, absl::Duration ban);

  // ---- Draining (POST /v1/drain, SIGUSR1; any thread) ----
  // Starts a drain, `by` naming who asked (for the log): every shard stops accepting
  // (its listeners shut), asks each publisher that announced Enhanced RTMP's Reconnect
  // capability to reconnect (to --drain-redirect, if set), and closes the others at
  // --drain-timeout; each shard leaves its loop once it has no connection left, and then
  // Stopped() is true. False if a drain or shutdown had begun already.
  bool Drain(std::string_view by);
  struct DrainProgress {
    bool draining = false;
    absl::Time started;
    absl::Duration timeout;
    uint32_t connections = 0;         // open now
    uint32_t asked_open = 0;          // of them, asked to reconnect (as of the last second)
    uint32_t unasked_open = 0;        // of them, without the capability
    uint64_t reconnect_requests = 0;  // sent since the drain began
    uint64_t closed_at_timeout = 0;
  };
  DrainProgress drain_progress() const;

  // Where it listens, with the port resolved ("0.0.0.0:1935").
  const std::string& listen_address() const { return listen_address_; }
  uint16_t port() const { return port_; }
  // The RTMPS listener, once started with --tls-cert.
  const std::string& tls_listen_address() const { return tls_listen_address_; }
  uint16_t tls_port() const { return tls_port_; }
  // "io_uring" or "epoll", and why epoll when it was not asked for.
  const std::string& backend() const { return backend_; }
  const std::string& backend_reason() const { return backend_reason_; }
  const IoUringSupport& io_uring() const { return io_uring_; }
  uint32_t shard_count() const { return uint32_t(shards_.size()); }
  const ServerOptions& options() const { return options_; }

 private:
  explicit Server(const ServerOptions& options);
  absl::Status ChooseBackend();
  // Binds host:*port; a *port of 0 becomes the port the kernel chose, and *address says
  // where it listens.
  absl::StatusOr<int> BindListener(const std::string& host, uint16_t* port, std::string* address,
                                   bool reuse_port);
  absl::Status CreateRings();
  absl::Status CreateAdmission();
  absl::Status StartShards(bool by_load);
  absl::Status BindListeners(size_t count, bool reuse_port);
  uint32_t PickShard() const;
  void LogAccessControl() const;

  ServerOptions options_;
  IoUringSupport io_uring_;
  std::string backend_;
  std::string backend_reason_;
  std::string listen_address_;
  uint16_t port_ = 0;
  std::vector<int> listen_fds_;
  std::string tls_listen_address_;
  uint16_t tls_port_ = 0;
  std::vector<int> tls_listen_fds_;
  std::unique_ptr<TlsCertificates> tls_;  // nullptr without --tls-cert
  std::unique_ptr<ringbuf::RingServer> rings_;
  std::unique_ptr<StreamRegistry> registry_;
  std::unique_ptr<ConnectionLimits> limits_;
  std::unique_ptr<AccessControl> access_;  // nullptr: no key file and no hooks
  std::unique_ptr<ServerMetrics> metrics_;
  std::atomic<bool> shutting_down_{false};
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> drain_started_ns_{0};   // absl::ToUnixNanos
  std::unique_ptr<CidrList> trusted_proxies_;  // nullptr: any source (or no --proxy-protocol)
  std::atomic<uint64_t> next_serial_{1};
  ShardContext context_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace uringest::engine

#endif  // URINGEST_ENGINE_SERVER_H_
