// make_seeds: writes the seed corpora of the fuzz targets, one directory per target,
// from the recorded ffmpeg sessions in tests/data/ (so the repository holds no seed
// files). fuzz/run.sh calls it.
//
//   make_seeds OUT_DIR   # OUT_DIR/handshake/, OUT_DIR/chunk_reader/, OUT_DIR/amf0/, ...

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/rtmp/handshake.h"
#include "engine/rtmp/rtmp_format.h"
#include "fuzz/fuzz_util.h"
#include "media/amf0.h"
#include "media/byte_order.h"
#include "media/flv_format.h"
#include "tests/rtmp_testing.h"

namespace uringest::fuzz {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

constexpr const char* kRecordings[] = {"ffmpeg_publish_chunk128.rtmp",
                                       "ffmpeg_publish_chunk65536.rtmp"};
constexpr size_t kHandshakeBytes = rtmp::ServerHandshake::kInputSize;
// Seeds are kept short so that the targets run fast; a few cover whole sessions.
constexpr size_t kShortSeed = 16 << 10;
constexpr uint8_t kSplitSeed[8] = {0x9d, 0x13, 0x57, 0x21, 0xc4, 0x08, 0x6e, 0x3b};

class SeedWriter {
 public:
  explicit SeedWriter(fs::path dir) : dir_(std::move(dir)) { fs::create_directories(dir_); }
  void Write(const std::string& name, const Bytes& bytes) {
    std::ofstream out(dir_ / name, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  }

 private:
  fs::path dir_;
};

Bytes Concat(std::initializer_list<std::span<const uint8_t>> parts) {
  Bytes out;
  for (std::span<const uint8_t> p : parts) media::AppendBytes(&out, p);
  return out;
}

Bytes Prefix(std::span<const uint8_t> bytes, size_t n) {
  return Bytes(bytes.begin(), bytes.begin() + std::min(n, bytes.size()));
}

std::span<const uint8_t> ChunkStreamOf(const Bytes& recording) {
  return std::span<const uint8_t>(recording).subspan(kHandshakeBytes);
}

// The messages of a recording, as the server's chunk reader sees them.
std::vector<OwnedMessage> MessagesOf(const Bytes& recording) {
  return ReadChunkStream(ChunkStreamOf(recording), 0, {}).messages;
}

void WriteHandshakeSeeds(const fs::path& out) {
  SeedWriter w(out / "handshake");
  for (const char* name : kRecordings) {
    const Bytes recording = testing::ReadTestData(name);
    w.Write(name, Concat({kSplitSeed, Prefix(recording, kHandshakeBytes + 64)}));
  }
  Bytes plain(1 + 2 * rtmp::kHandshakeSize, 0);
  plain[0] = rtmp::kRtmpVersion;
  w.Write("plain", Concat({kSplitSeed, plain}));
  w.Write("http", Concat({kSplitSeed, media::AsBytes("GET /live HTTP/1.1\r\nHost: x\r\n\r\n")}));
  const uint8_t tls[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03};
  w.Write("tls", Concat({kSplitSeed, tls}));
  plain[0] = rtmp::kRtmpeVersion;
  w.Write("rtmpe", Concat({kSplitSeed, plain}));
}

void WriteChunkReaderSeeds(const fs::path& out) {
  SeedWriter w(out / "chunk_reader");
  const uint8_t raw_mode[] = {0x01};
  const uint8_t no_limits[] = {0x00};
  for (const char* name : kRecordings) {
    const Bytes recording = testing::ReadTestData(name);
    const std::span<const uint8_t> chunks = ChunkStreamOf(recording);
    // FuzzedDataProvider takes the split seeds and the limits switch from the end.
    w.Write(name,
            Concat({raw_mode, Prefix(chunks, kShortSeed), no_limits, kSplitSeed, kSplitSeed}));
  }
  // Generated mode reads any bytes as a script; a few lengths of varied bytes start it.
  SplitRng rng(42);
  for (size_t length : {64, 512, 4096}) {
    Bytes script(length);
    for (uint8_t& b : script) b = uint8_t(rng.Next());
    script[0] = 0x00;
    w.Write(absl::StrCat("script", length), script);
  }
}

void WriteAmf0Seeds(const fs::path& out) {
  SeedWriter w(out / "amf0");
  const uint8_t default_limits[] = {0xFF};
  int n = 0;
  for (const char* name : kRecordings) {
    for (const OwnedMessage& m : MessagesOf(testing::ReadTestData(name))) {
      if (m.header.type != rtmp::MessageType::kCommandAmf0 &&
          m.header.type != rtmp::MessageType::kDataAmf0) {
        continue;
      }
      w.Write(absl::StrCat("message", n++), Concat({default_limits, m.payload}));
    }
  }
  // Every type, with a reference to an earlier object.
  namespace amf0 = media::amf0;
  Bytes all;
  amf0::Encode(amf0::Value::Object({{"n", amf0::Value::Number(-0.5)},
                                    {"b", amf0::Value::Boolean(true)},
                                    {"d", amf0::Value::Date(1.7e12, -60)},
                                    {"x", amf0::Value::XmlDocument("<a/>")},
                                    {"u", amf0::Value::Undefined()},
                                    {"z", amf0::Value::Null()},
                                    {"q", amf0::Value::Unsupported()}}),
               &all);
  amf0::Encode(amf0::Value::StrictArray({amf0::Value::EcmaArray({{"k", amf0::Value::String("v")}}),
                                         amf0::Value::TypedObject("C", {})}),
               &all);
  // A long string (marker 0x0C) need not be long; a short one keeps the seed small.
  const uint8_t long_string[] = {uint8_t(amf0::Marker::kLongString), 0, 0, 0, 2, 'h', 'i'};
  media::AppendBytes(&all, long_string);
  const uint8_t reference[] = {uint8_t(amf0::Marker::kReference), 0x00, 0x01};
  media::AppendBytes(&all, reference);
  w.Write("every_type", Concat({default_limits, all}));
}

// FLV tags of the source clip, `count` from `first`, as an aggregate body.
Bytes AggregateBody(const std::vector<testing::FlvTag>& tags, size_t first, size_t count) {
  Bytes body;
  for (size_t i = first; i < first + count && i < tags.size(); ++i) {
    media::AppendU8(&body, tags[i].type);
    media::AppendU24(&body, uint32_t(tags[i].body.size()));
    media::AppendU24(&body, tags[i].timestamp & 0xFFFFFF);
    media::AppendU8(&body, uint8_t(tags[i].timestamp >> 24));
    media::AppendU24(&body, 0);
    media::AppendBytes(&body, tags[i].body);
    media::AppendU32(&body, uint32_t(media::kFlvTagHeaderSize + tags[i].body.size()));
  }
  return body;
}

void WriteAggregateSeeds(const fs::path& out) {
  SeedWriter w(out / "aggregate");
  const std::vector<testing::FlvTag> tags =
      testing::ParseFlvTags(testing::ReadTestData("source_testsrc.flv"));
  const uint8_t time[8] = {0x40, 0x9C, 0, 0, 0, 0, 0, 0};  // 40000 ms (the target shifts by 0)
  w.Write("head", Concat({time, AggregateBody(tags, 0, 3)}));
  w.Write("frames", Concat({time, AggregateBody(tags, 3, 8)}));
  w.Write("one", Concat({time, AggregateBody(tags, 10, 1)}));
}

// One session_fuzz record per message: type, stream id, timestamp step, length, payload.
void AppendRecord(const OwnedMessage& m, uint64_t* last_time, Bytes* out) {
  media::AppendU8(out, uint8_t(m.header.type));
  media::AppendU8(out, uint8_t(m.header.stream_id));
  media::AppendU8(out, uint8_t(std::min<uint64_t>(m.header.timestamp - *last_time, 255)));
  media::AppendU16(out, uint16_t(m.payload.size()));
  media::AppendBytes(out, m.payload);
  *last_time = std::max(*last_time, m.header.timestamp);
}

void WriteSessionSeeds(const fs::path& out) {
  SeedWriter w(out / "session");
  for (const char* name : kRecordings) {
    Bytes seed(std::begin(kSplitSeed), std::end(kSplitSeed));
    uint64_t time = 0;
    for (const OwnedMessage& m : MessagesOf(testing::ReadTestData(name))) {
      if (m.payload.size() > 0xFFFF) continue;
      AppendRecord(m, &time, &seed);
      if (seed.size() > kShortSeed) break;
    }
    w.Write(name, seed);
  }
  // The first recording's commands up to its first media message, then Enhanced RTMP
  // media on that stream: a ManyTracksManyCodecs SequenceStart (hvc1 track 0, av01
  // track 1), a ModEx (TimestampOffsetNano) OneTrack coded frame, a multitrack Opus and
  // fLaC audio message, a MultichannelConfig and a Metadata packet.
  const std::vector<Bytes> enhanced = {
      {0x96, 0x20, 'h', 'v', 'c', '1',  0x00, 0x00, 0x00, 0x03, 0x01, 0x02,
       0x03, 'a',  'v', '0', '1', 0x01, 0x00, 0x00, 0x02, 0x81, 0x08},
      {0xA7, 0x02, 0x07, 0xA1, 0x20, 0x06, 0x01, 'a', 'v', '0', '1', 0x01, 0x32, 0x00},
      {0x95, 0x21, 'O', 'p', 'u', 's',  0x00, 0x00, 0x00, 0x01,
       0xFC, 'f',  'L', 'a', 'C', 0x01, 0x00, 0x00, 0x01, 0xFF},
      {0x94, 'O', 'p', 'u', 's', 0x01, 0x06, 0x00, 0x00, 0x00, 0x3F},
      {0x94, 'h', 'v', 'c', '1', 0x02, 0x00, 0x09, 'c', 'o', 'l', 'o', 'r', 'I', 'n', 'f', 'o'}};
  Bytes seed(std::begin(kSplitSeed), std::end(kSplitSeed));
  uint64_t time = 0;
  for (const OwnedMessage& m : MessagesOf(testing::ReadTestData(kRecordings[0]))) {
    const bool media =
        m.header.type == rtmp::MessageType::kVideo || m.header.type == rtmp::MessageType::kAudio;
    if (!media) {
      AppendRecord(m, &time, &seed);
      continue;
    }
    for (size_t i = 0; i < enhanced.size(); ++i) {
      OwnedMessage e = m;
      e.header.type = i == 2 || i == 3 ? rtmp::MessageType::kAudio : rtmp::MessageType::kVideo;
      e.payload = enhanced[i];
      AppendRecord(e, &time, &seed);
    }
    break;
  }
  w.Write("enhanced_rtmp", seed);
}

void WriteRingReaderSeeds(const fs::path& out) {
  SeedWriter w(out / "ring_reader");
  SplitRng rng(7);
  for (size_t length : {32, 128, 512, 2048}) {
    Bytes script(length);
    for (uint8_t& b : script) b = uint8_t(rng.Next());
    w.Write(absl::StrCat("script", length), script);
  }
}

// Headers as HAProxy (send-proxy, send-proxy-v2), an AWS NLB (v2 with its TLV) and a
// health check send them, each followed by the start of an RTMP handshake.
void WriteProxyProtocolSeeds(const fs::path& out) {
  SeedWriter w(out / "proxy_protocol");
  const Bytes c0 = {rtmp::kRtmpVersion, 0, 0, 0, 0};
  w.Write(
      "v1_tcp4",
      Concat({kSplitSeed, media::AsBytes("PROXY TCP4 198.51.100.7 10.0.0.2 40000 1935\r\n"), c0}));
  w.Write("v1_tcp6",
          Concat({kSplitSeed, media::AsBytes("PROXY TCP6 2001:db8::7 2001:db8::1 40000 1935\r\n"),
                  c0}));
  w.Write("v1_unknown", Concat({kSplitSeed, media::AsBytes("PROXY UNKNOWN\r\n"), c0}));
  const Bytes signature = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
  const Bytes inet = {0x21, 0x11, 0x00, 12, 198, 51, 100, 7, 10, 0, 0, 2, 0x9c, 0x40, 0x07, 0x8f};
  w.Write("v2_inet", Concat({kSplitSeed, signature, inet, c0}));
  Bytes inet6 = {0x21, 0x21, 0x00, 36 + 8, 0x20, 0x01, 0x0d, 0xb8};
  inet6.resize(4 + 36, 0);
  inet6[4 + 15] = 7;
  inet6[4 + 31] = 1;
  const Bytes ports_and_tlv = {0x9c, 0x40, 0x07, 0x8f, 0xEA, 0x00, 0x05, 0x01, 'v', 'p', 'c', 'e'};
  inet6.resize(4 + 32);
  w.Write("v2_inet6_aws_tlv", Concat({kSplitSeed, signature, inet6, ports_and_tlv, c0}));
  const Bytes local = {0x20, 0x00, 0x00, 0x00};
  w.Write("v2_local", Concat({kSplitSeed, signature, local}));
  const Bytes unix_socket = {0x21, 0x31, 0x00, 0xd8};
  w.Write("v2_unix", Concat({kSplitSeed, signature, unix_socket, Bytes(216, 0)}));
}

}  // namespace
}  // namespace uringest::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  const std::filesystem::path out = argv[1];
  using namespace uringest;
  using namespace uringest::fuzz;
  WriteHandshakeSeeds(out);
  WriteChunkReaderSeeds(out);
  WriteAmf0Seeds(out);
  WriteAggregateSeeds(out);
  WriteSessionSeeds(out);
  WriteRingReaderSeeds(out);
  WriteProxyProtocolSeeds(out);
  return 0;
}
