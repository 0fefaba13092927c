// clock.h: the two clocks of the ring. CLOCK_MONOTONIC stamps heartbeats (comparable
// across processes on one machine, immune to wall-clock steps); CLOCK_REALTIME stamps
// ingest times and stream begin/end, which consumers compare with other machines. The
// server, the consumer tools and the load harness read both through these.
//
//   uint64_t age_ns = ringbuf::RealtimeNs() - frame.meta.ingest_time_ns;

#ifndef URINGEST_RINGBUF_CLOCK_H_
#define URINGEST_RINGBUF_CLOCK_H_

#include <cstdint>
#include <ctime>

namespace uringest::ringbuf {

inline uint64_t ClockNs(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000 + static_cast<uint64_t>(ts.tv_nsec);
}
inline uint64_t MonotonicNs() { return ClockNs(CLOCK_MONOTONIC); }
inline uint64_t RealtimeNs() { return ClockNs(CLOCK_REALTIME); }

}  // namespace uringest::ringbuf

#endif  // URINGEST_RINGBUF_CLOCK_H_
