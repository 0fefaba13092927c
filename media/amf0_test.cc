#include "media/amf0.h"
#include "media/amf0_decoder.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "engine/rtmp/rtmp_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "media/byte_order.h"
#include "tests/rtmp_testing.h"

namespace uringest::media::amf0 {

// Failures print a Value as its encoding.
void PrintTo(const Value& value, std::ostream* os) {
  std::vector<uint8_t> bytes;
  Encode(value, &bytes);
  *os << "amf0[";
  for (uint8_t b : bytes) *os << absl::StrFormat(" %02x", b);
  *os << " ]";
}

namespace {

using ::testing::HasSubstr;

std::vector<uint8_t> Encoded(const Value& value) {
  std::vector<uint8_t> out;
  Encode(value, &out);
  return out;
}

std::vector<uint8_t> EncodedAll(const std::vector<Value>& values) {
  std::vector<uint8_t> out;
  for (const Value& value : values) Encode(value, &out);
  return out;
}

// Appends a u16 length and the bytes: a key, a class name, or a string after its marker.
void AppendShort(std::vector<uint8_t>* out, std::string_view s) {
  AppendU16(out, uint16_t(s.size()));
  AppendBytes(out, s);
}

void AppendMarker(std::vector<uint8_t>* out, Marker marker) {
  AppendU8(out, static_cast<uint8_t>(marker));
}

void AppendObjectEnd(std::vector<uint8_t>* out) {
  AppendBytes(out, std::string_view("\0\0\x09", 3));
}

void AppendReference(std::vector<uint8_t>* out, uint16_t index) {
  AppendMarker(out, Marker::kReference);
  AppendU16(out, index);
}

Value DecodeOne(const std::vector<uint8_t>& bytes, DecodeLimits limits = {}) {
  absl::StatusOr<std::vector<Value>> values = DecodeAll(bytes, limits);
  EXPECT_TRUE(values.ok()) << values.status();
  if (!values.ok() || values->size() != 1) {
    ADD_FAILURE() << "expected exactly one value";
    return Value();
  }
  return (*values)[0];
}

// The message of the error that decoding `bytes` must yield.
std::string DecodeError(const std::vector<uint8_t>& bytes, DecodeLimits limits = {}) {
  absl::StatusOr<std::vector<Value>> values = DecodeAll(bytes, limits);
  EXPECT_FALSE(values.ok()) << "decoded " << values->size() << " values";
  if (values.ok()) return "";
  EXPECT_EQ(values.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(values.status().message(), HasSubstr("amf0: "));
  return std::string(values.status().message());
}

void ExpectRoundTrip(const Value& value) {
  std::vector<uint8_t> bytes = Encoded(value);
  EXPECT_EQ(DecodeOne(bytes), value);
  EXPECT_EQ(Encoded(DecodeOne(bytes)), bytes);
}

// One value of every type the decoder accepts, except long strings (see
// LongStringTruncatedAnywhereIsAnError), inside one strict array.
Value EveryType() {
  return Value::StrictArray({
      Value::Number(-1.5),
      Value::Boolean(true),
      Value::String("héllo"),
      Value::Null(),
      Value::Undefined(),
      Value::Unsupported(),
      Value::Object({{"a", Value::Number(1)}, {"", Value::Null()}}),
      Value::EcmaArray({{"duration", Value::Number(2)}, {"encoder", Value::String("Lavf")}}),
      Value::StrictArray({}),
      Value::Date(1.7e12, -60),
      Value::XmlDocument("<a/>"),
      Value::TypedObject("flash.Point", {{"x", Value::Number(3)}, {"y", Value::Number(4)}}),
      Value::Object({{"nested", Value::StrictArray({Value::Object({})})}}),
  });
}

// The connect command that ffmpeg 5.1 (Lavf59.27.100) sends to publish to
// rtmp://127.0.0.1:19350/live/test: the 140-byte payload of the type 20 message in
// tests/data/ffmpeg_publish_chunk65536.rtmp (ConnectMatchesRecordedFfmpegSession).
std::vector<uint8_t> FfmpegConnect() {
  std::vector<uint8_t> b;
  AppendU8(&b, 0x02);          // string marker,
  AppendShort(&b, "connect");  // u16 length 7, then "connect"
  AppendU8(&b, 0x00);          // number marker: transaction id 1.0 as a big-endian double
  AppendBytes(&b, std::string_view("\x3f\xf0\0\0\0\0\0\0", 8));
  AppendU8(&b, 0x03);      // object marker: the command object; each property is a key (u16
  AppendShort(&b, "app");  // length + bytes) and a value with its own marker
  AppendU8(&b, 0x02);
  AppendShort(&b, "live");
  AppendShort(&b, "type");  // ffmpeg adds type=nonprivate when it publishes
  AppendU8(&b, 0x02);
  AppendShort(&b, "nonprivate");
  AppendShort(&b, "flashVer");
  AppendU8(&b, 0x02);
  AppendShort(&b, "FMLE/3.0 (compatible; Lavf59.27.100)");
  AppendShort(&b, "tcUrl");
  AppendU8(&b, 0x02);
  AppendShort(&b, "rtmp://127.0.0.1:19350/live");
  AppendU8(&b, 0x00);  // object end: an empty key (u16 0)
  AppendU8(&b, 0x00);
  AppendU8(&b, 0x09);  // and the object-end marker
  return b;
}

// The payload of the first message in a recorded session whose 12-byte fmt 0 chunk header
// is `header`, reassembled from chunks of `chunk_size` (each continuation chunk has a
// 1-byte fmt 3 header).
std::vector<uint8_t> RecordedPayload(std::string_view capture_name, std::vector<uint8_t> header,
                                     size_t length, size_t chunk_size) {
  std::vector<uint8_t> capture = uringest::testing::ReadTestData(capture_name);
  auto it = std::search(capture.begin(), capture.end(), header.begin(), header.end());
  EXPECT_NE(it, capture.end()) << "message header not found in " << capture_name;
  if (it == capture.end()) return {};
  size_t p = size_t(it - capture.begin()) + header.size();
  std::vector<uint8_t> payload;
  while (payload.size() < length && p < capture.size()) {
    if (payload.size() > 0 && payload.size() % chunk_size == 0) {
      EXPECT_EQ(capture[p], 0xC0 | (header[0] & 0x3F)) << "fmt 3 header expected";
      ++p;
    }
    payload.push_back(capture[p++]);
  }
  EXPECT_EQ(payload.size(), length);
  return payload;
}

// ---- Round trips of every type ----

TEST(Amf0Test, NumberIsBigEndianDouble) {
  std::vector<uint8_t> out;
  EncodeNumber(1.0, &out);
  EXPECT_EQ(out, (std::vector<uint8_t>{0x00, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0}));
}

TEST(Amf0Test, NumbersRoundTripIncludingSpecialValues) {
  for (double n :
       {0.0, -0.0, 1.0, -1.5, 1e300, 5e-324, std::numeric_limits<double>::infinity(),
        -std::numeric_limits<double>::infinity(), std::numeric_limits<double>::quiet_NaN()}) {
    ExpectRoundTrip(Value::Number(n));
  }
  EXPECT_TRUE(std::signbit(DecodeOne(Encoded(Value::Number(-0.0))).number()));
}

TEST(Amf0Test, BooleansRoundTrip) {
  ExpectRoundTrip(Value::Boolean(true));
  ExpectRoundTrip(Value::Boolean(false));
  EXPECT_EQ(Encoded(Value::Boolean(true)), (std::vector<uint8_t>{0x01, 0x01}));
}

TEST(Amf0Test, NonZeroBooleanByteIsTrue) {
  EXPECT_EQ(DecodeOne({0x01, 0x7F}), Value::Boolean(true));
  EXPECT_EQ(DecodeOne({0x01, 0x00}), Value::Boolean(false));
}

TEST(Amf0Test, StringsRoundTrip) {
  ExpectRoundTrip(Value::String(""));
  ExpectRoundTrip(Value::String("live"));
  ExpectRoundTrip(Value::String(std::string("a\0b", 3)));
  EXPECT_EQ(Encoded(Value::String("ab")), (std::vector<uint8_t>{0x02, 0x00, 0x02, 'a', 'b'}));
}

TEST(Amf0Test, StringOf65535BytesStaysShort) {
  std::vector<uint8_t> out = Encoded(Value::String(std::string(65535, 'x')));
  EXPECT_EQ(out[0], 0x02);
  EXPECT_EQ(out.size(), 1 + 2 + 65535u);
  ExpectRoundTrip(Value::String(std::string(65535, 'x')));
}

TEST(Amf0Test, StringOver65535BytesIsLongString) {
  std::string s(65536, 'y');
  std::vector<uint8_t> out;
  EncodeString(s, &out);
  EXPECT_EQ(std::vector<uint8_t>(out.begin(), out.begin() + 5),
            (std::vector<uint8_t>{0x0C, 0x00, 0x01, 0x00, 0x00}));
  EXPECT_EQ(out.size(), 1 + 4 + 65536u);
  EXPECT_EQ(Encoded(Value::String(s)), out);
  ExpectRoundTrip(Value::String(s));
}

TEST(Amf0Test, ShortLongStringDecodesToString) {
  // A long string marker for a short string is legal; it decodes to a plain string.
  EXPECT_EQ(DecodeOne({0x0C, 0, 0, 0, 2, 'h', 'i'}), Value::String("hi"));
}

TEST(Amf0Test, NullUndefinedAndUnsupportedRoundTrip) {
  ExpectRoundTrip(Value::Null());
  ExpectRoundTrip(Value::Undefined());
  ExpectRoundTrip(Value::Unsupported());
  EXPECT_EQ(Encoded(Value::Null()), std::vector<uint8_t>{0x05});
  EXPECT_EQ(Encoded(Value()), std::vector<uint8_t>{0x06});
  EXPECT_EQ(Encoded(Value::Unsupported()), std::vector<uint8_t>{0x0D});
}

TEST(Amf0Test, ObjectsRoundTrip) {
  ExpectRoundTrip(Value::Object({}));
  ExpectRoundTrip(Value::Object({{"a", Value::Number(1)}, {"b", Value::Object({})}}));
  EXPECT_EQ(Encoded(Value::Object({{"a", Value::Null()}})),
            (std::vector<uint8_t>{0x03, 0x00, 0x01, 'a', 0x05, 0x00, 0x00, 0x09}));
}

TEST(Amf0Test, ObjectKeepsPropertyOrderAndDuplicates) {
  Value object = Value::Object({{"k", Value::Number(2)}, {"a", Value::Null()}, {"k", Value()}});
  Value decoded = DecodeOne(Encoded(object));
  ASSERT_EQ(decoded.properties().size(), 3u);
  EXPECT_EQ(decoded.properties()[0].first, "k");
  EXPECT_EQ(decoded.FindNumber("k"), 2);  // the first one wins
}

TEST(Amf0Test, EcmaArrayCountIsNumberOfProperties) {
  Value array = Value::EcmaArray({{"x", Value::Number(1)}, {"y", Value::Boolean(false)}});
  std::vector<uint8_t> out = Encoded(array);
  EXPECT_EQ(std::vector<uint8_t>(out.begin(), out.begin() + 5),
            (std::vector<uint8_t>{0x08, 0, 0, 0, 2}));
  ExpectRoundTrip(array);
  ExpectRoundTrip(Value::EcmaArray({}));
}

TEST(Amf0Test, StrictArraysRoundTrip) {
  ExpectRoundTrip(Value::StrictArray({}));
  ExpectRoundTrip(
      Value::StrictArray({Value::Number(1), Value::String("two"), Value::StrictArray({})}));
  EXPECT_EQ(Encoded(Value::StrictArray({Value::Null()})),
            (std::vector<uint8_t>{0x0A, 0, 0, 0, 1, 0x05}));
}

TEST(Amf0Test, DateKeepsMillisecondsAndTimeZone) {
  Value date = Value::Date(1700000000123.0, -120);
  std::vector<uint8_t> out = Encoded(date);
  ASSERT_EQ(out.size(), 1 + 8 + 2u);
  EXPECT_EQ(out[0], 0x0B);
  EXPECT_EQ(out[9], 0xFF);  // -120 as a big-endian s16
  EXPECT_EQ(out[10], 0x88);
  Value decoded = DecodeOne(out);
  EXPECT_EQ(decoded.type(), Value::Type::kDate);
  EXPECT_EQ(decoded.number(), 1700000000123.0);
  EXPECT_EQ(decoded.time_zone(), -120);
  EXPECT_EQ(decoded, date);
  EXPECT_NE(decoded, Value::Date(1700000000123.0, 0));
  EXPECT_NE(decoded, Value::Number(1700000000123.0));
}

TEST(Amf0Test, XmlDocumentUsesLongStringLayout) {
  Value xml = Value::XmlDocument("<x/>");
  EXPECT_EQ(Encoded(xml), (std::vector<uint8_t>{0x0F, 0, 0, 0, 4, '<', 'x', '/', '>'}));
  ExpectRoundTrip(xml);
  EXPECT_EQ(DecodeOne(Encoded(xml)).string(), "<x/>");
  EXPECT_NE(xml, Value::String("<x/>"));
}

TEST(Amf0Test, TypedObjectKeepsClassNameAndProperties) {
  Value typed = Value::TypedObject("flex.Msg", {{"id", Value::Number(7)}});
  std::vector<uint8_t> expected = {0x10};
  AppendShort(&expected, "flex.Msg");
  AppendShort(&expected, "id");
  EncodeNumber(7, &expected);
  AppendObjectEnd(&expected);
  EXPECT_EQ(Encoded(typed), expected);
  Value decoded = DecodeOne(expected);
  EXPECT_EQ(decoded.type(), Value::Type::kTypedObject);
  EXPECT_EQ(decoded.class_name(), "flex.Msg");
  EXPECT_TRUE(decoded.has_properties());
  EXPECT_EQ(decoded.FindNumber("id"), 7);
  EXPECT_NE(decoded, Value::TypedObject("other", {{"id", Value::Number(7)}}));
  EXPECT_NE(decoded, Value::Object({{"id", Value::Number(7)}}));
}

TEST(Amf0Test, TypedObjectWithTruncatedClassNameIsAnError) {
  EXPECT_THAT(DecodeError({0x10, 0x00, 0x09, 'f', 'l'}),
              HasSubstr("class name at offset 0 claims 9 bytes, 2 remain"));
}

TEST(Amf0Test, EveryTypeRoundTripsByteForByte) { ExpectRoundTrip(EveryType()); }

TEST(Amf0Test, PropertyEncodersMatchEncodeOfObject) {
  std::vector<uint8_t> out;
  EncodeObjectStart(&out);
  EncodeProperty("level", Value::String("status"), &out);
  EncodeProperty("code", Value::String("NetStream.Publish.Start"), &out);
  EncodeObjectEnd(&out);
  EXPECT_EQ(out, Encoded(Value::Object({{"level", Value::String("status")},
                                        {"code", Value::String("NetStream.Publish.Start")}})));
}

// ---- Real commands ----

TEST(Amf0Test, FfmpegConnectDecodes) {
  std::vector<uint8_t> bytes = FfmpegConnect();
  ASSERT_EQ(bytes.size(), 140u);
  Decoder decoder(bytes);
  absl::StatusOr<Value> name = decoder.Next();
  absl::StatusOr<Value> transaction = decoder.Next();
  absl::StatusOr<Value> object = decoder.Next();
  ASSERT_TRUE(name.ok() && transaction.ok() && object.ok());
  EXPECT_TRUE(decoder.done());
  EXPECT_EQ(decoder.position(), 140u);
  EXPECT_EQ(*name, Value::String("connect"));
  EXPECT_EQ(transaction->number(), 1);
  EXPECT_EQ(object->FindString("app"), "live");
  EXPECT_EQ(object->FindString("type"), "nonprivate");
  EXPECT_EQ(object->FindString("flashVer"), "FMLE/3.0 (compatible; Lavf59.27.100)");
  EXPECT_EQ(object->FindString("tcUrl"), "rtmp://127.0.0.1:19350/live");
  EXPECT_EQ(object->FindString("swfUrl", "none"), "none");
  EXPECT_EQ(EncodedAll({*name, *transaction, *object}), bytes);
}

TEST(Amf0Test, ConnectMatchesRecordedFfmpegSession) {
  // fmt 0 on chunk stream 3: timestamp 0, length 140, type 20, message stream 0. ffmpeg
  // still sends in 128-byte chunks here, so the payload is split by one 0xC3 byte.
  std::vector<uint8_t> recorded =
      RecordedPayload("ffmpeg_publish_chunk65536.rtmp", {0x03, 0, 0, 0, 0, 0, 140, 20, 0, 0, 0, 0},
                      140, rtmp::kDefaultChunkSize);
  EXPECT_EQ(recorded, FfmpegConnect());
}

TEST(Amf0Test, RecordedOnMetaDataDecodesAndReencodes) {
  // fmt 0 on chunk stream 4: length 200, type 18 (data), message stream 1; by then ffmpeg
  // has raised its chunk size, so the payload is one chunk.
  std::vector<uint8_t> recorded = RecordedPayload(
      "ffmpeg_publish_chunk65536.rtmp", {0x04, 0, 0, 0, 0, 0, 200, 18, 1, 0, 0, 0}, 200, 65536);
  absl::StatusOr<std::vector<Value>> values = DecodeAll(recorded);
  ASSERT_TRUE(values.ok()) << values.status();
  ASSERT_EQ(values->size(), 3u);
  EXPECT_EQ((*values)[0], Value::String("@setDataFrame"));
  EXPECT_EQ((*values)[1], Value::String("onMetaData"));
  const Value& metadata = (*values)[2];
  EXPECT_EQ(metadata.type(), Value::Type::kEcmaArray);
  EXPECT_EQ(metadata.FindNumber("width"), 320);
  EXPECT_EQ(metadata.FindNumber("height"), 240);
  EXPECT_EQ(metadata.FindNumber("framerate"), 30);
  EXPECT_EQ(metadata.FindNumber("videocodecid"), 7);
  EXPECT_EQ(metadata.FindString("encoder"), "Lavf59.27.100");
  EXPECT_EQ(EncodedAll(*values), recorded);
}

// ---- Truncation and bounds ----

TEST(Amf0Test, TruncatedAnywhereIsAnError) {
  std::vector<uint8_t> bytes = Encoded(EveryType());
  for (size_t length = 0; length < bytes.size(); ++length) {
    Decoder decoder{std::span(bytes).first(length)};
    EXPECT_FALSE(decoder.Next().ok()) << "prefix of " << length << " bytes";
  }
}

TEST(Amf0Test, TruncatedConnectIsAnErrorAtEveryOffset) {
  std::vector<uint8_t> bytes = FfmpegConnect();
  for (size_t length = 0; length < bytes.size(); ++length) {
    Decoder decoder{std::span(bytes).first(length)};
    bool ok = decoder.Next().ok() && decoder.Next().ok() && decoder.Next().ok();
    EXPECT_FALSE(ok) << "prefix of " << length << " bytes";
  }
}

TEST(Amf0Test, LongStringTruncatedAnywhereIsAnError) {
  std::vector<uint8_t> bytes = Encoded(Value::String(std::string(70000, 'z')));
  for (size_t length : {1, 2, 4, 5, 6, 65540, 69999, 70004}) {
    std::vector<uint8_t> prefix(bytes.begin(), bytes.begin() + length);
    DecodeError(prefix);
  }
}

TEST(Amf0Test, StringLengthBeyondInputIsAnError) {
  std::vector<uint8_t> bytes = {0x01, 0x01};       // boolean true: offsets 0..1
  EncodeNumber(2, &bytes);                         // 2..10
  for (int i = 0; i < 6; ++i) EncodeNull(&bytes);  // 11..16
  bytes.insert(bytes.end(), {0x02, 0x01, 0x2C});   // string at 17 claiming 300 bytes
  bytes.insert(bytes.end(), 12, 'x');
  Decoder decoder(bytes);
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(decoder.Next().ok());
  absl::StatusOr<Value> string = decoder.Next();
  ASSERT_FALSE(string.ok());
  EXPECT_EQ(string.status(),
            absl::InvalidArgumentError("amf0: string at offset 17 claims 300 bytes, 12 remain"));
}

TEST(Amf0Test, LongStringAndXmlLengthsBeyondInputAreErrors) {
  EXPECT_THAT(DecodeError({0x0C, 0xFF, 0xFF, 0xFF, 0xFF, 'a'}),
              HasSubstr("long string at offset 0 claims 4294967295 bytes, 1 remain"));
  EXPECT_THAT(DecodeError({0x0F, 0x00, 0x00, 0x01, 0x00}),
              HasSubstr("XML document at offset 0 claims 256 bytes, 0 remain"));
}

TEST(Amf0Test, KeyLengthBeyondInputIsAnError) {
  EXPECT_THAT(DecodeError({0x03, 0x00, 0x10, 'a', 'b'}),
              HasSubstr("property key at offset 1 claims 16 bytes, 2 remain"));
}

TEST(Amf0Test, TruncatedFixedSizeValuesAreErrors) {
  EXPECT_THAT(DecodeError({0x00, 0x3F, 0xF0}),
              HasSubstr("number at offset 0 needs 8 bytes at offset 1, 2 remain"));
  DecodeError({0x01});
  DecodeError({0x0B, 0, 0, 0, 0, 0, 0, 0, 0, 0});  // date without its last tz byte
  DecodeError({0x07, 0x00});
  DecodeError({0x08, 0x00, 0x00});
  DecodeError({0x0A, 0x00});
}

TEST(Amf0Test, StrictArrayCountIsBoundedByRemainingBytes) {
  // 2^32-1 items claimed with 3 bytes left: refused before anything is allocated.
  EXPECT_THAT(DecodeError({0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x05, 0x05, 0x05}),
              HasSubstr("strict array at offset 0 claims 4294967295 items, 3 bytes remain"));
  // As many items as bytes is fine when each item is one byte.
  EXPECT_EQ(DecodeOne({0x0A, 0, 0, 0, 3, 0x05, 0x05, 0x06}),
            Value::StrictArray({Value::Null(), Value::Null(), Value()}));
  // A count that fits the bytes but not the items is a truncation.
  DecodeError({0x0A, 0, 0, 0, 2, 0x00, 0x00});
}

TEST(Amf0Test, EcmaArrayCountIsOnlyAHint) {
  std::vector<uint8_t> bytes = {0x08, 0xFF, 0xFF, 0xFF, 0xFF};  // claims 2^32-1
  AppendShort(&bytes, "a");
  EncodeNumber(1, &bytes);
  AppendObjectEnd(&bytes);
  EXPECT_EQ(DecodeOne(bytes), Value::EcmaArray({{"a", Value::Number(1)}}));

  std::vector<uint8_t> undercounted = {0x08, 0, 0, 0, 0};  // claims none, holds two
  AppendShort(&undercounted, "a");
  EncodeNull(&undercounted);
  AppendShort(&undercounted, "b");
  EncodeNull(&undercounted);
  AppendObjectEnd(&undercounted);
  EXPECT_EQ(DecodeOne(undercounted).properties().size(), 2u);
}

TEST(Amf0Test, EmptyKeyWithoutObjectEndIsAProperty) {
  std::vector<uint8_t> bytes = {0x03};
  AppendShort(&bytes, "");
  EncodeNumber(5, &bytes);
  AppendObjectEnd(&bytes);
  Value object = DecodeOne(bytes);
  ASSERT_EQ(object.properties().size(), 1u);
  EXPECT_EQ(object.FindNumber(""), 5);
}

TEST(Amf0Test, MissingObjectEndAtEndOfInputIsAnError) {
  std::vector<uint8_t> bytes = {0x03};
  AppendShort(&bytes, "a");
  EncodeNull(&bytes);
  EXPECT_THAT(DecodeError(bytes),
              HasSubstr("object at offset 0 has no object end: input ends at offset 5"));
  bytes.push_back(0x00);  // half an empty key
  DecodeError(bytes);
  bytes.push_back(0x00);  // an empty key and nothing after it
  EXPECT_THAT(DecodeError(bytes), HasSubstr("has no object end"));
}

TEST(Amf0Test, ObjectEndMarkerAtTopLevelIsAnError) {
  EXPECT_THAT(DecodeError({0x09}),
              HasSubstr("object end marker at offset 0 where a value was expected"));
  EXPECT_THAT(DecodeError({0x05, 0x09}), HasSubstr("object end marker at offset 1"));
}

TEST(Amf0Test, ObjectEndMarkerAsPropertyValueIsAnError) {
  std::vector<uint8_t> bytes = {0x03};
  AppendShort(&bytes, "a");
  bytes.push_back(0x09);
  AppendObjectEnd(&bytes);
  EXPECT_THAT(DecodeError(bytes), HasSubstr("object end marker at offset 4"));
}

TEST(Amf0Test, ReservedAndAmf3MarkersAreErrors) {
  EXPECT_THAT(DecodeError({0x04}), HasSubstr("marker 0x04 at offset 0 is reserved"));
  EXPECT_THAT(DecodeError({0x0E}), HasSubstr("marker 0x0e at offset 0 is reserved"));
  EXPECT_THAT(DecodeError({0x05, 0x11, 0x00}),
              HasSubstr("AVM+ marker 0x11 at offset 1 switches to AMF3"));
  EXPECT_THAT(DecodeError({0x12}), HasSubstr("unknown marker 0x12 at offset 0"));
  EXPECT_THAT(DecodeError({0xFF}), HasSubstr("unknown marker 0xff"));
}

TEST(Amf0Test, DecoderIsUnusableAfterAnError) {
  std::vector<uint8_t> bytes = {0x04, 0x05};
  Decoder decoder(bytes);
  EXPECT_FALSE(decoder.Next().ok());
  absl::StatusOr<Value> again = decoder.Next();
  EXPECT_FALSE(again.ok());
  EXPECT_THAT(again.status().message(), HasSubstr("unusable"));
}

TEST(Amf0Test, NextAtEndOfInputIsAnError) {
  std::vector<uint8_t> bytes = {0x05};
  Decoder decoder(bytes);
  EXPECT_TRUE(decoder.Next().ok());
  EXPECT_TRUE(decoder.done());
  absl::StatusOr<Value> past_end = decoder.Next();
  EXPECT_EQ(past_end.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(past_end.status().message(), HasSubstr("value expected at offset 1, input ends"));
}

// ---- Depth and value limits ----

// `depth` objects, each the value of property "a" of the one around it.
std::vector<uint8_t> NestedObjects(int depth) {
  std::vector<uint8_t> bytes;
  for (int i = 0; i < depth; ++i) {
    if (i > 0) AppendShort(&bytes, "a");
    bytes.push_back(0x03);
  }
  for (int i = 0; i < depth; ++i) AppendObjectEnd(&bytes);
  return bytes;
}

TEST(Amf0Test, NestingUpToMaxDepthDecodes) {
  DecodeOne(NestedObjects(32));
  DecodeOne(NestedObjects(3), {.max_depth = 3});
}

TEST(Amf0Test, NestingBeyondMaxDepthIsAnError) {
  EXPECT_THAT(DecodeError(NestedObjects(33)), HasSubstr("nests deeper than the limit of 32"));
  DecodeError(NestedObjects(4), {.max_depth = 3});
  DecodeError({0x03, 0x00, 0x00, 0x09}, {.max_depth = 0});
  EXPECT_EQ(DecodeOne({0x05}, {.max_depth = 0}), Value::Null());
}

TEST(Amf0Test, NestedTenThousandDeepIsAnError) {
  DecodeError(NestedObjects(10000));
  std::vector<uint8_t> arrays;
  for (int i = 0; i < 10000; ++i) arrays.insert(arrays.end(), {0x0A, 0, 0, 0, 1});
  arrays.push_back(0x05);
  DecodeError(arrays);
  std::vector<uint8_t> ecma;  // an ECMA array with an unbounded count, nested, truncated
  for (int i = 0; i < 10000; ++i) {
    ecma.insert(ecma.end(), {0x08, 0xFF, 0xFF, 0xFF, 0xFF});
    AppendShort(&ecma, "k");
  }
  DecodeError(ecma);
}

TEST(Amf0Test, TooManyValuesIsAnError) {
  std::vector<uint8_t> bytes(11, 0x05);
  EXPECT_EQ(DecodeAll(std::span(bytes).first(10), {.max_values = 10})->size(), 10u);
  EXPECT_THAT(DecodeError(bytes, {.max_values = 10}),
              HasSubstr("value at offset 10 exceeds the limit of 10 values"));
  // Values inside containers count, and so do the containers.
  EXPECT_TRUE(DecodeAll(Encoded(Value::StrictArray({Value(), Value()})), {.max_values = 3}).ok());
  DecodeError(Encoded(Value::StrictArray({Value(), Value()})), {.max_values = 2});
}

// ---- References ----

TEST(Amf0Test, ReferenceDecodesToACopy) {
  // [ {a: 1}, ref 1 ]: the strict array is complex value 0, the object 1.
  std::vector<uint8_t> bytes = {0x0A, 0, 0, 0, 2};
  Encode(Value::Object({{"a", Value::Number(1)}}), &bytes);
  AppendReference(&bytes, 1);
  Value object = Value::Object({{"a", Value::Number(1)}});
  EXPECT_EQ(DecodeOne(bytes), Value::StrictArray({object, object}));
}

TEST(Amf0Test, ReferenceIndicesFollowTheOrderDecodingStarted) {
  // {x: {y: []}, t: typed{}, e: ecma{}} then references 0..4 at top level.
  std::vector<uint8_t> bytes;
  Value inner_array = Value::StrictArray({});
  Value inner = Value::Object({{"y", inner_array}});
  Value typed = Value::TypedObject("T", {});
  Value ecma = Value::EcmaArray({});
  Value outer = Value::Object({{"x", inner}, {"t", typed}, {"e", ecma}});
  Encode(outer, &bytes);
  for (uint16_t i = 0; i < 5; ++i) AppendReference(&bytes, i);
  absl::StatusOr<std::vector<Value>> values = DecodeAll(bytes);
  ASSERT_TRUE(values.ok()) << values.status();
  EXPECT_EQ(*values, (std::vector<Value>{outer, outer, inner, inner_array, typed, ecma}));
}

TEST(Amf0Test, ReferenceInsideReferencedValueResolves) {
  std::vector<uint8_t> bytes;
  Encode(Value::Object({{"a", Value::Number(1)}}), &bytes);  // 0
  bytes.push_back(0x03);                                     // 1: {b: ref 0}
  AppendShort(&bytes, "b");
  AppendReference(&bytes, 0);
  AppendObjectEnd(&bytes);
  AppendReference(&bytes, 1);
  absl::StatusOr<std::vector<Value>> values = DecodeAll(bytes);
  ASSERT_TRUE(values.ok()) << values.status();
  Value b = Value::Object({{"b", Value::Object({{"a", Value::Number(1)}})}});
  EXPECT_EQ((*values)[1], b);
  EXPECT_EQ((*values)[2], b);
}

TEST(Amf0Test, ForwardReferenceIsAnError) {
  std::vector<uint8_t> bytes = {0x0A, 0, 0, 0, 2};  // [ref 1, {}]: 1 doesn't exist yet
  AppendReference(&bytes, 1);
  Encode(Value::Object({}), &bytes);
  EXPECT_THAT(DecodeError(bytes),
              HasSubstr("reference at offset 5 names complex value 1, but only 1 precede it"));
}

TEST(Amf0Test, CyclicReferenceIsAnError) {
  std::vector<uint8_t> bytes = {0x03};  // {self: ref 0}
  AppendShort(&bytes, "self");
  AppendReference(&bytes, 0);
  AppendObjectEnd(&bytes);
  EXPECT_THAT(DecodeError(bytes),
              HasSubstr("names the value at offset 0, still being decoded (a cycle)"));
}

TEST(Amf0Test, OutOfRangeReferenceIsAnError) {
  DecodeError({0x07, 0x00, 0x00});  // no complex value at all
  std::vector<uint8_t> bytes = Encoded(Value::Object({}));
  AppendReference(&bytes, 0xFFFF);
  EXPECT_THAT(DecodeError(bytes), HasSubstr("names complex value 65535"));
}

TEST(Amf0Test, ReferenceChainCannotExplodeMemory) {
  // Value k is [ref k-1, ref k-1]: 40 such values, 440 bytes, would expand to 2^41 nodes.
  std::vector<uint8_t> bytes = Encoded(Value::StrictArray({Value(), Value()}));
  for (uint16_t k = 1; k <= 40; ++k) {
    bytes.insert(bytes.end(), {0x0A, 0, 0, 0, 2});
    AppendReference(&bytes, k - 1);
    AppendReference(&bytes, k - 1);
  }
  EXPECT_THAT(DecodeError(bytes), HasSubstr("beyond the limit of 100000"));
  // Below the limit, the copies are real.
  std::vector<uint8_t> small(bytes.begin(), bytes.begin() + 7 + 11 * 3);
  absl::StatusOr<std::vector<Value>> values = DecodeAll(small);
  ASSERT_TRUE(values.ok()) << values.status();
  EXPECT_EQ(values->back().items()[0], (*values)[2]);
}

TEST(Amf0Test, ReferenceCopiesOfStringsAreBoundedByInputSize) {
  std::vector<uint8_t> bytes =
      Encoded(Value::Object({{"s", Value::String(std::string(1000, 'x'))}}));
  bytes.insert(bytes.end(), {0x0A, 0, 0, 0, 100});
  for (int i = 0; i < 100; ++i) AppendReference(&bytes, 0);
  EXPECT_THAT(DecodeError(bytes), HasSubstr("more string bytes than the input has"));
  std::vector<uint8_t> once =
      Encoded(Value::Object({{"s", Value::String(std::string(1000, 'x'))}}));
  AppendReference(&once, 0);
  EXPECT_TRUE(DecodeAll(once).ok());
}

TEST(Amf0Test, ReferenceCountsItsCopyAgainstMaxValues) {
  std::vector<uint8_t> bytes = Encoded(Value::StrictArray({Value(), Value(), Value()}));  // 4
  AppendReference(&bytes, 0);                                                             // +4
  EXPECT_TRUE(DecodeAll(bytes, {.max_values = 8}).ok());
  DecodeError(bytes, {.max_values = 7});
}

TEST(Amf0Test, ReferenceCopyCountsAgainstMaxDepth) {
  DecodeLimits limits = {.max_depth = 4};
  std::vector<uint8_t> bytes = NestedObjects(3);  // 0, 1, 2: three levels
  std::vector<uint8_t> fits = bytes;
  fits.push_back(0x03);  // {x: ref 0}: four levels
  AppendShort(&fits, "x");
  AppendReference(&fits, 0);
  AppendObjectEnd(&fits);
  EXPECT_TRUE(DecodeAll(fits, limits).ok());
  std::vector<uint8_t> too_deep = bytes;
  too_deep.insert(too_deep.end(), {0x0A, 0, 0, 0, 1, 0x0A, 0, 0, 0, 1});  // [[ref 0]]: five
  AppendReference(&too_deep, 0);
  EXPECT_THAT(DecodeError(too_deep, limits),
              HasSubstr("reference at offset 28 nests deeper than the limit of 4"));
}

// ---- Value accessors and equality ----

TEST(Amf0Test, FindFallsBackOnMissingOrMistypedProperties) {
  Value object = Value::Object({{"n", Value::Number(3)}, {"s", Value::String("v")}});
  EXPECT_EQ(object.FindNumber("n"), 3);
  EXPECT_EQ(object.FindNumber("s", -1), -1);
  EXPECT_EQ(object.FindNumber("missing", 9), 9);
  EXPECT_EQ(object.FindString("s"), "v");
  EXPECT_EQ(object.FindString("n", "fb"), "fb");
  EXPECT_EQ(object.Find("missing"), nullptr);
  EXPECT_EQ(Value::String("x").Find("x"), nullptr);
  EXPECT_EQ(Value::StrictArray({Value::Number(1)}).FindNumber("0", 7), 7);
}

TEST(Amf0Test, EqualityIsDeep) {
  EXPECT_EQ(EveryType(), EveryType());
  Value a = Value::Object({{"o", Value::StrictArray({Value::Number(1)})}});
  Value b = Value::Object({{"o", Value::StrictArray({Value::Number(2)})}});
  EXPECT_NE(a, b);
  EXPECT_NE(Value::Object({{"a", Value()}, {"b", Value()}}),
            Value::Object({{"b", Value()}, {"a", Value()}}));
  EXPECT_NE(Value::Object({}), Value::EcmaArray({}));
  EXPECT_NE(Value::Null(), Value::Undefined());
  EXPECT_EQ(Value::Number(std::nan("")), Value::Number(std::nan("")));
}

TEST(Amf0Test, AccessorOfWrongTypeAsserts) {
  EXPECT_DEBUG_DEATH((void)Value::String("x").number(), "");
  EXPECT_DEBUG_DEATH((void)Value::Number(1).string(), "");
  EXPECT_DEBUG_DEATH((void)Value::StrictArray({}).properties(), "");
  EXPECT_DEBUG_DEATH((void)Value::Object({}).items(), "");
  EXPECT_DEBUG_DEATH((void)Value::Object({}).class_name(), "");
  EXPECT_DEBUG_DEATH((void)Value::Number(1).time_zone(), "");
  EXPECT_DEBUG_DEATH((void)Value::Null().boolean(), "");
}

// ---- Fuzzing ----

// Decodes `bytes` under `limits`; whatever decodes must re-encode to bytes that decode to
// the same values. Returns whether `bytes` decoded.
bool CheckNoCrashAndReencode(const std::vector<uint8_t>& bytes, DecodeLimits limits) {
  absl::StatusOr<std::vector<Value>> values = DecodeAll(bytes, limits);
  if (!values.ok()) {
    EXPECT_EQ(values.status().code(), absl::StatusCode::kInvalidArgument);
    return false;
  }
  absl::StatusOr<std::vector<Value>> again = DecodeAll(EncodedAll(*values));
  EXPECT_TRUE(again.ok()) << again.status();
  if (again.ok()) {
    EXPECT_EQ(*again, *values);
  }
  return true;
}

TEST(Amf0Test, RandomBytesNeverCrash) {
  std::mt19937 rng(20240601);
  int decoded = 0;
  for (int i = 0; i < 4000; ++i) {
    std::vector<uint8_t> bytes(rng() % 64);
    for (uint8_t& b : bytes) b = rng() % 2 ? uint8_t(rng() % 0x13) : uint8_t(rng());
    decoded += CheckNoCrashAndReencode(bytes, {});
    CheckNoCrashAndReencode(bytes, {.max_depth = 3, .max_values = 20});
  }
  EXPECT_GT(decoded, 50);  // enough inputs decode for the re-encoding check to matter
}

TEST(Amf0Test, MutatedEncodingsNeverCrash) {
  std::vector<std::vector<uint8_t>> seeds = {Encoded(EveryType()), FfmpegConnect()};
  std::vector<uint8_t> with_references = Encoded(EveryType());
  for (uint16_t i = 0; i < 6; ++i) AppendReference(&with_references, i);
  seeds.push_back(with_references);
  std::mt19937 rng(7);
  int decoded = 0;
  for (int i = 0; i < 4000; ++i) {
    std::vector<uint8_t> bytes = seeds[rng() % seeds.size()];
    for (int m = 1 + rng() % 4; m > 0 && !bytes.empty(); --m) {
      size_t at = rng() % bytes.size();
      switch (rng() % 5) {
        case 0:
          bytes[at] ^= uint8_t(1 << (rng() % 8));
          break;
        case 1:
          bytes[at] = uint8_t(rng());
          break;
        case 2:
          bytes.insert(bytes.begin() + at, uint8_t(rng() % 0x13));
          break;
        case 3:
          bytes.erase(bytes.begin() + at);
          break;
        case 4:
          bytes.resize(at);
          break;
      }
    }
    decoded += CheckNoCrashAndReencode(bytes, {});
    CheckNoCrashAndReencode(bytes, {.max_depth = 2, .max_values = 30});
  }
  EXPECT_GT(decoded, 100);
}

}  // namespace
}  // namespace uringest::media::amf0
