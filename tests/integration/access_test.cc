// Issue 6, access control, against the real uringestd, ffmpeg and uringest-cat over
// loopback: --auth-file keys (right key publishes, wrong or missing key is refused with
// NetStream.Publish.BadName, SIGHUP reloads, a bad file keeps the old keys), the
// --on-publish HTTP hook (a tiny HTTP server in the test answers 200, 403 or never; a
// hook that never answers times out and stalls no other publisher), and keys never
// showing up in the log or in the ring's shared memory.

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/hook_server.h"
#include "tests/integration/ingest_harness.h"
#include "tests/integration/process.h"

namespace uringest::testing {
namespace {

constexpr char kKey[] = "Sup3rS3cretKey";
constexpr char kWrongKey[] = "Gu3ssedWr0ngKey";

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc) << text;
}

// Polls `path` until it holds `needle` (a log line), at most `timeout`.
bool AwaitInFile(const std::string& path, const std::string& needle, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (ReadFile(path).find(needle) != std::string::npos) return true;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return false;
}

// Every byte of the ring's objects under /dev/shm.
std::string RingBytes(const std::string& ring) {
  std::string all;
  for (const auto& e : std::filesystem::directory_iterator("/dev/shm")) {
    if (e.path().filename().string().starts_with(ring + ".")) all += ReadFile(e.path().string());
  }
  return all;
}

// Publishes the 2 s clip to `stream` (with its query); ffmpeg's exit code.
int Publish(const IngestServer& server, const std::string& stream, const ScratchDir& dir,
            const std::string& log = "ffmpeg.log") {
  return RunCommand(PublishClipArgs(server.Url(stream), 2), kProcessTimeout, "", dir.Path(log));
}

// ---- --auth-file ----

class AuthFileTest : public ::testing::Test {
 protected:
  void Start(const std::string& keys) {
    WriteFile(keys_, keys);
    server_ = IngestServer::Start(1, dir_, {"--auth-file", keys_, "--ring-size", "1MiB"});
    ASSERT_NE(server_, nullptr);
  }
  ScratchDir dir_;
  std::string keys_ = dir_.Path("keys");
  std::unique_ptr<IngestServer> server_;
};

TEST_F(AuthFileTest, RightKeyPublishesWrongOrMissingKeyIsRefusedWithBadName) {
  REQUIRE_FFMPEG();
  ASSERT_NO_FATAL_FAILURE(Start(absl::StrCat("# keys\nlive/test ", kKey, "\n")));
  EXPECT_NE(Publish(*server_, absl::StrCat("live/test?key=", kWrongKey), dir_, "wrong.log"), 0);
  // ffmpeg prints the description of the onStatus error (NetStream.Publish.BadName) it got.
  EXPECT_NE(ReadFile(dir_.Path("wrong.log")).find("refused: wrong key"), std::string::npos)
      << ReadFile(dir_.Path("wrong.log"));
  EXPECT_NE(Publish(*server_, "live/test", dir_, "nokey.log"), 0);
  EXPECT_NE(Publish(*server_, absl::StrCat("live/other?key=", kKey), dir_, "other.log"), 0);

  Process cat = StartCat(server_->ring(), "live/test", dir_.Path("out.flv"), dir_.Path("cat.log"));
  std::thread publisher([&] {
    EXPECT_EQ(Publish(*server_, absl::StrCat("live/test?x=1&key=", kKey), dir_, "right.log"), 0)
        << ReadFile(dir_.Path("right.log"));
  });
  ASSERT_TRUE(WaitForStream(server_->ring(), "live/test", 10, absl::Seconds(20)));
  // While it publishes: the ring's objects name the stream, but hold no key.
  const std::string shm = RingBytes(server_->ring());
  EXPECT_NE(shm.find("live/test"), std::string::npos);
  EXPECT_EQ(shm.find(kKey), std::string::npos) << "the key is in the shared memory";
  EXPECT_EQ(shm.find("key="), std::string::npos) << "a query is in the shared memory";
  publisher.join();
  EXPECT_EQ(cat.Wait(kProcessTimeout), 0) << ReadFile(dir_.Path("cat.log"));
  EXPECT_EQ(CountVideoFrames(dir_.Path("out.flv")), 60);

  const std::string log = ReadFile(server_->log_path());
  EXPECT_NE(log.find("127.0.0.1:"), std::string::npos);
  EXPECT_NE(log.find("publish of live/test refused: wrong key"), std::string::npos) << log;
  EXPECT_NE(log.find("publish of live/test refused: no key given"), std::string::npos) << log;
  EXPECT_NE(log.find("publish of live/other refused: no --auth-file rule"), std::string::npos)
      << log;
  EXPECT_EQ(log.find(kKey), std::string::npos) << "the key is in the log";
  EXPECT_EQ(log.find(kWrongKey), std::string::npos) << "a wrong key is in the log";
}

