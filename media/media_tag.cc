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
//
// ModEx TimestampOffsetNano: the first three bytes of the ModEx data, a UI24.

#include "media/media_tag.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "media/byte_order.h"
#include "media/flv_format.h"

namespace uringest::media {
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
  // Up to n bytes from here (fewer at the end), consumed.
  std::span<const uint8_t> Take(size_t n) {
    std::span<const uint8_t> taken = data_.subspan(pos_, std::min(n, data_.size() - pos_));
    pos_ += taken.size();
    return taken;
  }
  bool Has(size_t n) const { return data_.size() - pos_ >= n; }
  bool AtEnd() const { return pos_ == data_.size(); }

 private:
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

// What precedes the tracks of an Enhanced RTMP message.
struct ExHeader {
  uint8_t frame_type = 0;  // video only
  uint8_t packet_type = 0;
  int multitrack_type = -1;     // AvMultitrackType, or -1 for a single-track message
  uint32_t shared_codec = 0;    // single track and one-codec multitrack: the FourCC
  uint32_t time_offset_ns = 0;  // ModEx TimestampOffsetNano
  bool command = false;         // video command frame: no tracks follow
};

// Reads ModEx prefixes while header->packet_type says one follows, leaving the packet
// type of what comes after them. Returns false if the body ends first.
bool ReadModEx(Cursor* c, ExHeader* header) {
  while (header->packet_type == kModExPacketType) {
    uint8_t size_byte;
    if (!c->ReadU8(&size_byte)) return false;
    size_t size = size_t(size_byte) + 1;
    if (size == kModExSizeEscape) {
      uint32_t size16;
      if (!c->ReadU16(&size16)) return false;
      size = size_t(size16) + 1;
    }
    std::span<const uint8_t> data = c->Take(size);
    uint8_t type_byte;
    if (data.size() != size || !c->ReadU8(&type_byte)) return false;
    if ((type_byte >> 4) == uint8_t(ModExType::kTimestampOffsetNano) && data.size() >= 3) {
      header->time_offset_ns = LoadU24(data.data());
    }
    header->packet_type = type_byte & 0x0F;
  }
  return true;
}

// Reads a Multitrack header (multitrack type and inner packet type) if the packet type
// is `multitrack`, then the shared FourCC unless each track carries its own.
bool ReadMultitrackAndCodec(Cursor* c, uint8_t multitrack, ExHeader* header) {
  if (header->packet_type == multitrack) {
    uint8_t b;
    if (!c->ReadU8(&b)) return false;
    header->multitrack_type = b >> 4;
    header->packet_type = b & 0x0F;
    // Nested Multitrack or ModEx inside Multitrack is not allowed by the spec.
    if (header->packet_type == multitrack || header->packet_type == kModExPacketType) return false;
    if (header->multitrack_type == int(AvMultitrackType::kManyTracksManyCodecs)) return true;
  }
  return c->ReadU32(&header->shared_codec);
}

// The ExHeader after the first byte. False if the body ends (or is malformed) before the
// tracks; *header keeps what was read.
bool ReadExHeader(Cursor* c, uint8_t first, bool video, ExHeader* header) {
  header->frame_type = video ? (first >> 4) & 0x07 : 0;
  header->packet_type = first & 0x0F;
  if (!ReadModEx(c, header)) return false;
  if (video && header->packet_type != uint8_t(VideoPacketType::kMetadata) &&
      header->frame_type == uint8_t(VideoFrameType::kCommandFrame)) {
    header->command = true;  // videoCommand UI8: no codec, no tracks
    return true;
  }
  const uint8_t multitrack =
      video ? uint8_t(VideoPacketType::kMultitrack) : uint8_t(AudioPacketType::kMultitrack);
  return ReadMultitrackAndCodec(c, multitrack, header);
}

// Reads the next track's prefix and its bytes. False when no (complete) prefix is left;
// a track whose bytes are cut short is returned with what there is.
bool ReadTrack(Cursor* c, const ExHeader& header, MediaTrack* track) {
  track->codec = header.shared_codec;
  track->track_id = 0;
  if (header.multitrack_type < 0) {
    track->data = c->Take(SIZE_MAX);
    return true;
  }
  if (header.multitrack_type == int(AvMultitrackType::kManyTracksManyCodecs) &&
      !c->ReadU32(&track->codec)) {
    return false;
  }
  if (!c->ReadU8(&track->track_id)) return false;
  if (header.multitrack_type == int(AvMultitrackType::kOneTrack)) {
    track->data = c->Take(SIZE_MAX);
    return true;
  }
  uint32_t size;
  if (!c->ReadU24(&size)) return false;
  track->data = c->Take(size);
  return true;
}

bool CarriesCompositionTime(uint32_t fourcc) {
  return fourcc == kFourCcAvc || fourcc == kFourCcHevc || fourcc == kFourCcVvc;
}

// Fills the track fields of *tag from the tracks that follow the header.
void ReadTracks(Cursor* c, const ExHeader& header, bool coded_frames, MediaTag* tag) {
  tag->codec = header.shared_codec;
  tag->multitrack = header.multitrack_type >= 0;
  tag->many_tracks = header.multitrack_type == int(AvMultitrackType::kManyTracks) ||
                     header.multitrack_type == int(AvMultitrackType::kManyTracksManyCodecs);
  MediaTrack first;
  if (!ReadTrack(c, header, &first)) {
    tag->track_count = 0;
    return;
  }
  tag->codec = first.codec;
  tag->track_id = first.track_id;
  if (coded_frames && CarriesCompositionTime(first.codec) && first.data.size() >= 3) {
    tag->composition_offset = SignExtend24(LoadU24(first.data.data()));
  }
  uint32_t count = 1;
  MediaTrack next;
  while (!c->AtEnd() && count < 255 && ReadTrack(c, header, &next)) ++count;
  tag->track_count = uint8_t(count);
}

MediaTag ParseExVideoTag(Cursor c, uint8_t first) {
  MediaTag tag{.ex_header = true};
  ExHeader header;
  const bool complete = ReadExHeader(&c, first, /*video=*/true, &header);
  const auto type = VideoPacketType(header.packet_type);
  tag.packet_type = header.packet_type;
  tag.time_offset_ns = header.time_offset_ns;
  if (header.command) {
    tag.command = true;
    return tag;
  }
  if (header.packet_type == kModExPacketType ||
      (header.multitrack_type >= 0 &&
       header.packet_type == uint8_t(VideoPacketType::kMultitrack))) {
    return tag;  // ran out inside ModEx, or a nested prefix: nothing to trust
  }
  tag.multitrack = header.multitrack_type >= 0;
  tag.sequence_header =
      type == VideoPacketType::kSequenceStart || type == VideoPacketType::kMpeg2TsSequenceStart;
  tag.keyframe = header.frame_type == uint8_t(VideoFrameType::kKeyFrame) &&
                 type != VideoPacketType::kSequenceEnd && type != VideoPacketType::kMetadata;
  if (!complete) {
    tag.codec = 0;
    return tag;
  }
  ReadTracks(&c, header, type == VideoPacketType::kCodedFrames, &tag);
  return tag;
}

MediaTag ParseLegacyVideoTag(Cursor c, uint8_t first) {
  MediaTag tag;
  const uint8_t frame_type = first >> 4;
  tag.codec = first & 0x0F;
  tag.keyframe = frame_type == uint8_t(VideoFrameType::kKeyFrame);
  // A command frame carries a video info byte instead of an AVC packet type.
  if (frame_type == uint8_t(VideoFrameType::kCommandFrame)) {
    tag.command = true;
    return tag;
  }
  if (tag.codec != uint8_t(VideoCodec::kAvc) && tag.codec != uint8_t(VideoCodec::kHevcLegacy)) {
    return tag;
  }
  uint8_t packet;
  if (!c.ReadU8(&packet)) return tag;
  tag.packet_type = packet;
  tag.sequence_header = packet == uint8_t(AvcPacketType::kSequenceHeader);
  uint32_t cts;
  if (packet == uint8_t(AvcPacketType::kNalu) && c.ReadU24(&cts)) {
    tag.composition_offset = SignExtend24(cts);
  }
  return tag;
}

MediaTag ParseExAudioTag(Cursor c, uint8_t first) {
  MediaTag tag{.keyframe = true, .ex_header = true};
  ExHeader header;
  const bool complete = ReadExHeader(&c, first, /*video=*/false, &header);
  tag.packet_type = header.packet_type;
  tag.time_offset_ns = header.time_offset_ns;
  if (header.packet_type == kModExPacketType ||
      (header.multitrack_type >= 0 &&
       header.packet_type == uint8_t(AudioPacketType::kMultitrack))) {
    return tag;
  }
  tag.multitrack = header.multitrack_type >= 0;
  tag.sequence_header = header.packet_type == uint8_t(AudioPacketType::kSequenceStart);
  if (complete) ReadTracks(&c, header, /*coded_frames=*/false, &tag);
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
    tag.packet_type = packet;
    tag.sequence_header = packet == uint8_t(AacPacketType::kSequenceHeader);
  }
  return tag;
}

