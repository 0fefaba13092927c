// The EventLoop contract, checked over both loops on real loopback TCP sockets. The loop
// runs on its own thread, where it is created, run and destroyed (the io_uring loop's
// ring is single-issuer); the test talks to it through a RecordingHandler, which records
// every callback, flags any that breaks the contract, and runs commands on the loop's
// thread from OnWake().

#include "engine/event_loop.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <latch>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "engine/epoll_loop.h"
#include "engine/io_uring_probe.h"
#include "engine/uring_loop.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace uringest::engine {
namespace {

using Bytes = std::vector<uint8_t>;
using ::testing::IsEmpty;

// Every wait gives up after this: a broken loop fails the test instead of hanging it.
constexpr auto kTimeout = std::chrono::seconds(10);
constexpr size_t kMiB = size_t{1} << 20;

enum class Backend { kIoUring, kEpoll };

const IoUringSupport& Support() {
  static const IoUringSupport* const support = new IoUringSupport(ProbeIoUring());
  return *support;
}

absl::StatusOr<std::unique_ptr<EventLoop>> CreateLoop(Backend backend,
                                                      const EventLoopOptions& options) {
  if (backend == Backend::kIoUring) return CreateUringLoop(options, Support());
  return CreateEpollLoop(options);
}

Bytes RandomBytes(size_t size, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Bytes bytes(size);
  for (size_t i = 0; i < size; i += 8) {
    const uint64_t value = rng();
    std::memcpy(&bytes[i], &value, std::min<size_t>(8, size - i));
  }
  return bytes;
}

testing::AssertionResult SameBytes(const Bytes& got, const Bytes& want) {
  if (got.size() != want.size()) {
    return testing::AssertionFailure() << "got " << got.size() << " bytes, want " << want.size();
  }
  const auto [g, w] = std::mismatch(got.begin(), got.end(), want.begin());
  if (g != got.end()) {
    return testing::AssertionFailure() << "first difference at byte " << (g - got.begin());
  }
  return testing::AssertionSuccess();
}

// A blocking loopback client whose every call gives up after kTimeout.
class Client {
 public:
  explicit Client(uint16_t port, int receive_buffer = 0) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (receive_buffer > 0) {
      setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof(receive_buffer));
    }
    const timeval timeout{.tv_sec = std::chrono::seconds(kTimeout).count()};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
    sockaddr_in addr{.sin_family = AF_INET, .sin_port = htons(port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) < 0) Close();
  }
  ~Client() { Close(); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool ok() const { return fd_ >= 0; }
  int fd() const { return fd_; }

  bool SendAll(std::span<const uint8_t> bytes) {
    while (!bytes.empty()) {
      const ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;  // a signal, not the peer
      if (n <= 0) return false;
      bytes = bytes.subspan(size_t(n));
    }
    return true;
  }
  bool SendAll(std::string_view text) {
    return SendAll({reinterpret_cast<const uint8_t*>(text.data()), text.size()});
  }
  // Reads `size` bytes in reads of at most `chunk`, pausing after every `pause_every`
  // bytes to stay slower than the sender (pacing, not correctness).
  bool ReadExactly(size_t size, Bytes* out, size_t chunk, size_t pause_every = 0) {
    out->resize(size);
    for (size_t done = 0, since_pause = 0; done < size;) {
      const ssize_t n = recv(fd_, out->data() + done, std::min(chunk, size - done), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      done += size_t(n);
      since_pause += size_t(n);
      if (pause_every > 0 && since_pause >= pause_every) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        since_pause = 0;
      }
    }
    return true;
  }
  // Waits for the server's end of the connection: true on EOF or a reset, false if
  // nothing came within kTimeout. Bytes before the end are discarded.
  bool WaitForEnd() {
    uint8_t scratch[16 << 10];
    for (;;) {
      const ssize_t n = recv(fd_, scratch, sizeof(scratch), 0);
      if (n == 0) return true;
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return errno != EAGAIN && errno != EWOULDBLOCK;
    }
  }
  // Closes with a RST instead of a FIN.
  void Reset() {
    const linger abort{.l_onoff = 1, .l_linger = 0};
    setsockopt(fd_, SOL_SOCKET, SO_LINGER, &abort, sizeof(abort));
    Close();
  }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// What the handler saw of one connection.
struct ConnectionRecord {
  uint32_t listener = 0;  // OnAccept()'s listener index
  Bytes received;         // when the handler keeps bytes
  uint64_t bytes_received = 0;
  size_t largest_receive = 0;  // the most bytes one OnReceive carried
  std::optional<int> receive_end;
  int releases = 0;
  bool closed = false;  // Close() was called
  // The handler's send: all of `outgoing`, re-sent from where a partial send stopped.
  std::span<const uint8_t> outgoing;
  size_t sent = 0;
  int partial_sends = 0;
  std::optional<int> send_result;  // all bytes sent, or -errno
};

struct Record {
  std::map<ConnectionId, ConnectionRecord> connections;  // ids in order of accept
  int accepts = 0;
  int ticks = 0;
  int wakes = 0;
  std::vector<std::string> violations;  // callbacks that break the contract
};

// Callbacks run on the loop's thread; the test reads the record under the mutex.
class RecordingHandler final : public LoopHandler {
 public:
  using Command = std::function<void(EventLoop&, RecordingHandler&)>;

  // Set before the loop starts.
  bool keep_bytes = true;
  bool close_on_first_receive = false;

  // Loop thread: the loop the callbacks use, or nullptr once it stops.
  void Attach(EventLoop* loop) {
    std::lock_guard lock(mu_);
    loop_ = loop;
  }

  // Test thread: runs `command` on the loop's thread and waits until it has run.
  bool RunOnLoop(Command command) {
    uint64_t ticket;
    EventLoop* loop;
    {
      std::lock_guard lock(mu_);
      commands_.push_back(std::move(command));
      ticket = ++commands_posted_;
      loop = loop_;
    }
    if (loop == nullptr) return false;
    loop->Wake();
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kTimeout, [&] { return commands_done_ >= ticket; });
  }
  // Test thread: calls Wake() directly.
  void WakeLoop() {
    std::unique_lock lock(mu_);
    EventLoop* loop = loop_;
    lock.unlock();
    if (loop != nullptr) loop->Wake();
  }
  bool WaitFor(const std::function<bool(const Record&)>& done) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kTimeout, [&] { return done(record_); });
  }
  template <typename F>
  auto Read(F read) {
    std::lock_guard lock(mu_);
    return read(std::as_const(record_));
  }

  // Loop thread (from commands).
  void SendAll(ConnectionId id, std::span<const uint8_t> bytes) {
    {
      std::lock_guard lock(mu_);
      ConnectionRecord& c = record_.connections[id];
      c.outgoing = bytes;
      c.sent = 0;
      c.send_result.reset();
    }
    CallSend(id, bytes);
  }
  void CloseConnection(ConnectionId id) {
    {
      std::lock_guard lock(mu_);
      record_.connections[id].closed = true;
    }
    in_close_ = true;
    loop_->Close(id);
    in_close_ = false;
  }

  void OnAccept(int fd, uint32_t listener) override {
    ConnectionId id;
    {
      std::lock_guard lock(mu_);
      id = ConnectionId(record_.accepts++);
      record_.connections[id].listener = listener;
    }
    cv_.notify_all();
    loop_->Receive(id, fd);
  }

  void OnReceive(ConnectionId id, std::span<const uint8_t> bytes, bool more_queued) override {
    bool close = false;
    {
      std::lock_guard lock(mu_);
      ConnectionRecord& c = Known(id, "OnReceive");
      if (c.receive_end) Violation(id, "OnReceive after OnReceiveEnd");
      if (bytes.empty()) Violation(id, "OnReceive with no bytes");
      if (keep_bytes) c.received.insert(c.received.end(), bytes.begin(), bytes.end());
      c.bytes_received += bytes.size();
      c.largest_receive = std::max(c.largest_receive, bytes.size());
      close = close_on_first_receive && !c.closed;
    }
    cv_.notify_all();
    if (close) CloseConnection(id);
  }

  void OnReceiveEnd(ConnectionId id, int error) override {
    {
      std::lock_guard lock(mu_);
      ConnectionRecord& c = Known(id, "OnReceiveEnd");
      if (c.receive_end) Violation(id, "OnReceiveEnd twice");
      c.receive_end = error;
    }
    cv_.notify_all();
  }

  void OnSendComplete(ConnectionId id, int result) override {
    std::span<const uint8_t> rest;
    {
      std::lock_guard lock(mu_);
      if (in_send_) Violation(id, "OnSendComplete from inside Send()");
      ConnectionRecord& c = Known(id, "OnSendComplete");
      if (result <= 0) {
        if (result == 0 && c.sent < c.outgoing.size()) Violation(id, "a send sent nothing");
        c.send_result = result;
      } else {
        c.sent += size_t(result);
        if (c.sent < c.outgoing.size()) {
          rest = c.outgoing.subspan(c.sent);
          ++c.partial_sends;
        } else {
          c.send_result = int(c.sent);
        }
      }
    }
    cv_.notify_all();
    if (!rest.empty()) CallSend(id, rest);
  }

  void OnReleased(ConnectionId id) override {
    {
      std::lock_guard lock(mu_);
      if (in_close_) Violation(id, "OnReleased from inside Close()");
      ConnectionRecord& c = record_.connections[id];
      if (!c.closed) Violation(id, "OnReleased without Close()");
      if (++c.releases > 1) Violation(id, "OnReleased twice");
    }
    cv_.notify_all();
  }

  void OnTick() override {
    {
      std::lock_guard lock(mu_);
      ++record_.ticks;
    }
    cv_.notify_all();
  }

  void OnWake() override {
    std::vector<Command> commands;
    EventLoop* loop;
    {
      std::lock_guard lock(mu_);
      ++record_.wakes;
      commands.swap(commands_);
      loop = loop_;
    }
    for (Command& command : commands) command(*loop, *this);
    {
      std::lock_guard lock(mu_);
      commands_done_ += commands.size();
    }
    cv_.notify_all();
  }

 private:
  void CallSend(ConnectionId id, std::span<const uint8_t> bytes) {
    in_send_ = true;
    loop_->Send(id, bytes);
    in_send_ = false;
  }
  // REQUIRES: mu_ held.
  ConnectionRecord& Known(ConnectionId id, const char* callback) {
    auto it = record_.connections.find(id);
    if (it == record_.connections.end()) {
      Violation(id, std::string(callback) + " of an unknown connection");
      return record_.connections[id];
    }
    if (it->second.closed) Violation(id, std::string(callback) + " after Close()");
    return it->second;
  }
  // REQUIRES: mu_ held.
  void Violation(ConnectionId id, const std::string& what) {
    record_.violations.push_back("connection " + std::to_string(id) + ": " + what);
  }

  std::mutex mu_;
  std::condition_variable cv_;
  Record record_;                  // guarded by mu_
  std::vector<Command> commands_;  // guarded by mu_
  uint64_t commands_posted_ = 0;   // guarded by mu_
  uint64_t commands_done_ = 0;     // guarded by mu_
  EventLoop* loop_ = nullptr;      // written under mu_ by the loop thread
  bool in_send_ = false;           // loop thread only
  bool in_close_ = false;          // loop thread only
};

