// handshake.cc: the server side of the RTMP handshake. The digest handshake's layout is
// not in Adobe's published specification; it is the one Flash Player, FMS, librtmp,
// ffmpeg, nginx-rtmp and SRS agree on.

#include "engine/rtmp/handshake.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "media/byte_order.h"

namespace uringest::rtmp {
namespace {

// ---- Digest handshake layout ----
// After time(4) + version(4), C1 and S1 hold two 764-byte blocks, a key block and a
// digest block. Scheme 0 puts the digest block first, scheme 1 second. A digest block is
// offset(4) + random(n) + digest(32) + random(728 - n), where n is the sum of the four
// offset bytes modulo 728 = 764 - 4 - 32.
constexpr size_t kDigestSize = 32;  // SHA-256
constexpr size_t kBlockSize = 764;
constexpr size_t kDigestOffsetModulus = kBlockSize - 4 - kDigestSize;
constexpr size_t kScheme0Block = 4 + 4;
constexpr size_t kScheme1Block = kScheme0Block + kBlockSize;
static_assert(kScheme1Block + kBlockSize == kHandshakeSize);
// The digest handshake's S2: random(1504) + HMAC-SHA256 of that random part.
constexpr size_t kS2SignedSize = kHandshakeSize - kDigestSize;
// S1's version field in the digest handshake. Clients verify S2 only when S1's first
// version byte is 3 or more (ffmpeg), so it must not be zero. Reads as "FMS 4.5.0.1".
constexpr uint32_t kDigestServerVersion = 0x04050001;

// The published Flash keys: a text followed by the same 32 constant bytes. C1's digest is
// keyed with the Player text alone (30 bytes), S1's with the Server text alone (36), and
// S2's key is derived with the whole Server key (68).
constexpr std::string_view kPlayerKeyText = "Genuine Adobe Flash Player 001";
constexpr std::string_view kServerKeyText = "Genuine Adobe Flash Media Server 001";
constexpr uint8_t kKeySuffix[32] = {
    0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1, 0x02, 0x9E, 0x7E, 0x57,
    0x6E, 0xEC, 0x5D, 0x2D, 0x29, 0x80, 0x6F, 0xAB, 0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE};
static_assert(kPlayerKeyText.size() == 30 && kServerKeyText.size() == 36);
constexpr std::array<uint8_t, kServerKeyText.size() + sizeof(kKeySuffix)> kFullServerKey = [] {
  std::array<uint8_t, kServerKeyText.size() + sizeof(kKeySuffix)> key{};
  std::copy(kServerKeyText.begin(), kServerKeyText.end(), key.begin());
  std::copy(std::begin(kKeySuffix), std::end(kKeySuffix), key.begin() + kServerKeyText.size());
  return key;
}();

// ---- What non-RTMP peers send first ----
constexpr uint8_t kTlsHandshakeRecord = 0x16;  // TLS record type; then version 0x03 0x0n
constexpr uint8_t kRtmpeVersions[] = {kRtmpeVersion, 8, 9};  // 8: XTEA, 9: Blowfish
constexpr std::string_view kHttpMethods[] = {"GET ",     "POST ",  "HEAD ",    "PUT ",  "DELETE ",
                                             "OPTIONS ", "PATCH ", "CONNECT ", "TRACE "};
constexpr size_t kQuotedLineMax = 40;

using Digest = std::array<uint8_t, kDigestSize>;
using MacContext = std::unique_ptr<EVP_MAC_CTX, decltype(&EVP_MAC_CTX_free)>;

// OpenSSL's HMAC implementation, fetched once per process.
EVP_MAC* HmacAlgorithm() {
  static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, OSSL_MAC_NAME_HMAC, nullptr);
  return mac;
}

// HMAC-SHA256 with `key` of `first` followed by `second`.
absl::StatusOr<Digest> HmacSha256(std::span<const uint8_t> key, std::span<const uint8_t> first,
                                  std::span<const uint8_t> second = {}) {
  MacContext ctx(HmacAlgorithm() ? EVP_MAC_CTX_new(HmacAlgorithm()) : nullptr, EVP_MAC_CTX_free);
  char sha256[] = "SHA256";
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, sha256, 0),
                               OSSL_PARAM_construct_end()};
  Digest out;
  size_t out_size = 0;
  if (ctx == nullptr || !EVP_MAC_init(ctx.get(), key.data(), key.size(), params) ||
      !EVP_MAC_update(ctx.get(), first.data(), first.size()) ||
      (!second.empty() && !EVP_MAC_update(ctx.get(), second.data(), second.size())) ||
      !EVP_MAC_final(ctx.get(), out.data(), &out_size, out.size()) || out_size != out.size()) {
    return absl::InternalError("handshake: OpenSSL's HMAC-SHA256 failed");
  }
  return out;
}

