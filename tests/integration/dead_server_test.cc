// A server that dies under its consumers, with the real programs: uringestd is killed
// (SIGKILL) while uringest-cat --wait, uringest-stat's live table and uringest-load
// --verify wait (no stream yet) and while they follow one. Each exits 1 with a message
// within a second of the kill, and while it waited it slept (under 1% of a core,
// measured from /proc/PID/stat). A clean shutdown (SIGTERM) ends a waiting uringest-cat
// or uringest-stat with 0 and a message.
//
// The library's side of it, case by case: ringbuf/server_exit_test.cc.

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/integration/ingest_harness.h"
#include "tests/integration/process.h"

namespace uringest::testing {
namespace {

constexpr absl::Duration kExitBound = absl::Seconds(1);
constexpr absl::Duration kIdleMeasure = absl::Seconds(2);
constexpr double kIdleShare = 0.01;  // of one core

// utime + stime of process `pid` (fields 14 and 15 of /proc/PID/stat).
absl::Duration CpuTime(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)), {});
  const size_t comm_end = stat.rfind(')');  // the name may hold spaces
  if (comm_end == std::string::npos) return absl::InfiniteDuration();
  std::istringstream fields(stat.substr(comm_end + 2));
  std::string field;
  long ticks = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i >= 14) ticks += std::stol(field);
  }
  return absl::Seconds(double(ticks) / double(sysconf(_SC_CLK_TCK)));
}

// The same to the nanosecond, for the log: the scheduler's runtime of every thread
// (/proc/PID/task/TID/schedstat, first field).
absl::Duration Runtime(pid_t pid) {
  absl::Duration total;
  std::error_code ignored;
  for (const auto& task :
       std::filesystem::directory_iterator(absl::StrCat("/proc/", pid, "/task"), ignored)) {
    std::ifstream in(task.path() / "schedstat");
    int64_t ns = 0;
    if (in >> ns) total += absl::Nanoseconds(ns);
  }
  return total;
}

// Watches `tool` for kIdleMeasure (after `settle` for its start): it must sleep.
void ExpectIdle(Process& tool, absl::Duration settle = absl::Milliseconds(300)) {
  absl::SleepFor(settle);
  const absl::Duration cpu = CpuTime(tool.pid());
  const absl::Duration runtime = Runtime(tool.pid());
  const absl::Time start = absl::Now();
  absl::SleepFor(kIdleMeasure);
  const absl::Duration used = CpuTime(tool.pid()) - cpu;
  const absl::Duration ran = Runtime(tool.pid()) - runtime;
  const absl::Duration wall = absl::Now() - start;
  EXPECT_TRUE(tool.Running());
  // utime + stime count in clock ticks (10 ms), and an idle process is at times charged a
  // tick it did not use up: they get one tick of slack; the scheduler's count is exact.
  const absl::Duration tick = absl::Seconds(1.0 / double(sysconf(_SC_CLK_TCK)));
  EXPECT_LT(used, wall * kIdleShare + tick) << "busy while waiting: " << used << " in " << wall;
  EXPECT_LT(ran, wall * kIdleShare) << "busy while waiting: " << ran << " in " << wall;
  std::fprintf(stderr, "[ measure  ] CPU while waiting: %s (utime+stime; ran %s) in %s\n",
               absl::FormatDuration(used).c_str(), absl::FormatDuration(ran).c_str(),
               absl::FormatDuration(wall).c_str());
}

// Sends `sig` to the server and returns how long `tool` took to exit, and its status.
std::pair<std::optional<int>, absl::Duration> SignalServerAndTimeExit(IngestServer& server,
                                                                      Process& tool, int sig) {
  const absl::Time sent = absl::Now();
  server.process().Signal(sig);
  std::optional<int> code = tool.Wait(absl::Seconds(5));
  const absl::Duration took = absl::Now() - sent;
  std::fprintf(stderr, "[ measure  ] exited %d, %s after signal %d\n", code.value_or(-1),
               absl::FormatDuration(took).c_str(), sig);
  return {code, took};
}

