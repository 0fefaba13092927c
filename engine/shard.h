// shard.h: one shard of the server: a thread, its event loop (io_uring or epoll), the
// connections placed on it (RTMP, and RTMPS from the TLS listener), and its frame ring.
// Everything a connection owns is touched only by its shard's thread; other threads
// reach a shard through its inbox (new connections, evictions, publish approvals,
// shutdown), which wakes the loop.
//
//   Shard shard(k, &context);
//   shard.Start();                 // the thread creates its loop and runs it
//   shard.PostConnection(fd, tls); // from the acceptor (placement by load)
//   shard.PostShutdown();  shard.Join();
//
// Thread safety: the Post*() methods, ingress_rate() and connections() are thread-safe;
// everything else runs on the shard's thread.

#ifndef URINGEST_ENGINE_SHARD_H_
#define URINGEST_ENGINE_SHARD_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <latch>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "engine/access_control.h"
#include "engine/cidr.h"
#include "engine/event_loop.h"
#include "engine/internal/mutex.h"
#include "engine/io_uring_probe.h"
#include "engine/server_metrics.h"
#include "engine/server_options.h"
#include "engine/slab_allocator.h"
#include "engine/stream_registry.h"
#include "engine/thread_load.h"
#include "engine/tls.h"
#include "ringbuf/shard_writer.h"

namespace uringest::engine {

class Connection;
class ConnectionLimits;

// What every shard shares, owned by the Server.
struct ShardContext {
  const ServerOptions* options = nullptr;
  const IoUringSupport* io_uring = nullptr;  // nullptr: use epoll
  StreamRegistry* registry = nullptr;
  ConnectionLimits* limits = nullptr;
  // Placement by load: where the acceptor sends a new connection. Returns the shard
  // index; the shard itself handles it when that is its own index.
  std::function<uint32_t()> pick_shard;
  std::function<void(uint32_t shard, int fd, bool tls)> hand_over;
  std::atomic<uint64_t>* next_serial = nullptr;
  // Access control; nullptr when every publish is allowed. post_approval delivers the
  // on-publish hook's answers to a shard.
  const AccessControl* access = nullptr;
  ApprovalPoster post_approval;
  // RTMPS: the certificate new TLS connections get; nullptr without --tls-cert.
  const TlsCertificates* tls = nullptr;
  // What /metrics shows; nullptr: nothing is counted (tests).
  ServerMetrics* metrics = nullptr;
  // --proxy-protocol's --trusted-proxies: the sources that may send a header; nullptr:
  // any.
  const CidrList* trusted_proxies = nullptr;
};

class alignas(64) Shard : private LoopHandler {
 public:
  // `listen_fd` and `tls_listen_fd` are this shard's RTMP and RTMPS listeners, or -1 for
  // none.
  Shard(uint32_t index, ShardContext* context, ringbuf::ShardWriter* ring, int listen_fd,
        int tls_listen_fd = -1);
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;
  ~Shard() override;

  // Starts the thread and waits until its loop is set up (or failed to be).
  absl::Status Start();
  void Join();

  // Thread-safe. PostListen() starts accepting on the shard's listener: the server calls
  // it once every shard runs, so that no connection is handed to a shard not yet started.
  void PostListen();
  // `tls`: it came to the RTMPS listener.
  void PostConnection(int fd, bool tls = false);
  void PostEviction(uint64_t serial);
  // Ends connection `serial`'s publishes, telling it why (the HTTP API's kick).
  void PostKick(uint64_t serial, std::string notice);
  // Starts a drain: the shard stops accepting, asks each publisher that can to reconnect
  // (to --drain-redirect, if set), closes the rest at --drain-timeout, and leaves its loop
  // once it has no connection left.
  void PostDrain();
  // The on-publish hook's answer for one of this shard's connections.
  void PostApproval(Approval&& approval);
  void PostShutdown();
  // Ingress bytes per second, averaged over the last seconds.
  uint64_t ingress_rate() const { return ingress_rate_.load(std::memory_order_relaxed); }
  uint32_t connections() const { return connection_count_.load(std::memory_order_relaxed); }
  // Connections handed over or adopted since ingress_rate() was last measured: their
  // bytes are not in it yet.
  uint32_t fresh() const { return fresh_.load(std::memory_order_relaxed); }
  // The thread has left its loop (shut down).
  bool finished() const { return finished_.load(std::memory_order_acquire); }
  uint32_t index() const { return index_; }
  // While draining: connections asked to reconnect that are still open, and those that
  // can't be asked (no Reconnect capability), as of the last second.
  uint32_t drain_asked_open() const { return drain_asked_open_.load(std::memory_order_relaxed); }
  uint32_t drain_unasked_open() const {
    return drain_unasked_open_.load(std::memory_order_relaxed);
  }

