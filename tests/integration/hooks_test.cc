// Issue 15: --on-publish-done, with the real uringestd, ffmpeg and curl and an HTTP server
// on loopback (tests/hook_server.h): one notification for every way a publish ends, each
// with its reason and the stream's figures; a failing hook is retried, then given up
// with a log line; a hook that hangs stalls no publisher.

#include <signal.h>

#include <map>
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
#include "media/amf0.h"
#include "media/byte_order.h"
#include "tests/hook_server.h"
#include "tests/integration/ingest_harness.h"
#include "tests/integration/rtmp_client.h"

namespace uringest::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kToken[] = "t0ken";

// A form body's fields.
std::map<std::string, std::string> Fields(const std::string& body) {
  std::map<std::string, std::string> fields;
  for (absl::string_view pair : absl::StrSplit(body, '&')) {
    const size_t eq = pair.find('=');
    if (eq != std::string_view::npos) {
      fields[std::string(pair.substr(0, eq))] = std::string(pair.substr(eq + 1));
    }
  }
  return fields;
}

// Waits for the hook to get the publish_done of live/NAME; its fields, or empty ones.
std::map<std::string, std::string> AwaitDone(HookServer& hook, const std::string& name,
                                             absl::Duration timeout = absl::Seconds(20)) {
  const absl::Time deadline = absl::Now() + timeout;
  do {
    for (const std::string& body : hook.Bodies()) {
      std::map<std::string, std::string> f = Fields(body);
      if (f["call"] == "publish_done" && f["name"] == name) return f;
    }
    absl::SleepFor(absl::Milliseconds(50));
  } while (absl::Now() < deadline);
  return {};
}

// What every notification must carry, for a stream that sent frames.
void ExpectFigures(const std::map<std::string, std::string>& f, const std::string& reason) {
  ASSERT_FALSE(f.empty()) << "no publish_done for reason " << reason;
  EXPECT_EQ(f.at("reason"), reason);
  EXPECT_EQ(f.at("app"), "live");
  EXPECT_EQ(f.at("addr"), "127.0.0.1");
  int port = 0;
  double duration = 0;
  uint64_t bytes = 0, frames = 0;
  EXPECT_TRUE(absl::SimpleAtoi(f.at("port"), &port) && port > 0) << f.at("port");
  EXPECT_TRUE(absl::SimpleAtod(f.at("duration_s"), &duration) && duration > 0.2) << reason;
  EXPECT_TRUE(absl::SimpleAtoi(f.at("bytes"), &bytes) && bytes > 1000) << reason;
  EXPECT_TRUE(absl::SimpleAtoi(f.at("frames"), &frames) && frames > 10) << reason;
}

class PublishDoneTest : public ::testing::Test {
 protected:
  void StartServer(HookServer& hook, std::vector<std::string> extra = {}) {
    extra.insert(extra.end(), {"--on-publish-done", hook.Url(), "--ring-size", "4MiB"});
    server_ = IngestServer::Start(1, dir_, extra);
    ASSERT_NE(server_, nullptr);
  }
  Process Publish(const std::string& name, int seconds) {
    return Process::Spawn(PublishClipArgs(server_->Url("live/" + name), seconds),
                          {.stderr_path = dir_.Path(name + ".log")});
  }
  bool Publishing(const std::string& name) {
    return WaitForStream(server_->ring(), "live/" + name, 20, absl::Seconds(15));
  }

  ScratchDir dir_;
  std::unique_ptr<IngestServer> server_;
};

