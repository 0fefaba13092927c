#include "consumer/recorder.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "gtest/gtest.h"
#include "media/amf0.h"
#include "media/amf0_decoder.h"
#include "media/script_data.h"
#include "ringbuf/ring_server.h"
#include "tests/rtmp_testing.h"

namespace uringest::consumer {
namespace {

namespace fs = std::filesystem;
using ringbuf::Keep;
using ringbuf::RecordType;
using ringbuf::RingServer;
using ringbuf::StreamWriter;
using testing::FlvTag;

std::string UniqueName() {
  static std::atomic<int> counter{0};
  return absl::StrCat("uringest-record-test-", getpid(), "-", counter.fetch_add(1));
}

std::vector<uint8_t> ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The finished .flv files under `dir`, in the order they were begun: by start time in
// their names, and NAME.flv before NAME-1.flv.
std::vector<fs::path> Files(const fs::path& dir) {
  std::vector<fs::path> out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().extension() == ".flv") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end(), [](const fs::path& a, const fs::path& b) {
    const std::string x = a.string(), y = b.string();
    return x.size() != y.size() ? x.size() < y.size() : x < y;
  });
  return out;
}

double MetadataNumber(const std::vector<FlvTag>& tags, std::string_view key) {
  absl::StatusOr<std::vector<media::amf0::Value>> v = media::amf0::DecodeAll(tags.at(0).body);
  EXPECT_TRUE(v.ok() && v->size() == 2);
  return v.ok() && v->size() == 2 ? (*v)[1].FindNumber(key, -1) : -1;
}

class RecorderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / absl::StrCat("recorder-test-", getpid());
    fs::remove_all(dir_);
    auto server = RingServer::Create({.name = name_,
                                      .ring_capacity = 4 << 20,
                                      .directory_slots = 16,
                                      .huge_pages = false,
                                      .prefault = false});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    source_ = testing::ParseFlvTags(testing::ReadTestData("source_testsrc.flv"));
  }
  void TearDown() override {
    Stop();
    fs::remove_all(dir_);
  }

  void Start(RecordOptions options) {
    options_ = std::move(options);
    options_.ring = name_;
    options_.dir = dir_.string();
    options_.stop = &stop_;
    options_.log = [this](std::string_view line) {
      std::lock_guard<std::mutex> lock(mu_);
      log_.emplace_back(line);
    };
    run_ = std::async(std::launch::async, [this] { return RecordStreams(options_, &summary_); });
    ASSERT_TRUE(WaitForLog("recording streams matching"));
  }
  void Stop() {
    if (!run_.valid()) return;
    stop_ = true;
    ASSERT_EQ(run_.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    EXPECT_TRUE(run_.get().ok());
  }
  bool WaitForLog(std::string_view text, int seconds = 10) {
    for (int i = 0; i < seconds * 100; ++i) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (const std::string& line : log_) {
          if (line.find(text) != std::string::npos) return true;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::lock_guard<std::mutex> lock(mu_);
    ADD_FAILURE() << "no log line with '" << text << "' in:\n" << absl::StrJoin(log_, "\n");
    return false;
  }

  StreamWriter Begin(const std::string& name) {
    auto stream = server_->shard(0).BeginStream(name, "127.0.0.1:1935");
    EXPECT_TRUE(stream.ok()) << stream.status();
    return *std::move(stream);
  }
  // Writes source tags [from, to) as the engine would.
  void Publish(StreamWriter* s, size_t from, size_t to) {
    for (size_t i = from; i < to; ++i) {
      const FlvTag& tag = source_[i];
      uint8_t flags = ringbuf::kFlagKeyframe;
      uint8_t packet_type = 0;
      if (tag.type == 9) {
        flags = (tag.body[0] >> 4) == 1 ? ringbuf::kFlagKeyframe : 0;
        packet_type = tag.body[1];
        if (packet_type == 0) flags |= ringbuf::kFlagSequenceHeader;
      }
      const Keep keep = (flags & ringbuf::kFlagSequenceHeader) != 0 ? Keep::kAsConfig
                        : tag.type == 18                            ? Keep::kAsMetadata
                                                                    : Keep::kNo;
      ASSERT_TRUE(s->WriteFrame({.type = RecordType(tag.type),
                                 .flags = flags,
                                 .dts = tag.timestamp,
                                 .pts = tag.timestamp,
                                 .packet_type = packet_type},
                                tag.body, keep)
                      .ok());
    }
  }

  std::string name_ = UniqueName();
  fs::path dir_;
  std::unique_ptr<RingServer> server_;
  std::vector<FlvTag> source_;
  RecordOptions options_;
  std::atomic<bool> stop_{false};
  std::future<absl::Status> run_;
  RecordSummary summary_;
  std::mutex mu_;
  std::vector<std::string> log_;
};

TEST_F(RecorderTest, AStreamMatchingThePatternBecomesOneWholeFile) {
  Start({.pattern = "live/*"});
  StreamWriter other = Begin("test/skip");
  StreamWriter s = Begin("live/cam");
  Publish(&other, 0, 5);
  Publish(&s, 0, source_.size());
  s.End();
  ASSERT_TRUE(WaitForLog("live/cam: finished"));
  const std::vector<fs::path> files = Files(dir_);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].parent_path(), dir_ / "live" / "cam");
  const std::vector<uint8_t> bytes = ReadFile(files[0]);
  const std::vector<FlvTag> tags = testing::ParseFlvTags(bytes);
  ASSERT_EQ(tags.size(), source_.size());
  for (size_t i = 1; i < tags.size(); ++i) {
    EXPECT_EQ(tags[i].body, source_[i].body) << i;
    EXPECT_EQ(tags[i].timestamp, source_[i].timestamp) << i;
  }
  EXPECT_DOUBLE_EQ(MetadataNumber(tags, "duration"), source_.back().timestamp / 1000.0);
  EXPECT_EQ(MetadataNumber(tags, "filesize"), double(bytes.size()));
  Stop();
  EXPECT_EQ(summary_.files, 1u);
  EXPECT_EQ(summary_.lost, 0u);
  EXPECT_EQ(summary_.frames, source_.size() - 2);  // not onMetaData, not the sequence header
}