// Where the digest sits in `packet` (C1 or S1) under the scheme whose block starts at
// `block`.
size_t DigestPosition(std::span<const uint8_t> packet, size_t block) {
  size_t sum = packet[block] + packet[block + 1] + packet[block + 2] + packet[block + 3];
  return block + 4 + sum % kDigestOffsetModulus;
}

// The digest of `packet` without the 32 bytes at `pos`.
absl::StatusOr<Digest> PacketDigest(std::span<const uint8_t> key, std::span<const uint8_t> packet,
                                    size_t pos) {
  return HmacSha256(key, packet.first(pos), packet.subspan(pos + kDigestSize));
}

size_t SchemeBlock(HandshakeKind scheme) {
  return scheme == HandshakeKind::kDigestScheme0 ? kScheme0Block : kScheme1Block;
}

// Whether `head` starts like `method`: all of it, or all that has arrived.
bool StartsLike(std::string_view head, std::string_view method) {
  size_t n = std::min(head.size(), method.size());
  return head.substr(0, n) == method.substr(0, n);
}

// The first line of `text`, at most kQuotedLineMax bytes of it, escaped for a log line.
std::string QuoteFirstLine(std::string_view text) {
  std::string_view line = text.substr(0, text.find_first_of("\r\n"));
  bool cut = line.size() > kQuotedLineMax;
  // Debian's abseil has its own absl::string_view, not an alias of std::string_view.
  absl::string_view shown(line.data(), std::min(line.size(), kQuotedLineMax));
  return absl::StrCat("\"", absl::CHexEscape(shown), cut ? "..." : "", "\"");
}

// Why `head` (C0 and whatever followed it) is not a plain RTMP handshake, or OK.
absl::Status CheckVersion(std::span<const uint8_t> head) {
  const uint8_t c0 = head[0];
  if (c0 == kRtmpVersion) return absl::OkStatus();
  if (std::find(std::begin(kRtmpeVersions), std::end(kRtmpeVersions), c0) !=
      std::end(kRtmpeVersions)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("RTMPE (encrypted RTMP, version %d) is not supported", c0));
  }
  if (c0 == kTlsHandshakeRecord && (head.size() < 2 || head[1] == 0x03)) {
    return absl::InvalidArgumentError(
        "looks like a TLS ClientHello: is the client using rtmps:// on the plain RTMP port?");
  }
  std::string_view text(reinterpret_cast<const char*>(head.data()), head.size());
  for (std::string_view method : kHttpMethods) {
    if (StartsLike(text, method)) {
      return absl::InvalidArgumentError(
          absl::StrCat("looks like an HTTP request (", QuoteFirstLine(text), "), not RTMP"));
    }
  }
  return absl::InvalidArgumentError(absl::StrFormat("unsupported RTMP version 0x%02x", c0));
}

}  // namespace

std::string_view HandshakeKindName(HandshakeKind kind) {
  switch (kind) {
    case HandshakeKind::kPending:
      return "pending";
    case HandshakeKind::kPlain:
      return "plain";
    case HandshakeKind::kDigestScheme0:
      return "digest scheme 0";
    case HandshakeKind::kDigestScheme1:
      return "digest scheme 1";
  }
  return "unknown";
}

ServerHandshake::ServerHandshake(ServerHandshakeOptions options) : options_(std::move(options)) {}

absl::StatusOr<size_t> ServerHandshake::Consume(std::span<const uint8_t> in) {
  if (!error_.ok()) return error_;
  size_t used = 0;
  while (used < in.size() && !complete()) {
    absl::StatusOr<size_t> n = ConsumeStep(in.subspan(used));
    if (!n.ok()) {
      error_ = n.status();
      return error_;
    }
    used += *n;
  }
  return used;
}

