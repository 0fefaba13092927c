#include "tests/integration/ingest_harness.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "ringbuf/reader.h"
#include "tests/rtmp_testing.h"

namespace uringest::testing {
namespace {

namespace fs = std::filesystem;

constexpr absl::Duration kServerStartTimeout = absl::Seconds(20);
constexpr absl::Duration kServerStopTimeout = absl::Seconds(15);
constexpr absl::Duration kPoll = absl::Milliseconds(20);

std::atomic<int> next_id{0};

// "uringestd: listening on 127.0.0.1:40123, ring ..." -> 40123.
std::optional<int> ParsePort(const std::string& line) {
  const std::string marker = "listening on 127.0.0.1:";
  const size_t at = line.find(marker);
  if (at == std::string::npos) return std::nullopt;
  const size_t begin = at + marker.size();
  const size_t end = line.find(',', begin);
  int port;
  if (!absl::SimpleAtoi(line.substr(begin, end - begin), &port)) return std::nullopt;
  return port;
}

}  // namespace

bool HaveFfmpeg() { return access(kFfmpeg, X_OK) == 0 && access(kFfprobe, X_OK) == 0; }

std::string ToolPath(std::string_view tool) {
  return absl::StrCat(URINGEST_BINARY_DIR, "/bin/", std::string(tool));
}

ScratchDir::ScratchDir()
    : path_(absl::StrCat(::testing::TempDir(), "uringest-it-", getpid(), "-", next_id++)) {
  fs::create_directories(path_);
}

ScratchDir::~ScratchDir() {
  std::error_code ignored;
  // Kept after a failure, for the logs.
  if (!::testing::Test::HasFailure()) fs::remove_all(path_, ignored);
}

std::string ScratchDir::Path(std::string_view file) const {
  return absl::StrCat(path_, "/", std::string(file));
}

std::string UniqueRingName() { return absl::StrCat("uringest-it-", getpid(), "-", next_id++); }

std::unique_ptr<IngestServer> IngestServer::Start(int shards, const ScratchDir& dir,
                                                  const std::vector<std::string>& extra_args,
                                                  const std::string& ring_name) {
  std::string ring = ring_name.empty() ? UniqueRingName() : ring_name;
  std::vector<std::string> args = {
      ToolPath("uringestd"), "--listen", "127.0.0.1:0", "--ring", ring, "--shards",
      absl::StrCat(shards)};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  // A restarted server (same ring) logs to a file of its own.
  std::string log = dir.Path(absl::StrCat("server-", ring, ".log"));
  for (int n = 2; access(log.c_str(), F_OK) == 0; ++n) {
    log = dir.Path(absl::StrCat("server-", ring, "-", n, ".log"));
  }
  Process process = Process::Spawn(args, {.stdout_pipe = true, .stderr_path = log});
  std::optional<std::string> line = process.ReadLine(kServerStartTimeout);
  std::optional<int> port = line ? ParsePort(*line) : std::nullopt;
  if (!port) {
    ADD_FAILURE() << "uringestd did not report its port; stdout: " << line.value_or("(none)");
    return nullptr;
  }
  auto server = std::unique_ptr<IngestServer>(new IngestServer(ring, std::move(process)));
  server->port_ = *port;
  server->log_path_ = log;
  return server;
}

IngestServer::~IngestServer() {
  process_.Signal(SIGTERM);
  if (!process_.Wait(kServerStopTimeout)) ADD_FAILURE() << "uringestd ignored SIGTERM";
  process_.Kill();
  (void)process_.Wait(kServerStopTimeout);
  // A killed server leaves its objects behind; don't let them pile up in /dev/shm.
  for (const char* suffix :
       {".lock", ".dir", ".ring.0", ".ring.1", ".ring.2", ".ring.3", ".ring.0.readers",
        ".ring.1.readers", ".ring.2.readers", ".ring.3.readers"}) {
    unlink(absl::StrCat("/dev/shm/", ring_, suffix).c_str());
  }
}

std::string IngestServer::Url(std::string_view stream) const {
  return absl::StrCat("rtmp://127.0.0.1:", port_, "/", std::string(stream));
}

std::vector<std::string> PublishClipArgs(const std::string& url, int seconds) {
  return {kFfmpeg,
          "-nostdin",
          "-hide_banner",
          "-loglevel",
          "error",
          "-re",
          "-f",
          "lavfi",
          "-i",
          "testsrc=size=320x240:rate=30",
          "-t",
          absl::StrCat(seconds),
          "-c:v",
          "libx264",
          "-preset",
          "ultrafast",
          "-g",
          "30",
          "-f",
          "flv",
          url};
}

bool WaitForText(const std::string& path, std::string_view text, size_t count,
                 absl::Duration timeout) {
  for (absl::Time end = absl::Now() + timeout; absl::Now() < end;) {
    const std::string content = ReadFile(path);
    size_t found = 0;
    for (size_t at = content.find(text); at != std::string::npos; at = content.find(text, at + 1)) {
      ++found;
    }
    if (found >= count) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return false;
}

bool MakeAvSource(const std::string& path, int seconds) {
  return RunCommand({kFfmpeg,
                     "-nostdin",
                     "-hide_banner",
                     "-loglevel",
                     "error",
                     "-y",
                     "-f",
                     "lavfi",
                     "-i",
                     "testsrc=size=640x360:rate=25",
                     "-f",
                     "lavfi",
                     "-i",
                     "sine=frequency=440:sample_rate=44100",
                     "-t",
                     absl::StrCat(seconds),
                     "-c:v",
                     "libx264",
                     "-preset",
                     "ultrafast",
                     "-g",
                     "50",
                     "-c:a",
                     "aac",
                     "-f",
                     "flv",
                     path},
                    kProcessTimeout) == 0;
}

std::vector<std::string> PublishAvArgs(const std::string& url, int seconds) {
  return {kFfmpeg,
          "-nostdin",
          "-hide_banner",
          "-loglevel",
          "error",
          "-y",
          "-f",
          "lavfi",
          "-i",
          "testsrc=size=1280x720:rate=30",
          "-f",
          "lavfi",
          "-i",
          "sine=frequency=1000:sample_rate=48000",
          "-t",
          absl::StrCat(seconds),
          "-c:v",
          "libx264",
          "-preset",
          "ultrafast",
          "-b:v",
          "6M",
          "-g",
          "60",
          "-c:a",
          "aac",
          "-f",
          "flv",
          url};
}

Process StartCat(const std::string& ring, const std::string& stream, const std::string& out,
                 const std::string& log) {
  return Process::Spawn({ToolPath("uringest-cat"), "--ring", ring, "--wait", stream, "-o", out},
                        {.stderr_path = log});
}

bool AwaitDirectoryMapped(pid_t pid, const std::string& ring) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (ReadFile(absl::StrCat("/proc/", pid, "/maps")).find(ring + ".dir") == std::string::npos) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

const std::vector<std::vector<uint8_t>>& SourceVideo() {
  static const std::vector<std::vector<uint8_t>> bodies = [] {
    std::vector<std::vector<uint8_t>> out;
    for (FlvTag& tag : ParseFlvTags(ReadTestData("source_testsrc.flv"))) {
      if (tag.type == 9) out.push_back(std::move(tag.body));
    }
    return out;
  }();
  return bodies;
}

std::vector<std::vector<uint8_t>> TagBodies(const std::string& flv_path, uint8_t type) {
  const std::string bytes = ReadFile(flv_path);
  std::vector<std::vector<uint8_t>> bodies;
  if (bytes.size() < 13) return bodies;
  std::span<const uint8_t> flv(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  for (FlvTag& tag : ParseFlvTags(flv)) {
    if (tag.type == type) bodies.push_back(std::move(tag.body));
  }
  return bodies;
}

int CountVideoFrames(const std::string& path) {
  const std::string out = path + ".frames.txt";
  int code = RunCommand({kFfprobe, "-v", "error", "-count_frames", "-select_streams", "v:0",
                         "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path},
                        kProcessTimeout, out);
  int frames;
  std::string text = ReadFile(out);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return code == 0 && absl::SimpleAtoi(text, &frames) ? frames : -1;
}

std::vector<std::string> FrameHashes(const std::string& path, const ScratchDir& dir) {
  const std::string out = dir.Path(absl::StrCat("framemd5-", next_id++, ".txt"));
  int code = RunCommand({kFfmpeg, "-nostdin", "-v", "error", "-i", path, "-f", "framemd5", "-"},
                        kProcessTimeout, out);
  std::vector<std::string> hashes;
  if (code != 0) return hashes;
  for (absl::string_view line : absl::StrSplit(ReadFile(out), '\n')) {
    if (line.empty() || line[0] == '#') continue;
    // stream_index, dts, pts, duration, size, hash
    std::vector<std::string> fields = absl::StrSplit(line, ',');
    if (fields.size() < 6) continue;
    hashes.push_back(absl::StrCat(fields[0], ",", absl::StripAsciiWhitespace(fields[5])));
  }
  return hashes;
}

bool WaitForStream(const std::string& ring, const std::string& name, uint64_t frames,
                   absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::unique_ptr<ringbuf::Reader> reader;
  while (absl::Now() < deadline) {
    if (reader == nullptr) {
      absl::StatusOr<std::unique_ptr<ringbuf::Reader>> opened = ringbuf::Reader::Open(ring);
      if (opened.ok()) reader = *std::move(opened);
    }
    if (reader != nullptr) {
      std::optional<ringbuf::StreamInfo> info = reader->FindStream(name);
      if (info && info->state == ringbuf::SlotState::kPublishing && info->frames >= frames) {
        return true;
      }
    }
    absl::SleepFor(kPoll);
  }
  return false;
}

bool RingObjectsExist(const std::string& ring) {
  for (const fs::directory_entry& e : fs::directory_iterator("/dev/shm")) {
    if (e.path().filename().string().starts_with(ring + ".")) return true;
  }
  return false;
}

}  // namespace uringest::testing
