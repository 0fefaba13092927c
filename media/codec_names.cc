#include "media/codec_names.h"

#include "absl/strings/str_cat.h"
#include "media/media_tag.h"

namespace uringest::media {
namespace {

struct Name {
  uint32_t id;
  const char* name;
};

// FLV VideoCodec ids, plus the ids some encoders use for HEVC (12) and AV1 (13) before
// Enhanced RTMP, then the Enhanced RTMP FourCCs.
constexpr Name kVideoCodecs[] = {
    {2, "Sorenson H.263"},
    {3, "Screen video"},
    {4, "VP6"},
    {5, "VP6 alpha"},
    {6, "Screen video 2"},
    {7, "H.264"},
    {12, "HEVC"},
    {13, "AV1"},
    {media::kFourCcAvc, "H.264"},
    {media::kFourCcHevc, "HEVC"},
    {media::kFourCcVvc, "VVC"},
    {media::kFourCcAv1, "AV1"},
    {media::kFourCcVp9, "VP9"},
    {media::kFourCcVp8, "VP8"},
};

// FLV SoundFormat values, then the Enhanced RTMP FourCCs.
constexpr Name kAudioCodecs[] = {
    {0, "PCM"},
    {1, "ADPCM"},
    {2, "MP3"},
    {3, "PCM LE"},
    {4, "Nellymoser 16k"},
    {5, "Nellymoser 8k"},
    {6, "Nellymoser"},
    {7, "G.711 A-law"},
    {8, "G.711 mu-law"},
    {10, "AAC"},
    {11, "Speex"},
    {14, "MP3 8k"},
    {15, "device-specific"},
    {media::kFourCcAac, "AAC"},
    {media::kFourCcOpus, "Opus"},
    {media::kFourCcFlac, "FLAC"},
    {media::kFourCcAc3, "AC-3"},
    {media::kFourCcEac3, "E-AC-3"},
    {media::kFourCcMp3, "MP3"},
};

// A FourCC is four printable ASCII bytes; small numbers are FLV ids.
bool IsFourCc(uint32_t id) {
  for (int shift = 0; shift < 32; shift += 8) {
    const uint32_t c = (id >> shift) & 0xFF;
    if (c < 0x20 || c > 0x7E) return false;
  }
  return true;
}

template <size_t N>
std::string Lookup(const Name (&names)[N], uint32_t id, bool zero_is_unknown) {
  if (id == 0 && zero_is_unknown) return "";
  for (const Name& n : names) {
    if (n.id == id) return n.name;
  }
  if (IsFourCc(id)) {
    return std::string{char(id >> 24), char(id >> 16), char(id >> 8), char(id)};
  }
  return absl::StrCat("codec ", id);
}

}  // namespace

std::string VideoCodecName(uint32_t codec) { return Lookup(kVideoCodecs, codec, true); }

// SoundFormat 0 is linear PCM, but the directory uses 0 for "not known yet"; an encoder
// that sends raw PCM is rare enough to be shown as unknown.
std::string AudioCodecName(uint32_t codec) { return Lookup(kAudioCodecs, codec, true); }

}  // namespace uringest::media
