#include "engine/epoll_loop.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "absl/status/status.h"
#include "spdlog/spdlog.h"

namespace uringest::engine {
namespace {

// A connection's share of one wakeup: 16 reads of the default 32 KiB buffer is 512 KiB.
constexpr int kMaxReadsPerWakeup = 16;
constexpr size_t kMaxBytesPerWakeup = size_t{1} << 20;
constexpr int kMaxAcceptsPerWakeup = 64;
constexpr int kMaxEvents = 256;

// epoll_event.data.u64: bits 63..56 the Source, 55..32 the connection's generation (the
// low 24 bits), 31..0 the connection id or listener index. The generation tells an event
// of a closed connection from one of a new connection that took the same id.
enum class Source : uint8_t { kListener = 1, kConnection = 2, kTick = 3, kWake = 4 };
constexpr uint32_t kGenerationMask = (1u << 24) - 1;

uint64_t EncodeEventData(Source source, uint32_t generation, uint32_t index) {
  return uint64_t{static_cast<uint8_t>(source)} << 56 |
         uint64_t{generation & kGenerationMask} << 32 | index;
}

class EpollLoop final : public EventLoop {
 public:
  explicit EpollLoop(const EventLoopOptions& options) : options_(options) {}
  ~EpollLoop() override;
  EpollLoop(const EpollLoop&) = delete;
  EpollLoop& operator=(const EpollLoop&) = delete;

  absl::Status Init();

  absl::Status Listen(int fd) override;
  void StopListening() override;
  void Receive(ConnectionId id, int fd) override;
  void Send(ConnectionId id, std::span<const uint8_t> bytes) override;
  void Close(ConnectionId id) override;
  void Run(LoopHandler* handler) override;
  void Stop() override { stopped_ = true; }
  void Wake() override;
  const LoopCounters& counters() const override { return counters_; }
  std::string_view name() const override { return "epoll"; }

 private:
  // What the loop knows of a connection, from Receive() to Close().
  struct Connection {
    int fd = -1;
    uint32_t generation = 0;     // bumped by Close(): older events and work are stale
    bool open = false;           // between Receive() and Close()
    bool receive_ended = false;  // OnReceiveEnd() was delivered
    bool peer_hung_up = false;   // EPOLLRDHUP/HUP/ERR seen: read until EAGAIN or 0
    bool in_backlog = false;
    bool send_in_flight = false;
    const uint8_t* send_data = nullptr;
    size_t send_size = 0;
    size_t send_done = 0;
  };
  struct Listener {
    int fd = -1;  // -1 once StopListening() has dropped it
    bool in_backlog = false;
    bool retry_on_tick = false;  // out of descriptors: try again at the next tick
  };
  // Callbacks that must not run where they arise (inside Send() or Close()).
  struct Deferred {
    enum class Kind : uint8_t { kSendComplete, kReceiveEnd, kReleased } kind;
    ConnectionId id;
    uint32_t generation;
    int result;
  };
  // A connection or listener that spent its share of a wakeup with work left.
  struct Backlogged {
    Source source;
    uint32_t index;
    uint32_t generation;
  };

  bool IsCurrent(ConnectionId id, uint32_t generation) const;
  void HandleEvent(const epoll_event& event);
  void HandleConnectionEvent(ConnectionId id, uint32_t generation, uint32_t events);
  void HandleTick();
  void ReadConnection(ConnectionId id);
  void EndReceive(ConnectionId id, int error);
  void AcceptConnections(uint32_t listener);
  bool HandleAcceptError(uint32_t listener, int error);
  void ContinueSend(ConnectionId id);
  void ServeBacklog();
  void DeliverDeferred();

  const EventLoopOptions options_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  int tick_fd_ = -1;
  LoopHandler* handler_ = nullptr;
  bool stopped_ = false;

