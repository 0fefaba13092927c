#include "engine/rtmp/chunk_reader.h"

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "engine/rtmp/chunk_writer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "media/byte_order.h"

namespace uringest::rtmp {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct OwnedMessage {
  MessageHeader header;
  std::vector<uint8_t> payload;

  bool operator==(const OwnedMessage& o) const {
    return header.chunk_stream_id == o.header.chunk_stream_id && header.type == o.header.type &&
           header.stream_id == o.header.stream_id && header.timestamp == o.header.timestamp &&
           payload == o.payload;
  }
};

std::ostream& operator<<(std::ostream& os, const OwnedMessage& m) {
  return os << "{csid " << m.header.chunk_stream_id << " type " << int(m.header.type) << " stream "
            << m.header.stream_id << " ts " << m.header.timestamp << " len " << m.payload.size()
            << "}";
}

// A message's payload in one vector, its pieces joined (gather_media).
std::vector<uint8_t> Joined(const Message& m) {
  if (m.pieces.empty()) return {m.payload.begin(), m.payload.end()};
  EXPECT_EQ(m.payload.data(), m.pieces[0].data()) << "payload is not the first piece";
  EXPECT_EQ(m.payload.size(), m.pieces[0].size()) << "payload is not the first piece";
  std::vector<uint8_t> joined;
  for (std::span<const uint8_t> piece : m.pieces) {
    EXPECT_FALSE(piece.empty());
    for (uint8_t byte : piece) joined.push_back(byte);
  }
  return joined;
}

// Feeds `bytes` to `reader` in pieces ending at each of `cuts` (ascending), then the rest.
absl::StatusOr<std::vector<OwnedMessage>> Feed(ChunkReader& reader, std::span<const uint8_t> bytes,
                                               const std::vector<size_t>& cuts = {}) {
  std::vector<OwnedMessage> messages;
  size_t start = 0;
  for (size_t i = 0; i <= cuts.size(); ++i) {
    const size_t end = i < cuts.size() ? cuts[i] : bytes.size();
    // Copy each piece so that in-place messages can't outlive their input unnoticed
    // (ASan sees a use after the piece is freed).
    std::vector<uint8_t> piece(bytes.begin() + start, bytes.begin() + end);
    std::span<const uint8_t> in(piece);
    while (!in.empty() || reader.has_pending()) {
      Message m;
      absl::StatusOr<ChunkReader::Result> r = reader.Read(in, &m);
      if (!r.ok()) return r.status();
      // Each call makes progress: input, a message, or the bytes it had read ahead.
      EXPECT_TRUE(r->consumed > 0 || r->message_ready || !reader.has_pending());
      in = in.subspan(r->consumed);
      if (r->message_ready) messages.push_back({m.header, Joined(m)});
    }
    start = end;
  }
  return messages;
}

absl::StatusOr<std::vector<OwnedMessage>> FeedFresh(std::span<const uint8_t> bytes,
                                                    const std::vector<size_t>& cuts = {},
                                                    ChunkReaderOptions options = {}) {
  ChunkReader reader(options);
  return Feed(reader, bytes, cuts);
}

// Cuts after every byte of an n-byte input: it is fed one byte at a time.
std::vector<size_t> EveryByte(size_t n) {
  std::vector<size_t> cuts;
  for (size_t i = 1; i < n; ++i) cuts.push_back(i);
  return cuts;
}

std::vector<uint8_t> Payload(size_t n, uint8_t seed) {
  std::vector<uint8_t> p(n);
  for (size_t i = 0; i < n; ++i) p[i] = uint8_t(seed + i * 7);
  return p;
}

MessageHeader Header(uint32_t csid, MessageType type, uint32_t stream_id, uint64_t ts) {
  return MessageHeader{
      .chunk_stream_id = csid, .type = type, .stream_id = stream_id, .timestamp = ts};
}

std::vector<uint8_t> SetChunkSizeBytes(uint32_t size) {
  std::vector<uint8_t> p;
  media::AppendU32(&p, size);
  return p;
}

// Hand-built chunk: basic header + message header fields, as the spec lays them out.
void AppendBasic(std::vector<uint8_t>* out, uint8_t fmt, uint32_t csid) {
  if (csid < 64) {
    media::AppendU8(out, uint8_t(fmt << 6 | csid));
  } else if (csid < 320) {
    media::AppendU8(out, uint8_t(fmt << 6));
    media::AppendU8(out, uint8_t(csid - 64));
  } else {
    media::AppendU8(out, uint8_t(fmt << 6 | 1));
    media::AppendU8(out, uint8_t((csid - 64) & 0xFF));
    media::AppendU8(out, uint8_t((csid - 64) >> 8));
  }
}

void AppendFmt0(std::vector<uint8_t>* out, uint32_t csid, uint32_t ts, uint32_t length,
                uint8_t type, uint32_t stream_id) {
  AppendBasic(out, 0, csid);
  media::AppendU24(out, ts >= 0xFFFFFF ? 0xFFFFFF : ts);
  media::AppendU24(out, length);
  media::AppendU8(out, type);
  media::AppendU32Le(out, stream_id);
  if (ts >= 0xFFFFFF) media::AppendU32(out, ts);
}

// A chunk header of any format: the fields fmt `fmt` carries, and the extended timestamp
// when `ts_field` needs it (fmt 3: when `extended` says the chunk stream's header has one).
void AppendChunkHeader(std::vector<uint8_t>* out, uint8_t fmt, uint32_t csid, uint32_t ts_field,
                       uint32_t length, uint8_t type, uint32_t stream_id, bool extended = false) {
  AppendBasic(out, fmt, csid);
  if (fmt <= 2) {
    extended = ts_field >= 0xFFFFFF;
    media::AppendU24(out, extended ? 0xFFFFFF : ts_field);
  }
  if (fmt <= 1) {
    media::AppendU24(out, length);
    media::AppendU8(out, type);
  }
  if (fmt == 0) media::AppendU32Le(out, stream_id);
  if (extended) media::AppendU32(out, ts_field);
}

// ---- Basic headers ----

class BasicHeaderTest : public ::testing::TestWithParam<uint32_t> {};

TEST_P(BasicHeaderTest, ChunkStreamIdRoundTrips) {
  const uint32_t csid = GetParam();
  ChunkWriter writer;
  std::vector<uint8_t> bytes;
  auto payload = Payload(300, 1);  // three chunks at 128: continuations use the same form
  writer.Write(Header(csid, MessageType::kVideo, 1, 40), payload, &bytes);
  auto messages = FeedFresh(bytes);
  ASSERT_TRUE(messages.ok()) << messages.status();
  ASSERT_EQ(messages->size(), 1u);
  EXPECT_EQ((*messages)[0].header.chunk_stream_id, csid);
  EXPECT_EQ((*messages)[0].payload, payload);
}

// 1-byte form up to 63, 2-byte form 64..319, 3-byte form 320..65599.
INSTANTIATE_TEST_SUITE_P(AllForms, BasicHeaderTest,
                         ::testing::Values(2, 3, 63, 64, 65, 319, 320, 321, 1000, 65599));

// ---- Header formats and the delta rules ----

TEST(ChunkReaderTest, Fmt1AndFmt2AddDeltasToThePreviousTimestamp) {
  std::vector<uint8_t> b;
  AppendFmt0(&b, 4, 1000, 2, 8, 1);
  media::AppendBytes(&b, std::string_view("ab"));
  AppendBasic(&b, 1, 4);  // fmt 1: delta 23, new length 3, type 9
  media::AppendU24(&b, 23);
  media::AppendU24(&b, 3);
  media::AppendU8(&b, 9);
  media::AppendBytes(&b, std::string_view("cde"));
  AppendBasic(&b, 2, 4);  // fmt 2: delta 17, same length and type
  media::AppendU24(&b, 17);
  media::AppendBytes(&b, std::string_view("fgh"));
  auto m = FeedFresh(b);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->size(), 3u);
  EXPECT_EQ((*m)[0].header.timestamp, 1000u);
  EXPECT_EQ((*m)[1].header.timestamp, 1023u);
  EXPECT_EQ((*m)[1].header.type, MessageType::kVideo);
  EXPECT_EQ((*m)[1].header.stream_id, 1u);  // fmt 1 keeps the message stream id
  EXPECT_EQ((*m)[2].header.timestamp, 1040u);
  EXPECT_EQ((*m)[2].payload, (std::vector<uint8_t>{'f', 'g', 'h'}));
}

