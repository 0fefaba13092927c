#include "ringbuf/internal/directory_probe.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "absl/strings/str_cat.h"
#include "ringbuf/clock.h"
#include "ringbuf/internal/shared_access.h"
#include "ringbuf/ring_format.h"
#include "ringbuf/server_lock.h"
#include "ringbuf/shm.h"

namespace uringest::ringbuf::internal {
namespace {

// What the header says. A bad magic or version passes as live: Reader::Open reports it.
ServerSight Judge(const DirectoryHeader& h, std::string_view name, absl::Duration dead_after) {
  const auto state = static_cast<DirectoryState>(LoadAcquire(h.state));
  if (state == DirectoryState::kInitializing) return ServerSight::kNotYet;
  if (state == DirectoryState::kClosed) return ServerSight::kGone;
  // A server that died released its lock at once, whatever its heartbeat says.
  if (!ServerLock::IsHeld(name)) return ServerSight::kGone;
  const auto age = static_cast<int64_t>(MonotonicNs() - LoadAcquire(h.heartbeat_ns));
  return age <= absl::ToInt64Nanoseconds(dead_after) ? ServerSight::kLive : ServerSight::kNotYet;
}

}  // namespace

absl::StatusOr<DirectoryLook> LookAtDirectory(std::string_view name, absl::Duration dead_after,
                                              const std::optional<FileId>& known_gone) {
  const std::string path = ObjectPath(kShmDir, name, kDirectorySuffix);
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) return DirectoryLook{};
    return absl::ErrnoToStatus(errno, absl::StrCat("open ", path));
  }
  DirectoryLook look;
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    close(fd);
    return absl::ErrnoToStatus(err, absl::StrCat("stat ", path));
  }
  look.file = {st.st_dev, st.st_ino};
  if (known_gone == look.file) {
    close(fd);
    look.sight = ServerSight::kGone;
    return look;
  }
  if (st.st_size < static_cast<off_t>(kDirectoryHeaderSize)) {  // being created
    close(fd);
    return look;
  }
  void* header = mmap(nullptr, kDirectoryHeaderSize, PROT_READ, MAP_SHARED, fd, 0);
  const int err = errno;
  close(fd);
  if (header == MAP_FAILED) return absl::ErrnoToStatus(err, absl::StrCat("mmap ", path));
  look.sight = Judge(*static_cast<const DirectoryHeader*>(header), name, dead_after);
  munmap(header, kDirectoryHeaderSize);
  return look;
}

}  // namespace uringest::ringbuf::internal
