// fleet.h: N RTMP publishers in one thread on one io_uring. Each publisher connects
// (IORING_OP_CONNECT, spread over the ramp), runs an rtmp::PublishClient, and once live sends
// the MediaSource's frames: paced in real time from their timestamps, or as fast as the
// socket takes them (at most `window` bytes queued per connection). Every stampable audio
// and video frame carries a stamp (stamp.h) with the publisher's index and sequence number.
//
// One send and one receive are in flight per connection; at most `window` bytes wait
// in a connection's queue, so that a server that reads slower than the publishers send
// holds them back (TCP backpressure) and costs the fleet no memory. Pacing sleeps in
// io_uring_submit_and_wait_timeout until the earliest due frame (a min-heap of due
// times), so an idle fleet costs nothing. At the end of the run each publisher finishes
// sending what it queued, half-closes (the server ends the stream), and closes when the
// server closes; anything left after `drain` is closed hard.
//
// Moving. With follow_reconnect, connect announces Enhanced RTMP's Reconnect capability,
// and a publisher that gets a Reconnect Request finishes its GOP on the old connection
// (queues frames until the next one is a keyframe), ends it as at the end of a run
// (hard close after kLeaveTimeout), then publishes the same name at the request's tcUrl
// (or the same target): onMetaData, sequence headers, then that keyframe and the frames
// that fell due meanwhile, with the stamps' sequence carried on: nothing lost, nothing
// twice. With `reconnect`, a connection that breaks (refused, reset, closed by the
// server, publish refused) is retried at the target with backoff; frames due while the
// publisher is down are skipped (neither sent nor stamped), and it resumes at the first
// keyframe due once it is live again. Frames queued on the broken connection that the
// server never took stay counted as sent: the verifier finds them lost.
//
//   Fleet fleet(options, source.get());
//   if (absl::Status s = fleet.Init(); !s.ok()) return s;
//   fleet.Run([&] { PrintProgress(fleet.counters()); });  // called once a second
//   for (const PublisherResult& r : fleet.results()) ...
//
// Thread safety: Init() and Run() on one thread; counters() may be read from any thread.

#ifndef URINGEST_LOADGEN_FLEET_H_
#define URINGEST_LOADGEN_FLEET_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "loadgen/media_source.h"

namespace uringest::loadgen {

// "host:port", with an IPv6 address in brackets ("[::1]:1935").
std::string HostPort(const std::string& host, uint16_t port);

struct FleetOptions {
  std::string host = "127.0.0.1";  // an IPv4 or IPv6 address, or a name to resolve
  uint16_t port = 1935;
  uint32_t publishers = 1;
  std::string app = "live";
  std::string name_prefix = "load";             // publisher i publishes app/<prefix><i>
  absl::Duration duration = absl::Seconds(10);  // of sending, after the ramp
  absl::Duration ramp = absl::ZeroDuration();   // connects spread over this
  absl::Duration drain = absl::Seconds(10);     // for the end of the run
  uint32_t chunk_size = 0;                      // 0: mirror the server's
  bool pace = true;
  // Bytes queued per connection: unpaced, what keeps the socket busy; paced, the most a
  // publisher queues before its due frames wait (a sender backlog, in the report).
  size_t window = 512 << 10;
  uint32_t run = 0;  // the stamps' run id
  // Stamp the counted frames (stamp.h). Without, each frame goes out exactly as the
  // media source has it, so that a player can decode the stream; nothing can verify it.
  bool stamp = true;
  // Publishers go live and then send nothing (no onMetaData, no sequence headers, no
  // frames) until the run ends: what an idle publish session costs the server.
  bool idle = false;
  // Announce capsEx Reconnect and follow the server's Reconnect Requests (see above).
  bool follow_reconnect = true;
  // Reconnect (with backoff) after a connection breaks, until the run ends; without, a
  // broken connection fails its publisher.
  bool reconnect = false;
};

// What the loop counts, readable while it runs.
struct FleetCounters {
  std::atomic<uint32_t> connected{0};  // TCP connected now
  std::atomic<uint32_t> live{0};       // publishing now
  std::atomic<uint32_t> failed{0};
  std::atomic<uint32_t> reconnecting{0};  // between two connections now
  std::atomic<uint64_t> reconnects{0};    // connections live after a publisher's first
  std::atomic<uint64_t> bytes_sent{0};
  std::atomic<uint64_t> frames_sent{0};  // counted (stampable) frames queued
};

struct PublisherResult {
  std::string name;  // app/name
  bool went_live = false;
  bool failed = false;          // refused, reset, or never went live in time
  bool closed_cleanly = false;  // the last connection ended in order
  std::string error;            // why it failed
  uint64_t frames = 0;          // counted frames queued and sent (if !failed)
  uint64_t messages = 0;        // every audio/video/data message
  uint64_t bytes = 0;           // bytes on the wire
  int64_t connect_ns = 0;       // connect to publish start
  // When sending stopped: bytes queued but not yet taken by the socket, and (paced) the
  // frames due that waited for room in the queue. A server that keeps up leaves about
  // one frame.
  uint64_t backlog_at_end = 0;
  // The most bytes queued and not yet taken by the socket at once, during the run.
  uint64_t peak_queued = 0;
  uint64_t reconnect_requests = 0;  // Reconnect Requests followed
  uint64_t reconnects = 0;          // connections live after the first, for any reason
  uint64_t skipped = 0;             // frames due while down (reconnect), never stamped
  uint64_t broken = 0;              // connections that broke and were retried
  std::string last_break;           // why the last of those broke
};

class Fleet {
 public:
  // `source` must outlive the fleet.
  Fleet(const FleetOptions& options, const MediaSource* source);
  ~Fleet();
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  // Sets up the ring and the buffers, raises RLIMIT_NOFILE to its hard limit.
  absl::Status Init();
  // Runs the whole load: ramp, duration, drain. `each_second` runs on this thread.
  void Run(const std::function<void()>& each_second);
  // Ends the run early (any thread): the drain starts at once.
  void RequestStop() { stop_.store(true); }
  // Ends the run at once (any thread), within 100 ms: no drain; every publisher not done
  // yet is closed and fails with `why`, which must outlive the run (a literal).
  void Abort(const char* why) {
    abort_reason_.store(why);
    abort_.store(true);
  }

