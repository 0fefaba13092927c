#include "relay/push_rules.h"

#include <fnmatch.h>

#include <algorithm>
#include <charconv>
#include <fstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace uringest::relay {
namespace {

constexpr std::string_view kRtmp = "rtmp://";
constexpr std::string_view kRtmps = "rtmps://";

absl::Status BadUrl(std::string_view url, std::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("bad upstream URL '", RedactedUrl(url), "': ", std::string(why)));
}

std::string_view Trim(std::string_view s) {
  const size_t begin = s.find_first_not_of(" \t\r\n");
  if (begin == std::string_view::npos) return {};
  return s.substr(begin, s.find_last_not_of(" \t\r\n") - begin + 1);
}

// Splits "host[:port]" or "[v6]:port" into *url.
absl::Status ParseAuthority(std::string_view authority, std::string_view url, UpstreamUrl* out) {
  std::string_view host = authority;
  std::string_view port;
  if (!authority.empty() && authority[0] == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return BadUrl(url, "an IPv6 address without ']'");
    host = authority.substr(1, close - 1);
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return BadUrl(url, "junk after the IPv6 address");
      port = rest.substr(1);
    }
  } else if (const size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return BadUrl(url, "no host");
  out->host = std::string(host);
  if (!port.empty()) {
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
      return BadUrl(url, "a bad port");
    }
    out->port = uint16_t(value);
  }
  return absl::OkStatus();
}

// The scheme and the authority of rtmp[s]://HOST[:PORT]/PATH into *out; *path is what
// follows the first '/' after the authority.
absl::Status ParseSchemeAndAuthority(std::string_view url, UpstreamUrl* out,
                                     std::string_view* path) {
  std::string_view rest;
  if (url.substr(0, kRtmp.size()) == kRtmp) {
    rest = url.substr(kRtmp.size());
  } else if (url.substr(0, kRtmps.size()) == kRtmps) {
    rest = url.substr(kRtmps.size());
    out->tls = true;
    out->port = 443;
  } else {
    return BadUrl(url, "it must start with rtmp:// or rtmps://");
  }
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return BadUrl(url, "no application");
  if (absl::Status s = ParseAuthority(rest.substr(0, slash), url, out); !s.ok()) return s;
  *path = rest.substr(slash + 1);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<UpstreamUrl> ParseUpstreamUrl(std::string_view url) {
  UpstreamUrl out;
  std::string_view path;
  if (absl::Status s = ParseSchemeAndAuthority(url, &out, &path); !s.ok()) return s;
  // ffmpeg's split: /app/name, or /app/instance/name...
  const std::string_view query_free = path.substr(0, path.find('?'));
  const size_t first = query_free.find('/');
  if (first == std::string_view::npos || first == 0) {
    return BadUrl(url, "the path must be /APP/NAME");
  }
  size_t app_end = first;
  if (const size_t second = query_free.find('/', first + 1); second != std::string_view::npos) {
    app_end = second;
  }
  out.app = std::string(path.substr(0, app_end));
  out.stream = std::string(path.substr(app_end + 1));
  if (out.stream.empty() || out.stream[0] == '?') return BadUrl(url, "no stream name");
  out.tc_url = std::string(url.substr(0, url.size() - path.size())) + out.app;
  return out;
}

absl::StatusOr<UpstreamUrl> ParseTcUrl(std::string_view url) {
  UpstreamUrl out;
  std::string_view path;
  if (absl::Status s = ParseSchemeAndAuthority(url, &out, &path); !s.ok()) return s;
  if (path.empty() || path[0] == '/' || path[0] == '?') return BadUrl(url, "no application");
  out.app = std::string(path);
  out.tc_url = std::string(url);
  return out;
}

std::string RedactedUrl(std::string_view url) {
  const size_t q = url.find('?');
  if (q == std::string_view::npos) return std::string(url);
  std::string out(url.substr(0, q + 1));
  std::string_view query = url.substr(q + 1);
  while (!query.empty()) {
    const size_t amp = std::min(query.find('&'), query.size());
    const std::string_view pair = query.substr(0, amp);
    const size_t eq = pair.find('=');
    out += eq == std::string_view::npos ? pair : pair.substr(0, eq + 1);
    if (eq != std::string_view::npos) out += "***";
    query = query.substr(std::min(amp + 1, query.size()));
    if (!query.empty()) out += '&';
  }
  return out;
}

std::string ExpandTemplate(std::string_view url_template, std::string_view stream) {
  const size_t slash = stream.find('/');
  const std::string_view app = stream.substr(0, slash);
  const std::string_view name =
      slash == std::string_view::npos ? std::string_view() : stream.substr(slash + 1);
  std::string out;
  while (!url_template.empty()) {
    const size_t open = url_template.find('{');
    out += url_template.substr(0, open);
    if (open == std::string_view::npos) break;
    url_template = url_template.substr(open);
    if (url_template.substr(0, 5) == "{app}") {
      out += app, url_template.remove_prefix(5);
    } else if (url_template.substr(0, 6) == "{name}") {
      out += name, url_template.remove_prefix(6);
    } else if (url_template.substr(0, 8) == "{stream}") {
      out += stream, url_template.remove_prefix(8);
    } else {
      out += '{', url_template.remove_prefix(1);
    }
  }
  return out;
}

absl::StatusOr<PushRule> ParsePushRule(std::string_view text) {
  const std::string_view trimmed = Trim(text);
  size_t split = trimmed.find('=');
  const size_t space = trimmed.find_first_of(" \t");
  if (split == std::string_view::npos || (space != std::string_view::npos && space < split)) {
    split = space;
  }
  if (split == std::string_view::npos || split == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad push rule '", RedactedUrl(trimmed), "': expected PATTERN=URL"));
  }
  PushRule rule{.pattern = std::string(Trim(trimmed.substr(0, split))),
                .url_template = std::string(Trim(trimmed.substr(split + 1)))};
  // A template must make a URL for any stream: try it on a made-up one.
  if (absl::StatusOr<UpstreamUrl> url = ParseUpstreamUrl(ExpandTemplate(rule.url_template, "a/b"));
      !url.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("bad push rule '", rule.pattern, "=",
                                                   RedactedUrl(rule.url_template),
                                                   "': ", url.status().message()));
  }
  return rule;
}

absl::StatusOr<std::vector<PushRule>> LoadPushRules(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("can't read rules file ", path));
  std::vector<PushRule> rules;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    const std::string_view text = Trim(line);
    if (text.empty() || text[0] == '#') continue;
    absl::StatusOr<PushRule> rule = ParsePushRule(text);
    if (!rule.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", number, ": ", rule.status().message()));
    }
    rules.push_back(*std::move(rule));
  }
  return rules;
}

std::vector<std::string> Destinations(const std::vector<PushRule>& rules, std::string_view stream) {
  std::vector<std::string> out;
  const std::string name(stream);
  for (const PushRule& rule : rules) {
    if (fnmatch(rule.pattern.c_str(), name.c_str(), 0) != 0) continue;
    std::string url = ExpandTemplate(rule.url_template, stream);
    if (std::find(out.begin(), out.end(), url) == out.end()) out.push_back(std::move(url));
  }
  return out;
}

}  // namespace uringest::relay