void ExpectDiedExit(IngestServer& server, Process& tool, const std::string& log) {
  auto [code, took] = SignalServerAndTimeExit(server, tool, SIGKILL);
  EXPECT_EQ(code, 1) << ReadFile(log);
  EXPECT_LT(took, kExitBound);
  EXPECT_NE(ReadFile(log).find("the server died"), std::string::npos) << ReadFile(log);
}

void ExpectShutDownExit(IngestServer& server, Process& tool, const std::string& log) {
  auto [code, took] = SignalServerAndTimeExit(server, tool, SIGTERM);
  EXPECT_EQ(code, 0) << ReadFile(log);
  EXPECT_LT(took, kExitBound);
  EXPECT_NE(ReadFile(log).find("the server shut down"), std::string::npos) << ReadFile(log);
}

Process StartStat(const std::string& ring, const std::string& log) {
  return Process::Spawn({ToolPath("uringest-stat"), "--ring", ring, "--wait"},
                        {.stdout_pipe = true, .stderr_path = log});
}

// ---- uringest-cat ----

TEST(DeadServerTest, CatWaitingForAStreamSleepsAndExitsOneWhenTheServerIsKilled) {
  ScratchDir dir;
  std::unique_ptr<IngestServer> server = IngestServer::Start(1, dir);
  ASSERT_NE(server, nullptr);
  Process cat = StartCat(server->ring(), "live/x", dir.Path("out.flv"), dir.Path("cat.log"));
  ExpectIdle(cat);
  ExpectDiedExit(*server, cat, dir.Path("cat.log"));
}

TEST(DeadServerTest, CatFollowingExitsOneWhenTheServerIsKilled) {
  REQUIRE_FFMPEG();
  ScratchDir dir;
  std::unique_ptr<IngestServer> server = IngestServer::Start(1, dir);
  ASSERT_NE(server, nullptr);
  Process cat = StartCat(server->ring(), "live/x", dir.Path("out.flv"), dir.Path("cat.log"));
  Process publisher = Process::Spawn(PublishClipArgs(server->Url("live/x"), 20));
  ASSERT_TRUE(WaitForStream(server->ring(), "live/x", 30, absl::Seconds(20)));
  ExpectDiedExit(*server, cat, dir.Path("cat.log"));
}

TEST(DeadServerTest, CatWaitingForAStreamExitsZeroWhenTheServerShutsDown) {
  ScratchDir dir;
  std::unique_ptr<IngestServer> server = IngestServer::Start(1, dir);
  ASSERT_NE(server, nullptr);
  Process cat = StartCat(server->ring(), "live/x", dir.Path("out.flv"), dir.Path("cat.log"));
  absl::SleepFor(absl::Milliseconds(300));
  ExpectShutDownExit(*server, cat, dir.Path("cat.log"));
}

// The objects of a server that died before uringest-cat started are not a server: it
// sleeps until the next one starts, then follows the stream from there.
TEST(DeadServerTest, CatWaitingThroughAStaleRingSleepsThenFollowsTheNextServer) {
  REQUIRE_FFMPEG();
  ScratchDir dir;
  std::unique_ptr<IngestServer> crashed = IngestServer::Start(1, dir);
  ASSERT_NE(crashed, nullptr);
  const std::string ring = crashed->ring();
  crashed->process().Signal(SIGKILL);
  ASSERT_TRUE(crashed->process().Wait(absl::Seconds(5)).has_value());
  ASSERT_TRUE(RingObjectsExist(ring));
  Process cat = StartCat(ring, "live/x", dir.Path("out.flv"), dir.Path("cat.log"));
  ExpectIdle(cat);
  std::unique_ptr<IngestServer> server = IngestServer::Start(1, dir, {}, ring);
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(RunCommand(PublishClipArgs(server->Url("live/x")), kProcessTimeout), 0);
  EXPECT_EQ(cat.Wait(absl::Seconds(10)), 0) << ReadFile(dir.Path("cat.log"));
  EXPECT_TRUE(TagBodies(dir.Path("out.flv"), 9) == SourceVideo());
}

// ---- uringest-stat's live table ----

