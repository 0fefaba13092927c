// amf0_fuzz: the AMF0 decoder and encoder (media/amf0.h). The first byte picks the
// decoder's nesting limit (most inputs use the default of 32); the rest is AMF0.
//
// For every value the decoder returns: encoding it and decoding the encoding gives an
// equal value, the encoding is a fixed point (encode(decode(encode(v))) == encode(v)),
// and the value nests no deeper than the limit. Whatever the input, the decoder either
// consumes it value by value, ending exactly at its end, or fails with InvalidArgument
// and a reason; DecodeAll() agrees with Next() called in a loop.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz/fuzz_util.h"
#include "media/amf0.h"
#include "media/amf0_decoder.h"

namespace uringest::fuzz {
namespace {

using media::amf0::Value;

// Nesting levels of objects and arrays in `v` (a scalar is 0).
int Depth(const Value& v) {
  int inner = 0;
  if (v.has_properties()) {
    for (const auto& [key, value] : v.properties()) inner = std::max(inner, Depth(value));
    return inner + 1;
  }
  if (v.type() == Value::Type::kStrictArray) {
    for (const Value& item : v.items()) inner = std::max(inner, Depth(item));
    return inner + 1;
  }
  return 0;
}

void CheckRoundTrip(const Value& value, int max_depth) {
  FUZZ_CHECK(Depth(value) <= max_depth, "value nests %d deep, limit %d", Depth(value), max_depth);
  std::vector<uint8_t> encoded;
  media::amf0::Encode(value, &encoded);
  absl::StatusOr<std::vector<Value>> again = media::amf0::DecodeAll(encoded);
  FUZZ_CHECK(again.ok(), "the encoding of a decoded value does not decode: %s",
             again.status().ToString().c_str());
  FUZZ_CHECK(again->size() == 1 && (*again)[0] == value, "round trip changed the value");
  std::vector<uint8_t> reencoded;
  media::amf0::Encode((*again)[0], &reencoded);
  FUZZ_CHECK(reencoded == encoded, "the encoding is not a fixed point (%zu vs %zu bytes)",
             encoded.size(), reencoded.size());
}

}  // namespace
}  // namespace uringest::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace uringest;
  using namespace uringest::fuzz;
  if (size == 0) return 0;
  media::amf0::DecodeLimits limits;
  if (data[0] < 16) limits.max_depth = data[0];
  const std::span<const uint8_t> amf(data + 1, size - 1);

  media::amf0::Decoder decoder(amf, limits);
  std::vector<Value> values;
  absl::Status status;
  while (!decoder.done()) {
    const size_t before = decoder.position();
    absl::StatusOr<Value> value = decoder.Next();
    if (!value.ok()) {
      status = value.status();
      FUZZ_CHECK(status.code() == absl::StatusCode::kInvalidArgument && !status.message().empty(),
                 "unexpected error %s", status.ToString().c_str());
      FUZZ_CHECK(!decoder.Next().ok(), "the decoder went on after an error");
      break;
    }
    FUZZ_CHECK(decoder.position() > before && decoder.position() <= amf.size(),
               "position %zu after %zu, input %zu", decoder.position(), before, amf.size());
    CheckRoundTrip(*value, limits.max_depth);
    values.push_back(*std::move(value));
  }
  absl::StatusOr<std::vector<Value>> all = media::amf0::DecodeAll(amf, limits);
  FUZZ_CHECK(all.ok() == status.ok(), "DecodeAll and Next disagree");
  if (all.ok()) FUZZ_CHECK(*all == values, "DecodeAll and Next decode differently");
  return 0;
}
