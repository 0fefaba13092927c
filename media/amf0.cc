// amf0.cc: the AMF0 values and encoder declared in amf0.h (the decoder: amf0_decoder.cc).

#include "media/amf0.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cmath>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "media/byte_order.h"

namespace uringest::media::amf0 {
namespace {

uint8_t ToByte(Marker marker) { return static_cast<uint8_t>(marker); }

void AppendDouble(std::vector<uint8_t>* out, double n) {
  uint64_t bits = std::bit_cast<uint64_t>(n);
  AppendU32(out, uint32_t(bits >> 32));
  AppendU32(out, uint32_t(bits));
}

// A key or class name: a string without marker. REQUIRES: s.size() <= 65535; longer ones
// are cut there in release builds so that the output stays well-formed.
void AppendShortString(std::vector<uint8_t>* out, std::string_view s) {
  assert(s.size() <= kMaxShortString);
  s = s.substr(0, kMaxShortString);
  AppendU16(out, uint16_t(s.size()));
  AppendBytes(out, s);
}

void AppendProperties(std::vector<uint8_t>* out, const std::vector<Value::Property>& properties) {
  for (const auto& [key, value] : properties) EncodeProperty(key, value, out);
  EncodeObjectEnd(out);
}

// NaN equals NaN, so that a decoded NaN compares equal to itself after a round trip.
bool SameNumber(double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); }

}  // namespace

// ---- Value ----

Value Value::Number(double n) {
  Value v;
  v.type_ = Type::kNumber;
  v.number_ = n;
  return v;
}

Value Value::Boolean(bool b) {
  Value v;
  v.type_ = Type::kBoolean;
  v.boolean_ = b;
  return v;
}

Value Value::String(std::string s) {
  Value v;
  v.type_ = Type::kString;
  v.string_ = std::move(s);
  return v;
}

Value Value::Null() {
  Value v;
  v.type_ = Type::kNull;
  return v;
}

Value Value::Undefined() { return Value(); }

Value Value::Object(std::vector<Property> properties) {
  Value v;
  v.type_ = Type::kObject;
  v.properties_ = std::move(properties);
  return v;
}

Value Value::EcmaArray(std::vector<Property> properties) {
  Value v;
  v.type_ = Type::kEcmaArray;
  v.properties_ = std::move(properties);
  return v;
}

Value Value::StrictArray(std::vector<Value> items) {
  Value v;
  v.type_ = Type::kStrictArray;
  v.items_ = std::move(items);
  return v;
}

Value Value::Date(double ms, int16_t time_zone) {
  Value v;
  v.type_ = Type::kDate;
  v.number_ = ms;
  v.time_zone_ = time_zone;
  return v;
}

Value Value::XmlDocument(std::string xml) {
  Value v;
  v.type_ = Type::kXmlDocument;
  v.string_ = std::move(xml);
  return v;
}

Value Value::TypedObject(std::string class_name, std::vector<Property> properties) {
  Value v;
  v.type_ = Type::kTypedObject;
  v.string_ = std::move(class_name);
  v.properties_ = std::move(properties);
  return v;
}

Value Value::Unsupported() {
  Value v;
  v.type_ = Type::kUnsupported;
  return v;
}

bool Value::has_properties() const {
  return type_ == Type::kObject || type_ == Type::kEcmaArray || type_ == Type::kTypedObject;
}

double Value::number() const {
  assert(type_ == Type::kNumber || type_ == Type::kDate);
  return number_;
}

bool Value::boolean() const {
  assert(type_ == Type::kBoolean);
  return boolean_;
}

const std::string& Value::string() const {
  assert(type_ == Type::kString || type_ == Type::kXmlDocument);
  return string_;
}

const std::string& Value::class_name() const {
  assert(type_ == Type::kTypedObject);
  return string_;
}

int16_t Value::time_zone() const {
  assert(type_ == Type::kDate);
  return time_zone_;
}

const std::vector<Value::Property>& Value::properties() const {
  assert(has_properties());
  return properties_;
}

const std::vector<Value>& Value::items() const {
  assert(type_ == Type::kStrictArray);
  return items_;
}

const Value* Value::Find(std::string_view key) const {
  if (!has_properties()) return nullptr;
  for (const auto& [name, value] : properties_) {
    if (name == key) return &value;
  }
  return nullptr;
}

