#include "consumer/flv_tags.h"

#include "media/flv_format.h"
#include "media/media_tag.h"

namespace uringest::consumer {

using ringbuf::RecordMeta;
using ringbuf::RecordType;

absl::Status FlvTagShaper::Shape(const RecordMeta& meta, std::span<uint8_t> body, TagWriter write) {
  const bool media = meta.type == RecordType::kAudio || meta.type == RecordType::kVideo;
  if (!media || (meta.flags & ringbuf::kFlagMultitrack) == 0) return ShapeOne(meta, body, write);
  // The ModEx prefixes a split message may have are not repeated in its tracks.
  RecordMeta track_meta = meta;
  track_meta.flags = meta.flags & ~ringbuf::kFlagMultitrack;
  absl::Status status;
  const size_t tracks =
      media::SplitTracks(body, meta.type == RecordType::kVideo, meta.packet_type, &track_body_,
                         [&](uint8_t track_id, std::span<uint8_t> track_body) {
                           track_meta.track_id = track_id;
                           if (status.ok()) status = ShapeOne(track_meta, track_body, write);
                         });
  return tracks == 0 ? ShapeOne(meta, body, write) : status;
}

absl::Status FlvTagShaper::ShapeOne(const RecordMeta& meta, std::span<uint8_t> body,
                                    TagWriter write) {
  const bool ex = (meta.flags & ringbuf::kFlagExHeader) != 0;
  const bool video = meta.type == RecordType::kVideo;
  if (ex && video && meta.packet_type == uint8_t(media::VideoPacketType::kMpeg2TsSequenceStart)) {
    ++left_out_;
    return absl::OkStatus();
  }
  if (ex && video && meta.packet_type == uint8_t(media::VideoPacketType::kMetadata) &&
      !body.empty()) {
    body[0] = uint8_t((body[0] & 0x8F) | uint8_t(media::VideoFrameType::kCommandFrame) << 4);
  }
  const bool config =
      meta.type != RecordType::kData &&
      media::IsConfiguration(video, (meta.flags & ringbuf::kFlagSequenceHeader) != 0, ex,
                             meta.packet_type);
  return write(meta, body, config);
}

}  // namespace uringest::consumer
