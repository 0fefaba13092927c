#include "ringbuf/shm.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "ringbuf/ring_format.h"

namespace uringest::ringbuf {
namespace {

absl::Status ErrnoStatus(int err, std::string_view what, std::string_view path) {
  return absl::ErrnoToStatus(err, std::string(what) + " " + std::string(path));
}

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

absl::StatusOr<uint8_t*> MapFd(int fd, size_t size, bool writable, bool prefault) {
  int prot = PROT_READ | (writable ? PROT_WRITE : 0);
  int flags = MAP_SHARED | (prefault ? MAP_POPULATE : 0);
  void* p = mmap(nullptr, size, prot, flags, fd, 0);
  if (p == MAP_FAILED) return absl::ErrnoToStatus(errno, "mmap");
  return static_cast<uint8_t*>(p);
}

// Reads "<key>: <number>" from /proc/meminfo; 0 if absent.
uint64_t MeminfoValue(std::string_view key) {
  FILE* f = fopen("/proc/meminfo", "re");
  if (f == nullptr) return 0;
  char line[256];
  uint64_t value = 0;
  while (fgets(line, sizeof(line), f) != nullptr) {
    std::string_view l(line);
    if (l.substr(0, key.size()) == key && l.size() > key.size() && l[key.size()] == ':') {
      value = strtoull(line + key.size() + 1, nullptr, 10);
      break;
    }
  }
  fclose(f);
  return value;
}

// "<prefix><digits>" or "<prefix><digits>.readers": another ring's objects
// ("live.ring.5.dir") don't match.
bool IsRingObject(std::string_view file, std::string_view prefix) {
  if (file.size() <= prefix.size() || file.substr(0, prefix.size()) != prefix) return false;
  std::string_view shard = file.substr(prefix.size());
  const std::string_view readers(kReadersSuffix);
  if (shard.size() > readers.size() && shard.substr(shard.size() - readers.size()) == readers) {
    shard.remove_suffix(readers.size());
  }
  for (char c : shard) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace

absl::Status ValidateRingName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength || name[0] == '.') {
    return absl::InvalidArgumentError("bad ring name '" + std::string(name) + "'");
  }
  for (char c : name) {
    if (!IsNameChar(c)) {
      return absl::InvalidArgumentError("ring name '" + std::string(name) +
                                        "' may only hold [A-Za-z0-9._-]");
    }
  }
  return absl::OkStatus();
}

std::string ObjectPath(std::string_view dir, std::string_view name, std::string_view suffix) {
  return std::string(dir) + "/" + std::string(name) + std::string(suffix);
}

std::string RingSuffix(uint32_t shard) { return absl::StrCat(kRingSuffix, shard); }

absl::StatusOr<ShmRegion> ShmRegion::Create(const std::string& path, size_t size,
                                            const ShmCreateOptions& options) {
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, options.mode);
  if (fd < 0) return ErrnoStatus(errno, "create", path);
  // The umask may have narrowed the mode; the caller's mode is the one it asked for.
  if ((options.group != gid_t(-1) && fchown(fd, uid_t(-1), options.group) != 0) ||
      fchmod(fd, options.mode) != 0 || ftruncate(fd, static_cast<off_t>(size)) != 0) {
    int err = errno;
    close(fd);
    unlink(path.c_str());
    return ErrnoStatus(err, "size", path);
  }
  absl::StatusOr<uint8_t*> data = MapFd(fd, size, /*writable=*/true, options.prefault);
  close(fd);
  if (!data.ok()) {
    unlink(path.c_str());
    return data.status();
  }
  // Transparent huge pages on tmpfs need shmem_enabled=advise (or always); where the
  // kernel refuses, the ring simply runs on 4 KiB pages.
  if (options.huge_pages) madvise(*data, size, MADV_HUGEPAGE);
  return ShmRegion(*data, size, /*writable=*/true);
}

