#include "tests/rtmp_testing.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>

#include "media/byte_order.h"

namespace uringest::testing {

std::vector<uint8_t> ReadTestData(std::string_view name) {
  std::string path = std::string(URINGEST_TESTDATA_DIR) + "/" + std::string(name);
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read test data %s\n", path.c_str());
    std::abort();
  }
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

std::vector<FlvTag> ParseFlvTags(std::span<const uint8_t> flv) {
  auto fail = [](const char* why) {
    std::fprintf(stderr, "malformed FLV fixture: %s\n", why);
    std::abort();
  };
  if (flv.size() < 13 || flv[0] != 'F' || flv[1] != 'L' || flv[2] != 'V') fail("header");
  const size_t header_size = media::LoadU32(flv.data() + 5);
  std::vector<FlvTag> tags;
  size_t pos = header_size + 4;  // the header, then PreviousTagSize0
  while (pos < flv.size()) {
    if (flv.size() - pos < 11) fail("tag header");
    const uint8_t* p = flv.data() + pos;
    const uint32_t size = media::LoadU24(p + 1);
    if (flv.size() - pos - 11 < size + 4) fail("tag body");
    tags.push_back(FlvTag{.type = static_cast<uint8_t>(p[0] & 0x1F),
                          .timestamp = media::LoadU24(p + 4) | uint32_t{p[7]} << 24,
                          .body = std::vector<uint8_t>(p + 11, p + 11 + size)});
    pos += 11 + size + 4;
  }
  return tags;
}

std::vector<uint8_t> PayloadBytes(const rtmp::Frame& frame) {
  std::vector<uint8_t> bytes;
  bytes.reserve(frame.payload_size());
  for (std::span<const uint8_t> piece : frame.payload_pieces()) {
    const size_t at = bytes.size();
    bytes.resize(at + piece.size());
    std::copy(piece.begin(), piece.end(), bytes.begin() + ptrdiff_t(at));
  }
  return bytes;
}

}  // namespace uringest::testing
