// Issue 15: uringestd's HTTP control listener, with the real uringestd, ffmpeg, curl and
// promtool: /metrics passes `promtool check metrics` and says what the ring says;
// /v1/streams is uringest-stat's document; a kick needs the token, ends the publish
// cleanly in the ring and can ban the name; health and readiness; bad requests get a
// JSON 4xx and leave the listener serving.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/ingest_harness.h"
#include "tests/integration/rtmp_client.h"

namespace uringest::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kCurl[] = "/usr/bin/curl";
constexpr char kPromtool[] = "/usr/bin/promtool";
constexpr char kToken[] = "s3cret-t0ken";

struct HttpReply {
  int status = 0;  // 0: no answer
  std::string body;
};

// One request with the real curl.
HttpReply Http(const ScratchDir& dir, const std::string& method, const std::string& url,
               const std::vector<std::string>& headers = {}) {
  std::vector<std::string> args = {
      kCurl, "-s", "-X", method, "-o", dir.Path("body"), "-w", "%{http_code}", "--max-time", "10"};
  for (const std::string& h : headers) args.insert(args.end(), {"-H", h});
  args.push_back(url);
  std::remove(dir.Path("body").c_str());
  RunCommand(args, absl::Seconds(20), dir.Path("code"));
  HttpReply reply;
  if (!absl::SimpleAtoi(ReadFile(dir.Path("code")), &reply.status)) reply.status = 0;
  reply.body = ReadFile(dir.Path("body"));
  return reply;
}

// The "HTTP API: listening on 127.0.0.1:PORT" line's port, or 0.
int HttpPort(const std::string& log_path) {
  const std::string marker = "HTTP API: listening on 127.0.0.1:";
  if (!WaitForText(log_path, marker, 1, absl::Seconds(10))) return 0;
  const std::string log = ReadFile(log_path);
  const size_t at = log.find(marker) + marker.size();
  int port = 0;
  absl::SimpleAtoi(log.substr(at, log.find_first_not_of("0123456789", at) - at), &port);
  return port;
}

// The value of the series `series` (name and labels, as written) on a metrics page.
std::optional<double> Metric(const std::string& page, const std::string& series) {
  for (const std::string& line : std::vector<std::string>(absl::StrSplit(page, '\n'))) {
    if (!line.starts_with(series + " ")) continue;
    double v = 0;
    if (absl::SimpleAtod(line.substr(series.size() + 1), &v)) return v;
  }
  return std::nullopt;
}

class ControlTest : public ::testing::Test {
 protected:
  void StartServer(std::vector<std::string> extra = {"--http-token", kToken}) {
    extra.insert(extra.end(), {"--http-listen", "127.0.0.1:0", "--ring-size", "4MiB"});
    server_ = IngestServer::Start(2, dir_, extra);
    ASSERT_NE(server_, nullptr);
    const int port = HttpPort(server_->log_path());
    ASSERT_NE(port, 0) << ReadFile(server_->log_path());
    base_ = absl::StrCat("http://127.0.0.1:", port);
  }
  // ffmpeg publishing testsrc to live/NAME for `seconds`, in real time.
  Process StartPublisher(const std::string& name, int seconds) {
    return Process::Spawn(PublishClipArgs(server_->Url("live/" + name), seconds),
                          {.stderr_path = dir_.Path(name + ".ffmpeg.log")});
  }
  HttpReply Get(const std::string& path) { return Http(dir_, "GET", base_ + path); }
  HttpReply Post(const std::string& path, const std::vector<std::string>& headers = {}) {
    return Http(dir_, "POST", base_ + path, headers);
  }

  ScratchDir dir_;
  std::unique_ptr<IngestServer> server_;
  std::string base_;
};

