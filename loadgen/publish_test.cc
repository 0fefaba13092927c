// The client's bytes run through the server's own protocol core (rtmp::ServerConnection)
// and the server's answers back, in every split, so the two sides of the core agree.

#include "engine/rtmp/publish_client.h"

#include <algorithm>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/rtmp/server_connection.h"
#include "gtest/gtest.h"
#include "loadgen/media_source.h"
#include "loadgen/stamp.h"
#include "media/amf0.h"
#include "tests/rtmp_testing.h"

namespace uringest::loadgen {
namespace {

using rtmp::Frame;
using rtmp::FrameSink;
using rtmp::PublishRegistry;
using rtmp::StreamName;

std::string Key(StreamName name) { return std::string(name.app) + "/" + std::string(name.name); }

class RecordingSink : public FrameSink {
 public:
  absl::Status OnStreamBegin(uint32_t, StreamName name) override {
    began.push_back(Key(name));
    return absl::OkStatus();
  }
  void OnFrame(const Frame& frame) override {
    frames.push_back({frame.type, frame.dts, frame.sequence_header, testing::PayloadBytes(frame)});
  }
  void OnStreamEnd(uint32_t) override { ++ended; }

  struct Got {
    rtmp::FrameType type;
    uint64_t dts;
    bool sequence_header;
    std::vector<uint8_t> payload;
  };
  std::vector<std::string> began;
  std::vector<Got> frames;
  int ended = 0;
};

class NameSet : public PublishRegistry {
 public:
  absl::Status Claim(StreamName name) override {
    return names.insert(Key(name)).second ? absl::OkStatus()
                                          : absl::AlreadyExistsError(Key(name) + " is taken");
  }
  void Release(StreamName name) override { names.erase(Key(name)); }
  std::set<std::string> names;
};

// Client and server core joined back to back; bytes cross in pieces of `split` bytes.
class Pair {
 public:
  Pair(uint32_t server_chunk, uint32_t client_chunk, size_t split, rtmp::EnhancedCaps enhanced = {})
      : client_({.app = "live",
                 .stream = "load0",
                 .tc_url = "rtmp://127.0.0.1/live",
                 .chunk_size = client_chunk,
                 .enhanced = std::move(enhanced)}),
        server_(ServerOptions(server_chunk), &sink_, &names_),
        split_(split) {}

  // Moves bytes both ways until neither side has anything to say.
  absl::Status Pump() {
    for (;;) {
      std::span<const uint8_t> up = client_.NextSend();
      std::span<const uint8_t> down = server_.output();
      if (up.empty() && down.empty()) return absl::OkStatus();
      const std::vector<uint8_t> up_copy(up.begin(), up.end());
      client_.Sent(up.size());
      for (size_t at = 0; at < up_copy.size(); at += split_) {
        const size_t n = std::min(split_, up_copy.size() - at);
        if (absl::Status s = server_.Receive({up_copy.data() + at, n}); !s.ok()) return s;
      }
      const std::vector<uint8_t> down_copy(server_.output().begin(), server_.output().end());
      server_.TakeOutput(down_copy.size());
      for (size_t at = 0; at < down_copy.size(); at += split_) {
        const size_t n = std::min(split_, down_copy.size() - at);
        if (absl::Status s = client_.Receive({down_copy.data() + at, n}); !s.ok()) return s;
      }
    }
  }

