#include "loadgen/stamp.h"

#include <cstring>

namespace uringest::loadgen {
namespace {

void Put32(uint32_t v, uint8_t* p) {
  for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i));
}
void Put64(uint64_t v, uint8_t* p) {
  for (int i = 0; i < 8; ++i) p[i] = uint8_t(v >> (8 * i));
}
uint32_t Get32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = v << 8 | p[i];
  return v;
}
uint64_t Get64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | p[i];
  return v;
}

}  // namespace

void WriteStamp(const Stamp& stamp, uint8_t* out) {
  Put32(kStampMagic, out);
  Put32(stamp.run, out + 4);
  Put32(stamp.publisher, out + 8);
  Put32(0, out + 12);
  Put64(stamp.sequence, out + 16);
  Put64(stamp.send_ns, out + 24);
}

size_t StampOffset(std::span<const uint8_t> body) {
  if (body.size() < 2 || body[1] != 1) return 0;  // packet type 1: coded data
  size_t offset = 0;
  if ((body[0] & 0x0F) == 7) offset = kAvcHeaderSize;  // AVC video (and not ExHeader audio)
  if ((body[0] >> 4) == 10) offset = kAacHeaderSize;   // AAC audio
  // One size rule for both (kStampedMin), so a reader can copy that much of any record.
  return body.size() >= kStampedMin ? offset : 0;
}

std::optional<Stamp> ReadStamp(std::span<const uint8_t> body) {
  const size_t offset = StampOffset(body);
  if (offset == 0) return std::nullopt;
  const uint8_t* p = body.data() + offset;
  if (Get32(p) != kStampMagic) return std::nullopt;
  return Stamp{.run = Get32(p + 4),
               .publisher = Get32(p + 8),
               .sequence = Get64(p + 16),
               .send_ns = Get64(p + 24)};
}

}  // namespace uringest::loadgen