TEST(ChunkReaderTest, Fmt3StartingNewMessageReappliesPreviousDelta) {
  std::vector<uint8_t> b;
  AppendFmt0(&b, 6, 100, 1, 8, 1);
  media::AppendU8(&b, 'a');
  AppendBasic(&b, 2, 6);
  media::AppendU24(&b, 21);
  media::AppendU8(&b, 'b');
  AppendBasic(&b, 3, 6);
  media::AppendU8(&b, 'c');
  AppendBasic(&b, 3, 6);
  media::AppendU8(&b, 'd');
  auto m = FeedFresh(b);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->size(), 4u);
  EXPECT_EQ((*m)[1].header.timestamp, 121u);
  EXPECT_EQ((*m)[2].header.timestamp, 142u);
  EXPECT_EQ((*m)[3].header.timestamp, 163u);
}

TEST(ChunkReaderTest, Fmt3AfterFmt0AddsTheAbsoluteFieldAsFfmpegAndSrsDo) {
  std::vector<uint8_t> b;
  AppendFmt0(&b, 6, 40, 1, 8, 1);
  media::AppendU8(&b, 'a');
  AppendBasic(&b, 3, 6);
  media::AppendU8(&b, 'b');
  auto m = FeedFresh(b);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->size(), 2u);
  EXPECT_EQ((*m)[1].header.timestamp, 80u);
}

TEST(ChunkReaderTest, FreshChunkStreamMayStartWithFmt1AsLibrtmpPingsDo) {
  std::vector<uint8_t> b;
  AppendBasic(&b, 1, 2);
  media::AppendU24(&b, 0);
  media::AppendU24(&b, 6);
  media::AppendU8(&b, 4);  // user control
  media::AppendU16(&b, 7);
  media::AppendU32(&b, 1234);
  auto m = FeedFresh(b);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->size(), 1u);
  EXPECT_EQ((*m)[0].header.type, MessageType::kUserControl);
  EXPECT_EQ((*m)[0].header.stream_id, 0u);
}

TEST(ChunkReaderTest, Fmt2OnFreshChunkStreamIsAnError) {
  std::vector<uint8_t> b;
  AppendBasic(&b, 2, 9);
  media::AppendU24(&b, 10);
  auto m = FeedFresh(b);
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(m.status().message(), HasSubstr("chunk stream 9"));
  EXPECT_THAT(m.status().message(), HasSubstr("fmt 2"));
}

TEST(ChunkReaderTest, NewHeaderWhileMessageIsPartialIsAnError) {
  std::vector<uint8_t> b;
  AppendFmt0(&b, 4, 0, 200, 9, 1);
  media::AppendBytes(&b, Payload(128, 0));
  AppendFmt0(&b, 4, 0, 10, 9, 1);
  auto m = FeedFresh(b);
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(m.status().message(), HasSubstr("length from 200 to 10"));
  EXPECT_THAT(m.status().message(), HasSubstr("72 of 200 bytes"));
}

// ---- Continuation chunks with a fmt 0, 1 or 2 header (nginx-rtmp continues them) ----

struct RepeatedHeaderCase {
  uint8_t fmt;          // of the repeating continuation headers
  uint32_t chunk_size;  // announced first
  uint32_t ts_field;    // what those headers carry as timestamp: ignored
};

std::ostream& operator<<(std::ostream& os, const RepeatedHeaderCase& c) {
  return os << "fmt " << int(c.fmt) << " chunk size " << c.chunk_size << " ts field " << c.ts_field;
}

class RepeatedHeaderTest : public ::testing::TestWithParam<RepeatedHeaderCase> {};

