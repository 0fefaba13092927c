// handshake_test.cc: ServerHandshake against client handshakes built here, with this
// file's own HMAC-SHA256 (OpenSSL's one-shot HMAC()) and its own copy of the Flash keys,
// so the checks are those a digest client (ffmpeg, librtmp) makes, not the code's own.

#include "engine/rtmp/handshake.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "media/byte_order.h"
#include "tests/rtmp_testing.h"

namespace uringest::rtmp {
namespace {

using ::testing::HasSubstr;

constexpr size_t kC1Size = 1536;
constexpr size_t kS1Offset = 1;                   // S0
constexpr size_t kS2Offset = 1 + kC1Size;         // S0 + S1
constexpr size_t kClientBytes = 1 + 2 * kC1Size;  // C0 + C1 + C2
constexpr uint32_t kFfmpegVersion = 0x09007C02;   // what ffmpeg puts in C1 bytes 4..7

constexpr std::string_view kPlayerKey = "Genuine Adobe Flash Player 001";
constexpr std::string_view kServerKey = "Genuine Adobe Flash Media Server 001";
constexpr uint8_t kKeyTail[32] = {0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0,
                                  0xD1, 0x02, 0x9E, 0x7E, 0x57, 0x6E, 0xEC, 0x5D, 0x2D, 0x29, 0x80,
                                  0x6F, 0xAB, 0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE};

using Bytes = std::vector<uint8_t>;

Bytes Hmac(std::span<const uint8_t> key, std::span<const uint8_t> data) {
  Bytes out(32);
  unsigned int size = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), data.data(), data.size(), out.data(),
       &size);
  EXPECT_EQ(size, 32u);
  return out;
}

// A deterministic stand-in for RAND_bytes: a linear congruential generator.
ServerHandshakeOptions SeededOptions(uint32_t seed) {
  ServerHandshakeOptions options;
  options.time = 0x01020304;
  options.random = [state = seed](std::span<uint8_t> out) mutable {
    for (uint8_t& byte : out) {
      state = state * 1103515245u + 12345u;
      byte = static_cast<uint8_t>(state >> 16);
    }
  };
  return options;
}

Bytes RandomBytes(size_t size, uint32_t seed) {
  Bytes out(size);
  SeededOptions(seed).random(out);
  return out;
}

size_t SchemeBlock(HandshakeKind scheme) {
  return scheme == HandshakeKind::kDigestScheme0 ? 8 : 772;
}

size_t DigestPos(std::span<const uint8_t> packet, size_t block) {
  return (packet[block] + packet[block + 1] + packet[block + 2] + packet[block + 3]) % 728 + block +
         4;
}

// HMAC of `packet` without its 32 bytes at `pos`.
Bytes DigestWithout(std::span<const uint8_t> key, std::span<const uint8_t> packet, size_t pos) {
  Bytes joined(packet.begin(), packet.begin() + pos);
  joined.insert(joined.end(), packet.begin() + pos + 32, packet.end());
  return Hmac(key, joined);
}

Bytes FullServerKey() {
  Bytes key(kServerKey.begin(), kServerKey.end());
  for (uint8_t b : kKeyTail) key.push_back(b);  // insert() trips GCC 12's -Warray-bounds
  return key;
}

// C1 of a client: time + version + random, with a Player digest in `kind`'s scheme.
Bytes MakeC1(HandshakeKind kind, uint32_t seed = 7) {
  Bytes c1 = RandomBytes(kC1Size, seed);
  media::StoreU32(c1.data(), 1000);
  if (kind == HandshakeKind::kPlain) {
    media::StoreU32(c1.data() + 4, 0);
    return c1;
  }
  media::StoreU32(c1.data() + 4, kFfmpegVersion);
  size_t pos = DigestPos(c1, SchemeBlock(kind));
  Bytes digest = DigestWithout(media::AsBytes(kPlayerKey), c1, pos);
  std::copy(digest.begin(), digest.end(), c1.begin() + pos);
  return c1;
}

// C0 + C1 + C2, with C2 garbage.
Bytes MakeClientBytes(HandshakeKind kind) {
  Bytes all{3};
  media::AppendBytes(&all, MakeC1(kind));
  media::AppendBytes(&all, RandomBytes(kC1Size, 99));
  return all;
}

