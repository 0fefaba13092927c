// uringest-load: a fleet of RTMP publishers in one process on io_uring, for load tests.
// Each publisher sends a synthetic H.264-shaped stream (or a real FLV file's tags), paced
// in real time or as fast as it can; with --verify the server's ring is read as a
// consumer and every frame is accounted for.
//
//   uringest-load --target 127.0.0.1:1935 --publishers 100 --duration 30 --bitrate 2.5M
//   uringest-load --target 127.0.0.1:1935 --publishers 20 --duration 3 --ring uringest --verify
//   uringest-load --target 127.0.0.1:1935 --flv clip.flv --no-pace --duration 10 --json
//   uringest-load --target 127.0.0.1:1935 --publishers 1000 --ramp 10 --server-pid 4242
//   uringest-load --target 127.0.0.1:1935 --publishers 1000 --idle --duration 20
//   uringest-load --target 10.0.0.1:1935 --publishers 50 --verify --ring nodeA,nodeB --reconnect
//
// Exit status: 0 if every publisher went live and ended cleanly and (with --verify) no
// frame was lost, duplicated or reordered; 1 otherwise; 2 for bad flags. With --verify,
// a server that dies (or shuts down) during the run ends it within a second: exit 1,
// the report, and a message on stderr. With several rings (--ring A,B: a fleet of nodes)
// or --reconnect, a server's end costs only its ring and the run goes on; a ring whose
// server restarts is read again.

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <optional>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "engine/status_text.h"
#include "loadgen/load_run.h"
#include "loadgen/report.h"

namespace {

std::atomic<bool> interrupted{false};

// The first Ctrl-C (or SIGTERM) ends the run early with its report; a second one kills.
void Interrupt(int sig) {
  interrupted.store(true);
  signal(sig, SIG_DFL);
}

bool ParseTarget(const std::string& value, uringest::loadgen::FleetOptions* o) {
  const size_t colon = value.rfind(':');
  uint32_t port;
  if (colon == std::string::npos || !absl::SimpleAtoi(value.substr(colon + 1), &port) ||
      port == 0 || port > 65535) {
    return false;
  }
  std::string host = value.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);  // [::1]:1935
  }
  o->host = host.empty() ? "127.0.0.1" : host;
  o->port = uint16_t(port);
  return true;
}

// What the command line asks for beyond LoadOptions.
struct Flags {
  bool json = false;
  std::string ring = "uringest";
};

// What each publisher sends, and how.
void AddMediaFlags(CLI::App& app, uringest::loadgen::LoadOptions* options, double* bitrate,
                   bool* no_pace, bool* no_stamp) {
  uringest::loadgen::FleetOptions& f = options->fleet;
  app.add_option("--bitrate", *bitrate, "Synthetic streams: bits/s (2.5M, 500k)")
      ->transform(CLI::AsNumberWithUnit(std::map<std::string, double>{{"k", 1e3}, {"m", 1e6}}))
      ->check(CLI::Range(1.0, 1e11))
      ->capture_default_str();
  app.add_option("--fps", options->fps, "Synthetic streams: frames per second")
      ->check(CLI::Range(1.0, 1000.0))
      ->capture_default_str();
  app.add_option("--flv", options->flv, "Send this FLV file's tags (looped) instead")
      ->check(CLI::ExistingFile);
  app.add_option("--chunk-size", f.chunk_size, "Our Set Chunk Size (0: the server's, as ffmpeg)")
      ->check(CLI::Range(0u, 0xFFFFFFu))
      ->capture_default_str();
  app.add_flag("--no-pace", *no_pace, "Send as fast as the sockets take it");
  app.add_flag("--idle", f.idle,
               "Publishers go live, then send nothing (no metadata, no media) until the end");
  app.add_flag("--no-stamp", *no_stamp,
               "Send frames exactly as the source has them, without the 32-byte sequence stamp "
               "(a player can decode the stream; no --verify)");
}

