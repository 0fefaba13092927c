// Issue 6, faults, with real processes: a consumer SIGKILLed mid-read costs nothing; a
// SIGKILLed server is noticed by its consumers within a second and its stale ring is
// cleaned up by the next start; a publisher that vanishes (SIGSTOP) is timed out and its
// stream ends cleanly; a lapped reader says so while the server goes on; and with a
// handful of receive buffers every publisher is still served.
//
// Covered elsewhere, in-process: engine/server_test.cc (IdleTimeoutClosesAPublisherThat
// GoesSilent), consumer/stream_cat_test.cc (ReaderLappedByTheProducerReportsDataLoss,
// ServerWithoutHeartbeatIsReportedDeadWithinASecond), ringbuf/torture_test.cc (killed and
// stopped reader processes, killed producers), engine/event_loop_test.cc (4 receive
// buffers).

#include <signal.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/integration/ingest_harness.h"
#include "tests/integration/process.h"
#include "tests/rtmp_testing.h"

namespace uringest::testing {
namespace {

// Waits until `process` exits; how long that took, or nullopt after `timeout`.
std::optional<absl::Duration> TimeToExit(Process& process, absl::Duration timeout) {
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + timeout;
  while (process.Running()) {
    if (absl::Now() > deadline) return std::nullopt;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return absl::Now() - start;
}

TEST(ConsumerFaultTest, ConsumerKilledMidReadCostsTheServerAndOtherConsumersNothing) {
  REQUIRE_FFMPEG();
  ScratchDir dir;
  std::unique_ptr<IngestServer> server = IngestServer::Start(1, dir);
  ASSERT_NE(server, nullptr);
  Process keeper =
      StartCat(server->ring(), "live/test", dir.Path("kept.flv"), dir.Path("kept.log"));
  // A lossless reader holds the producer back: killed, it must not go on doing so.
  Process victim = Process::Spawn({ToolPath("uringest-cat"), "--ring", server->ring(), "--wait",
                                   "--lossless", "-o", dir.Path("victim.flv"), "live/test"},
                                  {.stderr_path = dir.Path("victim.log")});
  Process publisher = Process::Spawn(PublishClipArgs(server->Url("live/test"), 4));
  ASSERT_TRUE(WaitForStream(server->ring(), "live/test", 30, absl::Seconds(20)));
  victim.Signal(SIGKILL);
  EXPECT_EQ(victim.Wait(absl::Seconds(5)), 128 + SIGKILL);
  // A new consumer attaches while the stream goes on.
  Process late = StartCat(server->ring(), "live/test", dir.Path("late.flv"), dir.Path("late.log"));
  EXPECT_EQ(publisher.Wait(kProcessTimeout), 0);
  EXPECT_EQ(keeper.Wait(kProcessTimeout), 0) << ReadFile(dir.Path("kept.log"));
  EXPECT_EQ(CountVideoFrames(dir.Path("kept.flv")), 4 * 30) << "the survivor lost nothing";
  EXPECT_EQ(late.Wait(kProcessTimeout), 0) << ReadFile(dir.Path("late.log"));
  EXPECT_GT(CountVideoFrames(dir.Path("late.flv")), 0);
  EXPECT_TRUE(server->process().Running());
}

TEST(ServerFaultTest, KilledServerIsNoticedWithinASecondAndTheNextStartCleansUp) {
  REQUIRE_FFMPEG();
  ScratchDir dir;
  std::unique_ptr<IngestServer> server = IngestServer::Start(2, dir);
  ASSERT_NE(server, nullptr);
  const std::string ring = server->ring();
  Process cat = StartCat(ring, "live/test", dir.Path("out.flv"), dir.Path("cat.log"));
  Process publisher = Process::Spawn(PublishClipArgs(server->Url("live/test"), 20));
  ASSERT_TRUE(WaitForStream(ring, "live/test", 30, absl::Seconds(20)));
  server->process().Signal(SIGKILL);
  const std::optional<absl::Duration> noticed = TimeToExit(cat, absl::Seconds(5));
  ASSERT_TRUE(noticed.has_value()) << "uringest-cat did not notice the server died";
  // The readers' threshold is 500 ms without a heartbeat (it takes about 0.5 s here).
  EXPECT_LE(*noticed, absl::Seconds(1)) << *noticed;
  EXPECT_EQ(cat.Wait(absl::Seconds(1)), 1);
  const std::string log = ReadFile(dir.Path("cat.log"));
  EXPECT_NE(log.find("the server died"), std::string::npos) << log;
  EXPECT_GE(TagBodies(dir.Path("out.flv"), 9).size(), 25u) << "a well-formed FLV up to the end";
  EXPECT_NE(publisher.Wait(kProcessTimeout), std::nullopt);
  EXPECT_TRUE(RingObjectsExist(ring)) << "a killed server leaves its shared memory";

  // The next start on the same ring removes the stale objects and serves again.
  std::unique_ptr<IngestServer> restarted = IngestServer::Start(1, dir, {}, ring);
  ASSERT_NE(restarted, nullptr);
  EXPECT_NE(ReadFile(restarted->log_path()).find("removed the shared memory a crashed server left"),
            std::string::npos);
  Process again = StartCat(ring, "live/test", dir.Path("again.flv"), dir.Path("again.log"));
  EXPECT_EQ(RunCommand(PublishClipArgs(restarted->Url("live/test")), kProcessTimeout), 0);
  EXPECT_EQ(again.Wait(kProcessTimeout), 0) << ReadFile(dir.Path("again.log"));
  EXPECT_TRUE(TagBodies(dir.Path("again.flv"), 9) == SourceVideo());
}

TEST(PublisherFaultTest, StoppedPublisherIsTimedOutAndItsStreamEndsCleanly) {
  REQUIRE_FFMPEG();
  ScratchDir dir;
  std::unique_ptr<IngestServer> server = IngestServer::Start(1, dir, {"--idle-timeout", "2"});
  ASSERT_NE(server, nullptr);
  Process cat = StartCat(server->ring(), "live/test", dir.Path("out.flv"), dir.Path("cat.log"));
  Process publisher = Process::Spawn(PublishClipArgs(server->Url("live/test"), 30));
  ASSERT_TRUE(WaitForStream(server->ring(), "live/test", 30, absl::Seconds(20)));
  publisher.Signal(SIGSTOP);  // a cable cut: the TCP connection stays, nothing comes
  const std::optional<absl::Duration> ended = TimeToExit(cat, absl::Seconds(10));
  ASSERT_TRUE(ended.has_value()) << "the stream did not end";
  // The timeout is checked once a second: it ends between 2 and 3 s after the last byte.
  EXPECT_GE(*ended, absl::Seconds(1));
  EXPECT_LE(*ended, absl::Seconds(4));
  EXPECT_EQ(cat.Wait(absl::Seconds(1)), 0) << "ended cleanly: " << ReadFile(dir.Path("cat.log"));
  EXPECT_GE(TagBodies(dir.Path("out.flv"), 9).size(), 25u) << "a well-formed FLV up to the end";
  EXPECT_NE(ReadFile(server->log_path()).find("idle for 2.0 s (--idle-timeout)"),
            std::string::npos);
  publisher.Kill();
  EXPECT_TRUE(server->process().Running());
}

TEST(ExhaustionTest, LappedReaderSaysSoWhileTheServerGoesOn) {
  REQUIRE_FFMPEG();
  ScratchDir dir;
  // A 1 MiB ring holds about a second of the 6 Mbit/s stream.
  std::unique_ptr<IngestServer> server = IngestServer::Start(1, dir, {"--ring-size", "1MiB"});
  ASSERT_NE(server, nullptr);
  Process cat = StartCat(server->ring(), "live/av", dir.Path("out.flv"), dir.Path("cat.log"));
  Process publisher = Process::Spawn(PublishAvArgs(server->Url("live/av"), 8));
  ASSERT_TRUE(WaitForStream(server->ring(), "live/av", 10, absl::Seconds(20)));
  cat.Signal(SIGSTOP);  // a reader that falls behind
  // The publisher finishes while the reader sleeps: the server never waits for it.
  EXPECT_EQ(publisher.Wait(kProcessTimeout), 0);
  cat.Signal(SIGCONT);
  EXPECT_EQ(cat.Wait(kProcessTimeout), 1);
  const std::string log = ReadFile(dir.Path("cat.log"));
  EXPECT_NE(log.find("the server overwrote them"), std::string::npos) << log;
  EXPECT_NE(log.find("were lost"), std::string::npos) << log;
  EXPECT_TRUE(server->process().Running());
}

TEST(ExhaustionTest, TwoReceiveBuffersStillServeEveryPublisherWholly) {
  REQUIRE_FFMPEG();
  constexpr int kPublishers = 6;
  ScratchDir dir;
  std::unique_ptr<IngestServer> server =
      IngestServer::Start(1, dir, {"--recv-buffers", "2", "--recv-buffer-size", "4096"});
  ASSERT_NE(server, nullptr);
  std::vector<Process> cats, publishers;
  for (int i = 0; i < kPublishers; ++i) {
    cats.push_back(StartCat(server->ring(), absl::StrCat("live/s", i),
                            dir.Path(absl::StrCat("s", i, ".flv")),
                            dir.Path(absl::StrCat("s", i, ".log"))));
  }
  // Each waits before its stream begins, so that each writes its stream whole.
  for (Process& cat : cats) ASSERT_TRUE(AwaitDirectoryMapped(cat.pid(), server->ring()));
  for (int i = 0; i < kPublishers; ++i) {
    // Unpaced (no -re): every publisher sends as fast as it encodes, so their bytes
    // arrive together and two buffers surely run out, however fast the shard returns them.
    std::vector<std::string> args = PublishClipArgs(server->Url(absl::StrCat("live/s", i)));
    args.erase(std::find(args.begin(), args.end(), "-re"));
    publishers.push_back(Process::Spawn(args));
  }
  for (int i = 0; i < kPublishers; ++i) {
    EXPECT_EQ(publishers[i].Wait(kProcessTimeout), 0) << "publisher " << i;
    EXPECT_EQ(cats[i].Wait(kProcessTimeout), 0) << ReadFile(dir.Path(absl::StrCat("s", i, ".log")));
    EXPECT_TRUE(TagBodies(dir.Path(absl::StrCat("s", i, ".flv")), 9) == SourceVideo())
        << "live/s" << i << " differs from the source clip";
  }
  // The shard reports shortages at its next once-a-second tick: give it two.
  std::string log = ReadFile(server->log_path());
  for (const absl::Time deadline = absl::Now() + absl::Seconds(2);
       log.find("receive buffers ran out") == std::string::npos && absl::Now() < deadline;
       log = ReadFile(server->log_path())) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  // (The epoll backend has no provided buffers to run out of.)
  if (log.find("using the epoll backend") == std::string::npos) {
    EXPECT_NE(log.find("receive buffers ran out"), std::string::npos)
        << "the buffers never ran out: the test tests nothing";
  }
  // Every connection ended because its publisher closed it (ffmpeg sometimes resets
  // instead of closing, when it leaves a reply unread), none for want of buffers.
  size_t closed = 0;
  for (size_t at = log.find(": closed: "); at != std::string::npos;
       at = log.find(": closed: ", at + 1)) {
    ++closed;
    EXPECT_TRUE(log.compare(at, 28, ": closed: closed by the peer") == 0 ||
                log.compare(at, 50, ": closed: receive failed: Connection reset by peer") == 0)
        << log.substr(at, 120);
  }
  EXPECT_EQ(closed, size_t{kPublishers});
}

}  // namespace
}  // namespace uringest::testing