TEST(DeadServerTest, StatWaitsForTheServerThenExitsOneWhenItIsKilled) {
  ScratchDir dir;
  const std::string ring = UniqueRingName();
  Process stat = StartStat(ring, dir.Path("stat.log"));
  ExpectIdle(stat);  // no server yet
  std::unique_ptr<IngestServer> server = IngestServer::Start(1, dir, {}, ring);
  ASSERT_NE(server, nullptr);
  std::optional<std::string> line = stat.ReadLine(absl::Seconds(5));
  ASSERT_TRUE(line.has_value()) << "no table: " << ReadFile(dir.Path("stat.log"));
  ExpectIdle(stat, absl::ZeroDuration());  // a table of no streams, once a second
  ExpectDiedExit(*server, stat, dir.Path("stat.log"));
}

TEST(DeadServerTest, StatShowingAStreamExitsOneWhenTheServerIsKilled) {
  REQUIRE_FFMPEG();
  ScratchDir dir;
  std::unique_ptr<IngestServer> server = IngestServer::Start(1, dir);
  ASSERT_NE(server, nullptr);
  Process stat = StartStat(server->ring(), dir.Path("stat.log"));
  Process publisher = Process::Spawn(PublishClipArgs(server->Url("live/x"), 20));
  ASSERT_TRUE(WaitForStream(server->ring(), "live/x", 30, absl::Seconds(20)));
  ExpectDiedExit(*server, stat, dir.Path("stat.log"));
}

TEST(DeadServerTest, StatExitsZeroWhenTheServerShutsDown) {
  ScratchDir dir;
  std::unique_ptr<IngestServer> server = IngestServer::Start(1, dir);
  ASSERT_NE(server, nullptr);
  Process stat = StartStat(server->ring(), dir.Path("stat.log"));
  ASSERT_TRUE(stat.ReadLine(absl::Seconds(5)).has_value());
  ExpectShutDownExit(*server, stat, dir.Path("stat.log"));
}

// ---- uringest-load --verify ----

// A TCP listener that never accepts: the kernel completes the connects, and publishers
// wait for the RTMP handshake's answer for ever.
class SilentListener {
 public:
  SilentListener() : fd_(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in addr{.sin_family = AF_INET, .sin_port = 0, .sin_addr = {htonl(INADDR_LOOPBACK)}};
    socklen_t len = sizeof(addr);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) == 0 && listen(fd_, 16) == 0 &&
        getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port_ = ntohs(addr.sin_port);
    }
  }
  ~SilentListener() { close(fd_); }
  int port() const { return port_; }

 private:
  int fd_;
  int port_ = 0;
};

std::vector<std::string> LoadArgs(int port, const std::string& ring) {
  return {ToolPath("uringest-load"),
          "--target",
          absl::StrCat("127.0.0.1:", port),
          "--publishers",
          "2",
          "--duration",
          "30",
          "--ring",
          ring,
          "--verify"};
}

TEST(DeadServerTest, LoadVerifierWaitingForFramesExitsOneWhenTheServerIsKilled) {
  ScratchDir dir;
  std::unique_ptr<IngestServer> server = IngestServer::Start(1, dir);
  ASSERT_NE(server, nullptr);
  // The publishers talk to a listener that never answers: the verifier, reading the
  // server's ring, waits for the run's first frames.
  SilentListener silent;
  ASSERT_NE(silent.port(), 0);
  Process load =
      Process::Spawn(LoadArgs(silent.port(), server->ring()),
                     {.stdout_path = dir.Path("load.out"), .stderr_path = dir.Path("load.log")});
  ExpectIdle(load);
  ExpectDiedExit(*server, load, dir.Path("load.log"));
}

TEST(DeadServerTest, LoadVerifierFollowingExitsOneWhenTheServerIsKilled) {
  ScratchDir dir;
  std::unique_ptr<IngestServer> server = IngestServer::Start(1, dir);
  ASSERT_NE(server, nullptr);
  Process load =
      Process::Spawn(LoadArgs(server->port(), server->ring()),
                     {.stdout_path = dir.Path("load.out"), .stderr_path = dir.Path("load.log")});
  ASSERT_TRUE(WaitForStream(server->ring(), "live/load1", 30, absl::Seconds(20)));
  ExpectDiedExit(*server, load, dir.Path("load.log"));
  EXPECT_NE(ReadFile(dir.Path("load.out")).find("FAILED"), std::string::npos)
      << "the report still comes: " << ReadFile(dir.Path("load.out"));
}

}  // namespace
}  // namespace uringest::testing