// Appends `payload` on chunk stream 4 in chunks of `chunk_size`, the first chunk's header
// of format `fmt(0)` with timestamp field `ts_field(0)`, continuation chunk i's of format
// `fmt(i)` with `ts_field(i)`: all of them repeat the length, type 9 and stream id 1.
// `extended`: whether fmt 3 headers carry an extended timestamp (of `ts_field(i)`).
template <typename Fmt, typename TsField>
void AppendChunks(
    std::vector<uint8_t>* out, std::span<const uint8_t> payload, uint32_t chunk_size, Fmt fmt,
    TsField ts_field, bool (*extended)(size_t) = [](size_t) { return false; }) {
  const uint32_t length = uint32_t(payload.size());
  for (size_t offset = 0, i = 0; offset < length; offset += chunk_size, ++i) {
    AppendChunkHeader(out, fmt(i), 4, ts_field(i), length, 9, 1, extended(i));
    media::AppendBytes(out, payload.subspan(offset, std::min<size_t>(chunk_size, length - offset)));
  }
}

// A (1 byte, ts 1000), then B (fmt 1, delta 40, three chunks or more) whose odd
// continuation chunks have GetParam()'s header and the others fmt 3, then C (fmt 3
// throughout: a new message, delta 40 again).
std::vector<uint8_t> RepeatedHeaderSession(const RepeatedHeaderCase& c,
                                           std::span<const uint8_t> b_payload) {
  std::vector<uint8_t> b;
  AppendFmt0(&b, 2, 0, 4, 1, 0);
  media::AppendU32(&b, c.chunk_size);
  AppendFmt0(&b, 4, 1000, 1, 9, 1);
  media::AppendU8(&b, 'a');
  AppendChunks(
      &b, b_payload, c.chunk_size,
      [&](size_t i) { return i == 0       ? uint8_t{1}
                             : i % 2 == 1 ? c.fmt
                                          : uint8_t{3}; },
      [&](size_t i) { return i == 0 ? 40 : c.ts_field; });
  AppendChunks(
      &b, b_payload, c.chunk_size, [](size_t) { return uint8_t{3}; }, [](size_t) { return 0u; });
  return b;
}

TEST_P(RepeatedHeaderTest, ContinuesTheMessageWithItsFirstChunksTimestamp) {
  const RepeatedHeaderCase c = GetParam();
  const std::vector<uint8_t> payload = Payload(2 * c.chunk_size + 50, 3);
  const std::vector<uint8_t> b = RepeatedHeaderSession(c, payload);
  for (bool gather : {false, true}) {
    for (size_t cut = 0; cut <= b.size(); ++cut) {
      auto m = FeedFresh(b, {cut}, ChunkReaderOptions{.gather_media = gather});
      ASSERT_TRUE(m.ok()) << m.status() << " cut " << cut;
      ASSERT_EQ(m->size(), 4u) << "cut " << cut;
      EXPECT_EQ((*m)[2], (OwnedMessage{Header(4, MessageType::kVideo, 1, 1040), payload}))
          << "cut " << cut << " gather " << gather;
      EXPECT_EQ((*m)[3], (OwnedMessage{Header(4, MessageType::kVideo, 1, 1080), payload}))
          << "the delta is still B's first header's; cut " << cut << " gather " << gather;
    }
  }
  // One byte at a time: every header, extended timestamps included, is gathered.
  absl::StatusOr<std::vector<OwnedMessage>> one_by_one = FeedFresh(b, EveryByte(b.size()));
  ASSERT_TRUE(one_by_one.ok()) << one_by_one.status();
  const std::vector<OwnedMessage>& got = *one_by_one;
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[2], (OwnedMessage{Header(4, MessageType::kVideo, 1, 1040), payload}));
  EXPECT_EQ(got[3].header.timestamp, 1080u);
}

INSTANTIATE_TEST_SUITE_P(
    FormatsChunkSizesAndTimestamps, RepeatedHeaderTest,
    ::testing::Values(RepeatedHeaderCase{1, 128, 40}, RepeatedHeaderCase{1, 128, 77},
                      RepeatedHeaderCase{1, 1, 0}, RepeatedHeaderCase{1, 1024, 0x1234567},
                      RepeatedHeaderCase{2, 128, 40}, RepeatedHeaderCase{2, 128, 0xFFFFFF},
                      RepeatedHeaderCase{2, 1, 77}, RepeatedHeaderCase{2, 1024, 0},
                      RepeatedHeaderCase{0, 128, 1040}, RepeatedHeaderCase{0, 128, 0x7FFFFFFF},
                      RepeatedHeaderCase{0, 3, 5}, RepeatedHeaderCase{0, 1024, 1040}));

TEST(ChunkReaderTest, RepeatedHeaderInsideAnExtendedTimestampMessage) {
  // B at 0x2000000 (extended) in three chunks: the second repeats its header with another
  // extended value, the third is fmt 3 with the extended field (as the spec and ffmpeg
  // say) or without it. C, fmt 3 throughout, adds the first header's field again.
  const std::vector<uint8_t> payload = Payload(300, 5);
  for (bool repeat : {true, false}) {
    for (uint8_t fmt : {0, 1, 2}) {
      std::vector<uint8_t> b;
      AppendChunks(
          &b, payload, 128,
          [&](size_t i) { return i == 0   ? uint8_t{0}
                                 : i == 1 ? fmt
                                          : uint8_t{3}; },
          [](size_t i) { return i == 1 ? 0x3000000u : 0x2000000u; },
          repeat ? +[](size_t) { return true; } : +[](size_t) { return false; });
      AppendChunks(
          &b, payload, 128, [](size_t) { return uint8_t{3}; }, [](size_t) { return 0x2000000u; },
          repeat ? +[](size_t) { return true; } : +[](size_t i) { return i == 0; });
      for (size_t cut = 0; cut <= b.size(); ++cut) {
        ChunkReader reader;
        auto m = Feed(reader, b, {cut});
        ASSERT_TRUE(m.ok()) << m.status() << " fmt " << int(fmt) << " repeat " << repeat;
        ASSERT_EQ(m->size(), 2u) << "cut " << cut;
        EXPECT_EQ((*m)[0], (OwnedMessage{Header(4, MessageType::kVideo, 1, 0x2000000), payload}));
        EXPECT_EQ((*m)[1], (OwnedMessage{Header(4, MessageType::kVideo, 1, 0x4000000), payload}));
        EXPECT_EQ(reader.continuation_timestamp(),
                  repeat ? ChunkReader::ContinuationTimestamp::kPresent
                         : ChunkReader::ContinuationTimestamp::kAbsent);
      }
    }
  }
}