namespace {

// Reads the ExHeader of an Enhanced RTMP body up to its first track. False for a legacy
// body, a command frame, or one that ends (or is malformed) before its tracks.
bool ReadUpToTracks(Cursor* c, bool video, ExHeader* header) {
  uint8_t first;
  if (!c->ReadU8(&first)) return false;
  const bool ex =
      video ? (first & kVideoExHeaderBit) != 0 : (first >> 4) == uint8_t(AudioCodec::kExHeader);
  return ex && ReadExHeader(c, first, video, header) && !header->command;
}

// Calls fn(track) for each track after the header, as ListTracks() counts them.
template <typename Fn>
size_t ForEachTrack(Cursor* c, const ExHeader& header, Fn fn) {
  size_t count = 0;
  MediaTrack track;
  while (!(count > 0 && c->AtEnd()) && ReadTrack(c, header, &track)) {
    fn(track);
    ++count;
    if (header.multitrack_type < 0 || header.multitrack_type == int(AvMultitrackType::kOneTrack)) {
      break;
    }
  }
  return count;
}

}  // namespace

size_t ListTracks(std::span<const uint8_t> body, bool video, std::span<MediaTrack> out) {
  Cursor c(body);
  ExHeader header;
  if (!ReadUpToTracks(&c, video, &header)) return 0;
  size_t count = 0;
  return ForEachTrack(&c, header, [&](const MediaTrack& track) {
    if (count < out.size()) out[count] = track;
    ++count;
  });
}

