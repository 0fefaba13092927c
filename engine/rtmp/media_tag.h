// media_tag.h: reads the properties of an audio (type 8) or video (type 9) message from
// the first bytes of its body, the FLV audio/video tag header: codec, keyframe, sequence
// header, composition time offset. It understands the legacy FLV layout (FLV spec E.4.2,
// E.4.3, including the unofficial HEVC codec id 12) and the Enhanced RTMP ExHeader
// (veovera "Enhanced RTMP" v2: FourCC codecs, ModEx and Multitrack prefixes) as far as
// these properties need. The parse never fails: a body that is empty, too short or
// malformed yields whatever was read before the bytes ran out, else the defaults.
// Nothing is allocated; the body is only read during the call.
//
//   MediaTag tag = ParseVideoTag(message.payload);
//   if (tag.sequence_header && tag.codec == kFourCcHevc) { ... }

#ifndef URINGEST_ENGINE_RTMP_MEDIA_TAG_H_
#define URINGEST_ENGINE_RTMP_MEDIA_TAG_H_

#include <cstdint>
#include <span>

namespace uringest::rtmp {

// A FourCC as Enhanced RTMP sends it: four bytes read as a big-endian uint32.
constexpr uint32_t FourCc(const char (&s)[5]) {
  return uint32_t(uint8_t(s[0])) << 24 | uint32_t(uint8_t(s[1])) << 16 |
         uint32_t(uint8_t(s[2])) << 8 | uint32_t(uint8_t(s[3]));
}
inline constexpr uint32_t kFourCcAvc = FourCc("avc1");
inline constexpr uint32_t kFourCcHevc = FourCc("hvc1");
inline constexpr uint32_t kFourCcVvc = FourCc("vvc1");
inline constexpr uint32_t kFourCcAv1 = FourCc("av01");
inline constexpr uint32_t kFourCcVp9 = FourCc("vp09");
inline constexpr uint32_t kFourCcVp8 = FourCc("vp08");
inline constexpr uint32_t kFourCcAac = FourCc("mp4a");
inline constexpr uint32_t kFourCcOpus = FourCc("Opus");
inline constexpr uint32_t kFourCcFlac = FourCc("fLaC");
inline constexpr uint32_t kFourCcAc3 = FourCc("ac-3");
inline constexpr uint32_t kFourCcEac3 = FourCc("ec-3");
inline constexpr uint32_t kFourCcMp3 = FourCc(".mp3");

// Enhanced RTMP video packet types: the low 4 bits of the first byte of an ExHeader.
enum class VideoPacketType : uint8_t {
  kSequenceStart = 0,
  kCodedFrames = 1,  // AVC/HEVC/VVC: SI24 composition time offset follows the FourCC
  kSequenceEnd = 2,
  kCodedFramesX = 3,  // composition time offset implied 0
  kMetadata = 4,      // AMF-encoded metadata (colorInfo)
  kMpeg2TsSequenceStart = 5,
  kMultitrack = 6,
  kModEx = 7,
};

// Enhanced RTMP audio packet types: the low 4 bits after SoundFormat 9 (ExHeader).
enum class AudioPacketType : uint8_t {
  kSequenceStart = 0,
  kCodedFrames = 1,
  kSequenceEnd = 2,
  kMultichannelConfig = 4,
  kMultitrack = 5,
  kModEx = 7,
};

// The high 4 bits of the byte that follows a Multitrack packet type.
enum class AvMultitrackType : uint8_t {
  kOneTrack = 0,
  kManyTracks = 1,
  kManyTracksManyCodecs = 2,  // each track carries its own FourCC
};

struct MediaTag {
  // The FLV codec id (VideoCodec / AudioCodec), or for Enhanced RTMP the FourCC (for
  // multitrack messages with a codec per track: the first track's).
  uint32_t codec = 0;
  // Video: frame type 1 (key frame). Generated key frames (4), command frames (5),
  // SequenceEnd and Metadata packets are not keyframes. Audio: always true.
  bool keyframe = false;
  // AVC/HEVC packet type 0, AAC packet type 0, or an Enhanced RTMP SequenceStart
  // (video also MPEG2TSSequenceStart).
  bool sequence_header = false;
  // pts - dts in milliseconds: the signed 24-bit CompositionTime of AVC/HEVC NALU
  // packets and of Enhanced RTMP CodedFrames for avc1/hvc1/vvc1 (in a multitrack message:
  // the first track's); 0 otherwise.
  int32_t composition_offset = 0;
};

// The properties of a video message body.
MediaTag ParseVideoTag(std::span<const uint8_t> body);

// The properties of an audio message body.
MediaTag ParseAudioTag(std::span<const uint8_t> body);

}  // namespace uringest::rtmp

#endif  // URINGEST_ENGINE_RTMP_MEDIA_TAG_H_