TEST(ChunkReaderTest, ContinuationHeaderThatChangesTheMessageIsRefused) {
  struct Case {
    uint8_t fmt;
    uint32_t length;
    uint8_t type;
    uint32_t stream_id;
    const char* change;
  };
  const Case cases[] = {
      {1, 299, 9, 1, "length from 300 to 299"},
      {1, 300, 8, 1, "type from 9 to 8"},
      {0, 300, 9, 2, "message stream id from 1 to 2"},
      {0, 301, 18, 1, "length from 300 to 301, type from 9 to 18"},
  };
  for (const Case& c : cases) {
    std::vector<uint8_t> b;
    AppendChunkHeader(&b, 0, 70, 0, 300, 9, 1);
    media::AppendBytes(&b, Payload(128, 0));
    AppendChunkHeader(&b, c.fmt, 70, 0, c.length, c.type, c.stream_id);
    media::AppendBytes(&b, Payload(128, 0));
    auto m = FeedFresh(b);
    ASSERT_FALSE(m.ok()) << c.change;
    EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(m.status().message(), HasSubstr("chunk stream 70: fmt " + std::to_string(c.fmt)));
    EXPECT_THAT(m.status().message(), HasSubstr(c.change));
    EXPECT_THAT(m.status().message(), HasSubstr("172 of 300 bytes"));
  }
}

TEST(ChunkReaderTest, ZeroLengthMessageCompletesAtItsHeader) {
  std::vector<uint8_t> b;
  AppendFmt0(&b, 4, 5, 0, 8, 1);
  AppendFmt0(&b, 4, 6, 1, 8, 1);
  media::AppendU8(&b, 'x');
  for (size_t cut = 0; cut <= b.size(); ++cut) {
    auto m = FeedFresh(b, {cut});
    ASSERT_TRUE(m.ok()) << m.status();
    ASSERT_EQ(m->size(), 2u);
    EXPECT_TRUE((*m)[0].payload.empty());
    EXPECT_EQ((*m)[1].payload.size(), 1u);
  }
}

// ---- Extended timestamps ----

TEST(ChunkReaderTest, ExtendedTimestampOnFmt0) {
  std::vector<uint8_t> b;
  AppendFmt0(&b, 4, 0x12345678, 3, 9, 1);
  media::AppendBytes(&b, std::string_view("abc"));
  auto m = FeedFresh(b);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->size(), 1u);
  EXPECT_EQ((*m)[0].header.timestamp, 0x12345678u);
}

TEST(ChunkReaderTest, Fmt3AfterExtendedTimestampCarriesExtendedField) {
  // A 300-byte message at chunk size 128: the two fmt 3 continuations repeat the field.
  ChunkWriter writer;
  std::vector<uint8_t> b;
  auto payload = Payload(300, 3);
  writer.Write(Header(4, MessageType::kVideo, 1, 0x1000000), payload, &b);
  EXPECT_EQ(b.size(), 12u + 4 + 300 + 2 * (1 + 4));
  for (size_t cut = 0; cut <= b.size(); ++cut) {
    ChunkReader reader;
    auto m = Feed(reader, b, {cut});
    ASSERT_TRUE(m.ok()) << m.status();
    ASSERT_EQ(m->size(), 1u);
    EXPECT_EQ((*m)[0].payload, payload);
    EXPECT_EQ((*m)[0].header.timestamp, 0x1000000u);
    EXPECT_EQ(reader.continuation_timestamp(), ChunkReader::ContinuationTimestamp::kPresent);
  }
}

TEST(ChunkReaderTest, EncoderThatOmitsExtendedTimestampOnContinuationsIsDetected) {
  ChunkWriter writer({.repeat_extended_timestamp = false});
  std::vector<uint8_t> b;
  // The last chunk holds 1 byte, so the 4 bytes looked at reach into the next header.
  auto first = Payload(257, 9);
  auto second = Payload(5, 1);
  writer.Write(Header(4, MessageType::kVideo, 1, 0x2000000), first, &b);
  writer.Write(Header(5, MessageType::kAudio, 1, 0x2000000), second, &b);
  EXPECT_EQ(b.size(), 16u + 257 + 2 + 16 + 5);
  for (size_t cut = 0; cut <= b.size(); ++cut) {
    for (size_t cut2 = cut; cut2 <= std::min(b.size(), cut + 6); ++cut2) {
      ChunkReader reader;
      auto m = Feed(reader, b, {cut, cut2});
      ASSERT_TRUE(m.ok()) << m.status() << " cuts " << cut << "," << cut2;
      ASSERT_EQ(m->size(), 2u) << "cuts " << cut << "," << cut2;
      EXPECT_EQ((*m)[0].payload, first);
      EXPECT_EQ((*m)[1].payload, second);
      EXPECT_EQ((*m)[1].header.chunk_stream_id, 5u);
      EXPECT_EQ(reader.continuation_timestamp(), ChunkReader::ContinuationTimestamp::kAbsent);
    }
  }
}

TEST(ChunkReaderTest, MessagesReadAheadAreDeliveredBeforeMoreInputArrives) {
  // B's only continuation chunk (1 byte) is the first: the 4 bytes looked at after its
  // header hold B's last byte, C whole (a 1-byte fmt 3 header and 1 payload byte) and the
  // first byte of E's header, where the input ends. C must come out of the bytes at hand,
  // not wait for the peer's next bytes.
  ChunkWriter writer({.repeat_extended_timestamp = false});
  std::vector<uint8_t> b;
  writer.Write(Header(5, MessageType::kAudio, 1, 0), Payload(1, 1), &b);            // A
  writer.Write(Header(4, MessageType::kVideo, 1, 0x2000000), Payload(129, 2), &b);  // B
  writer.Write(Header(5, MessageType::kAudio, 1, 0), Payload(1, 3), &b);            // C: fmt 3
  writer.Write(Header(6, MessageType::kAudio, 1, 0), Payload(1, 4), &b);            // E: fmt 0
  b.resize(b.size() - 12);  // E: 12 header bytes and 1 payload byte; keep the first
  for (size_t cut = 0; cut <= b.size(); ++cut) {
    ChunkReader reader;
    auto m = Feed(reader, b, {cut});
    ASSERT_TRUE(m.ok()) << m.status();
    ASSERT_EQ(m->size(), 3u) << "cut at " << cut;
    EXPECT_EQ((*m)[2].payload, Payload(1, 3));
    EXPECT_FALSE(reader.has_pending());
  }
}

