// codec_names.h: human names of the codec ids the stream directory stores: an FLV
// CodecID / SoundFormat (FLV spec E.4.2.1, E.4.3.1) or an Enhanced RTMP FourCC.
//
//   VideoCodecName(7)                    // "H.264"
//   VideoCodecName(FourCc("hvc1"))       // "HEVC"
//   AudioCodecName(10)                   // "AAC"
//   VideoCodecName(0)                    // "" (unknown)

#ifndef URINGEST_MEDIA_CODEC_NAMES_H_
#define URINGEST_MEDIA_CODEC_NAMES_H_

#include <cstdint>
#include <string>

namespace uringest::media {

// "" for 0; a FourCC nobody named is shown as its four characters ("xyz1"); any other
// unknown id as "codec N".
std::string VideoCodecName(uint32_t codec);
std::string AudioCodecName(uint32_t codec);

}  // namespace uringest::media

#endif  // URINGEST_MEDIA_CODEC_NAMES_H_
