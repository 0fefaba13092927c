// mutex.h: the engine's control-plane lock: std::mutex with abseil's thread-safety
// annotations, so ABSL_GUARDED_BY still checks what each lock guards.
//
// Why not absl::Mutex: Debian's abseil is a prebuilt library, not instrumented for
// ThreadSanitizer, which then cannot see its locking and reports every guarded access as
// a race. std::mutex is intercepted by TSan, so the engine's TSan tests stay meaningful.
//
//   Mutex mu_;
//   int count_ ABSL_GUARDED_BY(mu_);
//   { MutexLock lock(&mu_); ++count_; }

#ifndef URINGEST_ENGINE_INTERNAL_MUTEX_H_
#define URINGEST_ENGINE_INTERNAL_MUTEX_H_

#include <mutex>

#include "absl/base/thread_annotations.h"

namespace uringest::engine::internal {

class ABSL_LOCKABLE Mutex {
 public:
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }

 private:
  std::mutex mu_;
};

class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

}  // namespace uringest::engine::internal

#endif  // URINGEST_ENGINE_INTERNAL_MUTEX_H_
