// Issue 5's acceptance test for the load harness: uringest-load drives 20 publishers
// against a real uringestd and verifies, by reading the server's ring, that every frame
// arrived once and in order.

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/ingest_harness.h"
#include "tests/integration/process.h"

namespace uringest::testing {
namespace {

std::vector<std::string> LoadArgs(const IngestServer& server, int publishers) {
  return {ToolPath("uringest-load"),
          "--target",
          absl::StrCat("127.0.0.1:", server.port()),
          "--publishers",
          absl::StrCat(publishers),
          "--duration",
          "3",
          "--ring",
          server.ring(),
          "--verify",
          "--json"};
}

class LoadTest : public ::testing::TestWithParam<int> {};

TEST_P(LoadTest, TwentyPublishersLoseNothing) {
  ScratchDir dir;
  std::unique_ptr<IngestServer> server = IngestServer::Start(GetParam(), dir);
  ASSERT_NE(server, nullptr);
  const std::string out = dir.Path("load.json");
  const int code = RunCommand(LoadArgs(*server, 20), kProcessTimeout, out, dir.Path("load.log"));
  const std::string json = ReadFile(out);
  EXPECT_EQ(code, 0) << json << ReadFile(dir.Path("load.log"));
  EXPECT_NE(json.find(R"("ok":true)"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("went_live":20,)"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("lost":0,"duplicated":0,"out_of_order":0,"reader_laps":0)"),
            std::string::npos)
      << json;
  EXPECT_EQ(json.find(R"("sent":0,)"), std::string::npos) << "every publisher sent frames";
}

INSTANTIATE_TEST_SUITE_P(Shards, LoadTest, ::testing::Values(1, 2),
                         [](const auto& info) { return absl::StrCat(info.param, "Shards"); });

TEST(LoadExitTest, NoServerMeansNonZeroExit) {
  // No server listens on the target: nobody goes live, and the exit status says so.
  ScratchDir dir;
  const int code = RunCommand({ToolPath("uringest-load"), "--target", "127.0.0.1:1", "--publishers",
                               "2", "--duration", "1"},
                              kProcessTimeout, dir.Path("out"), dir.Path("log"));
  EXPECT_EQ(code, 1) << ReadFile(dir.Path("out"));
}

}  // namespace
}  // namespace uringest::testing
