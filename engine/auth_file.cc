#include "engine/auth_file.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace uringest::engine {
namespace {

constexpr std::string_view kBlanks = " \t\r";

std::string_view Trim(std::string_view s) {
  const size_t begin = s.find_first_not_of(kBlanks);
  if (begin == std::string_view::npos) return {};
  return s.substr(begin, s.find_last_not_of(kBlanks) - begin + 1);
}

// The line without a comment: '#' at its start or after a blank.
std::string_view StripComment(std::string_view line) {
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '#' && (i == 0 || kBlanks.find(line[i - 1]) != std::string_view::npos)) {
      return line.substr(0, i);
    }
  }
  return line;
}

// Splits "pattern key" or "pattern/key" into its two parts; false if it is neither.
bool SplitRule(std::string_view line, std::string_view* pattern, std::string_view* key) {
  const size_t blank = line.find_first_of(kBlanks);
  if (blank != std::string_view::npos) {
    *pattern = line.substr(0, blank);
    *key = Trim(line.substr(blank));
    return key->find_first_of(kBlanks) == std::string_view::npos;
  }
  const size_t slash = line.rfind('/');
  if (slash == std::string_view::npos) return false;
  *pattern = line.substr(0, slash);
  *key = line.substr(slash + 1);
  return true;
}

// "*", "app/*", "app/name", "app/a/b": no empty segment, and '*' only as the last one.
bool ValidPattern(std::string_view pattern) {
  if (pattern == "*") return true;
  if (pattern.find('/') == std::string_view::npos) return false;
  size_t start = 0;
  while (start <= pattern.size()) {
    size_t end = pattern.find('/', start);
    if (end == std::string_view::npos) end = pattern.size();
    const std::string_view segment = pattern.substr(start, end - start);
    if (segment.empty()) return false;
    if (segment.find('*') != std::string_view::npos && (segment != "*" || end != pattern.size())) {
      return false;
    }
    start = end + 1;
  }
  return true;
}

}  // namespace

absl::StatusOr<AuthFile> AuthFile::Parse(std::string_view text) {
  AuthFile file;
  int number = 0;
  while (!text.empty()) {
    const size_t newline = text.find('\n');
    const std::string_view raw = text.substr(0, newline);
    text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
    ++number;
    const std::string_view line = Trim(StripComment(raw));
    if (line.empty()) continue;
    std::string_view pattern, key;
    if (!SplitRule(line, &pattern, &key) || key.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", number, ": expected 'app/name key' or 'app/name/key'"));
    }
    if (!ValidPattern(pattern)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "line ", number, ": the stream must be app/name (a final '*' for any name)"));
    }
    Rule rule;
    rule.wildcard = pattern.back() == '*';
    rule.prefix = rule.wildcard ? pattern.substr(0, pattern.size() - 1) : pattern;
    rule.key = DigestOf(key);
    file.rules_.push_back(std::move(rule));
  }
  return file;
}

absl::StatusOr<AuthFile> AuthFile::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("can't read ", path));
  std::ostringstream text;
  text << in.rdbuf();
  absl::StatusOr<AuthFile> file = Parse(text.str());
  if (!file.ok()) {
    return absl::Status(file.status().code(), absl::StrCat(path, ": ", file.status().message()));
  }
  return file;
}

AuthFile::Digest AuthFile::DigestOf(std::string_view key) {
  Digest digest;
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), digest.data());
  return digest;
}

bool AuthFile::Matches(const Rule& rule, std::string_view stream) {
  if (!rule.wildcard) return stream == rule.prefix;
  return stream.size() > rule.prefix.size() && stream.substr(0, rule.prefix.size()) == rule.prefix;
}

AuthFile::Result AuthFile::Check(std::string_view stream, std::string_view key) const {
  const Digest digest = DigestOf(key);
  bool matched = false, allowed = false;
  // Every matching rule is compared, so the time taken says nothing about which one.
  for (const Rule& rule : rules_) {
    if (!Matches(rule, stream)) continue;
    matched = true;
    allowed |= CRYPTO_memcmp(rule.key.data(), digest.data(), digest.size()) == 0;
  }
  if (!matched) return Result::kNoRule;
  if (allowed) return Result::kAllowed;
  return key.empty() ? Result::kNoKey : Result::kWrongKey;
}

std::string_view AuthResultText(AuthFile::Result result) {
  switch (result) {
    case AuthFile::Result::kAllowed:
      return "allowed";
    case AuthFile::Result::kNoRule:
      return "no --auth-file rule for this stream";
    case AuthFile::Result::kNoKey:
      return "no key given";
    case AuthFile::Result::kWrongKey:
      return "wrong key";
  }
  return "?";
}

}  // namespace uringest::engine
