// uringest-stat: shows what a running uringestd carries, from its shared-memory ring:
// each publishing stream (publisher, shard, codec, size, fps, bitrate, frames, bytes,
// drops) and each lossless reader's lag.
//
//   uringest-stat                       # a table of ring "uringest", refreshed every second
//   uringest-stat --ring test --interval 5
//   uringest-stat --json | jq .streams  # one JSON document (bitrate over --interval), then exit
//
// Exit status: 0; 1 when the ring can't be opened; 2 for bad flags.

#include <unistd.h>

#include <cstdio>
#include <optional>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/time/clock.h"
#include "consumer/stat_sampler.h"
#include "consumer/stat_table.h"

namespace {

using uringest::consumer::StatSample;
using uringest::consumer::StatSampler;

// Opens the ring, or says why not on stderr.
std::unique_ptr<StatSampler> OpenSampler(const std::string& ring, bool quiet) {
  absl::StatusOr<std::unique_ptr<StatSampler>> sampler = StatSampler::Open(ring);
  if (sampler.ok()) return *std::move(sampler);
  if (!quiet)
    std::fprintf(stderr, "uringest-stat: %s\n", std::string(sampler.status().message()).c_str());
  return nullptr;
}

int PrintJson(const std::string& ring, double interval) {
  std::unique_ptr<StatSampler> sampler = OpenSampler(ring, false);
  if (sampler == nullptr) return 1;
  StatSample first = sampler->Sample();
  std::optional<StatSample> second;
  if (interval > 0) {
    absl::SleepFor(absl::Seconds(interval));
    second = sampler->Sample();
  }
  auto table = second ? BuildStatTable(&first, *second) : BuildStatTable(nullptr, first);
  std::fputs(RenderStatJson(table).c_str(), stdout);
  return 0;
}

// Redraws the table every `interval` seconds until killed; follows server restarts.
int ShowTable(const std::string& ring, double interval) {
  const bool tty = isatty(STDOUT_FILENO);
  std::unique_ptr<StatSampler> sampler = OpenSampler(ring, false);
  if (sampler == nullptr) return 1;
  std::optional<StatSample> previous;
  for (;;) {
    StatSample current = sampler->Sample();
    std::string text = RenderStatText(BuildStatTable(previous ? &*previous : nullptr, current));
    if (tty) text = "\x1b[H\x1b[2J" + text;  // home, clear screen
    std::fputs(text.c_str(), stdout);
    if (!tty) std::fputs("\n", stdout);
    std::fflush(stdout);
    previous = std::move(current);
    absl::SleepFor(absl::Seconds(interval));
    if (sampler->Stale()) {
      if (std::unique_ptr<StatSampler> fresh = OpenSampler(ring, true)) {
        sampler = std::move(fresh);
        previous.reset();
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string ring = "uringest";
  bool json = false;
  double interval = 1;
  CLI::App app("uringest-stat: streams and readers of uringestd's frame ring", "uringest-stat");
  app.add_option("--ring", ring, "Name of the server's ring (its --ring)")->capture_default_str();
  app.add_flag("--json", json, "Print one JSON document and exit");
  app.add_option("--interval", interval,
                 "Seconds between refreshes; with --json, between the two samples that bitrate "
                 "is measured over (0: one sample, no bitrate)")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (json) return PrintJson(ring, interval);
  if (interval <= 0) interval = 1;
  return ShowTable(ring, interval);
}