TEST(ChunkReaderTest, EncoderRollingIntoExtendedFieldKeepsCountingUp) {
  // Audio every 23 ms across 2^24 ms: the 24-bit field gives way to the extended field.
  ChunkWriter writer;
  std::vector<uint8_t> b;
  std::vector<uint64_t> sent;
  for (uint64_t ts = 0xFFFFFF - 23 * 5; ts < 0xFFFFFF + 23 * 5; ts += 23) {
    writer.Write(Header(4, MessageType::kAudio, 1, ts), Payload(200, uint8_t(ts)), &b);
    sent.push_back(ts);
  }
  auto m = FeedFresh(b);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->size(), sent.size());
  for (size_t i = 0; i < sent.size(); ++i) EXPECT_EQ((*m)[i].header.timestamp, sent[i]);
}

TEST(ChunkReaderTest, TimestampsUnwrapPast32Bits) {
  // fmt 2 deltas of 1 hour carry the wire timestamp past 2^32 ms (49.7 days).
  std::vector<uint8_t> b;
  const uint32_t start = 0xFFFFFFFF - 1800000;
  AppendFmt0(&b, 4, start, 1, 9, 1);
  media::AppendU8(&b, 0);
  for (int i = 0; i < 3; ++i) {
    AppendBasic(&b, 2, 4);
    media::AppendU24(&b, 0xFFFFFF);
    media::AppendU32(&b, 3600000);
    media::AppendU8(&b, uint8_t(i));
  }
  auto m = FeedFresh(b);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->size(), 4u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ((*m)[i].header.timestamp, uint64_t{start} + uint64_t(i) * 3600000);
  }
}

TEST(ChunkReaderTest, EncoderWhose24BitFieldRollsOverKeepsCountingUp) {
  std::vector<uint8_t> b;
  AppendFmt0(&b, 4, 0xFFFFF0, 1, 9, 1);
  media::AppendU8(&b, 0);
  AppendFmt0(&b, 4, 0x000010, 1, 9, 1);  // rolled over instead of going extended
  media::AppendU8(&b, 1);
  auto m = FeedFresh(b);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->size(), 2u);
  EXPECT_EQ((*m)[1].header.timestamp, 0x1000010u);
}

// ---- Set Chunk Size and Abort ----

class SetChunkSizeTest : public ::testing::TestWithParam<uint32_t> {};

TEST_P(SetChunkSizeTest, MessagesAfterItUseTheNewSize) {
  const uint32_t size = GetParam();
  ChunkWriter writer;
  std::vector<uint8_t> b;
  writer.Write(Header(2, MessageType::kSetChunkSize, 0, 0), SetChunkSizeBytes(size), &b);
  auto payload = Payload(1000, 5);
  writer.Write(Header(4, MessageType::kVideo, 1, 0), payload, &b);
  writer.Write(Header(4, MessageType::kVideo, 1, 33), payload, &b);
  ChunkReader reader;
  auto m = Feed(reader, b, {b.size() / 3, b.size() / 2});
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->size(), 3u);
  EXPECT_EQ(reader.chunk_size(), std::min(size, 0xFFFFFFu));
  EXPECT_EQ((*m)[2].payload, payload);
  EXPECT_EQ((*m)[2].header.timestamp, 33u);
}

// Above 0xFFFFFF a chunk size behaves as 0xFFFFFF: no message is longer.
INSTANTIATE_TEST_SUITE_P(Sizes, SetChunkSizeTest,
                         ::testing::Values(1, 2, 3, 4, 127, 4096, 65536, 0xFFFFFF, 0x1000000,
                                           0x7FFFFFFF));

TEST(ChunkReaderTest, SetChunkSizeZeroIsAnError) {
  std::vector<uint8_t> b;
  AppendFmt0(&b, 2, 0, 4, 1, 0);
  media::AppendU32(&b, 0);
  auto m = FeedFresh(b);
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(m.status().message(), HasSubstr("Set Chunk Size 0"));
}

TEST(ChunkReaderTest, SetChunkSizeWithTopBitIsAnError) {
  std::vector<uint8_t> b;
  AppendFmt0(&b, 2, 0, 4, 1, 0);
  media::AppendU32(&b, 0x80000000);
  auto m = FeedFresh(b);
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(m.status().message(), HasSubstr("2147483648"));
}

TEST(ChunkReaderTest, AbortDiscardsPartialMessage) {
  ChunkWriter writer;
  std::vector<uint8_t> b;
  auto aborted = Payload(1000, 1);
  ChunkWriter::Cursor cursor = writer.Begin(Header(6, MessageType::kVideo, 1, 0), aborted);
  writer.WriteChunk(&cursor, &b);
  writer.WriteChunk(&cursor, &b);
  std::vector<uint8_t> abort_payload;
  media::AppendU32(&abort_payload, 6);
  writer.Write(Header(2, MessageType::kAbort, 0, 0), abort_payload, &b);
  auto next = Payload(200, 2);
  writer.Write(Header(6, MessageType::kVideo, 1, 40), next, &b);
  for (size_t cut = 0; cut <= b.size(); cut += 7) {
    auto m = FeedFresh(b, {cut});
    ASSERT_TRUE(m.ok()) << m.status();
    ASSERT_EQ(m->size(), 2u);
    EXPECT_EQ((*m)[0].header.type, MessageType::kAbort);
    EXPECT_EQ((*m)[1].payload, next);
    EXPECT_EQ((*m)[1].header.timestamp, 40u);
  }
}

// ---- Interleaving ----

TEST(ChunkReaderTest, ChunkStreamsInterleaveChunkByChunk) {
  ChunkWriter writer;
  std::vector<uint8_t> b;
  auto video = Payload(1000, 1);
  auto audio = Payload(300, 2);
  auto data = Payload(129, 3);
  ChunkWriter::Cursor v = writer.Begin(Header(6, MessageType::kVideo, 1, 33), video);
  ChunkWriter::Cursor a = writer.Begin(Header(4, MessageType::kAudio, 1, 21), audio);
  ChunkWriter::Cursor d = writer.Begin(Header(5, MessageType::kDataAmf0, 1, 0), data);
  bool vd = false, ad = false, dd = false;
  while (!(vd && ad && dd)) {
    if (!vd) vd = writer.WriteChunk(&v, &b);
    if (!ad) ad = writer.WriteChunk(&a, &b);
    if (!dd) dd = writer.WriteChunk(&d, &b);
  }
  for (size_t cut = 0; cut <= b.size(); ++cut) {
    auto m = FeedFresh(b, {cut});
    ASSERT_TRUE(m.ok()) << m.status();
    ASSERT_EQ(m->size(), 3u);
    EXPECT_EQ((*m)[0].payload, data);   // 2 chunks
    EXPECT_EQ((*m)[1].payload, audio);  // 3 chunks
    EXPECT_EQ((*m)[2].payload, video);  // 8 chunks
    EXPECT_EQ((*m)[1].header.timestamp, 21u);
  }
}

