// verifier.h: uringest-load --verify. One thread reads every shard's ring of the server
// as a consumer (ringbuf::RingReader per shard, from the tail at Start(), so only this
// run's frames are seen) and books each stamped video frame (stamp.h) to the publisher
// that sent it: delivered, duplicated, out of order, and the latency from the stamp's
// send time to the moment the frame was visible in the ring.
//
// Exactness: a publisher's frames carry the sequence 1, 2, 3, ... of its stamped frames,
// and a bitset per publisher records which arrived, so lost = sent - distinct delivered,
// duplicates are frames seen twice, out of order are frames older than the newest seen.
// A reader lapped by the producer (laps() > 0) would see losses the server didn't make:
// the report says so.
//
// The server's end. While it reads (or waits for the run's first frames) the thread looks
// at the server every ringbuf::kWaitInterval; once the server died or shut down
// (ringbuf::Reader::CheckServerExit, within about a second) it stops reading, says so in
// server_exit(), and calls the on_server_exit callback, on its own thread.
//
//   absl::StatusOr<std::unique_ptr<Verifier>> v = Verifier::Open("uringest", run, 1000, 1000);
//   (*v)->Start();
//   ... publish ...
//   (*v)->Stop();
//   const PublisherTally& t = (*v)->tally(7);
//
// Thread safety: Start() and Stop() from one controlling thread; delivered(),
// live_lost() and server_exit() from any thread; tally() only after Stop().

#ifndef URINGEST_LOADGEN_VERIFIER_H_
#define URINGEST_LOADGEN_VERIFIER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "loadgen/latency_histogram.h"
#include "loadgen/stamp.h"
#include "ringbuf/reader.h"
#include "ringbuf/ring_reader.h"

namespace uringest::loadgen {

struct PublisherTally {
  uint64_t delivered = 0;  // distinct sequence numbers seen
  uint64_t duplicated = 0;
  uint64_t out_of_order = 0;
  uint64_t max_sequence = 0;
  LatencyHistogram latency;    // send to visible in the ring
  LatencyHistogram ingest;     // send to the server's ingest_time_ns
  std::vector<uint64_t> seen;  // bit s: sequence s arrived
};

class Verifier {
 public:
  // Opens ring `ring` of a running server. `frames_hint`: frames per publisher expected
  // (sizes the bitsets up front).
  static absl::StatusOr<std::unique_ptr<Verifier>> Open(const std::string& ring, uint32_t run,
                                                        uint32_t publishers, uint64_t frames_hint);
  ~Verifier();
  Verifier(const Verifier&) = delete;
  Verifier& operator=(const Verifier&) = delete;

  // Called at most once, on the verifier's thread, when the server dies or shuts down
  // (see above). Set it before Start().
  void set_on_server_exit(std::function<void(ringbuf::ServerExit)> callback) {
    on_server_exit_ = std::move(callback);
  }
  void Start();
  void Stop();

  // kNone until the thread saw the server die or shut down.
  ringbuf::ServerExit server_exit() const { return server_exit_.load(); }

  uint64_t delivered() const { return delivered_.load(std::memory_order_relaxed); }
  // Gaps in the sequences seen so far (frames still in flight are not gaps).
  int64_t live_lost() const { return live_lost_.load(std::memory_order_relaxed); }
  // The server's pid, from the directory.
  int server_pid() const { return server_pid_; }
  uint32_t shards() const { return uint32_t(rings_.size()); }

  const PublisherTally& tally(uint32_t publisher) const { return tallies_[publisher]; }
  uint64_t laps() const;
  uint64_t lost_bytes() const;
  uint64_t foreign_frames() const { return foreign_; }  // video records not of this run

 private:
  Verifier(uint32_t run, uint32_t publishers, uint64_t frames_hint);
  void ReadLoop();
  bool ServerGone();
  bool DrainRing(ringbuf::RingReader* ring);
  void Book(const Stamp& stamp, uint64_t ingest_ns, uint64_t now_ns);

  const uint32_t run_;
  std::unique_ptr<ringbuf::Reader> reader_;  // holds the directory
  std::vector<std::unique_ptr<ringbuf::RingReader>> rings_;
  std::vector<PublisherTally> tallies_;
  int server_pid_ = 0;
  uint64_t foreign_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::function<void(ringbuf::ServerExit)> on_server_exit_;
  std::atomic<ringbuf::ServerExit> server_exit_{ringbuf::ServerExit::kNone};
  std::atomic<uint64_t> delivered_{0};
  std::atomic<int64_t> live_lost_{0};
};

}  // namespace uringest::loadgen

#endif  // URINGEST_LOADGEN_VERIFIER_H_
