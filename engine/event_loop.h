// event_loop.h: the I/O interface a shard runs on, with two implementations: UringLoop
// (io_uring: multishot accept, multishot recv into a provided buffer ring, sends) and
// EpollLoop (edge-triggered epoll, for where io_uring is blocked). The shard's logic
// (connections, the RTMP core, limits, timeouts) is the same over both.
//
// Everything runs on the loop's thread: create the loop on the thread that will run it
// (an io_uring set up with SINGLE_ISSUER belongs to the thread that created it; running
// it elsewhere fails), run it there, destroy it there. The loop calls its LoopHandler from
// Run(), and the handler calls the loop back from there. Only Wake() may be called from
// other threads.
//
//   // On the shard's own thread:
//   absl::StatusOr<std::unique_ptr<EventLoop>> loop = CreateUringLoop(options, support);
//   // (or CreateEpollLoop(options))
//   (*loop)->Listen(listen_fd);
//   (*loop)->Run(&shard);   // until Stop()
//
// Connections are named by the handler's own ids (a slot in its table). A connection's
// life on the loop: Receive() once, Send() any number of times with one send in flight,
// Close() once; after Close() no callback names it again except OnReleased(), which comes
// once nothing of it is in flight and its descriptor is closed, so its id may be reused.

#ifndef URINGEST_ENGINE_EVENT_LOOP_H_
#define URINGEST_ENGINE_EVENT_LOOP_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace uringest::engine {

using ConnectionId = uint32_t;

class LoopHandler {
 public:
  virtual ~LoopHandler() = default;
  // A connection was accepted on a listener: `listener` counts Listen() calls from 0, in
  // their order.
  virtual void OnAccept(int fd, uint32_t listener) = 0;
  // Bytes arrived. They are valid only during the call: the buffer goes back to the
  // kernel when it returns. `more_queued`: the socket holds more bytes already (io_uring's
  // IORING_CQE_F_SOCK_NONEMPTY; epoll: the read filled the buffer).
  virtual void OnReceive(ConnectionId id, std::span<const uint8_t> bytes, bool more_queued) = 0;
  // The receive side ended: 0 for an orderly close by the peer, else -errno.
  virtual void OnReceiveEnd(ConnectionId id, int error) = 0;
  // The send in flight finished: bytes sent (possibly fewer than asked), or -errno.
  virtual void OnSendComplete(ConnectionId id, int result) = 0;
  // After Close(): nothing of the connection is in flight and its descriptor is closed.
  virtual void OnReleased(ConnectionId id) = 0;
  // Every tick interval.
  virtual void OnTick() = 0;
  // Wake() was called.
  virtual void OnWake() = 0;
  // The completions (io_uring) or events (epoll) of one wait were handled and the loop
  // is about to wait again: the place to publish what the batch produced.
  virtual void OnBatchEnd() {}
};

struct EventLoopOptions {
  absl::Duration tick = absl::Milliseconds(100);
  // io_uring: the provided buffer ring of the shard. Idle connections hold no buffer.
  uint32_t recv_buffers = 512;  // a power of two
  uint32_t recv_buffer_size = 32 << 10;
  uint32_t ring_entries = 1024;  // submission queue; completion queue is 4x
  // io_uring: receive bundles (several buffers per completion) where the kernel has them.
  bool recv_bundles = true;
  // io_uring: while the loop is busy (its last wait brought several completions), each
  // wait gathers completions for up to this long instead of waking for the first:
  // fewer wake-ups per byte (and one receive for what a socket got meanwhile), for at
  // most this much added latency.
  // An idle loop always wakes for the first completion. Zero: never wait for a batch.
  absl::Duration batch_wait = absl::Microseconds(500);
};

struct LoopCounters {
  uint64_t receives = 0;
  uint64_t bytes_received = 0;
  uint64_t buffer_shortages = 0;  // ENOBUFS: the provided buffers ran out (backpressure)
  uint64_t rearms = 0;            // multishot receives re-armed
  uint64_t bundled_buffers = 0;   // buffers beyond the first of a completion (recv bundles)
  uint64_t waits = 0;             // times the loop waited for completions or events
  uint64_t batch_waits = 0;       // of them, waits that gathered a batch (batch_wait)
};

class EventLoop {
 public:
  virtual ~EventLoop() = default;

  // Accepts connections on `fd` (a listening socket) until StopListening(). The first
  // call's listener is 0 in OnAccept(), the next one's 1, and so on.
  virtual absl::Status Listen(int fd) = 0;
  virtual void StopListening() = 0;

  // Starts delivering the bytes of `fd` to OnReceive(id, ...).
  virtual void Receive(ConnectionId id, int fd) = 0;
  // Sends bytes, which must stay valid until OnSendComplete(id, ...).
  // REQUIRES: no send of `id` in flight.
  virtual void Send(ConnectionId id, std::span<const uint8_t> bytes) = 0;
  // Stops the connection: see the header comment.
  virtual void Close(ConnectionId id) = 0;

  // Runs until Stop() is called from the loop's thread (usually from a handler). Called
  // once in a loop's life.
  virtual void Run(LoopHandler* handler) = 0;
  virtual void Stop() = 0;
  // Any thread: OnWake() will be called soon on the loop's thread.
  virtual void Wake() = 0;

  virtual const LoopCounters& counters() const = 0;
  // "io_uring" or "epoll".
  virtual std::string_view name() const = 0;
};

}  // namespace uringest::engine

#endif  // URINGEST_ENGINE_EVENT_LOOP_H_