// Feeds `in` in pieces cut at `cuts`, takes the output as it appears, and returns it.
Bytes RunSplit(std::span<const uint8_t> in, const std::vector<size_t>& cuts) {
  ServerHandshake handshake(SeededOptions(1));
  Bytes out;
  size_t start = 0;
  for (size_t end : cuts) {
    absl::StatusOr<size_t> used = handshake.Consume(in.subspan(start, end - start));
    EXPECT_TRUE(used.ok()) << used.status();
    EXPECT_EQ(*used, end - start);
    media::AppendBytes(&out, handshake.output());
    handshake.MarkOutputTaken(handshake.output().size());
    start = end;
  }
  EXPECT_TRUE(handshake.complete());
  return out;
}

absl::Status ConsumeError(std::string_view bytes) {
  ServerHandshake handshake(SeededOptions(1));
  absl::StatusOr<size_t> used = handshake.Consume(media::AsBytes(bytes));
  EXPECT_FALSE(used.ok());
  return used.status();
}

TEST(ServerHandshakeTest, PlainC1IsEchoedInS2) {
  Bytes c1 = MakeC1(HandshakeKind::kPlain);
  ServerHandshake handshake(SeededOptions(1));
  Bytes in{3};
  media::AppendBytes(&in, c1);
  ASSERT_EQ(*handshake.Consume(in), in.size());
  EXPECT_EQ(handshake.kind(), HandshakeKind::kPlain);
  EXPECT_EQ(handshake.client_version(), 0u);

  std::span<const uint8_t> out = handshake.output();
  ASSERT_EQ(out.size(), ServerHandshake::kOutputSize);
  EXPECT_EQ(out[0], 3);
  EXPECT_EQ(media::LoadU32(&out[kS1Offset]), 0x01020304u);  // the injected time
  EXPECT_EQ(media::LoadU32(&out[kS1Offset + 4]), 0u);       // spec: zero
  Bytes expected_random = RandomBytes(kC1Size, 1);
  EXPECT_TRUE(std::equal(out.begin() + kS1Offset + 8, out.begin() + kS2Offset,
                         expected_random.begin() + 8));
  EXPECT_TRUE(std::equal(c1.begin(), c1.end(), out.begin() + kS2Offset));
  EXPECT_FALSE(handshake.complete());
}

TEST(ServerHandshakeTest, C1WithVersionButNoValidDigestFallsBackToPlain) {
  Bytes c1 = MakeC1(HandshakeKind::kDigestScheme0);
  c1[DigestPos(c1, 8)] ^= 1;  // break the digest
  ServerHandshake handshake(SeededOptions(1));
  Bytes in{3};
  media::AppendBytes(&in, c1);
  ASSERT_EQ(*handshake.Consume(in), in.size());
  EXPECT_EQ(handshake.kind(), HandshakeKind::kPlain);
  EXPECT_EQ(handshake.client_version(), kFfmpegVersion);
  std::span<const uint8_t> out = handshake.output();
  EXPECT_EQ(media::LoadU32(&out[kS1Offset + 4]), 0u);
  EXPECT_TRUE(std::equal(c1.begin(), c1.end(), out.begin() + kS2Offset));
}

// What a playing ffmpeg or librtmp checks: S1 carries a server digest (ffmpeg looks at
// 772, then at 8), and S2's last 32 bytes sign its first 1504 with a key derived from
// the client's own C1 digest.
void ExpectDigestAnswerVerifies(HandshakeKind scheme) {
  Bytes c1 = MakeC1(scheme);
  ServerHandshake handshake(SeededOptions(1));
  Bytes in{3};
  media::AppendBytes(&in, c1);
  ASSERT_EQ(*handshake.Consume(in), in.size());
  EXPECT_EQ(handshake.kind(), scheme);
  EXPECT_EQ(handshake.client_version(), kFfmpegVersion);

  std::span<const uint8_t> out = handshake.output();
  ASSERT_EQ(out.size(), ServerHandshake::kOutputSize);
  EXPECT_EQ(out[0], 3);
  std::span<const uint8_t> s1 = out.subspan(kS1Offset, kC1Size);
  std::span<const uint8_t> s2 = out.subspan(kS2Offset, kC1Size);
  EXPECT_GE(s1[4], 3) << "ffmpeg verifies S2 only when S1's version byte is 3 or more";

  size_t server_pos = DigestPos(s1, SchemeBlock(scheme));
  Bytes server_digest = DigestWithout(media::AsBytes(kServerKey), s1, server_pos);
  EXPECT_TRUE(std::equal(server_digest.begin(), server_digest.end(), s1.begin() + server_pos));

  size_t client_pos = DigestPos(c1, SchemeBlock(scheme));
  Bytes s2_key = Hmac(FullServerKey(), std::span(c1).subspan(client_pos, 32));
  Bytes s2_digest = Hmac(s2_key, s2.first(1504));
  EXPECT_TRUE(std::equal(s2_digest.begin(), s2_digest.end(), s2.begin() + 1504));
}

