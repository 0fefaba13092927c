// proc_stats.h: a local process's CPU time and memory, from /proc/PID/stat and
// /proc/PID/status, for uringest-load's report on the server under load.
//
//   std::optional<ProcSample> a = SampleProcess(pid);
//   ... load ...
//   std::optional<ProcSample> b = SampleProcess(pid);
//   double cpu_seconds = b->cpu_seconds - a->cpu_seconds;

#ifndef URINGEST_LOADGEN_PROC_STATS_H_
#define URINGEST_LOADGEN_PROC_STATS_H_

#include <cstdint>
#include <optional>

namespace uringest::loadgen {

struct ProcSample {
  double cpu_seconds = 0;  // utime + stime, all threads
  uint64_t rss_bytes = 0;  // VmRSS
  uint64_t hwm_bytes = 0;  // VmHWM: the peak RSS so far
};

// nullopt if the process is gone or /proc can't be read.
std::optional<ProcSample> SampleProcess(int pid);

}  // namespace uringest::loadgen

#endif  // URINGEST_LOADGEN_PROC_STATS_H_
