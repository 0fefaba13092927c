#include "relay/upstream.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace uringest::relay {
namespace {

// The client's queue is topped up from ours while it holds less than this: frames wait
// where they can still be skipped, not in bytes already chunked.
constexpr size_t kClientLowWater = 256 << 10;
constexpr size_t kReceiveBuffer = 64 << 10;
// A connection live this long was a success: the next failure starts the backoff over.
constexpr uint64_t kHealthyNs = 10'000'000'000;

uint64_t Ns(absl::Duration d) { return uint64_t(absl::ToInt64Nanoseconds(d)); }

// How long `frame` has waited by `now_ns` (the tap thread may have stamped it after the
// relay's thread read its clock).
uint64_t Waited(const FramePtr& frame, uint64_t now_ns) {
  return now_ns > frame->queued_ns ? now_ns - frame->queued_ns : 0;
}

std::string Seconds(uint64_t ns) { return absl::StrFormat("%.1f s", double(ns) / 1e9); }

const char* StateName(Upstream::State s) {
  switch (s) {
    case Upstream::State::kWaiting:
      return "waiting";
    case Upstream::State::kResolving:
      return "resolving";
    case Upstream::State::kConnecting:
      return "connecting";
    case Upstream::State::kPublishing:
      return "publishing";
    case Upstream::State::kLive:
      return "live";
    case Upstream::State::kEnding:
      return "ending";
    case Upstream::State::kClosed:
      return "closed";
  }
  return "?";
}

// A non-blocking socket connecting to `address`, or an error naming what failed.
absl::StatusOr<int> StartConnect(const Address& address) {
  const int fd = socket(address.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::ResourceExhaustedError(absl::StrCat("socket: ", strerror(errno)));
  if (connect(fd, reinterpret_cast<const sockaddr*>(&address.storage), address.length) < 0 &&
      errno != EINPROGRESS) {
    const int err = errno;
    close(fd);
    return absl::UnavailableError(absl::StrCat("connect: ", strerror(err)));
  }
  return fd;
}

}  // namespace

Upstream::Upstream(const UpstreamEnv& env, std::string stream, std::string url, UpstreamUrl target,
                   const StreamStart* start)
    : env_(env),
      stream_(std::move(stream)),
      url_(std::move(url)),
      redacted_url_(RedactedUrl(url_)),
      target_(std::move(target)),
      start_(start),
      backoff_(env.options->first_backoff) {}

Upstream::~Upstream() {
  CancelResolve();
  CloseSocket();
}

void Upstream::CancelResolve() {
  if (resolve_id_ != 0 && env_.forget) env_.forget(resolve_id_);
  resolve_id_ = 0;
}

void Upstream::Log(std::string_view what) const {
  if (env_.log) env_.log(absl::StrCat(stream_, " -> ", redacted_url_, ": ", std::string(what)));
}

void Upstream::Connect(uint64_t now_ns) {
  if (connections_++ > 0) ++stats_.reconnects;
  state_ = State::kResolving;
  deadline_ns_ = now_ns + Ns(env_.options->timeout);
  if (env_.resolve) {
    resolve_id_ = env_.resolve(this, target_.host, target_.port);
  } else {
    OnResolved(ResolveNow(target_.host, target_.port), now_ns);
  }
}

void Upstream::OnResolved(absl::StatusOr<std::vector<Address>> addresses, uint64_t now_ns) {
  resolve_id_ = 0;
  if (!addresses.ok()) {
    Fail(std::string(addresses.status().message()), now_ns);
    return;
  }
  addresses_ = *std::move(addresses);
  next_address_ = 0;
  ConnectNext("", now_ns);
}

// Connects to the next address the name has; `why` says why the one before failed.
void Upstream::ConnectNext(std::string why, uint64_t now_ns) {
  CloseSocket();
  while (next_address_ < addresses_.size()) {
    absl::StatusOr<int> fd = StartConnect(addresses_[next_address_++]);
    if (!fd.ok()) {
      why = std::string(fd.status().message());
      continue;
    }
    fd_ = *fd;
    epoll_event ev{.events = EPOLLOUT, .data = {.ptr = this}};
    epoll_ctl(env_.epoll_fd, EPOLL_CTL_ADD, fd_, &ev);
    want_write_ = true;
    state_ = State::kConnecting;
    client_ = std::make_unique<rtmp::PublishClient>(
        rtmp::PublishClientOptions{.app = target_.app,
                                   .stream = target_.stream,
                                   .tc_url = target_.tc_url,
                                   .chunk_size = env_.options->chunk_size,
                                   .fc_publish = true,
                                   .enhanced = start_->caps()});
    return;
  }
  Fail(why, now_ns);
}

void Upstream::OnConnected(uint64_t now_ns) {
  int err = 0;
  socklen_t len = sizeof(err);
  getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) {
    ConnectNext(absl::StrCat("connect: ", strerror(err)), now_ns);
    return;
  }
  state_ = State::kPublishing;
  client_->Start(uint32_t(now_ns));
  if (target_.tls) StartTls();
  progress_ns_ = now_ns;
  Flush(now_ns);
}

