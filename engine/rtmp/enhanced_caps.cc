#include "engine/rtmp/enhanced_caps.h"

#include <span>
#include <utility>

#include "media/media_tag.h"

namespace uringest::rtmp {
namespace {

using media::amf0::Value;

constexpr std::string_view kVideoFourCcs[] = {"av01", "vp09", "vp08", "hvc1", "avc1", "vvc1"};
constexpr std::string_view kAudioFourCcs[] = {"Opus", "fLaC", "ac-3", "ec-3", ".mp3", "mp4a"};
constexpr std::string_view kAnyFourCc = "*";

bool IsFourCcString(std::string_view s) { return s.size() == 4 || s == kAnyFourCc; }

void AddFourCc(std::string_view s, std::vector<std::string>* out) {
  if (IsFourCcString(s) && out->size() < EnhancedCaps::kMaxEnhancedFourCcs) out->emplace_back(s);
}

// CanForward for each FourCC uringest knows, each the client named, and "*".
Value FourCcInfoMap(std::span<const std::string_view> known,
                    const std::vector<std::string>& client) {
  std::vector<Value::Property> map;
  auto add = [&](std::string_view fourcc) {
    for (const Value::Property& p : map) {
      if (p.first == fourcc) return;
    }
    map.emplace_back(std::string(fourcc), Value::Number(kFourCcCanForward));
  };
  add(kAnyFourCc);
  for (std::string_view f : known) add(f);
  for (const std::string& f : client) add(f);
  return Value::Object(std::move(map));
}

}  // namespace

EnhancedCaps ReadEnhancedCaps(const Value& object) {
  EnhancedCaps caps;
  if (const Value* list = object.Find("fourCcList"); list != nullptr) {
    caps.present = true;
    if (list->type() == Value::Type::kStrictArray) {
      for (const Value& item : list->items()) {
        if (item.is_string()) AddFourCc(item.string(), &caps.fourcc_list);
      }
    }
  }
  auto read_map = [&](std::string_view key, std::vector<std::string>* out) {
    const Value* map = object.Find(key);
    if (map == nullptr) return;
    caps.present = true;
    if (!map->has_properties()) return;
    for (const Value::Property& p : map->properties()) AddFourCc(p.first, out);
  };
  read_map("videoFourCcInfoMap", &caps.video_fourccs);
  read_map("audioFourCcInfoMap", &caps.audio_fourccs);
  if (const Value* ex = object.Find("capsEx"); ex != nullptr) {
    caps.present = true;
    if (ex->is_number() && ex->number() >= 0 && ex->number() < 4294967296.0) {
      caps.caps_ex = uint32_t(ex->number());
    }
  }
  return caps;
}

// The properties a server answering an Enhanced RTMP connect adds to its _result.
void EncodeEnhancedCaps(const EnhancedCaps& client, std::vector<uint8_t>* out) {
  std::vector<Value> list;
  for (const std::string& f : client.fourcc_list) list.push_back(Value::String(f));
  if (!client.fourcc_list.empty()) {
    media::amf0::EncodeProperty("fourCcList", Value::StrictArray(std::move(list)), out);
  }
  media::amf0::EncodeProperty("videoFourCcInfoMap",
                              FourCcInfoMap(kVideoFourCcs, client.video_fourccs), out);
  media::amf0::EncodeProperty("audioFourCcInfoMap",
                              FourCcInfoMap(kAudioFourCcs, client.audio_fourccs), out);
  media::amf0::EncodeProperty("capsEx",
                              Value::Number(kCapsExReconnect | kCapsExMultitrack | kCapsExModEx |
                                            kCapsExTimestampNanoOffset),
                              out);
}

void EncodeEnhancedConnect(const EnhancedCaps& caps, std::vector<uint8_t>* out) {
  std::vector<Value> list;
  for (const std::string& f : caps.fourcc_list) list.push_back(Value::String(f));
  media::amf0::EncodeProperty("fourCcList", Value::StrictArray(std::move(list)), out);
  if (caps.caps_ex != 0) media::amf0::EncodeProperty("capsEx", Value::Number(caps.caps_ex), out);
}

}  // namespace uringest::rtmp
