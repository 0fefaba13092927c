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
#include "loadgen/internal/fleet_state.h"
#include "loadgen/stamp.h"
#include "ringbuf/clock.h"

namespace uringest::loadgen {
namespace {

// user_data: bits 63..56 the op, bits 31..0 the publisher index.
enum class Op : uint8_t { kConnect = 1, kRecv = 2, kSend = 3 };
uint64_t UserData(Op op, uint32_t i) { return uint64_t(op) << 56 | i; }

constexpr size_t kRecvBufferSize = 4096;  // server replies are small
constexpr unsigned kRingEntries = 4096;
constexpr unsigned kCompletionBatch = 256;
constexpr uint64_t kMaxSleepNs = 100'000'000;

}  // namespace

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

}  // namespace uringest::loadgen