namespace {

// Opens an existing object for reading (and writing) and tells its size: the descriptor
// is the caller's to close.
absl::Status OpenExisting(const std::string& path, bool writable, int* fd, size_t* size) {
  *fd = open(path.c_str(), (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW);
  if (*fd < 0) return ErrnoStatus(errno, "open", path);
  struct stat st;
  if (fstat(*fd, &st) != 0) {
    int err = errno;
    close(*fd);
    return ErrnoStatus(err, "stat", path);
  }
  *size = static_cast<size_t>(std::max<off_t>(st.st_size, 0));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ShmRegion> ShmRegion::Open(const std::string& path, bool writable, bool prefault) {
  int fd;
  size_t size;
  if (absl::Status s = OpenExisting(path, writable, &fd, &size); !s.ok()) return s;
  if (size == 0) {
    close(fd);
    return absl::FailedPreconditionError(absl::StrCat(path, " is empty"));
  }
  absl::StatusOr<uint8_t*> data = MapFd(fd, size, writable, prefault);
  close(fd);
  if (!data.ok()) return data.status();
  return ShmRegion(*data, size, writable);
}

absl::Status ShmRegion::Overlay(size_t offset, const std::string& path, bool writable) {
  const auto page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  int fd;
  size_t size;
  if (absl::Status s = OpenExisting(path, writable, &fd, &size); !s.ok()) return s;
  if (size == 0 || size % page != 0 || offset % page != 0 || offset + size > size_) {
    close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": ", size, " bytes don't fit a region of ", size_, " at ", offset));
  }
  void* p = mmap(data_ + offset, size, PROT_READ | (writable ? PROT_WRITE : 0),
                 MAP_SHARED | MAP_FIXED, fd, 0);
  int err = errno;
  close(fd);
  if (p == MAP_FAILED) return ErrnoStatus(err, "mmap over", path);
  return absl::OkStatus();
}

absl::StatusOr<gid_t> ResolveGroup(const std::string& group) {
  uint32_t number;
  if (!group.empty() && group.find_first_not_of("0123456789") == std::string::npos &&
      absl::SimpleAtoi(group, &number)) {
    return gid_t(number);
  }
  char buffer[4096];
  struct group entry;
  struct group* found = nullptr;
  if (getgrnam_r(group.c_str(), &entry, buffer, sizeof(buffer), &found) != 0 || found == nullptr) {
    return absl::NotFoundError(absl::StrCat("no group '", group, "'"));
  }
  return found->gr_gid;
}

ShmRegion::ShmRegion(ShmRegion&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      writable_(other.writable_) {}

ShmRegion& ShmRegion::operator=(ShmRegion&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) munmap(data_, size_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    writable_ = other.writable_;
  }
  return *this;
}

ShmRegion::~ShmRegion() {
  if (data_ != nullptr) munmap(data_, size_);
}

size_t HugePageSize() { return MeminfoValue("Hugepagesize") * 1024; }

std::string FindHugetlbfs(size_t bytes) {
  size_t page = HugePageSize();
  if (page == 0 || MeminfoValue("HugePages_Free") * page < bytes) return "";
  FILE* f = fopen("/proc/mounts", "re");
  if (f == nullptr) return "";
  char device[256], dir[256], type[64];
  std::string found;
  while (fscanf(f, "%255s %255s %63s %*[^\n]", device, dir, type) == 3) {
    if (std::strcmp(type, "hugetlbfs") == 0 && access(dir, W_OK) == 0) {
      found = dir;
      break;
    }
  }
  fclose(f);
  return found;
}

absl::Status RemoveRingObjects(std::string_view name, std::string_view hugetlbfs_dir) {
  std::string dir_object = std::string(name) + kDirectorySuffix;
  std::string ring_prefix = std::string(name) + kRingSuffix;
  for (std::string_view dir : {std::string_view(kShmDir), hugetlbfs_dir}) {
    if (dir.empty()) continue;
    std::string dir_path(dir);
    DIR* d = opendir(dir_path.c_str());
    if (d == nullptr) continue;
    while (dirent* e = readdir(d)) {
      std::string_view file(e->d_name);
      if (file == dir_object || IsRingObject(file, ring_prefix)) {
        std::string path = dir_path + "/" + std::string(file);
        if (unlink(path.c_str()) != 0 && errno != ENOENT) {
          int err = errno;
          closedir(d);
          return ErrnoStatus(err, "unlink", path);
        }
      }
    }
    closedir(d);
  }
  return absl::OkStatus();
}

}  // namespace uringest::ringbuf
