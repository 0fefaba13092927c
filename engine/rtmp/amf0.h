// amf0.h: Action Message Format 0 (Adobe "AMF0 File Format Specification"), the
// encoding of RTMP commands (message type 20, and 17 after its format byte) and of
// data messages such as @setDataFrame/onMetaData (type 18).
//
// Decoding is bounded: nesting depth, the number of values, and every length are checked
// against the input and DecodeLimits, so hostile input yields an error Status, never a
// crash, and costs memory in proportion to the bytes that arrived.
//
//   amf0::Decoder decoder(payload);
//   absl::StatusOr<amf0::Value> name = decoder.Next();        // "connect"
//   absl::StatusOr<amf0::Value> transaction = decoder.Next(); // 1
//   absl::StatusOr<amf0::Value> object = decoder.Next();      // {app: "live", ...}
//   const amf0::Value* app = object->Find("app");
//
//   std::vector<uint8_t> out;
//   amf0::EncodeString("_result", &out);
//   amf0::EncodeNumber(1, &out);
//   amf0::Encode(amf0::Value::Object({{"fmsVer", amf0::Value::String("FMS/3,0,1,123")}}),
//                &out);

#ifndef URINGEST_ENGINE_RTMP_AMF0_H_
#define URINGEST_ENGINE_RTMP_AMF0_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace uringest::rtmp::amf0 {

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

// Native recursion is bounded by max_depth, and decoded Values are never nested deeper, so
// destroying, comparing and encoding them is bounded too. A reference counts as the values
// and nesting levels of its copy; the string bytes that references copy are bounded, in
// all, by the size of the input.
struct DecodeLimits {
  int max_depth = 32;          // nesting of objects and arrays
  size_t max_values = 100000;  // values decoded by one Decoder, references included
};

// Decodes a sequence of AMF0 values from a byte span. The span must outlive the Decoder;
// returned Values own their data.
class Decoder {
 public:
  explicit Decoder(std::span<const uint8_t> data, DecodeLimits limits = {});
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  // Decodes the next value. An error (InvalidArgument with the offset and the reason)
  // leaves the Decoder unusable.
  absl::StatusOr<Value> Next();
  bool done() const { return position_ >= data_.size(); }
  size_t position() const { return position_; }

 private:
  // A complex value (object, ECMA array, strict array, typed object) that a kReference
  // may name, in the order its decoding started. A reference is resolved by decoding the
  // value's bytes again ("replaying" them), so the table costs no copies of its own.
  struct Slot {
    size_t offset = 0;  // of the value's marker
    size_t values = 0;  // values its copy holds, itself included
    size_t bytes = 0;   // string, key and class name bytes its copy holds
    int height = 0;     // nesting levels it spans, itself included
    bool complete = false;
  };

  // `depth` is the number of objects and arrays around the value being read.
  absl::StatusOr<Value> ReadValue(int depth);
  absl::StatusOr<Value> ReadScalar(Marker marker, size_t offset);
  absl::StatusOr<Value> ReadComplex(Marker marker, size_t offset, int depth);
  absl::StatusOr<Value> ReadComplexBody(Marker marker, size_t offset, int depth);
  absl::StatusOr<Value> ReadStrictArray(size_t offset, int depth);
  absl::StatusOr<Value> ReadReference(size_t offset, int depth);
  absl::Status ChargeCopy(const Slot& slot, size_t offset, int depth);
  absl::Status ReadProperties(std::string_view what, size_t offset, int depth,
                              std::vector<Value::Property>* properties);
  absl::StatusOr<std::string> ReadString(std::string_view what, size_t offset, size_t length_size);
  absl::Status Require(std::string_view what, size_t offset, size_t bytes) const;
  absl::Status CountValue(size_t offset);
  size_t remaining() const { return data_.size() - position_; }

  std::span<const uint8_t> data_;
  DecodeLimits limits_;
  size_t position_ = 0;
  size_t values_ = 0;        // values decoded, each reference counting its copy
  size_t string_bytes_ = 0;  // string bytes materialized, copies included
  size_t copied_bytes_ = 0;  // the part of string_bytes_ that references copied
  int deepest_ = 0;          // the deepest nesting level reached in the current value
  int replaying_ = 0;        // > 0 while a reference re-decodes its target
  bool failed_ = false;
  std::vector<Slot> slots_;  // for kReference
};

// Decodes every value in `data`.
absl::StatusOr<std::vector<Value>> DecodeAll(std::span<const uint8_t> data,
                                             DecodeLimits limits = {});

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

}  // namespace uringest::rtmp::amf0

#endif  // URINGEST_ENGINE_RTMP_AMF0_H_