void ServerHandshake::MarkOutputTaken(size_t n) {
  assert(n <= output().size());
  out_taken_ += static_cast<uint16_t>(n);
}

absl::StatusOr<size_t> ServerHandshake::ConsumeStep(std::span<const uint8_t> in) {
  if (received_ == 0) {
    if (absl::Status status = CheckVersion(in); !status.ok()) return status;
    received_ = 1;
    return 1;
  }
  if (received_ < kC1End) return ConsumeC1(in);
  size_t n = std::min(in.size(), kInputSize - received_);  // C2: counted, not kept
  received_ += static_cast<uint16_t>(n);
  return n;
}

absl::StatusOr<size_t> ServerHandshake::ConsumeC1(std::span<const uint8_t> in) {
  size_t have = received_ - 1;
  size_t n = std::min(in.size(), kHandshakeSize - have);
  std::memcpy(s2().data() + have, in.data(), n);
  received_ += static_cast<uint16_t>(n);
  if (received_ == kC1End) {
    if (absl::Status status = AnswerC1(); !status.ok()) return status;
  }
  return n;
}

absl::Status ServerHandshake::AnswerC1() {
  std::span<const uint8_t> c1 = s2();
  client_version_ = media::LoadU32(c1.data() + 4);
  out_[0] = kRtmpVersion;
  if (absl::Status status = FillRandom(s1()); !status.ok()) return status;
  media::StoreU32(s1().data(), options_.time);
  if (client_version_ != 0) {
    for (HandshakeKind scheme : {HandshakeKind::kDigestScheme0, HandshakeKind::kDigestScheme1}) {
      size_t pos = DigestPosition(c1, SchemeBlock(scheme));
      absl::StatusOr<Digest> expected = PacketDigest(media::AsBytes(kPlayerKeyText), c1, pos);
      if (!expected.ok()) return expected.status();
      if (CRYPTO_memcmp(expected->data(), c1.data() + pos, kDigestSize) == 0) {
        return AnswerDigestC1(scheme, pos);
      }
    }
  }
  media::StoreU32(s1().data() + 4, 0);  // S2 already holds C1: the echo the spec asks for
  kind_ = HandshakeKind::kPlain;
  out_ready_ = kOutputSize;
  return absl::OkStatus();
}

absl::Status ServerHandshake::AnswerDigestC1(HandshakeKind scheme, size_t client_digest_pos) {
  Digest client_digest;
  std::memcpy(client_digest.data(), s2().data() + client_digest_pos, kDigestSize);

  media::StoreU32(s1().data() + 4, kDigestServerVersion);
  size_t server_pos = DigestPosition(s1(), SchemeBlock(scheme));
  absl::StatusOr<Digest> s1_digest = PacketDigest(media::AsBytes(kServerKeyText), s1(), server_pos);
  if (!s1_digest.ok()) return s1_digest.status();
  std::copy(s1_digest->begin(), s1_digest->end(), s1().begin() + server_pos);

  absl::StatusOr<Digest> s2_key = HmacSha256(kFullServerKey, client_digest);
  if (!s2_key.ok()) return s2_key.status();
  std::span<uint8_t> s2_random = s2().first(kS2SignedSize);
  if (absl::Status status = FillRandom(s2_random); !status.ok()) return status;
  absl::StatusOr<Digest> s2_digest = HmacSha256(*s2_key, s2_random);
  if (!s2_digest.ok()) return s2_digest.status();
  std::copy(s2_digest->begin(), s2_digest->end(), s2().begin() + kS2SignedSize);

  kind_ = scheme;
  out_ready_ = kOutputSize;
  return absl::OkStatus();
}

absl::Status ServerHandshake::FillRandom(std::span<uint8_t> out) {
  if (options_.random) {
    options_.random(out);
    return absl::OkStatus();
  }
  if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) {
    return absl::InternalError("handshake: OpenSSL's RAND_bytes failed");
  }
  return absl::OkStatus();
}

}  // namespace uringest::rtmp
