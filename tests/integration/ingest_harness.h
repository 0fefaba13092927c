// ingest_harness.h: what the integration tests drive: a real uringestd on 127.0.0.1:0 with
// a ring name of its own, the real uringest-cat and uringest-stat, the real ffmpeg and
// ffprobe, and readers of what they produce. Processes come from process.h, so every
// wait is bounded and nothing outlives its test.
//
//   ScratchDir dir;
//   std::unique_ptr<IngestServer> server = IngestServer::Start(2, dir);
//   Process cat = StartCat(server->ring(), "live/test", dir.Path("out.flv"), dir.Path("cat.log"));
//   RunCommand(PublishClipArgs(server->Url("live/test")), kProcessTimeout);
//   EXPECT_EQ(cat.Wait(kProcessTimeout), 0);

#ifndef URINGEST_TESTS_INTEGRATION_INGEST_HARNESS_H_
#define URINGEST_TESTS_INTEGRATION_INGEST_HARNESS_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "tests/integration/process.h"

namespace uringest::testing {

// Any one child may take this long before the test gives up on it and kills it.
inline constexpr absl::Duration kProcessTimeout = absl::Seconds(60);

inline constexpr char kFfmpeg[] = "/usr/bin/ffmpeg";
inline constexpr char kFfprobe[] = "/usr/bin/ffprobe";
bool HaveFfmpeg();
// In a test body: skip the test where ffmpeg is missing.
#define REQUIRE_FFMPEG()                  \
  if (!::uringest::testing::HaveFfmpeg()) \
  GTEST_SKIP() << ::uringest::testing::kFfmpeg << " is missing"

// The video tag bodies of tests/data/source_testsrc.flv (sequence header, 60 frames, end
// of sequence): what every publish of the seed clip must deliver.
const std::vector<std::vector<uint8_t>>& SourceVideo();

// URINGEST_BINARY_DIR/bin/<tool>.
std::string ToolPath(std::string_view tool);

// A fresh directory under the test temp dir, removed with its files when it goes.
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  std::string Path(std::string_view file) const;

 private:
  std::string path_;
};

// "uringest-it-<pid>-<n>": a ring name no other test uses.
std::string UniqueRingName();

class IngestServer {
 public:
  // Starts uringestd (with `extra_args` after the harness's own) and waits for its
  // "listening on" line; nullptr (with a test failure recorded) if it doesn't come. Its
  // log goes to log_path() (in `dir`). `ring`: "" for a fresh unique name.
  static std::unique_ptr<IngestServer> Start(int shards, const ScratchDir& dir,
                                             const std::vector<std::string>& extra_args = {},
                                             const std::string& ring = "");
  ~IngestServer();  // SIGTERM, bounded wait, then SIGKILL

  const std::string& ring() const { return ring_; }
  const std::string& log_path() const { return log_path_; }
  int port() const { return port_; }
  std::string Url(std::string_view stream) const;  // rtmp://127.0.0.1:PORT/app/name
  Process& process() { return process_; }

 private:
  IngestServer(std::string ring, Process process)
      : ring_(std::move(ring)), process_(std::move(process)) {}
  std::string ring_;
  std::string log_path_;
  int port_ = 0;
  Process process_;
};

// The publish command: 2 s (or `seconds`) of 320x240 testsrc at 30 fps, libx264
// ultrafast, GOP 30, in real time (-re), to `url`. Options that only quiet ffmpeg and
// keep it off the terminal come first; they don't change the stream.
std::vector<std::string> PublishClipArgs(const std::string& url, int seconds = 2);
// H.264 + AAC: 1280x720 testsrc and a 1 kHz sine, `seconds` long, 6 Mbit/s, GOP 60, as
// fast as ffmpeg can (no -re).
std::vector<std::string> PublishAvArgs(const std::string& url, int seconds);
// Writes `seconds` of 640x360 testsrc at 25 fps (libx264 ultrafast, a keyframe every 2 s)
// and a 440 Hz sine as AAC into the FLV file `path`: a source a publisher sends with
// `-c copy`, so that what comes out can be compared with it tag for tag.
bool MakeAvSource(const std::string& path, int seconds);

// uringest-cat --ring RING --wait STREAM -o OUT, its stderr to `log`.
Process StartCat(const std::string& ring, const std::string& stream, const std::string& out,
                 const std::string& log);
// Waits until process `pid` has mapped ring `ring`'s directory: uringest-cat --wait has
// started waiting, so a stream that begins from now on is written whole even if it ends
// before uringest-cat looks again.
bool AwaitDirectoryMapped(pid_t pid, const std::string& ring);

// The bodies of the FLV file's tags of `type` (8 audio, 9 video), in order.
std::vector<std::vector<uint8_t>> TagBodies(const std::string& flv_path, uint8_t type);
// What ffprobe counts as decoded video frames (-count_frames), or -1.
int CountVideoFrames(const std::string& path);
// The per-frame lines of `ffmpeg -i PATH -f framemd5 -` as "stream,hash" (comments and
// timestamps left out).
std::vector<std::string> FrameHashes(const std::string& path, const ScratchDir& dir);

// Polls ring `ring` until stream `name` is publishing with at least `frames` records.
bool WaitForStream(const std::string& ring, const std::string& name, uint64_t frames,
                   absl::Duration timeout);
bool RingObjectsExist(const std::string& ring);  // any /dev/shm/RING.*
// Polls the file at `path` (a log) until `text` is in it `count` times.
bool WaitForText(const std::string& path, std::string_view text, size_t count = 1,
                 absl::Duration timeout = kProcessTimeout);
std::string ReadFile(const std::string& path);

}  // namespace uringest::testing

#endif  // URINGEST_TESTS_INTEGRATION_INGEST_HARNESS_H_
