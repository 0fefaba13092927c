#include "engine/uring_loop.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/internal/uring_compat.h"
#include "engine/internal/uring_user_data.h"
#include "engine/memory_region.h"
#include "spdlog/spdlog.h"

namespace uringest::engine {
namespace {

using internal::EncodeUserData;
using internal::Op;

constexpr uint16_t kBufferGroup = 0;
constexpr unsigned kCompletionBatch = 256;
// A wait that brought at least this many completions means the shard is busy: the next
// one gathers a batch (EventLoopOptions::batch_wait).
constexpr unsigned kBusyCompletions = 8;

class UringLoop final : public EventLoop {
 public:
  UringLoop(const EventLoopOptions& options, const IoUringSupport& support)
      : options_(options), support_(support) {}
  ~UringLoop() override;

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
  std::string_view name() const override { return "io_uring"; }

 private:
  // What the loop knows of a connection: its descriptor and what is in flight.
  struct Connection {
    int fd = -1;
    bool recv_armed = false;
    bool send_in_flight = false;
    bool closing = false;
  };

  io_uring_sqe* GetSqe();
  Connection& At(ConnectionId id);
  void ArmAccept(uint32_t listener);
  void ArmRecv(ConnectionId id);
  void ArmTick();
  void ArmWake();
  void HandleCompletion(const io_uring_cqe* cqe);
  void HandleAccept(uint32_t listener, const io_uring_cqe* cqe);
  void HandleRecv(ConnectionId id, const io_uring_cqe* cqe);
  void HandleSend(ConnectionId id, const io_uring_cqe* cqe);
  void RecycleBuffer(uint16_t bid);
  void AdvanceBufferRing();
  void DeliverBundle(ConnectionId id, const io_uring_cqe* cqe);
  void FinishBatch();
  void MaybeRelease(ConnectionId id);

  const EventLoopOptions options_;
  const IoUringSupport support_;
  io_uring ring_{};
  bool ring_ready_ = false;
  LoopHandler* handler_ = nullptr;
  bool stopped_ = false;

  // The provided buffer ring: recv_buffers buffers of recv_buffer_size bytes in slab_.
  MemoryRegion slab_;
  io_uring_buf_ring* buffer_ring_ = nullptr;
  size_t buffer_ring_bytes_ = 0;
  unsigned pending_recycles_ = 0;  // buffers added since the last advance
  // Recv bundles (kernel 6.10): one completion fills several buffers, taken in ring order
  // from the head. ring_bids_ mirrors which buffer id sits at each ring slot; added_ and
  // consumed_ count buffers put in and taken out, so consumed_ is the kernel's head.
  bool bundles_ = false;
  std::vector<uint16_t> ring_bids_;
  uint32_t added_ = 0;
  uint32_t consumed_ = 0;

