// media_tag.cc: see media_tag.h. The Enhanced RTMP layouts follow the veovera spec v2:
//
//   video: isExHeader UB[1] | frameType UB[3] | packetType UB[4]
//          { ModEx: size UI8+1 (256: UI16+1), data, modExType UB[4] | packetType UB[4] }*
//          frameType 5 and packetType != Metadata: videoCommand UI8, nothing else
//          Multitrack: multitrackType UB[4] | packetType UB[4], FourCC unless
//                      ManyTracksManyCodecs; then per track [FourCC] trackId UI8 [size UI24]
//          else FourCC
//          CodedFrames of avc1/hvc1/vvc1: compositionTime SI24
//   audio: soundFormat UB[4] = 9 | packetType UB[4], then the same ModEx and Multitrack
//          prefixes (Multitrack is 5 for audio) and FourCC.

#include "engine/rtmp/media_tag.h"

#include <cstddef>

#include "engine/rtmp/byte_order.h"
#include "engine/rtmp/rtmp_format.h"

namespace uringest::rtmp {
namespace {

// Bounds-checked reads over a tag body. A read past the end fails and reads nothing.
class Cursor {
 public:
  explicit Cursor(std::span<const uint8_t> data) : data_(data) {}

  bool ReadU8(uint8_t* v) {
    if (!Has(1)) return false;
    *v = data_[pos_++];
    return true;
  }
  bool ReadU16(uint32_t* v) { return Read(2, v); }
  bool ReadU24(uint32_t* v) { return Read(3, v); }
  bool ReadU32(uint32_t* v) { return Read(4, v); }
  bool Skip(size_t n) {
    if (!Has(n)) return false;
    pos_ += n;
    return true;
  }

 private:
  bool Has(size_t n) const { return data_.size() - pos_ >= n; }
  bool Read(size_t n, uint32_t* v) {
    if (!Has(n)) return false;
    const uint8_t* p = data_.data() + pos_;
    *v = n == 2 ? LoadU16(p) : n == 3 ? LoadU24(p) : LoadU32(p);
    pos_ += n;
    return true;
  }

