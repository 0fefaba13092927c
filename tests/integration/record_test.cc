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

// ffprobe reads `file` without a word on stderr.
void ExpectProbesClean(const fs::path& file, const ScratchDir& dir) {
  const std::string err = dir.Path("probe.err");
  EXPECT_EQ(RunCommand({kFfprobe, "-v", "error", "-show_entries", "format=duration", "-of",
                        "csv=p=0", file.string()},
                       kProcessTimeout, dir.Path("probe.out"), err),
            0);
  EXPECT_EQ(ReadFile(err), "") << file;
}

TEST(RecordTest, SegmentsOfAnFfmpegPublishPlayAloneAndHoldEveryFrame) {
  REQUIRE_FFMPEG();
  ScratchDir dir;
  const std::string source = dir.Path("source.flv");
  ASSERT_TRUE(MakeAvSource(source, 20));
  std::unique_ptr<IngestServer> server = IngestServer::Start(2, dir);
  ASSERT_NE(server, nullptr);
  const std::string out = dir.Path("rec");
  const std::string log = dir.Path("record.log");
  Process recorder = Process::Spawn({ToolPath("uringest-record"), "--ring", server->ring(), "--dir",
                                     out, "--pattern", "live/*", "--segment", "6"},
                                    {.stderr_path = log});
  ASSERT_TRUE(WaitForText(log, "recording streams matching")) << ReadFile(log);
  ASSERT_EQ(RunCommand({kFfmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-i", source,
                        "-c", "copy", "-f", "flv", server->Url("live/rec")},
                       kProcessTimeout),
            0);
  ASSERT_TRUE(WaitForText(log, "live/rec: stream ended")) << ReadFile(log);
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
    ExpectProbesClean(file, dir);
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

// The frames of a recorded file with their stream times: the file's time plus its
// onMetaData's uringest.starttime.
std::vector<FlvTag> StreamTimeFrames(const fs::path& file) {
  const std::vector<FlvTag> tags = ParseFlvTags(media::AsBytes(ReadFile(file.string())));
  absl::StatusOr<std::vector<media::amf0::Value>> meta = media::amf0::DecodeAll(tags.at(0).body);
  EXPECT_TRUE(meta.ok() && meta->size() == 2) << file;
  const uint32_t start = uint32_t((*meta)[1].FindNumber("uringest.starttime", -1));
  std::vector<FlvTag> frames = Frames(tags);
  for (FlvTag& t : frames) t.timestamp += start;
  return frames;
}

std::vector<Bytes> Bodies(const std::vector<FlvTag>& tags, uint8_t type, uint32_t from = 0,
                          uint32_t to = UINT32_MAX) {
  std::vector<Bytes> out;
  for (const FlvTag& t : tags) {
    if (t.type == type && t.timestamp >= from && t.timestamp <= to) out.push_back(t.body);
  }
  return out;
}

TEST(RecordTest, ARecorderKilledAndStartedAgainFinishesItsFileAndSaysWhatItMissed) {
  REQUIRE_FFMPEG();
  ScratchDir dir;
  const std::string source = dir.Path("source.flv");
  ASSERT_TRUE(MakeAvSource(source, 12));
  std::unique_ptr<IngestServer> server = IngestServer::Start(1, dir);
  ASSERT_NE(server, nullptr);
  const std::string out = dir.Path("rec");
  auto record = [&](const std::string& log) {
    return Process::Spawn({ToolPath("uringest-record"), "--ring", server->ring(), "--dir", out},
                          {.stderr_path = log});
  };
  const std::string first_log = dir.Path("first.log"), second_log = dir.Path("second.log");
  Process first = record(first_log);
  ASSERT_TRUE(WaitForText(first_log, "recording streams matching")) << ReadFile(first_log);
  Process publisher =
      Process::Spawn({kFfmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-re", "-i",
                      source, "-c", "copy", "-f", "flv", server->Url("live/kill")});
  ASSERT_TRUE(WaitForText(first_log, "live/kill: writing")) << ReadFile(first_log);
  absl::SleepFor(absl::Seconds(3));
  first.Kill();  // SIGKILL: its file stays .part, its last tag perhaps torn
  first.Wait(kProcessTimeout);
  absl::SleepFor(absl::Seconds(3));  // what is published meanwhile is not recorded
  Process second = record(second_log);
  ASSERT_TRUE(WaitForText(second_log, "not recorded while no recorder ran"))
      << ReadFile(second_log);
  EXPECT_EQ(publisher.Wait(kProcessTimeout), 0);
  ASSERT_TRUE(WaitForText(second_log, "live/kill: stream ended")) << ReadFile(second_log);
  second.Signal(SIGINT);
  EXPECT_EQ(second.Wait(kProcessTimeout), 0) << ReadFile(second_log);
  const std::string log = ReadFile(second_log);
  EXPECT_THAT(log, ::testing::HasSubstr("which a recorder that died left"));

  // "... the frames after stream time A s and before B s ..."
  const size_t at = log.find("after stream time ");
  ASSERT_NE(at, std::string::npos);
  double a = 0, b = 0;
  ASSERT_EQ(sscanf(log.c_str() + at, "after stream time %lf s and before %lf s", &a, &b), 2);
  EXPECT_GT(b - a, 2.0);  // about the 3 s no recorder ran, and more
  const std::vector<fs::path> files = FlvFiles(out);
  ASSERT_EQ(files.size(), 2u) << log;
  const std::vector<FlvTag> before = StreamTimeFrames(files[0]);
  const std::vector<FlvTag> after = StreamTimeFrames(files[1]);
  const std::vector<FlvTag> all = Frames(ParseFlvTags(media::AsBytes(ReadFile(source))));
  const uint32_t a_ms = uint32_t(a * 1000 + 0.5), b_ms = uint32_t(b * 1000 + 0.5);
  // Video (in time order here): the first file holds every frame up to A, the second
  // every one from B, and the log names the rest.
  EXPECT_TRUE(Bodies(before, 9) == Bodies(all, 9, 0, a_ms));
  EXPECT_TRUE(Bodies(after, 9) == Bodies(all, 9, b_ms));
  // Audio: the same, give or take the frames a publisher interleaves with the video
  // around A and B (within 100 ms).
  const std::vector<Bytes> audio_before = Bodies(before, 8), audio_after = Bodies(after, 8);
  const std::vector<Bytes> source_audio = Bodies(all, 8);
  ASSERT_FALSE(audio_before.empty());
  ASSERT_FALSE(audio_after.empty());
  EXPECT_TRUE(std::equal(audio_before.begin(), audio_before.end(), source_audio.begin()));
  EXPECT_TRUE(std::equal(audio_after.rbegin(), audio_after.rend(), source_audio.rbegin()));
  EXPECT_NEAR(before.back().timestamp, a_ms, 100);
  EXPECT_GE(Bodies(all, 8, 0, a_ms + 100).size(), audio_before.size());
  EXPECT_GE(Bodies(all, 8, b_ms - 100).size(), audio_after.size());
  for (const fs::path& file : files) {
    ExpectProbesClean(file, dir);
  }
}

// A tmpfs of 1 MiB, mostly taken by a filler file, is the disk that fills; removing the
// filler frees it. Mounting needs root (CI runs as root); elsewhere the test is skipped.
TEST(RecordTest, ADiskThatFillsAndFreesAgainCostsOnlyTheFramesItCouldNotTake) {
  REQUIRE_FFMPEG();
  ScratchDir dir;
  const std::string source = dir.Path("source.flv");
  ASSERT_TRUE(MakeAvSource(source, 16));
  const std::string disk = dir.Path("disk");
  fs::create_directories(disk);
  if (RunCommand({"/bin/mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", disk}, kProcessTimeout) !=
      0) {
    GTEST_SKIP() << "can't mount a tmpfs (needs root)";
  }
  struct Unmount {
    std::string path;
    ~Unmount() { RunCommand({"/bin/umount", "-l", path}, kProcessTimeout); }
  } unmount{disk};
  const std::string filler = disk + "/filler";
  ASSERT_EQ(RunCommand({"/bin/dd", "if=/dev/zero", "of=" + filler, "bs=1k", "count=900"},
                       kProcessTimeout),
            0);
  std::unique_ptr<IngestServer> server = IngestServer::Start(1, dir);
  ASSERT_NE(server, nullptr);
  const std::string log = dir.Path("record.log");
  Process recorder = Process::Spawn(
      {ToolPath("uringest-record"), "--ring", server->ring(), "--dir", disk + "/rec"},
      {.stderr_path = log});
  ASSERT_TRUE(WaitForText(log, "recording streams matching")) << ReadFile(log);
  Process publisher =
      Process::Spawn({kFfmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-re", "-i",
                      source, "-c", "copy", "-f", "flv", server->Url("live/full")});
  ASSERT_TRUE(WaitForText(log, "No space left on device")) << ReadFile(log);
  fs::remove(filler);
  ASSERT_TRUE(WaitForText(log, "live/full: recording again in")) << ReadFile(log);
  EXPECT_EQ(publisher.Wait(kProcessTimeout), 0);
  ASSERT_TRUE(WaitForText(log, "live/full: stream ended")) << ReadFile(log);
  recorder.Signal(SIGINT);
  EXPECT_EQ(recorder.Wait(kProcessTimeout), 0) << ReadFile(log);

  // "... not recorded: N frames from A s to B s ..."
  const std::string text = ReadFile(log);
  const size_t at = text.find("not recorded: ");
  ASSERT_NE(at, std::string::npos) << text;
  unsigned long long missed = 0;
  double a = 0, b = 0;
  ASSERT_EQ(
      sscanf(text.c_str() + at, "not recorded: %llu frames from %lf s to %lf s", &missed, &a, &b),
      3)
      << text;
  const std::vector<fs::path> files = FlvFiles(disk + "/rec");
  ASSERT_EQ(files.size(), 2u) << text;
  std::vector<FlvTag> recorded;
  for (const fs::path& file : files) {
    const std::string bytes = ReadFile(file.string());
    const std::vector<FlvTag> tags = ParseFlvTags(media::AsBytes(bytes));  // whole tags only
    absl::StatusOr<std::vector<media::amf0::Value>> meta = media::amf0::DecodeAll(tags[0].body);
    ASSERT_TRUE(meta.ok() && meta->size() == 2);
    EXPECT_EQ((*meta)[1].FindNumber("filesize", -1), double(bytes.size())) << file;
    ExpectProbesClean(file, dir);
  }
  // Every source frame was written, or counted in the line, once.
  const std::vector<FlvTag> before = StreamTimeFrames(files[0]);
  const std::vector<FlvTag> after = StreamTimeFrames(files[1]);
  const size_t source_frames = Frames(ParseFlvTags(media::AsBytes(ReadFile(source)))).size();
  EXPECT_EQ(before.size() + after.size() + missed, source_frames) << text;
  // Video: the files hold the source's up to A and after B; the line names the rest.
  const std::vector<FlvTag> all = Frames(ParseFlvTags(media::AsBytes(ReadFile(source))));
  const uint32_t a_ms = uint32_t(a * 1000 + 0.5), b_ms = uint32_t(b * 1000 + 0.5);
  EXPECT_TRUE(Bodies(before, 9) == Bodies(all, 9, 0, a_ms - 1));
  EXPECT_TRUE(Bodies(after, 9) == Bodies(all, 9, b_ms + 1));
}

}  // namespace
}  // namespace uringest::testing
