// amf0_decoder.cc: the AMF0 decoder declared in amf0_decoder.h.
//
// The decoder is a recursive descent whose native recursion is bounded by
// DecodeLimits::max_depth: a container is refused before it is entered when it would nest
// too deep. References (marker 0x07) are resolved by decoding the referenced value's bytes
// a second time, so the reference table holds offsets and sizes, never copies; what a copy
// costs (values, nesting levels, string bytes) is known from the first decoding and is
// charged before the copy is made.

#include "media/amf0_decoder.h"

#include <algorithm>
#include <bit>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "media/byte_order.h"

namespace uringest::media::amf0 {
namespace {

// A strict array's count is bounded by the bytes left; this bounds its up-front allocation.
constexpr size_t kMaxItemsReserved = 64;

double LoadDouble(const uint8_t* p) {
  return std::bit_cast<double>(uint64_t{LoadU32(p)} << 32 | LoadU32(p + 4));
}

template <typename... Args>
absl::Status Invalid(const absl::FormatSpec<Args...>& format, const Args&... args) {
  return absl::InvalidArgumentError(absl::StrFormat(format, args...));
}

}  // namespace

Decoder::Decoder(std::span<const uint8_t> data, DecodeLimits limits)
    : data_(data), limits_(limits) {}

absl::StatusOr<Value> Decoder::Next() {
  if (failed_) return Invalid("amf0: the decoder failed earlier and is unusable");
  deepest_ = 0;
  absl::StatusOr<Value> value = ReadValue(0);
  if (!value.ok()) failed_ = true;
  return value;
}

absl::StatusOr<Value> Decoder::ReadValue(int depth) {
  size_t offset = position_;
  if (remaining() == 0) return Invalid("amf0: value expected at offset %d, input ends", offset);
  uint8_t byte = data_[position_++];
  Marker marker = static_cast<Marker>(byte);
  switch (marker) {
    case Marker::kNumber:
    case Marker::kBoolean:
    case Marker::kString:
    case Marker::kNull:
    case Marker::kUndefined:
    case Marker::kDate:
    case Marker::kLongString:
    case Marker::kUnsupported:
    case Marker::kXmlDocument: {
      absl::Status counted = CountValue(offset);
      if (!counted.ok()) return counted;
      return ReadScalar(marker, offset);
    }
    case Marker::kObject:
    case Marker::kEcmaArray:
    case Marker::kStrictArray:
    case Marker::kTypedObject:
      return ReadComplex(marker, offset, depth);
    case Marker::kReference:
      return ReadReference(offset, depth);
    case Marker::kObjectEnd:
      return Invalid("amf0: object end marker at offset %d where a value was expected", offset);
    case Marker::kMovieClip:
    case Marker::kRecordSet:
      return Invalid("amf0: marker 0x%02x at offset %d is reserved and not supported", byte,
                     offset);
    case Marker::kAvmPlusObject:
      return Invalid("amf0: AVM+ marker 0x11 at offset %d switches to AMF3, not supported", offset);
  }
  return Invalid("amf0: unknown marker 0x%02x at offset %d", byte, offset);
}

absl::StatusOr<Value> Decoder::ReadScalar(Marker marker, size_t offset) {
  switch (marker) {
    case Marker::kNumber: {
      absl::Status status = Require("number", offset, kNumberSize);
      if (!status.ok()) return status;
      double n = LoadDouble(&data_[position_]);
      position_ += kNumberSize;
      return Value::Number(n);
    }
    case Marker::kBoolean: {
      absl::Status status = Require("boolean", offset, 1);
      if (!status.ok()) return status;
      return Value::Boolean(data_[position_++] != 0);  // any non-zero byte, as Flash reads it
    }
    case Marker::kDate: {
      absl::Status status = Require("date", offset, kDateSize);
      if (!status.ok()) return status;
      double ms = LoadDouble(&data_[position_]);
      int16_t time_zone = static_cast<int16_t>(LoadU16(&data_[position_ + kNumberSize]));
      position_ += kDateSize;
      return Value::Date(ms, time_zone);
    }
    case Marker::kString:
    case Marker::kLongString:
    case Marker::kXmlDocument: {
      bool is_short = marker == Marker::kString;
      std::string_view what = is_short                        ? "string"
                              : marker == Marker::kLongString ? "long string"
                                                              : "XML document";
      absl::StatusOr<std::string> s =
          ReadString(what, offset, is_short ? kShortLengthSize : kLongLengthSize);
      if (!s.ok()) return s.status();
      if (marker == Marker::kXmlDocument) return Value::XmlDocument(*std::move(s));
      return Value::String(*std::move(s));
    }
    case Marker::kNull:
      return Value::Null();
    case Marker::kUndefined:
      return Value::Undefined();
    case Marker::kUnsupported:
      return Value::Unsupported();
    default:
      break;
  }
  assert(false && "ReadScalar called with a complex marker");
  return Invalid("amf0: internal error at offset %d", offset);
}

// Registers the value in the reference table (unless replaying) and records, once it is
// complete, what a copy of it costs.
absl::StatusOr<Value> Decoder::ReadComplex(Marker marker, size_t offset, int depth) {
  if (replaying_ > 0) return ReadComplexBody(marker, offset, depth);
  size_t values_before = values_;
  size_t bytes_before = string_bytes_;
  absl::Status counted = CountValue(offset);
  if (!counted.ok()) return counted;
  if (depth >= limits_.max_depth) {
    return Invalid("amf0: value at offset %d nests deeper than the limit of %d", offset,
                   limits_.max_depth);
  }
  size_t index = slots_.size();
  slots_.push_back(Slot{.offset = offset});
  int outer_deepest = deepest_;
  deepest_ = depth + 1;
  absl::StatusOr<Value> value = ReadComplexBody(marker, offset, depth);
  if (value.ok()) {
    Slot& slot = slots_[index];
    slot.values = values_ - values_before;
    slot.bytes = string_bytes_ - bytes_before;
    slot.height = deepest_ - depth;
    slot.complete = true;
  }
  deepest_ = std::max(outer_deepest, deepest_);
  return value;
}

absl::StatusOr<Value> Decoder::ReadComplexBody(Marker marker, size_t offset, int depth) {
  std::vector<Value::Property> properties;
  if (marker == Marker::kObject) {
    absl::Status status = ReadProperties("object", offset, depth + 1, &properties);
    if (!status.ok()) return status;
    return Value::Object(std::move(properties));
  }
  if (marker == Marker::kEcmaArray) {
    // The count is only a hint: Flash reads properties up to the object end, and so do we.
    absl::Status status = Require("ECMA array", offset, kArrayCountSize);
    if (!status.ok()) return status;
    position_ += kArrayCountSize;
    status = ReadProperties("ECMA array", offset, depth + 1, &properties);
    if (!status.ok()) return status;
    return Value::EcmaArray(std::move(properties));
  }
  if (marker == Marker::kTypedObject) {
    absl::StatusOr<std::string> class_name =
        ReadString("typed object class name", offset, kShortLengthSize);
    if (!class_name.ok()) return class_name.status();
    absl::Status status = ReadProperties("typed object", offset, depth + 1, &properties);
    if (!status.ok()) return status;
    return Value::TypedObject(*std::move(class_name), std::move(properties));
  }
  assert(marker == Marker::kStrictArray);
  return ReadStrictArray(offset, depth);
}

// The count is real, unlike an ECMA array's, but is checked against the bytes left (each
// item takes at least one) before anything is allocated.
absl::StatusOr<Value> Decoder::ReadStrictArray(size_t offset, int depth) {
  absl::Status status = Require("strict array", offset, kArrayCountSize);
  if (!status.ok()) return status;
  size_t count = LoadU32(&data_[position_]);
  position_ += kArrayCountSize;
  if (count > remaining()) {
    return Invalid("amf0: strict array at offset %d claims %d items, %d bytes remain", offset,
                   count, remaining());
  }
  std::vector<Value> items;
  items.reserve(std::min(count, kMaxItemsReserved));
  for (size_t i = 0; i < count; ++i) {
    absl::StatusOr<Value> item = ReadValue(depth + 1);
    if (!item.ok()) return item.status();
    items.push_back(*std::move(item));
  }
  return Value::StrictArray(std::move(items));
}

// Properties up to and including the object end (0x00 0x00 0x09). An empty key that is
// not followed by the object-end marker is an ordinary property named "".
absl::Status Decoder::ReadProperties(std::string_view what, size_t offset, int depth,
                                     std::vector<Value::Property>* properties) {
  for (;;) {
    size_t key_offset = position_;
    if (remaining() >= sizeof(kObjectEnd) &&
        std::equal(std::begin(kObjectEnd), std::end(kObjectEnd), &data_[position_])) {
      position_ += sizeof(kObjectEnd);
      return absl::OkStatus();
    }
    if (remaining() < kShortLengthSize) {
      return Invalid("amf0: %s at offset %d has no object end: input ends at offset %d", what,
                     offset, data_.size());
    }
    absl::StatusOr<std::string> key = ReadString("property key", key_offset, kShortLengthSize);
    if (!key.ok()) return key.status();
    if (remaining() == 0) {
      return Invalid("amf0: %s at offset %d has no object end: input ends after key at %d", what,
                     offset, key_offset);
    }
    absl::StatusOr<Value> value = ReadValue(depth);
    if (!value.ok()) return value.status();
    properties->emplace_back(*std::move(key), *std::move(value));
  }
}

// A string's bytes after its `length_size`-byte length; `offset` is where the string (or
// the value that holds it) starts, for the error message.
absl::StatusOr<std::string> Decoder::ReadString(std::string_view what, size_t offset,
                                                size_t length_size) {
  absl::Status status = Require(what, offset, length_size);
  if (!status.ok()) return status;
  const uint8_t* p = &data_[position_];
  size_t length = length_size == kShortLengthSize ? LoadU16(p) : LoadU32(p);
  position_ += length_size;
  if (length > remaining()) {
    return Invalid("amf0: %s at offset %d claims %d bytes, %d remain", what, offset, length,
                   remaining());
  }
  std::string s(reinterpret_cast<const char*>(data_.data() + position_), length);
  position_ += length;
  if (replaying_ == 0) string_bytes_ += length;
  return s;
}

// A reference is replaced by a copy of the complex value it names. The copy is charged in
// full (values, nesting, string bytes) before it is made, so chains of references cannot
// grow memory beyond the limits: values and nesting against DecodeLimits, and the string
// bytes that references copy, in all, against the size of the input.
absl::StatusOr<Value> Decoder::ReadReference(size_t offset, int depth) {
  absl::Status status = Require("reference", offset, kReferenceSize);
  if (!status.ok()) return status;
  size_t index = LoadU16(&data_[position_]);
  position_ += kReferenceSize;
  if (index >= slots_.size()) {
    return Invalid("amf0: reference at offset %d names complex value %d, but only %d precede it",
                   offset, index, slots_.size());
  }
  const Slot slot = slots_[index];
  if (!slot.complete) {
    return Invalid(
        "amf0: reference at offset %d names the value at offset %d, still being "
        "decoded (a cycle)",
        offset, slot.offset);
  }
  if (replaying_ == 0) {
    status = ChargeCopy(slot, offset, depth);
    if (!status.ok()) return status;
  }
  size_t resume = position_;
  position_ = slot.offset;
  ++replaying_;
  absl::StatusOr<Value> copy = ReadValue(depth);
  --replaying_;
  position_ = resume;
  return copy;
}

absl::Status Decoder::ChargeCopy(const Slot& slot, size_t offset, int depth) {
  if (slot.height > limits_.max_depth - depth) {
    return Invalid("amf0: reference at offset %d nests deeper than the limit of %d", offset,
                   limits_.max_depth);
  }
  if (slot.values > limits_.max_values - values_) {
    return Invalid("amf0: reference at offset %d copies %d values, beyond the limit of %d", offset,
                   slot.values, limits_.max_values);
  }
  if (slot.bytes > data_.size() - copied_bytes_) {
    return Invalid("amf0: reference at offset %d copies %d more string bytes than the input has",
                   offset, slot.bytes);
  }
  values_ += slot.values;
  string_bytes_ += slot.bytes;
  copied_bytes_ += slot.bytes;
  deepest_ = std::max(deepest_, depth + slot.height);
  return absl::OkStatus();
}

absl::Status Decoder::Require(std::string_view what, size_t offset, size_t bytes) const {
  if (remaining() >= bytes) return absl::OkStatus();
  return Invalid("amf0: %s at offset %d needs %d bytes at offset %d, %d remain", what, offset,
                 bytes, position_, remaining());
}

absl::Status Decoder::CountValue(size_t offset) {
  if (replaying_ > 0) return absl::OkStatus();
  if (values_ >= limits_.max_values) {
    return Invalid("amf0: value at offset %d exceeds the limit of %d values", offset,
                   limits_.max_values);
  }
  ++values_;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Value>> DecodeAll(std::span<const uint8_t> data, DecodeLimits limits) {
  Decoder decoder(data, limits);
  std::vector<Value> values;
  while (!decoder.done()) {
    absl::StatusOr<Value> value = decoder.Next();
    if (!value.ok()) return value.status();
    values.push_back(*std::move(value));
  }
  return values;
}

}  // namespace uringest::media::amf0
