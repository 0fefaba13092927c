// uringest-push: relays the streams of a running uringestd to upstream RTMP and RTMPS
// servers (an origin, a transcoder, several platforms at once) until stopped (SIGINT,
// SIGTERM), unpublishing every destination. Rules map stream names to upstream URLs; a
// stream goes to every destination whose rule matches. See relay/relay.h.
//
//   uringest-push --rule 'live/*=rtmp://origin.example:1935/live/{name}'
//   uringest-push --config /etc/uringest/push.rules --max-lag 3
//   uringest-push --status                 # what a running relay is doing
//
// SIGHUP reads --config again (see RelayOptions::reload).
//
// Exit status: 0 after a stop; 1 when the ring can't be read or TLS can't be set up;
// 2 for bad flags or rules. Log lines go to stderr.

#include <signal.h>

#include <atomic>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "relay/push_status.h"
#include "relay/relay.h"

namespace {

using uringest::relay::PushRule;
using uringest::relay::RelayOptions;

std::atomic<bool> stop_requested{false};
std::atomic<bool> reload_requested{false};

void RequestStop(int) { stop_requested.store(true); }
void RequestReload(int) { reload_requested.store(true); }

void Log(std::string_view line) {
  const std::string now =
      absl::FormatTime("%Y-%m-%d %H:%M:%E3S", absl::Now(), absl::LocalTimeZone());
  std::fprintf(stderr, "%s uringest-push: %.*s\n", now.c_str(), int(line.size()), line.data());
}

struct Flags {
  std::string config;
  std::vector<std::string> rules;
  double max_lag_s = 5;
  double timeout_s = 10;
  bool insecure = false;
  std::string ca_file;
  bool status = false;
};

// Parses the command line; an exit status when the program ends here (--help: 0, a bad
// flag: 2), nothing to go on.
std::optional<int> ParseFlags(int argc, char** argv, Flags* flags, RelayOptions* options) {
  CLI::App app("uringest-push: relays the streams of uringestd's frame ring to RTMP(S) upstreams",
               "uringest-push");
  app.add_option("--ring", options->ring, "Name of the server's ring (its --ring)")
      ->capture_default_str();
  app.add_option("--config", flags->config, "Rules file: one PATTERN=URL per line ('#' comments)")
      ->check(CLI::ExistingFile);
  app.add_option("--rule", flags->rules,
                 "PATTERN=URL: streams whose app/name matches the shell pattern go to URL; "
                 "{app}, {name} (without the query) and {stream} (app/name) are filled in. "
                 "Repeatable; a stream goes to every URL whose rule matches");
  app.add_flag("--lossless", options->upstream.lossless,
               "Hold the ring (within the server's bounded lossless wait) rather than skip "
               "frames for a destination more than --max-lag behind");
  app.add_option("--max-lag", flags->max_lag_s,
                 "Seconds a frame may wait for a slow destination before it skips to a keyframe")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--chunk-size", options->upstream.chunk_size,
                 "The chunk size announced to upstreams")
      ->check(CLI::Range(128, 16777215))
      ->capture_default_str();
  app.add_option("--timeout", flags->timeout_s,
                 "Seconds to connect and publish, and after which an upstream that takes no "
                 "byte is stalled (closed and connected again)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_flag("--insecure", flags->insecure,
               "rtmps://: don't verify the upstream's certificate (self-signed test servers)");
  app.add_option("--ca-file", flags->ca_file,
                 "rtmps://: trust these CA certificates (PEM) instead of the system's")
      ->check(CLI::ExistingFile);
  app.add_option("--status-file", options->status_file,
                 "Where the relay writes each destination's state every second (JSON); "
                 "default: $XDG_RUNTIME_DIR, /run (root) or /tmp, uringest-push.RING.json");
  app.add_flag("--status", flags->status,
               "Print what the relay of this --ring (or --status-file) is doing, and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (options->status_file.empty()) {
    options->status_file = uringest::relay::DefaultStatusFile(options->ring);
  }
  options->upstream.max_lag = absl::Seconds(flags->max_lag_s);
  options->upstream.timeout = absl::Seconds(flags->timeout_s);
  return std::nullopt;
}

// The rules of --config (read again at each call) and --rule.
absl::StatusOr<std::vector<PushRule>> LoadRules(const Flags& flags) {
  std::vector<PushRule> rules;
  if (!flags.config.empty()) {
    absl::StatusOr<std::vector<PushRule>> from_file = uringest::relay::LoadPushRules(flags.config);
    if (!from_file.ok()) return from_file.status();
    rules = *std::move(from_file);
  }
  for (const std::string& text : flags.rules) {
    absl::StatusOr<PushRule> rule = uringest::relay::ParsePushRule(text);
    if (!rule.ok()) return rule.status();
    rules.push_back(*std::move(rule));
  }
  if (rules.empty()) {
    return absl::InvalidArgumentError("no rules: give --rule 'PATTERN=URL' or --config FILE");
  }
  return rules;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  RelayOptions options;
  if (std::optional<int> exit_status = ParseFlags(argc, argv, &flags, &options)) {
    return *exit_status;
  }
  if (flags.status) {
    absl::Status s = uringest::relay::PrintStatus(options.status_file, stdout);
    if (!s.ok()) std::fprintf(stderr, "uringest-push: %s\n", std::string(s.message()).c_str());
    return s.ok() ? 0 : 1;
  }
  absl::StatusOr<std::vector<PushRule>> rules = LoadRules(flags);
  if (!rules.ok()) {
    std::fprintf(stderr, "uringest-push: %s\n", std::string(rules.status().message()).c_str());
    return 2;
  }
  options.rules = *std::move(rules);
  absl::StatusOr<std::shared_ptr<const uringest::engine::TlsContext>> tls =
      uringest::engine::TlsContext::Client(!flags.insecure, flags.ca_file);
  if (!tls.ok()) {
    std::fprintf(stderr, "uringest-push: TLS: %s\n", std::string(tls.status().message()).c_str());
    return 1;
  }
  options.upstream.tls = *std::move(tls);
  signal(SIGINT, RequestStop);
  signal(SIGTERM, RequestStop);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGHUP, RequestReload);
  options.stop = &stop_requested;
  options.reload = &reload_requested;
  options.load_rules = [&flags] { return LoadRules(flags); };
  options.log = Log;
  absl::Status status = uringest::relay::RunRelay(options);
  Log(status.ok() ? "stopped" : std::string(status.message()));
  return status.ok() ? 0 : 1;
}
