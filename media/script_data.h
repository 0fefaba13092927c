// script_data.h: data messages (RTMP message type 18, the body of an FLV script data
// tag): AMF0 values, the first of them a name. Publishers send their stream's metadata
// as "@setDataFrame", "onMetaData", object; what a player or an FLV file gets is the
// message without "@setDataFrame", and the server keeps the latest onMetaData for late
// joiners. These functions recognise and read that metadata; they never allocate
// except to decode an onMetaData body, and a malformed body is simply not metadata.
//
//   std::span<const uint8_t> body = UnwrapSetDataFrame(message.payload);
//   if (IsOnMetaData(body)) {
//     StreamMetadata announced = ParseOnMetaData(body);   // width, framerate, codecs...
//   }

#ifndef URINGEST_MEDIA_SCRIPT_DATA_H_
#define URINGEST_MEDIA_SCRIPT_DATA_H_

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "media/amf0.h"

namespace uringest::media {

inline constexpr std::string_view kOnMetaData = "onMetaData";
inline constexpr std::string_view kSetDataFrame = "@setDataFrame";

// Whether `amf` starts with the AMF0 string `s` (marker 0x02, u16 length, the bytes).
bool StartsWithAmf0String(std::span<const uint8_t> amf, std::string_view s);

// The data message without a leading "@setDataFrame" string (or "setDataFrame", as some
// encoders spell it), or all of it when it has none.
std::span<const uint8_t> UnwrapSetDataFrame(std::span<const uint8_t> amf);

// Whether `amf` is stream metadata: it starts with "@setDataFrame", "setDataFrame" or
// "onMetaData". nginx-rtmp handles such messages as data whatever their RTMP message
// type, and encoders have sent them as commands.
bool IsMetadataMessage(std::span<const uint8_t> amf);

// Whether a data tag body (unwrapped) is onMetaData. Checks the name only.
bool IsOnMetaData(std::span<const uint8_t> body);

// What onMetaData announces. 0 where it announces nothing usable (absent, not a positive
// number below 2^32, or the wrong type).
struct StreamMetadata {
  uint32_t width = 0;  // pixels
  uint32_t height = 0;
  uint32_t frame_rate_milli = 0;  // frames per 1000 s: "framerate" 29.97 gives 29970
  // "videocodecid"/"audiocodecid": an FLV codec id (7), or a FourCC string ("hvc1") as
  // Enhanced RTMP encoders write it, read as media_tag.h's FourCc().
  uint32_t video_codec = 0;
  uint32_t audio_codec = 0;
  uint32_t audio_sample_rate = 0;   // Hz
  uint32_t audio_channels = 0;      // "audiochannels", else 2 or 1 from "stereo"
  uint32_t video_bitrate_kbps = 0;  // "videodatarate"
  uint32_t audio_bitrate_kbps = 0;  // "audiodatarate"
};

// Reads an onMetaData body: the name, then an object or ECMA array. Anything else (another
// data message, a malformed body) announces nothing.
StreamMetadata ParseOnMetaData(std::span<const uint8_t> body);

// The onMetaData a recorded file starts with: the publisher's properties (from
// `published`, an onMetaData body; none if it is not one) as an ECMA array whose first
// two are "duration" and "filesize", 0 until the file is complete, and whose last are
// `extra` (the recorder's own, replacing any of the publisher's of the same names). A
// live stream's own duration (0) and filesize are dropped. The file's writer patches the two
// numbers in place (PatchNumber at the offsets given) once it knows them, so the body's size never
// changes.
struct FileMetadata {
  std::vector<uint8_t> body;
  size_t duration_offset = 0;  // of the 8-byte AMF0 number (seconds), in body
  size_t filesize_offset = 0;  // of the 8-byte AMF0 number (bytes), in body
};
FileMetadata MetadataForFile(std::span<const uint8_t> published,
                             std::span<const amf0::Value::Property> extra = {});

// Stores `value` as an AMF0 number's 8 bytes (a big-endian IEEE 754 double) at `at`.
// REQUIRES: at.size() >= 8.
void PatchNumber(std::span<uint8_t> at, double value);

}  // namespace uringest::media

#endif  // URINGEST_MEDIA_SCRIPT_DATA_H_
