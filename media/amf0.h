// amf0.h: Action Message Format 0 (Adobe "AMF0 File Format Specification"), the
// encoding of RTMP commands (message type 20, and 17 after its format byte) and of
// data messages such as @setDataFrame/onMetaData (type 18).
//
// This header: the values, the format's constants and the encoder; amf0_decoder.h: the
// bounded decoder.
//
//   std::vector<uint8_t> out;
//   amf0::EncodeString("_result", &out);
//   amf0::EncodeNumber(1, &out);
//   amf0::Encode(amf0::Value::Object({{"fmsVer", amf0::Value::String("FMS/3,0,1,123")}}),
//                &out);

#ifndef URINGEST_MEDIA_AMF0_H_
#define URINGEST_MEDIA_AMF0_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace uringest::media::amf0 {

// Type markers (AMF0 spec 2.1).
enum class Marker : uint8_t {
  kNumber = 0x00,
  kBoolean = 0x01,
  kString = 0x02,
  kObject = 0x03,
  kMovieClip = 0x04,  // reserved, not supported
  kNull = 0x05,
  kUndefined = 0x06,
  kReference = 0x07,
  kEcmaArray = 0x08,
  kObjectEnd = 0x09,
  kStrictArray = 0x0A,
  kDate = 0x0B,
  kLongString = 0x0C,
  kUnsupported = 0x0D,
  kRecordSet = 0x0E,  // reserved, not supported
  kXmlDocument = 0x0F,
  kTypedObject = 0x10,
  kAvmPlusObject = 0x11,  // switch to AMF3: not supported inside AMF0 commands
};

// Wire sizes (AMF0 spec 2.2-2.14), shared by the decoder and the encoder.
inline constexpr size_t kNumberSize = 8;                      // big-endian IEEE 754 double
inline constexpr size_t kDateSize = kNumberSize + 2;          // ms(double) + time zone(s16)
inline constexpr size_t kShortLengthSize = 2;                 // string, key, class name
inline constexpr size_t kLongLengthSize = 4;                  // long string, XML document
inline constexpr size_t kArrayCountSize = 4;                  // ECMA and strict arrays
inline constexpr size_t kReferenceSize = 2;                   // index into the reference table
inline constexpr size_t kMaxShortString = 0xFFFF;             // longer strings are long strings
inline constexpr uint8_t kObjectEnd[3] = {0x00, 0x00, 0x09};  // empty key + object-end marker

class Value {
 public:
  enum class Type {
    kNumber,
    kBoolean,
    kString,  // string and long string: Encode picks the marker by length
    kObject,
    kNull,
    kUndefined,
    kEcmaArray,
    kStrictArray,
    kDate,
    kXmlDocument,
    kTypedObject,
    kUnsupported,
  };
  using Property = std::pair<std::string, Value>;

  Value() = default;  // undefined
  static Value Number(double n);
  static Value Boolean(bool b);
  static Value String(std::string s);
  static Value Null();
  static Value Undefined();
  static Value Object(std::vector<Property> properties);
  static Value EcmaArray(std::vector<Property> properties);
  static Value StrictArray(std::vector<Value> items);
  // Milliseconds since the Unix epoch, and the time zone field (reserved, usually 0).
  static Value Date(double ms, int16_t time_zone = 0);
  static Value XmlDocument(std::string xml);
  static Value TypedObject(std::string class_name, std::vector<Property> properties);
  static Value Unsupported();

  Type type() const { return type_; }
  bool is_number() const { return type_ == Type::kNumber; }
  bool is_string() const { return type_ == Type::kString; }
  bool is_null() const { return type_ == Type::kNull; }
  // Object, ECMA array or typed object: the types that hold named properties.
  bool has_properties() const;

  // REQUIRES: the matching type (number also serves kDate).
  double number() const;
  bool boolean() const;
  // REQUIRES: kString or kXmlDocument.
  const std::string& string() const;
  // REQUIRES: kTypedObject.
  const std::string& class_name() const;
  int16_t time_zone() const;
  // REQUIRES: has_properties().
  const std::vector<Property>& properties() const;
  // REQUIRES: kStrictArray.
  const std::vector<Value>& items() const;

  // The first property named `key`, or nullptr (also when this has no properties). The
  // pointer is valid as long as this Value is alive and unmodified.
  const Value* Find(std::string_view key) const;
  // Convenience lookups: the property as a string or number, or the fallback when it is
  // missing or of another type.
  std::string_view FindString(std::string_view key, std::string_view fallback = {}) const;
  double FindNumber(std::string_view key, double fallback = 0) const;

  // Deep comparison: type, then contents, properties in order. Numbers and dates compare
  // by value, except that NaN equals NaN (so a decoded value equals its round trip).
  bool operator==(const Value& other) const;

 private:
  Type type_ = Type::kUndefined;
  bool boolean_ = false;
  int16_t time_zone_ = 0;
  double number_ = 0;
  std::string string_;  // string, XML document, or typed object class name
  std::vector<Property> properties_;
  std::vector<Value> items_;
};

// Encoders append to `out`. REQUIRES: keys and class names are at most 65535 bytes
// (release builds cut them there), and strings and XML documents fit in 2^32-1 bytes.
void Encode(const Value& value, std::vector<uint8_t>* out);
void EncodeNumber(double n, std::vector<uint8_t>* out);
void EncodeBoolean(bool b, std::vector<uint8_t>* out);
void EncodeString(std::string_view s, std::vector<uint8_t>* out);  // long string if > 65535
void EncodeNull(std::vector<uint8_t>* out);
// An object's properties are written one by one between these two.
void EncodeObjectStart(std::vector<uint8_t>* out);
void EncodeProperty(std::string_view key, const Value& value, std::vector<uint8_t>* out);
void EncodeObjectEnd(std::vector<uint8_t>* out);

}  // namespace uringest::media::amf0

#endif  // URINGEST_MEDIA_AMF0_H_