  std::unique_ptr<uint8_t[]> recv_buffer_;  // options_.recv_buffer_size bytes
  std::vector<Listener> listeners_;         // indices stay valid: StopListening() only marks them
  std::vector<Connection> connections_;
  std::vector<Backlogged> backlog_;
  std::vector<Backlogged> serving_;  // the backlog being served, swapped with backlog_
  std::vector<Deferred> deferred_;
  epoll_event events_[kMaxEvents];
  LoopCounters counters_;
};

EpollLoop::~EpollLoop() {
  for (Connection& c : connections_) {
    if (c.open) close(c.fd);
  }
  if (tick_fd_ >= 0) close(tick_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
  if (epoll_fd_ >= 0) close(epoll_fd_);
}

absl::Status EpollLoop::Init() {
  assert(options_.recv_buffer_size > 0);
  recv_buffer_ = std::make_unique_for_overwrite<uint8_t[]>(options_.recv_buffer_size);
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) return absl::ErrnoToStatus(errno, "epoll_create1");
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return absl::ErrnoToStatus(errno, "eventfd");
  tick_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (tick_fd_ < 0) return absl::ErrnoToStatus(errno, "timerfd_create");

  epoll_event wake{.events = EPOLLIN | EPOLLET};
  wake.data.u64 = EncodeEventData(Source::kWake, 0, 0);
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &wake) < 0) {
    return absl::ErrnoToStatus(errno, "epoll_ctl of the wake eventfd");
  }
  epoll_event tick{.events = EPOLLIN | EPOLLET};
  tick.data.u64 = EncodeEventData(Source::kTick, 0, 0);
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, tick_fd_, &tick) < 0) {
    return absl::ErrnoToStatus(errno, "epoll_ctl of the tick timerfd");
  }
  const int64_t tick_ns = std::max<int64_t>(absl::ToInt64Nanoseconds(options_.tick), 1);
  const timespec interval{.tv_sec = tick_ns / 1'000'000'000, .tv_nsec = tick_ns % 1'000'000'000};
  const itimerspec spec{.it_interval = interval, .it_value = interval};
  if (timerfd_settime(tick_fd_, 0, &spec, nullptr) < 0) {
    return absl::ErrnoToStatus(errno, "timerfd_settime");
  }
  return absl::OkStatus();
}

absl::Status EpollLoop::Listen(int fd) {
  const int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    return absl::ErrnoToStatus(errno, "fcntl(O_NONBLOCK) of a listener");
  }
  const auto index = uint32_t(listeners_.size());
  epoll_event event{.events = EPOLLIN | EPOLLET};
  event.data.u64 = EncodeEventData(Source::kListener, 0, index);
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) < 0) {
    return absl::ErrnoToStatus(errno, "epoll_ctl of a listener");
  }
  listeners_.push_back(Listener{.fd = fd});
  return absl::OkStatus();
}

void EpollLoop::StopListening() {
  // Events already fetched and backlogged listeners find fd == -1 and are dropped.
  for (Listener& l : listeners_) {
    if (l.fd >= 0) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, l.fd, nullptr);
    l = Listener{};
  }
}

void EpollLoop::Receive(ConnectionId id, int fd) {
  if (id >= connections_.size()) connections_.resize(size_t{id} + 1);
  Connection& c = connections_[id];
  assert(!c.open);
  c = Connection{.fd = fd, .generation = c.generation, .open = true};
  // Registering reports the socket's state at once: bytes that came before Receive()
  // are not lost to the edge trigger.
  epoll_event event{.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET};
  event.data.u64 = EncodeEventData(Source::kConnection, c.generation, id);
  const int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) ||
      epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) < 0) {
    c.receive_ended = true;
    deferred_.push_back({Deferred::Kind::kReceiveEnd, id, c.generation, -errno});
  }
}

void EpollLoop::Send(ConnectionId id, std::span<const uint8_t> bytes) {
  Connection& c = connections_[id];
  assert(c.open && !c.send_in_flight);
  c.send_in_flight = true;
  c.send_data = bytes.data();
  c.send_size = bytes.size();
  c.send_done = 0;
  ContinueSend(id);
}

// Sends what the socket takes. Completes (deferred) once all is sent or the socket
// fails; on EAGAIN it waits for EPOLLOUT, which the edge trigger reports once space
// frees up after the failed send.
void EpollLoop::ContinueSend(ConnectionId id) {
  Connection& c = connections_[id];
  while (c.send_done < c.send_size) {
    const ssize_t n =
        send(c.fd, c.send_data + c.send_done, c.send_size - c.send_done, MSG_NOSIGNAL);
    if (n >= 0) {
      c.send_done += size_t(n);
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return;
    } else if (errno != EINTR) {
      // Report the bytes that went out; the next send reports the error.
      const int result = c.send_done > 0 ? int(c.send_done) : -errno;
      c.send_done = c.send_size;
      c.send_in_flight = false;
      deferred_.push_back({Deferred::Kind::kSendComplete, id, c.generation, result});
      return;
    }
  }
  c.send_in_flight = false;
  deferred_.push_back({Deferred::Kind::kSendComplete, id, c.generation, int(c.send_done)});
}

