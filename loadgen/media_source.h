// media_source.h: what uringest-load's publishers send. A MediaSource is built once and
// shared read-only by every publisher; each publisher walks it with its own frame index,
// so a thousand publishers cost one copy of the media.
//
// Two kinds:
//  - Synthetic: H.264-shaped video only. Every GOP (2 s) opens with a keyframe worth
//    8 inter frames; sizes add up to the bitrate. Bodies are valid-looking AVC NALU tags
//    (0x17/0x27, packet type 1, cts 0) from two preallocated buffers, preceded by a
//    real AVC sequence header (320x240 High profile).
//  - FLV: the audio and video tags of a file, looped with timestamps carried on. The
//    file's sequence headers go first; its script tags are left out.
//
//   absl::StatusOr<std::unique_ptr<MediaSource>> src = MediaSource::Synthetic(2'500'000, 30);
//   for (const auto& h : (*src)->headers()) Send(h);
//   MediaFrame f = (*src)->At(i);   // the i-th frame, i = 0, 1, 2, ...
//
// Thread safety: immutable after construction; share it freely.

#ifndef URINGEST_LOADGEN_MEDIA_SOURCE_H_
#define URINGEST_LOADGEN_MEDIA_SOURCE_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/rtmp/publish_client.h"
#include "engine/rtmp/rtmp_format.h"
#include "loadgen/stamp.h"

namespace uringest::loadgen {

struct MediaFrame {
  rtmp::MessageType type = rtmp::MessageType::kVideo;
  uint64_t timestamp_ms = 0;
  // The tag body; valid as long as the MediaSource. Bodies that Stampable() accepts get
  // a stamp in the copy that goes on the wire.
  std::span<const uint8_t> body;
};

class MediaSource {
 public:
  // REQUIRES: bitrate > 0, fps > 0.
  static std::unique_ptr<MediaSource> Synthetic(uint64_t bitrate_bps, double fps);
  // Reads the FLV file at `path`. An error names what is wrong with it.
  static absl::StatusOr<std::unique_ptr<MediaSource>> FromFlv(const std::string& path);
  // Parses FLV bytes (tests).
  static absl::StatusOr<std::unique_ptr<MediaSource>> FromFlvBytes(std::span<const uint8_t> flv);

  MediaSource(const MediaSource&) = delete;
  MediaSource& operator=(const MediaSource&) = delete;

  // Sequence headers to send once, right after the publish started (timestamp 0).
  const std::vector<MediaFrame>& headers() const { return headers_; }
  // onMetaData (AMF0 "onMetaData" + ECMA array), sent as @setDataFrame first.
  std::span<const uint8_t> metadata() const { return metadata_; }
  // The i-th frame after the headers; the source repeats forever.
  MediaFrame At(uint64_t index) const;
  // True if At(index) is a video keyframe, where a publisher may start or move (a source
  // without video keyframes: the first frame of each period).
  bool IsKeyframe(uint64_t index) const;
  // Payload bytes of one period (a GOP, or the file's frames) and its length.
  uint64_t period_bytes() const { return period_bytes_; }
  uint64_t period_ms() const { return period_ms_; }
  // Frames per period.
  size_t period_frames() const { return frames_.size(); }

 private:
  MediaSource() = default;
  void BuildMetadata(double fps, uint64_t bitrate_bps);
  void FindKeyframes();

  std::vector<MediaFrame> headers_;
  std::vector<MediaFrame> frames_;  // one period; At() adds period_ms_ per lap
  uint64_t period_ms_ = 0;
  uint64_t period_bytes_ = 0;
  bool has_keyframe_ = false;
  std::vector<std::vector<uint8_t>> storage_;  // the bytes the spans point into
  std::vector<uint8_t> metadata_;
};

// Queues `frame` on `conn`; a Stampable() body carries *stamp (if given) on the wire:
// the body is shared by every publisher, so the stamp goes into the copy in the queue,
// inside the first chunk (chunk size >= 128 > kStampedMin). REQUIRES: conn->live().
void SendFrame(rtmp::PublishClient* conn, const MediaFrame& frame, const Stamp* stamp);

}  // namespace uringest::loadgen

#endif  // URINGEST_LOADGEN_MEDIA_SOURCE_H_
