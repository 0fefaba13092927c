// Issue 14: uringest-record against the real uringestd, publishing with the real ffmpeg,
// checked with the real ffprobe (label "integration").

#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "media/amf0.h"
#include "media/amf0_decoder.h"
#include "media/byte_order.h"
#include "tests/integration/ingest_harness.h"
#include "tests/integration/process.h"
#include "tests/rtmp_testing.h"

namespace uringest::testing {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

// 20 s of 640x360 testsrc at 25 fps with a 2 s GOP, and a 440 Hz sine as AAC: the source
// file a publisher sends with -c copy, so that what was recorded can be compared with it.
bool MakeSource(const std::string& path) {
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
                     "20",
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

bool WaitForLine(const std::string& log, std::string_view text) {
  for (absl::Time end = absl::Now() + kProcessTimeout; absl::Now() < end;) {
    if (ReadFile(log).find(text) != std::string::npos) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return false;
}

// Frames: the A/V tags that are not sequence headers (AVC and AAC: packet type 0).
std::vector<FlvTag> Frames(const std::vector<FlvTag>& tags) {
  std::vector<FlvTag> out;
  for (const FlvTag& t : tags) {
    if ((t.type == 8 || t.type == 9) && !(t.body.size() > 1 && t.body[1] == 0)) out.push_back(t);
  }
  return out;
}

double MetadataDuration(const FlvTag& tag) {
  absl::StatusOr<std::vector<media::amf0::Value>> v = media::amf0::DecodeAll(tag.body);
  return v.ok() && v->size() == 2 ? (*v)[1].FindNumber("duration", -1) : -1;
}

std::vector<fs::path> FlvFiles(const std::string& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) out.push_back(e.path());
  }
  // Begun in one second, they are NAME.flv, NAME-1.flv, ...: shorter names first.
  std::sort(out.begin(), out.end(), [](const fs::path& a, const fs::path& b) {
    const std::string x = a.string(), y = b.string();
    return x.size() != y.size() ? x.size() < y.size() : x < y;
  });
  return out;
}

TEST(RecordTest, SegmentsOfAnFfmpegPublishPlayAloneAndHoldEveryFrame) {
  REQUIRE_FFMPEG();
  ScratchDir dir;
  const std::string source = dir.Path("source.flv");
  ASSERT_TRUE(MakeSource(source));
  std::unique_ptr<IngestServer> server = IngestServer::Start(2, dir);
  ASSERT_NE(server, nullptr);
  const std::string out = dir.Path("rec");
  const std::string log = dir.Path("record.log");
  Process recorder = Process::Spawn({ToolPath("uringest-record"), "--ring", server->ring(), "--dir",
                                     out, "--pattern", "live/*", "--segment", "6"},
                                    {.stderr_path = log});
  ASSERT_TRUE(WaitForLine(log, "recording streams matching")) << ReadFile(log);
  ASSERT_EQ(RunCommand({kFfmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-i", source,
                        "-c", "copy", "-f", "flv", server->Url("live/rec")},
                       kProcessTimeout),
            0);
  ASSERT_TRUE(WaitForLine(log, "live/rec: stream ended")) << ReadFile(log);
  recorder.Signal(SIGINT);
  EXPECT_EQ(recorder.Wait(kProcessTimeout), 0) << ReadFile(log);
  EXPECT_THAT(ReadFile(log), ::testing::HasSubstr("lost 0, not recorded 0"));

  // Keyframes every 2 s, a new file at the first after 6 s: 0-6, 6-12, 12-18, 18-20 s.
  const std::vector<fs::path> files = FlvFiles(out);
  ASSERT_EQ(files.size(), 4u) << ReadFile(log);
  std::vector<FlvTag> recorded;
  for (const fs::path& file : files) {
    EXPECT_EQ(file.extension(), ".flv");
    const std::vector<FlvTag> tags = ParseFlvTags(media::AsBytes(ReadFile(file.string())));
    ASSERT_GE(tags.size(), 4u) << file;
    // onMetaData, both sequence headers, then a video keyframe at time 0.
    EXPECT_EQ(tags[0].type, 18) << file;
    const std::vector<FlvTag> frames = Frames(tags);
    const auto first_video =
        std::find_if(frames.begin(), frames.end(), [](const FlvTag& t) { return t.type == 9; });
    ASSERT_NE(first_video, frames.end());
    EXPECT_EQ(first_video->body[0] >> 4, 1) << file << ": starts with a keyframe";
    for (uint8_t type : {8, 9}) {
      const auto header = std::find_if(tags.begin(), tags.end(), [&](const FlvTag& t) {
        return t.type == type && t.body.size() > 1 && t.body[1] == 0;
      });
      EXPECT_LT(header - tags.begin(), 3) << file << ": sequence header of type " << int(type);
    }
    // The metadata's duration is within a GOP (2 s) of the last frame's time.
    EXPECT_NEAR(MetadataDuration(tags[0]), frames.back().timestamp / 1000.0, 2.0) << file;
    // ffprobe decodes it without a word.
    const std::string err = dir.Path("probe.err");
    EXPECT_EQ(RunCommand({kFfprobe, "-v", "error", "-show_entries", "format=duration", "-of",
                          "csv=p=0", file.string()},
                         kProcessTimeout, dir.Path("probe.out"), err),
              0);
    EXPECT_EQ(ReadFile(err), "") << file;
    recorded.insert(recorded.end(), frames.begin(), frames.end());
  }
  // Every frame of the source, once, in order: audio and video each (ffmpeg may
  // interleave them a little differently when it publishes).
  const std::vector<FlvTag> expected = Frames(ParseFlvTags(media::AsBytes(ReadFile(source))));
  ASSERT_EQ(recorded.size(), expected.size());
  for (uint8_t type : {8, 9}) {
    std::vector<Bytes> want, got;
    for (const FlvTag& t : expected) {
      if (t.type == type) want.push_back(t.body);
    }
    for (const FlvTag& t : recorded) {
      if (t.type == type) got.push_back(t.body);
    }
    EXPECT_EQ(got.size(), want.size()) << "type " << int(type);
    EXPECT_TRUE(got == want) << "type " << int(type);
  }
}

}  // namespace
}  // namespace uringest::testing
