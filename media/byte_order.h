// byte_order.h: loads and stores of the big-endian (network order) integers that RTMP,
// AMF0 and FLV use, plus the one little-endian field (the message stream id in a fmt 0
// chunk header). Every parser and writer in media/, engine/rtmp/ and the tools uses these.
//
//   uint32_t length = LoadU24(p + 3);
//   AppendU32(&out, window_size);

#ifndef URINGEST_MEDIA_BYTE_ORDER_H_
#define URINGEST_MEDIA_BYTE_ORDER_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace uringest::media {

// REQUIRES: p points at 2, 3 or 4 readable bytes respectively.
inline uint16_t LoadU16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }
inline uint32_t LoadU24(const uint8_t* p) {
  return uint32_t(p[0]) << 16 | uint32_t(p[1]) << 8 | p[2];
}
inline uint32_t LoadU32(const uint8_t* p) { return uint32_t(p[0]) << 24 | LoadU24(p + 1); }
inline uint32_t LoadU32Le(const uint8_t* p) {
  return uint32_t(p[3]) << 24 | uint32_t(p[2]) << 16 | uint32_t(p[1]) << 8 | p[0];
}

// REQUIRES: p points at 2, 3 or 4 writable bytes respectively.
inline void StoreU16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v >> 8);
  p[1] = uint8_t(v);
}
inline void StoreU24(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 16);
  p[1] = uint8_t(v >> 8);
  p[2] = uint8_t(v);
}
inline void StoreU32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 24);
  StoreU24(p + 1, v);
}
inline void StoreU32Le(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v);
  p[1] = uint8_t(v >> 8);
  p[2] = uint8_t(v >> 16);
  p[3] = uint8_t(v >> 24);
}

// Grows *out by n bytes and returns where they start. (Resizing rather than inserting an
// initializer list keeps GCC 12's -Wstringop-overflow false positive away.)
inline uint8_t* Extend(std::vector<uint8_t>* out, size_t n) {
  const size_t size = out->size();
  out->resize(size + n);
  return out->data() + size;
}
inline void AppendU8(std::vector<uint8_t>* out, uint8_t v) { out->push_back(v); }
inline void AppendU16(std::vector<uint8_t>* out, uint16_t v) { StoreU16(Extend(out, 2), v); }
inline void AppendU24(std::vector<uint8_t>* out, uint32_t v) { StoreU24(Extend(out, 3), v); }
inline void AppendU32(std::vector<uint8_t>* out, uint32_t v) { StoreU32(Extend(out, 4), v); }
inline void AppendU32Le(std::vector<uint8_t>* out, uint32_t v) { StoreU32Le(Extend(out, 4), v); }
inline void AppendBytes(std::vector<uint8_t>* out, std::span<const uint8_t> bytes) {
  out->insert(out->end(), bytes.begin(), bytes.end());
}
inline void AppendBytes(std::vector<uint8_t>* out, std::string_view bytes) {
  out->insert(out->end(), bytes.begin(), bytes.end());
}

inline std::span<const uint8_t> AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace uringest::media

#endif  // URINGEST_MEDIA_BYTE_ORDER_H_