// ---- Limits ----

TEST(ChunkReaderTest, MessageOverTheCapIsRejectedAtItsHeader) {
  std::vector<uint8_t> b;
  AppendFmt0(&b, 4, 0, 0x200000, 9, 1);
  auto m = FeedFresh(b, {}, {.max_message_size = 0x100000});
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(m.status().message(), HasSubstr("2097152 bytes is over the limit"));
}

TEST(ChunkReaderTest, LargestMessageTheWireAllowsIsAccepted) {
  ChunkWriter writer;
  std::vector<uint8_t> b;
  writer.Write(Header(2, MessageType::kSetChunkSize, 0, 0), SetChunkSizeBytes(65536), &b);
  auto payload = Payload(kMaxMessageLength, 4);
  writer.Write(Header(4, MessageType::kVideo, 1, 0), payload, &b);
  auto m = FeedFresh(b, {b.size() / 2});
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->size(), 2u);
  EXPECT_EQ((*m)[1].payload, payload);
}

TEST(ChunkReaderTest, ChunkStreamCapBoundsHeaderState) {
  ChunkWriter writer;
  std::vector<uint8_t> b;
  for (uint32_t csid = 3; csid < 3 + 9; ++csid) {
    writer.Write(Header(csid, MessageType::kAudio, 1, 0), Payload(1, 0), &b);
  }
  auto m = FeedFresh(b, {}, {.max_chunk_streams = 8});
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(m.status().message(), HasSubstr("more than 8 chunk streams"));
}

TEST(ChunkReaderTest, AnnouncedLengthAllocatesNothingUntilBytesArrive) {
  std::vector<uint8_t> b;
  AppendFmt0(&b, 4, 0, 0xFFFFFF, 9, 1);
  media::AppendBytes(&b, Payload(100, 0));
  ChunkReader reader;
  auto m = Feed(reader, b);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(m->empty());
  EXPECT_LE(reader.buffered_bytes(), 4096u);
}

TEST(ChunkReaderTest, PartialMessagesAcrossChunkStreamsAreCapped) {
  ChunkWriter writer;
  std::vector<uint8_t> b;
  auto payload = Payload(100000, 0);
  std::vector<ChunkWriter::Cursor> cursors;
  for (uint32_t csid = 4; csid < 10; ++csid) {
    cursors.push_back(writer.Begin(Header(csid, MessageType::kVideo, 1, 0), payload));
  }
  for (int round = 0; round < 400; ++round) {
    for (auto& c : cursors) writer.WriteChunk(&c, &b);
  }
  auto m = FeedFresh(b, {}, {.max_buffered_bytes = 256 * 1024});
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(ChunkReaderTest, AllocatorOutOfBudgetFailsTheConnectionNotTheProcess) {
  // An allocator whose budget is spent (a shard's, shared by its connections) refuses.
  class Spent : public BufferAllocator {
   public:
    uint8_t* Allocate(size_t, size_t*) override { return nullptr; }
    void Free(uint8_t*, size_t) override { ADD_FAILURE() << "nothing was allocated"; }
  } spent;
  ChunkWriter writer;
  std::vector<uint8_t> b;
  writer.Write(Header(6, MessageType::kVideo, 1, 0), Payload(300, 1), &b);  // 3 chunks
  ChunkReader reader(ChunkReaderOptions{.allocator = &spent});
  auto got = Feed(reader, b);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kResourceExhausted) << got.status();
  EXPECT_EQ(reader.buffered_bytes(), 0u);
}

TEST(ChunkReaderTest, CommandBufferIsFreedOnceHandedOutMediaBufferIsKept) {
  // An idle connection must hold no assembly buffer: a command's goes once it has been
  // handled, a video message's stays for the next frame.
  ChunkWriter writer;
  std::vector<uint8_t> command, video;
  writer.Write(Header(3, MessageType::kCommandAmf0, 0, 0), Payload(300, 1), &command);
  writer.Write(Header(6, MessageType::kVideo, 1, 0), Payload(300, 2), &video);
  ChunkReader reader;
  auto got = Feed(reader, command);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 1u);
  EXPECT_GT(reader.buffered_bytes(), 0u) << "the payload is valid until the next Read()";
  reader.ReleaseHandedOut();
  EXPECT_EQ(reader.buffered_bytes(), 0u);
  got = Feed(reader, video);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 1u);
  reader.ReleaseHandedOut();
  EXPECT_GT(reader.buffered_bytes(), 0u);
}

TEST(ChunkReaderTest, ReaderRefusesUseAfterAnError) {
  std::vector<uint8_t> b;
  AppendBasic(&b, 3, 9);
  ChunkReader reader;
  Message m;
  EXPECT_FALSE(reader.Read(b, &m).ok());
  EXPECT_FALSE(reader.Read(b, &m).ok());
}

// ---- Zero copy ----

TEST(ChunkReaderTest, WholeMessageInOneChunkIsHandedOutInPlace) {
  ChunkWriter writer;
  std::vector<uint8_t> b;
  writer.Write(Header(4, MessageType::kAudio, 1, 0), Payload(100, 0), &b);
  ChunkReader reader;
  Message m;
  auto r = reader.Read(b, &m);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->message_ready);
  EXPECT_EQ(m.payload.data(), b.data() + 12);
  EXPECT_EQ(reader.buffered_bytes(), 0u);
}

// ---- Gathering (gather_media) ----

