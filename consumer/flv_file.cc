#include "consumer/flv_file.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "media/amf0_decoder.h"
#include "media/byte_order.h"
#include "media/flv_format.h"
#include "media/script_data.h"

namespace uringest::consumer {
namespace {

using ringbuf::RecordType;

// Where onMetaData's body starts: it is the first tag, after the file header.
constexpr size_t kMetadataBodyOffset =
    media::kFlvHeaderSize + media::kFlvPreviousTagSizeSize + media::kFlvTagHeaderSize;
// "NAME-1.flv" ... "NAME-999.flv" are tried when NAME.flv is taken.
constexpr int kMaxNameSuffix = 999;

absl::Status SystemError(int error, const char* what, const std::string& path) {
  return absl::ErrnoToStatus(error, absl::StrCat(what, " ", path));
}

// The name with "-n" before its extension (".flv", if it has that one).
std::string Numbered(const std::string& path, int n) {
  if (n == 0) return path;
  const bool flv = absl::EndsWith(path, ".flv");
  const std::string stem = flv ? path.substr(0, path.size() - 4) : path;
  return absl::StrCat(stem, "-", n, flv ? ".flv" : "");
}

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0 || errno != ENOENT;
}

// Opens a .part file for the first free name; *path becomes that name.
absl::StatusOr<int> OpenFreeName(std::string* path) {
  for (int n = 0; n <= kMaxNameSuffix; ++n) {
    const std::string candidate = Numbered(*path, n);
    if (Exists(candidate)) continue;
    const std::string part = absl::StrCat(candidate, kPartSuffix);
    const int fd = open(part.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) {
      flock(fd, LOCK_EX | LOCK_NB);  // a new file: nobody else holds it
      *path = candidate;
      return fd;
    }
    if (errno != EEXIST) return SystemError(errno, "can't create", part);
  }
  return absl::AlreadyExistsError(
      absl::StrCat(*path, " and ", kMaxNameSuffix, " numbered names after it exist already"));
}

absl::Status SyncFolder(const std::string& path) {
  const std::string folder = std::filesystem::path(path).parent_path().string();
  const int fd = open(folder.empty() ? "." : folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return SystemError(errno, "can't open the folder", folder);
  const int result = fsync(fd);
  const int error = errno;
  close(fd);
  return result == 0 ? absl::OkStatus() : SystemError(error, "can't fsync the folder", folder);
}

}  // namespace

absl::StatusOr<std::unique_ptr<FlvFile>> FlvFile::Create(
    const std::string& path, FlvTracks tracks, std::span<const uint8_t> published_metadata,
    std::span<const media::amf0::Value::Property> extra_metadata) {
  const std::filesystem::path folder = std::filesystem::path(path).parent_path();
  if (std::error_code error;
      !folder.empty() && !std::filesystem::create_directories(folder, error) && error) {
    return SystemError(error.value(), "can't create the folder", folder.string());
  }
  std::string name = path;
  absl::StatusOr<int> fd = OpenFreeName(&name);
  if (!fd.ok()) return fd.status();
  std::unique_ptr<FlvFile> file(new FlvFile(std::move(name), *fd));
  const media::FileMetadata metadata = media::MetadataForFile(published_metadata, extra_metadata);
  file->duration_offset_ = kMetadataBodyOffset + metadata.duration_offset;
  file->filesize_offset_ = kMetadataBodyOffset + metadata.filesize_offset;
  absl::Status s = file->writer_.WriteHeader(tracks);
  if (s.ok()) s = file->writer_.WriteTag(RecordType::kData, 0, metadata.body, /*config=*/false);
  if (!s.ok()) {
    unlink(file->part_path().c_str());  // it holds nothing worth keeping
    return file->Fail(s);
  }
  return file;
}

FlvFile::FlvFile(std::string path, int fd)
    : path_(std::move(path)), fd_(fd), sink_(fd), writer_(&sink_) {}

FlvFile::~FlvFile() {
  if (fd_ >= 0) close(fd_);
}

absl::Status FlvFile::Fail(absl::Status status) {
  status_ = absl::Status(status.code(), absl::StrCat(part_path(), ": ", status.message()));
  return status_;
}

absl::Status FlvFile::Write(RecordType type, int64_t dts, std::span<const uint8_t> body,
                            bool config) {
  if (!status_.ok()) return status_;
  if (finished_) return absl::FailedPreconditionError(absl::StrCat(path_, " is finished"));
  if (absl::Status s = writer_.WriteTag(type, dts, body, config); !s.ok()) return Fail(s);
  if (!config && (type == RecordType::kAudio || type == RecordType::kVideo)) {
    ++frames_;
    duration_ms_ = std::max(duration_ms_, writer_.TagTimestamp(dts));
  }
  return absl::OkStatus();
}

absl::Status FlvFile::PatchMetadata() {
  std::array<uint8_t, 8> number;
  const std::pair<size_t, double> patches[] = {{duration_offset_, duration_ms_ / 1000.0},
                                               {filesize_offset_, double(bytes())}};
  for (const auto& [offset, value] : patches) {
    media::PatchNumber(number, value);
    if (pwrite(fd_, number.data(), number.size(), off_t(offset)) != ssize_t(number.size())) {
      return SystemError(errno, "can't update onMetaData in", part_path());
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> FlvFile::Finish() {
  if (finished_) return absl::FailedPreconditionError(absl::StrCat(path_, " is finished"));
  finished_ = true;
  // After a failed write the file may end in a torn tag: cut it off.
  if (!status_.ok() && ftruncate(fd_, off_t(bytes())) != 0) {
    return SystemError(errno, "can't cut the torn tail off", part_path());
  }
  if (absl::Status s = PatchMetadata(); !s.ok()) return s;
  if (fsync(fd_) != 0) return SystemError(errno, "can't fsync", part_path());
  const int closed = close(fd_);
  fd_ = -1;
  if (closed != 0) return SystemError(errno, "can't close", part_path());
  // RENAME_NOREPLACE: a file that appeared under the final name meanwhile is kept.
  if (renameat2(AT_FDCWD, part_path().c_str(), AT_FDCWD, path_.c_str(), RENAME_NOREPLACE) != 0) {
    return SystemError(errno, "can't rename to its final name", part_path());
  }
  if (absl::Status s = SyncFolder(path_); !s.ok()) return s;
  return path_;
}

namespace {

// The whole tags of an FLV file open as `fd`, `size` bytes long: where the last whole
// one ends, and the newest audio or video time among them. Reads headers only.
struct TagWalk {
  uint64_t end = 0;
  uint32_t duration_ms = 0;
  uint32_t first_size = 0;  // the first tag's body (onMetaData)
  uint8_t first_type = 0;
};

TagWalk WalkTags(int fd, uint64_t size) {
  TagWalk walk{.end = media::kFlvHeaderSize + media::kFlvPreviousTagSizeSize};
  std::array<uint8_t, media::kFlvTagHeaderSize> h;
  std::array<uint8_t, media::kFlvPreviousTagSizeSize> trailer;
  for (;;) {
    const uint64_t at = walk.end;
    if (at + h.size() > size || pread(fd, h.data(), h.size(), off_t(at)) != ssize_t(h.size())) {
      break;
    }
    const uint32_t body = media::LoadU24(&h[1]);
    const uint64_t end = at + h.size() + body + trailer.size();
    if (end > size ||
        pread(fd, trailer.data(), trailer.size(), off_t(end - trailer.size())) !=
            ssize_t(trailer.size()) ||
        media::LoadU32(trailer.data()) != h.size() + body) {
      break;
    }
    const uint8_t type = h[0] & 0x1F;
    if (at == media::kFlvHeaderSize + media::kFlvPreviousTagSizeSize) {
      walk.first_type = type;
      walk.first_size = body;
    }
    if (type == uint8_t(RecordType::kAudio) || type == uint8_t(RecordType::kVideo)) {
      walk.duration_ms = std::max(walk.duration_ms, media::LoadU24(&h[4]) | uint32_t(h[7]) << 24);
    }
    walk.end = end;
  }
  return walk;
}

// Whether `body` is an onMetaData that MetadataForFile() made: it leads with duration and
// filesize at the offsets `made` has.
bool MadeForFile(std::span<const uint8_t> body, const media::FileMetadata& made) {
  const size_t lead = made.filesize_offset + 8;
  constexpr size_t kCount = 1 + 2 + 10 + 1;  // after "onMetaData" and the array marker
  return body.size() >= lead &&
         std::equal(body.begin(), body.begin() + kCount, made.body.begin()) &&
         std::equal(body.begin() + kCount + 4, body.begin() + made.duration_offset,
                    made.body.begin() + kCount + 4) &&
         std::equal(body.begin() + made.duration_offset + 8, body.begin() + made.filesize_offset,
                    made.body.begin() + made.duration_offset + 8);
}

}  // namespace

absl::StatusOr<RecoveredFile> FlvFile::Recover(const std::string& part_path) {
  if (!absl::EndsWith(part_path, kPartSuffix)) {
    return absl::InvalidArgumentError(absl::StrCat(part_path, " is not a .part file"));
  }
  const int fd = open(part_path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return SystemError(errno, "can't open", part_path);
  FlvFile file(part_path.substr(0, part_path.size() - strlen(kPartSuffix)), fd);
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(part_path, " is being written"));
  }
  struct stat st;
  if (fstat(fd, &st) != 0) return SystemError(errno, "can't stat", part_path);
  const TagWalk walk = WalkTags(fd, uint64_t(st.st_size));
  const media::FileMetadata made = media::MetadataForFile({});
  std::vector<uint8_t> body(std::min<uint32_t>(walk.first_size, 1 << 20));
  if (walk.first_type != uint8_t(RecordType::kData) ||
      pread(fd, body.data(), body.size(), off_t(kMetadataBodyOffset)) != ssize_t(body.size()) ||
      !MadeForFile(body, made)) {
    return absl::FailedPreconditionError(
        absl::StrCat(part_path, " does not start with uringest-record's onMetaData"));
  }
  if (ftruncate(fd, off_t(walk.end)) != 0) return SystemError(errno, "can't truncate", part_path);
  file.duration_offset_ = kMetadataBodyOffset + made.duration_offset;
  file.filesize_offset_ = kMetadataBodyOffset + made.filesize_offset;
  file.duration_ms_ = walk.duration_ms;
  file.recovered_bytes_ = walk.end;
  absl::StatusOr<std::string> path = file.Finish();
  if (!path.ok()) return path.status();
  media::PatchNumber(std::span(body).subspan(made.duration_offset), walk.duration_ms / 1000.0);
  media::PatchNumber(std::span(body).subspan(made.filesize_offset), double(walk.end));
  absl::StatusOr<std::vector<media::amf0::Value>> values = media::amf0::DecodeAll(body);
  return RecoveredFile{
      .path = *path,
      .bytes = walk.end,
      .cut = uint64_t(st.st_size) - walk.end,
      .duration_ms = walk.duration_ms,
      .metadata = values.ok() && values->size() == 2 ? (*values)[1] : media::amf0::Value()};
}

}  // namespace uringest::consumer
