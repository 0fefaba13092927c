// rtmp_testing.h: shared fixtures for the protocol core's tests: the recorded encoder
// sessions under tests/data/. Build wire bytes with media/byte_order.h.

#ifndef URINGEST_TESTS_RTMP_TESTING_H_
#define URINGEST_TESTS_RTMP_TESTING_H_

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "engine/rtmp/frame.h"

namespace uringest::testing {

// A frame's payload as one vector, its pieces (rtmp::Frame::pieces) joined.
std::vector<uint8_t> PayloadBytes(const rtmp::Frame& frame);

// The bytes of tests/data/`name`. Aborts the test binary if the file can't be read.
std::vector<uint8_t> ReadTestData(std::string_view name);

// One tag of an FLV file (FLV spec E.4.1): its type (8, 9, 18), timestamp and body.
struct FlvTag {
  uint8_t type = 0;
  uint32_t timestamp = 0;
  std::vector<uint8_t> body;
};

// The tags of a whole FLV file. Aborts on a malformed file: fixtures are trusted.
std::vector<FlvTag> ParseFlvTags(std::span<const uint8_t> flv);

}  // namespace uringest::testing

#endif  // URINGEST_TESTS_RTMP_TESTING_H_
