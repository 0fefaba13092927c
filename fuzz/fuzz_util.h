// fuzz_util.h: what the libFuzzer targets under fuzz/ share: a check that aborts with a
// message (so libFuzzer records the input), deterministic splits of a byte string, and
// owned copies of the Messages the chunk reader hands out (its views die at the next Read).
//
//   FUZZ_CHECK(a == b, "the two runs disagree at message %zu", i);
//   SplitRng rng(seed);
//   ForEachPiece(bytes, &rng, [&](std::span<const uint8_t> piece) { ... });

#ifndef URINGEST_FUZZ_FUZZ_UTIL_H_
#define URINGEST_FUZZ_FUZZ_UTIL_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/rtmp/chunk_reader.h"
#include "engine/rtmp/message.h"

// An invariant the target asserts. Unlike assert() it stays in every build type.
#define FUZZ_CHECK(cond, ...)                                                             \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n  ", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                                                  \
      std::fprintf(stderr, "\n");                                                         \
      std::abort();                                                                       \
    }                                                                                     \
  } while (0)

namespace uringest::fuzz {

// A small deterministic generator (splitmix64): split points and choices that depend on
// a seed taken from the input, so libFuzzer explores them by mutating a few bytes.
class SplitRng {
 public:
  explicit SplitRng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
    return z ^ (z >> 31);
  }
  // A piece length in 1..max, biased towards short pieces (one byte, a few bytes) that
  // cut headers, and now and then long ones.
  size_t PieceLength(size_t max) {
    const uint64_t r = Next();
    size_t n;
    switch (r & 3) {
      case 0:
        n = 1;
        break;
      case 1:
        n = 1 + (r >> 8) % 16;
        break;
      case 2:
        n = 1 + (r >> 8) % 512;
        break;
      default:
        n = 1 + (r >> 8) % 65536;
        break;
    }
    return n < max ? n : max;
  }

 private:
  uint64_t state_;
};

// Calls fn with consecutive pieces of `bytes` whose lengths `rng` picks; seed 0 feeds it
// whole.
template <typename Fn>
void ForEachPiece(std::span<const uint8_t> bytes, uint64_t seed, Fn&& fn) {
  SplitRng rng(seed);
  size_t pos = 0;
  while (pos < bytes.size()) {
    const size_t n = seed == 0 ? bytes.size() : rng.PieceLength(bytes.size() - pos);
    fn(bytes.subspan(pos, n));
    pos += n;
  }
}

// A Message that owns its payload.
struct OwnedMessage {
  rtmp::MessageHeader header;
  std::vector<uint8_t> payload;

  static OwnedMessage Of(const rtmp::Message& m) {
    return OwnedMessage{m.header, std::vector<uint8_t>(m.payload.begin(), m.payload.end())};
  }
  bool operator==(const OwnedMessage& o) const {
    return header.chunk_stream_id == o.header.chunk_stream_id && header.type == o.header.type &&
           header.stream_id == o.header.stream_id && header.timestamp == o.header.timestamp &&
           payload == o.payload;
  }
  std::string Describe() const;
};

// What a ChunkReader made of a byte stream: the messages it completed, and the error
// that ended it (OK if none).
struct ReadOutcome {
  std::vector<OwnedMessage> messages;
  absl::Status status;
  size_t consumed = 0;  // input bytes accepted before the error (all of them if none)
};

// Feeds `bytes` to a fresh ChunkReader with `options`, in pieces chosen by `split_seed`,
// checking the reader's own contract on the way (consumed <= offered, buffered bytes
// within the limit).
ReadOutcome ReadChunkStream(std::span<const uint8_t> bytes, uint64_t split_seed,
                            const rtmp::ChunkReaderOptions& options);

// Reads a whole file; empty if it can't.
std::vector<uint8_t> ReadFileBytes(const std::string& path);

}  // namespace uringest::fuzz

#endif  // URINGEST_FUZZ_FUZZ_UTIL_H_
