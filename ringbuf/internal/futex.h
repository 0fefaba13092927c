// futex.h: sleeping on a 32-bit word in shared memory, and waking its sleepers. The
// words live in MAP_SHARED mappings used by several processes, so these are the shared
// (not FUTEX_PRIVATE_FLAG) operations, keyed by the physical page.

#ifndef URINGEST_RINGBUF_INTERNAL_FUTEX_H_
#define URINGEST_RINGBUF_INTERNAL_FUTEX_H_

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#include <cstdint>
#include <ctime>

namespace uringest::ringbuf::internal {

// Sleeps while *word == expected, at most timeout_ns. Returns early on a wake, a signal,
// or when the word already differs (EAGAIN): callers re-check their condition anyway.
inline void FutexWait(uint32_t* word, uint32_t expected, int64_t timeout_ns) {
  if (timeout_ns <= 0) return;
  timespec ts{static_cast<time_t>(timeout_ns / 1'000'000'000),
              static_cast<long>(timeout_ns % 1'000'000'000)};
  syscall(SYS_futex, word, FUTEX_WAIT, expected, &ts, nullptr, 0);
}

inline void FutexWakeAll(uint32_t* word) {
  syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

}  // namespace uringest::ringbuf::internal

#endif  // URINGEST_RINGBUF_INTERNAL_FUTEX_H_
