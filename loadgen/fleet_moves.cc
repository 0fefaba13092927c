// fleet_moves.cc: how a Fleet's publisher gets from one connection to the next: a
// Reconnect Request followed (BeginMove, Leave), a broken connection retried (Broke,
// with --reconnect), and the end of each connection (EndConnection, MaybeRelease), which
// schedules the next one or ends the publisher (Fail, Release). fleet.h says what each
// case promises about the frames.

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "loadgen/fleet.h"
#include "loadgen/internal/fleet_state.h"
#include "loadgen/stamp.h"
#include "relay/push_rules.h"
#include "ringbuf/clock.h"

namespace uringest::loadgen {

// The first address a name resolves to (an address: itself).
absl::Status Fleet::Resolve(const std::string& host, uint16_t port, Target* target) const {
  addrinfo hints{.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  addrinfo* found = nullptr;
  const std::string service = absl::StrCat(port);
  if (int err = getaddrinfo(host.c_str(), service.c_str(), &hints, &found); err != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("can't resolve ", host, ": ", gai_strerror(err)));
  }
  std::memcpy(&target->address, found->ai_addr, found->ai_addrlen);
  target->address_length = found->ai_addrlen;
  freeaddrinfo(found);
  return absl::OkStatus();
}

// The target of a Reconnect Request's tcUrl ("": the connection's own), resolved once
// per distinct URL. The harness has no TLS: rtmps:// is an error.
absl::StatusOr<uint32_t> Fleet::FindTarget(const std::string& tc_url) {
  for (uint32_t t = 0; t < loop_->targets.size(); ++t) {
    if (loop_->targets[t].tc_url == tc_url) return t;
  }
  absl::StatusOr<relay::UpstreamUrl> url = relay::ParseTcUrl(tc_url);
  if (!url.ok()) return url.status();
  if (url->tls) {
    return absl::UnimplementedError(
        absl::StrCat("reconnect request to ", tc_url, ": uringest-load has no TLS"));
  }
  Target target{.app = url->app, .tc_url = tc_url};
  if (absl::Status s = Resolve(url->host, url->port, &target); !s.ok()) return s;
  loop_->targets.push_back(std::move(target));
  return uint32_t(loop_->targets.size() - 1);
}

// After a break (--reconnect) the frames due while down are passed over, unsent and
// unstamped, up to the first keyframe due from now on.
void Fleet::SkipToKeyframe(uint32_t i, uint64_t now_ns) {
  Publisher& p = publishers_[i];
  p.resync = false;
  while (DueNs(p, p.frame_index) < now_ns || !source_->IsKeyframe(p.frame_index)) {
    if (Stampable(source_->At(p.frame_index).body)) ++results_[i].skipped;
    ++p.frame_index;
  }
}

void Fleet::Fail(uint32_t i, std::string why) {
  Publisher& p = publishers_[i];
  PublisherResult& r = results_[i];
  if (r.failed) return;
  r.failed = true;
  r.error = std::move(why);
  counters_.failed.fetch_add(1, std::memory_order_relaxed);
  if (p.fd >= 0) shutdown(p.fd, SHUT_RDWR);  // ends the receive and any stuck send
  MaybeRelease(i);
}

void Fleet::Broke(uint32_t i, std::string why) {
  Publisher& p = publishers_[i];
  if (p.leaving) {
    // The old connection of a move: its queued frames may be lost (the verifier counts
    // them), the move goes on.
    EndConnection(i, false);
    return;
  }
  if (p.moving && !draining_) {
    // Asked to leave and cut off before the GOP was out: go where we were asked.
    p.moving = false;
    p.after = After::kMove;
    p.resync = true;
  } else if (options_.reconnect && !draining_) {
    p.after = After::kRetry;
    p.next_target = 0;
    p.resync = true;
  } else {
    Fail(i, std::move(why));
    return;
  }
  ++results_[i].broken;
  results_[i].last_break = std::move(why);
  EndConnection(i, false);
}

// The connection is over; once nothing of it is in flight, MaybeRelease closes it and
// goes on as p.after says.
void Fleet::EndConnection(uint32_t i, bool clean) {
  Publisher& p = publishers_[i];
  p.conn_over = true;
  p.last_clean = clean;
  if (p.fd >= 0) shutdown(p.fd, SHUT_RDWR);
  MaybeRelease(i);
}

void Fleet::BeginMove(uint32_t i) {
  Publisher& p = publishers_[i];
  if (!options_.follow_reconnect || draining_) return;
  const std::string& tc_url = p.conn->reconnect_request()->tc_url;
  if (tc_url.empty()) {
    p.next_target = p.target;
  } else {
    absl::StatusOr<uint32_t> t = FindTarget(tc_url);
    if (!t.ok()) {
      Fail(i, std::string(t.status().message()));
      return;
    }
    p.next_target = *t;
  }
  ++results_[i].reconnect_requests;
  p.moving = true;
  if (options_.idle || source_->IsKeyframe(p.frame_index)) Leave(i);
}

// Ends the connection as at the end of a run (what is queued goes out, then FIN), and
// connects to next_target once the server closed it, or at the deadline.
void Fleet::Leave(uint32_t i) {
  Publisher& p = publishers_[i];
  p.moving = false;
  p.leaving = true;
  p.after = After::kMove;
  p.held = false;
  SetReconnecting(i, true);
  p.conn->Unpublish();
  if (p.counted_live) {
    p.counted_live = false;
    counters_.live.fetch_sub(1, std::memory_order_relaxed);
  }
  p.leave_deadline_ns = ringbuf::MonotonicNs() + kLeaveTimeoutNs;
  Wake(i, p.leave_deadline_ns);
  BeginEnding(i);
}

void Fleet::SetReconnecting(uint32_t i, bool on) {
  Publisher& p = publishers_[i];
  if (p.reconnecting == on) return;
  p.reconnecting = on;
  if (on) {
    counters_.reconnecting.fetch_add(1, std::memory_order_relaxed);
  } else {
    counters_.reconnecting.fetch_sub(1, std::memory_order_relaxed);
  }
}

// The next connection of a publisher whose last one is closed: at once for a move, after
// the backoff for a retry.
void Fleet::ScheduleConnect(uint32_t i, uint64_t now_ns) {
  Publisher& p = publishers_[i];
  uint64_t at = now_ns;
  if (p.after == After::kRetry) {
    at += p.backoff_ns;
    p.backoff_ns = std::min(p.backoff_ns * 2, kMaxBackoffNs);
  }
  SetReconnecting(i, true);
  p.after = After::kDone;
  p.connecting = p.held = p.ending = p.fin_sent = p.conn_over = p.leaving = false;
  Wake(i, at);
}

// A socket is closed once nothing of it is in flight: after a failure, or once its
// connection is over (the server answered our FIN with its own, or it broke).
void Fleet::MaybeRelease(uint32_t i) {
  Publisher& p = publishers_[i];
  if (p.closed || p.recv_in_flight || p.send_in_flight || p.connecting) return;
  if (!results_[i].failed && !p.conn_over) return;
  if (p.fd >= 0) {
    close(p.fd);
    p.fd = -1;
  }
  if (p.tcp_up) {
    p.tcp_up = false;
    counters_.connected.fetch_sub(1, std::memory_order_relaxed);
  }
  if (p.counted_live) {
    p.counted_live = false;
    counters_.live.fetch_sub(1, std::memory_order_relaxed);
  }
  if (!results_[i].failed && p.after != After::kDone && !draining_) {
    ScheduleConnect(i, ringbuf::MonotonicNs());
    return;
  }
  if (!results_[i].failed && p.last_clean) results_[i].closed_cleanly = true;
  Release(i);
}

// Done for good.
void Fleet::Release(uint32_t i) {
  Publisher& p = publishers_[i];
  SetReconnecting(i, false);
  p.closed = true;
  --open_;
}

}  // namespace uringest::loadgen
