// media_tag.h: reads the properties of an audio (type 8) or video (type 9) message from
// the first bytes of its body, the FLV audio/video tag header: codec, keyframe, sequence
// header, composition time offset. It understands the legacy FLV layout (FLV spec E.4.2,
// E.4.3, including the unofficial HEVC codec id 12) and the Enhanced RTMP ExHeader
// (veovera "Enhanced RTMP" v2: FourCC codecs, command frames, ModEx with
// TimestampOffsetNano, and the Multitrack kinds OneTrack, ManyTracks and
// ManyTracksManyCodecs with their track ids). The parse never fails: a body that is empty, too
// short or malformed yields whatever was read before the bytes ran out, else the defaults. Nothing
// is allocated; the body is only read during the call.
//
//   MediaTag tag = ParseVideoTag(message.payload);
//   if (tag.sequence_header && tag.codec == kFourCcHevc) { ... }

#ifndef URINGEST_MEDIA_MEDIA_TAG_H_
#define URINGEST_MEDIA_MEDIA_TAG_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "absl/functional/function_ref.h"

namespace uringest::media {

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

// The high 4 bits of the byte that ends a ModEx prefix.
enum class ModExType : uint8_t {
  kTimestampOffsetNano = 0,  // data: UI24 nanoseconds (0..999999) added to the RTMP time
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
  // The body uses the Enhanced RTMP ExHeader (video bit 7, SoundFormat 9): `codec` is a
  // FourCC and `packet_type` a Video/AudioPacketType.
  bool ex_header = false;
  // A video command frame (FrameType 5, legacy video info or Enhanced videoCommand).
  bool command = false;
  // The packet type after any ModEx and Multitrack prefixes (Enhanced RTMP), else the
  // AVC/HEVC or AAC packet type byte; 0 when the layout has none.
  uint8_t packet_type = 0;
  // A Multitrack message (any AvMultitrackType). `track_id` is its (first) track's id;
  // `track_count` the tracks found in the bytes given (ManyTracks*: walked by their sizes,
  // so a body cut short, such as the first chunk of a longer message, counts fewer).
  bool multitrack = false;
  // A ManyTracks or ManyTracksManyCodecs message: it may hold several tracks. Read from the
  // header alone, so it holds for any prefix of the body that reaches the first track.
  bool many_tracks = false;
  uint8_t track_id = 0;
  uint8_t track_count = 1;
  // ModEx TimestampOffsetNano: nanoseconds to add to the message time; 0 without one.
  uint32_t time_offset_ns = 0;
};

// One track of an Enhanced RTMP message (a single-track message has one, id 0).
struct MediaTrack {
  uint32_t codec = 0;  // FourCC
  uint8_t track_id = 0;
  // The track's bytes after its prefix (for CodedFrames of avc1/hvc1/vvc1 starting with
  // the SI24 composition time). A view into the body passed in.
  std::span<const uint8_t> data;
};

// The properties of a video message body.
MediaTag ParseVideoTag(std::span<const uint8_t> body);

// The properties of an audio message body.
MediaTag ParseAudioTag(std::span<const uint8_t> body);

// The tracks of an Enhanced RTMP video (`video`) or audio body: fills up to out.size()
// entries in order and returns how many tracks the body holds (stopping at the first
// truncated one, which is included with the bytes that are there). Legacy bodies and
// command frames have no tracks: 0.
size_t ListTracks(std::span<const uint8_t> body, bool video, std::span<MediaTrack> out);

// The body of a message carrying `track` alone, as a publisher would send it: an
// Enhanced RTMP single-track body for track 0, else a OneTrack Multitrack body, with
// `packet_type` (a Video/AudioPacketType, not Multitrack or ModEx), the track's FourCC
// and its bytes. A video body keeps `frame_type`. Replaces *out. This is how the
// directory keeps each track of a ManyTracks sequence start for late joiners.
void SingleTrackBody(bool video, uint8_t frame_type, uint8_t packet_type, const MediaTrack& track,
                     std::vector<uint8_t>* out);

// Whether a message configures its track rather than carrying its frames: a sequence
// header (legacy, or an Enhanced RTMP SequenceStart or MPEG2TSSequenceStart), or one of
// the Enhanced RTMP packets a decoder needs besides it, an audio MultichannelConfig or a
// video Metadata (colorInfo) packet. The server keeps these for late joiners and a
// recorder repeats them at the head of each file. The arguments are MediaTag's fields.
bool IsConfiguration(bool video, bool sequence_header, bool ex_header, uint8_t packet_type);

// Splits an Enhanced RTMP message into the messages that would carry each of its tracks
// alone (SingleTrackBody, with the message's frame type and `packet_type`), calling
// fn(track_id, body) for each track in order; `body` lives in *scratch and is valid
// during the call. Returns how many tracks there were: 0, and no call, for a legacy body
// or a command frame.
size_t SplitTracks(std::span<const uint8_t> message, bool video, uint8_t packet_type,
                   std::vector<uint8_t>* scratch,
                   absl::FunctionRef<void(uint8_t track_id, std::span<uint8_t> body)> fn);

}  // namespace uringest::media

#endif  // URINGEST_MEDIA_MEDIA_TAG_H_