TEST(ServerHandshakeTest, DigestC1AtOffset8GetsVerifiableS1AndS2) {
  ExpectDigestAnswerVerifies(HandshakeKind::kDigestScheme0);
}

TEST(ServerHandshakeTest, DigestC1AtOffset772GetsVerifiableS2) {
  ExpectDigestAnswerVerifies(HandshakeKind::kDigestScheme1);
}

TEST(ServerHandshakeTest, DigestAnswerVerifiesForManyC1s) {
  for (uint32_t seed = 0; seed < 64; ++seed) {
    for (HandshakeKind scheme : {HandshakeKind::kDigestScheme0, HandshakeKind::kDigestScheme1}) {
      Bytes c1 = MakeC1(scheme, seed);
      ServerHandshake handshake(SeededOptions(seed + 1000));
      Bytes in{3};
      media::AppendBytes(&in, c1);
      ASSERT_TRUE(handshake.Consume(in).ok());
      ASSERT_EQ(handshake.kind(), scheme) << "seed " << seed;
      std::span<const uint8_t> s2 = handshake.output().subspan(kS2Offset);
      Bytes key =
          Hmac(FullServerKey(), std::span(c1).subspan(DigestPos(c1, SchemeBlock(scheme)), 32));
      Bytes digest = Hmac(key, s2.first(1504));
      ASSERT_TRUE(std::equal(digest.begin(), digest.end(), s2.begin() + 1504)) << "seed " << seed;
    }
  }
}

TEST(ServerHandshakeTest, RealRandomnessStillVerifies) {
  Bytes c1 = MakeC1(HandshakeKind::kDigestScheme0);
  Bytes in{3};
  media::AppendBytes(&in, c1);
  ServerHandshake first, second;
  ASSERT_TRUE(first.Consume(in).ok());
  ASSERT_TRUE(second.Consume(in).ok());
  std::span<const uint8_t> s1 = first.output().subspan(kS1Offset, kC1Size);
  EXPECT_FALSE(std::equal(s1.begin() + 8, s1.end(), second.output().begin() + kS1Offset + 8))
      << "RAND_bytes gave two connections the same S1";
  size_t pos = DigestPos(s1, 8);
  Bytes digest = DigestWithout(media::AsBytes(kServerKey), s1, pos);
  EXPECT_TRUE(std::equal(digest.begin(), digest.end(), s1.begin() + pos));
}

TEST(ServerHandshakeTest, RecordedFfmpegC1IsDigestScheme0) {
  Bytes session = testing::ReadTestData("ffmpeg_publish_chunk128.rtmp");
  ASSERT_GT(session.size(), kClientBytes);
  ServerHandshake handshake(SeededOptions(1));
  absl::StatusOr<size_t> used = handshake.Consume(session);
  ASSERT_TRUE(used.ok()) << used.status();
  EXPECT_EQ(*used, kClientBytes);
  EXPECT_TRUE(handshake.complete());
  EXPECT_EQ(handshake.kind(), HandshakeKind::kDigestScheme0);
  EXPECT_EQ(handshake.client_version(), kFfmpegVersion);
  EXPECT_EQ(session[*used], 0x03) << "the connect command's fmt 0 chunk on csid 3";
}

class HandshakeSplitTest : public ::testing::TestWithParam<HandshakeKind> {};

TEST_P(HandshakeSplitTest, EverySplitPointGivesIdenticalOutput) {
  Bytes in = MakeClientBytes(GetParam());
  Bytes whole = RunSplit(in, {in.size()});
  ASSERT_EQ(whole.size(), ServerHandshake::kOutputSize);
  for (size_t cut = 0; cut <= in.size(); ++cut) {
    ASSERT_EQ(RunSplit(in, {cut, in.size()}), whole) << "cut at " << cut;
  }
}

