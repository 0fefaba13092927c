// handshake_fuzz: the server handshake (engine/rtmp/handshake.h). The input is a split
// seed (8 bytes) and then what a peer sends first: C0, C1, C2 and whatever follows.
//
// Checked: the handshake consumes exactly min(input, 3073) bytes and nothing past C2;
// the answer appears whole (3073 bytes) once C0 and C1 are in and never changes after;
// two runs fed the same bytes in different splits agree on the verdict, the bytes
// consumed, the answer and the kind; C0 = 3 is never refused and any other C0 always is, with a
// reason; a plain handshake's S2 echoes C1 and its S1 carries the server time; every
// answer starts with S0 = 3.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "engine/rtmp/handshake.h"
#include "engine/rtmp/rtmp_format.h"
#include "fuzz/fuzz_util.h"
#include "media/byte_order.h"

namespace uringest::fuzz {
namespace {

using rtmp::ServerHandshake;

constexpr uint32_t kServerTime = 0x01020304;

struct Run {
  absl::Status status;
  size_t consumed = 0;
  std::vector<uint8_t> answer;
  bool complete = false;
  rtmp::HandshakeKind kind = rtmp::HandshakeKind::kPending;
};

Run Handshake(std::span<const uint8_t> bytes, uint64_t split_seed) {
  ServerHandshake handshake(rtmp::ServerHandshakeOptions{
      .time = kServerTime,
      .random = [](std::span<uint8_t> out) { std::memset(out.data(), 0x5A, out.size()); }});
  Run run;
  std::optional<std::vector<uint8_t>> first_answer;
  ForEachPiece(bytes, split_seed, [&](std::span<const uint8_t> in) {
    if (!run.status.ok()) return;
    absl::StatusOr<size_t> used = handshake.Consume(in);
    if (!used.ok()) {
      run.status = used.status();
      FUZZ_CHECK(
          run.status.code() == absl::StatusCode::kInvalidArgument && !run.status.message().empty(),
          "refusal without a reason: %s", run.status.ToString().c_str());
      FUZZ_CHECK(handshake.Consume(in).status() == run.status, "an error must be final");
      return;
    }
    FUZZ_CHECK(*used <= in.size(), "consumed %zu of %zu", *used, in.size());
    FUZZ_CHECK(*used == in.size() || handshake.complete(),
               "stopped at %zu of %zu bytes before C2 was complete", *used, in.size());
    run.consumed += *used;
    const std::span<const uint8_t> out = handshake.output();
    FUZZ_CHECK(out.empty() || out.size() == ServerHandshake::kOutputSize,
               "partial answer of %zu bytes", out.size());
    FUZZ_CHECK(out.empty() == (run.consumed < 1 + rtmp::kHandshakeSize || first_answer),
               "answer of %zu bytes after %zu input bytes", out.size(), run.consumed);
    if (!out.empty()) {
      run.answer.assign(out.begin(), out.end());
      handshake.MarkOutputTaken(out.size());
      FUZZ_CHECK(!first_answer.has_value(), "a second answer");
      first_answer = run.answer;
    }
  });
  run.complete = handshake.complete();
  run.kind = handshake.kind();
  return run;
}

void CheckAnswer(const Run& run, std::span<const uint8_t> bytes) {
  if (!run.status.ok()) {
    FUZZ_CHECK(bytes[0] != rtmp::kRtmpVersion, "C0 = 3 refused: %s",
               std::string(run.status.message()).c_str());
    return;
  }
  FUZZ_CHECK(bytes[0] == rtmp::kRtmpVersion, "C0 = %u accepted", bytes[0]);
  FUZZ_CHECK(run.consumed == std::min(bytes.size(), ServerHandshake::kInputSize),
             "consumed %zu of %zu", run.consumed, bytes.size());
  FUZZ_CHECK(run.complete == (bytes.size() >= ServerHandshake::kInputSize), "complete() wrong");
  if (run.answer.empty()) return;
  FUZZ_CHECK(run.answer[0] == rtmp::kRtmpVersion, "S0 = %u", run.answer[0]);
  FUZZ_CHECK(media::LoadU32(run.answer.data() + 1) == kServerTime, "S1 lacks the server time");
  const std::span<const uint8_t> c1 = bytes.subspan(1, rtmp::kHandshakeSize);
  const std::span<const uint8_t> s2(run.answer.data() + 1 + rtmp::kHandshakeSize,
                                    rtmp::kHandshakeSize);
  if (run.kind == rtmp::HandshakeKind::kPlain) {
    FUZZ_CHECK(std::equal(c1.begin(), c1.end(), s2.begin()), "plain S2 is not C1");
    FUZZ_CHECK(media::LoadU32(run.answer.data() + 5) == 0, "plain S1 with a version");
  } else {
    FUZZ_CHECK(run.kind != rtmp::HandshakeKind::kPending, "answered but pending");
    FUZZ_CHECK(media::LoadU32(c1.data() + 4) != 0, "digest answer to a zero-version C1");
  }
}

}  // namespace
}  // namespace uringest::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace uringest;
  using namespace uringest::fuzz;
  if (size <= 8) return 0;
  uint64_t seed;
  std::memcpy(&seed, data, 8);
  const std::span<const uint8_t> bytes(data + 8, size - 8);
  const Run a = Handshake(bytes, 0);
  const Run b = Handshake(bytes, seed);
  // The reason may differ (C0 is judged with the bytes that came with it), the verdict not.
  FUZZ_CHECK(a.status.code() == b.status.code(), "the splits disagree: '%s' and '%s'",
             a.status.ToString().c_str(), b.status.ToString().c_str());
  FUZZ_CHECK(a.consumed == b.consumed && a.answer == b.answer && a.kind == b.kind &&
                 a.complete == b.complete,
             "the splits give different handshakes");
  CheckAnswer(a, bytes);
  return 0;
}