// A writer's bytes for `messages` at chunk size `chunk_size` (announced first).
std::vector<uint8_t> Session(uint32_t chunk_size, const std::vector<OwnedMessage>& messages,
                             ChunkWriterOptions options = {}) {
  ChunkWriter writer(options);
  std::vector<uint8_t> b;
  writer.Write(Header(2, MessageType::kSetChunkSize, 0, 0), SetChunkSizeBytes(chunk_size), &b);
  writer.set_chunk_size(chunk_size);
  for (const OwnedMessage& m : messages) writer.Write(m.header, m.payload, &b);
  return b;
}

bool Within(std::span<const uint8_t> piece, std::span<const uint8_t> in) {
  return piece.data() >= in.data() && piece.data() + piece.size() <= in.data() + in.size();
}

TEST(ChunkReaderTest, MediaMessageWholeInTheInputComesAsPiecesInPlace) {
  const OwnedMessage video{Header(6, MessageType::kVideo, 1, 40), Payload(10000, 7)};
  const std::vector<uint8_t> b = Session(4096, {video});
  ChunkReader reader(ChunkReaderOptions{.gather_media = true});
  std::span<const uint8_t> in(b);
  Message m;
  auto r = reader.Read(in, &m);  // Set Chunk Size
  ASSERT_TRUE(r.ok() && r->message_ready);
  in = in.subspan(r->consumed);
  r = reader.Read(in, &m);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->message_ready);
  EXPECT_EQ(r->consumed, in.size());
  ASSERT_EQ(m.pieces.size(), 3u);  // 4096 + 4096 + 1808
  for (std::span<const uint8_t> piece : m.pieces) EXPECT_TRUE(Within(piece, in));
  EXPECT_EQ(m.pieces[2].size(), 1808u);
  EXPECT_EQ(m.payload_size(), 10000u);
  EXPECT_EQ((OwnedMessage{m.header, Joined(m)}), video);
  EXPECT_EQ(reader.buffered_bytes(), 0u) << "nothing was assembled";
}

TEST(ChunkReaderTest, GatheringLeavesOtherMessagesAndShortInputToAssembly) {
  const std::vector<OwnedMessage> messages = {
      {Header(3, MessageType::kCommandAmf0, 0, 0), Payload(5000, 1)},  // never gathered
      {Header(6, MessageType::kVideo, 1, 40), Payload(9000, 2)},
  };
  const std::vector<uint8_t> b = Session(2048, messages);
  // Whole: the command is assembled, the video gathered.
  ChunkReader whole(ChunkReaderOptions{.gather_media = true});
  std::vector<OwnedMessage> got;
  std::span<const uint8_t> in(b);
  while (!in.empty()) {
    Message m;
    auto r = whole.Read(in, &m);
    ASSERT_TRUE(r.ok()) << r.status();
    in = in.subspan(r->consumed);
    if (!r->message_ready) continue;
    const size_t want_pieces = m.header.type == MessageType::kVideo ? 5 : 0;
    EXPECT_EQ(m.pieces.size(), want_pieces) << "type " << int(m.header.type);
    got.push_back({m.header, Joined(m)});
  }
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[1], messages[0]);
  EXPECT_EQ(got[2], messages[1]);
  // Cut one byte before the video's end: its chunks are assembled as they come.
  ChunkReader cut(ChunkReaderOptions{.gather_media = true});
  auto fed = Feed(cut, b, {b.size() - 1});
  ASSERT_TRUE(fed.ok()) << fed.status();
  ASSERT_EQ(fed->size(), 3u);
  EXPECT_EQ((*fed)[2], messages[1]);
}

TEST(ChunkReaderTest, ChunksOfAnotherStreamInBetweenStopGathering) {
  ChunkWriter writer;
  std::vector<uint8_t> b;
  writer.Write(Header(2, MessageType::kSetChunkSize, 0, 0), SetChunkSizeBytes(1024), &b);
  writer.set_chunk_size(1024);
  const OwnedMessage video{Header(6, MessageType::kVideo, 1, 40), Payload(3000, 3)};
  const OwnedMessage audio{Header(4, MessageType::kAudio, 1, 41), Payload(2000, 4)};
  ChunkWriter::Cursor v = writer.Begin(video.header, video.payload);
  ChunkWriter::Cursor a = writer.Begin(audio.header, audio.payload);
  for (bool v_done = false, a_done = false; !v_done || !a_done;) {
    if (!v_done) v_done = writer.WriteChunk(&v, &b);
    if (!a_done) a_done = writer.WriteChunk(&a, &b);
  }
  ChunkReader reader(ChunkReaderOptions{.gather_media = true});
  std::span<const uint8_t> in(b);
  std::vector<OwnedMessage> got;
  while (!in.empty()) {
    Message m;
    auto r = reader.Read(in, &m);
    ASSERT_TRUE(r.ok()) << r.status();
    in = in.subspan(r->consumed);
    if (!r->message_ready || m.header.type == MessageType::kSetChunkSize) continue;
    EXPECT_TRUE(m.pieces.empty()) << "interleaved chunks were gathered";
    got.push_back({m.header, Joined(m)});
  }
  EXPECT_EQ(got, (std::vector<OwnedMessage>{audio, video}));
}

TEST(ChunkReaderTest, GatheringReadsContinuationExtendedTimestampsInEitherForm) {
  for (bool repeat : {true, false}) {
    // Past 0xFFFFFF ms every chunk header carries the extended field, or (repeat false)
    // only the first chunk's does. The first message settles which: it is assembled.
    std::vector<OwnedMessage> messages;
    for (int i = 0; i < 3; ++i) {
      messages.push_back(
          {Header(6, MessageType::kVideo, 1, 0x1000000 + 33 * i), Payload(5000, uint8_t(i))});
    }
    const std::vector<uint8_t> b =
        Session(1500, messages, ChunkWriterOptions{.repeat_extended_timestamp = repeat});
    ChunkReader reader(ChunkReaderOptions{.gather_media = true});
    std::span<const uint8_t> in(b);
    std::vector<OwnedMessage> got;
    std::vector<size_t> pieces;
    while (!in.empty() || reader.has_pending()) {
      Message m;
      auto r = reader.Read(in, &m);
      ASSERT_TRUE(r.ok()) << r.status();
      in = in.subspan(r->consumed);
      if (!r->message_ready || m.header.type != MessageType::kVideo) continue;
      got.push_back({m.header, Joined(m)});
      pieces.push_back(m.pieces.size());
    }
    EXPECT_EQ(got, messages) << "repeat " << repeat;
    EXPECT_EQ(pieces, (std::vector<size_t>{0, 4, 4})) << "repeat " << repeat;
  }
}

