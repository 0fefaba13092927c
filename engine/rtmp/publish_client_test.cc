// The client side of a publish, against a scripted server: what it sends at each step
// (connect with Enhanced RTMP's fourCcList and capsEx, releaseStream and FCPublish,
// createStream, publish, media, FCUnpublish and deleteStream), decoded from its bytes.
// uringest-load's tests (loadgen/publish_test.cc) run it against the server's own core.

#include "engine/rtmp/publish_client.h"

#include <string>
#include <vector>

#include "engine/rtmp/chunk_reader.h"
#include "engine/rtmp/chunk_writer.h"
#include "engine/rtmp/rtmp_format.h"
#include "gtest/gtest.h"
#include "media/amf0.h"
#include "media/amf0_decoder.h"

namespace uringest::rtmp {
namespace {

namespace amf0 = media::amf0;

struct Sent {
  MessageType type;
  uint32_t chunk_stream;
  uint32_t stream_id;
  uint32_t timestamp;
  std::vector<uint8_t> payload;
  std::string command() const {  // the command's name, "" if not a command
    if (type != MessageType::kCommandAmf0 && type != MessageType::kDataAmf0) return "";
    absl::StatusOr<std::vector<amf0::Value>> v = amf0::DecodeAll(payload);
    return v.ok() && !v->empty() && (*v)[0].is_string() ? (*v)[0].string() : "";
  }
  std::vector<amf0::Value> values() const { return *amf0::DecodeAll(payload); }
};

// A server that answers by hand: the client's messages are decoded as they come.
class ScriptedServer {
 public:
  explicit ScriptedServer(PublishClient* client) : client_(client) {}

  // S0 + S1 + S2, then every message the client sends back.
  void Handshake() {
    std::vector<uint8_t> s(1 + 2 * kHandshakeSize, 5);
    s[0] = kRtmpVersion;
    ASSERT_TRUE(client_->Receive(s).ok());
    std::span<const uint8_t> out = client_->NextSend();
    // C0 + C1 went before; now C2 (= S1) then the messages.
    ASSERT_GE(out.size(), 1 + 2 * kHandshakeSize);
    client_->Sent(1 + 2 * kHandshakeSize);
    Collect(client_->NextSend());
  }
  // Sends the client an AMF0 command on the command chunk stream.
  void Command(const std::vector<amf0::Value>& values, uint32_t stream_id = 0) {
    std::vector<uint8_t> body, wire;
    for (const amf0::Value& v : values) amf0::Encode(v, &body);
    writer_.Write({.chunk_stream_id = kCommandChunkStream,
                   .type = MessageType::kCommandAmf0,
                   .stream_id = stream_id},
                  body, &wire);
    ASSERT_TRUE(client_->Receive(wire).ok());
    Collect(client_->NextSend());
  }
  void Collect(std::span<const uint8_t> bytes) {
    client_->Sent(bytes.size());
    Message m;
    while (!bytes.empty() || reader_.has_pending()) {
      absl::StatusOr<ChunkReader::Result> r = reader_.Read(bytes, &m);
      ASSERT_TRUE(r.ok()) << r.status();
      bytes = bytes.subspan(r->consumed);
      if (!r->message_ready) continue;
      got.push_back({m.header.type,
                     m.header.chunk_stream_id,
                     m.header.stream_id,
                     uint32_t(m.header.timestamp),
                     {m.payload.begin(), m.payload.end()}});
    }
  }
  void Flush() { Collect(client_->NextSend()); }
  std::vector<std::string> Commands() const {
    std::vector<std::string> out;
    for (const Sent& s : got) {
      if (!s.command().empty()) out.push_back(s.command());
    }
    return out;
  }

  std::vector<Sent> got;

