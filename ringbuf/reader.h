// reader.h: the consumer API of the frame ring. Any process opens a server's rings by
// name, lists its streams, follows one, and reads its frames as zero-copy views, never
// asking the server anything. A late joiner gets the stream's onMetaData and sequence
// headers (from the directory) first, then frames from the latest keyframe.
//
//   absl::StatusOr<std::unique_ptr<Reader>> reader = Reader::Open("live");
//   absl::Status s = (*reader)->Follow("live/cam1");  // from the latest keyframe
//   Frame frame;
//   for (;;) {
//     ReadResult r = (*reader)->Next(&frame, absl::Seconds(1));
//     if (r == ReadResult::kFrame) {
//       WriteFlvTag(frame);                           // frame.payload is in the ring...
//       if (!(*reader)->Check(frame)) Rewind();       // ...so check it after use
//     } else if (r == ReadResult::kServerGone || r == ReadResult::kStreamEnded) {
//       break;
//     }
//   }
//
// Waiting. A consumer may start before the server, or before the stream: WaitForServer()
// waits for a live server, WaitForStream() for the stream. Both sleep (no polling loop
// that maps or scans anything per round). Once a consumer has seen a live server, that
// server's end ends every wait and Next(): a server that dies (SIGKILL, crash, hang) is
// kServerDied / ServerExit::kDied, a clean shutdown kServerShutDown / kShutDown.
//
//   absl::StatusOr<std::unique_ptr<Reader>> reader = Reader::WaitForServer("live", {});
//   StreamInfo info;
//   WaitResult w = (*reader)->WaitForStream("live/cam1", {}, &info);  // kReady: Follow()
//
// Thread safety: a Reader is used by one thread; open one per thread.

#ifndef URINGEST_RINGBUF_READER_H_
#define URINGEST_RINGBUF_READER_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ringbuf/directory.h"
#include "ringbuf/record_meta.h"
#include "ringbuf/ring_reader.h"
#include "ringbuf/stream_follower.h"

namespace uringest::ringbuf {

struct ReaderOptions {
  // A server whose heartbeat is older than this is reported dead (it stamps it at least
  // every 100 ms) unless it still holds the ring's lock: a machine too busy to schedule
  // the server's shards delays heartbeats, while a dead server's lock goes at once.
  absl::Duration dead_after = absl::Milliseconds(500);
  // A server that holds its lock but has not stamped a heartbeat for this long is hung,
  // and reported dead.
  absl::Duration hung_after = absl::Seconds(10);
};

enum class StartAt {
  kLatestKeyframe,  // the latest keyframe still in the ring (else the oldest keyframe)
  kNow,             // the next record written, keyframe or not
  kOldest,          // the oldest keyframe still in the ring
};

struct FollowOptions {
  StartAt start = StartAt::kLatestKeyframe;
  bool lossless = false;  // hold the producer back (bounded; see Producer)
  // Deliver the directory's onMetaData and sequence headers before the first frame.
  bool sequence_headers = true;
};

// One frame of the followed stream.
struct Frame {
  // What its record says about it. A frame replayed from the directory has only its
  // type, flags, stream_id, track_id and packet_type (sequence, times and codec are 0).
  RecordMeta meta;
  // The payload (FLV tag body). In the ring: valid until the next Next() call, and only
  // if Check() says so after use.
  std::span<const uint8_t> payload;
  uint64_t lost_before = 0;     // frames of this stream lost just before this one
  bool from_directory = false;  // onMetaData/sequence header replayed on join

