// --auth-file's parser and matcher: both line forms, comments, wildcards, several keys
// per stream, and errors that name the line but never echo its key.

#include "engine/auth_file.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace uringest::engine {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using Result = AuthFile::Result;

AuthFile ParseOk(std::string_view text) {
  absl::StatusOr<AuthFile> file = AuthFile::Parse(text);
  EXPECT_TRUE(file.ok()) << file.status();
  return file.ok() ? *std::move(file) : AuthFile();
}

TEST(AuthFileTest, BlankSeparatedAndSlashSeparatedKeysBothWork) {
  const AuthFile file = ParseOk("live/cam1 s3cret\nlive/cam2/0ther\n");
  EXPECT_EQ(file.rule_count(), 2u);
  EXPECT_EQ(file.Check("live/cam1", "s3cret"), Result::kAllowed);
  EXPECT_EQ(file.Check("live/cam2", "0ther"), Result::kAllowed);
  EXPECT_EQ(file.Check("live/cam1", "0ther"), Result::kWrongKey);
}

TEST(AuthFileTest, CommentsBlankLinesTabsAndCrlfAreIgnored) {
  const AuthFile file = ParseOk("# keys\r\n\n\tlive/cam\t k1  # the studio\r\n   # more\n");
  EXPECT_EQ(file.rule_count(), 1u);
  EXPECT_EQ(file.Check("live/cam", "k1"), Result::kAllowed);
}

TEST(AuthFileTest, HashInsideAKeyIsPartOfIt) {
  const AuthFile file = ParseOk("live/cam a#b\n");
  EXPECT_EQ(file.Check("live/cam", "a#b"), Result::kAllowed);
  EXPECT_EQ(file.Check("live/cam", "a"), Result::kWrongKey);
}

TEST(AuthFileTest, StreamWithoutARuleCannotBePublished) {
  const AuthFile file = ParseOk("live/cam k\n");
  EXPECT_EQ(file.Check("live/other", "k"), Result::kNoRule);
  EXPECT_EQ(file.Check("other/cam", "k"), Result::kNoRule);
  EXPECT_EQ(file.Check("live/cam/sub", "k"), Result::kNoRule);
  EXPECT_EQ(AuthFile().Check("live/cam", "k"), Result::kNoRule);
}

TEST(AuthFileTest, MissingKeyIsToldApartFromAWrongOne) {
  const AuthFile file = ParseOk("live/cam k\n");
  EXPECT_EQ(file.Check("live/cam", ""), Result::kNoKey);
  EXPECT_EQ(file.Check("live/cam", "K"), Result::kWrongKey);
  EXPECT_EQ(file.Check("live/cam", "k "), Result::kWrongKey);
}

TEST(AuthFileTest, FinalStarMatchesAnyNameUnderTheApp) {
  const AuthFile file = ParseOk("live/* team\nlive/special own\n");
  EXPECT_EQ(file.Check("live/a", "team"), Result::kAllowed);
  EXPECT_EQ(file.Check("live/a/b", "team"), Result::kAllowed);
  EXPECT_EQ(file.Check("live/special", "own"), Result::kAllowed);
  EXPECT_EQ(file.Check("live/special", "team"), Result::kAllowed) << "both rules match";
  EXPECT_EQ(file.Check("livex/a", "team"), Result::kNoRule);
  EXPECT_EQ(file.Check("other/a", "team"), Result::kNoRule);
}

TEST(AuthFileTest, LoneStarMatchesEveryStream) {
  const AuthFile file = ParseOk("* master\n");
  EXPECT_EQ(file.Check("live/a", "master"), Result::kAllowed);
  EXPECT_EQ(file.Check("x/y/z", "master"), Result::kAllowed);
}

TEST(AuthFileTest, SeveralKeysForOneStream) {
  const AuthFile file = ParseOk("live/cam one\nlive/cam two\n");
  EXPECT_EQ(file.Check("live/cam", "one"), Result::kAllowed);
  EXPECT_EQ(file.Check("live/cam", "two"), Result::kAllowed);
  EXPECT_EQ(file.Check("live/cam", "three"), Result::kWrongKey);
}

TEST(AuthFileTest, MalformedLinesAreErrorsNamingTheLineButNotTheKey) {
  for (const char* text :
       {"live/cam\n", "live/cam k1 k2\n", "cam TOPSECRET\n", "live//cam TOPSECRET\n",
        "live/*x TOPSECRET\n", "*/cam TOPSECRET\n", "live/cam/ \n", "/live TOPSECRET\n"}) {
    absl::StatusOr<AuthFile> file = AuthFile::Parse(absl::StrCat("# first\n", text));
    ASSERT_FALSE(file.ok()) << text;
    EXPECT_THAT(std::string(file.status().message()), HasSubstr("line 2")) << text;
    EXPECT_THAT(std::string(file.status().message()), Not(HasSubstr("TOPSECRET"))) << text;
  }
}

TEST(AuthFileTest, EmptyFileHasNoRules) {
  EXPECT_EQ(ParseOk("").rule_count(), 0u);
  EXPECT_EQ(ParseOk("# nothing yet\n").rule_count(), 0u);
}

TEST(AuthFileTest, LoadNamesAMissingFile) {
  absl::StatusOr<AuthFile> file = AuthFile::Load("/nonexistent/uringest-keys");
  ASSERT_FALSE(file.ok());
  EXPECT_THAT(std::string(file.status().message()), HasSubstr("/nonexistent/uringest-keys"));
}

}  // namespace
}  // namespace uringest::engine
