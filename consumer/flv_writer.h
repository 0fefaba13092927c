// flv_writer.h: turns the frames of one stream, as the frame ring carries them, back into
// an FLV file (Adobe "Video File Format Specification" v10, annex E): the 9-byte header,
// then tags, each followed by its PreviousTagSize. A ring record's payload is already an
// FLV tag body (audio/video with their tag header bytes; data: onMetaData without
// @setDataFrame), so each tag is an 11-byte header, the body as the publisher sent it,
// and a 4-byte trailer.
//
//   VectorSink sink;
//   FlvWriter writer(&sink);
//   writer.WriteHeader({.audio = true, .video = true});
//   writer.WriteTag(RecordType::kData, 0, metadata, /*config=*/false);
//   writer.WriteTag(RecordType::kVideo, 0, avc_config, /*config=*/true);
//   writer.WriteTag(RecordType::kVideo, dts, keyframe, /*config=*/false);
//
// Timestamps. The tag timestamp is the dts in milliseconds, rebased so that the first
// audio or video frame (not a configuration) is at 0: a reader that joins a stream
// hours in still gets a file that starts at 0, which ffplay and ffprobe handle best
// (ffplay otherwise waits out the start time's gap against its clock on some inputs, and
// players such as flv.js assume 0). Tags before that frame (onMetaData, configurations)
// get 0, and a frame that the publisher interleaved slightly before the first one (audio
// a few ms before the keyframe it joined at) is clamped to 0. The composition time offset
// lives inside AVC/HEVC bodies, so pts needs nothing here. The 32-bit result is stored as
// FLV does: the low 24 bits, then the high 8 bits in TimestampExtended.
//
// Enhanced FLV. Enhanced RTMP bodies (ExHeader, FourCC codecs, ModEx, Multitrack) are
// FLV tag bodies too: the file is Enhanced FLV as the veovera spec defines it (same header
// and tag layout). This writer writes the bodies it is given; what uringest-cat gives it
// (multitrack messages split per track, for instance) is described in stream_cat.h.
//
// Configurations. A tag written with `config` is one a decoder needs before frames: a
// sequence header, or an Enhanced RTMP MultichannelConfig or video Metadata packet. It
// does not start the time base. Every tag is written as given, repeats included: which
// copies to leave out (a late joiner's configurations come from the directory and may
// come again from the ring) is the caller's decision (stream_cat.h).
//
// Thread safety: one thread per writer.

#ifndef URINGEST_CONSUMER_FLV_WRITER_H_
#define URINGEST_CONSUMER_FLV_WRITER_H_

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "media/flv_format.h"
#include "ringbuf/ring_format.h"

namespace uringest::consumer {

// Where FLV bytes go. Write() takes the pieces of one tag at once so that a file sink can
// hand them to writev() and a pipe reader never sees half a tag from one call.
class ByteSink {
 public:
  virtual ~ByteSink() = default;
  [[nodiscard]] virtual absl::Status Write(std::span<const std::span<const uint8_t>> pieces) = 0;
};

// Collects everything in memory (tests).
class VectorSink : public ByteSink {
 public:
  absl::Status Write(std::span<const std::span<const uint8_t>> pieces) override;
  const std::vector<uint8_t>& bytes() const { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

// Writes to a file descriptor it does not own (stdout, a file), retrying short writes and
// EINTR. EPIPE (the reader went away) is returned as an error; the caller ignores SIGPIPE.
class FdSink : public ByteSink {
 public:
  explicit FdSink(int fd) : fd_(fd) {}
  absl::Status Write(std::span<const std::span<const uint8_t>> pieces) override;

 private:
  int fd_;
};

struct FlvTracks {
  bool audio = false;
  bool video = false;
};

class FlvWriter {
 public:
  // Borrows `sink`, which must outlive the writer.
  explicit FlvWriter(ByteSink* sink) : sink_(sink) {}
  FlvWriter(const FlvWriter&) = delete;
  FlvWriter& operator=(const FlvWriter&) = delete;

  // The file header and PreviousTagSize0. REQUIRES: called once, before any WriteTag().
  [[nodiscard]] absl::Status WriteHeader(FlvTracks tracks);
  // One tag: `type` is kAudio, kVideo or kData, `body` the record's payload, `dts` its
  // time in ms. Other record types are ignored. A body over media::kFlvMaxTagBody is an error.
  // REQUIRES: WriteHeader() was called.
  // `config`: a configuration (see above).
  [[nodiscard]] absl::Status WriteTag(ringbuf::RecordType type, int64_t dts,
                                      std::span<const uint8_t> body, bool config);

  bool header_written() const { return header_written_; }
  uint64_t tags() const { return tags_; }
  uint64_t bytes() const { return bytes_; }
  // The timestamp WriteTag() would give a frame at `dts` (ms); see the header comment.
  uint32_t TagTimestamp(int64_t dts) const;

 private:
  ByteSink* sink_;
  bool header_written_ = false;
  std::optional<int64_t> base_dts_;  // dts of the first audio/video frame
  uint64_t tags_ = 0;
  uint64_t bytes_ = 0;
};

}  // namespace uringest::consumer

#endif  // URINGEST_CONSUMER_FLV_WRITER_H_
