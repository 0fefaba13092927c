// uring_loop.h: the io_uring EventLoop. One ring per shard thread, set up with
// SINGLE_ISSUER and DEFER_TASKRUN where the kernel has them: multishot accept on the
// listeners, one multishot recv per connection into the shard's provided buffer ring,
// one send at a time per connection, a re-armed timeout for the tick, and a multishot
// poll on an eventfd for Wake().
//
// The receive buffers are carved from one slab (huge pages when the machine has them)
// and registered as provided buffer ring 0. The kernel picks a buffer only when data
// arrives, so an idle connection holds none; each buffer goes back to the ring as soon
// as OnReceive() returns (the buffer id is the ownership).
//
//   IoUringSupport support = ProbeIoUring();
//   if (support.usable()) {
//     absl::StatusOr<std::unique_ptr<EventLoop>> loop = CreateUringLoop(options, support);
//   }
//
// Thread safety: create, use and destroy it on one thread (the ring's single issuer);
// only Wake() may be called from others.

#ifndef URINGEST_ENGINE_URING_LOOP_H_
#define URINGEST_ENGINE_URING_LOOP_H_

#include <memory>

#include "absl/status/statusor.h"
#include "engine/event_loop.h"
#include "engine/io_uring_probe.h"

namespace uringest::engine {

// REQUIRES: support.usable().
absl::StatusOr<std::unique_ptr<EventLoop>> CreateUringLoop(const EventLoopOptions& options,
                                                           const IoUringSupport& support);

}  // namespace uringest::engine

#endif  // URINGEST_ENGINE_URING_LOOP_H_