  RecordView view;  // internal: what Check() validates
};

enum class ReadResult {
  kFrame,        // *frame is filled
  kTimeout,      // nothing within the timeout
  kStreamEnded,  // the stream ended (after its kStreamEnd frame, if not lost)
  kEvicted,      // the producer evicted this lossless reader: it is lossy from now on
  kServerGone,   // the server died, restarted or shut down: see CheckServer()
};

enum class ServerState {
  kAlive,
  kDead,       // no heartbeat for ReaderOptions::dead_after
  kRestarted,  // a new server (another epoch) owns the name: Open() again
  kClosed,     // the server shut down cleanly
};

// How a server that a consumer saw alive went, in the two cases a consumer tells apart.
enum class ServerExit {
  kNone,      // it is alive
  kDied,      // killed, crashed or hung (kDead), or replaced (kRestarted) without first
              // shutting down cleanly
  kShutDown,  // it shut down cleanly (kClosed), and may have restarted since
};

// Bounds of a wait (WaitForServer, WaitForStream, WatchServer).
struct WaitOptions {
  absl::Time deadline = absl::InfiniteFuture();
  // Set from another thread or a signal handler to end the wait within kWaitInterval.
  const std::atomic<bool>* stop = nullptr;
};

enum class WaitResult {
  kReady,           // what was waited for is there
  kTimeout,         // WaitOptions::deadline passed
  kStopped,         // *WaitOptions::stop was set
  kServerDied,      // ServerExit::kDied
  kServerShutDown,  // ServerExit::kShutDown
};

// A waiting consumer sleeps this long between looks at the server (and the directory).
inline constexpr absl::Duration kWaitInterval = absl::Milliseconds(100);

class Reader {
 public:
  // Opens the directory of ring `name` (/dev/shm/NAME.dir).
  static absl::StatusOr<std::unique_ptr<Reader>> Open(std::string_view name,
                                                      const ReaderOptions& options = {});
  // Waits until a live server owns ring `name` (a fresh heartbeat, and it holds the
  // ring's lock), then opens it. Missing objects, and stale ones a dead server left, are
  // waited for: every kWaitInterval it looks at the directory's header only, and not
  // again at a file whose server it found dead, until a new server replaces the file.
  // Returns DeadlineExceeded at wait.deadline, Cancelled once *wait.stop is set, or an
  // error that waiting can't cure (PermissionDenied: not in the ring's group).
  static absl::StatusOr<std::unique_ptr<Reader>> WaitForServer(std::string_view name,
                                                               const WaitOptions& wait,
                                                               const ReaderOptions& options = {});
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  std::vector<StreamInfo> ListStreams() const { return directory_->List(); }
  std::optional<StreamInfo> FindStream(std::string_view name) const {
    return directory_->Find(name);
  }
  const StreamDirectory& directory() const { return *directory_; }

  // Follows stream `name` ("app/name"), replacing any stream followed before.
  absl::Status Follow(std::string_view name, const FollowOptions& options = {});
  // Waits up to `timeout` for the next frame (sleeping, not spinning, while idle).
  ReadResult Next(Frame* frame, absl::Duration timeout);
  // True if `frame`'s payload was intact while it was used. A false one is counted lost.
  bool Check(const Frame& frame);
  // Copies the payload to *out and checks it.
  bool CopyOut(const Frame& frame, std::vector<uint8_t>* out);

  ServerState CheckServer() const;
  // CheckServer() in the terms a consumer acts on. Only a clean shutdown marks the
  // directory closed, so a server that died and was replaced reads kDied.
  ServerExit CheckServerExit() const;

  // Waits until stream `name` is publishing, or (if `begun_since_ns` is not 0) one that
  // began at or after that CLOCK_REALTIME exists, ended or not, and copies it to *info.
  // Sleeps kWaitInterval between looks; the stream table is scanned again only when a
  // stream was claimed since (DirectoryHeader::next_stream_id), and once a second. Ends
  // with kServerDied or kServerShutDown within dead_after + kWaitInterval of the
  // server's end (a hung server that holds its lock: hung_after).
  WaitResult WaitForStream(std::string_view name, const WaitOptions& wait, StreamInfo* info,
                           uint64_t begun_since_ns = 0) const;
  // Sleeps until wait.deadline (kTimeout) or *wait.stop (kStopped), unless the server
  // goes first (kServerDied, kServerShutDown; noticed as in WaitForStream).
  WaitResult WatchServer(const WaitOptions& wait) const;
  uint64_t epoch() const { return directory_->epoch(); }
  // Frames of the followed stream overwritten before they were read (StreamFollower).
  uint64_t lost() const { return follower_ ? follower_->lost() : 0; }
  // Pictures passed over while waiting for a keyframe (after a loss, or at the start).
  uint64_t skipped() const { return follower_ ? follower_->skipped() : 0; }
  uint64_t lag_bytes() const { return ring_ ? ring_->Lag() : 0; }
  uint64_t evictions() const { return ring_ ? ring_->evictions() : 0; }
  const StreamInfo& followed() const { return followed_; }
  RingReader* ring() { return ring_.get(); }

 private:
  Reader(std::string name, const ReaderOptions& options,
         std::unique_ptr<StreamDirectory> directory);

  void QueueDirectoryFrames();
  void Seek(StartAt start);
  bool NextFromRing(Frame* frame);
  bool StreamEndedInDirectory() const;

  std::string name_;
  // The last look at the lock and the epoch while the heartbeat was stale: a server found
  // busy (alive) is probed again after kServerProbeInterval at the earliest.
  mutable absl::Time probed_at_ = absl::InfinitePast();
  mutable ServerState probed_state_ = ServerState::kAlive;
  ReaderOptions options_;
  std::unique_ptr<StreamDirectory> directory_;
  std::unique_ptr<RingReader> ring_;
  std::unique_ptr<StreamFollower> follower_;
  StreamInfo followed_;
  std::deque<Frame> queued_;  // directory frames still to deliver
  uint64_t evictions_seen_ = 0;
  bool ended_ = false;
};

}  // namespace uringest::ringbuf

#endif  // URINGEST_RINGBUF_READER_H_