TEST_F(PublishDoneTest, EveryWayAPublishEndsIsToldWithItsReason) {
  REQUIRE_FFMPEG();
  HookServer hook([](const std::string&) { return 200; });
  StartServer(hook, {"--idle-timeout", "2", "--on-duplicate", "takeover", "--http-listen",
                     "127.0.0.1:0", "--http-token", kToken});

  // The publisher ends it: FCUnpublish and deleteStream.
  Process done = Publish("unpublish", 2);
  EXPECT_EQ(done.Wait(kProcessTimeout), 0);
  ExpectFigures(AwaitDone(hook, "unpublish"), "unpublish");

  // The publisher vanishes: SIGKILL.
  Process killed = Publish("killed", 60);
  ASSERT_TRUE(Publishing("killed"));
  killed.Kill();
  ExpectFigures(AwaitDone(hook, "killed"), "disconnect");

  // The publisher hangs (SIGSTOP): the idle timeout ends it.
  Process stopped = Publish("stopped", 60);
  ASSERT_TRUE(Publishing("stopped"));
  stopped.Signal(SIGSTOP);
  ExpectFigures(AwaitDone(hook, "stopped"), "idle_timeout");
  stopped.Kill();

  // The operator kicks it.
  Process kicked = Publish("kicked", 60);
  ASSERT_TRUE(Publishing("kicked"));
  ASSERT_TRUE(WaitForText(server_->log_path(), "HTTP API: listening on 127.0.0.1:"));
  const std::string log = ReadFile(server_->log_path());
  const size_t at = log.find("HTTP API: listening on ") + 23;
  const std::string address = log.substr(at, log.find(' ', at) - at);
  EXPECT_EQ(RunCommand({"/usr/bin/curl", "-sf", "-X", "POST", "-H",
                        absl::StrCat("Authorization: Bearer ", kToken),
                        absl::StrCat("http://", address, "/v1/streams/live/kicked/kick")},
                       absl::Seconds(20)),
            0);
  ExpectFigures(AwaitDone(hook, "kicked"), "kick");

  // A second publisher takes the name over (--on-duplicate takeover).
  Process first = Publish("dup", 60);
  ASSERT_TRUE(Publishing("dup"));
  Process second = Publish("dup", 2);
  ExpectFigures(AwaitDone(hook, "dup"), "takeover");
  EXPECT_EQ(second.Wait(kProcessTimeout), 0);

  // A protocol error mid-publish: a command message that is not AMF0.
  {
    std::unique_ptr<RtmpClient> client = RtmpClient::Connect(server_->port());
    ASSERT_TRUE(client && client->Handshake() && client->ConnectApp("live"));
    std::optional<uint32_t> id = client->CreateStream();
    ASSERT_TRUE(id.has_value());
    ASSERT_EQ(client->Publish(*id, "broken"), "NetStream.Publish.Start");
    const std::vector<uint8_t> frame(4096, 0x17);
    for (int i = 0; i < 20; ++i) {
      client->Send({.chunk_stream_id = 6,
                    .type = rtmp::MessageType::kVideo,
                    .stream_id = *id,
                    .timestamp = uint64_t(i * 33)},
                   frame);
    }
    absl::SleepFor(absl::Milliseconds(500));  // a duration the notification can show
    const std::vector<uint8_t> garbage(16, 0xff);
    client->Send({.chunk_stream_id = 3, .type = rtmp::MessageType::kCommandAmf0}, garbage);
    client->AwaitClose(absl::Seconds(5));
  }
  ExpectFigures(AwaitDone(hook, "broken"), "error");

  // The server shuts down (SIGTERM) while a stream publishes: told before it exits.
  Process last = Publish("shutdown", 60);
  ASSERT_TRUE(Publishing("shutdown"));
  server_->process().Signal(SIGTERM);
  EXPECT_EQ(server_->process().Wait(absl::Seconds(20)), 0);
  ExpectFigures(AwaitDone(hook, "shutdown", absl::Seconds(1)), "shutdown");
}