void Upstream::StartTls() {
  absl::StatusOr<std::unique_ptr<engine::TlsSession>> tls =
      engine::TlsSession::CreateClient(env_.options->tls, target_.host);
  if (!tls.ok()) return;  // Flush() finds no session and fails the connection
  tls_ = *std::move(tls);
  uint8_t none[1];
  (void)tls_->Read(none);  // the ClientHello
  tls_->TakeOutput(&tls_out_);
}

void Upstream::OnEvents(uint32_t events, uint64_t now_ns) {
  if (fd_ < 0) return;
  if (state_ == State::kConnecting) {
    if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0) OnConnected(now_ns);
    return;
  }
  if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) != 0) Receive(now_ns);
  if (fd_ >= 0 && (events & EPOLLOUT) != 0) Flush(now_ns);
}

void Upstream::Receive(uint64_t now_ns) {
  uint8_t buffer[kReceiveBuffer];
  for (;;) {
    const ssize_t n = recv(fd_, buffer, sizeof(buffer), MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (state_ == State::kEnding) {
        CloseSocket();
        state_ = State::kClosed;
        return;
      }
      Fail(n == 0 ? "the upstream closed the connection" : absl::StrCat("recv: ", strerror(errno)),
           now_ns);
      return;
    }
    absl::Status s;
    if (tls_ != nullptr) {
      tls_->Feed({buffer, size_t(n)});
      uint8_t plain[engine::kTlsMaxRecordPlaintext];
      for (;;) {
        absl::StatusOr<size_t> got = tls_->Read(plain);
        if (!got.ok()) {
          s = got.status();
          break;
        }
        if (*got == 0) break;
        if (s = Deliver({plain, *got}); !s.ok()) break;
      }
      tls_->TakeOutput(&tls_out_);
    } else {
      s = Deliver({buffer, size_t(n)});
    }
    if (!s.ok()) {
      Fail(std::string(s.message()), now_ns);
      return;
    }
  }
  if (state_ == State::kPublishing && client_->live()) GoLive(now_ns);
  Flush(now_ns);
}

absl::Status Upstream::Deliver(std::span<const uint8_t> plaintext) {
  if (state_ == State::kEnding) return absl::OkStatus();  // answers to deleteStream
  return client_->Receive(plaintext);
}

void Upstream::GoLive(uint64_t now_ns) {
  state_ = State::kLive;
  live_since_ns_ = now_ns;
  Log(absl::StrCat("live", connections_ > 1 ? " again" : "",
                   tls_ != nullptr ? absl::StrCat(" (", tls_->Describe(), ")") : "",
                   start_->has_keyframe() ? absl::StrCat(", from the keyframe of stream time ",
                                                         start_->opening_time() / 1000.0, " s")
                                          : ""));
  // onMetaData and the configurations go out with the time of what follows them.
  const uint32_t at = start_->opening_time();
  const StreamStart::Start opening = start_->Opening();
  if (opening.metadata) {
    ++stats_.frames;
    client_->SendMetadata(opening.metadata->body, at);
  }
  for (const FramePtr& c : opening.configs) {
    ++stats_.frames;
    client_->SendMessage(
        c->type == rtmp::MessageType::kAudio ? rtmp::kAudioChunkStream : rtmp::kVideoChunkStream,
        c->type, at, c->body);
  }
  queue_.insert(queue_.end(), opening.frames.begin(), opening.frames.end());
  // Without a keyframe kept, video (and the audio with it) waits for the next one.
  await_keyframe_ = start_->video() && !start_->has_keyframe();
  Pump();
}