void EpollLoop::Close(ConnectionId id) {
  Connection& c = connections_[id];
  assert(c.open);
  // Nothing is in flight in the kernel: the descriptor goes at once (and with it its
  // registration), and anything still queued for the connection is stale by generation.
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.fd, nullptr);
  close(c.fd);
  c = Connection{.generation = c.generation + 1};
  deferred_.push_back({Deferred::Kind::kReleased, id, c.generation, 0});
}

void EpollLoop::Wake() {
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof(one));
}

void EpollLoop::Run(LoopHandler* handler) {
  handler_ = handler;
  stopped_ = false;
  while (!stopped_) {
    // Backlogged work is served right after any events that are ready, without waiting.
    const int timeout = backlog_.empty() && deferred_.empty() ? -1 : 0;
    const int n = epoll_wait(epoll_fd_, events_, kMaxEvents, timeout);
    ++counters_.waits;
    if (n < 0 && errno != EINTR) {
      spdlog::critical("epoll_wait: {}", strerror(errno));
      std::abort();  // the shard can't go on without its epoll
    }
    for (int i = 0; i < n; ++i) {
      HandleEvent(events_[i]);
      DeliverDeferred();
    }
    ServeBacklog();
    DeliverDeferred();  // what the handler queued outside any event (e.g. before Run)
    handler_->OnBatchEnd();
  }
  handler_ = nullptr;
}

bool EpollLoop::IsCurrent(ConnectionId id, uint32_t generation) const {
  return id < connections_.size() && connections_[id].open &&
         (connections_[id].generation & kGenerationMask) == (generation & kGenerationMask);
}

void EpollLoop::HandleEvent(const epoll_event& event) {
  const uint64_t data = event.data.u64;
  const auto index = uint32_t(data);
  const auto generation = uint32_t(data >> 32) & kGenerationMask;
  switch (static_cast<Source>(data >> 56)) {
    case Source::kListener:
      AcceptConnections(index);
      break;
    case Source::kConnection:
      if (IsCurrent(index, generation)) HandleConnectionEvent(index, generation, event.events);
      break;
    case Source::kTick:
      HandleTick();
      break;
    case Source::kWake: {
      uint64_t count;
      [[maybe_unused]] ssize_t n = read(wake_fd_, &count, sizeof(count));
      handler_->OnWake();
      break;
    }
  }
}

void EpollLoop::HandleConnectionEvent(ConnectionId id, uint32_t generation, uint32_t events) {
  Connection& c = connections_[id];
  if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) c.peer_hung_up = true;
  if (c.send_in_flight && (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))) ContinueSend(id);
  if (!c.receive_ended && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
    ReadConnection(id);
  }
}

void EpollLoop::HandleTick() {
  uint64_t expirations;
  [[maybe_unused]] ssize_t n = read(tick_fd_, &expirations, sizeof(expirations));
  for (uint32_t i = 0; i < listeners_.size(); ++i) {
    if (!listeners_[i].retry_on_tick) continue;
    listeners_[i].retry_on_tick = false;
    AcceptConnections(i);
  }
  handler_->OnTick();  // missed expirations are folded into one tick
}

