// auth_file.h: the publish keys of `--auth-file FILE`. One rule per line:
//
//   # comment: '#' at the start of a line or after a blank (a key can't start with '#')
//   live/cam1   s3cret        # app/name, blanks, key
//   live/cam2/0therKey        # app/name/key: the key is the last '/'-segment
//   live/*      teamkey       # a final "*" stands for any name under live/
//   *           masterkey     # any stream at all
//
// A publish of "app/name" with key K is allowed when some rule whose stream pattern
// matches "app/name" has key K; a stream no rule matches can't be published at all.
// Several rules may name one stream (several keys). Keys are compared in constant time
// (their SHA-256 digests, with CRYPTO_memcmp), and only the digests are kept in memory.
//
//   absl::StatusOr<AuthFile> file = AuthFile::Load("/etc/uringest/keys");
//   switch (file->Check("live/cam1", key)) { case AuthFile::Result::kAllowed: ... }
//
// Thread safety: a loaded AuthFile is immutable; any thread may Check() it.

#ifndef URINGEST_ENGINE_AUTH_FILE_H_
#define URINGEST_ENGINE_AUTH_FILE_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace uringest::engine {

class AuthFile {
 public:
  enum class Result { kAllowed, kNoRule, kNoKey, kWrongKey };

  // Parses the text of an auth file. Errors name the line, never its key.
  static absl::StatusOr<AuthFile> Parse(std::string_view text);
  static absl::StatusOr<AuthFile> Load(const std::string& path);

  // May `stream` ("app/name") be published with `key`?
  Result Check(std::string_view stream, std::string_view key) const;
  size_t rule_count() const { return rules_.size(); }

 private:
  using Digest = std::array<uint8_t, 32>;
  struct Rule {
    std::string prefix;  // the pattern without its final '*' when `wildcard`
    bool wildcard = false;
    Digest key;
  };

  static Digest DigestOf(std::string_view key);
  static bool Matches(const Rule& rule, std::string_view stream);

  std::vector<Rule> rules_;
};

// What a Result means, for logs and onStatus descriptions (no key in it).
std::string_view AuthResultText(AuthFile::Result result);

}  // namespace uringest::engine

#endif  // URINGEST_ENGINE_AUTH_FILE_H_