class EventLoopTest : public testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam() == Backend::kIoUring && !Support().usable()) {
      GTEST_SKIP() << "io_uring is not usable here: " << Support().reason;
    }
    listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(listener_, 0) << strerror(errno);
    sockaddr_in addr{.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    ASSERT_EQ(bind(listener_, reinterpret_cast<sockaddr*>(&addr), len), 0) << strerror(errno);
    ASSERT_EQ(listen(listener_, 128), 0) << strerror(errno);
    ASSERT_EQ(getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    port_ = ntohs(addr.sin_port);
  }

  void TearDown() override {
    StopLoop();
    if (listener_ >= 0) close(listener_);
    EXPECT_THAT(handler_.Read([](const Record& r) { return r.violations; }), IsEmpty());
  }

  // Creates, runs and destroys the loop on its own thread, listening on listener_.
  void StartLoop(EventLoopOptions options = {}) {
    const Backend backend = GetParam();
    loop_thread_ = std::thread([this, backend, options] {
      absl::StatusOr<std::unique_ptr<EventLoop>> loop = CreateLoop(backend, options);
      absl::Status status = loop.ok() ? (*loop)->Listen(listener_) : loop.status();
      if (status.ok()) handler_.Attach(loop->get());
      {
        std::lock_guard lock(start_mu_);
        start_status_ = status;
      }
      start_cv_.notify_all();
      if (!status.ok()) return;
      (*loop)->Run(&handler_);
      counters_ = (*loop)->counters();
      name_ = std::string((*loop)->name());
      handler_.Attach(nullptr);
    });
    std::unique_lock lock(start_mu_);
    ASSERT_TRUE(start_cv_.wait_for(lock, kTimeout, [&] { return start_status_.has_value(); }));
    ASSERT_TRUE(start_status_->ok()) << *start_status_;
  }

  // Stops the loop and joins its thread; counters_ and name_ are then the loop's.
  void StopLoop() {
    if (!loop_thread_.joinable()) return;
    const bool stopped =
        handler_.RunOnLoop([](EventLoop& loop, RecordingHandler&) { loop.Stop(); });
    if (!stopped && start_status_->ok()) {
      std::fprintf(stderr, "the loop did not stop within the timeout\n");
      std::abort();  // joining would hang
    }
    loop_thread_.join();
  }

  bool WaitForAccepts(int count) {
    return handler_.WaitFor([count](const Record& r) { return r.accepts >= count; });
  }
  // Waits for `count` more ticks: the loop has gone round at least that many times.
  bool WaitForTicks(int count) {
    const int target = handler_.Read([](const Record& r) { return r.ticks; }) + count;
    return handler_.WaitFor([target](const Record& r) { return r.ticks >= target; });
  }
  bool WaitForReceiveEnd(ConnectionId id) {
    return handler_.WaitFor([id](const Record& r) {
      auto it = r.connections.find(id);
      return it != r.connections.end() && it->second.receive_end.has_value();
    });
  }
  ConnectionRecord Connection(ConnectionId id) {
    return handler_.Read([id](const Record& r) {
      auto it = r.connections.find(id);
      return it == r.connections.end() ? ConnectionRecord{} : it->second;
    });
  }

  int listener_ = -1;
  uint16_t port_ = 0;
  RecordingHandler handler_;
  Bytes payload_;  // what the loop sends: outlives the loop
  std::thread loop_thread_;
  std::mutex start_mu_;
  std::condition_variable start_cv_;
  std::optional<absl::Status> start_status_;  // guarded by start_mu_
  LoopCounters counters_;                     // after StopLoop()
  std::string name_;                          // after StopLoop()
};

