// load_run.h: uringest-load as a library: builds the media, starts the verifier (if
// asked), runs the fleet with a progress line each second, samples the server's CPU and
// memory, and gathers the report that report.h prints for people or machines. With one
// ring and without reconnect, when the verifier sees the server die or shut down, the run
// ends there: the fleet is aborted (no drain) and the report says so
// (LoadReport::server_exit), within about a second. With several rings (a fleet of nodes)
// or with reconnect, a server's end costs only its ring; the run goes on.
//
//   LoadOptions options;
//   options.fleet.publishers = 20;
//   options.verify_rings = {"uringest"};
//   absl::StatusOr<LoadReport> report = RunLoad(options, [](std::string_view line) {...});
//   return report.ok() && report->ok() ? 0 : 1;
//
// Thread safety: RunLoad() may run on any thread; it starts the verifier's thread itself.

#ifndef URINGEST_LOADGEN_LOAD_RUN_H_
#define URINGEST_LOADGEN_LOAD_RUN_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "loadgen/fleet.h"
#include "loadgen/latency_histogram.h"
#include "ringbuf/reader.h"

namespace uringest::loadgen {

struct LoadOptions {
  FleetOptions fleet;
  uint64_t bitrate_bps = 2'500'000;  // synthetic streams
  double fps = 30;
  std::string flv;                        // a file to send instead of synthetic streams
  std::vector<std::string> verify_rings;  // empty: no verification
  std::vector<int> server_pids;           // sampled for CPU and RSS; with --verify, the rings'
                                          // servers if empty
  // Set (from a signal handler, say) to end the run early: within a second the
  // publishers stop and drain as at the end of the duration, and the report follows.
  const std::atomic<bool>* interrupt = nullptr;
};

struct StreamReport {
  std::string name;
  bool went_live = false;
  bool failed = false;
  std::string error;
  uint64_t sent = 0;  // stamped frames
  uint64_t bytes = 0;
  // With verification:
  uint64_t delivered = 0;
  uint64_t lost = 0;
  uint64_t duplicated = 0;
  uint64_t out_of_order = 0;
  LatencyHistogram latency;                 // send to visible in the ring
  std::vector<uint64_t> delivered_by_ring;  // of delivered, per LoadReport::rings
  // Moves and reconnections (fleet.h):
  uint64_t reconnect_requests = 0;  // Reconnect Requests followed
  uint64_t reconnects = 0;          // connections live after the first
  uint64_t skipped = 0;             // frames due while down, never sent
  std::string last_break;           // why the last retried connection broke
};

struct ServerReport {
  bool sampled = false;
  double cpu_seconds = 0;  // during the run
  uint64_t rss_start = 0;  // bytes, before the first connect
  uint64_t rss_peak = 0;   // the most seen at a one-second sample
  uint64_t rss_end = 0;
};

struct LoadReport {
  std::string target;
  uint32_t publishers = 0;
  bool verified = false;
  bool paced = true;
  bool interrupted = false;  // LoadOptions::interrupt ended it before the duration
  uint32_t went_live = 0;
  uint32_t failed = 0;
  uint64_t sent = 0;
  uint64_t delivered = 0;
  uint64_t lost = 0;
  uint64_t duplicated = 0;
  uint64_t out_of_order = 0;
  uint64_t reconnect_requests = 0;
  uint64_t reconnects = 0;
  uint64_t skipped = 0;
  uint64_t bytes = 0;
  double seconds = 0;  // first publish start to the end of sending
  LatencyHistogram latency;
  LatencyHistogram ingest_latency;  // send to the server's ingest timestamp
  uint64_t reader_laps = 0;         // the verifier was lapped: losses may be its own
  // The verifier saw the server die or shut down: the run ended there (within a second).
  ringbuf::ServerExit server_exit = ringbuf::ServerExit::kNone;
  std::vector<std::string> rings;    // verified
  std::vector<uint32_t> ring_exits;  // servers' ends seen per ring, where the run went on
  uint32_t max_live = 0;             // publishers live at once, at most
  uint64_t max_backlog = 0;          // the largest PublisherResult::backlog_at_end
  uint64_t max_queued = 0;           // the largest PublisherResult::peak_queued
  ServerReport server;
  double load_cpu_seconds = 0;  // uringest-load's own (all its threads), during the run
  std::vector<StreamReport> streams;

  // Every publisher went live and ended cleanly, the server lived, and (verified)
  // nothing was lost, duplicated or reordered.
  bool ok() const;
  double mbit_per_s() const { return seconds > 0 ? double(bytes) * 8 / seconds / 1e6 : 0; }
  // uringest-load used 90% of a core or more: the figures may be its limit, not the
  // server's.
  bool load_bound() const { return seconds > 0 && load_cpu_seconds / seconds >= 0.9; }
};

// Runs the load. `progress` gets one line a second (no newline); may be empty.
absl::StatusOr<LoadReport> RunLoad(const LoadOptions& options,
                                   const std::function<void(std::string_view)>& progress);

}  // namespace uringest::loadgen

#endif  // URINGEST_LOADGEN_LOAD_RUN_H_