// Parses the command line into *options and *flags; an exit status when the program ends
// here (--help: 0, a bad flag: 2), nothing to go on.
std::optional<int> ParseFlags(int argc, char** argv, uringest::loadgen::LoadOptions* options,
                              Flags* flags) {
  uringest::loadgen::FleetOptions& f = options->fleet;
  std::string target = "127.0.0.1:1935";
  double duration = 10, ramp = 0, bitrate = double(options->bitrate_bps);
  bool verify = false, no_pace = false, no_stamp = false;
  CLI::App app("uringest-load: RTMP publishers on io_uring, with end-to-end verification",
               "uringest-load");
  app.add_option("--target", target, "The server: HOST:PORT (IPv4)")->capture_default_str();
  app.add_option("--publishers", f.publishers, "Publishers at once")
      ->check(CLI::Range(1u, 1000000u))
      ->capture_default_str();
  app.add_option("--duration", duration, "Seconds of sending after the ramp")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--ramp", ramp, "Seconds over which the connects are spread")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--app", f.app, "RTMP application; streams are APP/loadN")->capture_default_str();
  AddMediaFlags(app, options, &bitrate, &no_pace, &no_stamp);
  app.add_option("--ring", flags->ring,
                 "The server's ring (for --verify); A,B,...: the rings of several nodes, each "
                 "frame counted once across them")
      ->capture_default_str();
  app.add_flag("--reconnect", f.reconnect,
               "A publisher whose connection breaks reconnects (backoff 250 ms to 2 s) until "
               "the end; frames due while it is down are skipped");
  bool no_follow = false;
  app.add_flag("--no-follow-reconnect", no_follow,
               "Don't announce E-RTMP's Reconnect capability (servers then never ask to move)");
  app.add_flag("--verify", verify,
               "Read the ring and account for every frame; a server that dies ends the run "
               "(exit 1, within a second)");
  app.add_option("--server-pid", options->server_pids,
                 "Sample this process's CPU and RSS (repeatable; --verify: the ring's server)");
  app.add_flag("--json", flags->json, "Print one JSON document instead of the table");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (!ParseTarget(target, &f)) {
    std::fprintf(stderr, "uringest-load: --target wants HOST:PORT, e.g. 127.0.0.1:1935\n");
    return 2;
  }
  if (verify && no_stamp) {
    std::fprintf(stderr, "uringest-load: --verify counts stamped frames; drop --no-stamp\n");
    return 2;
  }
  options->bitrate_bps = uint64_t(bitrate);
  f.duration = absl::Seconds(duration);
  f.ramp = absl::Seconds(ramp);
  f.pace = !no_pace;
  f.stamp = !no_stamp;
  f.follow_reconnect = !no_follow;
  if (verify) {
    options->verify_rings = absl::StrSplit(flags->ring, ',', absl::SkipEmpty());
    if (options->verify_rings.empty()) {
      std::fprintf(stderr, "uringest-load: --ring wants a ring name (or a comma list)\n");
      return 2;
    }
  }
  return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
  uringest::loadgen::LoadOptions options;
  Flags flags;
  if (std::optional<int> exit_status = ParseFlags(argc, argv, &options, &flags)) {
    return *exit_status;
  }
  signal(SIGPIPE, SIG_IGN);
  options.interrupt = &interrupted;
  signal(SIGINT, Interrupt);
  signal(SIGTERM, Interrupt);

  const bool tty = isatty(STDERR_FILENO);
  absl::StatusOr<uringest::loadgen::LoadReport> report =
      uringest::loadgen::RunLoad(options, [&](std::string_view line) {
        std::fprintf(stderr, tty ? "\r\033[K%.*s" : "%.*s\n", int(line.size()), line.data());
      });
  if (tty) std::fputc('\n', stderr);
  if (!report.ok()) {
    std::fprintf(stderr, "uringest-load: %s\n",
                 std::string(uringest::engine::StatusText(report.status())).c_str());
    return 1;
  }
  const std::string out =
      flags.json ? uringest::loadgen::FormatJson(*report) : uringest::loadgen::FormatTable(*report);
  std::fputs(out.c_str(), stdout);
  if (report->server_exit != uringest::ringbuf::ServerExit::kNone) {
    std::fprintf(stderr, "uringest-load: %s during the run (seen in ring '%s'); the run ended\n",
                 uringest::loadgen::ServerExitText(report->server_exit), flags.ring.c_str());
  }
  return report->ok() ? 0 : 1;
}
