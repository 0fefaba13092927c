// flv_tags.h: how a ring record becomes the FLV tags that ffmpeg's FLV reader (8.0 and
// later) reads whole, for uringest-cat and uringest-record alike (stream_cat.h,
// "Enhanced RTMP"). A message with several tracks (ManyTracks, ManyTracksManyCodecs)
// becomes one tag per track, the single-track or OneTrack message that would carry that
// track alone; a video Metadata packet (colorInfo) gets frame type 5, as ffmpeg's own
// FLV muxer writes it; an MPEG2TSSequenceStart packet is left out, since FLV readers
// take it for a frame. Everything else is one tag, as sent.
//
//   FlvTagShaper shaper;
//   absl::Status s = shaper.Shape(frame.meta, body, [&](const RecordMeta& meta,
//                                                       std::span<uint8_t> tag, bool config) {
//     return writer.WriteTag(meta.type, meta.dts, tag, config);
//   });
//
// Thread safety: one thread per shaper.

#ifndef URINGEST_CONSUMER_FLV_TAGS_H_
#define URINGEST_CONSUMER_FLV_TAGS_H_

#include <cstdint>
#include <span>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "ringbuf/record_meta.h"

namespace uringest::consumer {

// Writes one tag: its record metadata (a split message's track id), its body, and
// whether it is a configuration (media::IsConfiguration).
using TagWriter = absl::FunctionRef<absl::Status(const ringbuf::RecordMeta& meta,
                                                 std::span<uint8_t> body, bool config)>;

class FlvTagShaper {
 public:
  // Calls `write` for each tag of the record (`body` is its payload, and may be changed
  // in place), stopping at the first error, which it returns.
  absl::Status Shape(const ringbuf::RecordMeta& meta, std::span<uint8_t> body, TagWriter write);
  // MPEG2TSSequenceStart packets left out so far.
  uint64_t left_out() const { return left_out_; }

 private:
  absl::Status ShapeOne(const ringbuf::RecordMeta& meta, std::span<uint8_t> body, TagWriter write);

  std::vector<uint8_t> track_body_;  // one track of a split message
  uint64_t left_out_ = 0;
};

}  // namespace uringest::consumer

#endif  // URINGEST_CONSUMER_FLV_TAGS_H_
