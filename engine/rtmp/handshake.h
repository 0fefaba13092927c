// handshake.h: the server side of the RTMP handshake (spec 5.2), I/O-free. The client
// sends C0 (version, 1 byte), C1 (1536 bytes) and C2 (1536 bytes); the server answers
// S0, S1 and S2 in one 3073-byte block as soon as C0 and C1 are in.
//
// Two handshakes are spoken, chosen by what C1 holds:
//  - plain (the spec's): S1 = time(4) + zero(4) + random(1528), S2 = an echo of C1.
//  - digest (the "complex" handshake of Flash Player, ffmpeg and librtmp): C1 carries an
//    HMAC-SHA256 digest at an offset given by scheme 0 (block at 8) or scheme 1 (block
//    at 772). The server answers with an S1 that carries its own digest in the same
//    scheme and an S2 signed with a key derived from the client's digest, which clients
//    that play (ffmpeg -i rtmp://...) check. A C1 whose version field (bytes 4..7) is
//    zero, or whose digest verifies in neither scheme, gets the plain handshake.
// C2 is counted, not checked: many clients send garbage there.
//
// Bytes that are not RTMP (an HTTP request, a TLS ClientHello, RTMPE) are recognised
// from the first bytes and refused with an InvalidArgument Status that says what they
// look like, for the connection's log line.
//
//   ServerHandshakeOptions options;
//   options.time = NowMs32();
//   ServerHandshake handshake(std::move(options));
//   absl::StatusOr<size_t> used = handshake.Consume(received);
//   if (!used.ok()) return Close(used.status());  // the peer is not speaking RTMP
//   send_queue.Append(handshake.output());
//   handshake.MarkOutputTaken(handshake.output().size());
//   if (handshake.complete()) chunk_reader.Consume(received.subspan(*used));
//
// Thread safety: none; a ServerHandshake belongs to one connection on one shard.

#ifndef URINGEST_ENGINE_RTMP_HANDSHAKE_H_
#define URINGEST_ENGINE_RTMP_HANDSHAKE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/rtmp/rtmp_format.h"

namespace uringest::rtmp {

// Which handshake the client got, for logging.
enum class HandshakeKind : uint8_t {
  kPending,        // C1 is not complete yet
  kPlain,          // spec 5.2: S2 echoes C1
  kDigestScheme0,  // digest block at C1 offset 8
  kDigestScheme1,  // digest block at C1 offset 772
};

// "pending", "plain", "digest scheme 0" or "digest scheme 1".
std::string_view HandshakeKindName(HandshakeKind kind);

struct ServerHandshakeOptions {
  // S1's time field (spec 5.2.3): the server's epoch in milliseconds, any value. The
  // handshake reads no clock of its own.
  uint32_t time = 0;
  // Fills its argument with random bytes for S1 and S2. Empty means OpenSSL's
  // RAND_bytes; tests inject deterministic bytes. Called only from inside Consume(), on
  // the call that completes C1 (once for S1, and once more for S2's random part in the
  // digest handshake).
  std::function<void(std::span<uint8_t>)> random;
};

// One connection's handshake. About 3.1 KB: the 3073-byte answer, in whose S2 slot C1
// is received (the plain handshake echoes it there), plus counters.
class ServerHandshake {
 public:
  // S0 + S1 + S2.
  static constexpr size_t kOutputSize = 1 + kHandshakeSize + kHandshakeSize;
  // C0 + C1 + C2: Consume() never takes more than this in all.
  static constexpr size_t kInputSize = 1 + kHandshakeSize + kHandshakeSize;

  explicit ServerHandshake(ServerHandshakeOptions options = {});
  ServerHandshake(const ServerHandshake&) = delete;
  ServerHandshake& operator=(const ServerHandshake&) = delete;

  // Takes the bytes that arrived, in any split, and returns how many it consumed: all of
  // `in` up to the end of C2 and nothing after it (those bytes are the chunk stream's),
  // 0 once complete(). C0 is judged as soon as it arrives, using whatever bytes follow
  // it in `in`: an InvalidArgument Status names what the peer seems to be speaking.
  // An error is final: every later call returns it again.
  // `in` is not retained.
  [[nodiscard]] absl::StatusOr<size_t> Consume(std::span<const uint8_t> in);

  // The part of S0 + S1 + S2 not yet marked taken: empty until C0 and C1 are in, then
  // the 3073 bytes. The bytes viewed stay valid and unchanged for the life of this
  // object; MarkOutputTaken() only shortens the view.
  std::span<const uint8_t> output() const {
    return std::span<const uint8_t>(out_).subspan(out_taken_, out_ready_ - out_taken_);
  }
  // REQUIRES: n <= output().size().
  void MarkOutputTaken(size_t n);

  // C2 has been consumed. output() may still hold bytes to send: a client may send C2
  // before it has seen S1.
  bool complete() const { return received_ == kInputSize; }
  HandshakeKind kind() const { return kind_; }
  // C1's version field (bytes 4..7), e.g. 0x09007C02 for ffmpeg's "9.0.124.2"; 0 for
  // a spec client, or before C1 is complete. For logging.
  uint32_t client_version() const { return client_version_; }

 private:
  static constexpr size_t kC1End = 1 + kHandshakeSize;  // received_ once C0 + C1 are in

  // One phase's worth of `in`: C0, or the rest of C1, or the rest of C2.
  absl::StatusOr<size_t> ConsumeStep(std::span<const uint8_t> in);
  absl::StatusOr<size_t> ConsumeC1(std::span<const uint8_t> in);
  // Builds S0 + S1 + S2 for the C1 held in s2().
  absl::Status AnswerC1();
  absl::Status AnswerDigestC1(HandshakeKind scheme, size_t client_digest_pos);
  absl::Status FillRandom(std::span<uint8_t> out);

  std::span<uint8_t> s1() { return std::span<uint8_t>(out_).subspan(1, kHandshakeSize); }
  // C1 is received here; the answer to it overwrites it.
  std::span<uint8_t> s2() {
    return std::span<uint8_t>(out_).subspan(1 + kHandshakeSize, kHandshakeSize);
  }

  ServerHandshakeOptions options_;
  absl::Status error_;      // OK until Consume() fails
  uint16_t received_ = 0;   // input bytes consumed: 0..kInputSize
  uint16_t out_ready_ = 0;  // 0, or kOutputSize once S0..S2 are built
  uint16_t out_taken_ = 0;  // bytes marked taken
  HandshakeKind kind_ = HandshakeKind::kPending;
  uint32_t client_version_ = 0;
  std::array<uint8_t, kOutputSize> out_;  // S0 + S1 + S2
};

}  // namespace uringest::rtmp

#endif  // URINGEST_ENGINE_RTMP_HANDSHAKE_H_
