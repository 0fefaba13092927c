// fleet_state.h: what fleet.cc and fleet_moves.cc share of a Fleet's insides: the
// per-publisher state, the loop, and the timing of moves and reconnections. Private to
// the fleet (fleet.h is the interface).
//
// Thread safety: everything here belongs to the thread that runs Fleet::Run().

#ifndef URINGEST_LOADGEN_INTERNAL_FLEET_STATE_H_
#define URINGEST_LOADGEN_INTERNAL_FLEET_STATE_H_

#include <liburing.h>
#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <queue>
#include <string>
#include <vector>

#include "engine/rtmp/publish_client.h"
#include "loadgen/fleet.h"

namespace uringest::loadgen {

inline constexpr uint64_t kSecondNs = 1'000'000'000;
// A move's old connection that the server has not closed by then is closed hard.
inline constexpr uint64_t kLeaveTimeoutNs = 2 * kSecondNs;
// --reconnect's backoff: 250 ms, doubling to 2 s; back to 250 ms once live again.
inline constexpr uint64_t kFirstBackoffNs = 250'000'000;
inline constexpr uint64_t kMaxBackoffNs = 2 * kSecondNs;

// What a publisher does once its connection is closed.
enum class After : uint8_t {
  kDone,   // nothing: the publisher is done
  kMove,   // connect to next_target (a Reconnect Request)
  kRetry,  // connect to the target again after the backoff (--reconnect)
};

struct Fleet::Target {
  sockaddr_storage address{};
  socklen_t address_length = 0;
  std::string app;
  std::string tc_url;
};

struct Fleet::Publisher {
  int fd = -1;
  std::unique_ptr<rtmp::PublishClient> conn;
  uint32_t target = 0;         // of conn, in targets_
  uint32_t next_target = 0;    // of the next connection
  uint64_t connect_at_ns = 0;  // the first connect
  uint64_t live_ns = 0;        // of this connection
  uint64_t base_ns = 0;        // frame k is due at base_ns + its timestamp
  uint64_t wake_ns = 0;        // the due entry that counts; older ones are stale
  uint64_t leave_deadline_ns = 0;
  uint64_t backoff_ns = kFirstBackoffNs;
  uint64_t frame_index = 0;
  uint64_t sequence = 0;
  After after = After::kDone;
  bool connecting = false;
  bool tcp_up = false;        // counted in counters_.connected
  bool counted_live = false;  // counted in counters_.live
  bool recv_in_flight = false;
  bool send_in_flight = false;
  bool held = false;    // paced, with due frames waiting for room in the queue
  bool ending = false;  // no more frames; FIN once the queue is sent
  bool fin_sent = false;
  bool conn_over = false;     // this connection ended; its completions are drained
  bool last_clean = false;    // the last connection that ended, ended in order
  bool moving = false;        // a Reconnect Request is followed: leave at the next keyframe
  bool leaving = false;       // the move's old connection is ending
  bool resync = false;        // the next connection starts at the first keyframe due
  bool reconnecting = false;  // counted in counters_.reconnecting
  bool closed = false;        // done for good
};

struct Fleet::Due {
  uint64_t ns;
  uint32_t publisher;
  bool operator>(const Due& o) const { return ns > o.ns; }
};

struct Fleet::Loop {
  io_uring ring{};
  bool ready = false;
  std::vector<uint8_t> recv_slab;
  // [0] is --target; the others, the tcUrls of Reconnect Requests.
  std::vector<Target> targets;
  std::priority_queue<Due, std::vector<Due>, std::greater<Due>> due;

  ~Loop() {
    if (ready) io_uring_queue_exit(&ring);
  }
  io_uring_sqe* GetSqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    while (sqe == nullptr) {
      io_uring_submit(&ring);  // full: hand it over and take a fresh entry
      sqe = io_uring_get_sqe(&ring);
    }
    return sqe;
  }
};

}  // namespace uringest::loadgen

#endif  // URINGEST_LOADGEN_INTERNAL_FLEET_STATE_H_
