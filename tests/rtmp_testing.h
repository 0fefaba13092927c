// rtmp_testing.h: shared fixtures for the protocol core's tests: the recorded encoder
// sessions under tests/data/. Build wire bytes with engine/rtmp/byte_order.h.

#ifndef URINGEST_TESTS_RTMP_TESTING_H_
#define URINGEST_TESTS_RTMP_TESTING_H_

#include <cstdint>
#include <string_view>
#include <vector>

namespace uringest::testing {

// The bytes of tests/data/`name`. Aborts the test binary if the file can't be read.
std::vector<uint8_t> ReadTestData(std::string_view name);

}  // namespace uringest::testing

#endif  // URINGEST_TESTS_RTMP_TESTING_H_
