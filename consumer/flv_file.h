// flv_file.h: one recorded FLV file on disk, written the way a recorder must leave it.
// While it is written it has a ".part" name, so that nothing (an uploader, a player
// listing the folder) takes it for a whole file. It starts with the header, then
// onMetaData (the publisher's, with "duration" and "filesize"), then whatever the caller
// writes: the sequence headers, then frames from a keyframe. Finish() makes the
// onMetaData's duration and filesize true, fsyncs the file, renames it to its final name
// and fsyncs the folder, so that after a crash a name without ".part" is a whole file.
//
//   absl::StatusOr<std::unique_ptr<FlvFile>> file = FlvFile::Create(
//       "/rec/live/cam1/20261203-101500.flv", {.audio = true, .video = true}, onmetadata);
//   (*file)->Write(RecordType::kVideo, dts, avc_config, /*config=*/true);
//   (*file)->Write(RecordType::kVideo, dts, keyframe, /*config=*/false);
//   absl::StatusOr<std::string> done = (*file)->Finish();  // the final path
//
// A file being written is locked (flock), so that Recover() can tell the .part file of a
// writer that died (SIGKILL, a crash) from one still being written.
//
// Errors. A failing write (ENOSPC, EIO, EFBIG) is returned with the file's path and the
// system's reason; the file keeps every tag written whole before it. Finish() after an
// error still completes the file with those tags: it cuts off the torn tail (truncation
// needs no free space), patches the metadata in place and renames. A file that can't be
// finished (its folder went away, fsync fails) is left under its .part name.
//
// Thread safety: one thread per file.

#ifndef URINGEST_CONSUMER_FLV_FILE_H_
#define URINGEST_CONSUMER_FLV_FILE_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "consumer/flv_writer.h"
#include "media/amf0.h"
#include "ringbuf/ring_format.h"

namespace uringest::consumer {

inline constexpr char kPartSuffix[] = ".part";

// What Recover() made of a .part file a dead writer left.
struct RecoveredFile {
  std::string path;             // its final name
  uint64_t bytes = 0;           // after cutting off a torn last tag
  uint64_t cut = 0;             // bytes cut off
  uint32_t duration_ms = 0;     // the newest audio or video tag's time
  media::amf0::Value metadata;  // its onMetaData properties (duration, filesize true)
};

class FlvFile {
 public:
  // Creates the file for `path` (its folders too, mode 0755; the file 0644), under
  // path + ".part", and writes the header and onMetaData built from `published_metadata`
  // (an onMetaData body, or empty). If `path` or its .part exists already, the file is
  // named "NAME-1.flv", "NAME-2.flv", ... instead: nothing is ever overwritten.
  static absl::StatusOr<std::unique_ptr<FlvFile>> Create(
      const std::string& path, FlvTracks tracks, std::span<const uint8_t> published_metadata,
      std::span<const media::amf0::Value::Property> extra_metadata = {});
  // Finishes the .part file `part_path` that a writer (of this class) left unfinished:
  // keeps its whole tags, makes its onMetaData's duration and filesize true, fsyncs and
  // renames it as Finish() does. FailedPrecondition if a live writer holds it; an error
  // if it is no file of ours (no onMetaData leading with duration and filesize).
  static absl::StatusOr<RecoveredFile> Recover(const std::string& part_path);
  ~FlvFile();  // an unfinished file is closed and left under its .part name
  FlvFile(const FlvFile&) = delete;
  FlvFile& operator=(const FlvFile&) = delete;

  // One tag (FlvWriter::WriteTag). An error names the file; later writes fail at once.
  absl::Status Write(ringbuf::RecordType type, int64_t dts, std::span<const uint8_t> body,
                     bool config);
  // Completes the file (see above) and returns its final path. Once only.
  absl::StatusOr<std::string> Finish();

  // The final name, and the name it has until Finish().
  const std::string& path() const { return path_; }
  std::string part_path() const { return path_ + kPartSuffix; }
  // The file's size counting whole tags only.
  uint64_t bytes() const { return recovered_bytes_ + writer_.bytes(); }
  // Audio and video frames written (not configurations, not data).
  uint64_t frames() const { return frames_; }
  // The newest audio or video frame's tag time, in ms since the file's first frame.
  uint32_t duration_ms() const { return duration_ms_; }
  bool failed() const { return !status_.ok(); }

 private:
  FlvFile(std::string path, int fd);
  absl::Status Fail(absl::Status status);
  absl::Status PatchMetadata();

  const std::string path_;
  int fd_;
  FdSink sink_;
  FlvWriter writer_;
  size_t duration_offset_ = 0;  // file offsets of onMetaData's two numbers
  size_t filesize_offset_ = 0;
  uint64_t recovered_bytes_ = 0;  // what Recover() found whole
  uint64_t frames_ = 0;
  uint32_t duration_ms_ = 0;
  absl::Status status_;  // the first write error
  bool finished_ = false;
};

}  // namespace uringest::consumer

#endif  // URINGEST_CONSUMER_FLV_FILE_H_
