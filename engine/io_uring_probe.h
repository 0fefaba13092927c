// io_uring_probe.h: what the running kernel's io_uring can do, found out at start by
// trying it, not assumed from the header's version (liburing 2.3's header is older than
// most kernels it runs on). The engine picks its backend and its receive path from this.
//
//   IoUringSupport support = ProbeIoUring();
//   if (!support.usable()) LOG warn "io_uring unavailable ({}): using epoll", support.reason;
//   spdlog::info("io_uring: {}", support.Describe());

#ifndef URINGEST_ENGINE_IO_URING_PROBE_H_
#define URINGEST_ENGINE_IO_URING_PROBE_H_

#include <string>

namespace uringest::engine {

struct IoUringSupport {
  bool setup = false;                // io_uring_setup works at all
  std::string reason;                // why it can't be used, when !usable()
  bool single_issuer = false;        // IORING_SETUP_SINGLE_ISSUER (6.0)
  bool defer_taskrun = false;        // IORING_SETUP_DEFER_TASKRUN (6.1)
  bool buffer_ring = false;          // provided buffer rings (5.19)
  bool recv_multishot = false;       // multishot recv (6.0)
  bool accept_multishot = false;     // multishot accept (5.19)
  bool msg_ring = false;             // IORING_OP_MSG_RING (5.18)
  bool recv_bundle = false;          // recv bundles (6.10)
  bool incremental_buffers = false;  // IOU_PBUF_RING_INC (6.12)

  // The engine needs setup, buffer rings, multishot recv and accept.
  bool usable() const { return setup && buffer_ring && recv_multishot && accept_multishot; }
  // One line for the start-up log: the features found.
  std::string Describe() const;
};

// Tries each feature on a scratch ring and a socket pair, on a short-lived thread of its
// own. Takes a few milliseconds.
IoUringSupport ProbeIoUring();

}  // namespace uringest::engine

#endif  // URINGEST_ENGINE_IO_URING_PROBE_H_
