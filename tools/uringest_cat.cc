// uringest-cat: writes one stream of a running uringestd's frame ring as an FLV file, from
// its latest keyframe (or from its start, with --wait), until the publisher stops.
// Enhanced RTMP streams (HEVC, AV1, VP9, Opus, multitrack) come out as Enhanced FLV.
//
//   uringest-cat live/test | ffplay -                  # watch a stream of ring "uringest"
//   uringest-cat --ring test --wait live/cam1 -o cam1.flv   # record the next publish whole
//   uringest-cat --from now --lossless live/cam1 > cam1.flv
//
// Exit status: 0 when the publisher ended the stream, or (--wait) when the server shut
// down cleanly before the stream began; 1 when frames were lost, the server died (or shut
// down while the stream went on), or the output failed; 2 for bad flags. Each with a
// message on stderr.

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <optional>
#include <string>

#include "CLI/CLI.hpp"
#include "consumer/flv_writer.h"
#include "consumer/stream_cat.h"

namespace {

std::atomic<bool> stop_requested{false};

void RequestStop(int) { stop_requested.store(true); }

// Parses the command line; an exit status when the program ends here (--help: 0, a bad
// flag: 2), nothing to go on.
std::optional<int> ParseFlags(int argc, char** argv, uringest::consumer::CatOptions* options,
                              std::string* output) {
  using uringest::consumer::CatStart;
  CLI::App app("uringest-cat: writes a stream of uringestd's frame ring as FLV", "uringest-cat");
  app.add_option("--ring", options->ring, "Name of the server's ring (its --ring)")
      ->capture_default_str();
  app.add_flag("--wait", options->wait,
               "Wait for the server (one not running yet is fine) and the stream; a stream "
               "that starts later is written whole. Once a live server was seen, its death "
               "ends this with 1 within a second; a clean shutdown before the stream began, "
               "with 0");
  std::map<std::string, CatStart> starts{{"keyframe", CatStart::kKeyframe},
                                         {"now", CatStart::kNow}};
  app.add_option("--from", options->start, "keyframe: the latest one in the ring; now: the next")
      ->transform(CLI::CheckedTransformer(starts).description(""))
      ->type_name("keyframe|now")
      ->default_str("keyframe");
  app.add_flag("--lossless", options->lossless,
               "Hold the server back (boundedly) rather than lose frames");
  app.add_option("-o,--output", *output, "FLV file to write (default: stdout)");
  app.add_option("STREAM", options->stream, "The stream: app/name, e.g. live/test")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return std::nullopt;
}

// The last line on stderr, and the exit status.
int Finish(const absl::Status& status, const uringest::consumer::CatSummary& summary,
           const std::string& stream) {
  if (!status.ok()) {
    std::fprintf(stderr, "uringest-cat: %s (%llu frames, %llu bytes written)\n",
                 std::string(status.message()).c_str(), (unsigned long long)summary.frames,
                 (unsigned long long)summary.bytes);
    return 1;
  }
  if (summary.server_shut_down) {
    std::fprintf(stderr, "uringest-cat: the server shut down while waiting for %s\n",
                 stream.c_str());
    return 0;
  }
  std::fprintf(stderr, "uringest-cat: %s ended: %llu frames, %llu bytes\n", stream.c_str(),
               (unsigned long long)summary.frames, (unsigned long long)summary.bytes);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  uringest::consumer::CatOptions options;
  std::string output;
  if (std::optional<int> exit_status = ParseFlags(argc, argv, &options, &output)) {
    return *exit_status;
  }
  int fd = STDOUT_FILENO;
  if (!output.empty()) {
    fd = open(output.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
      std::perror(("uringest-cat: " + output).c_str());
      return 1;
    }
  }
  signal(SIGPIPE, SIG_IGN);  // a closed pipe is a write error, reported below
  signal(SIGINT, RequestStop);
  signal(SIGTERM, RequestStop);
  options.stop = &stop_requested;
  options.log = [](std::string_view line) {
    std::fprintf(stderr, "uringest-cat: %.*s\n", int(line.size()), line.data());
  };
  uringest::consumer::FdSink sink(fd);
  uringest::consumer::CatSummary summary;
  absl::Status status = uringest::consumer::CatStream(options, &sink, &summary);
  if (fd != STDOUT_FILENO && close(fd) != 0 && status.ok()) {
    std::perror(("uringest-cat: " + output).c_str());
    return 1;
  }
  return Finish(status, summary, options.stream);
}
