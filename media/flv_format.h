// flv_format.h: the FLV tag layout of "Video File Format Specification 10" (tag header,
// audio/video tag headers, E.4.1-E.4.3) with the Enhanced RTMP additions noted where they
// apply. RTMP carries audio and video messages as FLV tag bodies, so the RTMP core, the
// consumer tools and the load harness all read and write these.

#ifndef URINGEST_MEDIA_FLV_FORMAT_H_
#define URINGEST_MEDIA_FLV_FORMAT_H_

#include <cstddef>
#include <cstdint>

namespace uringest::media {

// ---- The file header (FLV spec E.2) ----
inline constexpr uint8_t kFlvVersion = 1;
inline constexpr uint32_t kFlvHeaderSize = 3 + 1 + 1 + 4;  // "FLV", version, flags, offset
inline constexpr uint8_t kFlvFlagAudio = 0x04;
inline constexpr uint8_t kFlvFlagVideo = 0x01;

// ---- Tags (FLV spec E.3, E.4.1), in a file and inside RTMP aggregate messages ----
// type(1) + data size(3) + timestamp(3) + timestamp extended(1) + stream id(3)
inline constexpr uint32_t kFlvTagHeaderSize = 1 + 3 + 3 + 1 + 3;
// Each tag is followed by its size (header + body) in 4 bytes: PreviousTagSize.
inline constexpr uint32_t kFlvPreviousTagSizeSize = 4;
inline constexpr uint32_t kFlvMaxTagBody = (1 << 24) - 1;  // DataSize is 24 bits

// ---- Audio and video tag headers (FLV spec E.4.2, E.4.3) ----
// Video: frame type(4 bits) | codec id(4 bits); AVC adds packet type(1) + cts(3).
enum class VideoFrameType : uint8_t {
  kKeyFrame = 1,
  kInterFrame = 2,
  kDisposableInterFrame = 3,
  kGeneratedKeyFrame = 4,
  kCommandFrame = 5,  // video info / command frame
};
enum class VideoCodec : uint8_t {
  kSorensonH263 = 2,
  kScreenVideo = 3,
  kVp6 = 4,
  kVp6Alpha = 5,
  kScreenVideo2 = 6,
  kAvc = 7,
  kHevcLegacy = 12,  // the unofficial id some Chinese CDNs use for HEVC
};
enum class AvcPacketType : uint8_t { kSequenceHeader = 0, kNalu = 1, kEndOfSequence = 2 };
// Enhanced RTMP: bit 7 of the first video byte marks an ExHeader (FourCC follows).
inline constexpr uint8_t kVideoExHeaderBit = 0x80;

// Audio: sound format(4 bits) | rate(2) | size(1) | type(1); AAC adds packet type(1).
enum class AudioCodec : uint8_t {
  kLinearPcmPlatform = 0,
  kAdpcm = 1,
  kMp3 = 2,
  kLinearPcmLe = 3,
  kNellymoser16kMono = 4,
  kNellymoser8kMono = 5,
  kNellymoser = 6,
  kG711ALaw = 7,
  kG711MuLaw = 8,
  kExHeader = 9,  // Enhanced RTMP: FourCC follows
  kAac = 10,
  kSpeex = 11,
  kMp3_8k = 14,
  kDeviceSpecific = 15,
};
enum class AacPacketType : uint8_t { kSequenceHeader = 0, kRaw = 1 };

}  // namespace uringest::media

#endif  // URINGEST_MEDIA_FLV_FORMAT_H_