void Upstream::Send(const FramePtr& frame, uint64_t now_ns) {
  if (state_ != State::kLive) return;
  if (await_keyframe_ && !frame->config && !frame->metadata) {
    if (!frame->keyframe) {
      ++stats_.dropped;
      ++awaited_;
      return;
    }
    await_keyframe_ = false;
    if (awaited_ > 0) {
      Log(absl::StrCat("resumed at the keyframe of stream time ", frame->timestamp / 1000.0, " s; ",
                       awaited_, " more frames skipped while waiting for it"));
      awaited_ = 0;
    }
  }
  queue_.push_back(frame);
  if (!env_.options->lossless && Waited(queue_.front(), now_ns) > Ns(env_.options->max_lag)) {
    Skip(now_ns);
  }
  Pump();
}

void Upstream::Queue(const FramePtr& f) {
  ++stats_.frames;
  if (f->metadata) {
    client_->SendMetadata(f->body, f->timestamp);
    return;
  }
  const uint32_t chunk_stream = f->type == rtmp::MessageType::kAudio   ? rtmp::kAudioChunkStream
                                : f->type == rtmp::MessageType::kVideo ? rtmp::kVideoChunkStream
                                                                       : rtmp::kDataChunkStream;
  client_->SendMessage(chunk_stream, f->type, f->timestamp, f->body);
}

// Hands frames to the client while its queue is short.
void Upstream::Pump() {
  while (!queue_.empty() && client_->pending_bytes() < kClientLowWater) {
    Queue(queue_.front());
    queue_.pop_front();
  }
}

// Lets go of the frames before the newest keyframe queued (onMetaData and
// configurations stay), or of every frame if none is: then video waits for the next.
void Upstream::Skip(uint64_t now_ns) {
  auto keyframe =
      std::find_if(queue_.rbegin(), queue_.rend(), [](const FramePtr& f) { return f->keyframe; });
  const bool found = keyframe != queue_.rend();
  const size_t cut = found ? size_t(queue_.rend() - keyframe - 1) : queue_.size();
  if (cut == 0) return;  // the oldest is the newest keyframe: nothing to skip to
  std::deque<FramePtr> kept;
  uint64_t dropped = 0, bytes = 0;
  const uint64_t waited = Waited(queue_.front(), now_ns);
  for (size_t i = 0; i < cut; ++i) {
    const FramePtr& f = queue_[i];
    if (f->metadata || f->config) {
      kept.push_back(f);
    } else {
      ++dropped;
      bytes += f->body.size();
    }
  }
  kept.insert(kept.end(), queue_.begin() + ptrdiff_t(cut), queue_.end());
  queue_.swap(kept);
  if (!found) await_keyframe_ = start_->video();
  stats_.dropped += dropped;
  Log(absl::StrCat("reads slower than the stream (", Seconds(waited), " behind): skipped ", dropped,
                   " frames (", bytes, " bytes) to ",
                   await_keyframe_ ? "the next keyframe" : "the newest keyframe"));
}

// Sends what the client (and TLS) have, until the socket takes no more.
void Upstream::SendQueued(uint64_t now_ns) { Flush(now_ns); }

void Upstream::Flush(uint64_t now_ns) {
  if (fd_ < 0 || state_ == State::kConnecting) return;
  if (target_.tls && tls_ == nullptr) {
    Fail("TLS session could not be made", now_ns);
    return;
  }
  for (;;) {
    std::span<const uint8_t> out;
    if (tls_ != nullptr) {
      while (tls_->handshake_done() && tls_out_.size() - tls_sent_ < kClientLowWater) {
        std::span<const uint8_t> plain = client_->NextSend();
        if (plain.empty()) break;
        plain = plain.first(std::min(plain.size(), engine::kTlsMaxRecordPlaintext));
        if (absl::Status s = tls_->Write(plain); !s.ok()) {
          Fail(std::string(s.message()), now_ns);
          return;
        }
        client_->Sent(plain.size());
        tls_->TakeOutput(&tls_out_);
      }
      // Unpublished and all of it encrypted: close_notify ends the session (once).
      if (state_ == State::kEnding && client_->pending_bytes() == 0 && tls_->can_shut_down()) {
        tls_->Shutdown();
        tls_->TakeOutput(&tls_out_);
      }
      out = std::span<const uint8_t>(tls_out_).subspan(tls_sent_);
    } else {
      out = client_->NextSend();
    }
    if (out.empty()) break;
    const ssize_t n = send(fd_, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      WantWrite(true);
      return;
    }
    if (n < 0) {
      Fail(absl::StrCat("send: ", strerror(errno)), now_ns);
      return;
    }
    stats_.bytes += uint64_t(n);
    progress_ns_ = now_ns;
    if (tls_ != nullptr) {
      tls_sent_ += size_t(n);
      if (tls_sent_ == tls_out_.size()) tls_out_.clear(), tls_sent_ = 0;
    } else {
      client_->Sent(size_t(n));
    }
    Pump();
  }
  WantWrite(false);
  if (state_ == State::kEnding && queue_.empty() && client_->pending_bytes() == 0) {
    // Everything, deleteStream included, is out: the upstream may close first, or we do.
    shutdown(fd_, SHUT_WR);
  }
}