size_t SplitTracks(std::span<const uint8_t> message, bool video, uint8_t packet_type,
                   std::vector<uint8_t>* scratch,
                   absl::FunctionRef<void(uint8_t track_id, std::span<uint8_t> body)> fn) {
  Cursor c(message);
  ExHeader header;
  if (!ReadUpToTracks(&c, video, &header)) return 0;
  return ForEachTrack(&c, header, [&](const MediaTrack& track) {
    SingleTrackBody(video, header.frame_type, packet_type, track, scratch);
    fn(track.track_id, *scratch);
  });
}

bool IsConfiguration(bool video, bool sequence_header, bool ex_header, uint8_t packet_type) {
  if (sequence_header) return true;
  if (!ex_header) return false;
  // A Metadata packet is never a command frame (ReadExHeader), and audio has none.
  return video ? packet_type == uint8_t(VideoPacketType::kMetadata)
               : packet_type == uint8_t(AudioPacketType::kMultichannelConfig);
}

void SingleTrackBody(bool video, uint8_t frame_type, uint8_t packet_type, const MediaTrack& track,
                     std::vector<uint8_t>* out) {
  const uint8_t lead = video ? uint8_t(kVideoExHeaderBit | (frame_type & 0x07) << 4)
                             : uint8_t(uint8_t(AudioCodec::kExHeader) << 4);
  const uint8_t multitrack =
      video ? uint8_t(VideoPacketType::kMultitrack) : uint8_t(AudioPacketType::kMultitrack);
  out->clear();
  if (track.track_id == 0) {
    out->push_back(uint8_t(lead | (packet_type & 0x0F)));
  } else {
    out->push_back(uint8_t(lead | multitrack));
    out->push_back(uint8_t(uint8_t(AvMultitrackType::kOneTrack) << 4 | (packet_type & 0x0F)));
  }
  AppendU32(out, track.codec);
  if (track.track_id != 0) out->push_back(track.track_id);
  out->insert(out->end(), track.data.begin(), track.data.end());
}

}  // namespace uringest::media
