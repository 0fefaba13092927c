// epoll_loop.h: the edge-triggered epoll EventLoop, for where io_uring is blocked
// (Docker's default seccomp profile, kernel.io_uring_disabled, gVisor) and as perf/'s
// in-binary baseline against the io_uring loop.
//
// Each connection is registered once, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, so the
// data path makes no epoll_ctl calls. Reads go into one receive buffer per loop of
// options.recv_buffer_size bytes, each delivered to OnReceive() and valid only during
// that call. A connection is read until it is drained or until it has had its share of
// one wakeup (kMaxReadsPerWakeup reads or kMaxBytesPerWakeup bytes); then it waits in a
// backlog behind the others, since with EPOLLET no new event would remind the loop of
// the bytes it left. Listeners are served the same way, with accept4() until EAGAIN.
// A send is tried at once with send(MSG_NOSIGNAL); what the socket can't take waits for
// EPOLLOUT, and OnSendComplete() reports the bytes sent once all are sent or the socket
// fails. The tick is a timerfd, Wake() an eventfd. Options other than tick and
// recv_buffer_size are io_uring's and are ignored.
//
//   absl::StatusOr<std::unique_ptr<EventLoop>> loop = CreateEpollLoop(options);
//   if (!loop.ok()) return loop.status();
//   (*loop)->Listen(listen_fd);
//   (*loop)->Run(&shard);  // until Stop()
//
// Thread safety: create, use and destroy it on one thread; only Wake() may be called
// from others.

#ifndef URINGEST_ENGINE_EPOLL_LOOP_H_
#define URINGEST_ENGINE_EPOLL_LOOP_H_

#include <memory>

#include "absl/status/statusor.h"
#include "engine/event_loop.h"

namespace uringest::engine {

// The descriptors handed to OnAccept() are non-blocking and close-on-exec. Receive()
// makes a descriptor non-blocking if it is not yet (e.g. one handed over by another
// shard). Listen() makes the listening socket non-blocking. Listening sockets stay the
// caller's to close; connection sockets are the loop's from Receive() on.
absl::StatusOr<std::unique_ptr<EventLoop>> CreateEpollLoop(const EventLoopOptions& options);

}  // namespace uringest::engine

#endif  // URINGEST_ENGINE_EPOLL_LOOP_H_
