// uringest-record: records every stream of a running uringestd that matches a pattern into
// FLV files, losslessly, until stopped (SIGINT, SIGTERM), finishing every file. A file is
// written as NAME.part and renamed when finished, with onMetaData's duration and filesize
// true; with --segment a new file starts at the first keyframe after that many seconds
// (or --max-size bytes), each one playable alone. See consumer/recorder.h.
//
//   uringest-record --dir /var/lib/uringest/rec --pattern 'live/*' --segment 600
//   uringest-record --dir rec --on-segment-complete 'aws s3 cp'   # runs: CMD PATH STREAM
//
// Exit status: 0 after a stop, with every file finished; 1 when the ring can't be read
// (permissions); 2 for bad flags. Log lines go to stderr.

#include <signal.h>

#include <atomic>
#include <cstdio>
#include <optional>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "consumer/recorder.h"

namespace {

std::atomic<bool> stop_requested{false};

void RequestStop(int) { stop_requested.store(true); }

// Parses the command line; an exit status when the program ends here (--help: 0, a bad
// flag: 2), nothing to go on.
std::optional<int> ParseFlags(int argc, char** argv, uringest::consumer::RecordOptions* options) {
  CLI::App app("uringest-record: records the streams of uringestd's frame ring as FLV files",
               "uringest-record");
  app.add_option("--ring", options->ring, "Name of the server's ring (its --ring)")
      ->capture_default_str();
  app.add_option("--dir", options->dir, "Folder the files go under")->capture_default_str();
  app.add_option("--pattern", options->pattern,
                 "Streams to record: a shell pattern over app/name ('*' also matches '/')")
      ->capture_default_str();
  double segment_s = 0;
  app.add_option("--segment", segment_s,
                 "Start a new file at the first keyframe after this many seconds of media "
                 "(0: one file per stream)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--max-size", options->max_size,
                 "Start a new file at the first keyframe after this many bytes (100M, 2G; "
                 "0: no limit)")
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str();
  app.add_option("--name-template", options->name_template,
                 "File name under --dir: {app}, {name}, {start:STRFTIME} (local time; "
                 "{start} is {start:%Y%m%d-%H%M%S})")
      ->capture_default_str();
  app.add_option("--on-segment-complete", options->on_segment_complete,
                 "Command run for each finished file, as: sh -c 'CMD \"$1\" \"$2\"' with the "
                 "file's path and the stream's name; not waited for");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  options->segment = absl::Seconds(segment_s);
  return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
  uringest::consumer::RecordOptions options;
  if (std::optional<int> exit_status = ParseFlags(argc, argv, &options)) return *exit_status;
  signal(SIGINT, RequestStop);
  signal(SIGTERM, RequestStop);
  options.stop = &stop_requested;
  options.log = [](std::string_view line) {
    const std::string now =
        absl::FormatTime("%Y-%m-%d %H:%M:%E3S", absl::Now(), absl::LocalTimeZone());
    std::fprintf(stderr, "%s uringest-record: %.*s\n", now.c_str(), int(line.size()), line.data());
  };
  uringest::consumer::RecordSummary summary;
  absl::Status status = uringest::consumer::RecordStreams(options, &summary);
  std::fprintf(stderr,
               "uringest-record: %s: files finished %llu, frames written %llu, lost %llu, "
               "not recorded %llu\n",
               status.ok() ? "stopped" : std::string(status.message()).c_str(),
               (unsigned long long)summary.files, (unsigned long long)summary.frames,
               (unsigned long long)summary.lost, (unsigned long long)summary.not_recorded);
  return status.ok() ? 0 : 1;
}
