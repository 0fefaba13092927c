// server_lock.h: keeps two live servers off one ring name. The server holds an exclusive
// flock() on /dev/shm/NAME.lock for its whole life; the kernel drops it when the process
// dies, however it dies, so "the lock file exists but nobody holds the lock" means the
// objects beside it are stale.
//
//   absl::StatusOr<ServerLock> lock = ServerLock::Acquire("live", 0640);
//   if (!lock.ok()) return lock.status();  // another live server owns "live"

#ifndef URINGEST_RINGBUF_SERVER_LOCK_H_
#define URINGEST_RINGBUF_SERVER_LOCK_H_

#include <sys/types.h>

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace uringest::ringbuf {

class ServerLock {
 public:
  // Takes the lock of ring `name`, creating its lock file with `mode`. Fails with
  // kFailedPrecondition while another process holds it.
  static absl::StatusOr<ServerLock> Acquire(std::string_view name, mode_t mode);
  // True if some process holds the lock of ring `name` now.
  static bool IsHeld(std::string_view name);

  ServerLock() = default;
  ServerLock(ServerLock&& other) noexcept;
  ServerLock& operator=(ServerLock&& other) noexcept;
  ServerLock(const ServerLock&) = delete;
  ServerLock& operator=(const ServerLock&) = delete;
  // Removes the lock file, then releases the lock.
  ~ServerLock();

 private:
  ServerLock(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  void Release();

  int fd_ = -1;
  std::string path_;
};

}  // namespace uringest::ringbuf

#endif  // URINGEST_RINGBUF_SERVER_LOCK_H_