void Upstream::WantWrite(bool on) {
  if (on == want_write_ || fd_ < 0) return;
  want_write_ = on;
  epoll_event ev{.events = EPOLLIN | EPOLLRDHUP | (on ? uint32_t(EPOLLOUT) : 0u),
                 .data = {.ptr = this}};
  epoll_ctl(env_.epoll_fd, EPOLL_CTL_MOD, fd_, &ev);
}

void Upstream::Tick(uint64_t now_ns) {
  switch (state_) {
    case State::kWaiting:
      if (!ending_ && now_ns >= deadline_ns_) Connect(now_ns);
      return;
    case State::kResolving:
    case State::kConnecting:
    case State::kPublishing:
      if (now_ns >= deadline_ns_) {
        Fail(absl::StrCat("no publish within ", absl::FormatDuration(env_.options->timeout)),
             now_ns);
      }
      return;
    case State::kLive:
      if ((!queue_.empty() || client_->pending_bytes() > 0 || tls_out_.size() > tls_sent_) &&
          now_ns - progress_ns_ > Ns(env_.options->timeout)) {
        Fail(absl::StrCat("stalled: took no byte for ", Seconds(now_ns - progress_ns_)), now_ns);
        return;
      }
      if (!env_.options->lossless && !queue_.empty() &&
          Waited(queue_.front(), now_ns) > Ns(env_.options->max_lag)) {
        Skip(now_ns);
        Pump();
        Flush(now_ns);
      }
      return;
    case State::kEnding:
      if (now_ns >= deadline_ns_) {
        Log("closed before the upstream took everything");
        CloseSocket();
        state_ = State::kClosed;
      }
      return;
    case State::kClosed:
      return;
  }
}

void Upstream::End(uint64_t now_ns) {
  ending_ = true;
  if (state_ != State::kLive) {
    if (state_ != State::kClosed) Log("stream ended; closed");
    CancelResolve();
    CloseSocket();
    state_ = State::kClosed;
    return;
  }
  while (!queue_.empty()) {
    Queue(queue_.front());
    queue_.pop_front();
  }
  client_->Unpublish();
  state_ = State::kEnding;
  deadline_ns_ = now_ns + Ns(env_.options->timeout);
  Log("stream ended; unpublishing");
  Flush(now_ns);
}

void Upstream::Fail(std::string why, uint64_t now_ns) {
  CancelResolve();
  CloseSocket();
  if (state_ == State::kLive && now_ns - live_since_ns_ >= kHealthyNs) {
    backoff_ = env_.options->first_backoff;
  }
  stats_.dropped += queue_.size();
  queue_.clear();
  client_.reset();
  stats_.last_error = why;
  if (ending_) {
    state_ = State::kClosed;
    Log(absl::StrCat(why, "; closed"));
    return;
  }
  // Jitter: 75% to 100% of the backoff.
  thread_local std::minstd_rand jitter{uint32_t(now_ns)};
  const double scale = 0.75 + 0.25 * double(jitter() % 1000) / 1000.0;
  const absl::Duration wait = backoff_ * scale;
  backoff_ = std::min(backoff_ * 2, env_.options->max_backoff);
  state_ = State::kWaiting;
  deadline_ns_ = now_ns + Ns(wait);
  Log(absl::StrCat(why, "; connecting again in ", Seconds(Ns(wait))));
}

void Upstream::CloseSocket() {
  if (fd_ >= 0) {
    epoll_ctl(env_.epoll_fd, EPOLL_CTL_DEL, fd_, nullptr);
    close(fd_);
    fd_ = -1;
  }
  want_write_ = false;
  tls_.reset();
  tls_out_.clear();
  tls_sent_ = 0;
}

bool Upstream::over_lag(uint64_t now_ns) const {
  return state_ == State::kLive && !queue_.empty() &&
         Waited(queue_.front(), now_ns) > Ns(env_.options->max_lag);
}

UpstreamStats Upstream::stats(uint64_t now_ns) const {
  UpstreamStats s = stats_;
  s.state = StateName(state_);
  s.lag_ms = queue_.empty() ? 0 : int64_t((Waited(queue_.front(), now_ns)) / 1'000'000);
  return s;
}

}  // namespace uringest::relay