// ---- Randomized round trip ----

TEST(ChunkReaderTest, RandomWriterSessionsRoundTripUnderRandomSplits) {
  std::mt19937 rng(20261123);
  for (int iteration = 0; iteration < 300; ++iteration) {
    ChunkWriterOptions options{.compress_headers = rng() % 4 != 0,
                               .repeat_extended_timestamp = rng() % 3 != 0};
    ChunkWriter writer(options);
    std::vector<uint8_t> bytes;
    std::vector<OwnedMessage> expected;
    std::vector<std::vector<uint8_t>> payloads;  // kept alive for the cursors
    payloads.reserve(64);
    struct Open {
      ChunkWriter::Cursor cursor;
      size_t expected_index;
    };
    std::vector<Open> open;
    const uint32_t csids[] = {3, 4, 6, 63, 64, 300, 40000};
    uint64_t ts[7] = {};
    bool sent[7] = {};
    const uint64_t base = rng() % 2 ? 0 : 0xFFFFF000 - (rng() % 100000);
    for (int i = 0; i < 40; ++i) {
      const int action = rng() % 10;
      if (action == 0) {
        const uint32_t size = rng() % 2 ? 1 + rng() % 300 : 1 + rng() % 70000;
        auto p = SetChunkSizeBytes(size);
        expected.push_back({Header(2, MessageType::kSetChunkSize, 0, 0), p});
        // It takes effect between two chunks, also of messages still being interleaved.
        writer.Write(expected.back().header, p, &bytes);
      } else if (action == 1 && !open.empty()) {
        // Abort a message that has begun.
        Open o = open.back();
        open.pop_back();
        writer.WriteChunk(&o.cursor, &bytes);
        if (o.cursor.offset < o.cursor.payload.size()) {
          expected.erase(expected.begin() + o.expected_index);
          for (Open& other : open) {
            if (other.expected_index > o.expected_index) --other.expected_index;
          }
          std::vector<uint8_t> p;
          media::AppendU32(&p, o.cursor.csid);
          expected.push_back({Header(2, MessageType::kAbort, 0, 0), p});
          writer.Write(expected.back().header, p, &bytes);
        }
      } else {
        const int k = rng() % 7;
        const uint32_t csid = csids[k];
        bool busy = false;
        for (const Open& o : open) busy |= o.cursor.csid == csid;
        if (busy) continue;
        ts[k] += rng() % 3 == 0 ? 0 : rng() % 100;
        if (sent[k] && rng() % 50 == 0) ts[k] += 0x1000000;  // a delta in the extended field
        sent[k] = true;
        payloads.push_back(Payload(rng() % 3 == 0 ? rng() % 20 : rng() % 5000, uint8_t(i)));
        MessageHeader h = Header(csid, rng() % 2 ? MessageType::kVideo : MessageType::kAudio,
                                 1 + rng() % 2, base + ts[k]);
        expected.push_back({h, payloads.back()});
        open.push_back({writer.Begin(h, payloads.back()), expected.size() - 1});
      }
      // Interleave: one chunk of a random open message; now and then a continuation
      // chunk whose header repeats the message's in fmt 0, 1 or 2, with any timestamp.
      if (!open.empty()) {
        const size_t j = rng() % open.size();
        ChunkWriter::Cursor& cursor = open[j].cursor;
        const bool done = cursor.started && rng() % 8 == 0
                              ? writer.WriteRepeatedHeaderChunk(&cursor, rng() % 3, rng(), &bytes)
                              : writer.WriteChunk(&cursor, &bytes);
        if (done) open.erase(open.begin() + j);
      }
    }
    for (Open& o : open) {
      while (!writer.WriteChunk(&o.cursor, &bytes)) {
      }
    }
    // The reader yields messages in the order their last chunk arrives; compare per
    // chunk stream, where order is defined.
    std::vector<size_t> cuts;
    for (size_t c = 0; c < 20 && !bytes.empty(); ++c) cuts.push_back(rng() % bytes.size());
    std::sort(cuts.begin(), cuts.end());
    // Half the time with gathering: the messages must come out the same either way.
    auto got = FeedFresh(bytes, cuts, ChunkReaderOptions{.gather_media = iteration % 2 == 1});
    ASSERT_TRUE(got.ok()) << got.status() << " iteration " << iteration;
    ASSERT_EQ(got->size(), expected.size()) << "iteration " << iteration;
    for (uint32_t csid : {2u, 3u, 4u, 6u, 63u, 64u, 300u, 40000u}) {
      std::vector<OwnedMessage> want, have;
      for (auto& m : expected) {
        if (m.header.chunk_stream_id == csid) want.push_back(m);
      }
      for (auto& m : *got) {
        if (m.header.chunk_stream_id == csid) have.push_back(m);
      }
      ASSERT_EQ(have, want) << "iteration " << iteration << " csid " << csid;
    }
  }
}

TEST(ChunkReaderTest, EverySingleByteSplitOfAMixedSession) {
  ChunkWriter writer;
  std::vector<uint8_t> b;
  std::vector<OwnedMessage> expected;
  auto add = [&](MessageHeader h, std::vector<uint8_t> p) {
    writer.Write(h, p, &b);
    expected.push_back({h, std::move(p)});
  };
  add(Header(2, MessageType::kSetChunkSize, 0, 0), SetChunkSizeBytes(100));
  add(Header(3, MessageType::kCommandAmf0, 0, 0), Payload(250, 1));
  add(Header(6, MessageType::kVideo, 1, 0x1000010), Payload(333, 2));
  add(Header(4, MessageType::kAudio, 1, 0x1000011), Payload(90, 3));
  add(Header(6, MessageType::kVideo, 1, 0x1000030), Payload(333, 4));
  add(Header(6, MessageType::kVideo, 1, 0x1000050), Payload(333, 5));
  add(Header(70000 - 4465, MessageType::kDataAmf0, 1, 7), Payload(0, 0));
  absl::StatusOr<std::vector<OwnedMessage>> got = FeedFresh(b, EveryByte(b.size()));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, expected);
}

}  // namespace
}  // namespace uringest::rtmp