TEST_F(ControlTest, MetricsPassPromtoolAndSayWhatTheRingSays) {
  REQUIRE_FFMPEG();
  if (access(kPromtool, X_OK) != 0) GTEST_SKIP() << kPromtool << " is missing (Debian: prometheus)";
  StartServer();
  Process ffmpeg = StartPublisher("cam", 6);
  ASSERT_TRUE(WaitForStream(server_->ring(), "live/cam", 30, absl::Seconds(15)));
  absl::SleepFor(absl::Milliseconds(1500));  // a sample with a bitrate

  const HttpReply metrics = Get("/metrics");
  ASSERT_EQ(metrics.status, 200);
  std::ofstream(dir_.Path("metrics.txt")) << metrics.body;
  EXPECT_EQ(RunCommand({"/bin/sh", "-c",
                        absl::StrCat(kPromtool, " check metrics < ", dir_.Path("metrics.txt"),
                                     " > ", dir_.Path("promtool.log"), " 2>&1")},
                       absl::Seconds(30)),
            0)
      << ReadFile(dir_.Path("promtool.log"));

  const std::string& page = metrics.body;
  EXPECT_EQ(Metric(page, "uringest_streams_publishing"), 1.0);
  EXPECT_EQ(Metric(page, "uringest_publishes_total"), 1.0);
  EXPECT_GT(Metric(page, "uringest_stream_frames_total{app=\"live\",name=\"cam\"}").value_or(0),
            30);
  EXPECT_GT(Metric(page, "uringest_stream_received_bytes_per_second{app=\"live\",name=\"cam\"}")
                .value_or(0),
            1000);
  EXPECT_THAT(page,
              HasSubstr("uringest_stream_info{app=\"live\",name=\"cam\",publisher=\"127.0.0.1:"));
  const double start =
      Metric(page, "uringest_stream_start_time_seconds{app=\"live\",name=\"cam\"}").value_or(0);
  EXPECT_NEAR(start, absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()), 30);
  const double received =
      Metric(page, "uringest_shard_received_bytes_total{shard=\"0\"}").value_or(0) +
      Metric(page, "uringest_shard_received_bytes_total{shard=\"1\"}").value_or(0);
  EXPECT_GT(received, 10000);
  EXPECT_GT(Metric(page, "process_resident_memory_bytes").value_or(0), 1 << 20);
  EXPECT_THAT(page, HasSubstr("uringest_build_info{version=\""));

  // /v1/streams is uringest-stat --json's document; one stream's object by its name.
  const HttpReply streams = Get("/v1/streams");
  ASSERT_EQ(streams.status, 200);
  const nlohmann::json doc = nlohmann::json::parse(streams.body, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << streams.body;
  EXPECT_EQ(doc["ring"], server_->ring());
  EXPECT_EQ(doc["server_state"], "live");
  ASSERT_EQ(doc["streams"].size(), 1u);
  EXPECT_EQ(doc["streams"][0]["name"], "live/cam");
  EXPECT_EQ(doc["streams"][0]["video_codec"], "H.264");
  const HttpReply one = Get("/v1/streams/live/cam");
  ASSERT_EQ(one.status, 200) << one.body;
  const nlohmann::json stream = nlohmann::json::parse(one.body, nullptr, false);
  EXPECT_EQ(stream["name"], "live/cam");
  EXPECT_GT(stream["frames"].get<int>(), 30);
  EXPECT_EQ(stream["width"], 320);
  const HttpReply none = Get("/v1/streams/live/none");
  EXPECT_EQ(none.status, 404);
  EXPECT_THAT(none.body, HasSubstr("\"error\":\"live/none is not publishing\""));

  EXPECT_EQ(Get("/healthz").status, 200);
  const HttpReply ready = Get("/readyz");
  EXPECT_EQ(ready.status, 200);
  EXPECT_THAT(ready.body, HasSubstr("\"ready\":true"));
  EXPECT_EQ(ffmpeg.Wait(kProcessTimeout), 0);
}

TEST_F(ControlTest, KickNeedsTheTokenEndsThePublishCleanlyAndBans) {
  REQUIRE_FFMPEG();
  StartServer();
  Process cat = StartCat(server_->ring(), "live/cam", dir_.Path("out.flv"), dir_.Path("cat.log"));
  ASSERT_TRUE(AwaitDirectoryMapped(cat.pid(), server_->ring()));
  Process ffmpeg = StartPublisher("cam", 30);
  ASSERT_TRUE(WaitForStream(server_->ring(), "live/cam", 30, absl::Seconds(15)));

  EXPECT_EQ(Post("/v1/streams/live/cam/kick").status, 401);
  EXPECT_EQ(Post("/v1/streams/live/cam/kick", {"Authorization: Bearer wrong"}).status, 401);
  EXPECT_EQ(Post("/v1/streams/live/cam/kick", {absl::StrCat("Authorization: Bearer ", kToken, "x")})
                .status,
            401);
  EXPECT_TRUE(ffmpeg.Running()) << "a refused kick kicked";
  const HttpReply kicked =
      Post("/v1/streams/live/cam/kick?ban=60", {absl::StrCat("Authorization: Bearer ", kToken)});
  ASSERT_EQ(kicked.status, 200) << kicked.body;
  EXPECT_THAT(kicked.body, HasSubstr("\"kicked\":true"));

  // The publisher is disconnected; the stream ends in order in the ring: uringest-cat
  // ends with it, and its file plays.
  EXPECT_NE(ffmpeg.Wait(absl::Seconds(10)), std::nullopt) << "ffmpeg still runs after the kick";
  EXPECT_EQ(cat.Wait(absl::Seconds(10)), 0) << ReadFile(dir_.Path("cat.log"));
  EXPECT_GT(CountVideoFrames(dir_.Path("out.flv")), 20);
  EXPECT_TRUE(WaitForText(server_->log_path(), "kicked by the operator (HTTP API)"));

  // Banned: a second publish of the name is refused, saying why; another name is not.
  Process again = StartPublisher("cam", 2);
  EXPECT_NE(again.Wait(kProcessTimeout), 0);
  EXPECT_TRUE(WaitForText(server_->log_path(), "live/cam is banned for"))
      << ReadFile(server_->log_path());
  Process other = StartPublisher("other", 2);
  EXPECT_EQ(other.Wait(kProcessTimeout), 0) << ReadFile(dir_.Path("other.ffmpeg.log"));

  const std::string page = Get("/metrics").body;
  EXPECT_EQ(Metric(page, "uringest_kicks_total"), 1.0);
  EXPECT_EQ(Metric(page, "uringest_publishes_refused_total{reason=\"banned\"}"), 1.0) << page;
  // Nothing publishes live/cam now.
  EXPECT_EQ(
      Post("/v1/streams/live/cam/kick", {absl::StrCat("Authorization: Bearer ", kToken)}).status,
      404);
}

