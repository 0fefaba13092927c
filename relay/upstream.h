// upstream.h: one destination of one stream in uringest-push: a non-blocking TCP (or TLS)
// connection to an upstream RTMP server that publishes the stream there, driven by the
// relay's epoll loop. It connects, handshakes and publishes (rtmp::PublishClient, with
// releaseStream/FCPublish as ffmpeg sends them), then sends onMetaData, the sequence
// headers and the frames from the latest keyframe (StreamStart), then every frame.
//
// Failures stay with the destination. One that is refused, closed, or stalled (it takes
// no byte for `timeout`) is closed and connected again after a backoff of 1 s doubling to
// 30 s (jittered by up to a quarter, so that many destinations of a dead origin do not
// come back in step), and resumes at the latest keyframe. One that reads slower than the
// stream comes in lets frames wait in its queue up to `max_lag`, then skips to the newest
// keyframe queued (keeping onMetaData and configurations) and logs what it dropped;
// `lossless` instead reports over_lag(), and the relay stops reading the ring.
//
//   Upstream up(env, "live/cam7", "rtmp://origin/live/cam7", *ParseUpstreamUrl(...), &start);
//   up.Connect(now);
//   up.OnEvents(epoll_events, now);   // when its socket is ready
//   up.Send(frame, now);              // each frame of the stream
//   up.SendQueued(now);               // after a batch of frames
//   up.Tick(now);                     // a few times a second: timeouts, backoff
//   up.End(now);                      // the stream ended: unpublish, close
//
// Thread safety: one thread (the relay's).

#ifndef URINGEST_RELAY_UPSTREAM_H_
#define URINGEST_RELAY_UPSTREAM_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/rtmp/publish_client.h"
#include "engine/tls.h"
#include "relay/push_rules.h"
#include "relay/relay_frame.h"
#include "relay/resolver.h"

namespace uringest::relay {

struct UpstreamOptions {
  absl::Duration max_lag = absl::Seconds(5);
  bool lossless = false;
  uint32_t chunk_size = 65536;  // our Set Chunk Size
  // Connecting and publishing must be done within this, and a live upstream that takes
  // no byte of what waits for this long is stalled.
  absl::Duration timeout = absl::Seconds(10);
  absl::Duration first_backoff = absl::Seconds(1);
  absl::Duration max_backoff = absl::Seconds(30);
  std::shared_ptr<const engine::TlsContext> tls;  // for rtmps:// upstreams
};

class Upstream;

// What every upstream of a relay shares.
struct UpstreamEnv {
  int epoll_fd = -1;
  const UpstreamOptions* options = nullptr;
  std::function<void(std::string_view)> log;
  // Asks for host:port's addresses, answered later with OnResolved(); returns the
  // question's id, for `forget` (an upstream that goes away first). Unset: upstreams
  // resolve at once, blocking.
  std::function<uint64_t(Upstream*, const std::string& host, uint16_t port)> resolve;
  std::function<void(uint64_t id)> forget;
};

struct UpstreamStats {
  std::string state;        // "waiting", "connecting", "publishing", "live", "ending", "closed"
  uint64_t bytes = 0;       // bytes sent to the upstream (on the wire), all connections
  uint64_t frames = 0;      // messages queued to it
  uint64_t reconnects = 0;  // connections after the first
  uint64_t dropped = 0;     // frames skipped for lag, or lost meanwhile
  int64_t lag_ms = 0;       // how long the oldest waiting frame has waited
  std::string last_error;   // why the last connection ended, if it failed
};

class Upstream {
 public:
  enum class State : uint8_t {
    kWaiting,     // for the backoff's end
    kResolving,   // the host name
    kConnecting,  // TCP, to each address of the name in turn
    kPublishing,  // TLS, the RTMP handshake and commands
    kLive,
    kEnding,  // unpublishing
    kClosed,
  };

  // `start` (the stream's) must outlive the upstream.
  Upstream(const UpstreamEnv& env, std::string stream, std::string url, UpstreamUrl target,
           const StreamStart* start);
  ~Upstream();
  Upstream(const Upstream&) = delete;
  Upstream& operator=(const Upstream&) = delete;

  void Connect(uint64_t now_ns);
  // The answer to env.resolve()'s question.
  void OnResolved(absl::StatusOr<std::vector<Address>> addresses, uint64_t now_ns);
  // Its socket is ready (epoll's events).
  void OnEvents(uint32_t events, uint64_t now_ns);
  // Timeouts, the backoff's end, lag.
  void Tick(uint64_t now_ns);
  // Queues the stream's next frame (dropped unless live). It goes out with the next
  // SendQueued(): the relay sends once for all the frames it took from the ring at once.
  void Send(const FramePtr& frame, uint64_t now_ns);
  // Writes what is queued to the socket, as much as it takes.
  void SendQueued(uint64_t now_ns);
  // `count` frames of the stream were lost before the relay read them.
  void Lost(uint64_t count) {
    if (state_ == State::kLive) stats_.dropped += count;
  }
  // The stream ended: what is queued goes out, then FCUnpublish/deleteStream, then the
  // connection closes (within `timeout`).
  void End(uint64_t now_ns);

  State state() const { return state_; }
  bool closed() const { return state_ == State::kClosed; }
  // Lossless: a frame has waited longer than max_lag; the relay should hold the ring.
  bool over_lag(uint64_t now_ns) const;
  UpstreamStats stats(uint64_t now_ns) const;
  const std::string& stream() const { return stream_; }
  const std::string& url() const { return redacted_url_; }
  // The URL as the rules made it, stream key and all: not for logs.
  const std::string& target_url() const { return url_; }

 private:
  void ConnectNext(std::string why, uint64_t now_ns);
  void CancelResolve();
  void StartTls();
  void OnConnected(uint64_t now_ns);
  void Receive(uint64_t now_ns);
  absl::Status Deliver(std::span<const uint8_t> plaintext);
  void GoLive(uint64_t now_ns);
  void Queue(const FramePtr& frame);
  void Pump();
  void Flush(uint64_t now_ns);
  void Skip(uint64_t now_ns);
  void Fail(std::string why, uint64_t now_ns);
  void CloseSocket();
  void WantWrite(bool on);
  void Log(std::string_view what) const;

  const UpstreamEnv env_;
  const std::string stream_;
  const std::string url_;
  const std::string redacted_url_;
  const UpstreamUrl target_;
  const StreamStart* const start_;
  State state_ = State::kWaiting;
  int fd_ = -1;
  bool want_write_ = false;
  uint64_t resolve_id_ = 0;  // the question being resolved, 0 if none
  std::vector<Address> addresses_;
  size_t next_address_ = 0;
  std::unique_ptr<rtmp::PublishClient> client_;
  std::unique_ptr<engine::TlsSession> tls_;
  std::vector<uint8_t> tls_out_;  // ciphertext to send
  size_t tls_sent_ = 0;
  std::deque<FramePtr> queue_;  // frames not yet handed to the client
  bool await_keyframe_ = false;
  uint64_t awaited_ = 0;      // frames dropped while awaiting a keyframe
  uint64_t deadline_ns_ = 0;  // connect/publish/ending deadline, or the backoff's end
  uint64_t progress_ns_ = 0;  // when the socket last took bytes
  uint64_t live_since_ns_ = 0;
  absl::Duration backoff_;
  uint64_t connections_ = 0;
  bool ending_ = false;  // End() came
  UpstreamStats stats_;
};

}  // namespace uringest::relay

#endif  // URINGEST_RELAY_UPSTREAM_H_