TEST_F(AuthFileTest, SighupReloadsTheKeysAndABadFileKeepsTheOldOnes) {
  REQUIRE_FFMPEG();
  ASSERT_NO_FATAL_FAILURE(Start("live/* oldkey\n"));
  EXPECT_NE(Publish(*server_, "live/a?key=newkey", dir_, "before.log"), 0);

  WriteFile(keys_, "live/* newkey\n");
  server_->process().Signal(SIGHUP);
  ASSERT_TRUE(AwaitInFile(server_->log_path(), "--auth-file reloaded, 1 rules", absl::Seconds(5)));
  EXPECT_EQ(Publish(*server_, "live/a?key=newkey", dir_, "after.log"), 0)
      << ReadFile(dir_.Path("after.log"));
  EXPECT_NE(Publish(*server_, "live/a?key=oldkey", dir_, "old.log"), 0);

  WriteFile(keys_, "this line is no rule\n");
  server_->process().Signal(SIGHUP);
  ASSERT_TRUE(AwaitInFile(server_->log_path(), "--auth-file not reloaded", absl::Seconds(5)));
  EXPECT_EQ(Publish(*server_, "live/b?key=newkey", dir_, "kept.log"), 0)
      << ReadFile(dir_.Path("kept.log"));
  EXPECT_TRUE(server_->process().Running());
  EXPECT_EQ(ReadFile(server_->log_path()).find("newkey"), std::string::npos);
}

TEST(AuthFileStartTest, UnreadableOrMalformedFileStopsTheServerWithAMessage) {
  ScratchDir dir;
  WriteFile(dir.Path("keys"), absl::StrCat("live ", kKey, "\n"));
  const int code = RunCommand({ToolPath("uringestd"), "--listen", "127.0.0.1:0", "--ring",
                               UniqueRingName(), "--auth-file", dir.Path("keys")},
                              absl::Seconds(20), "", dir.Path("server.log"));
  EXPECT_EQ(code, 1);
  const std::string log = ReadFile(dir.Path("server.log"));
  EXPECT_NE(log.find("line 1"), std::string::npos) << log;
  EXPECT_EQ(log.find(kKey), std::string::npos) << log;
}

// ---- Shared memory permissions ----

constexpr char kSetpriv[] = "/usr/bin/setpriv";
constexpr int kNobody = 65534;
constexpr int kRingGroup = 4242;  // any number will do for root's fchown

// uringest-cat as user nobody with group `gid` (and no others), FLV to `out`.
Process StartCatAs(int gid, const std::string& ring, const std::vector<std::string>& flags,
                   const std::string& out, const std::string& log) {
  std::vector<std::string> args = {kSetpriv,
                                   absl::StrCat("--reuid=", kNobody),
                                   absl::StrCat("--regid=", gid),
                                   "--clear-groups",
                                   ToolPath("uringest-cat"),
                                   "--ring",
                                   ring,
                                   "--wait"};
  args.insert(args.end(), flags.begin(), flags.end());
  args.push_back("live/test");
  return Process::Spawn(args, {.stdout_path = out, .stderr_path = log});
}

TEST(RingGroupTest, ConsumersInTheGroupReadLossyAndLosslessOthersAreDenied) {
  REQUIRE_FFMPEG();
  if (getuid() != 0 || access(kSetpriv, X_OK) != 0) GTEST_SKIP() << "needs root and setpriv";
  ScratchDir dir;
  std::unique_ptr<IngestServer> server = IngestServer::Start(
      1, dir, {"--ring-group", absl::StrCat(kRingGroup), "--ring-size", "1MiB"});
  ASSERT_NE(server, nullptr);
  for (const auto& e : std::filesystem::directory_iterator("/dev/shm")) {
    const std::string file = e.path().filename().string();
    if (!file.starts_with(server->ring() + ".")) continue;
    struct stat st;
    ASSERT_EQ(stat(e.path().c_str(), &st), 0);
    EXPECT_EQ(st.st_gid, gid_t(kRingGroup)) << file;
    EXPECT_EQ(st.st_mode & 0777, file.ends_with(".readers") ? 0660u : 0640u) << file;
  }
  Process lossy =
      StartCatAs(kRingGroup, server->ring(), {}, dir.Path("lossy.flv"), dir.Path("lossy.log"));
  Process lossless = StartCatAs(kRingGroup, server->ring(), {"--lossless"},
                                dir.Path("lossless.flv"), dir.Path("lossless.log"));
  Process outsider =
      StartCatAs(kNobody, server->ring(), {}, dir.Path("outsider.flv"), dir.Path("outsider.log"));
  EXPECT_EQ(outsider.Wait(absl::Seconds(10)), 1);
  EXPECT_NE(ReadFile(dir.Path("outsider.log")).find("Permission denied"), std::string::npos)
      << ReadFile(dir.Path("outsider.log"));
  EXPECT_EQ(Publish(*server, "live/test", dir), 0);
  EXPECT_EQ(lossy.Wait(kProcessTimeout), 0) << ReadFile(dir.Path("lossy.log"));
  EXPECT_EQ(lossless.Wait(kProcessTimeout), 0) << ReadFile(dir.Path("lossless.log"));
  EXPECT_EQ(CountVideoFrames(dir.Path("lossy.flv")), 60);
  EXPECT_EQ(CountVideoFrames(dir.Path("lossless.flv")), 60);
}

