// thread_load.h: how busy one thread is: the time it ran on a CPU and the time it was
// ready to run but waited for one, as the scheduler accounts them
// (/proc/thread-self/schedstat). A shard whose thread ran or waited for the whole of a
// second is saturated, whether its own work fills the core or another process takes part
// of it; a shard that sleeps in the kernel waiting for completions is neither.
//
//   ThreadLoad load;  // on the thread to measure
//   ThreadLoad::Sample before = load.Read();
//   ...
//   ThreadLoad::Sample after = load.Read();  // after.run_ns - before.run_ns ...
//
// Where schedstat can't be read, run_ns is CLOCK_THREAD_CPUTIME_ID and wait_ns stays 0.
//
// Thread safety: construct on the thread measured; Read() from that thread only.

#ifndef URINGEST_ENGINE_THREAD_LOAD_H_
#define URINGEST_ENGINE_THREAD_LOAD_H_

#include <cstdint>

namespace uringest::engine {

class ThreadLoad {
 public:
  struct Sample {
    uint64_t run_ns = 0;   // on a CPU, user and kernel time
    uint64_t wait_ns = 0;  // runnable, waiting for a CPU
  };

  ThreadLoad();
  ~ThreadLoad();
  ThreadLoad(const ThreadLoad&) = delete;
  ThreadLoad& operator=(const ThreadLoad&) = delete;

  Sample Read() const;

 private:
  int fd_ = -1;  // the thread's schedstat, or -1
};

}  // namespace uringest::engine

#endif  // URINGEST_ENGINE_THREAD_LOAD_H_