TEST_P(HandshakeSplitTest, ByteAtATimeGivesIdenticalOutput) {
  Bytes in = MakeClientBytes(GetParam());
  std::vector<size_t> cuts(in.size());
  for (size_t i = 0; i < in.size(); ++i) cuts[i] = i + 1;
  EXPECT_EQ(RunSplit(in, cuts), RunSplit(in, {in.size()}));
}

TEST_P(HandshakeSplitTest, OutputAppearsOnlyOnceC1IsComplete) {
  Bytes in = MakeClientBytes(GetParam());
  ServerHandshake handshake(SeededOptions(1));
  ASSERT_EQ(*handshake.Consume(std::span(in).first(kC1Size)), kC1Size);  // C0 + C1 less 1
  EXPECT_TRUE(handshake.output().empty());
  EXPECT_EQ(handshake.kind(), HandshakeKind::kPending);
  ASSERT_EQ(*handshake.Consume(std::span(in).subspan(kC1Size, 1)), 1u);
  EXPECT_EQ(handshake.output().size(), ServerHandshake::kOutputSize);
  EXPECT_EQ(handshake.kind(), GetParam());
}

INSTANTIATE_TEST_SUITE_P(AllKinds, HandshakeSplitTest,
                         ::testing::Values(HandshakeKind::kPlain, HandshakeKind::kDigestScheme0,
                                           HandshakeKind::kDigestScheme1),
                         [](const ::testing::TestParamInfo<HandshakeKind>& info) {
                           switch (info.param) {
                             case HandshakeKind::kDigestScheme0:
                               return "DigestScheme0";
                             case HandshakeKind::kDigestScheme1:
                               return "DigestScheme1";
                             default:
                               return "Plain";
                           }
                         });

TEST(ServerHandshakeTest, MarkOutputTakenShortensTheView) {
  Bytes in = MakeClientBytes(HandshakeKind::kPlain);
  ServerHandshake handshake(SeededOptions(1));
  ASSERT_TRUE(handshake.Consume(in).ok());
  const uint8_t* start = handshake.output().data();
  handshake.MarkOutputTaken(1000);
  EXPECT_EQ(handshake.output().size(), ServerHandshake::kOutputSize - 1000);
  EXPECT_EQ(handshake.output().data(), start + 1000);
  handshake.MarkOutputTaken(handshake.output().size());
  EXPECT_TRUE(handshake.output().empty());
}

TEST(ServerHandshakeTest, C2GarbageIsAccepted) {
  for (uint8_t fill : {0x00, 0xFF, 0x03, 0x47}) {
    Bytes in{3};
    media::AppendBytes(&in, MakeC1(HandshakeKind::kDigestScheme0));
    in.resize(kClientBytes, fill);
    ServerHandshake handshake(SeededOptions(1));
    absl::StatusOr<size_t> used = handshake.Consume(in);
    ASSERT_TRUE(used.ok()) << used.status();
    EXPECT_EQ(*used, kClientBytes);
    EXPECT_TRUE(handshake.complete());
  }
}

TEST(ServerHandshakeTest, BytesAfterC2AreLeftForTheChunkStream) {
  Bytes in = MakeClientBytes(HandshakeKind::kPlain);
  media::AppendBytes(&in, media::AsBytes("chunk stream bytes"));
  ServerHandshake handshake(SeededOptions(1));
  EXPECT_EQ(*handshake.Consume(in), kClientBytes);
  EXPECT_TRUE(handshake.complete());
  EXPECT_EQ(*handshake.Consume(std::span(in).subspan(kClientBytes)), 0u);
}

TEST(ServerHandshakeTest, C2SplitFromTrailingBytesStopsAtItsEnd) {
  Bytes in = MakeClientBytes(HandshakeKind::kPlain);
  media::AppendBytes(&in, media::AsBytes("xyz"));
  ServerHandshake handshake(SeededOptions(1));
  EXPECT_EQ(*handshake.Consume(std::span(in).first(kClientBytes - 2)), kClientBytes - 2);
  EXPECT_FALSE(handshake.complete());
  EXPECT_EQ(*handshake.Consume(std::span(in).subspan(kClientBytes - 2)), 2u);
  EXPECT_TRUE(handshake.complete());
}

