// stamp.h: the 32 bytes uringest-load writes into every counted audio and video frame,
// right after the tag header: after the 5-byte AVC header (frame type | codec 7, packet
// type 1, composition time) of a video NALU tag, after the 2-byte AAC header (sound
// format 10 | rate, size, channels; packet type 1) of a raw AAC frame. So a reader of
// the server's ring can tell which publisher sent a frame, its place in that
// publisher's sequence (audio and video count in one sequence, in sending order), and
// when it was sent:
//
//   offset  size  field
//        0     4  magic "ULD1"
//        4     4  run id: random per uringest-load run (frames of other runs are ignored)
//        8     4  publisher index, 0..N-1
//       12     4  reserved, zero
//       16     8  sequence: 1, 2, 3, ... per publisher, counted frames only
//       24     8  send time: CLOCK_REALTIME ns when the frame was queued for sending
//
// All little-endian. CLOCK_REALTIME because the ring's ingest_time_ns is CLOCK_REALTIME
// too, and every clock involved is this machine's (the harness verifies a local server).
// Sequence headers are never stamped: a decoder needs them intact.
//
//   uint8_t* body = ...;                         // a tag body Stampable() accepts
//   WriteStamp({.run = r, .publisher = 3, .sequence = 17, .send_ns = now},
//              body + StampOffset(body));
//   std::optional<Stamp> s = ReadStamp(record_payload);

#ifndef URINGEST_LOADGEN_STAMP_H_
#define URINGEST_LOADGEN_STAMP_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace uringest::loadgen {

inline constexpr uint32_t kStampMagic = 0x31444C55;  // bytes "ULD1"
inline constexpr size_t kAvcHeaderSize = 1 + 1 + 3;  // frame|codec, packet type, cts
inline constexpr size_t kAacHeaderSize = 1 + 1;      // format|rate|size|type, packet type
inline constexpr size_t kStampSize = 4 + 4 + 4 + 4 + 8 + 8;
// The smallest audio or video tag body that carries a stamp.
inline constexpr size_t kStampedMin = kAvcHeaderSize + kStampSize;

struct Stamp {
  uint32_t run = 0;
  uint32_t publisher = 0;
  uint64_t sequence = 0;
  uint64_t send_ns = 0;
};

// Writes the stamp's kStampSize bytes at `out`.
void WriteStamp(const Stamp& stamp, uint8_t* out);

// The stamp of an audio or video tag body: nullopt if it is not Stampable() or lacks
// the magic.
std::optional<Stamp> ReadStamp(std::span<const uint8_t> body);

// Where the stamp of `body` goes: just past the tag header of an AVC NALU video tag or
// a raw AAC audio tag (not sequence headers) of at least kStampedMin bytes; else 0.
size_t StampOffset(std::span<const uint8_t> body);
inline bool Stampable(std::span<const uint8_t> body) { return StampOffset(body) != 0; }

}  // namespace uringest::loadgen

#endif  // URINGEST_LOADGEN_STAMP_H_