  // Hands the client a command from the server on the NetConnection (message stream 0,
  // chunk stream 3), as the server's drain sends a Reconnect Request, in `split` pieces.
  absl::Status ServerCommand(std::span<const uint8_t> body, uint32_t server_chunk) {
    rtmp::ChunkWriter writer;
    writer.set_chunk_size(server_chunk);
    std::vector<uint8_t> bytes;
    writer.Write({.chunk_stream_id = rtmp::kCommandChunkStream,
                  .type = rtmp::MessageType::kCommandAmf0,
                  .stream_id = 0},
                 body, &bytes);
    for (size_t at = 0; at < bytes.size(); at += split_) {
      const size_t n = std::min(split_, bytes.size() - at);
      if (absl::Status s = client_.Receive({bytes.data() + at, n}); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  rtmp::PublishClient& client() { return client_; }
  rtmp::ServerConnection& server() { return server_; }
  RecordingSink& sink() { return sink_; }
  NameSet& names() { return names_; }

 private:
  static rtmp::ServerConnectionOptions ServerOptions(uint32_t chunk) {
    rtmp::ServerConnectionOptions options;
    options.session.chunk_size = chunk;
    options.handshake.random = [](std::span<uint8_t> out) { std::fill(out.begin(), out.end(), 7); };
    return options;
  }

  rtmp::PublishClient client_;
  RecordingSink sink_;
  NameSet names_;
  rtmp::ServerConnection server_;
  size_t split_;
};

// server's announced chunk size, client's --chunk-size (0: mirror), bytes per piece.
class ClientServerTest : public ::testing::TestWithParam<std::tuple<uint32_t, uint32_t, size_t>> {};

TEST_P(ClientServerTest, PublishesStampedFramesThatTheServerCoreReassembles) {
  const auto [server_chunk, client_chunk, split] = GetParam();
  Pair pair(server_chunk, client_chunk, split);
  pair.client().Start(42);
  ASSERT_TRUE(pair.Pump().ok());
  ASSERT_TRUE(pair.client().live());
  EXPECT_EQ(pair.client().chunk_size(), client_chunk ? client_chunk : server_chunk);
  ASSERT_EQ(pair.sink().began, std::vector<std::string>{"live/load0"});

  std::unique_ptr<MediaSource> src = MediaSource::Synthetic(1'000'000, 30);
  pair.client().SendMetadata(src->metadata());
  for (const MediaFrame& h : src->headers()) SendFrame(&pair.client(), h, nullptr);
  constexpr uint64_t kFrames = 70;  // past one GOP
  for (uint64_t i = 0; i < kFrames; ++i) {
    const Stamp stamp{.run = 9, .publisher = 3, .sequence = i + 1, .send_ns = 1000 + i};
    SendFrame(&pair.client(), src->At(i), &stamp);
  }
  ASSERT_TRUE(pair.Pump().ok());

  const auto& got = pair.sink().frames;
  ASSERT_EQ(got.size(), 2 + kFrames) << "onMetaData, sequence header, frames";
  EXPECT_EQ(got[0].type, rtmp::FrameType::kData);
  EXPECT_TRUE(got[1].sequence_header);
  for (uint64_t i = 0; i < kFrames; ++i) {
    const auto& f = got[2 + i];
    const MediaFrame sent = src->At(i);
    EXPECT_EQ(f.dts, sent.timestamp_ms);
    ASSERT_EQ(f.payload.size(), sent.body.size());
    std::optional<Stamp> stamp = ReadStamp(f.payload);
    ASSERT_TRUE(stamp.has_value()) << "frame " << i;
    EXPECT_EQ(stamp->sequence, i + 1);
    EXPECT_EQ(stamp->publisher, 3u);
    EXPECT_EQ(stamp->send_ns, 1000 + i);
    EXPECT_TRUE(std::equal(f.payload.begin() + kStampedMin, f.payload.end(),
                           sent.body.begin() + kStampedMin))
        << "the rest of the shared body goes out unchanged";
  }
}

INSTANTIATE_TEST_SUITE_P(
    ChunkSizesAndSplits, ClientServerTest,
    ::testing::Combine(::testing::Values(128u, 4096u, 65536u), ::testing::Values(0u, 128u, 1000u),
                       ::testing::Values(size_t{1}, size_t{1000}, size_t{1} << 20)),
    [](const auto& info) {
      return absl::StrCat("server", std::get<0>(info.param), "_client", std::get<1>(info.param),
                          "_split", std::get<2>(info.param));
    });

TEST(PublishClientTest, RefusedPublishNameIsAnError) {
  Pair pair(4096, 0, 4096);
  pair.names().names.insert("live/load0");  // someone else publishes it
  pair.client().Start(1);
  absl::Status s = pair.Pump();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("NetStream.Publish.BadName"), std::string::npos) << s;
  EXPECT_FALSE(pair.client().live());
}

// onStatus(0, null, {level, code, description[, tcUrl]}), as E-RTMP v2 has it.
std::vector<uint8_t> StatusCommand(std::string_view level, std::string_view code,
                                   std::string_view tc_url) {
  namespace amf0 = media::amf0;
  std::vector<uint8_t> body;
  amf0::EncodeString("onStatus", &body);
  amf0::EncodeNumber(0, &body);
  amf0::EncodeNull(&body);
  amf0::EncodeObjectStart(&body);
  amf0::EncodeProperty("level", amf0::Value::String(std::string(level)), &body);
  amf0::EncodeProperty("code", amf0::Value::String(std::string(code)), &body);
  amf0::EncodeProperty("description",
                       amf0::Value::String("the node is draining; publish elsewhere, please "
                                           "(a description longer than one 128-byte chunk)"),
                       &body);
  if (!tc_url.empty())
    amf0::EncodeProperty("tcUrl", amf0::Value::String(std::string(tc_url)), &body);
  amf0::EncodeObjectEnd(&body);
  return body;
}

rtmp::EnhancedCaps FollowsReconnect() {
  rtmp::EnhancedCaps caps;
  caps.present = true;
  caps.caps_ex = rtmp::kCapsExReconnect;
  return caps;
}

TEST(PublishClientTest, ConnectAnnouncesReconnectInCapsEx) {
  Pair pair(4096, 0, 4096, FollowsReconnect());
  pair.client().Start(1);
  ASSERT_TRUE(pair.Pump().ok());
  ASSERT_TRUE(pair.client().live());
  EXPECT_TRUE(pair.server().session().client_caps().present);
  EXPECT_EQ(pair.server().session().client_caps().caps_ex & rtmp::kCapsExReconnect,
            rtmp::kCapsExReconnect);
}

TEST(PublishClientTest, WithoutTheCapabilityConnectAnnouncesNothing) {
  Pair pair(4096, 0, 4096);
  pair.client().Start(1);
  ASSERT_TRUE(pair.Pump().ok());
  EXPECT_FALSE(pair.server().session().client_caps().present);
}

// server's chunk size, bytes per piece.
class ReconnectRequestTest : public ::testing::TestWithParam<std::tuple<uint32_t, size_t>> {};

TEST_P(ReconnectRequestTest, RequestWhileLiveIsKeptAndTheConnectionGoesOn) {
  const auto [server_chunk, split] = GetParam();
  Pair pair(server_chunk, 0, split, FollowsReconnect());
  pair.client().Start(3);
  ASSERT_TRUE(pair.Pump().ok());
  ASSERT_TRUE(pair.client().live());
  EXPECT_FALSE(pair.client().reconnect_request().has_value());
  ASSERT_TRUE(pair.ServerCommand(StatusCommand("status", rtmp::kReconnectRequestCode,
                                               "rtmp://[::1]:1936/live"),
                                 server_chunk)
                  .ok());
  ASSERT_TRUE(pair.client().reconnect_request().has_value());
  EXPECT_EQ(pair.client().reconnect_request()->tc_url, "rtmp://[::1]:1936/live");
  EXPECT_NE(pair.client().reconnect_request()->description.find("draining"), std::string::npos);
  EXPECT_TRUE(pair.client().live()) << "the client leaves when it chooses";

  // Media still flows on the old connection, then the orderly end.
  std::unique_ptr<MediaSource> src = MediaSource::Synthetic(1'000'000, 30);
  for (const MediaFrame& h : src->headers()) SendFrame(&pair.client(), h, nullptr);
  SendFrame(&pair.client(), src->At(0), nullptr);
  pair.client().Unpublish();
  ASSERT_TRUE(pair.Pump().ok());
  EXPECT_EQ(pair.sink().frames.size(), 2u);
  EXPECT_EQ(pair.sink().ended, 1);
}

TEST_P(ReconnectRequestTest, RequestWithoutTcUrlMeansTheSameAddress) {
  const auto [server_chunk, split] = GetParam();
  Pair pair(server_chunk, 0, split, FollowsReconnect());
  pair.client().Start(3);
  ASSERT_TRUE(pair.Pump().ok());
  ASSERT_TRUE(
      pair.ServerCommand(StatusCommand("status", rtmp::kReconnectRequestCode, ""), server_chunk)
          .ok());
  ASSERT_TRUE(pair.client().reconnect_request().has_value());
  EXPECT_EQ(pair.client().reconnect_request()->tc_url, "");
}

INSTANTIATE_TEST_SUITE_P(ChunkSizesAndSplits, ReconnectRequestTest,
                         ::testing::Combine(::testing::Values(128u, 4096u),
                                            ::testing::Values(size_t{1}, size_t{4096})),
                         [](const auto& info) {
                           return absl::StrCat("server", std::get<0>(info.param), "_split",
                                               std::get<1>(info.param));
                         });

TEST(PublishClientTest, RequestBeforePublishStartIsKeptToo) {
  Pair pair(4096, 0, 4096, FollowsReconnect());
  pair.client().Start(3);
  // Only the handshake: the client has sent connect and waits for its _result.
  std::span<const uint8_t> c0c1 = pair.client().NextSend();
  const std::vector<uint8_t> up(c0c1.begin(), c0c1.end());
  pair.client().Sent(up.size());
  ASSERT_TRUE(pair.server().Receive(up).ok());
  const std::vector<uint8_t> down(pair.server().output().begin(), pair.server().output().end());
  pair.server().TakeOutput(down.size());
  ASSERT_TRUE(pair.client().Receive(down).ok());
  ASSERT_EQ(pair.client().state(), rtmp::PublishClient::State::kConnecting);
  ASSERT_TRUE(pair.ServerCommand(StatusCommand("status", rtmp::kReconnectRequestCode,
                                               "rtmp://b.example:1940/live"),
                                 128)  // no Set Chunk Size yet
                  .ok());
  EXPECT_EQ(pair.client().reconnect_request()->tc_url, "rtmp://b.example:1940/live");
}

TEST(PublishClientTest, OtherErrorStatusIsStillARefusal) {
  Pair pair(4096, 0, 4096, FollowsReconnect());
  pair.client().Start(3);
  ASSERT_TRUE(pair.Pump().ok());
  absl::Status s =
      pair.ServerCommand(StatusCommand("error", "NetConnection.Connect.Rejected", ""), 4096);
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(pair.client().reconnect_request().has_value());
}

TEST(PublishClientTest, OutputStaysPutWhileInFlight) {
  rtmp::PublishClient client({.stream = "x"});
  client.Start(5);
  std::span<const uint8_t> first = client.NextSend();
  ASSERT_EQ(first.size(), 1 + rtmp::kHandshakeSize);
  const uint8_t* data = first.data();
  client.Sent(100);
  std::span<const uint8_t> rest = client.NextSend();
  EXPECT_EQ(rest.data(), data + 100);
  EXPECT_EQ(rest.size(), first.size() - 100);
  EXPECT_EQ(client.pending_bytes(), rest.size());
  client.Sent(rest.size());
  EXPECT_TRUE(client.NextSend().empty());
}

TEST(PublishClientTest, WrongServerVersionIsRefused) {
  rtmp::PublishClient client({.stream = "x"});
  client.Start(5);
  const uint8_t s0 = 6;  // RTMPE
  EXPECT_FALSE(client.Receive({&s0, 1}).ok());
}

}  // namespace
}  // namespace uringest::loadgen
