// amf0_decoder.h: the AMF0 decoder (amf0.h has the values and the encoder).
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
// Thread safety: a Decoder is used by one thread at a time.

#ifndef URINGEST_MEDIA_AMF0_DECODER_H_
#define URINGEST_MEDIA_AMF0_DECODER_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "media/amf0.h"

namespace uringest::media::amf0 {

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

}  // namespace uringest::media::amf0

#endif  // URINGEST_MEDIA_AMF0_DECODER_H_