TEST_F(ControlTest, WithoutATokenChangesAreRefusedAndReadsWork) {
  StartServer({});
  const HttpReply refused = Post("/v1/streams/live/cam/kick");
  EXPECT_EQ(refused.status, 403);
  EXPECT_THAT(refused.body, HasSubstr("--http-token"));
  EXPECT_EQ(Get("/v1/streams").status, 200);
  EXPECT_EQ(Get("/readyz").status, 200);
}

// A publisher that announced Enhanced RTMP's Reconnect capability, live on live/NAME.
std::unique_ptr<RtmpClient> LivePublisher(int port, const std::string& name, bool can_reconnect) {
  std::unique_ptr<RtmpClient> client = RtmpClient::Connect(port);
  if (client == nullptr || !client->Handshake()) return nullptr;
  std::vector<media::amf0::Value::Property> caps;
  if (can_reconnect) caps.emplace_back("capsEx", media::amf0::Value::Number(1));
  if (!client->ConnectApp("live", caps)) return nullptr;
  std::optional<uint32_t> id = client->CreateStream();
  if (!id || client->Publish(*id, name) != "NetStream.Publish.Start") return nullptr;
  return client;
}

// The next NetConnection.Connect.ReconnectRequest the client gets: its info object.
std::optional<media::amf0::Value> AwaitReconnectRequest(RtmpClient& client,
                                                        absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    std::optional<std::vector<media::amf0::Value>> command =
        client.AwaitCommand(deadline - absl::Now());
    if (!command) return std::nullopt;
    if ((*command)[0].string() != "onStatus" || command->size() < 4) continue;
    const media::amf0::Value* code = (*command)[3].Find("code");
    if (code != nullptr && code->string() == "NetConnection.Connect.ReconnectRequest") {
      return (*command)[3];
    }
  }
  return std::nullopt;
}

// Issue 16: a drain. The capable publisher is asked to reconnect elsewhere
// (--drain-redirect), the other streams on until --drain-timeout, new connections are
// refused, /readyz says so, and uringestd stops by itself once empty.
TEST_F(ControlTest, DrainAsksCapablePublishersToReconnectAndClosesTheRestAtTheTimeout) {
  StartServer({"--http-token", kToken, "--drain-redirect", "rtmp://192.0.2.10:1935",
               "--drain-timeout", "2"});
  std::unique_ptr<RtmpClient> capable = LivePublisher(server_->port(), "capable", true);
  std::unique_ptr<RtmpClient> plain = LivePublisher(server_->port(), "plain", false);
  ASSERT_NE(capable, nullptr);
  ASSERT_NE(plain, nullptr);

  EXPECT_EQ(Post("/v1/drain").status, 401);
  EXPECT_EQ(Get("/v1/drain").body.find("\"draining\":false") != std::string::npos, true);
  const HttpReply started = Post("/v1/drain", {absl::StrCat("Authorization: Bearer ", kToken)});
  ASSERT_EQ(started.status, 202) << started.body;
  EXPECT_THAT(started.body, HasSubstr("\"started_now\":true"));
  EXPECT_THAT(started.body, HasSubstr("\"connections\":2"));
  EXPECT_EQ(Post("/v1/drain", {absl::StrCat("Authorization: Bearer ", kToken)}).status, 200);

  std::optional<media::amf0::Value> request = AwaitReconnectRequest(*capable, absl::Seconds(5));
  ASSERT_TRUE(request.has_value()) << ReadFile(server_->log_path());
  ASSERT_NE(request->Find("tcUrl"), nullptr);
  EXPECT_EQ(request->Find("tcUrl")->string(), "rtmp://192.0.2.10:1935/live");
  EXPECT_EQ(request->Find("level")->string(), "status");
  EXPECT_FALSE(AwaitReconnectRequest(*plain, absl::Milliseconds(500)).has_value())
      << "a publisher without the capability was asked to reconnect";

  const HttpReply ready = Get("/readyz");
  EXPECT_EQ(ready.status, 503);
  EXPECT_THAT(ready.body, HasSubstr("draining"));
  const std::string page = Get("/metrics").body;
  EXPECT_EQ(Metric(page, "uringest_draining"), 1.0);
  EXPECT_EQ(Metric(page, "uringest_drain_reconnect_requests_total"), 1.0);
  EXPECT_EQ(RtmpClient::Connect(server_->port()), nullptr) << "a draining node took a connection";

  capable.reset();  // it went to reconnect elsewhere
  EXPECT_TRUE(plain->AwaitClose(absl::Seconds(6))) << "the drain timeout did not close it";
  EXPECT_EQ(server_->process().Wait(absl::Seconds(10)), 0) << ReadFile(server_->log_path());
  const std::string log = ReadFile(server_->log_path());
  EXPECT_THAT(log, HasSubstr("drain: started by POST /v1/drain"));
  EXPECT_THAT(log, HasSubstr("draining: asked to reconnect to rtmp://192.0.2.10:1935/live"));
  EXPECT_THAT(log, HasSubstr("the node is draining and --drain-timeout (2s) has passed"));
  EXPECT_THAT(log, HasSubstr("drain: complete after"));
}

