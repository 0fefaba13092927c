// process_stats.h: the process's own figures for /metrics, under the names every
// Prometheus client library exports (process_cpu_seconds_total, ...), read from /proc.
//
//   ProcessStats p = ReadProcessStats();

#ifndef URINGEST_CONTROL_PROCESS_STATS_H_
#define URINGEST_CONTROL_PROCESS_STATS_H_

#include <cstdint>

namespace uringest::control {

struct ProcessStats {
  double cpu_seconds = 0;  // user + system, every thread
  uint64_t resident_bytes = 0;
  uint64_t virtual_bytes = 0;
  double start_time_seconds = 0;  // since the Unix epoch
  uint64_t open_fds = 0;
  uint64_t max_fds = 0;
};

// What can't be read stays 0.
ProcessStats ReadProcessStats();

}  // namespace uringest::control

#endif  // URINGEST_CONTROL_PROCESS_STATS_H_
