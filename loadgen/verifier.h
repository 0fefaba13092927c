// verifier.h: uringest-load --verify. One thread reads every shard's ring of one server,
// or of several (each node of a fleet has its own), as a consumer (ringbuf::RingReader
// per shard, from the tail at Start(), so only this run's frames are seen) and books each
// stamped frame (stamp.h) to the publisher that sent it: delivered, duplicated, out of
// order, which ring it was seen in, and the latency from the stamp's send time to the
// moment the frame was visible in the ring.
//
// Exactness: a publisher's frames carry the sequence 1, 2, 3, ... of its stamped frames,
// and a bitset per publisher records which arrived, in any of the rings, so lost = sent -
// distinct delivered, duplicates are frames seen twice (in one ring or two), out of order
// are frames older than the newest seen in the same ring (two servers' rings are read in
// turn, so the order between them says nothing about either server). A reader lapped by the
// producer (laps() > 0) would see losses the server didn't make: the report says so.
//
// The servers' ends. While it reads (or waits for the run's first frames) the thread
// looks at each server every ringbuf::kWaitInterval. By default the first server that
// died or shut down (ringbuf::Reader::CheckServerExit, within about a second) ends the
// reading: server_exit() says so, and the on_server_exit callback runs, on the thread.
// With set_survive_exits(true) (a fleet: the publishers move on) a server's exit only
// closes its ring; the others are read on, and a ring whose directory a new server
// re-creates is opened again and read from its start (everything in it is new). A ring
// missing at Open() is waited for the same way; Open() fails only if none exists.
//
//   absl::StatusOr<std::unique_ptr<Verifier>> v =
//       Verifier::Open({"nodeA", "nodeB"}, run, 1000, 1000);
//   (*v)->set_survive_exits(true);
//   (*v)->Start();
//   ... publish ...
//   (*v)->Stop();
//   const PublisherTally& t = (*v)->tally(7);   // t.delivered_by_ring[1]: seen in nodeB
//
// Thread safety: Start() and Stop() from one controlling thread; delivered(),
// live_lost(), server_exit() and reopening() from any thread; tally(), laps(),
// lost_bytes() and ring_exits() only after Stop().

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
  // Of `delivered`, those first seen in each ring (in the order of Open()'s list).
  std::vector<uint64_t> delivered_by_ring;
  std::vector<uint64_t> max_by_ring;  // the newest sequence seen in each ring
};

class Verifier {
 public:
  // Opens the rings `rings` (each a server's ring name). `frames_hint`: frames per
  // publisher expected (sizes the bitsets up front). Fails if none of them exists.
  static absl::StatusOr<std::unique_ptr<Verifier>> Open(const std::vector<std::string>& rings,
                                                        uint32_t run, uint32_t publishers,
                                                        uint64_t frames_hint);
  ~Verifier();
  Verifier(const Verifier&) = delete;
  Verifier& operator=(const Verifier&) = delete;

  // Called at most once, on the verifier's thread, when a server's end ends the reading
  // (see above; never with survive_exits). Set it before Start().
  void set_on_server_exit(std::function<void(ringbuf::ServerExit)> callback) {
    on_server_exit_ = std::move(callback);
  }
  // See above. Set it before Start().
  void set_survive_exits(bool on) { survive_exits_ = on; }
  void Start();
  void Stop();

  // kNone until a server's end ended the reading.
  ringbuf::ServerExit server_exit() const { return server_exit_.load(); }

  uint64_t delivered() const { return delivered_.load(std::memory_order_relaxed); }
  // Gaps in the sequences seen so far (frames still in flight are not gaps).
  int64_t live_lost() const { return live_lost_.load(std::memory_order_relaxed); }
  // The pids of the servers whose rings were there at Open(), from their directories.
  std::vector<int> server_pids() const;
  const std::vector<std::string>& ring_names() const { return names_; }
  // Rings whose server is gone (or not there yet), now.
  uint32_t rings_down() const { return rings_down_.load(std::memory_order_relaxed); }

  const PublisherTally& tally(uint32_t publisher) const { return tallies_[publisher]; }
  uint64_t laps() const;
  uint64_t lost_bytes() const;
  uint64_t foreign_frames() const { return foreign_; }  // records not of this run
  // Times ring k's server was seen to end during the run.
  uint32_t ring_exits(size_t k) const;

 private:
  struct Node;

  Verifier(const std::vector<std::string>& rings, uint32_t run, uint32_t publishers,
           uint64_t frames_hint);
  static absl::Status OpenNode(Node* node, bool from_tail);
  void ReadLoop();
  // Looks at every server; false when a server's end ends the reading.
  bool LookAtServers();
  void CloseNode(uint32_t k);
  void CollectActive();
  bool DrainRing(ringbuf::RingReader* ring, uint32_t node);
  void Book(const Stamp& stamp, uint32_t node, uint64_t ingest_ns, uint64_t now_ns);

  const uint32_t run_;
  const std::vector<std::string> names_;
  std::vector<std::unique_ptr<Node>> nodes_;
  struct Active {
    ringbuf::RingReader* ring;
    uint32_t node;
  };
  std::vector<Active> active_;  // the open rings of every node
  std::vector<PublisherTally> tallies_;
  uint64_t foreign_ = 0;
  bool survive_exits_ = false;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::function<void(ringbuf::ServerExit)> on_server_exit_;
  std::atomic<ringbuf::ServerExit> server_exit_{ringbuf::ServerExit::kNone};
  std::atomic<uint64_t> delivered_{0};
  std::atomic<int64_t> live_lost_{0};
  std::atomic<uint32_t> rings_down_{0};
};

}  // namespace uringest::loadgen

#endif  // URINGEST_LOADGEN_VERIFIER_H_
