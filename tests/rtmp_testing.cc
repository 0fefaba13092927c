#include "tests/rtmp_testing.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>

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

}  // namespace uringest::testing
