// Issue 4's acceptance tests: the real uringestd, uringest-cat, uringest-stat and ffmpeg.
// A clip published over RTMP comes out of the ring as the same coded frames, byte for
// byte, whatever the shard count, with audio, and with ten publishers at once; a second
// publisher of a name is refused; uringest-stat shows a live stream; SIGTERM ends
// streams cleanly and removes the ring.

#include <signal.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/ingest_harness.h"
#include "tests/integration/process.h"
#include "tests/rtmp_testing.h"

namespace uringest::testing {
namespace {

// The issue asks for 60 s of audio and video; CI runs a shorter one (the acceptance notes
// have the 60 s run).
constexpr int kAvSeconds = 10;
constexpr int kClipFrames = 60;  // 2 s at 30 fps
constexpr int kPublishers = 10;

std::string SourcePath() { return std::string(URINGEST_TESTDATA_DIR) + "/source_testsrc.flv"; }

// Everything uringest-cat wrote must be the source clip's video, frame for frame.
void ExpectSourceClip(const std::string& flv, const ScratchDir& dir) {
  const std::vector<std::vector<uint8_t>> video = TagBodies(flv, 9);
  ASSERT_EQ(video.size(), SourceVideo().size()) << "sequence header + 60 frames + end of sequence";
  for (size_t i = 0; i < video.size(); ++i) EXPECT_EQ(video[i], SourceVideo()[i]) << "tag " << i;
  EXPECT_EQ(CountVideoFrames(flv), kClipFrames);
  EXPECT_EQ(FrameHashes(flv, dir), FrameHashes(SourcePath(), dir));
}

class ClipTest : public ::testing::TestWithParam<int> {};

TEST_P(ClipTest, PublishedClipComesOutOfTheRingByteForByte) {
  REQUIRE_FFMPEG();
  ScratchDir dir;
  std::unique_ptr<IngestServer> server = IngestServer::Start(GetParam(), dir);
  ASSERT_NE(server, nullptr);
  Process cat = StartCat(server->ring(), "live/test", dir.Path("out.flv"), dir.Path("cat.log"));
  EXPECT_EQ(RunCommand(PublishClipArgs(server->Url("live/test")), kProcessTimeout), 0);
  EXPECT_EQ(cat.Wait(kProcessTimeout), 0) << ReadFile(dir.Path("cat.log"));
  ExpectSourceClip(dir.Path("out.flv"), dir);
}

INSTANTIATE_TEST_SUITE_P(Shards, ClipTest, ::testing::Values(1, 2),
                         [](const auto& info) { return absl::StrCat(info.param, "Shards"); });

// libx264 and the AAC encoder are deterministic for a given input and settings (checked:
// repeated encodes here are identical), so a file encode of the same command is what the
// publisher sent, audio and video alike.
TEST(AudioVideoTest, EveryAudioAndVideoFrameArrivesUnchanged) {
  REQUIRE_FFMPEG();
  ScratchDir dir;
  const std::string reference = dir.Path("reference.flv");
  ASSERT_EQ(RunCommand(PublishAvArgs(reference, kAvSeconds), kProcessTimeout), 0);
  std::unique_ptr<IngestServer> server = IngestServer::Start(2, dir);
  ASSERT_NE(server, nullptr);
  const std::string out = dir.Path("out.flv");
  Process cat = StartCat(server->ring(), "live/av", out, dir.Path("cat.log"));
  EXPECT_EQ(RunCommand(PublishAvArgs(server->Url("live/av"), kAvSeconds), kProcessTimeout), 0);
  EXPECT_EQ(cat.Wait(kProcessTimeout), 0) << ReadFile(dir.Path("cat.log"));
  const auto audio = TagBodies(out, 8), reference_audio = TagBodies(reference, 8);
  EXPECT_GT(reference_audio.size(), size_t(kAvSeconds * 46));  // 48 kHz / 1024 per frame
  EXPECT_EQ(audio.size(), reference_audio.size());
  EXPECT_TRUE(audio == reference_audio) << "audio tag bodies differ";
  const auto video = TagBodies(out, 9), reference_video = TagBodies(reference, 9);
  EXPECT_EQ(video.size(), size_t(kAvSeconds * 30 + 2));  // + sequence header, end of sequence
  EXPECT_TRUE(video == reference_video) << "video tag bodies differ";
  EXPECT_EQ(CountVideoFrames(out), kAvSeconds * 30);
  EXPECT_EQ(FrameHashes(out, dir), FrameHashes(reference, dir));
}

TEST(ConcurrencyTest, TenPublishersEachReachTheirOwnReader) {
  REQUIRE_FFMPEG();
  ScratchDir dir;
  std::unique_ptr<IngestServer> server = IngestServer::Start(2, dir);
  ASSERT_NE(server, nullptr);
  std::vector<Process> cats, publishers;
  for (int i = 0; i < kPublishers; ++i) {
    cats.push_back(StartCat(server->ring(), absl::StrCat("live/s", i),
                            dir.Path(absl::StrCat("s", i, ".flv")),
                            dir.Path(absl::StrCat("cat", i, ".log"))));
  }
  // Each waits before its stream begins, so that each writes its stream whole.
  for (Process& cat : cats) ASSERT_TRUE(AwaitDirectoryMapped(cat.pid(), server->ring()));
  for (int i = 0; i < kPublishers; ++i) {
    publishers.push_back(Process::Spawn(PublishClipArgs(server->Url(absl::StrCat("live/s", i))),
                                        {.stderr_path = dir.Path(absl::StrCat("ff", i, ".log"))}));
  }
  for (int i = 0; i < kPublishers; ++i) {
    EXPECT_EQ(publishers[i].Wait(kProcessTimeout), 0)
        << ReadFile(dir.Path(absl::StrCat("ff", i, ".log")));
    EXPECT_EQ(cats[i].Wait(kProcessTimeout), 0)
        << ReadFile(dir.Path(absl::StrCat("cat", i, ".log")));
  }
  for (int i = 0; i < kPublishers; ++i) {
    EXPECT_TRUE(TagBodies(dir.Path(absl::StrCat("s", i, ".flv")), 9) == SourceVideo())
        << "live/s" << i << " differs from the source clip";
  }
}

TEST(DuplicateTest, SecondPublisherOfANameIsRefusedWhileTheFirstGoesOn) {
  REQUIRE_FFMPEG();
  constexpr int kSeconds = 4;
  ScratchDir dir;
  std::unique_ptr<IngestServer> server = IngestServer::Start(2, dir);
  ASSERT_NE(server, nullptr);
  Process cat = StartCat(server->ring(), "live/test", dir.Path("out.flv"), dir.Path("cat.log"));
  Process first = Process::Spawn(PublishClipArgs(server->Url("live/test"), kSeconds));
  ASSERT_TRUE(WaitForStream(server->ring(), "live/test", 10, absl::Seconds(20)));
  EXPECT_NE(RunCommand(PublishClipArgs(server->Url("live/test"), kSeconds), kProcessTimeout, "",
                       dir.Path("second.log")),
            0);
  EXPECT_TRUE(first.Running()) << "the first publisher must keep going";
  EXPECT_EQ(first.Wait(kProcessTimeout), 0);
  EXPECT_EQ(cat.Wait(kProcessTimeout), 0) << ReadFile(dir.Path("cat.log"));
  EXPECT_EQ(CountVideoFrames(dir.Path("out.flv")), kSeconds * 30);
}

TEST(StatTest, JsonListsThePublishingStreamWithPublisherAndFrames) {
  REQUIRE_FFMPEG();
  ScratchDir dir;
  std::unique_ptr<IngestServer> server = IngestServer::Start(2, dir);
  ASSERT_NE(server, nullptr);
  Process publisher = Process::Spawn(PublishClipArgs(server->Url("live/test"), 4));
  ASSERT_TRUE(WaitForStream(server->ring(), "live/test", 10, absl::Seconds(20)));
  const std::string json = dir.Path("stat.json");
  ASSERT_EQ(RunCommand({ToolPath("uringest-stat"), "--ring", server->ring(), "--json", "--interval",
                        "0.3"},
                       kProcessTimeout, json),
            0);
  const std::string text = ReadFile(json);
  EXPECT_EQ(text.front(), '{');
  EXPECT_EQ(text.substr(text.size() - 2), "}\n");
  EXPECT_NE(text.find("\"name\":\"live/test\",\"publisher\":\"127.0.0.1:"), std::string::npos)
      << text;
  EXPECT_NE(text.find("\"video_codec\":\"H.264\""), std::string::npos) << text;
  const size_t at = text.find("\"frames\":");
  ASSERT_NE(at, std::string::npos) << text;
  EXPECT_GE(std::stoll(text.substr(at + 9)), 10) << text;
  EXPECT_EQ(publisher.Wait(kProcessTimeout), 0);
}

TEST(ShutdownTest, SigtermWhilePublishingEndsTheStreamAndRemovesTheRing) {
  REQUIRE_FFMPEG();
  ScratchDir dir;
  std::unique_ptr<IngestServer> server = IngestServer::Start(2, dir);
  ASSERT_NE(server, nullptr);
  const std::string out = dir.Path("out.flv");
  Process cat = StartCat(server->ring(), "live/test", out, dir.Path("cat.log"));
  Process publisher = Process::Spawn(PublishClipArgs(server->Url("live/test"), 10));
  ASSERT_TRUE(WaitForStream(server->ring(), "live/test", 30, absl::Seconds(20)));
  server->process().Signal(SIGTERM);
  EXPECT_EQ(server->process().Wait(absl::Seconds(15)), 0);
  EXPECT_FALSE(RingObjectsExist(server->ring()));
  std::optional<int> code = cat.Wait(absl::Seconds(15));
  ASSERT_TRUE(code.has_value()) << "uringest-cat did not notice the shutdown";
  const std::string log = ReadFile(dir.Path("cat.log"));
  if (*code != 0) {
    EXPECT_NE(log.find("server shut down"), std::string::npos) << log;
  }
  EXPECT_GE(TagBodies(out, 9).size(), 25u) << log;  // a well-formed FLV file up to the end
  EXPECT_NE(publisher.Wait(kProcessTimeout), std::nullopt);
}

}  // namespace
}  // namespace uringest::testing