// ---- --on-publish ----

// name=ok*: 200; name=slow: never; anything else: 403.
int DecideByName(const std::string& body) {
  if (body.find("&name=ok") != std::string::npos) return 200;
  if (body.find("&name=slow") != std::string::npos) return 0;
  return 403;
}

TEST(OnPublishTest, TwoHundredAllowsOthersRefuseAndTheHookGetsAppNameKeyAndAddress) {
  REQUIRE_FFMPEG();
  HookServer hook(DecideByName);
  ScratchDir dir;
  std::unique_ptr<IngestServer> server =
      IngestServer::Start(1, dir, {"--on-publish", hook.Url(), "--ring-size", "1MiB"});
  ASSERT_NE(server, nullptr);
  Process cat = StartCat(server->ring(), "live/ok", dir.Path("out.flv"), dir.Path("cat.log"));
  EXPECT_EQ(Publish(*server, absl::StrCat("live/ok?key=", kKey), dir, "ok.log"), 0)
      << ReadFile(dir.Path("ok.log"));
  EXPECT_EQ(cat.Wait(kProcessTimeout), 0) << ReadFile(dir.Path("cat.log"));
  EXPECT_EQ(CountVideoFrames(dir.Path("out.flv")), 60);
  EXPECT_NE(Publish(*server, "live/refused?key=abc", dir, "refused.log"), 0);

  const std::vector<std::string> bodies = hook.Bodies();
  ASSERT_EQ(bodies.size(), 2u);
  EXPECT_TRUE(bodies[0].starts_with(
      absl::StrCat("call=publish&app=live&name=ok&key=", kKey, "&addr=127.0.0.1&port=")))
      << bodies[0];
  EXPECT_TRUE(bodies[1].starts_with("call=publish&app=live&name=refused&key=abc&addr=127.0.0.1"))
      << bodies[1];
  const std::string log = ReadFile(server->log_path());
  EXPECT_NE(log.find("publish of live/refused refused: on-publish hook answered 403"),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find(kKey), std::string::npos) << "the key is in the log";
}

TEST(OnPublishTest, HookThatNeverAnswersTimesOutAndStallsNoOtherPublisher) {
  REQUIRE_FFMPEG();
  HookServer hook(DecideByName);
  ScratchDir dir;
  // One shard: were the hook asked on the shard's thread, the slow request would stall
  // every other connection.
  std::unique_ptr<IngestServer> server = IngestServer::Start(
      1, dir, {"--on-publish", hook.Url(), "--on-publish-timeout", "6", "--ring-size", "1MiB"});
  ASSERT_NE(server, nullptr);
  const absl::Time slow_start = absl::Now();
  Process slow = Process::Spawn(PublishClipArgs(server->Url("live/slow"), 2),
                                {.stderr_path = dir.Path("slow.log")});
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (hook.Bodies().empty() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(20));
  ASSERT_EQ(hook.Bodies().size(), 1u) << "the slow publish reached the hook";

  // Meanwhile another publisher goes through the same shard and the same hook.
  Process ok = Process::Spawn(PublishClipArgs(server->Url("live/ok"), 2));
  EXPECT_TRUE(WaitForStream(server->ring(), "live/ok", 10, absl::Seconds(3)))
      << "a publisher was stalled by a hook request that hangs";
  EXPECT_LT(absl::Now() - slow_start, absl::Seconds(6)) << "too slow to tell";
  EXPECT_TRUE(slow.Running()) << "the slow one still waits for its answer";
  EXPECT_EQ(ok.Wait(kProcessTimeout), 0);

  EXPECT_NE(slow.Wait(kProcessTimeout), 0);
  EXPECT_GE(absl::Now() - slow_start, absl::Seconds(6));
  const std::string log = ReadFile(server->log_path());
  EXPECT_NE(log.find("publish of live/slow refused: on-publish hook did not answer within 6s"),
            std::string::npos)
      << log;
  EXPECT_NE(ReadFile(dir.Path("slow.log")).find("did not answer within 6s"), std::string::npos)
      << ReadFile(dir.Path("slow.log"));
}

}  // namespace
}  // namespace uringest::testing