 private:
  PublishClient* client_;
  ChunkReader reader_;
  ChunkWriter writer_;
};

TEST(PublishClientTest, PublishesAsFfmpegDoesAndUnpublishes) {
  PublishClient client(
      {.app = "live",
       .stream = "cam7?key=k",
       .tc_url = "rtmp://origin/live",
       .chunk_size = 65536,
       .flash_ver = "FMLE/3.0 (compatible; test)",
       .fc_publish = true,
       .enhanced = {
           .present = true, .fourcc_list = {"hvc1", "mp4a"}, .caps_ex = kCapsExMultitrack}});
  client.Start(7);
  ScriptedServer server(&client);
  server.Handshake();
  ASSERT_EQ(server.Commands(), std::vector<std::string>{"connect"});
  const std::vector<amf0::Value> connect = server.got.back().values();
  ASSERT_EQ(connect.size(), 3u);
  const amf0::Value& props = connect[2];
  EXPECT_EQ(props.FindString("app"), "live");
  EXPECT_EQ(props.FindString("tcUrl"), "rtmp://origin/live");
  EXPECT_EQ(props.FindString("flashVer"), "FMLE/3.0 (compatible; test)");
  EXPECT_EQ(props.FindNumber("capsEx", -1), kCapsExMultitrack);
  const amf0::Value* list = props.Find("fourCcList");
  ASSERT_NE(list, nullptr);
  ASSERT_EQ(list->items().size(), 2u);
  EXPECT_EQ(list->items()[0].string(), "hvc1");

  server.got.clear();
  server.Command({amf0::Value::String("_result"), amf0::Value::Number(1), amf0::Value::Null(),
                  amf0::Value::Null()});
  ASSERT_GE(server.got.size(), 4u);
  EXPECT_EQ(server.got[0].type, MessageType::kSetChunkSize);
  EXPECT_EQ(server.Commands(),
            (std::vector<std::string>{"releaseStream", "FCPublish", "createStream"}));
  EXPECT_EQ(server.got[1].values().at(3).string(), "cam7?key=k");
  EXPECT_EQ(client.chunk_size(), 65536u);

  server.got.clear();
  const double create_tid = 4;  // connect 1, releaseStream 2, FCPublish 3
  server.Command({amf0::Value::String("_result"), amf0::Value::Number(create_tid),
                  amf0::Value::Null(), amf0::Value::Number(1)});
  ASSERT_EQ(server.Commands(), std::vector<std::string>{"publish"});
  EXPECT_EQ(server.got.back().stream_id, 1u);
  EXPECT_EQ(server.got.back().values().at(3).string(), "cam7?key=k");
  EXPECT_EQ(server.got.back().values().at(4).string(), "live");
  EXPECT_FALSE(client.live());

  const amf0::Value info =
      amf0::Value::Object({{"level", amf0::Value::String("status")},
                           {"code", amf0::Value::String("NetStream.Publish.Start")}});
  server.Command(
      {amf0::Value::String("onStatus"), amf0::Value::Number(0), amf0::Value::Null(), info}, 1);
  ASSERT_TRUE(client.live());

  server.got.clear();
  const std::vector<uint8_t> video(100000, 0x17);  // spans chunks at 65536
  std::span<uint8_t> first = client.SendMessage(kVideoChunkStream, MessageType::kVideo, 40, video);
  EXPECT_EQ(first.size(), 65536u);
  first[1] = 0x01;  // written into the copy on the wire
  const std::vector<uint8_t> audio = {0xaf, 0x01, 0x21};
  client.SendMessage(kAudioChunkStream, MessageType::kAudio, 41, audio);
  client.Unpublish();
  EXPECT_EQ(client.state(), PublishClient::State::kUnpublished);
  server.Flush();
  ASSERT_EQ(server.got.size(), 4u);
  EXPECT_EQ(server.got[0].type, MessageType::kVideo);
  EXPECT_EQ(server.got[0].chunk_stream, kVideoChunkStream);
  EXPECT_EQ(server.got[0].timestamp, 40u);
  EXPECT_EQ(server.got[0].stream_id, 1u);
  std::vector<uint8_t> want = video;
  want[1] = 0x01;
  EXPECT_EQ(server.got[0].payload, want);
  EXPECT_EQ(server.got[1].payload, audio);
  EXPECT_EQ(server.got[1].chunk_stream, kAudioChunkStream);
  EXPECT_EQ(server.Commands(), (std::vector<std::string>{"FCUnpublish", "deleteStream"}));
  EXPECT_EQ(server.got[3].values().at(3).number(), 1);
}

TEST(PublishClientTest, PlainConnectAnnouncesNoEnhancedRtmp) {
  PublishClient client({.stream = "x", .tc_url = "rtmp://h/live"});
  client.Start(1);
  ScriptedServer server(&client);
  server.Handshake();
  const amf0::Value props = server.got.back().values().at(2);
  EXPECT_EQ(props.Find("fourCcList"), nullptr);
  EXPECT_EQ(props.Find("capsEx"), nullptr);
  EXPECT_EQ(props.FindString("flashVer"), "FMLE/3.0 (compatible; uringest)");
  server.got.clear();
  server.Command({amf0::Value::String("_result"), amf0::Value::Number(1), amf0::Value::Null(),
                  amf0::Value::Null()});
  EXPECT_EQ(server.Commands(), std::vector<std::string>{"createStream"}) << "no FCPublish";
}

TEST(PublishClientTest, ErrorStatusIsARefusal) {
  PublishClient client({.stream = "x", .tc_url = "rtmp://h/live"});
  client.Start(1);
  ScriptedServer server(&client);
  server.Handshake();
  std::vector<uint8_t> body, wire;
  const amf0::Value info =
      amf0::Value::Object({{"level", amf0::Value::String("error")},
                           {"code", amf0::Value::String("NetConnection.Connect.Rejected")}});
  for (const amf0::Value& v :
       {amf0::Value::String("_error"), amf0::Value::Number(1), amf0::Value::Null(), info}) {
    amf0::Encode(v, &body);
  }
  ChunkWriter writer;
  writer.Write({.chunk_stream_id = kCommandChunkStream, .type = MessageType::kCommandAmf0}, body,
               &wire);
  absl::Status s = client.Receive(wire);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace uringest::rtmp