 private:
  struct Accepted {
    int fd;
    bool tls;
  };
  struct Inbox {
    bool listen = false;
    std::vector<Accepted> fds;
    std::vector<uint64_t> evictions;
    std::vector<std::pair<uint64_t, std::string>> kicks;
    std::vector<Approval> approvals;
    bool drain = false;
    bool shutdown = false;
  };

  void ThreadMain();
  void Wake();
  absl::Status CreateLoop();

  // LoopHandler.
  void OnAccept(int fd, uint32_t listener) override;
  void OnReceive(ConnectionId id, std::span<const uint8_t> bytes, bool more_queued) override;
  void OnReceiveEnd(ConnectionId id, int error) override;
  void OnSendComplete(ConnectionId id, int result) override;
  void OnReleased(ConnectionId id) override;
  void OnTick() override;
  void OnWake() override;
  void OnBatchEnd() override;

  void Listen(int fd, bool tls);
  void Adopt(int fd, bool tls);
  Connection* FindBySerial(uint64_t serial);
  void Approve(const Approval& approval);
  void LogSessionNotices(Connection& c);
  void Flush(Connection& c);
  // `end`: why its publishes end (end_reason); `reason`: the log's words.
  void CloseConnection(Connection& c, std::string_view end, std::string_view reason,
                       bool flush_first = false);
  // Counts in the server's metrics, when there are any.
  void Count(Counter ServerMetrics::*counter);
  void CountRefusals(const rtmp::Session::Refusals& refusals);
  // Copies the shard's own figures into its ShardMetrics.
  void PublishMetrics();
  void CheckTimeouts();
  // `elapsed_ms`: since the last update (about a second).
  void UpdateIngressRate(int64_t elapsed_ms);
  void ReportBufferShortages();
  void ReportSaturation();
  void BeginShutdown();
  // --proxy-protocol: the header's outcome for `c`; false when `c` was closed.
  bool TakeProxyHeader(Connection& c, std::span<const uint8_t>* bytes);
  // Counts `c` in the connection caps under its address; false (and closed) if refused.
  bool Admit(Connection& c);
  void BeginDrain();
  // Once a second while draining: asks whoever can to reconnect (a connection may become
  // able to, once connected), and closes the rest at the deadline.
  void DrainPass(int64_t now_ms);
  void AskToReconnect(Connection& c);

  const uint32_t index_;
  ShardContext* const context_;
  ringbuf::ShardWriter* const ring_;
  const int listen_fd_;
  const int tls_listen_fd_;
  std::vector<bool> listener_is_tls_;  // by the loop's listener index
  std::vector<uint8_t> tls_plain_;     // every RTMPS connection's records decrypt here
  std::thread thread_;
  std::latch started_{1};  // the thread set up its loop (or failed to)
  absl::Status start_status_;

  std::unique_ptr<EventLoop> loop_;
  SlabAllocator slab_;                                // the connections' message-assembly buffers
  rtmp::ServerConnectionOptions connection_options_;  // the server's, with slab_
  std::vector<std::unique_ptr<Connection>> connections_;  // by ConnectionId
  std::vector<ConnectionId> free_ids_;
  uint32_t live_ = 0;
  int64_t next_second_ms_ = 0;       // when OnTick() next does its once-a-second work
  uint64_t bytes_in_ = 0;            // since start, all connections
  uint64_t bytes_in_at_rate_ = 0;    // bytes_in_ at the last rate update
  uint64_t shortages_reported_ = 0;  // the loop's buffer_shortages at the last report
  // What ReportSaturation() compares with, taken a second before.
  struct LoadMark {
    int64_t time_ns = 0;  // CLOCK_MONOTONIC; 0: none yet
    ThreadLoad::Sample thread;
    uint64_t records = 0;  // written to the ring
    uint64_t bytes_in = 0;
  };
  std::unique_ptr<ThreadLoad> thread_load_;  // made on the shard's thread
  LoadMark load_mark_;
  int64_t saturated_since_ns_ = 0;  // 0: not saturated
  bool shutting_down_ = false;
  int64_t shutdown_deadline_ms_ = 0;
  bool draining_ = false;
  int64_t drain_deadline_ms_ = 0;

  internal::Mutex inbox_mu_;
  Inbox inbox_ ABSL_GUARDED_BY(inbox_mu_);

  std::atomic<uint64_t> ingress_rate_{0};
  std::atomic<uint32_t> connection_count_{0};
  std::atomic<uint32_t> fresh_{0};
  std::atomic<uint32_t> drain_asked_open_{0};
  std::atomic<uint32_t> drain_unasked_open_{0};
  std::atomic<bool> finished_{false};
  std::atomic<bool> running_{false};  // the loop exists: Wake() may reach it
};

}  // namespace uringest::engine

#endif  // URINGEST_ENGINE_SHARD_H_