// The kernel frees a ring some time after it is closed and then interrupts the tasks
// that used it. Probing must not leave that to the caller: a blocking receive with a
// timeout (SO_RCVTIMEO) right after a probe times out, and does not fail with EINTR.
TEST(ProbeTest, ProbingLeavesTheCallersTimedCallsAlone) {
  for (int i = 0; i < 10; ++i) {
    const IoUringSupport support = ProbeIoUring();
    if (!support.setup) GTEST_SKIP() << "io_uring is unavailable: " << support.reason;
    int pair[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
    const timeval timeout{.tv_usec = 100'000};
    ASSERT_EQ(setsockopt(pair[0], SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout)), 0);
    char byte;
    const ssize_t n = recv(pair[0], &byte, 1, 0);
    const int error = errno;
    close(pair[0]);
    close(pair[1]);
    ASSERT_EQ(n, -1);
    EXPECT_EQ(error, EAGAIN) << "probe " << i << ": " << strerror(error);
  }
}

TEST_P(EventLoopTest, AcceptsOnListenerBoundToPortZero) {
  StartLoop();
  Client client(port_);
  ASSERT_TRUE(client.ok()) << strerror(errno);
  ASSERT_TRUE(WaitForAccepts(1));
  StopLoop();
  EXPECT_EQ(name_, GetParam() == Backend::kIoUring ? "io_uring" : "epoll");
}

// The shard tells its RTMPS listener from its RTMP one by this index.
TEST_P(EventLoopTest, AcceptNamesTheListenerInTheOrderOfListen) {
  const int second = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(second, 0) << strerror(errno);
  sockaddr_in addr{.sin_family = AF_INET, .sin_port = 0};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(bind(second, reinterpret_cast<sockaddr*>(&addr), len), 0) << strerror(errno);
  ASSERT_EQ(listen(second, 16), 0) << strerror(errno);
  ASSERT_EQ(getsockname(second, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  StartLoop();
  ASSERT_TRUE(handler_.RunOnLoop(
      [second](EventLoop& loop, RecordingHandler&) { ASSERT_TRUE(loop.Listen(second).ok()); }));
  Client to_second(ntohs(addr.sin_port));
  ASSERT_TRUE(to_second.ok());
  ASSERT_TRUE(WaitForAccepts(1));
  Client to_first(port_);
  ASSERT_TRUE(to_first.ok());
  ASSERT_TRUE(WaitForAccepts(2));
  EXPECT_EQ(Connection(0).listener, 1u);
  EXPECT_EQ(Connection(1).listener, 0u);
  StopLoop();
  close(second);
}

TEST_P(EventLoopTest, TwentyMegabytesInRandomSizesArriveIntactAndInOrder) {
  StartLoop();
  Client client(port_);
  ASSERT_TRUE(client.ok());
  const Bytes data = RandomBytes(20 * kMiB, 1);
  // Sizes from 1 byte to 256 KiB, spread evenly over their orders of magnitude.
  std::mt19937 rng(2);
  std::uniform_int_distribution<int> order(0, 18);
  for (size_t offset = 0; offset < data.size();) {
    const size_t max = std::uniform_int_distribution<size_t>(1, size_t{1} << order(rng))(rng);
    const size_t len = std::min(max, data.size() - offset);
    ASSERT_TRUE(client.SendAll({data.data() + offset, len})) << strerror(errno);
    offset += len;
  }
  client.Close();
  ASSERT_TRUE(WaitForReceiveEnd(0));
  const ConnectionRecord c = Connection(0);
  EXPECT_EQ(c.receive_end, 0);
  EXPECT_TRUE(SameBytes(c.received, data));
  StopLoop();
  EXPECT_EQ(counters_.bytes_received, data.size());
  EXPECT_GT(counters_.receives, 0u);
}

// With recv bundles, a completion's adjacent buffers reach the handler as one span, also
// across the many wraps of a small pool.
TEST_P(EventLoopTest, BundledBuffersArriveAsOneSpanIntactAcrossWraps) {
  if (GetParam() != Backend::kIoUring || !Support().recv_bundle) {
    GTEST_SKIP() << "needs io_uring recv bundles (kernel 6.10)";
  }
  StartLoop({.recv_buffers = 16, .recv_buffer_size = 4096});
  Client client(port_);
  ASSERT_TRUE(client.ok());
  const Bytes data = RandomBytes(8 * kMiB, 4);
  ASSERT_TRUE(client.SendAll(data)) << strerror(errno);
  client.Close();
  ASSERT_TRUE(WaitForReceiveEnd(0));
  const ConnectionRecord c = Connection(0);
  EXPECT_TRUE(SameBytes(c.received, data));
  StopLoop();
  ASSERT_GT(counters_.bundled_buffers, 0u) << "no completion filled more than one buffer";
  EXPECT_GT(c.largest_receive, 4096u);
  EXPECT_LE(c.largest_receive, 16u * 4096);
}

// The io_uring loop without recv bundles: one buffer per completion, as on kernels
// before 6.10 (with them, the test above usually sees several buffers per completion).
TEST_P(EventLoopTest, EightMegabytesArriveIntactWithoutRecvBundles) {
  StartLoop({.recv_buffers = 16, .recv_buffer_size = 4096, .recv_bundles = false});
  Client client(port_);
  ASSERT_TRUE(client.ok());
  const Bytes data = RandomBytes(8 * kMiB, 3);
  ASSERT_TRUE(client.SendAll(data)) << strerror(errno);
  client.Close();
  ASSERT_TRUE(WaitForReceiveEnd(0));
  EXPECT_TRUE(SameBytes(Connection(0).received, data));
  StopLoop();
  EXPECT_EQ(counters_.bundled_buffers, 0u);
}

// Many connections sending small messages keep the loop busy: with batch_wait its waits
// gather completions instead of waking for each message. (Without it the loop woke for
// about every other message here: checked by setting batch_wait to zero.)
TEST_P(EventLoopTest, BusyLoopGathersCompletionsIntoBatchesAndLosesNothing) {
  if (GetParam() != Backend::kIoUring) GTEST_SKIP() << "batch_wait is the io_uring loop's";
  StartLoop({.batch_wait = absl::Milliseconds(20)});
  constexpr int kClients = 64;
  constexpr int kRounds = 60;
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<Client>(port_));
    ASSERT_TRUE(clients.back()->ok());
  }
  ASSERT_TRUE(WaitForAccepts(kClients));
  auto waits = [this] {
    uint64_t waits = 0;
    EXPECT_TRUE(handler_.RunOnLoop(
        [&waits](EventLoop& loop, RecordingHandler&) { waits = loop.counters().waits; }));
    return waits;
  };
  const uint64_t waits_before = waits();
  const Bytes message = RandomBytes(200, 5);
  for (int round = 0; round < kRounds; ++round) {
    for (auto& client : clients) ASSERT_TRUE(client->SendAll(message));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const uint64_t all_bytes = uint64_t{kClients} * kRounds * message.size();
  ASSERT_TRUE(handler_.WaitFor([all_bytes](const Record& r) {
    uint64_t bytes = 0;
    for (const auto& [id, c] : r.connections) bytes += c.bytes_received;
    return bytes == all_bytes;
  }));
  const uint64_t waits_sending = waits() - waits_before;
  EXPECT_LE(waits_sending * 8, uint64_t{kClients} * kRounds)
      << waits_sending << " waits for " << kClients * kRounds << " messages";
  for (auto& client : clients) client->Close();
  for (int i = 0; i < kClients; ++i) ASSERT_TRUE(WaitForReceiveEnd(ConnectionId(i)));
  Bytes each_sent;
  for (int round = 0; round < kRounds; ++round) {
    each_sent.insert(each_sent.end(), message.begin(), message.end());
  }
  for (int i = 0; i < kClients; ++i) {
    EXPECT_TRUE(SameBytes(Connection(ConnectionId(i)).received, each_sent)) << i;
  }
  StopLoop();
  EXPECT_GT(counters_.batch_waits, 0u);
}

// An idle loop wakes for the first completion: a lone message is not held for batch_wait.
TEST_P(EventLoopTest, IdleLoopDeliversALoneMessageWithoutWaitingForABatch) {
  StartLoop({.batch_wait = absl::Seconds(5)});
  Client client(port_);
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(WaitForAccepts(1));
  ASSERT_TRUE(WaitForTicks(2));  // the accept's wait is over: the loop is idle
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(client.SendAll("x"));
  ASSERT_TRUE(
      handler_.WaitFor([](const Record& r) { return r.connections.at(0).bytes_received == 1; }));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  StopLoop();
  EXPECT_EQ(counters_.batch_waits, 0u);
}

TEST_P(EventLoopTest, LargeSendToSlowReaderArrivesWholeAndInOrder) {
  StartLoop();
  Client client(port_, /*receive_buffer=*/64 << 10);
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(WaitForAccepts(1));
  payload_ = RandomBytes(8 * kMiB, 3);
  ASSERT_TRUE(
      handler_.RunOnLoop([this](EventLoop&, RecordingHandler& h) { h.SendAll(0, payload_); }));
  Bytes got;
  ASSERT_TRUE(client.ReadExactly(payload_.size(), &got, 16 << 10, 256 << 10));
  EXPECT_TRUE(SameBytes(got, payload_));
  ASSERT_TRUE(handler_.WaitFor(
      [](const Record& r) { return r.connections.at(0).send_result.has_value(); }));
  const ConnectionRecord c = Connection(0);
  EXPECT_EQ(c.send_result, int(payload_.size()));
  RecordProperty("partial_sends", c.partial_sends);
}

TEST_P(EventLoopTest, SmallSendCompletesWithItsByteCount) {
  StartLoop();
  Client client(port_);
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(WaitForAccepts(1));
  payload_ = {'h', 'e', 'l', 'l', 'o'};
  ASSERT_TRUE(
      handler_.RunOnLoop([this](EventLoop&, RecordingHandler& h) { h.SendAll(0, payload_); }));
  Bytes got;
  ASSERT_TRUE(client.ReadExactly(5, &got, 5));
  EXPECT_EQ(got, payload_);
  ASSERT_TRUE(handler_.WaitFor(
      [](const Record& r) { return r.connections.at(0).send_result.has_value(); }));
  EXPECT_EQ(Connection(0).send_result, 5);
  EXPECT_EQ(Connection(0).partial_sends, 0);
}

TEST_P(EventLoopTest, PeerCloseEndsReceiveWithZero) {
  StartLoop();
  Client client(port_);
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(client.SendAll("bye"));
  client.Close();
  ASSERT_TRUE(WaitForReceiveEnd(0));
  const ConnectionRecord c = Connection(0);
  EXPECT_EQ(c.receive_end, 0);
  EXPECT_EQ(std::string(c.received.begin(), c.received.end()), "bye");
}

TEST_P(EventLoopTest, PeerResetEndsReceiveWithConnReset) {
  StartLoop();
  Client client(port_);
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(WaitForAccepts(1));
  client.Reset();
  ASSERT_TRUE(WaitForReceiveEnd(0));
  EXPECT_EQ(Connection(0).receive_end, -ECONNRESET);
}

TEST_P(EventLoopTest, CloseInsideReceiveReleasesOnceAndSilencesConnection) {
  handler_.close_on_first_receive = true;
  StartLoop({.tick = absl::Milliseconds(10)});
  Client client(port_);
  ASSERT_TRUE(client.ok());
  const Bytes data = RandomBytes(kMiB, 4);
  client.SendAll(data);  // fails once the loop has closed: that is expected
  EXPECT_TRUE(client.WaitForEnd());
  ASSERT_TRUE(handler_.WaitFor(
      [](const Record& r) { return r.connections.count(0) && r.connections.at(0).releases > 0; }));
  // Let whatever was still in flight for it come in; none of it may reach the handler.
  ASSERT_TRUE(WaitForTicks(3));
  const ConnectionRecord c = Connection(0);
  EXPECT_EQ(c.releases, 1);
  EXPECT_GT(c.bytes_received, 0u);
  EXPECT_FALSE(c.receive_end.has_value());
}

TEST_P(EventLoopTest, CloseWithSendInFlightReleasesWithoutCompletion) {
  StartLoop({.tick = absl::Milliseconds(10)});
  Client client(port_, /*receive_buffer=*/64 << 10);  // and it never reads
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(WaitForAccepts(1));
  // More than the socket buffers on both sides can hold (tcp_wmem's maximum is 4 MiB by
  // default), so the send is stuck.
  payload_ = Bytes(32 * kMiB, 0x5a);
  ASSERT_TRUE(
      handler_.RunOnLoop([this](EventLoop&, RecordingHandler& h) { h.SendAll(0, payload_); }));
  ASSERT_TRUE(WaitForTicks(3));
  ASSERT_FALSE(Connection(0).send_result.has_value());
  ASSERT_TRUE(handler_.RunOnLoop([](EventLoop&, RecordingHandler& h) { h.CloseConnection(0); }));
  ASSERT_TRUE(handler_.WaitFor([](const Record& r) { return r.connections.at(0).releases > 0; }));
  EXPECT_TRUE(client.WaitForEnd());
  ASSERT_TRUE(WaitForTicks(3));
  const ConnectionRecord c = Connection(0);
  EXPECT_EQ(c.releases, 1);
  EXPECT_FALSE(c.send_result.has_value());
}

TEST_P(EventLoopTest, WakeFromAnotherThreadCallsOnWake) {
  StartLoop();
  const int wakes = handler_.Read([](const Record& r) { return r.wakes; });
  std::thread waker([this] { handler_.WakeLoop(); });
  waker.join();
  EXPECT_TRUE(handler_.WaitFor([wakes](const Record& r) { return r.wakes > wakes; }));
}

TEST_P(EventLoopTest, TicksArrive) {
  StartLoop({.tick = absl::Milliseconds(10)});
  EXPECT_TRUE(WaitForTicks(5));
}

TEST_P(EventLoopTest, TinyBufferPoolSurvivesBurstFromEightClients) {
  constexpr int kClients = 8;
  StartLoop({.recv_buffers = 4, .recv_buffer_size = 4096});
  std::vector<Bytes> data;
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < kClients; ++i) {
    data.push_back(RandomBytes(kMiB, 100 + i));
    clients.push_back(std::make_unique<Client>(port_));
    ASSERT_TRUE(clients.back()->ok());
  }
  ASSERT_TRUE(WaitForAccepts(kClients));
  std::latch start(kClients);
  std::atomic<int> sent{0};
  std::vector<std::thread> senders;
  for (int i = 0; i < kClients; ++i) {
    senders.emplace_back([&, i] {
      start.arrive_and_wait();
      if (clients[i]->SendAll(data[i])) ++sent;
      clients[i]->Close();
    });
  }
  for (std::thread& t : senders) t.join();
  ASSERT_EQ(sent, kClients);
  ASSERT_TRUE(handler_.WaitFor([](const Record& r) {
    int ended = 0;
    for (const auto& [id, c] : r.connections) ended += c.receive_end.has_value();
    return ended == kClients;
  }));
  // Connections are accepted in no set order: match each client's bytes to one.
  std::vector<Bytes> received;
  for (ConnectionId id = 0; id < kClients; ++id) {
    const ConnectionRecord c = Connection(id);
    EXPECT_EQ(c.receive_end, 0);
    received.push_back(c.received);
  }
  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(std::count(received.begin(), received.end(), data[i]), 1) << "client " << i;
  }
  StopLoop();
  EXPECT_EQ(counters_.bytes_received, kClients * kMiB);
  RecordProperty("buffer_shortages", std::to_string(counters_.buffer_shortages));
  RecordProperty("rearms", std::to_string(counters_.rearms));
}

