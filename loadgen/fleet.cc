#include "loadgen/fleet.h"

#include <arpa/inet.h>
#include <liburing.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <queue>

#include "absl/strings/str_cat.h"
#include "engine/rtmp/publish_client.h"
#include "loadgen/stamp.h"
#include "relay/push_rules.h"
#include "ringbuf/clock.h"

namespace uringest::loadgen {
namespace {

// user_data: bits 63..56 the op, bits 31..0 the publisher index.
enum class Op : uint8_t { kConnect = 1, kRecv = 2, kSend = 3 };
uint64_t UserData(Op op, uint32_t i) { return uint64_t(op) << 56 | i; }

constexpr size_t kRecvBufferSize = 4096;  // server replies are small
constexpr unsigned kRingEntries = 4096;
constexpr unsigned kCompletionBatch = 256;
constexpr uint64_t kSecondNs = 1'000'000'000;
constexpr uint64_t kMaxSleepNs = 100'000'000;
// A move's old connection that the server has not closed by then is closed hard.
constexpr uint64_t kLeaveTimeoutNs = 2 * kSecondNs;
// --reconnect's backoff: 250 ms, doubling to 2 s; back to 250 ms once live again.
constexpr uint64_t kFirstBackoffNs = 250'000'000;
constexpr uint64_t kMaxBackoffNs = 2 * kSecondNs;

}  // namespace

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

std::string HostPort(const std::string& host, uint16_t port) {
  return host.find(':') != std::string::npos ? absl::StrCat("[", host, "]:", port)
                                             : absl::StrCat(host, ":", port);
}

Fleet::Fleet(const FleetOptions& options, const MediaSource* source)
    : options_(options), source_(source), loop_(std::make_unique<Loop>()) {}

Fleet::~Fleet() {
  for (Publisher& p : publishers_) {
    if (p.fd >= 0) close(p.fd);
  }
}

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

absl::Status Fleet::Init() {
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  Target target{
      .app = options_.app,
      .tc_url = absl::StrCat("rtmp://", HostPort(options_.host, options_.port), "/", options_.app)};
  if (absl::Status s = Resolve(options_.host, options_.port, &target); !s.ok()) return s;
  loop_->targets.push_back(std::move(target));
  io_uring_params params{};
  params.flags = IORING_SETUP_CQSIZE;
  params.cq_entries = std::max<unsigned>(kRingEntries * 2, options_.publishers * 4);
  const int res = io_uring_queue_init_params(kRingEntries, &loop_->ring, &params);
  if (res < 0) return absl::ErrnoToStatus(-res, "io_uring_queue_init_params");
  loop_->ready = true;
  loop_->recv_slab.resize(size_t{options_.publishers} * kRecvBufferSize);
  publishers_.resize(options_.publishers);
  results_.resize(options_.publishers);
  std::vector<Due> heap;
  heap.reserve(options_.publishers + 1);
  loop_->due = decltype(loop_->due)(std::greater<Due>(), std::move(heap));
  for (uint32_t i = 0; i < options_.publishers; ++i) {
    results_[i].name = absl::StrCat(options_.app, "/", options_.name_prefix, i);
  }
  return absl::OkStatus();
}

void Fleet::Run(const std::function<void()>& each_second) {
  const uint64_t start = ringbuf::MonotonicNs();
  const uint64_t ramp_ns = uint64_t(absl::ToInt64Nanoseconds(options_.ramp));
  for (uint32_t i = 0; i < options_.publishers; ++i) {
    const uint64_t at = start + (options_.publishers > 1 ? ramp_ns * i / options_.publishers : 0);
    publishers_[i].connect_at_ns = at;
    Wake(i, at);
  }
  open_ = options_.publishers;
  end_ns_ = start + ramp_ns + uint64_t(absl::ToInt64Nanoseconds(options_.duration));
  const uint64_t drain_ns = uint64_t(absl::ToInt64Nanoseconds(options_.drain));
  uint64_t next_second = start + kSecondNs;
  io_uring_cqe* cqes[kCompletionBatch];
  while (open_ > 0) {
    uint64_t now = ringbuf::MonotonicNs();
    if (abort_.load()) {
      if (!draining_)
        sending_time_ = absl::Nanoseconds(first_live_ns_ ? int64_t(now - first_live_ns_) : 0);
      break;
    }
    if (!draining_ && (now >= end_ns_ || stop_.load(std::memory_order_relaxed))) StartDrain(now);
    if (draining_ && now >= end_ns_ + drain_ns) break;
    RunDue(now);
    uint64_t wake = std::min(next_second, draining_ ? end_ns_ + drain_ns : end_ns_);
    if (!loop_->due.empty()) wake = std::min(wake, loop_->due.top().ns);
    const uint64_t sleep = wake > now ? std::min(wake - now, kMaxSleepNs) : 0;
    __kernel_timespec ts{.tv_sec = int64_t(sleep / kSecondNs),
                         .tv_nsec = int64_t(sleep % kSecondNs)};
    io_uring_cqe* cqe = nullptr;
    if (sleep > 0) {
      io_uring_submit_and_wait_timeout(&loop_->ring, &cqe, 1, &ts, nullptr);
    } else {
      io_uring_submit(&loop_->ring);
    }
    // Every completion that is in, before the next round of due frames: a fleet that
    // took one batch per round fell behind its own sends at a few thousand publishers
    // (the rounds got longer as the queues grew) and never caught up.
    for (unsigned n; (n = io_uring_peek_batch_cqe(&loop_->ring, cqes, kCompletionBatch)) > 0;) {
      for (unsigned k = 0; k < n; ++k) HandleCompletion(cqes[k]->user_data, cqes[k]->res);
      io_uring_cq_advance(&loop_->ring, n);
    }
    now = ringbuf::MonotonicNs();
    if (now >= next_second) {
      next_second += kSecondNs * ((now - next_second) / kSecondNs + 1);
      if (each_second) each_second();
    }
  }
  CloseRemaining(abort_.load() ? abort_reason_.load() : "still sending when the drain ended");
  if (each_second) each_second();
}

void Fleet::CloseRemaining(const char* why) {
  for (uint32_t i = 0; i < publishers_.size(); ++i) {
    Publisher& p = publishers_[i];
    if (p.closed) continue;
    if (!results_[i].failed && !p.fin_sent) Fail(i, why);
    if (p.fd >= 0) close(p.fd);
    p.fd = -1;
    p.closed = true;
  }
}

// Each publisher has one due entry that counts (wake_ns): a frame time, a connect time or
// a move's deadline. Entries it scheduled before are left in the heap and passed over.
void Fleet::Wake(uint32_t i, uint64_t ns) {
  publishers_[i].wake_ns = ns;
  loop_->due.push({ns, i});
}

void Fleet::RunDue(uint64_t now_ns) {
  while (!loop_->due.empty() && loop_->due.top().ns <= now_ns) {
    const Due due = loop_->due.top();
    loop_->due.pop();
    const uint32_t i = due.publisher;
    Publisher& p = publishers_[i];
    if (p.closed || due.ns != p.wake_ns) continue;
    if (p.leaving) {
      if (!p.conn_over) EndConnection(i, false);  // the server kept it open: close hard
      continue;
    }
    if (p.ending) continue;
    if (p.fd < 0 && !p.connecting) {
      StartConnect(i);
    } else if (p.conn->live()) {
      QueueFrames(i, now_ns);
    }
  }
}

void Fleet::StartConnect(uint32_t i) {
  Publisher& p = publishers_[i];
  p.target = p.next_target;
  const Target& target = loop_->targets[p.target];
  rtmp::EnhancedCaps enhanced;
  if (options_.follow_reconnect) {
    enhanced.present = true;
    enhanced.caps_ex = rtmp::kCapsExReconnect;
  }
  p.conn = std::make_unique<rtmp::PublishClient>(
      rtmp::PublishClientOptions{.app = target.app,
                                 .stream = absl::StrCat(options_.name_prefix, i),
                                 .tc_url = target.tc_url,
                                 .chunk_size = options_.chunk_size,
                                 .flash_ver = "FMLE/3.0 (compatible; uringest-load)",
                                 .enhanced = std::move(enhanced)});
  p.fd = socket(target.address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (p.fd < 0) {
    Fail(i, absl::StrCat("socket: ", strerror(errno)));
    return;
  }
  const int one = 1;
  setsockopt(p.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  io_uring_sqe* sqe = loop_->GetSqe();
  io_uring_prep_connect(sqe, p.fd, reinterpret_cast<const sockaddr*>(&target.address),
                        target.address_length);
  io_uring_sqe_set_data64(sqe, UserData(Op::kConnect, i));
  p.connecting = true;
}

void Fleet::HandleCompletion(uint64_t user_data, int res) {
  const uint32_t i = uint32_t(user_data);
  switch (Op(user_data >> 56)) {
    case Op::kConnect:
      HandleConnect(i, res);
      break;
    case Op::kRecv:
      HandleRecv(i, res);
      break;
    case Op::kSend:
      HandleSend(i, res);
      break;
  }
  MaybeRelease(i);
}

void Fleet::HandleConnect(uint32_t i, int res) {
  Publisher& p = publishers_[i];
  p.connecting = false;
  if (results_[i].failed || p.conn_over) return;
  if (res < 0) {
    Broke(i, absl::StrCat("connect: ", strerror(-res)));
    return;
  }
  p.tcp_up = true;
  counters_.connected.fetch_add(1, std::memory_order_relaxed);
  p.conn->Start(i * 2654435761u + options_.run);
  ArmRecv(i);
  MaybeArmSend(i);
}

void Fleet::ArmRecv(uint32_t i) {
  Publisher& p = publishers_[i];
  io_uring_sqe* sqe = loop_->GetSqe();
  io_uring_prep_recv(sqe, p.fd, loop_->recv_slab.data() + size_t{i} * kRecvBufferSize,
                     kRecvBufferSize, 0);
  io_uring_sqe_set_data64(sqe, UserData(Op::kRecv, i));
  p.recv_in_flight = true;
}

void Fleet::MaybeArmSend(uint32_t i) {
  Publisher& p = publishers_[i];
  if (p.send_in_flight || p.fd < 0 || results_[i].failed || p.conn_over) return;
  std::span<const uint8_t> bytes = p.conn->NextSend();
  if (bytes.empty()) {
    if (p.ending && !p.fin_sent) {
      p.fin_sent = true;
      shutdown(p.fd, SHUT_WR);  // the server ends the stream and closes; recv sees 0
    }
    return;
  }
  io_uring_sqe* sqe = loop_->GetSqe();
  io_uring_prep_send(sqe, p.fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, UserData(Op::kSend, i));
  p.send_in_flight = true;
}

void Fleet::HandleRecv(uint32_t i, int res) {
  Publisher& p = publishers_[i];
  p.recv_in_flight = false;
  if (results_[i].failed || p.closed || p.conn_over) return;
  if (res <= 0) {
    if (res == 0 && p.fin_sent) {
      EndConnection(i, true);
      return;
    }
    Broke(i,
          res == 0 ? "the server closed the connection" : absl::StrCat("recv: ", strerror(-res)));
    return;
  }
  const bool was_live = p.conn->live();
  absl::Status s = p.conn->Receive(
      std::span<const uint8_t>(loop_->recv_slab.data() + size_t{i} * kRecvBufferSize, size_t(res)));
  if (!s.ok()) {
    Broke(i, std::string(s.message()));
    return;
  }
  if (!was_live && p.conn->live()) {
    GoLive(i);
  } else if (p.conn->live() && p.conn->reconnect_request() && !p.moving) {
    BeginMove(i);
  }
  if (results_[i].failed || p.conn_over) return;
  ArmRecv(i);
  MaybeArmSend(i);
}

void Fleet::GoLive(uint32_t i) {
  Publisher& p = publishers_[i];
  PublisherResult& r = results_[i];
  p.live_ns = ringbuf::MonotonicNs();
  if (first_live_ns_ == 0) first_live_ns_ = p.live_ns;
  if (!r.went_live) {
    r.went_live = true;
    r.connect_ns = int64_t(p.live_ns - p.connect_at_ns);
    p.base_ns = p.live_ns;
  } else {
    ++r.reconnects;
    counters_.reconnects.fetch_add(1, std::memory_order_relaxed);
  }
  SetReconnecting(i, false);
  p.backoff_ns = kFirstBackoffNs;
  p.counted_live = true;
  counters_.live.fetch_add(1, std::memory_order_relaxed);
  if (options_.idle) {
    if (draining_) {
      BeginEnding(i);
    } else if (p.conn->reconnect_request()) {
      BeginMove(i);
    }
    return;
  }
  p.conn->SendMetadata(source_->metadata());
  for (const MediaFrame& h : source_->headers()) SendFrame(p.conn.get(), h, nullptr);
  if (draining_) {
    BeginEnding(i);
    return;
  }
  if (p.resync) SkipToKeyframe(i, p.live_ns);
  // A request that came with (or before) the publish start: at a keyframe, so this
  // connection leaves again once the headers are out.
  if (p.conn->reconnect_request() && !p.moving) BeginMove(i);
  if (p.leaving || results_[i].failed) return;
  QueueFrames(i, p.live_ns);
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

// Paced: every frame due by now, then a wake-up at the next one's time. Unpaced: frames
// until the window is full; the send completion asks for more.
void Fleet::QueueFrames(uint32_t i, uint64_t now_ns) {
  Publisher& p = publishers_[i];
  if (p.ending) return;
  PublisherResult& r = results_[i];
  if (!options_.pace) {
    while (p.conn->pending_bytes() < options_.window) {
      QueueOneFrame(p);
      if (p.moving && source_->IsKeyframe(p.frame_index)) {
        Leave(i);
        return;
      }
    }
    r.peak_queued = std::max<uint64_t>(r.peak_queued, p.conn->pending_bytes());
    MaybeArmSend(i);
    return;
  }
  uint64_t due = DueNs(p, p.frame_index);
  while (due <= now_ns) {
    if (p.conn->pending_bytes() >= options_.window) {
      // The socket takes less than the stream: the frames wait in the source (as an
      // encoder's output queue would), and the next send completion queues them.
      p.held = true;
      r.peak_queued = std::max<uint64_t>(r.peak_queued, p.conn->pending_bytes());
      MaybeArmSend(i);
      return;
    }
    QueueOneFrame(p);
    if (p.moving && source_->IsKeyframe(p.frame_index)) {
      // The GOP is out: leave now, so that the next connection is (nearly) live by the
      // time the keyframe is due.
      r.peak_queued = std::max<uint64_t>(r.peak_queued, p.conn->pending_bytes());
      Leave(i);
      return;
    }
    due = DueNs(p, p.frame_index);
  }
  r.peak_queued = std::max<uint64_t>(r.peak_queued, p.conn->pending_bytes());
  Wake(i, due);
  MaybeArmSend(i);
}

uint64_t Fleet::DueNs(const Publisher& p, uint64_t frame_index) const {
  return p.base_ns + source_->At(frame_index).timestamp_ms * 1'000'000;
}

uint64_t Fleet::Backlog(const Publisher& p, uint64_t now_ns) const {
  uint64_t bytes = p.conn->pending_bytes();
  if (options_.pace && !options_.idle) {
    for (uint64_t k = p.frame_index; DueNs(p, k) <= now_ns; ++k)
      bytes += source_->At(k).body.size();
  }
  return bytes;
}

void Fleet::QueueOneFrame(Publisher& p) {
  const MediaFrame frame = source_->At(p.frame_index++);
  const uint32_t index = uint32_t(&p - publishers_.data());
  if (Stampable(frame.body)) {
    const Stamp stamp{.run = options_.run,
                      .publisher = index,
                      .sequence = ++p.sequence,
                      .send_ns = ringbuf::RealtimeNs()};
    SendFrame(p.conn.get(), frame, options_.stamp ? &stamp : nullptr);
    ++results_[index].frames;
    counters_.frames_sent.fetch_add(1, std::memory_order_relaxed);
  } else {
    SendFrame(p.conn.get(), frame, nullptr);
  }
  ++results_[index].messages;
}

void Fleet::HandleSend(uint32_t i, int res) {
  Publisher& p = publishers_[i];
  p.send_in_flight = false;
  if (results_[i].failed || p.closed || p.conn_over) return;
  if (res < 0) {
    Broke(i, absl::StrCat("send: ", strerror(-res)));
    return;
  }
  p.conn->Sent(size_t(res));
  results_[i].bytes += uint64_t(res);
  counters_.bytes_sent.fetch_add(uint64_t(res), std::memory_order_relaxed);
  if (!options_.pace && p.conn->live() && !p.ending) {
    QueueFrames(i, 0);
  } else if (p.held && !p.ending && p.conn->pending_bytes() < options_.window) {
    p.held = false;
    QueueFrames(i, ringbuf::MonotonicNs());
  } else {
    MaybeArmSend(i);
  }
}

void Fleet::StartDrain(uint64_t now_ns) {
  draining_ = true;
  sending_time_ = absl::Nanoseconds(first_live_ns_ ? int64_t(now_ns - first_live_ns_) : 0);
  end_ns_ = now_ns;
  for (uint32_t i = 0; i < publishers_.size(); ++i) {
    Publisher& p = publishers_[i];
    if (p.closed) continue;
    p.after = After::kDone;  // a move under way ends with its old connection
    p.moving = false;
    if (p.conn && p.conn->live()) {
      results_[i].backlog_at_end = Backlog(p, now_ns);
      BeginEnding(i);
    } else if (!p.connecting && p.fd < 0 && results_[i].went_live && p.last_clean) {
      // Between the two connections of a move: its last one ended in order.
      results_[i].closed_cleanly = true;
      Release(i);
    } else if (!p.connecting && p.fd < 0) {
      Fail(i, results_[i].went_live ? "reconnecting when the run ended"
                                    : "not connected before the end of the run");
    }
    // Handshaking ones go on: they end as soon as they go live (GoLive) or fail; a move's
    // old connection ends as it was going to.
  }
}

void Fleet::BeginEnding(uint32_t i) {
  publishers_[i].ending = true;
  MaybeArmSend(i);
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
