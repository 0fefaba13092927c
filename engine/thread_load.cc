#include "engine/thread_load.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>

namespace uringest::engine {

// /proc/thread-self names the thread that opens it: the descriptor goes on reading this
// thread's figures.
ThreadLoad::ThreadLoad() : fd_(open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC)) {}

ThreadLoad::~ThreadLoad() {
  if (fd_ >= 0) close(fd_);
}

ThreadLoad::Sample ThreadLoad::Read() const {
  Sample sample;
  if (fd_ >= 0) {
    // "run_ns wait_ns timeslices\n"
    char text[96];
    const ssize_t n = pread(fd_, text, sizeof(text) - 1, 0);
    if (n > 0) {
      text[n] = '\0';
      if (sscanf(text, "%" SCNu64 " %" SCNu64, &sample.run_ns, &sample.wait_ns) == 2) {
        return sample;
      }
    }
  }
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  sample.run_ns = uint64_t(ts.tv_sec) * 1'000'000'000 + uint64_t(ts.tv_nsec);
  sample.wait_ns = 0;
  return sample;
}

}  // namespace uringest::engine