TEST_P(EventLoopTest, StopListeningStopsNewAccepts) {
  StartLoop({.tick = absl::Milliseconds(10)});
  Client first(port_);
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(WaitForAccepts(1));
  ASSERT_TRUE(handler_.RunOnLoop([](EventLoop& loop, RecordingHandler&) { loop.StopListening(); }));
  // One more trip round the loop: what StopListening() queued has reached the kernel.
  ASSERT_TRUE(handler_.RunOnLoop([](EventLoop&, RecordingHandler&) {}));
  Client second(port_);  // the kernel's backlog still completes the handshake
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(WaitForTicks(5));
  ASSERT_TRUE(handler_.RunOnLoop([](EventLoop&, RecordingHandler&) {}));
  EXPECT_EQ(handler_.Read([](const Record& r) { return r.accepts; }), 1);
}

TEST_P(EventLoopTest, FloodingConnectionDoesNotStarveAnother) {
  handler_.keep_bytes = false;
  StartLoop();
  Client flooder(port_);
  ASSERT_TRUE(flooder.ok());
  ASSERT_TRUE(WaitForAccepts(1));
  std::atomic<bool> stop{false};
  std::thread flood([&] {
    const Bytes chunk(64 << 10, 0xab);
    while (!stop && flooder.SendAll(chunk)) {
    }
  });
  const bool flowing = handler_.WaitFor(
      [](const Record& r) { return r.connections.at(0).bytes_received > 4 * kMiB; });
  Client other(port_);
  const bool accepted = other.ok() && WaitForAccepts(2);
  const bool served = accepted && other.SendAll("ping") && handler_.WaitFor([](const Record& r) {
    return r.connections.at(1).bytes_received == 4;
  });
  const bool still_flooding =
      !handler_.Read([](const Record& r) { return r.connections.at(0).receive_end.has_value(); });
  stop = true;
  flood.join();
  EXPECT_TRUE(flowing);
  EXPECT_TRUE(accepted);
  EXPECT_TRUE(served);
  EXPECT_TRUE(still_flooding);
}

INSTANTIATE_TEST_SUITE_P(Loops, EventLoopTest, testing::Values(Backend::kIoUring, Backend::kEpoll),
                         [](const testing::TestParamInfo<Backend>& info) {
                           return info.param == Backend::kIoUring ? "IoUring" : "Epoll";
                         });

}  // namespace
}  // namespace uringest::engine
