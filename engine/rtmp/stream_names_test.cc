#include "engine/rtmp/stream_names.h"

#include <string>

#include "gtest/gtest.h"

namespace uringest::rtmp {
namespace {

TEST(SplitQueryTest, SplitsAtTheFirstQuestionMark) {
  EXPECT_EQ(SplitQuery("cam1?key=a?b"),
            std::make_pair(std::string_view("cam1"), std::string_view("key=a?b")));
  EXPECT_EQ(SplitQuery("cam1"), std::make_pair(std::string_view("cam1"), std::string_view()));
  EXPECT_EQ(SplitQuery("?k"), std::make_pair(std::string_view(), std::string_view("k")));
}

TEST(ValidateNameTest, SegmentedNamesPass) {
  EXPECT_TRUE(ValidateName("stream name", "a/b/c", "", 1024, 4096).ok());
  EXPECT_TRUE(ValidateName("stream name", "cam.1", "key=x", 1024, 4096).ok());
}

TEST(ValidateNameTest, EmptyDotAndDotDotSegmentsFail) {
  for (std::string_view bad : {"", "/a", "a/", "a//b", ".", "a/..", "../x"}) {
    absl::Status s = ValidateName("stream name", bad, "", 1024, 4096);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(std::string(s.message()).find("stream name"), std::string::npos) << s;
  }
}

TEST(ValidateNameTest, ControlBytesFail) {
  EXPECT_FALSE(ValidateName("stream name", std::string_view("a\nb"), "", 1024, 4096).ok());
  EXPECT_FALSE(ValidateName("stream name", std::string_view("a\x7f"), "", 1024, 4096).ok());
}

TEST(ValidateNameTest, LengthsAreBoundedSeparately) {
  const std::string name(10, 'n'), query(20, 'q');
  EXPECT_TRUE(ValidateName("app", name, query, 10, 20).ok());
  EXPECT_FALSE(ValidateName("app", name, query, 9, 20).ok());
  EXPECT_FALSE(ValidateName("app", name, query, 10, 19).ok());
}

}  // namespace
}  // namespace uringest::rtmp
