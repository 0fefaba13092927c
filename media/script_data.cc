#include "media/script_data.h"

#include <algorithm>
#include <bit>
#include <string>

#include "absl/status/statusor.h"
#include "media/amf0.h"
#include "media/amf0_decoder.h"
#include "media/byte_order.h"

namespace uringest::media {
namespace {

constexpr std::string_view kSetDataFrameNoAt = "setDataFrame";  // some encoders' spelling

// A codec id is a number (7) or, from Enhanced RTMP encoders, a FourCC string ("hvc1").
uint32_t CodecId(const amf0::Value* v) {
  if (v == nullptr) return 0;
  if (v->is_number()) return v->number() > 0 && v->number() < 4e9 ? uint32_t(v->number()) : 0;
  if (v->is_string() && v->string().size() == 4) {
    return LoadU32(reinterpret_cast<const uint8_t*>(v->string().data()));  // as FourCc()
  }
  return 0;
}

}  // namespace

bool StartsWithAmf0String(std::span<const uint8_t> amf, std::string_view s) {
  return amf.size() >= 1 + 2 + s.size() && amf[0] == uint8_t(amf0::Marker::kString) &&
         LoadU16(amf.data() + 1) == s.size() &&
         std::string_view(reinterpret_cast<const char*>(amf.data() + 3), s.size()) == s;
}

std::span<const uint8_t> UnwrapSetDataFrame(std::span<const uint8_t> amf) {
  for (std::string_view prefix : {kSetDataFrame, kSetDataFrameNoAt}) {
    if (StartsWithAmf0String(amf, prefix)) return amf.subspan(1 + 2 + prefix.size());
  }
  return amf;
}

bool IsMetadataMessage(std::span<const uint8_t> amf) {
  return StartsWithAmf0String(amf, kSetDataFrame) || StartsWithAmf0String(amf, kSetDataFrameNoAt) ||
         IsOnMetaData(amf);
}

bool IsOnMetaData(std::span<const uint8_t> body) { return StartsWithAmf0String(body, kOnMetaData); }

StreamMetadata ParseOnMetaData(std::span<const uint8_t> body) {
  StreamMetadata out;
  // The name is checked before anything is decoded: other data messages (cue points,
  // captions) may be large and frequent.
  if (!IsOnMetaData(body)) return out;
  amf0::Decoder decoder(body);
  absl::StatusOr<amf0::Value> name = decoder.Next();
  absl::StatusOr<amf0::Value> meta = decoder.Next();
  if (!name.ok() || !meta.ok() || !meta->has_properties()) return out;
  auto read = [&](std::string_view key, double scale = 1) -> uint32_t {
    const amf0::Value* v = meta->Find(key);
    const bool usable = v != nullptr && v->is_number() && v->number() > 0;
    return usable && v->number() < 4e9 / scale ? uint32_t(v->number() * scale) : 0;
  };
  out.width = read("width");
  out.height = read("height");
  out.frame_rate_milli = read("framerate", 1000);
  out.audio_sample_rate = read("audiosamplerate");
  out.video_bitrate_kbps = read("videodatarate");
  out.audio_bitrate_kbps = read("audiodatarate");
  out.audio_channels = read("audiochannels");
  if (const amf0::Value* stereo = meta->Find("stereo");
      stereo != nullptr && stereo->type() == amf0::Value::Type::kBoolean) {
    out.audio_channels = stereo->boolean() ? 2 : 1;
  }
  out.video_codec = CodecId(meta->Find("videocodecid"));
  out.audio_codec = CodecId(meta->Find("audiocodecid"));
  return out;
}

FileMetadata MetadataForFile(std::span<const uint8_t> published,
                             std::span<const amf0::Value::Property> extra) {
  auto replaced = [&](const std::string& key) {
    if (key == "duration" || key == "filesize") return true;
    return std::any_of(extra.begin(), extra.end(),
                       [&](const amf0::Value::Property& p) { return p.first == key; });
  };
  std::vector<amf0::Value::Property> kept;
  if (IsOnMetaData(published)) {
    amf0::Decoder decoder(published);
    absl::StatusOr<amf0::Value> name = decoder.Next();
    absl::StatusOr<amf0::Value> meta = decoder.Next();
    if (name.ok() && meta.ok() && meta->has_properties()) {
      for (const amf0::Value::Property& p : meta->properties()) {
        if (!replaced(p.first)) kept.push_back(p);
      }
    }
  }
  FileMetadata file;
  std::vector<uint8_t>& out = file.body;
  amf0::EncodeString(kOnMetaData, &out);
  out.push_back(uint8_t(amf0::Marker::kEcmaArray));
  kept.insert(kept.end(), extra.begin(), extra.end());
  AppendU32(&out, uint32_t(kept.size() + 2));  // the count, which readers take as a hint
  amf0::EncodeProperty("duration", amf0::Value::Number(0), &out);
  file.duration_offset = out.size() - 8;
  amf0::EncodeProperty("filesize", amf0::Value::Number(0), &out);
  file.filesize_offset = out.size() - 8;
  for (const amf0::Value::Property& p : kept) amf0::EncodeProperty(p.first, p.second, &out);
  amf0::EncodeObjectEnd(&out);
  return file;
}

void PatchNumber(std::span<uint8_t> at, double value) {
  const uint64_t bits = std::bit_cast<uint64_t>(value);
  StoreU32(at.data(), uint32_t(bits >> 32));
  StoreU32(at.data() + 4, uint32_t(bits));
}

}  // namespace uringest::media