TEST_F(ControlTest, SigUsr1StartsADrain) {
  StartServer();
  server_->process().Signal(SIGUSR1);
  EXPECT_EQ(server_->process().Wait(absl::Seconds(10)), 0) << ReadFile(server_->log_path());
  EXPECT_THAT(ReadFile(server_->log_path()), HasSubstr("drain: started by SIGUSR1"));
}

// A raw request on a fresh connection: what the listener answers (its status line).
std::string RawRequest(int port, const std::string& request) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{.sin_family = AF_INET,
                   .sin_port = htons(uint16_t(port)),
                   .sin_addr = {htonl(INADDR_LOOPBACK)}};
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "connect failed";
  }
  timeval tv{.tv_sec = 5, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  (void)!write(fd, request.data(), request.size());
  std::string answer;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) answer.append(buf, size_t(n));
  close(fd);
  return answer.substr(0, answer.find("\r\n"));
}

TEST_F(ControlTest, BadRequestsGetAJson4xxAndTheListenerGoesOn) {
  StartServer();
  const HttpReply unknown = Get("/nothing/here");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_THAT(unknown.body, HasSubstr("\"error\":\"no such endpoint: /nothing/here\""));
  EXPECT_EQ(Http(dir_, "PUT", base_ + "/metrics").status, 405);
  EXPECT_EQ(Http(dir_, "DELETE", base_ + "/v1/streams/live/cam/kick").status, 405);
  EXPECT_EQ(Get("/v1/streams/live/cam/kick").status, 405);
  const std::string auth = absl::StrCat("Authorization: Bearer ", kToken);
  for (const char* ban : {"abc", "-1", "1e99", "nan"}) {
    const HttpReply bad = Post(absl::StrCat("/v1/streams/live/cam/kick?ban=", ban), {auth});
    EXPECT_EQ(bad.status, 400) << ban;
    EXPECT_THAT(bad.body, HasSubstr("\"error\":\"ban=")) << ban;
  }
  EXPECT_EQ(Post("/v1/streams/nameless/kick", {auth}).status, 400);

  int port = 0;
  ASSERT_TRUE(absl::SimpleAtoi(base_.substr(base_.rfind(':') + 1), &port));
  // Not HTTP at all: libmicrohttpd answers 400 or just closes; either way it serves on.
  EXPECT_THAT(RawRequest(port, "GARBAGE\r\n\r\n"),
              ::testing::AnyOf(HasSubstr(" 400 "), ::testing::IsEmpty()));
  EXPECT_EQ(Get("/healthz").status, 200);
  EXPECT_THAT(RawRequest(port, absl::StrCat("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ",
                                            std::string(200 * 1024, 'a'), "\r\n\r\n")),
              ::testing::AnyOf(HasSubstr(" 431 "), HasSubstr(" 413 "), HasSubstr(" 400 ")));

  // Its own connection cap: idle clients past the per-client cap (64 / 4) are refused,
  // and once they go the listener serves again.
  std::vector<int> idle;
  for (int i = 0; i < 20; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{.sin_family = AF_INET,
                     .sin_port = htons(uint16_t(port)),
                     .sin_addr = {htonl(INADDR_LOOPBACK)}};
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) idle.push_back(fd);
  }
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(Get("/healthz").status, 0) << "a client past the cap was served";
  for (int fd : idle) close(fd);
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(Get("/healthz").status, 200);
  EXPECT_TRUE(server_->process().Running());
}

}  // namespace
}  // namespace uringest::testing