  std::vector<int> listeners_;
  bool listening_ = false;
  bool accept_paused_ = false;  // out of descriptors: re-armed at the next tick
  std::vector<Connection> connections_;
  std::vector<ConnectionId> starved_;   // receives ended by ENOBUFS, re-armed per batch
  std::vector<ConnectionId> released_;  // closed with nothing in flight
  int wake_fd_ = -1;
  __kernel_timespec tick_{};
  __kernel_timespec batch_wait_{};
  LoopCounters counters_;
};

UringLoop::~UringLoop() {
  for (Connection& c : connections_) {
    if (c.fd >= 0) close(c.fd);
  }
  if (ring_ready_) {
    if (buffer_ring_ != nullptr) io_uring_unregister_buf_ring(&ring_, kBufferGroup);
    io_uring_queue_exit(&ring_);
  }
  if (buffer_ring_ != nullptr) munmap(buffer_ring_, buffer_ring_bytes_);
  if (wake_fd_ >= 0) close(wake_fd_);
}

absl::Status UringLoop::Init() {
  assert((options_.recv_buffers & (options_.recv_buffers - 1)) == 0);
  io_uring_params params{};
  // Multishot receives post many completions per submission: size the completion queue
  // well above the submission queue. The kernel keeps overflowed completions
  // (IORING_FEAT_NODROP) and hands them over on the next enter, so none is lost.
  params.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
  params.cq_entries = options_.ring_entries * 4;
  if (support_.single_issuer) params.flags |= IORING_SETUP_SINGLE_ISSUER;
  if (support_.defer_taskrun) {
    params.flags |= IORING_SETUP_DEFER_TASKRUN;
  } else {
    params.flags |= IORING_SETUP_COOP_TASKRUN;
  }
  int res = io_uring_queue_init_params(options_.ring_entries, &ring_, &params);
  if (res < 0) return absl::ErrnoToStatus(-res, "io_uring_queue_init_params");
  ring_ready_ = true;

  const size_t slab_bytes = size_t{options_.recv_buffers} * options_.recv_buffer_size;
  absl::StatusOr<MemoryRegion> slab = MemoryRegion::Map(slab_bytes);
  if (!slab.ok()) return slab.status();
  slab_ = std::move(*slab);
  buffer_ring_bytes_ = options_.recv_buffers * sizeof(io_uring_buf);
  void* ring_mem =
      mmap(nullptr, buffer_ring_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (ring_mem == MAP_FAILED) return absl::ErrnoToStatus(errno, "mmap of the buffer ring");
  buffer_ring_ = static_cast<io_uring_buf_ring*>(ring_mem);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uint64_t>(buffer_ring_);
  reg.ring_entries = options_.recv_buffers;
  reg.bgid = kBufferGroup;
  res = io_uring_register_buf_ring(&ring_, &reg, 0);
  if (res < 0) return absl::ErrnoToStatus(-res, "io_uring_register_buf_ring");
  io_uring_buf_ring_init(buffer_ring_);
  bundles_ = support_.recv_bundle && options_.recv_bundles;
  ring_bids_.resize(options_.recv_buffers);
  for (uint32_t bid = 0; bid < options_.recv_buffers; ++bid) RecycleBuffer(uint16_t(bid));
  AdvanceBufferRing();

  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return absl::ErrnoToStatus(errno, "eventfd");
  const int64_t tick_ns = absl::ToInt64Nanoseconds(options_.tick);
  tick_.tv_sec = tick_ns / 1'000'000'000;
  tick_.tv_nsec = tick_ns % 1'000'000'000;
  const int64_t batch_ns = absl::ToInt64Nanoseconds(options_.batch_wait);
  batch_wait_.tv_sec = batch_ns / 1'000'000'000;
  batch_wait_.tv_nsec = batch_ns % 1'000'000'000;
  return absl::OkStatus();
}

io_uring_sqe* UringLoop::GetSqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  while (sqe == nullptr) {
    // The submission queue is full: hand it to the kernel and take a fresh entry.
    io_uring_submit(&ring_);
    sqe = io_uring_get_sqe(&ring_);
  }
  return sqe;
}

UringLoop::Connection& UringLoop::At(ConnectionId id) {
  if (id >= connections_.size()) connections_.resize(size_t{id} + 1);
  return connections_[id];
}

absl::Status UringLoop::Listen(int fd) {
  listeners_.push_back(fd);
  listening_ = true;
  ArmAccept(uint32_t(listeners_.size() - 1));
  return absl::OkStatus();
}

void UringLoop::StopListening() {
  listening_ = false;
  for (size_t i = 0; i < listeners_.size(); ++i) {
    io_uring_sqe* sqe = GetSqe();
    io_uring_prep_cancel64(sqe, EncodeUserData(Op::kAccept, uint32_t(i)), 0);
    io_uring_sqe_set_data64(sqe, EncodeUserData(Op::kCancel, 0));
  }
}

void UringLoop::ArmAccept(uint32_t listener) {
  io_uring_sqe* sqe = GetSqe();
  io_uring_prep_multishot_accept(sqe, listeners_[listener], nullptr, nullptr, SOCK_CLOEXEC);
  io_uring_sqe_set_data64(sqe, EncodeUserData(Op::kAccept, listener));
}

void UringLoop::Receive(ConnectionId id, int fd) {
  Connection& c = At(id);
  c = Connection{.fd = fd};
  ArmRecv(id);
}

void UringLoop::ArmRecv(ConnectionId id) {
  Connection& c = connections_[id];
  io_uring_sqe* sqe = GetSqe();
  io_uring_prep_recv_multishot(sqe, c.fd, nullptr, 0, 0);
  if (bundles_) sqe->ioprio |= IORING_RECVSEND_BUNDLE;
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = kBufferGroup;
  io_uring_sqe_set_data64(sqe, EncodeUserData(Op::kRecv, id));
  c.recv_armed = true;
}

void UringLoop::Send(ConnectionId id, std::span<const uint8_t> bytes) {
  Connection& c = connections_[id];
  assert(!c.send_in_flight && !c.closing);
  io_uring_sqe* sqe = GetSqe();
  io_uring_prep_send(sqe, c.fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, EncodeUserData(Op::kSend, id));
  c.send_in_flight = true;
}

void UringLoop::Close(ConnectionId id) {
  Connection& c = connections_[id];
  assert(!c.closing);
  c.closing = true;
  // shutdown() ends the armed receive (it completes with 0) and fails a send stuck on a
  // full socket; the descriptor is closed once their completions are in.
  shutdown(c.fd, SHUT_RDWR);
  if (c.recv_armed) {
    io_uring_sqe* sqe = GetSqe();
    io_uring_prep_cancel64(sqe, EncodeUserData(Op::kRecv, id), 0);
    io_uring_sqe_set_data64(sqe, EncodeUserData(Op::kCancel, id));
  }
  MaybeRelease(id);
}

void UringLoop::MaybeRelease(ConnectionId id) {
  Connection& c = connections_[id];
  if (!c.closing || c.recv_armed || c.send_in_flight || c.fd < 0) return;
  close(c.fd);
  c.fd = -1;
  released_.push_back(id);  // told at the end of the batch, not from inside a callback
}

void UringLoop::ArmTick() {
  io_uring_sqe* sqe = GetSqe();
  io_uring_prep_timeout(sqe, &tick_, 0, 0);
  io_uring_sqe_set_data64(sqe, EncodeUserData(Op::kTick, 0));
}

void UringLoop::ArmWake() {
  io_uring_sqe* sqe = GetSqe();
  io_uring_prep_poll_multishot(sqe, wake_fd_, POLLIN);
  io_uring_sqe_set_data64(sqe, EncodeUserData(Op::kWake, 0));
}

void UringLoop::Wake() {
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof(one));
}

void UringLoop::Run(LoopHandler* handler) {
  handler_ = handler;
  ArmTick();
  ArmWake();
  io_uring_cqe* cqes[kCompletionBatch];
  const bool batching = options_.batch_wait > absl::ZeroDuration();
  // The kernel receives into provided buffers while it gathers, and may run up to twice
  // the completions waited for in one wait before the loop gives any buffer back: wait
  // for few enough that the buffers don't run out on the way.
  const unsigned batch = std::min(kCompletionBatch, options_.recv_buffers / 4);
  unsigned n = 0;
  while (!stopped_) {
    // Idle or lightly loaded: wake for the first completion. Busy: let completions
    // gather for up to batch_wait. With deferred task running the kernel then doesn't
    // wake the thread for each segment that arrives (it was one wake-up per frame at
    // thousands of modest streams), for at most batch_wait of added latency.
    int res;
    if (batching && n >= kBusyCompletions) {
      io_uring_cqe* first;
      res = io_uring_submit_and_wait_timeout(&ring_, &first, batch, &batch_wait_, nullptr);
      ++counters_.batch_waits;
    } else {
      res = io_uring_submit_and_wait(&ring_, 1);
    }
    ++counters_.waits;
    if (res < 0 && res != -ETIME && res != -EINTR && res != -EAGAIN && res != -EBUSY) {
      spdlog::critical("io_uring_submit_and_wait: {}", strerror(-res));
      std::abort();  // the shard can't go on without its ring
    }
    n = io_uring_peek_batch_cqe(&ring_, cqes, kCompletionBatch);
    for (unsigned i = 0; i < n; ++i) HandleCompletion(cqes[i]);
    io_uring_cq_advance(&ring_, n);
    FinishBatch();
  }
  handler_ = nullptr;
}

// After a batch: hand the recycled buffers back in one step, re-arm the receives that
// ran out of buffers, and report connections whose last operation completed.
void UringLoop::FinishBatch() {
  AdvanceBufferRing();
  for (ConnectionId id : starved_) {
    if (connections_[id].closing) continue;
    ArmRecv(id);
    ++counters_.rearms;
  }
  starved_.clear();
  for (size_t i = 0; i < released_.size(); ++i) handler_->OnReleased(released_[i]);
  released_.clear();
  handler_->OnBatchEnd();
}

void UringLoop::HandleCompletion(const io_uring_cqe* cqe) {
  const uint32_t index = internal::UserDataIndex(cqe->user_data);
  switch (internal::UserDataOp(cqe->user_data)) {
    case Op::kAccept:
      HandleAccept(index, cqe);
      break;
    case Op::kRecv:
      HandleRecv(index, cqe);
      break;
    case Op::kSend:
      HandleSend(index, cqe);
      break;
    case Op::kTick:
      if (!stopped_) ArmTick();
      if (accept_paused_ && listening_) {
        accept_paused_ = false;
        for (uint32_t i = 0; i < listeners_.size(); ++i) ArmAccept(i);
      }
      handler_->OnTick();
      break;
    case Op::kWake: {
      uint64_t value;
      [[maybe_unused]] ssize_t n = read(wake_fd_, &value, sizeof(value));
      if (!(cqe->flags & IORING_CQE_F_MORE)) ArmWake();
      handler_->OnWake();
      break;
    }
    case Op::kCancel:
      break;
  }
}

void UringLoop::HandleAccept(uint32_t listener, const io_uring_cqe* cqe) {
  const bool more = cqe->flags & IORING_CQE_F_MORE;
  if (cqe->res >= 0) {
    if (listening_) {
      handler_->OnAccept(cqe->res, listener);
    } else {
      close(cqe->res);  // completed after StopListening()
    }
  } else if (cqe->res == -EMFILE || cqe->res == -ENFILE || cqe->res == -ENOBUFS ||
             cqe->res == -ENOMEM) {
    // Out of descriptors or memory. The kernel takes a descriptor before it looks for a
    // connection, so re-arming now would fail at once, forever: wait for the next tick,
    // while the backlog holds the connections.
    if (!accept_paused_) spdlog::warn("accept: {}; retrying every tick", strerror(-cqe->res));
    accept_paused_ = true;
    return;
  } else if (cqe->res != -ECANCELED) {
    spdlog::warn("accept: {}", strerror(-cqe->res));
  }
  if (!more && listening_) ArmAccept(listener);
}

void UringLoop::HandleRecv(ConnectionId id, const io_uring_cqe* cqe) {
  const bool more = cqe->flags & IORING_CQE_F_MORE;
  if (!more) connections_[id].recv_armed = false;
  if (cqe->res > 0) {
    assert(cqe->flags & IORING_CQE_F_BUFFER);
    ++counters_.receives;
    counters_.bytes_received += cqe->res;
    DeliverBundle(id, cqe);
    // A multishot receive can stop after data (the kernel ends it, e.g. on a full
    // completion queue): it needs a new submission to go on. (The handler may have
    // grown the table: look the connection up again.)
    if (!more && !connections_[id].closing) {
      ArmRecv(id);
      ++counters_.rearms;
    }
  } else if (cqe->res == -ENOBUFS) {
    // The shard's buffers are all in use: backpressure, not an error. TCP holds the
    // bytes until buffers come back at the end of this batch.
    ++counters_.buffer_shortages;
    if (!connections_[id].closing) starved_.push_back(id);
  } else if (!connections_[id].closing) {
    handler_->OnReceiveEnd(id, cqe->res);  // 0: the peer closed; -errno: failed
  }
  MaybeRelease(id);
}

void UringLoop::HandleSend(ConnectionId id, const io_uring_cqe* cqe) {
  Connection& c = connections_[id];
  c.send_in_flight = false;
  if (!c.closing) handler_->OnSendComplete(id, cqe->res);
  MaybeRelease(id);
}

// Hands the bytes of one completion to the handler and gives the buffers back as soon as
// it returns. Without bundles that is one buffer; with them, ceil(res / buffer size)
// buffers from the ring's head, in ring order. Buffers go back in the order they were
// taken, so ring order stays buffer id order and a bundle is one run of adjacent
// buffers, split only where the ids wrap to 0: each run goes to the handler as one span
// (a message larger than a buffer then often arrives whole, and needs no assembly).
void UringLoop::DeliverBundle(ConnectionId id, const io_uring_cqe* cqe) {
  const auto first = uint16_t(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
  const uint32_t mask = options_.recv_buffers - 1;
  if (ring_bids_[consumed_ & mask] != first) {
    // The mirror of the ring lost track of the kernel's head: the bytes would go to the
    // wrong connection's parser. That can't be recovered from.
    spdlog::critical("io_uring buffer ring out of step: completion names buffer {}, head holds {}",
                     first, ring_bids_[consumed_ & mask]);
    std::abort();
  }
  const size_t buffer_size = options_.recv_buffer_size;
  size_t left = size_t(cqe->res);
  counters_.bundled_buffers += (left - 1) / buffer_size;
  while (left > 0) {
    // The run of buffers with adjacent ids from the head.
    const uint16_t bid = ring_bids_[consumed_ & mask];
    uint32_t count = 1;
    size_t n = std::min(left, buffer_size);
    while (n < left && ring_bids_[(consumed_ + count) & mask] == bid + count) {
      n += std::min(left - n, buffer_size);
      ++count;
    }
    consumed_ += count;
    left -= n;
    if (!connections_[id].closing) {
      const bool more = left > 0 || (cqe->flags & IORING_CQE_F_SOCK_NONEMPTY) != 0;
      handler_->OnReceive(id, {slab_.data() + size_t{bid} * buffer_size, n}, more);
    }
    for (uint32_t i = 0; i < count; ++i) RecycleBuffer(uint16_t(bid + i));  // parsed
  }
}

void UringLoop::AdvanceBufferRing() {
  if (pending_recycles_ == 0) return;
  io_uring_buf_ring_advance(buffer_ring_, pending_recycles_);
  added_ += pending_recycles_;
  pending_recycles_ = 0;
}

void UringLoop::RecycleBuffer(uint16_t bid) {
  ring_bids_[(added_ + pending_recycles_) & (options_.recv_buffers - 1)] = bid;
  io_uring_buf_ring_add(buffer_ring_, slab_.data() + size_t{bid} * options_.recv_buffer_size,
                        options_.recv_buffer_size, bid,
                        io_uring_buf_ring_mask(options_.recv_buffers), pending_recycles_++);
}

}  // namespace

absl::StatusOr<std::unique_ptr<EventLoop>> CreateUringLoop(const EventLoopOptions& options,
                                                           const IoUringSupport& support) {
  auto loop = std::make_unique<UringLoop>(options, support);
  if (absl::Status s = loop->Init(); !s.ok()) return s;
  return loop;
}

}  // namespace uringest::engine
