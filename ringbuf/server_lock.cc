#include "ringbuf/server_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "ringbuf/ring_format.h"
#include "ringbuf/shm.h"

namespace uringest::ringbuf {
namespace {

// True if `fd` is still the file at `path`: a server shutting down unlinks its lock file
// while holding the lock, so a lock won on an unlinked file protects nothing.
bool StillLinked(int fd, const std::string& path) {
  struct stat by_fd, by_path;
  return fstat(fd, &by_fd) == 0 && stat(path.c_str(), &by_path) == 0 &&
         by_fd.st_dev == by_path.st_dev && by_fd.st_ino == by_path.st_ino;
}

}  // namespace

absl::StatusOr<ServerLock> ServerLock::Acquire(std::string_view name, mode_t mode) {
  if (absl::Status s = ValidateRingName(name); !s.ok()) return s;
  std::string path = ObjectPath(kShmDir, name, kLockSuffix);
  // A reader probing IsHeld() holds a shared lock for a moment: retry briefly.
  for (int attempt = 0; attempt < 50; ++attempt) {
    int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("open ", path));
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
      if (StillLinked(fd, path)) return ServerLock(fd, std::move(path));
      close(fd);
      continue;
    }
    int err = errno;
    close(fd);
    if (err != EWOULDBLOCK) return absl::ErrnoToStatus(err, absl::StrCat("flock ", path));
    usleep(4000);
  }
  return absl::FailedPreconditionError(
      absl::StrCat("another live server holds ring '", std::string(name), "' (", path, ")"));
}

bool ServerLock::IsHeld(std::string_view name) {
  std::string path = ObjectPath(kShmDir, name, kLockSuffix);
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return false;
  bool held = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  close(fd);  // drops our shared lock, if we got it
  return held;
}

ServerLock::ServerLock(ServerLock&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)) {}

ServerLock& ServerLock::operator=(ServerLock&& other) noexcept {
  if (this != &other) {
    Release();
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
  }
  return *this;
}

ServerLock::~ServerLock() { Release(); }

void ServerLock::Release() {
  if (fd_ < 0) return;
  unlink(path_.c_str());
  close(fd_);
  fd_ = -1;
}

}  // namespace uringest::ringbuf
