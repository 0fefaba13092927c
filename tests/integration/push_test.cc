// Issue 14: uringest-push against the real programs: ffmpeg publishes to uringestd, the
// relay pushes to a real nginx-rtmp (Debian's libnginx-mod-rtmp, `record all`) and to a
// second uringestd at once, and over rtmps:// to a third with a self-signed certificate.
// What arrives is compared with the source file tag by tag (label "integration").

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "media/byte_order.h"
#include "nlohmann/json.hpp"
#include "tests/integration/ingest_harness.h"
#include "tests/integration/process.h"
#include "tests/integration/sid_ffmpeg.h"
#include "tests/rtmp_testing.h"

namespace uringest::testing {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;
using ::testing::HasSubstr;

constexpr char kNginx[] = "/usr/sbin/nginx";
constexpr char kNginxRtmp[] = "/usr/lib/nginx/modules/ngx_rtmp_module.so";
constexpr char kOpenssl[] = "/usr/bin/openssl";

Process Publish(const std::string& source, const std::string& url, const std::string& log) {
  return Process::Spawn({kFfmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-re", "-i",
                         source, "-c", "copy", "-f", "flv", url},
                        {.stderr_path = log});
}

// A TCP port nothing listens on now.
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{.sin_family = AF_INET, .sin_port = 0, .sin_addr = {htonl(INADDR_LOOPBACK)}};
  socklen_t len = sizeof(addr);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

bool Accepts(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{.sin_family = AF_INET,
                   .sin_port = htons(uint16_t(port)),
                   .sin_addr = {htonl(INADDR_LOOPBACK)}};
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

// nginx with the rtmp module on 127.0.0.1:port in the foreground, one process, recording
// every publish to application "live" under `rec` (each publish a file of its own).
class Nginx {
 public:
  Nginx(const ScratchDir& dir, int port) : dir_(dir), port_(port) {
    fs::create_directories(dir.Path("nginx/logs"));
    fs::create_directories(dir.Path("nginx/rec"));
    std::ofstream(dir.Path("nginx/nginx.conf"))
        << "load_module " << kNginxRtmp << ";\n"
        << "daemon off;\nmaster_process off;\nworker_processes 1;\n"
        << "error_log " << dir.Path("nginx/logs/error.log") << " info;\n"
        << "pid " << dir.Path("nginx/nginx.pid") << ";\n"
        << "events { worker_connections 256; }\n"
        << "rtmp { server { listen 127.0.0.1:" << port << "; chunk_size 4096;\n"
        << "  application live { live on; record all; record_unique on;\n"
        << "    record_path " << dir.Path("nginx/rec") << "; } } }\n";
  }
  bool Start() {
    process_ =
        Process::Spawn({kNginx, "-p", dir_.Path("nginx"), "-e", dir_.Path("nginx/logs/error.log"),
                        "-c", dir_.Path("nginx/nginx.conf")},
                       {.stderr_path = dir_.Path("nginx/stderr.log")});
    for (absl::Time end = absl::Now() + absl::Seconds(10); absl::Now() < end;) {
      if (Accepts(port_)) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  }
  void Kill() {
    process_->Kill();
    (void)process_->Wait(kProcessTimeout);
  }
  std::string Url(std::string_view stream) const {
    return absl::StrCat("rtmp://127.0.0.1:", port_, "/", std::string(stream));
  }
  // The recordings, oldest first.
  std::vector<fs::path> Recordings() const {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(dir_.Path("nginx/rec"))) out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
  }
  std::string errors() const { return ReadFile(dir_.Path("nginx/logs/error.log")); }

 private:
  const ScratchDir& dir_;
  const int port_;
  std::optional<Process> process_;
};

#define REQUIRE_NGINX_RTMP()                                      \
  if (access(kNginx, X_OK) != 0 || access(kNginxRtmp, R_OK) != 0) \
  GTEST_SKIP() << kNginx << " or " << kNginxRtmp                  \
               << " is missing (Debian: nginx libnginx-mod-rtmp; uringest.sh test installs them)"

// The audio (8) or video (9) frames of an FLV file: its tags that are not sequence
// headers (AVC and AAC packet type 0; nginx writes its own copies of those).
std::vector<Bytes> Frames(const std::string& path, uint8_t type) {
  std::vector<Bytes> out;
  for (const FlvTag& t : ParseFlvTags(media::AsBytes(ReadFile(path)))) {
    if (t.type == type && !(t.body.size() > 1 && t.body[1] == 0)) out.push_back(t.body);
  }
  return out;
}

// The bodies of every tag of `type` of an FLV file, sequence headers included.
std::vector<Bytes> AllTags(const std::string& path, uint8_t type) {
  std::vector<Bytes> out;
  for (FlvTag& t : ParseFlvTags(media::AsBytes(ReadFile(path)))) {
    if (t.type == type) out.push_back(std::move(t.body));
  }
  return out;
}

// Where `part` sits in `whole` as a contiguous run, or npos.
size_t FindRun(const std::vector<Bytes>& whole, const std::vector<Bytes>& part) {
  if (part.empty() || part.size() > whole.size()) return std::string::npos;
  auto it = std::search(whole.begin(), whole.end(), part.begin(), part.end());
  return it == whole.end() ? std::string::npos : size_t(it - whole.begin());
}

Process StartPush(const std::vector<std::string>& extra, const std::string& log) {
  std::vector<std::string> args = {ToolPath("uringest-push")};
  args.insert(args.end(), extra.begin(), extra.end());
  return Process::Spawn(args, {.stderr_path = log});
}

nlohmann::json ReadStatus(const std::string& path) {
  return nlohmann::json::parse(ReadFile(path), nullptr, /*allow_exceptions=*/false);
}

TEST(PushTest, RelaysToNginxAndASecondServerByteForByteAndRidesOutAnNginxRestart) {
  REQUIRE_FFMPEG();
  REQUIRE_NGINX_RTMP();
  ScratchDir dir;
  const std::string source = dir.Path("source.flv");
  ASSERT_TRUE(MakeAvSource(source, 14));
  std::unique_ptr<IngestServer> ingest = IngestServer::Start(1, dir);
  std::unique_ptr<IngestServer> second = IngestServer::Start(1, dir);
  ASSERT_NE(ingest, nullptr);
  ASSERT_NE(second, nullptr);
  Nginx nginx(dir, FreePort());
  ASSERT_TRUE(nginx.Start()) << nginx.errors();

  const std::string copy = dir.Path("second.flv");
  Process cat = StartCat(second->ring(), "live/relayed", copy, dir.Path("cat.log"));
  ASSERT_TRUE(AwaitDirectoryMapped(cat.pid(), second->ring()));
  const std::string log = dir.Path("push.log");
  const std::string status = dir.Path("push.json");
  Process push = StartPush({"--ring", ingest->ring(), "--status-file", status, "--rule",
                            absl::StrCat("live/*=", nginx.Url("live/{name}")), "--rule",
                            absl::StrCat("live/*=", second->Url("live/relayed"))},
                           log);
  ASSERT_TRUE(WaitForText(log, "rule(s) match")) << ReadFile(log);
  Process ffmpeg = Publish(source, ingest->Url("live/cam"), dir.Path("ffmpeg.log"));
  ASSERT_TRUE(WaitForText(log, ": live", 2)) << ReadFile(log);

  // nginx dies 4 s into the stream and is back 2 s later.
  absl::SleepFor(absl::Seconds(4));
  nginx.Kill();
  absl::SleepFor(absl::Seconds(2));
  ASSERT_TRUE(nginx.Start()) << nginx.errors();
  ASSERT_TRUE(WaitForText(log, "live again")) << ReadFile(log);
  {
    const nlohmann::json doc = ReadStatus(status);
    ASSERT_FALSE(doc.is_discarded());
    bool saw_nginx = false;
    for (const auto& d : doc["destinations"]) {
      if (d["url"].get<std::string>().find(nginx.Url("live")) == std::string::npos) {
        EXPECT_EQ(d["reconnects"].get<int>(), 0) << d;
        continue;
      }
      saw_nginx = true;
      EXPECT_GE(d["reconnects"].get<int>(), 1) << d;
      EXPECT_NE(d["last_error"].get<std::string>(), "") << d;
    }
    EXPECT_TRUE(saw_nginx) << doc;
  }
  ASSERT_EQ(ffmpeg.Wait(kProcessTimeout), 0) << ReadFile(dir.Path("ffmpeg.log"));
  ASSERT_TRUE(WaitForText(log, "unpublishing", 2)) << ReadFile(log);
  ASSERT_EQ(cat.Wait(kProcessTimeout), 0) << ReadFile(dir.Path("cat.log"));
  push.Signal(SIGINT);
  EXPECT_EQ(push.Wait(kProcessTimeout), 0) << ReadFile(log);
  const std::string relay_log = ReadFile(log);
  EXPECT_THAT(relay_log,
              ::testing::ContainsRegex(nginx.Url("live/cam") +
                                       ": (recv: Connection reset by peer|the upstream closed the "
                                       "connection); connecting again in"));
  EXPECT_THAT(relay_log, ::testing::Not(HasSubstr("skipped")));

  for (uint8_t type : {8, 9}) {
    const std::vector<Bytes> want = Frames(source, type);
    ASSERT_GT(want.size(), 100u);
    // The second server lost nothing while nginx was down.
    EXPECT_TRUE(Frames(copy, type) == want) << "type " << int(type);
    // nginx: the frames up to its death from the start, then from a keyframe to the end.
    const std::vector<fs::path> files = nginx.Recordings();
    ASSERT_EQ(files.size(), 2u) << nginx.errors();
    const std::vector<Bytes> before = Frames(files[0], type);
    const std::vector<Bytes> after = Frames(files[1], type);
    ASSERT_GT(before.size(), 10u) << "type " << int(type);
    ASSERT_GT(after.size(), 10u) << "type " << int(type);
    EXPECT_EQ(FindRun(want, before), 0u) << "type " << int(type);
    const size_t resumed = FindRun(want, after);
    ASSERT_NE(resumed, std::string::npos) << "type " << int(type);
    EXPECT_EQ(resumed + after.size(), want.size()) << "to the end, type " << int(type);
    EXPECT_GT(resumed, before.size()) << "frames sent while nginx was down are not there";
    if (type == 9) {
      EXPECT_EQ(after[0][0] >> 4, 1) << "the resumed copy starts at a keyframe";
    }
  }
}

TEST(PushTest, RelaysOverRtmpsAndVerifiesCertificatesUnlessInsecure) {
  REQUIRE_FFMPEG();
  if (access(kOpenssl, X_OK) != 0) GTEST_SKIP() << kOpenssl << " is missing";
  ScratchDir dir;
  const std::string source = dir.Path("source.flv");
  ASSERT_TRUE(MakeAvSource(source, 4));
  ASSERT_EQ(RunCommand({kOpenssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout",
                        dir.Path("key.pem"), "-out", dir.Path("cert.pem")},
                       kProcessTimeout),
            0);
  const int tls_port = FreePort();
  std::unique_ptr<IngestServer> ingest = IngestServer::Start(1, dir);
  std::unique_ptr<IngestServer> secure =
      IngestServer::Start(1, dir,
                          {"--tls-listen", absl::StrCat("127.0.0.1:", tls_port), "--tls-cert",
                           dir.Path("cert.pem"), "--tls-key", dir.Path("key.pem")});
  ASSERT_NE(ingest, nullptr);
  ASSERT_NE(secure, nullptr);
  const std::string rtmps = absl::StrCat("rtmps://127.0.0.1:", tls_port, "/live/");

  const std::string copy = dir.Path("secure.flv");
  Process cat = StartCat(secure->ring(), "live/insecure", copy, dir.Path("cat.log"));
  ASSERT_TRUE(AwaitDirectoryMapped(cat.pid(), secure->ring()));
  // Trusting its CA file: verified; trusting the system's store: refused, and said why.
  const std::string insecure_log = dir.Path("insecure.log");
  const std::string trusted_log = dir.Path("trusted.log");
  const std::string refused_log = dir.Path("refused.log");
  Process insecure = StartPush({"--ring", ingest->ring(), "--insecure", "--status-file",
                                dir.Path("a.json"), "--rule", "live/*=" + rtmps + "insecure"},
                               insecure_log);
  Process trusted =
      StartPush({"--ring", ingest->ring(), "--ca-file", dir.Path("cert.pem"), "--status-file",
                 dir.Path("b.json"), "--rule", "live/*=" + rtmps + "trusted"},
                trusted_log);
  Process refused = StartPush({"--ring", ingest->ring(), "--status-file", dir.Path("c.json"),
                               "--rule", "live/*=" + rtmps + "refused"},
                              refused_log);
  for (const std::string& log : {insecure_log, trusted_log, refused_log}) {
    ASSERT_TRUE(WaitForText(log, "rule(s) match")) << ReadFile(log);
  }
  Process ffmpeg = Publish(source, ingest->Url("live/cam"), dir.Path("ffmpeg.log"));
  ASSERT_EQ(ffmpeg.Wait(kProcessTimeout), 0) << ReadFile(dir.Path("ffmpeg.log"));
  ASSERT_EQ(cat.Wait(kProcessTimeout), 0) << ReadFile(dir.Path("cat.log"));
  ASSERT_TRUE(WaitForText(trusted_log, "unpublishing")) << ReadFile(trusted_log);
  for (Process* p : {&insecure, &trusted, &refused}) {
    p->Signal(SIGINT);
    EXPECT_EQ(p->Wait(kProcessTimeout), 0);
  }
  EXPECT_THAT(ReadFile(insecure_log), HasSubstr(": live (TLSv1."));
  EXPECT_THAT(ReadFile(trusted_log), HasSubstr(": live (TLSv1."));
  EXPECT_THAT(ReadFile(refused_log),
              HasSubstr("certificate verify failed: self-signed certificate; connecting again"));
  EXPECT_THAT(ReadFile(refused_log), ::testing::Not(HasSubstr(": live (")));
  for (uint8_t type : {8, 9}) {
    EXPECT_TRUE(Frames(copy, type) == Frames(source, type)) << "type " << int(type);
  }
}

// Enhanced RTMP as a current ffmpeg (Debian sid's) publishes it, two HEVC renditions and
// two AAC tracks (multitrack messages), relayed to a second uringestd: every message
// arrives as it was received. One GOP (3 s) covers the clip, so however late in it the
// destination goes live, it starts with the stream's first messages, kept for it.
TEST(PushTest, RelaysEnhancedRtmpMultitrackAsReceived) {
  REQUIRE_SID_FFMPEG(sid);
  ScratchDir dir;
  std::unique_ptr<IngestServer> ingest = IngestServer::Start(1, dir);
  std::unique_ptr<IngestServer> second = IngestServer::Start(1, dir);
  ASSERT_NE(ingest, nullptr);
  ASSERT_NE(second, nullptr);
  const std::string source_copy = dir.Path("source.flv");
  const std::string relayed = dir.Path("relayed.flv");
  Process source_cat = StartCat(ingest->ring(), "live/mt", source_copy, dir.Path("c1.log"));
  Process relayed_cat = StartCat(second->ring(), "live/mt", relayed, dir.Path("c2.log"));
  ASSERT_TRUE(AwaitDirectoryMapped(source_cat.pid(), ingest->ring()));
  ASSERT_TRUE(AwaitDirectoryMapped(relayed_cat.pid(), second->ring()));
  const std::string log = dir.Path("push.log");
  Process push = StartPush({"--ring", ingest->ring(), "--status-file", dir.Path("push.json"),
                            "--rule", "live/*=" + second->Url("live/{name}")},
                           log);
  ASSERT_TRUE(WaitForText(log, "rule(s) match")) << ReadFile(log);
  const std::vector<std::string> publish = {"-hide_banner",
                                            "-loglevel",
                                            "error",
                                            "-nostdin",
                                            "-re",
                                            "-f",
                                            "lavfi",
                                            "-i",
                                            "testsrc=size=320x240:rate=25",
                                            "-f",
                                            "lavfi",
                                            "-i",
                                            "testsrc=size=160x120:rate=25",
                                            "-f",
                                            "lavfi",
                                            "-i",
                                            "sine=frequency=440:sample_rate=48000",
                                            "-f",
                                            "lavfi",
                                            "-i",
                                            "sine=frequency=880:sample_rate=44100",
                                            "-map",
                                            "0",
                                            "-map",
                                            "1",
                                            "-map",
                                            "2",
                                            "-map",
                                            "3",
                                            "-c:v",
                                            "libx265",
                                            "-preset",
                                            "ultrafast",
                                            "-x265-params",
                                            "log-level=error:keyint=75:pools=none",
                                            "-c:a",
                                            "aac",
                                            "-t",
                                            "3",
                                            "-f",
                                            "flv",
                                            ingest->Url("live/mt")};
  ASSERT_EQ(
      RunCommand(sid->Command("ffmpeg", publish), kProcessTimeout, "", dir.Path("ffmpeg.log")), 0)
      << ReadFile(dir.Path("ffmpeg.log"));
  ASSERT_EQ(source_cat.Wait(kProcessTimeout), 0) << ReadFile(dir.Path("c1.log"));
  ASSERT_EQ(relayed_cat.Wait(kProcessTimeout), 0) << ReadFile(dir.Path("c2.log"));
  push.Signal(SIGINT);
  EXPECT_EQ(push.Wait(kProcessTimeout), 0) << ReadFile(log);
  for (uint8_t type : {8, 9}) {
    const std::vector<Bytes> want = AllTags(source_copy, type);
    ASSERT_GT(want.size(), 50u) << "type " << int(type);
    EXPECT_TRUE(AllTags(relayed, type) == want) << "type " << int(type);
  }
  // HEVC goes as Enhanced RTMP (ExHeader), as published.
  EXPECT_EQ(AllTags(relayed, 9).at(0).at(0) & 0x80, 0x80);
}

// A destination that stops reading (its server is SIGSTOPped) falls behind: after
// --max-lag it skips to a keyframe and says so, and the stream's other destination gets
// every frame meanwhile.
TEST(PushTest, ASlowDestinationSkipsToAKeyframeWhileTheOtherGetsEveryFrame) {
  ScratchDir dir;
  std::unique_ptr<IngestServer> ingest = IngestServer::Start(1, dir);
  std::unique_ptr<IngestServer> slow = IngestServer::Start(1, dir);
  std::unique_ptr<IngestServer> fast = IngestServer::Start(1, dir);
  ASSERT_NE(ingest, nullptr);
  ASSERT_NE(slow, nullptr);
  ASSERT_NE(fast, nullptr);
  const std::string source_copy = dir.Path("source.flv");
  const std::string fast_copy = dir.Path("fast.flv");
  Process source_cat = StartCat(ingest->ring(), "live/load0", source_copy, dir.Path("c1.log"));
  Process fast_cat = StartCat(fast->ring(), "live/load0", fast_copy, dir.Path("c2.log"));
  ASSERT_TRUE(AwaitDirectoryMapped(source_cat.pid(), ingest->ring()));
  ASSERT_TRUE(AwaitDirectoryMapped(fast_cat.pid(), fast->ring()));
  const std::string log = dir.Path("push.log");
  const std::string status = dir.Path("push.json");
  Process push = StartPush({"--ring", ingest->ring(), "--max-lag", "1", "--timeout", "30",
                            "--status-file", status, "--rule", "live/*=" + slow->Url("live/{name}"),
                            "--rule", "live/*=" + fast->Url("live/{name}")},
                           log);
  ASSERT_TRUE(WaitForText(log, "rule(s) match")) << ReadFile(log);
  // 20 Mbit/s for 14 s: a stopped reader's socket buffers fill within a few seconds.
  Process load = Process::Spawn(
      {ToolPath("uringest-load"), "--target", absl::StrCat("127.0.0.1:", ingest->port()),
       "--publishers", "1", "--bitrate", "20M", "--duration", "14"},
      {.stderr_path = dir.Path("load.log")});
  ASSERT_TRUE(WaitForText(log, ": live", 2)) << ReadFile(log);
  absl::SleepFor(absl::Seconds(2));
  slow->process().Signal(SIGSTOP);
  absl::SleepFor(absl::Seconds(8));
  slow->process().Signal(SIGCONT);
  ASSERT_EQ(load.Wait(kProcessTimeout), 0) << ReadFile(dir.Path("load.log"));
  ASSERT_EQ(source_cat.Wait(kProcessTimeout), 0) << ReadFile(dir.Path("c1.log"));
  ASSERT_EQ(fast_cat.Wait(kProcessTimeout), 0) << ReadFile(dir.Path("c2.log"));
  ASSERT_TRUE(WaitForText(log, "unpublishing", 2)) << ReadFile(log);
  const nlohmann::json doc = ReadStatus(status);
  push.Signal(SIGINT);
  EXPECT_EQ(push.Wait(kProcessTimeout), 0) << ReadFile(log);

  const std::string relay_log = ReadFile(log);
  EXPECT_THAT(relay_log, ::testing::ContainsRegex(slow->Url("live/load0") +
                                                  ": reads slower than the stream \\([0-9.]+ s "
                                                  "behind\\): skipped [1-9][0-9]* frames"));
  EXPECT_THAT(relay_log, ::testing::Not(HasSubstr(fast->Url("live/load0") + ": reads slower")));
  EXPECT_THAT(relay_log, ::testing::Not(HasSubstr("connecting again")));
  ASSERT_FALSE(doc.is_discarded());
  for (const auto& d : doc["destinations"]) {
    const bool is_slow = d["url"].get<std::string>() == slow->Url("live/load0");
    EXPECT_EQ(d["dropped_frames"].get<int>() > 0, is_slow) << d;
    EXPECT_EQ(d["reconnects"].get<int>(), 0) << d;
  }
  const std::vector<Bytes> want = Frames(source_copy, 9);
  ASSERT_GT(want.size(), 300u);
  EXPECT_TRUE(Frames(fast_copy, 9) == want);
}

// The server the relay reads goes away (killed) and comes back: the relay unpublishes
// what it was pushing, waits, and pushes the next server's streams.
TEST(PushTest, ARestartedServerIsWaitedForAndItsStreamsPushed) {
  REQUIRE_FFMPEG();
  ScratchDir dir;
  const std::string ring = UniqueRingName();
  std::unique_ptr<IngestServer> ingest = IngestServer::Start(1, dir, {}, ring);
  std::unique_ptr<IngestServer> second = IngestServer::Start(1, dir);
  ASSERT_NE(ingest, nullptr);
  ASSERT_NE(second, nullptr);
  const std::string log = dir.Path("push.log");
  // By name: "localhost" may give ::1 first, where nothing listens; 127.0.0.1 is next.
  Process push =
      StartPush({"--ring", ring, "--status-file", dir.Path("push.json"), "--rule",
                 absl::StrCat("live/*=rtmp://localhost:", second->port(), "/live/{name}")},
                log);
  ASSERT_TRUE(WaitForText(log, "rule(s) match")) << ReadFile(log);
  for (const std::string name : {"one", "two"}) {
    const std::string out = dir.Path(name + ".flv");
    Process cat = StartCat(second->ring(), "live/" + name, out, dir.Path(name + ".log"));
    ASSERT_TRUE(AwaitDirectoryMapped(cat.pid(), second->ring()));
    ASSERT_EQ(RunCommand(PublishClipArgs(ingest->Url("live/" + name)), kProcessTimeout), 0);
    ASSERT_EQ(cat.Wait(kProcessTimeout), 0) << ReadFile(dir.Path(name + ".log"));
    EXPECT_EQ(TagBodies(out, 9), SourceVideo()) << name;
    if (name == "one") {
      ingest->process().Kill();
      ASSERT_TRUE(WaitForText(log, "the server died; waiting for the next one")) << ReadFile(log);
      ingest.reset();
      ingest = IngestServer::Start(1, dir, {}, ring);
      ASSERT_NE(ingest, nullptr);
      ASSERT_TRUE(WaitForText(log, "rule(s) match", 2)) << ReadFile(log);
    }
  }
  push.Signal(SIGINT);
  EXPECT_EQ(push.Wait(kProcessTimeout), 0) << ReadFile(log);
}

// SIGHUP reads the rules file again: a stream being pushed leaves the destination no rule
// gives any more (unpublished) and goes to the new one from a keyframe; a bad file keeps
// the rules in force.
TEST(PushTest, SighupReloadsTheRulesOfLiveStreams) {
  REQUIRE_FFMPEG();
  ScratchDir dir;
  const std::string source = dir.Path("source.flv");
  ASSERT_TRUE(MakeAvSource(source, 10));
  std::unique_ptr<IngestServer> ingest = IngestServer::Start(1, dir);
  std::unique_ptr<IngestServer> before = IngestServer::Start(1, dir);
  std::unique_ptr<IngestServer> after = IngestServer::Start(1, dir);
  ASSERT_NE(ingest, nullptr);
  ASSERT_NE(before, nullptr);
  ASSERT_NE(after, nullptr);
  const std::string rules = dir.Path("push.rules");
  std::ofstream(rules) << "# where live streams go\nlive/* " << before->Url("live/{name}") << "\n";
  const std::string before_copy = dir.Path("before.flv");
  const std::string after_copy = dir.Path("after.flv");
  Process before_cat = StartCat(before->ring(), "live/cam", before_copy, dir.Path("c1.log"));
  Process after_cat = StartCat(after->ring(), "live/cam", after_copy, dir.Path("c2.log"));
  ASSERT_TRUE(AwaitDirectoryMapped(before_cat.pid(), before->ring()));
  ASSERT_TRUE(AwaitDirectoryMapped(after_cat.pid(), after->ring()));
  const std::string log = dir.Path("push.log");
  Process push = StartPush(
      {"--ring", ingest->ring(), "--status-file", dir.Path("push.json"), "--config", rules}, log);
  ASSERT_TRUE(WaitForText(log, "rule(s) match")) << ReadFile(log);
  Process ffmpeg = Publish(source, ingest->Url("live/cam"), dir.Path("ffmpeg.log"));
  ASSERT_TRUE(WaitForText(log, ": live")) << ReadFile(log);
  absl::SleepFor(absl::Seconds(3));
  std::ofstream(rules) << "live/*\n";  // bad: the rules in force stay
  push.Signal(SIGHUP);
  ASSERT_TRUE(WaitForText(log, "rules not reloaded, the old ones stay")) << ReadFile(log);
  std::ofstream(rules) << "live/*=" << after->Url("live/{name}") << "\n";
  push.Signal(SIGHUP);
  ASSERT_TRUE(WaitForText(log, "rules reloaded: 1 rule(s)")) << ReadFile(log);
  ASSERT_EQ(before_cat.Wait(kProcessTimeout), 0) << ReadFile(dir.Path("c1.log"));
  ASSERT_EQ(ffmpeg.Wait(kProcessTimeout), 0) << ReadFile(dir.Path("ffmpeg.log"));
  ASSERT_EQ(after_cat.Wait(kProcessTimeout), 0) << ReadFile(dir.Path("c2.log"));
  push.Signal(SIGINT);
  EXPECT_EQ(push.Wait(kProcessTimeout), 0) << ReadFile(log);
  // The first destination has the stream from its start, the second from a keyframe to
  // its end: between them, every frame.
  const std::vector<Bytes> want = Frames(source, 9);
  const std::vector<Bytes> first = Frames(before_copy, 9);
  const std::vector<Bytes> second = Frames(after_copy, 9);
  ASSERT_GT(first.size(), 25u);
  ASSERT_GT(second.size(), 25u);
  EXPECT_EQ(FindRun(want, first), 0u);
  const size_t resumed = FindRun(want, second);
  ASSERT_NE(resumed, std::string::npos);
  EXPECT_EQ(resumed + second.size(), want.size());
  EXPECT_LE(resumed, first.size()) << "no frame missed by both";
  EXPECT_EQ(second[0][0] >> 4, 1) << "the new destination starts at a keyframe";
}

TEST(PushTest, BadRulesAndNoRelayAreClearErrors) {
  ScratchDir dir;
  const std::string err = dir.Path("err");
  EXPECT_EQ(RunCommand({ToolPath("uringest-push"), "--rule", "live/*=http://x/live/{name}"},
                       kProcessTimeout, "", err),
            2);
  EXPECT_THAT(ReadFile(err), HasSubstr("it must start with rtmp:// or rtmps://"));
  EXPECT_EQ(RunCommand({ToolPath("uringest-push")}, kProcessTimeout, "", err), 2);
  EXPECT_THAT(ReadFile(err), HasSubstr("no rules"));
  EXPECT_EQ(RunCommand({ToolPath("uringest-push"), "--status", "--status-file", dir.Path("none")},
                       kProcessTimeout, "", err),
            1);
  EXPECT_THAT(ReadFile(err), HasSubstr("is uringest-push running"));
}

}  // namespace
}  // namespace uringest::testing