TEST_F(RecorderTest, SegmentsStartAtKeyframesEachPlayableAloneAndTogetherHoldEveryFrame) {
  const fs::path hooks = fs::temp_directory_path() / absl::StrCat("recorder-hooks-", getpid());
  fs::remove(hooks);
  Start({.name_template = "{app}-{name}-{start:%Y}.flv",
         .segment = absl::Milliseconds(500),
         .on_segment_complete = absl::StrCat("printf '%s %s\\n' >>", hooks.string())});
  StreamWriter s = Begin("live/seg");
  Publish(&s, 0, source_.size());
  s.End();
  ASSERT_TRUE(WaitForLog("live/seg: stream ended"));
  Stop();
  // Keyframes at 0 and 1000 ms: two files, "live-seg-YYYY.flv" and "live-seg-YYYY-1.flv".
  const std::vector<fs::path> files = Files(dir_);
  ASSERT_EQ(files.size(), 2u);
  const std::string year =
      absl::StrCat(absl::ToCivilYear(absl::Now(), absl::LocalTimeZone()).year());
  EXPECT_EQ(files[0].filename(), absl::StrCat("live-seg-", year, ".flv"));
  std::vector<FlvTag> frames;
  for (const fs::path& file : files) {
    const std::vector<FlvTag> tags = testing::ParseFlvTags(ReadFile(file));
    ASSERT_GE(tags.size(), 3u);
    EXPECT_EQ(tags[0].type, 18);
    EXPECT_EQ(tags[1].body, source_[1].body);    // the sequence header
    EXPECT_EQ(tags[2].body[0] >> 4, 1) << file;  // then a keyframe
    EXPECT_EQ(tags[2].timestamp, 0u) << file;    // each file's time starts at 0
    frames.insert(frames.end(), tags.begin() + 2, tags.end());
  }
  ASSERT_EQ(frames.size(), source_.size() - 2);
  for (size_t i = 0; i < frames.size(); ++i) EXPECT_EQ(frames[i].body, source_[i + 2].body) << i;
  // The hook ran once per file, with its path and the stream's name (the two may finish
  // in either order).
  for (int i = 0; i < 100 && ReadFile(hooks).size() < 2 * files[1].string().size(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const std::vector<uint8_t> hook_bytes = ReadFile(hooks);
  std::vector<std::string> hook_lines =
      absl::StrSplit(std::string(hook_bytes.begin(), hook_bytes.end()), '\n', absl::SkipEmpty());
  std::sort(hook_lines.begin(), hook_lines.end());
  std::vector<std::string> expected = {absl::StrCat(files[0].string(), " live/seg"),
                                       absl::StrCat(files[1].string(), " live/seg")};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(hook_lines, expected);
  fs::remove(hooks);
}

// A hook that fails is logged with its file; children the recorder did not start (its
// host program's) are left for their owner to wait for.
TEST_F(RecorderTest, AFailingHookIsLoggedAndOtherChildrenAreNotReaped) {
  const pid_t other = fork();
  if (other == 0) {
    usleep(20'000);
    _exit(7);
  }
  ASSERT_GT(other, 0);
  Start({.on_segment_complete = "exit 3; true"});
  StreamWriter s = Begin("live/hook");
  Publish(&s, 0, source_.size());
  s.End();
  ASSERT_TRUE(WaitForLog("live/hook: stream ended"));
  ASSERT_TRUE(WaitForLog(") exited with 3"));
  EXPECT_TRUE(WaitForLog("--on-segment-complete for " + (dir_ / "live" / "hook").string()));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // a few more reaps
  Stop();
  int status = 0;
  ASSERT_EQ(waitpid(other, &status, 0), other) << "the recorder reaped a child not its own";
  EXPECT_EQ(WEXITSTATUS(status), 7);
}

// A file size limit (RLIMIT_FSIZE) fails writes as a full disk does; raising it again is
// the disk freed.
TEST_F(RecorderTest, AFailingDiskStopsTheFileAndRecordingResumesInANewOne) {
  Start({});
  struct sigaction ignore = {}, old = {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGXFSZ, &ignore, &old), 0);
  rlimit saved;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  rlimit small = {.rlim_cur = 20000, .rlim_max = saved.rlim_max};
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  StreamWriter s = Begin("live/disk");
  Publish(&s, 0, 32);  // about 25 kB: past the limit within the first GOP
  const bool stopped = WaitForLog("live/disk: recording stopped");
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &saved), 0);
  sigaction(SIGXFSZ, &old, nullptr);
  ASSERT_TRUE(stopped);
  EXPECT_TRUE(WaitForLog("File too large"));
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // past the first retry
  Publish(&s, 32, source_.size());  // the keyframe at 1000 ms opens a new file
  s.End();
  ASSERT_TRUE(WaitForLog("live/disk: recording again in"));
  ASSERT_TRUE(WaitForLog("live/disk: stream ended"));
  Stop();
  const std::vector<fs::path> files = Files(dir_);
  ASSERT_EQ(files.size(), 2u);
  for (const fs::path& file : files) {
    const std::vector<uint8_t> bytes = ReadFile(file);
    const std::vector<FlvTag> tags = testing::ParseFlvTags(bytes);  // whole tags only
    EXPECT_EQ(MetadataNumber(tags, "filesize"), double(bytes.size())) << file;
  }
  EXPECT_LE(fs::file_size(files[0]), 20000u);
  EXPECT_GT(summary_.not_recorded, 0u);
  EXPECT_EQ(summary_.frames + summary_.not_recorded, source_.size() - 2);
}

TEST(SegmentNameTest, FillsTheTemplateAndKeepsNamesInsideTheFolder) {
  const absl::Time t =
      absl::FromCivil(absl::CivilSecond(2026, 12, 3, 10, 15, 0), absl::LocalTimeZone());
  EXPECT_EQ(SegmentName("{app}/{name}/{start:%Y%m%d-%H%M%S}.flv", "live/cam1", t),
            "live/cam1/20261203-101500.flv");
  EXPECT_EQ(SegmentName("{name}_{start}.flv", "live/cam1", t), "cam1_20261203-101500.flv");
  EXPECT_EQ(SegmentName("{app}/{name}.flv", "live/../etc", t), "live/_._etc.flv");
  EXPECT_EQ(SegmentName("{app}/{name}.flv", "live/.hidden", t), "live/_hidden.flv");
  EXPECT_EQ(SegmentName("{other}-{name", "a/b", t), "{other}-{name");
}

}  // namespace
}  // namespace uringest::consumer