std::string_view Value::FindString(std::string_view key, std::string_view fallback) const {
  const Value* value = Find(key);
  return value != nullptr && value->is_string() ? std::string_view(value->string_) : fallback;
}

double Value::FindNumber(std::string_view key, double fallback) const {
  const Value* value = Find(key);
  return value != nullptr && value->is_number() ? value->number_ : fallback;
}

bool Value::operator==(const Value& other) const {
  if (type_ != other.type_) return false;
  switch (type_) {
    case Type::kNumber:
      return SameNumber(number_, other.number_);
    case Type::kBoolean:
      return boolean_ == other.boolean_;
    case Type::kString:
    case Type::kXmlDocument:
      return string_ == other.string_;
    case Type::kObject:
    case Type::kEcmaArray:
      return properties_ == other.properties_;
    case Type::kTypedObject:
      return string_ == other.string_ && properties_ == other.properties_;
    case Type::kStrictArray:
      return items_ == other.items_;
    case Type::kDate:
      return SameNumber(number_, other.number_) && time_zone_ == other.time_zone_;
    case Type::kNull:
    case Type::kUndefined:
    case Type::kUnsupported:
      return true;
  }
  return false;
}

// ---- Encoding ----

void Encode(const Value& value, std::vector<uint8_t>* out) {
  switch (value.type()) {
    case Value::Type::kNumber:
      return EncodeNumber(value.number(), out);
    case Value::Type::kBoolean:
      return EncodeBoolean(value.boolean(), out);
    case Value::Type::kString:
      return EncodeString(value.string(), out);
    case Value::Type::kObject:
      EncodeObjectStart(out);
      return AppendProperties(out, value.properties());
    case Value::Type::kNull:
      return EncodeNull(out);
    case Value::Type::kUndefined:
      return AppendU8(out, ToByte(Marker::kUndefined));
    case Value::Type::kEcmaArray:
      AppendU8(out, ToByte(Marker::kEcmaArray));
      AppendU32(out, uint32_t(value.properties().size()));
      return AppendProperties(out, value.properties());
    case Value::Type::kStrictArray:
      AppendU8(out, ToByte(Marker::kStrictArray));
      AppendU32(out, uint32_t(value.items().size()));
      for (const Value& item : value.items()) Encode(item, out);
      return;
    case Value::Type::kDate:
      AppendU8(out, ToByte(Marker::kDate));
      AppendDouble(out, value.number());
      return AppendU16(out, uint16_t(value.time_zone()));
    case Value::Type::kXmlDocument:
      assert(value.string().size() <= std::numeric_limits<uint32_t>::max());
      AppendU8(out, ToByte(Marker::kXmlDocument));
      AppendU32(out, uint32_t(value.string().size()));
      return AppendBytes(out, value.string());
    case Value::Type::kTypedObject:
      AppendU8(out, ToByte(Marker::kTypedObject));
      AppendShortString(out, value.class_name());
      return AppendProperties(out, value.properties());
    case Value::Type::kUnsupported:
      return AppendU8(out, ToByte(Marker::kUnsupported));
  }
}

void EncodeNumber(double n, std::vector<uint8_t>* out) {
  AppendU8(out, ToByte(Marker::kNumber));
  AppendDouble(out, n);
}

void EncodeBoolean(bool b, std::vector<uint8_t>* out) {
  AppendU8(out, ToByte(Marker::kBoolean));
  AppendU8(out, b ? 1 : 0);
}

void EncodeString(std::string_view s, std::vector<uint8_t>* out) {
  if (s.size() <= kMaxShortString) {
    AppendU8(out, ToByte(Marker::kString));
    AppendShortString(out, s);
    return;
  }
  assert(s.size() <= std::numeric_limits<uint32_t>::max());
  AppendU8(out, ToByte(Marker::kLongString));
  AppendU32(out, uint32_t(s.size()));
  AppendBytes(out, s);
}

void EncodeNull(std::vector<uint8_t>* out) { AppendU8(out, ToByte(Marker::kNull)); }

void EncodeObjectStart(std::vector<uint8_t>* out) { AppendU8(out, ToByte(Marker::kObject)); }

void EncodeProperty(std::string_view key, const Value& value, std::vector<uint8_t>* out) {
  AppendShortString(out, key);
  Encode(value, out);
}

void EncodeObjectEnd(std::vector<uint8_t>* out) { AppendBytes(out, kObjectEnd); }

}  // namespace uringest::media::amf0
