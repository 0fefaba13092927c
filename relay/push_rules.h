// push_rules.h: which upstreams uringest-push sends each stream to. A rule is
// "PATTERN=URL": a shell pattern (fnmatch, '*' matches '/' too) over the stream's
// "app/name", and an upstream URL template in which {app}, {name} (the publish name,
// without its query) and {stream} ("app/name") are replaced. A stream goes to every
// destination whose rule matches (one per distinct URL), so one stream can go to an
// origin and to several platforms at once.
//
//   absl::StatusOr<PushRule> rule = ParsePushRule("live/*=rtmp://origin:1935/live/{name}");
//   std::vector<std::string> urls = Destinations({*rule}, "live/cam7");
//   // {"rtmp://origin:1935/live/cam7"}
//   absl::StatusOr<UpstreamUrl> url = ParseUpstreamUrl(urls[0]);
//
// A rules file holds one rule per line, "PATTERN=URL" or "PATTERN URL"; blank lines and
// lines starting with '#' are left out.
//
// Thread safety: plain values and free functions.

#ifndef URINGEST_RELAY_PUSH_RULES_H_
#define URINGEST_RELAY_PUSH_RULES_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace uringest::relay {

// Where a destination publishes, split the way ffmpeg splits an RTMP URL: the first path
// element is the application ("app/instance" when the path has three elements or more),
// the rest the publish name with its query.
struct UpstreamUrl {
  bool tls = false;  // rtmps://
  std::string host;  // a name, an IPv4 address or an IPv6 address (without brackets)
  uint16_t port = 1935;
  std::string app;
  std::string stream;  // the publish name, with its query ("cam7?key=secret")
  std::string tc_url;  // scheme://host[:port]/app
};

// Parses rtmp://HOST[:PORT]/APP/NAME[?QUERY] and rtmps:// (port 443 by default).
absl::StatusOr<UpstreamUrl> ParseUpstreamUrl(std::string_view url);
// Parses a connect's tcUrl, rtmp[s]://HOST[:PORT]/APP: the whole path is the application
// ("app/instance", with a query if any); `stream` stays empty. An E-RTMP Reconnect
// Request names where to go this way.
absl::StatusOr<UpstreamUrl> ParseTcUrl(std::string_view url);

// `url` with its query's values masked ("key=***"), for logs and the status file: stream
// keys are secrets.
std::string RedactedUrl(std::string_view url);

struct PushRule {
  std::string pattern;       // over "app/name"
  std::string url_template;  // with {app}, {name}, {stream}
};

// Parses "PATTERN=URL". The URL's template must give a valid upstream URL.
absl::StatusOr<PushRule> ParsePushRule(std::string_view text);
// Reads a rules file (see above); errors name the file and the line.
absl::StatusOr<std::vector<PushRule>> LoadPushRules(const std::string& path);

// The template with the stream's fields filled in.
std::string ExpandTemplate(std::string_view url_template, std::string_view stream);
// The distinct destination URLs of stream "app/name", in the order of the rules.
std::vector<std::string> Destinations(const std::vector<PushRule>& rules, std::string_view stream);

}  // namespace uringest::relay

#endif  // URINGEST_RELAY_PUSH_RULES_H_