// Reads until the socket is drained or the connection has had its share of this wakeup.
// The handler may Close() the connection, or Receive() others (connections_ may move),
// from any callback: nothing of the connection is held across one.
void EpollLoop::ReadConnection(ConnectionId id) {
  const uint32_t generation = connections_[id].generation;
  const size_t size = options_.recv_buffer_size;
  size_t bytes = 0;
  for (int reads = 0; reads < kMaxReadsPerWakeup && bytes < kMaxBytesPerWakeup; ++reads) {
    const ssize_t n = recv(connections_[id].fd, recv_buffer_.get(), size, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return EndReceive(id, n == 0 ? 0 : -errno);
    ++counters_.receives;
    counters_.bytes_received += size_t(n);
    bytes += size_t(n);
    handler_->OnReceive(id, {recv_buffer_.get(), size_t(n)},
                        size_t(n) == options_.recv_buffer_size);
    DeliverDeferred();
    if (!IsCurrent(id, generation)) return;
    // A short read drained the socket: bytes that come later trigger a new edge. A FIN
    // already queued behind the bytes would not, so after a hang-up read on to the 0.
    if (size_t(n) < size && !connections_[id].peer_hung_up) return;
  }
  Connection& c = connections_[id];
  if (!c.in_backlog) {
    c.in_backlog = true;
    backlog_.push_back({Source::kConnection, id, generation});
  }
}

void EpollLoop::EndReceive(ConnectionId id, int error) {
  connections_[id].receive_ended = true;
  handler_->OnReceiveEnd(id, error);  // 0: the peer closed; -errno: failed
}

// Accepts until the backlog is empty or the listener has had its share of this wakeup.
void EpollLoop::AcceptConnections(uint32_t listener) {
  for (int i = 0; i < kMaxAcceptsPerWakeup; ++i) {
    const int listen_fd = listeners_[listener].fd;
    if (listen_fd < 0) return;  // StopListening(), perhaps from OnAccept()
    const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      handler_->OnAccept(fd, listener);
      DeliverDeferred();
    } else if (!HandleAcceptError(listener, errno)) {
      return;
    }
  }
  if (!listeners_[listener].in_backlog) {
    listeners_[listener].in_backlog = true;
    backlog_.push_back({Source::kListener, listener, 0});
  }
}

// Returns whether to go on accepting.
bool EpollLoop::HandleAcceptError(uint32_t listener, int error) {
  switch (error) {
    case EAGAIN:
      return false;
    case EINTR:
    case ECONNABORTED:
    case EPERM:  // a firewall rule refused it
    case EPROTO:
    case ENOPROTOOPT:
    case ENETDOWN:
    case ENETUNREACH:
    case EHOSTDOWN:
    case EHOSTUNREACH:
    case ENONET:
    case EOPNOTSUPP:
      // The new connection failed or was interrupted; accept4() reports its network
      // errors in its place (accept(2)). Go on with the next one.
      return true;
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
      // The process or system is out of something. The backlog waits; with the edge
      // trigger no event would come for it, so the next tick tries again.
      spdlog::warn("accept4: {}: retrying at the next tick", strerror(error));
      listeners_[listener].retry_on_tick = true;
      return false;
    default:
      // EBADF, EINVAL, ENOTSOCK: the listener itself is broken. Not the loop's to fix.
      spdlog::error("accept4 on listener {}: {}", listeners_[listener].fd, strerror(error));
      return false;
  }
}

// Gives each backlogged connection and listener one more share, in the order they
// were put back. Those that still have work left are backlogged again.
void EpollLoop::ServeBacklog() {
  serving_.swap(backlog_);
  for (const Backlogged& b : serving_) {
    if (b.source == Source::kListener) {
      listeners_[b.index].in_backlog = false;
      AcceptConnections(b.index);
    } else if (IsCurrent(b.index, b.generation)) {
      connections_[b.index].in_backlog = false;
      if (!connections_[b.index].receive_ended) ReadConnection(b.index);
    }
    DeliverDeferred();
  }
  serving_.clear();
}

// Delivers what Send(), Close() and Receive() queued. Callbacks may queue more.
void EpollLoop::DeliverDeferred() {
  for (size_t i = 0; i < deferred_.size(); ++i) {
    const Deferred d = deferred_[i];
    switch (d.kind) {
      case Deferred::Kind::kSendComplete:
        if (IsCurrent(d.id, d.generation)) handler_->OnSendComplete(d.id, d.result);
        break;
      case Deferred::Kind::kReceiveEnd:
        if (IsCurrent(d.id, d.generation)) handler_->OnReceiveEnd(d.id, d.result);
        break;
      case Deferred::Kind::kReleased:
        handler_->OnReleased(d.id);
        break;
    }
  }
  deferred_.clear();
}

}  // namespace

absl::StatusOr<std::unique_ptr<EventLoop>> CreateEpollLoop(const EventLoopOptions& options) {
  auto loop = std::make_unique<EpollLoop>(options);
  if (absl::Status s = loop->Init(); !s.ok()) return s;
  return loop;
}

}  // namespace uringest::engine