// Issue 16: behind a balancer (--proxy-protocol), both hooks name the publisher from the
// PROXY header, not the balancer; a drain's close is told with its own reason.
TEST_F(PublishDoneTest, BehindABalancerTheHooksNameThePublisher) {
  HookServer hook([](const std::string&) { return 200; });
  StartServer(hook, {"--on-publish", hook.Url(), "--proxy-protocol", "--drain-timeout", "1",
                     "--http-listen", "127.0.0.1:0", "--http-token", kToken});
  std::unique_ptr<RtmpClient> client = RtmpClient::Connect(server_->port());
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->SendRaw(media::AsBytes("PROXY TCP4 198.51.100.7 127.0.0.1 40000 1935\r\n")));
  ASSERT_TRUE(client->Handshake());
  ASSERT_TRUE(client->ConnectApp("live"));
  std::optional<uint32_t> id = client->CreateStream();
  ASSERT_TRUE(id.has_value());
  ASSERT_EQ(client->Publish(*id, "behind"), "NetStream.Publish.Start");
  std::map<std::string, std::string> publish;
  for (const std::string& body : hook.Bodies()) {
    if (Fields(body)["call"] == "publish") publish = Fields(body);
  }
  ASSERT_FALSE(publish.empty()) << "no on-publish call";
  EXPECT_EQ(publish["addr"], "198.51.100.7");
  EXPECT_EQ(publish["name"], "behind");

  server_->process().Signal(SIGUSR1);  // drain: it can't be asked, so --drain-timeout
  const std::map<std::string, std::string> done = AwaitDone(hook, "behind");
  ASSERT_FALSE(done.empty()) << ReadFile(server_->log_path());
  EXPECT_EQ(done.at("addr"), "198.51.100.7");
  EXPECT_EQ(done.at("port"), "40000");
  EXPECT_EQ(done.at("reason"), "drain");
  EXPECT_EQ(server_->process().Wait(absl::Seconds(10)), 0);
}

TEST_F(PublishDoneTest, AFailingHookIsRetriedThenGivenUpWithALogLine) {
  REQUIRE_FFMPEG();
  // The first two tries of each notification fail with 503, the third gets 200 ...
  std::atomic<int> calls{0};
  HookServer flaky([&](const std::string& body) {
    if (body.find("name=always") != std::string::npos) return 500;
    return ++calls <= 2 ? 503 : 200;
  });
  StartServer(flaky);
  Process once = Publish("flaky", 2);
  EXPECT_EQ(once.Wait(kProcessTimeout), 0);
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  while (calls < 3 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(calls, 3) << "three tries: 503, 503, 200";
  absl::SleepFor(absl::Seconds(2));
  EXPECT_EQ(calls, 3) << "delivered, yet tried again";

  // ... and one that always fails is given up after 4 tries (1 + 2 + 4 s apart), saying so.
  Process always = Publish("always", 2);
  EXPECT_EQ(always.Wait(kProcessTimeout), 0);
  EXPECT_TRUE(WaitForText(server_->log_path(),
                          "on-publish-done for live/always (unpublish) not delivered: gave up "
                          "after 4 tries; the last answered 500",
                          1, absl::Seconds(20)))
      << ReadFile(server_->log_path());
  size_t tries = 0;
  for (const std::string& body : flaky.Bodies())
    tries += body.find("name=always") != std::string::npos;
  EXPECT_EQ(tries, 4u);
  EXPECT_EQ(ReadFile(server_->log_path()).find("live/flaky (unpublish) not delivered"),
            std::string::npos);
}

TEST_F(PublishDoneTest, AHookThatHangsStallsNoPublisher) {
  REQUIRE_FFMPEG();
  HookServer hanging([](const std::string&) { return 0; });  // never answers
  StartServer(hanging, {"--on-publish-timeout", "3"});
  // Short publishes, one after another, each told to a hook that never answers: each
  // still gets all its frames through (one shard: a stalled shard would hold them).
  for (int i = 0; i < 3; ++i) {
    const std::string name = absl::StrCat("s", i);
    Process cat = StartCat(server_->ring(), "live/" + name, dir_.Path(name + ".flv"),
                           dir_.Path(name + ".cat.log"));
    ASSERT_TRUE(AwaitDirectoryMapped(cat.pid(), server_->ring()));
    Process p = Publish(name, 2);
    EXPECT_EQ(p.Wait(kProcessTimeout), 0);
    EXPECT_EQ(cat.Wait(kProcessTimeout), 0);
    EXPECT_EQ(CountVideoFrames(dir_.Path(name + ".flv")), 60) << name;
  }
  EXPECT_GE(hanging.Bodies().size(), 3u);
}

}  // namespace
}  // namespace uringest::testing