TEST(ServerHandshakeTest, EmptyInputConsumesNothing) {
  ServerHandshake handshake(SeededOptions(1));
  EXPECT_EQ(*handshake.Consume({}), 0u);
  EXPECT_TRUE(handshake.output().empty());
  EXPECT_FALSE(handshake.complete());
}

TEST(ServerHandshakeTest, HttpGetIsReportedWithItsFirstLine) {
  absl::Status status = ConsumeError("GET /live/stream HTTP/1.1\r\nHost: example\r\n\r\n");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("HTTP request (\"GET /live/stream HTTP/1.1\")"));
}

TEST(ServerHandshakeTest, LongHttpLineIsCutAndEscaped) {
  absl::Status status =
      ConsumeError("POST /\x01\"x\" 0123456789012345678901234567890123456789 HTTP/1.1\r\n");
  EXPECT_THAT(status.message(), HasSubstr("POST /\\x01\\\"x\\\" 0123"));
  EXPECT_THAT(status.message(), HasSubstr("...\""));
  EXPECT_THAT(status.message(), ::testing::Not(HasSubstr("HTTP/1.1")));
}

TEST(ServerHandshakeTest, EveryHttpMethodIsRecognised) {
  for (std::string_view method :
       {"GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE"}) {
    absl::Status status = ConsumeError(std::string(method) + " / HTTP/1.0\r\n");
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(status.message(), HasSubstr("looks like an HTTP request")) << method;
  }
}

TEST(ServerHandshakeTest, LoneC0IsJudgedWithTheBytesAtHand) {
  EXPECT_THAT(ConsumeError("G").message(), HasSubstr("HTTP request (\"G\")"));
  EXPECT_THAT(ConsumeError("\x16").message(), HasSubstr("TLS ClientHello"));
  EXPECT_THAT(ConsumeError("\x06").message(), HasSubstr("RTMPE"));
}

TEST(ServerHandshakeTest, TlsClientHelloSuggestsRtmps) {
  absl::Status status = ConsumeError(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc", 9));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "looks like a TLS ClientHello: is the client using rtmps:// on the plain RTMP port?");
}

TEST(ServerHandshakeTest, RtmpeVersionsAreRefused) {
  for (uint8_t version : {6, 8, 9}) {
    absl::Status status = ConsumeError(std::string(1, static_cast<char>(version)) + "abc");
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(status.message(),
              absl::StrCat("RTMPE (encrypted RTMP, version ", version, ") is not supported"));
  }
}

TEST(ServerHandshakeTest, OtherVersionsAreReportedInHex) {
  EXPECT_EQ(ConsumeError(std::string("\x00", 1)).message(), "unsupported RTMP version 0x00");
  EXPECT_EQ(ConsumeError("\x05rest").message(), "unsupported RTMP version 0x05");
  EXPECT_EQ(ConsumeError("\x16\x01").message(), "unsupported RTMP version 0x16");
  EXPECT_EQ(ConsumeError("GEX /").message(), "unsupported RTMP version 0x47");
  EXPECT_EQ(ConsumeError("\xff").message(), "unsupported RTMP version 0xff");
}

TEST(ServerHandshakeTest, AnErrorIsFinal) {
  ServerHandshake handshake(SeededOptions(1));
  absl::Status first = handshake.Consume(media::AsBytes("\x05")).status();
  ASSERT_FALSE(first.ok());
  Bytes good = MakeClientBytes(HandshakeKind::kPlain);
  EXPECT_EQ(handshake.Consume(good).status(), first);
  EXPECT_TRUE(handshake.output().empty());
}

TEST(ServerHandshakeTest, KindNamesForLogging) {
  EXPECT_EQ(HandshakeKindName(HandshakeKind::kPending), "pending");
  EXPECT_EQ(HandshakeKindName(HandshakeKind::kPlain), "plain");
  EXPECT_EQ(HandshakeKindName(HandshakeKind::kDigestScheme0), "digest scheme 0");
  EXPECT_EQ(HandshakeKindName(HandshakeKind::kDigestScheme1), "digest scheme 1");
}

TEST(ServerHandshakeTest, FootprintStaysSmall) { EXPECT_LE(sizeof(ServerHandshake), 4700u); }

}  // namespace
}  // namespace uringest::rtmp