  const FleetCounters& counters() const { return counters_; }
  const std::vector<PublisherResult>& results() const { return results_; }
  // Wall time from the first publish start to the last frame queued.
  absl::Duration sending_time() const { return sending_time_; }

 private:
  struct Publisher;
  struct Due;

  struct Target;

  absl::Status Resolve(const std::string& host, uint16_t port, Target* target) const;
  absl::StatusOr<uint32_t> FindTarget(const std::string& tc_url);
  void Wake(uint32_t i, uint64_t ns);
  void StartConnect(uint32_t i);
  void ArmRecv(uint32_t i);
  void MaybeArmSend(uint32_t i);
  void HandleCompletion(uint64_t user_data, int res);
  void HandleConnect(uint32_t i, int res);
  void HandleRecv(uint32_t i, int res);
  void HandleSend(uint32_t i, int res);
  void GoLive(uint32_t i);
  void QueueFrames(uint32_t i, uint64_t now_ns);
  void QueueOneFrame(Publisher& p);
  uint64_t DueNs(const Publisher& p, uint64_t frame_index) const;
  // Bytes queued and not sent, and (paced) the bodies of the frames due by `now_ns` that
  // wait for room in the queue.
  uint64_t Backlog(const Publisher& p, uint64_t now_ns) const;
  void Fail(uint32_t i, std::string why);
  // A connection failed: retry (reconnect, or the move it was part of) or fail.
  void Broke(uint32_t i, std::string why);
  void EndConnection(uint32_t i, bool clean);
  void ScheduleConnect(uint32_t i, uint64_t now_ns);
  void BeginMove(uint32_t i);
  void Leave(uint32_t i);
  void SkipToKeyframe(uint32_t i, uint64_t now_ns);
  void SetReconnecting(uint32_t i, bool on);
  void BeginEnding(uint32_t i);
  void MaybeRelease(uint32_t i);
  void Release(uint32_t i);
  void RunDue(uint64_t now_ns);
  void StartDrain(uint64_t now_ns);
  void CloseRemaining(const char* why);

  struct Loop;
  const FleetOptions options_;
  const MediaSource* const source_;
  std::unique_ptr<Loop> loop_;
  std::vector<Publisher> publishers_;
  std::vector<PublisherResult> results_;
  FleetCounters counters_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> abort_{false};
  std::atomic<const char*> abort_reason_{nullptr};
  bool draining_ = false;
  uint32_t open_ = 0;  // publishers whose socket is not closed yet
  uint64_t first_live_ns_ = 0;
  uint64_t end_ns_ = 0;
  absl::Duration sending_time_;
};

}  // namespace uringest::loadgen

#endif  // URINGEST_LOADGEN_FLEET_H_
