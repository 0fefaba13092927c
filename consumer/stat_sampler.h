// stat_sampler.h: takes snapshots of a running server's frame ring for uringest-stat:
// the directory's streams and counters, and per shard ring its producer counters and its
// lossless readers (the only readers the ring knows about) with their lag. Sampling only
// reads shared memory; the server never notices.
//
//   absl::StatusOr<std::unique_ptr<StatSampler>> sampler = StatSampler::Open("uringest");
//   StatSample a = (*sampler)->Sample();
//   absl::SleepFor(absl::Seconds(1));
//   StatTable table = BuildStatTable(&a, (*sampler)->Sample());   // stat_table.h
//   if ((*sampler)->WatchServer({.deadline = absl::Now() + absl::Seconds(1)}) !=
//       WaitResult::kTimeout) { ... the server died or shut down ... }
//
// Thread safety: one thread per sampler.

#ifndef URINGEST_CONSUMER_STAT_SAMPLER_H_
#define URINGEST_CONSUMER_STAT_SAMPLER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "ringbuf/reader.h"
#include "ringbuf/shm.h"

namespace uringest::consumer {

// A lossless reader registered in a ring.
struct ReaderSample {
  uint32_t shard = 0;
  uint32_t slot = 0;
  int32_t pid = 0;
  bool evicted = false;    // the producer gave up waiting for it: it reads lossy now
  uint64_t lag_bytes = 0;  // committed bytes it has not read yet
};

struct RingSample {
  uint32_t shard = 0;
  uint64_t capacity = 0;
  uint64_t tail = 0;     // bytes written since the ring was created
  uint64_t records = 0;  // records written
  uint64_t lossless_waits = 0;
  uint64_t lossless_evictions = 0;
  std::vector<ReaderSample> readers;
};

struct StatSample {
  std::string ring;
  uint64_t epoch = 0;
  int32_t server_pid = 0;
  uint32_t shard_count = 0;
  uint64_t start_time_ns = 0;  // CLOCK_REALTIME of the server's start
  std::string server_state;    // "live", "closed", "dead" or "restarted"
  int64_t taken_ns = 0;        // CLOCK_MONOTONIC when the sample was taken
  uint64_t wall_ns = 0;        // CLOCK_REALTIME, same moment
  // The publishing ones, by name; Enhanced RTMP ones with their track configs.
  std::vector<ringbuf::StreamInfo> streams;
  std::vector<RingSample> rings;  // shard order; a ring that can't be read is left out
};

class StatSampler {
 public:
  // Opens ring `ring` as it is now (perhaps stale: see CheckServerExit()).
  static absl::StatusOr<std::unique_ptr<StatSampler>> Open(std::string_view ring);
  // Waits for a live server to own `ring` first (ringbuf::Reader::WaitForServer: it
  // sleeps, and goes through stale objects of a server that died before).
  static absl::StatusOr<std::unique_ptr<StatSampler>> WaitForServer(
      std::string_view ring, const ringbuf::WaitOptions& wait);
  StatSampler(const StatSampler&) = delete;
  StatSampler& operator=(const StatSampler&) = delete;

  StatSample Sample() const;
  // Whether the server behind this sampler died or shut down (kNone: alive).
  ringbuf::ServerExit CheckServerExit() const { return reader_->CheckServerExit(); }
  // Sleeps until wait.deadline, unless the server dies or shuts down first (noticed
  // within about a second): ringbuf::Reader::WatchServer.
  ringbuf::WaitResult WatchServer(const ringbuf::WaitOptions& wait) const {
    return reader_->WatchServer(wait);
  }

 private:
  static absl::StatusOr<std::unique_ptr<StatSampler>> Attach(
      std::string_view ring, absl::StatusOr<std::unique_ptr<ringbuf::Reader>> reader);
  StatSampler(std::string ring, std::unique_ptr<ringbuf::Reader> reader)
      : ring_(std::move(ring)), reader_(std::move(reader)) {}
  void MapRings();
  RingSample SampleRing(uint32_t shard, const ringbuf::ShmRegion& region) const;

  std::string ring_;
  std::unique_ptr<ringbuf::Reader> reader_;
  std::vector<std::pair<uint32_t, ringbuf::ShmRegion>> rings_;  // read-only maps
};

}  // namespace uringest::consumer

#endif  // URINGEST_CONSUMER_STAT_SAMPLER_H_
