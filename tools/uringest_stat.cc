// uringest-stat: shows what a running uringestd carries, from its shared-memory ring:
// each publishing stream (publisher, shard, codec, size, fps, bitrate, frames, bytes,
// drops) and each lossless reader's lag.
//
//   uringest-stat                       # a table of ring "uringest", refreshed every second
//   uringest-stat --ring test --interval 5
//   uringest-stat --wait                # the same, once a server starts
//   uringest-stat --json | jq .streams  # one JSON document (bitrate over --interval), then exit
//
// The table ends with the server: within a second of its death (SIGKILL, crash), with
// status 1; at its clean shutdown, with 0; a message on stderr says which.
//
// Exit status: 0 (--json, or the server shut down); 1 when the ring can't be opened, has
// no live server (without --wait), or the server died; 2 for bad flags.

#include <unistd.h>

#include <algorithm>
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

using uringest::ringbuf::ServerExit;
using uringest::ringbuf::WaitResult;

// Opens the ring (waiting for a live server first, with `wait`), or says why not.
std::unique_ptr<StatSampler> OpenSampler(const std::string& ring, bool wait) {
  absl::StatusOr<std::unique_ptr<StatSampler>> sampler =
      wait ? StatSampler::WaitForServer(ring, {}) : StatSampler::Open(ring);
  if (sampler.ok()) return *std::move(sampler);
  std::fprintf(stderr, "uringest-stat: %s\n", std::string(sampler.status().message()).c_str());
  return nullptr;
}

int PrintJson(const std::string& ring, double interval, bool wait) {
  std::unique_ptr<StatSampler> sampler = OpenSampler(ring, wait);
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

void PrintTable(std::string text, bool tty) {
  if (tty) text = "\x1b[H\x1b[2J" + text;  // home, clear screen
  std::fputs(text.c_str(), stdout);
  if (!tty) std::fputs("\n", stdout);
  std::fflush(stdout);
}

// The exit status for a server that went, with its message.
int ServerWent(const std::string& ring, bool died) {
  std::fprintf(stderr, "uringest-stat: %s (ring '%s')\n",
               died ? "the server died" : "the server shut down", ring.c_str());
  return died ? 1 : 0;
}

// Redraws the table every `interval` seconds until the server goes.
int ShowTable(const std::string& ring, double interval, bool wait) {
  const bool tty = isatty(STDOUT_FILENO);
  std::unique_ptr<StatSampler> sampler = OpenSampler(ring, wait);
  if (sampler == nullptr) return 1;
  if (ServerExit exit = sampler->CheckServerExit(); exit != ServerExit::kNone) {
    std::fprintf(stderr, "uringest-stat: ring '%s' has no live server (it %s; --wait waits)\n",
                 ring.c_str(), exit == ServerExit::kDied ? "died" : "shut down");
    return 1;
  }
  std::optional<StatSample> previous;
  for (absl::Time next = absl::Now();;) {
    StatSample current = sampler->Sample();
    PrintTable(RenderStatText(BuildStatTable(previous ? &*previous : nullptr, current)), tty);
    previous = std::move(current);
    next = std::max(next + absl::Seconds(interval), absl::Now());
    const WaitResult result = sampler->WatchServer({.deadline = next});
    if (result != WaitResult::kTimeout) return ServerWent(ring, result == WaitResult::kServerDied);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string ring = "uringest";
  bool json = false;
  bool wait = false;
  double interval = 1;
  CLI::App app("uringest-stat: streams and readers of uringestd's frame ring", "uringest-stat");
  app.add_option("--ring", ring, "Name of the server's ring (its --ring)")->capture_default_str();
  app.add_flag("--json", json, "Print one JSON document and exit");
  app.add_flag("--wait", wait,
               "Wait for a server that is not running yet. The table ends when the server "
               "does: 1 if it died, 0 if it shut down cleanly");
  app.add_option("--interval", interval,
                 "Seconds between refreshes; with --json, between the two samples that bitrate "
                 "is measured over (0: one sample, no bitrate)")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (json) return PrintJson(ring, interval, wait);
  if (interval <= 0) interval = 1;
  return ShowTable(ring, interval, wait);
}