  std::span<const uint8_t> data_;
  size_t pos_ = 0;
};

constexpr uint8_t kModExPacketType = 7;  // the same value for audio and video
constexpr size_t kModExSizeEscape = 256;

int32_t SignExtend24(uint32_t v) { return int32_t(v << 8) >> 8; }

// Skips ModEx prefixes while *packet_type says one follows, leaving the packet type of
// what comes after them. Returns false if the body ends first.
bool SkipModEx(Cursor* c, uint8_t* packet_type) {
  while (*packet_type == kModExPacketType) {
    uint8_t size_byte;
    if (!c->ReadU8(&size_byte)) return false;
    size_t size = size_t(size_byte) + 1;
    if (size == kModExSizeEscape) {
      uint32_t size16;
      if (!c->ReadU16(&size16)) return false;
      size = size_t(size16) + 1;
    }
    uint8_t type_byte;
    if (!c->Skip(size) || !c->ReadU8(&type_byte)) return false;
    *packet_type = type_byte & 0x0F;  // the high nibble is the ModEx type: not needed
  }
  return true;
}

// Reads a Multitrack header (multitrack type and inner packet type) if *packet_type is
// `multitrack`. Sets *multitrack_type, or leaves it negative for a single-track message.
bool ReadMultitrackHeader(Cursor* c, uint8_t multitrack, uint8_t* packet_type,
                          int* multitrack_type) {
  if (*packet_type != multitrack) return true;
  uint8_t b;
  if (!c->ReadU8(&b)) return false;
  *multitrack_type = b >> 4;
  *packet_type = b & 0x0F;
  // Nested Multitrack or ModEx inside Multitrack is not allowed by the spec.
  return *packet_type != multitrack && *packet_type != kModExPacketType;
}

// Skips the per-track prefix (track id, and the track size for many tracks) of the first
// track of a multitrack message. The FourCC has been read already.
bool SkipTrackPrefix(Cursor* c, int multitrack_type) {
  if (multitrack_type < 0) return true;
  const bool one_track = multitrack_type == int(AvMultitrackType::kOneTrack);
  return c->Skip(1 + (one_track ? 0 : 3));
}

bool CarriesCompositionTime(uint32_t fourcc) {
  return fourcc == kFourCcAvc || fourcc == kFourCcHevc || fourcc == kFourCcVvc;
}

MediaTag ParseExVideoTag(Cursor c, uint8_t first) {
  MediaTag tag;
  const uint8_t frame_type = (first >> 4) & 0x07;
  uint8_t packet = first & 0x0F;
  if (!SkipModEx(&c, &packet)) return tag;
  if (packet != uint8_t(VideoPacketType::kMetadata) &&
      frame_type == uint8_t(VideoFrameType::kCommandFrame)) {
    return tag;  // videoCommand UI8: no codec, not a keyframe
  }
  int multitrack_type = -1;
  if (!ReadMultitrackHeader(&c, uint8_t(VideoPacketType::kMultitrack), &packet, &multitrack_type)) {
    return tag;
  }
  const auto type = VideoPacketType(packet);
  tag.sequence_header =
      type == VideoPacketType::kSequenceStart || type == VideoPacketType::kMpeg2TsSequenceStart;
  tag.keyframe = frame_type == uint8_t(VideoFrameType::kKeyFrame) &&
                 type != VideoPacketType::kSequenceEnd && type != VideoPacketType::kMetadata;
  // Single track and one-codec multitrack: the FourCC is here; many codecs: the first
  // track's FourCC opens the body. Either way the next four bytes are a FourCC.
  if (!c.ReadU32(&tag.codec)) return tag;
  uint32_t cts;
  if (type == VideoPacketType::kCodedFrames && CarriesCompositionTime(tag.codec) &&
      SkipTrackPrefix(&c, multitrack_type) && c.ReadU24(&cts)) {
    tag.composition_offset = SignExtend24(cts);
  }
  return tag;
}

MediaTag ParseLegacyVideoTag(Cursor c, uint8_t first) {
  MediaTag tag;
  const uint8_t frame_type = first >> 4;
  tag.codec = first & 0x0F;
  tag.keyframe = frame_type == uint8_t(VideoFrameType::kKeyFrame);
  // A command frame carries a video info byte instead of an AVC packet type.
  if (frame_type == uint8_t(VideoFrameType::kCommandFrame)) return tag;
  if (tag.codec != uint8_t(VideoCodec::kAvc) && tag.codec != uint8_t(VideoCodec::kHevcLegacy)) {
    return tag;
  }
  uint8_t packet;
  if (!c.ReadU8(&packet)) return tag;
  tag.sequence_header = packet == uint8_t(AvcPacketType::kSequenceHeader);
  uint32_t cts;
  if (packet == uint8_t(AvcPacketType::kNalu) && c.ReadU24(&cts)) {
    tag.composition_offset = SignExtend24(cts);
  }
  return tag;
}

MediaTag ParseExAudioTag(Cursor c, uint8_t first) {
  MediaTag tag;
  tag.keyframe = true;
  uint8_t packet = first & 0x0F;
  int multitrack_type = -1;
  if (!SkipModEx(&c, &packet) ||
      !ReadMultitrackHeader(&c, uint8_t(AudioPacketType::kMultitrack), &packet, &multitrack_type)) {
    return tag;
  }
  tag.sequence_header = packet == uint8_t(AudioPacketType::kSequenceStart);
  c.ReadU32(&tag.codec);  // as for video: the shared or the first track's FourCC
  return tag;
}

}  // namespace

MediaTag ParseVideoTag(std::span<const uint8_t> body) {
  Cursor c(body);
  uint8_t first;
  if (!c.ReadU8(&first)) return MediaTag{};
  return (first & kVideoExHeaderBit) ? ParseExVideoTag(c, first) : ParseLegacyVideoTag(c, first);
}

MediaTag ParseAudioTag(std::span<const uint8_t> body) {
  Cursor c(body);
  uint8_t first;
  if (!c.ReadU8(&first)) return MediaTag{.keyframe = true};
  const uint8_t format = first >> 4;
  if (format == uint8_t(AudioCodec::kExHeader)) return ParseExAudioTag(c, first);
  MediaTag tag{.codec = format, .keyframe = true};
  uint8_t packet;
  if (format == uint8_t(AudioCodec::kAac) && c.ReadU8(&packet)) {
    tag.sequence_header = packet == uint8_t(AacPacketType::kSequenceHeader);
  }
  return tag;
}

}  // namespace uringest::rtmp
