// recorder.h: uringest-record as a library. Records every stream of a server whose name
// matches a pattern into FLV files under a folder, losslessly: one file per stream, or a
// new file at the first keyframe after each segment length (or size). Every file plays
// alone: it starts with onMetaData (with a true duration and filesize once finished) and
// the stream's sequence headers, then frames from a keyframe. A file is written under a
// ".part" name and renamed once finished (FlvFile), and a command may be run on each
// finished one (to upload it, for instance).
//
//   std::atomic<bool> stop{false};        // set by SIGINT/SIGTERM
//   RecordOptions options{.dir = "/var/lib/uringest/rec", .pattern = "live/*",
//                         .segment = absl::Minutes(10), .stop = &stop};
//   absl::Status s = RecordStreams(options);   // returns after a stop, files finished
//
// Failures stay local. A write that fails (a full disk, EIO) ends that stream's file with
// the whole tags it holds and a log line naming the file and the error; the stream's
// recording resumes in a new file, at a keyframe, once files can be written again (tried
// after 1 s, then at doubling intervals up to 30 s), and the log says which frames (by
// time) were not recorded. Other streams go on. The recorder holds each shard's producer
// back (a lossless reader) within the server's bounded lossless wait; one that falls
// further behind is evicted, says so, and logs each stream's lost frames with the times
// of the gap. The server going away finishes every file; the recorder then waits for the
// next server. A stop (options.stop) finishes every file.
//
// Thread safety: RecordStreams() runs on the calling thread.

#ifndef URINGEST_CONSUMER_RECORDER_H_
#define URINGEST_CONSUMER_RECORDER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "ringbuf/reader.h"

namespace uringest::consumer {

struct RecordOptions {
  std::string ring = "uringest";
  std::string dir = ".";
  // Streams to record: a shell pattern (fnmatch) over "app/name"; "*" matches '/' too.
  std::string pattern = "*";
  // The file name under `dir`: see SegmentName().
  std::string name_template = "{app}/{name}/{start:%Y%m%d-%H%M%S}.flv";
  // A new file at the first keyframe after this much media time in the file; zero: one
  // file per stream (unless max_size).
  absl::Duration segment = absl::ZeroDuration();
  // A new file at the first keyframe after this many bytes; 0: no limit.
  uint64_t max_size = 0;
  // Run as `sh -c 'COMMAND "$1" "$2"' uringest-record PATH STREAM` for each finished file,
  // without waiting for it; its exit status is logged when not 0.
  std::string on_segment_complete;
  bool lossless = true;
  ringbuf::ReaderOptions reader;
  // One line per event (files begun and finished, losses, errors), without a newline.
  std::function<void(std::string_view)> log;
  // Set from another thread or a signal handler: RecordStreams() finishes every file and
  // returns within about 100 ms.
  const std::atomic<bool>* stop = nullptr;
};

struct RecordSummary {
  uint64_t files = 0;         // finished
  uint64_t frames = 0;        // audio and video frames written
  uint64_t lost = 0;          // frames the ring lost before the recorder read them
  uint64_t not_recorded = 0;  // frames read while no file could be written
};

// Records until *options.stop; see above. Returns OK after a stop, or an error that
// waiting can't cure (no permission to read the ring, a folder that can't be created).
[[nodiscard]] absl::Status RecordStreams(const RecordOptions& options,
                                         RecordSummary* summary = nullptr);

// The file name (under the folder) of a file of `stream` ("app/name") begun at `start`:
// `name_template` with {app}, {name} and {start:FORMAT} (strftime, local time; {start}
// alone is {start:%Y%m%d-%H%M%S}) replaced. In the app and the name, '/' and a leading
// '.' become '_', so that a stream name can't lead out of the folder.
std::string SegmentName(std::string_view name_template, std::string_view stream, absl::Time start);

}  // namespace uringest::consumer

#endif  // URINGEST_CONSUMER_RECORDER_H_
