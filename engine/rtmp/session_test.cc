#include "engine/rtmp/session.h"

#include <cstdint>
#include <cstdlib>
#include <new>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "engine/rtmp/aggregate.h"
#include "engine/rtmp/chunk_reader.h"
#include "engine/rtmp/rtmp_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "media/amf0.h"
#include "media/amf0_decoder.h"
#include "media/byte_order.h"
#include "media/flv_format.h"
#include "media/media_tag.h"
#include "tests/rtmp_testing.h"

// Counts heap allocations while g_count_allocations is set, to prove the media path
// allocates nothing. (GCC 12 misreads the replaced new/delete pair once inlined.)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
namespace {
bool g_count_allocations = false;
size_t g_allocations = 0;
}  // namespace

void* operator new(size_t size) {
  if (g_count_allocations) ++g_allocations;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace uringest::rtmp {
namespace {

using media::amf0::Value;
using Bytes = std::vector<uint8_t>;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// ---- Fakes ----

struct Sent {
  MessageHeader header;
  Bytes payload;

  std::vector<Value> Amf() const {
    absl::StatusOr<std::vector<Value>> values = media::amf0::DecodeAll(payload);
    EXPECT_TRUE(values.ok()) << values.status();
    return values.ok() ? *std::move(values) : std::vector<Value>{};
  }
  std::string Name() const {
    std::vector<Value> v = Amf();
    return !v.empty() && v[0].is_string() ? v[0].string() : "";
  }
  // The onStatus / _error info object's code.
  std::string Code() const {
    std::vector<Value> v = Amf();
    return v.size() > 3 ? std::string(v[3].FindString("code")) : "";
  }
};

class FakeSender : public MessageSender {
 public:
  void Send(const MessageHeader& header, std::span<const uint8_t> payload) override {
    sent.push_back({header, Bytes(payload.begin(), payload.end())});
  }
  std::vector<Sent> Take() { return std::exchange(sent, {}); }
  std::vector<Sent> sent;
};

struct Event {
  enum Kind { kBegin, kFrame, kEnd } kind = kBegin;
  uint32_t stream_id = 0;
  std::string app = {};  // kBegin
  std::string name = {};
  Frame frame = {};  // kFrame; its payload is cleared, see `payload`
  Bytes payload = {};
};

class RecordingSink : public FrameSink {
 public:
  absl::Status OnStreamBegin(uint32_t stream_id, StreamName name) override {
    if (!refusal.ok()) return refusal;
    events.push_back({.kind = Event::kBegin,
                      .stream_id = stream_id,
                      .app = std::string(name.app),
                      .name = std::string(name.name)});
    return absl::OkStatus();
  }
  void OnFrame(const Frame& frame) override {
    Event e{.kind = Event::kFrame, .stream_id = frame.stream_id, .frame = frame};
    e.frame.payload = {};
    e.frame.pieces = {};
    e.payload = testing::PayloadBytes(frame);
    events.push_back(std::move(e));
  }
  void OnStreamEnd(uint32_t stream_id) override {
    events.push_back({.kind = Event::kEnd, .stream_id = stream_id});
  }
  std::vector<Event> Frames() const {
    std::vector<Event> frames;
    for (const Event& e : events) {
      if (e.kind == Event::kFrame) frames.push_back(e);
    }
    return frames;
  }
  std::vector<Event> events;
  absl::Status refusal;  // not OK: OnStreamBegin refuses every stream with it
};

class InMemoryRegistry : public PublishRegistry {
 public:
  absl::Status Claim(StreamName name) override {
    return claimed.insert(Key(name)).second
               ? absl::OkStatus()
               : absl::AlreadyExistsError(Key(name) + " is already publishing");
  }
  void Release(StreamName name) override {
    EXPECT_EQ(claimed.erase(Key(name)), 1u) << "released a name never claimed: " << Key(name);
    ++releases;
  }
  static std::string Key(StreamName name) {
    return std::string(name.app) + "/" + std::string(name.name);
  }
  std::set<std::string> claimed;
  int releases = 0;
};

// ---- Payload builders ----

Value Obj(std::vector<Value::Property> properties) { return Value::Object(std::move(properties)); }
Value Str(std::string s) { return Value::String(std::move(s)); }
Value Num(double n) { return Value::Number(n); }

Bytes Amf(const std::vector<Value>& values) {
  Bytes out;
  for (const Value& v : values) media::amf0::Encode(v, &out);
  return out;
}

Value ConnectObject(std::string app = "live") {
  return Obj({{"app", Str(std::move(app))},
              {"type", Str("nonprivate")},
              {"flashVer", Str("FMLE/3.0 (compatible; Lavf60.16.100)")},
              {"tcUrl", Str("rtmp://127.0.0.1:1935/live")}});
}

// The AVC sequence header of ffmpeg's libx264 (High profile, level 3.1) and the AAC-LC
// 44.1 kHz stereo AudioSpecificConfig, with their FLV tag header bytes.
const Bytes kAvcSequenceHeader = {
    0x17, 0x00, 0x00, 0x00, 0x00, 0x01, 0x64, 0x00, 0x1F, 0xFF, 0xE1, 0x00, 0x19, 0x67, 0x64, 0x00,
    0x1F, 0xAC, 0xD9, 0x40, 0x50, 0x05, 0xBB, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00,
    0x03, 0x03, 0xC0, 0xF1, 0x83, 0x19, 0x60, 0x01, 0x00, 0x06, 0x68, 0xEB, 0xE3, 0xCB, 0x22, 0xC0};
const Bytes kAacSequenceHeader = {0xAF, 0x00, 0x12, 0x10};
const Bytes kAvcKeyframe = {0x17, 0x01, 0x00, 0x00, 0x50, 0x00, 0x00, 0x00, 0x05, 0x65, 0x88};
const Bytes kAvcInterFrame = {0x27, 0x01, 0x00, 0x00, 0x28, 0x00, 0x00, 0x00, 0x03, 0x41, 0x9A};
const Bytes kAacFrame = {0xAF, 0x01, 0x21, 0x10, 0x04, 0x60};

// ---- Fixture ----

class SessionTest : public ::testing::Test {
 protected:
  SessionTest() { Reset({}); }

  void Reset(const SessionOptions& options) {
    session_.reset();
    session_ = std::make_unique<Session>(options, &sender_, &sink_, &registry_);
    sender_.sent.clear();
  }

  absl::Status Deliver(MessageType type, uint32_t stream_id, Bytes payload,
                       uint64_t timestamp = 0) {
    payloads_.push_back(std::move(payload));  // keep it alive for views
    return session_->OnMessage(Message{.header = {.chunk_stream_id = 3,
                                                  .type = type,
                                                  .stream_id = stream_id,
                                                  .timestamp = timestamp},
                                       .payload = payloads_.back()});
  }
  absl::Status Command(const std::vector<Value>& values, uint32_t stream_id = 0) {
    return Deliver(MessageType::kCommandAmf0, stream_id, Amf(values));
  }
  absl::Status Video(uint32_t stream_id, Bytes body, uint64_t timestamp = 0) {
    return Deliver(MessageType::kVideo, stream_id, std::move(body), timestamp);
  }
  absl::Status Audio(uint32_t stream_id, Bytes body, uint64_t timestamp = 0) {
    return Deliver(MessageType::kAudio, stream_id, std::move(body), timestamp);
  }

  void Connect() {
    ASSERT_TRUE(Command({Str("connect"), Num(1), ConnectObject()}).ok());
    sender_.sent.clear();
  }
  // createStream and publish `name`; returns the stream id.
  uint32_t Publish(std::string name = "test") {
    EXPECT_TRUE(Command({Str("createStream"), Num(4), Value::Null()}).ok());
    const std::vector<Value> result = sender_.sent.back().Amf();
    EXPECT_EQ(sender_.sent.back().Name(), "_result");
    const uint32_t id = uint32_t(result.at(3).number());
    EXPECT_TRUE(Command({Str("publish"), Num(5), Value::Null(), Str(name), Str("live")}, id).ok());
    sender_.sent.clear();
    return id;
  }

  FakeSender sender_;
  RecordingSink sink_;
  InMemoryRegistry registry_;
  std::vector<Bytes> payloads_;
  std::unique_ptr<Session> session_;
};

// ---- connect ----

TEST_F(SessionTest, ConnectIsAnsweredWithWindowBandwidthChunkSizeThenResult) {
  ASSERT_TRUE(Command({Str("connect"), Num(1), ConnectObject()}).ok());
  ASSERT_THAT(sender_.sent, SizeIs(4));
  const Sent& window = sender_.sent[0];
  EXPECT_EQ(window.header.type, MessageType::kWindowAckSize);
  EXPECT_THAT(window.payload, ElementsAre(0x00, 0x26, 0x25, 0xA0));  // 2,500,000
  const Sent& bandwidth = sender_.sent[1];
  EXPECT_EQ(bandwidth.header.type, MessageType::kSetPeerBandwidth);
  EXPECT_THAT(bandwidth.payload, ElementsAre(0x00, 0x26, 0x25, 0xA0, 2));  // dynamic
  const Sent& chunk = sender_.sent[2];
  EXPECT_EQ(chunk.header.type, MessageType::kSetChunkSize);
  EXPECT_THAT(chunk.payload, ElementsAre(0x00, 0x01, 0x00, 0x00));  // 65536
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(sender_.sent[i].header.chunk_stream_id, kControlChunkStream);
    EXPECT_EQ(sender_.sent[i].header.stream_id, 0u);
  }
  const Sent& result = sender_.sent[3];
  EXPECT_EQ(result.header.type, MessageType::kCommandAmf0);
  EXPECT_EQ(result.header.chunk_stream_id, kCommandChunkStream);
  EXPECT_EQ(result.header.stream_id, 0u);
  EXPECT_THAT(
      result.Amf(),
      ElementsAre(
          Str("_result"), Num(1),
          Obj({{"fmsVer", Str("FMS/3,0,1,123")}, {"capabilities", Num(31)}, {"mode", Num(1)}}),
          Obj({{"level", Str("status")},
               {"code", Str("NetConnection.Connect.Success")},
               {"description", Str("Connection succeeded.")},
               {"objectEncoding", Num(0)}})));
  EXPECT_TRUE(session_->connected());
}

TEST_F(SessionTest, ConnectOptionsAreAnnounced) {
  Reset({.window_ack_size = 5'000'000, .peer_bandwidth = 1'000, .chunk_size = 4096});
  ASSERT_TRUE(Command({Str("connect"), Num(1), ConnectObject()}).ok());
  ASSERT_THAT(sender_.sent, SizeIs(4));
  EXPECT_THAT(sender_.sent[0].payload, ElementsAre(0x00, 0x4C, 0x4B, 0x40));
  EXPECT_THAT(sender_.sent[1].payload, ElementsAre(0x00, 0x00, 0x03, 0xE8, 2));
  EXPECT_THAT(sender_.sent[2].payload, ElementsAre(0x00, 0x00, 0x10, 0x00));
}

TEST_F(SessionTest, ConnectRemembersAppTcUrlFlashVerAndEchoesObjectEncoding) {
  Value object = Obj({{"app", Str("live/?key=secret")},
                      {"flashVer", Str("FMLE/3.0")},
                      {"tcUrl", Str("rtmp://host/live/?key=secret")},
                      {"objectEncoding", Num(3)}});
  ASSERT_TRUE(Command({Str("connect"), Num(1), object}).ok());
  EXPECT_EQ(session_->app(), "live");
  EXPECT_EQ(session_->app_query(), "key=secret");
  EXPECT_EQ(session_->tc_url(), "rtmp://host/live/?key=secret");
  EXPECT_EQ(session_->flash_ver(), "FMLE/3.0");
  EXPECT_EQ(session_->object_encoding(), 3);
  EXPECT_EQ(sender_.sent.back().Amf().at(3).FindNumber("objectEncoding", -1), 3);
}

// OBS 30's connect (E-RTMP v1 and v2): fourCcList, the per-codec info maps, capsEx.
TEST_F(SessionTest, EnhancedConnectIsAnsweredWithForwardCapabilities) {
  Value object = ConnectObject();
  std::vector<Value::Property> props = object.properties();
  props.emplace_back("fourCcList", Value::StrictArray({Str("av01"), Str("hvc1"), Str("avc1"),
                                                       Str("too long"), Str("*")}));
  props.emplace_back("videoFourCcInfoMap",
                     Obj({{"hvc1", Num(kFourCcCanEncode)}, {"av01", Num(kFourCcCanEncode)}}));
  props.emplace_back("audioFourCcInfoMap", Obj({{"Opus", Num(kFourCcCanEncode)}}));
  props.emplace_back("capsEx", Num(kCapsExReconnect | kCapsExMultitrack));
  ASSERT_TRUE(Command({Str("connect"), Num(1), Obj(props)}).ok());
  const EnhancedCaps& caps = session_->client_caps();
  EXPECT_TRUE(caps.present);
  EXPECT_THAT(caps.fourcc_list, ElementsAre("av01", "hvc1", "avc1", "*"));
  EXPECT_THAT(caps.video_fourccs, ElementsAre("hvc1", "av01"));
  EXPECT_THAT(caps.audio_fourccs, ElementsAre("Opus"));
  EXPECT_EQ(caps.caps_ex, kCapsExReconnect | kCapsExMultitrack);

  const std::vector<Value> result = sender_.sent.back().Amf();
  ASSERT_THAT(result, SizeIs(4));
  const Value& server = result[2];
  EXPECT_EQ(server.FindString("fmsVer"), "FMS/3,0,1,123");
  const Value* list = server.Find("fourCcList");
  ASSERT_NE(list, nullptr);
  EXPECT_THAT(list->items(), ElementsAre(Str("av01"), Str("hvc1"), Str("avc1"), Str("*")));
  const Value* video = server.Find("videoFourCcInfoMap");
  ASSERT_NE(video, nullptr);
  for (const char* fourcc : {"*", "av01", "vp09", "vp08", "hvc1", "avc1", "vvc1"}) {
    EXPECT_EQ(video->FindNumber(fourcc, -1), kFourCcCanForward) << fourcc;
  }
  const Value* audio = server.Find("audioFourCcInfoMap");
  ASSERT_NE(audio, nullptr);
  for (const char* fourcc : {"*", "Opus", "fLaC", "ac-3", "ec-3", ".mp3", "mp4a"}) {
    EXPECT_EQ(audio->FindNumber(fourcc, -1), kFourCcCanForward) << fourcc;
  }
  // Reconnect (a drain asks for one), Multitrack, ModEx, TimestampNanoOffset.
  EXPECT_EQ(server.FindNumber("capsEx", -1), 15);
}

TEST_F(SessionTest, ReconnectRequestGoesOnlyToAClientThatAnnouncedIt) {
  Value object = ConnectObject();
  std::vector<Value::Property> props = object.properties();
  props.emplace_back("fourCcList", Value::StrictArray({Str("avc1")}));
  props.emplace_back("capsEx", Num(kCapsExReconnect));
  ASSERT_TRUE(Command({Str("connect"), Num(1), Obj(props)}).ok());
  Publish();
  const size_t before = sender_.sent.size();
  EXPECT_TRUE(session_->RequestReconnect("rtmp://10.0.0.3:1935/live", "draining"));
  ASSERT_EQ(sender_.sent.size(), before + 1);
  const Sent& request = sender_.sent.back();
  EXPECT_EQ(request.header.stream_id, 0u);  // the NetConnection's
  EXPECT_EQ(request.header.type, MessageType::kCommandAmf0);
  const std::vector<Value> amf = request.Amf();
  ASSERT_THAT(amf, SizeIs(4));
  EXPECT_EQ(amf[0], Str("onStatus"));
  EXPECT_EQ(amf[1], Num(0));
  EXPECT_TRUE(amf[2].is_null());
  EXPECT_EQ(amf[3].FindString("level"), "status");
  EXPECT_EQ(amf[3].FindString("code"), "NetConnection.Connect.ReconnectRequest");
  EXPECT_EQ(amf[3].FindString("description"), "draining");
  EXPECT_EQ(amf[3].FindString("tcUrl"), "rtmp://10.0.0.3:1935/live");
  // Without a URL the client reconnects to the one it used: no tcUrl at all.
  EXPECT_TRUE(session_->RequestReconnect("", "again"));
  EXPECT_EQ(sender_.sent.back().Amf()[3].Find("tcUrl"), nullptr);
}

TEST_F(SessionTest, NoReconnectRequestWithoutTheCapability) {
  Connect();
  Publish();
  const size_t before = sender_.sent.size();
  EXPECT_FALSE(session_->RequestReconnect("rtmp://10.0.0.3/live", "draining"));
  EXPECT_EQ(sender_.sent.size(), before);
  session_->Close();
  EXPECT_FALSE(session_->RequestReconnect("", "closed"));
}

TEST_F(SessionTest, LegacyConnectGetsNoEnhancedProperties) {
  ASSERT_TRUE(Command({Str("connect"), Num(1), ConnectObject()}).ok());
  EXPECT_FALSE(session_->client_caps().present);
  const std::vector<Value> answer = sender_.sent.back().Amf();
  ASSERT_GE(answer.size(), 3u);
  const Value& server = answer[2];
  EXPECT_EQ(server.Find("capsEx"), nullptr);
  EXPECT_EQ(server.Find("videoFourCcInfoMap"), nullptr);
}

TEST_F(SessionTest, EnhancedMultitrackFrameCarriesTrackAndFlags) {
  Connect();
  const uint32_t id = Publish();
  // ExHeader | key frame (1) | Multitrack (6); OneTrack (0) | SequenceStart (0); "hvc1";
  // track id 2; then an HEVCDecoderConfigurationRecord's first bytes.
  ASSERT_TRUE(Video(id, Bytes{0x96, 0x00, 'h', 'v', 'c', '1', 0x02, 0x01, 0x01}).ok());
  // Command frame (5) with CodedFrames: videoCommand 1 (StartSeek).
  ASSERT_TRUE(Video(id, Bytes{0xD1, 0x01}).ok());
  const std::vector<Event> frames = sink_.Frames();
  ASSERT_THAT(frames, SizeIs(2));
  EXPECT_EQ(frames[0].frame.codec, media::kFourCcHevc);
  EXPECT_TRUE(frames[0].frame.ex_header);
  EXPECT_TRUE(frames[0].frame.sequence_header);
  EXPECT_EQ(frames[0].frame.track_id, 2);
  EXPECT_FALSE(frames[0].frame.many_tracks);
  EXPECT_TRUE(frames[1].frame.command);
  EXPECT_FALSE(frames[1].frame.keyframe);
}

// A ManyTracks keyframe larger than a chunk arrives as its chunks' payloads (Message::
// pieces, the gather path): the first piece ends inside track 0, yet the frame is one
// of several tracks, so that consumers split it per track.
TEST_F(SessionTest, ManyTracksMessageInPiecesIsFlaggedFromItsHeader) {
  Connect();
  const uint32_t id = Publish();
  // ExHeader | key frame | Multitrack; ManyTracks | CodedFramesX; "av01"; track 0 of 6
  // bytes, track 1 of 2 bytes. The first piece holds track 0's first 2 bytes only.
  const Bytes first = {0x96, 0x13, 'a', 'v', '0', '1', 0x00, 0x00, 0x00, 0x06, 0x12, 0x00};
  const Bytes rest = {0x0A, 0x0B, 0x0C, 0x0D, 0x01, 0x00, 0x00, 0x02, 0x32, 0x10};
  const std::span<const uint8_t> pieces[] = {first, rest};
  ASSERT_TRUE(
      session_
          ->OnMessage(Message{
              .header = {.chunk_stream_id = 6, .type = MessageType::kVideo, .stream_id = id},
              .payload = first,
              .pieces = pieces})
          .ok());
  const std::vector<Event> frames = sink_.Frames();
  ASSERT_THAT(frames, SizeIs(1));
  EXPECT_TRUE(frames[0].frame.many_tracks);
  EXPECT_TRUE(frames[0].frame.keyframe);
  EXPECT_EQ(frames[0].frame.codec, media::kFourCcAv1);
}

TEST_F(SessionTest, ConnectAppKeepsInnerSlashes) {
  ASSERT_TRUE(Command({Str("connect"), Num(1), ConnectObject("live/sub//")}).ok());
  EXPECT_EQ(session_->app(), "live/sub");
}

TEST_F(SessionTest, FmtOfAmf3CommandIsSkipped) {
  Bytes payload = {0x00};
  media::AppendBytes(&payload, Amf({Str("connect"), Num(1), ConnectObject()}));
  ASSERT_TRUE(Deliver(MessageType::kCommandAmf3, 0, payload).ok());
  ASSERT_THAT(sender_.sent, SizeIs(4));
  EXPECT_EQ(sender_.sent[3].Name(), "_result");
  EXPECT_EQ(session_->app(), "live");
}

// nginx-rtmp and SRS skip the first byte of a type 17 message whatever it is: the AMF0
// after it decides.
TEST_F(SessionTest, Amf3CommandFormatByteIsSkippedWhateverItIs) {
  Bytes payload = {0x11};
  media::AppendBytes(&payload, Amf({Str("connect"), Num(1), ConnectObject()}));
  ASSERT_TRUE(Deliver(MessageType::kCommandAmf3, 0, payload).ok());
  ASSERT_THAT(sender_.sent, SizeIs(4));
  EXPECT_EQ(sender_.sent[3].Name(), "_result");
  EXPECT_EQ(session_->app(), "live");
}

TEST_F(SessionTest, Amf3CommandThatIsNotAmf0AfterItsFirstByteIsAnError) {
  // An AMF3 string after the format byte: AMF0's avmplus switch (0x11) is not supported.
  const Bytes amf3 = {0x00, 0x11, 0x06, 0x0F, 'c', 'o', 'n', 'n', 'e', 'c', 't'};
  absl::Status status = Deliver(MessageType::kCommandAmf3, 0, amf3);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("malformed AMF0"));
  EXPECT_EQ(Deliver(MessageType::kCommandAmf3, 0, {}).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(SessionTest, SecondConnectIsRejected) {
  Connect();
  absl::Status status = Command({Str("connect"), Num(2), ConnectObject()});
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("second connect"));
  ASSERT_THAT(sender_.sent, SizeIs(1));
  EXPECT_EQ(sender_.sent[0].Name(), "_error");
  EXPECT_EQ(sender_.sent[0].Amf().at(1), Num(2));
  EXPECT_EQ(sender_.sent[0].Code(), "NetConnection.Connect.Rejected");
}

TEST_F(SessionTest, ConnectWithUnsafeAppIsRejected) {
  for (const std::string& app :
       std::vector<std::string>{"", "/", "../etc", "live/./x", "/live", "li\nve"}) {
    Reset({});
    absl::Status status = Command({Str("connect"), Num(1), ConnectObject(app)});
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << app;
    ASSERT_THAT(sender_.sent, SizeIs(1)) << app;
    EXPECT_EQ(sender_.sent[0].Name(), "_error");
    EXPECT_EQ(sender_.sent[0].Code(), "NetConnection.Connect.Rejected");
    EXPECT_FALSE(session_->connected());
  }
}

TEST_F(SessionTest, ConnectWithoutCommandObjectIsAnError) {
  EXPECT_EQ(Command({Str("connect"), Num(1), Value::Null()}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(sender_.sent, IsEmpty());
}

TEST_F(SessionTest, StreamCommandsBeforeConnectAreErrors) {
  for (const char* name : {"releaseStream", "FCPublish", "createStream", "publish", "FCUnpublish",
                           "deleteStream", "closeStream", "play"}) {
    absl::Status status = Command({Str(name), Num(2), Value::Null(), Str("test")});
    EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << name;
    EXPECT_THAT(status.message(), HasSubstr("before connect"));
  }
  EXPECT_THAT(sender_.sent, IsEmpty());
}

TEST_F(SessionTest, HarmlessCommandsBeforeConnectAreAnswered) {
  EXPECT_TRUE(Command({Str("_checkbw"), Num(2), Value::Null()}).ok());
  EXPECT_TRUE(Command({Str("_result"), Num(1), Value::Null()}).ok());
  ASSERT_THAT(sender_.sent, SizeIs(1));
  EXPECT_EQ(sender_.sent[0].Name(), "_result");
  EXPECT_EQ(session_->counters().ignored_messages, 1u);
}

// ---- releaseStream, FCPublish, createStream ----

TEST_F(SessionTest, ReleaseStreamIsAnsweredWithResult) {
  Connect();
  ASSERT_TRUE(Command({Str("releaseStream"), Num(2), Value::Null(), Str("test")}).ok());
  ASSERT_THAT(sender_.sent, SizeIs(1));
  EXPECT_EQ(sender_.sent[0].header.chunk_stream_id, kCommandChunkStream);
  EXPECT_THAT(sender_.sent[0].Amf(),
              ElementsAre(Str("_result"), Num(2), Value::Null(), Value::Undefined()));
}

TEST_F(SessionTest, ReleaseStreamWithTransactionZeroIsNotAnswered) {
  Connect();
  ASSERT_TRUE(Command({Str("releaseStream"), Num(0), Value::Null(), Str("test")}).ok());
  EXPECT_THAT(sender_.sent, IsEmpty());
}

TEST_F(SessionTest, FcPublishIsAnsweredWithOnFcPublishWithoutTheQuery) {
  Connect();
  ASSERT_TRUE(Command({Str("FCPublish"), Num(3), Value::Null(), Str("test?key=x")}).ok());
  ASSERT_THAT(sender_.sent, SizeIs(1));
  EXPECT_EQ(sender_.sent[0].header.chunk_stream_id, kCommandChunkStream);
  EXPECT_THAT(
      sender_.sent[0].Amf(),
      ElementsAre(Str("onFCPublish"), Num(0), Value::Null(),
                  Obj({{"code", Str("NetStream.Publish.Start")}, {"description", Str("test")}})));
}

TEST_F(SessionTest, CreateStreamAllocatesIdsFromOne) {
  Connect();
  for (double id : {1, 2, 3}) {
    ASSERT_TRUE(Command({Str("createStream"), Num(10 + id), Value::Null()}).ok());
    EXPECT_THAT(sender_.sent.back().Amf(),
                ElementsAre(Str("_result"), Num(10 + id), Value::Null(), Num(id)));
  }
}

TEST_F(SessionTest, CreateStreamBeyondTheCapGetsError) {
  Reset({.max_streams = 2});
  Connect();
  ASSERT_TRUE(Command({Str("createStream"), Num(2), Value::Null()}).ok());
  ASSERT_TRUE(Command({Str("createStream"), Num(3), Value::Null()}).ok());
  ASSERT_TRUE(Command({Str("createStream"), Num(4), Value::Null()}).ok());
  ASSERT_THAT(sender_.sent, SizeIs(3));
  EXPECT_EQ(sender_.sent[2].Name(), "_error");
  EXPECT_EQ(sender_.sent[2].Amf().at(1), Num(4));
  EXPECT_EQ(sender_.sent[2].Code(), "NetConnection.Call.Failed");
}

TEST_F(SessionTest, DeletedStreamIdIsReused) {
  Reset({.max_streams = 2});
  Connect();
  ASSERT_TRUE(Command({Str("createStream"), Num(2), Value::Null()}).ok());
  ASSERT_TRUE(Command({Str("createStream"), Num(3), Value::Null()}).ok());
  ASSERT_TRUE(Command({Str("deleteStream"), Num(0), Value::Null(), Num(1)}).ok());
  ASSERT_TRUE(Command({Str("createStream"), Num(4), Value::Null()}).ok());
  EXPECT_EQ(sender_.sent.back().Amf().at(3), Num(1));
}

// ---- publish ----

TEST_F(SessionTest, PublishSendsStreamBeginThenOnStatusAndBeginsTheStream) {
  Connect();
  ASSERT_TRUE(Command({Str("createStream"), Num(4), Value::Null()}).ok());
  sender_.sent.clear();
  ASSERT_TRUE(Command({Str("publish"), Num(5), Value::Null(), Str("test"), Str("live")}, 1).ok());
  ASSERT_THAT(sender_.sent, SizeIs(2));
  const Sent& begin = sender_.sent[0];
  EXPECT_EQ(begin.header.type, MessageType::kUserControl);
  EXPECT_EQ(begin.header.chunk_stream_id, kControlChunkStream);
  EXPECT_EQ(begin.header.stream_id, 0u);
  EXPECT_THAT(begin.payload, ElementsAre(0, 0, 0, 0, 0, 1));
  const Sent& status = sender_.sent[1];
  EXPECT_EQ(status.header.chunk_stream_id, kStreamCommandChunkStream);
  EXPECT_EQ(status.header.stream_id, 1u);
  EXPECT_THAT(status.Amf(), ElementsAre(Str("onStatus"), Num(0), Value::Null(),
                                        Obj({{"level", Str("status")},
                                             {"code", Str("NetStream.Publish.Start")},
                                             {"description", Str("live/test is now published.")},
                                             {"details", Str("test")}})));
  ASSERT_THAT(sink_.events, SizeIs(1));
  EXPECT_EQ(sink_.events[0].kind, Event::kBegin);
  EXPECT_EQ(sink_.events[0].stream_id, 1u);
  EXPECT_EQ(sink_.events[0].app, "live");
  EXPECT_EQ(sink_.events[0].name, "test");
  EXPECT_THAT(registry_.claimed, ElementsAre("live/test"));
  ASSERT_THAT(session_->publishing_streams(), SizeIs(1));
  EXPECT_EQ(session_->publishing_streams()[0].name, "test");
  EXPECT_EQ(session_->publishing_streams()[0].type, "live");
}

TEST_F(SessionTest, PublishQueryIsStrippedAndKept) {
  Connect();
  const uint32_t id = Publish("test?key=secret&x=1");
  EXPECT_EQ(sink_.events.at(0).name, "test");
  EXPECT_EQ(session_->publish_query(id), "key=secret&x=1");
  EXPECT_EQ(session_->publish_query(id + 1), "");
  EXPECT_THAT(registry_.claimed, ElementsAre("live/test"));
}

TEST_F(SessionTest, SecondPublisherOfANameGetsBadName) {
  Connect();
  Publish("test");
  FakeSender other_sender;
  RecordingSink other_sink;
  Session other({}, &other_sender, &other_sink, &registry_);
  auto send = [&](std::vector<Value> values, uint32_t stream_id) {
    Bytes payload = Amf(values);
    return other.OnMessage(Message{
        .header = {.type = MessageType::kCommandAmf0, .stream_id = stream_id}, .payload = payload});
  };
  ASSERT_TRUE(send({Str("connect"), Num(1), ConnectObject()}, 0).ok());
  ASSERT_TRUE(send({Str("createStream"), Num(2), Value::Null()}, 0).ok());
  other_sender.sent.clear();
  ASSERT_TRUE(send({Str("publish"), Num(3), Value::Null(), Str("test"), Str("live")}, 1).ok());
  ASSERT_THAT(other_sender.sent, SizeIs(1));
  const Sent& status = other_sender.sent[0];
  EXPECT_EQ(status.header.chunk_stream_id, kStreamCommandChunkStream);
  EXPECT_EQ(status.header.stream_id, 1u);
  const std::vector<Value> amf = status.Amf();
  ASSERT_THAT(amf, SizeIs(4));
  EXPECT_EQ(amf[0], Str("onStatus"));
  EXPECT_EQ(amf[3].FindString("level"), "error");
  EXPECT_EQ(amf[3].FindString("code"), "NetStream.Publish.BadName");
  EXPECT_THAT(std::string(amf[3].FindString("description")),
              HasSubstr("live/test is already publishing"));
  EXPECT_THAT(other_sink.events, IsEmpty());
  EXPECT_THAT(other.publishing_streams(), IsEmpty());
  // The refused stream may still publish another name.
  ASSERT_TRUE(send({Str("publish"), Num(4), Value::Null(), Str("test2"), Str("live")}, 1).ok());
  EXPECT_THAT(other.publishing_streams(), SizeIs(1));
}

// A stream the sink can't carry (the ring's directory is full) is refused, not started
// with its frames going nowhere; its name is free again, and the same stream may publish
// once the sink has room.
TEST_F(SessionTest, PublishTheSinkCannotCarryGetsBadNameAndFreesTheName) {
  Connect();
  sink_.refusal = absl::ResourceExhaustedError("all 2 directory slots are in use");
  ASSERT_TRUE(Command({Str("createStream"), Num(4), Value::Null()}).ok());
  sender_.sent.clear();
  ASSERT_TRUE(Command({Str("publish"), Num(5), Value::Null(), Str("test"), Str("live")}, 1).ok());
  ASSERT_THAT(sender_.sent, SizeIs(1)) << "no StreamBegin, no Publish.Start";
  EXPECT_EQ(sender_.sent[0].Code(), "NetStream.Publish.BadName");
  EXPECT_EQ(sender_.sent[0].Amf().at(3).FindString("level"), "error");
  EXPECT_THAT(std::string(sender_.sent[0].Amf().at(3).FindString("description")),
              HasSubstr("live/test can't be carried: all 2 directory slots are in use"));
  EXPECT_THAT(session_->publishing_streams(), IsEmpty());
  EXPECT_THAT(registry_.claimed, IsEmpty());
  EXPECT_EQ(registry_.releases, 1);
  EXPECT_EQ(session_->TakeRefusals().count, 1u);
  // Media on it goes nowhere, and ends nothing.
  ASSERT_TRUE(Video(1, {0x17, 0x01, 0, 0, 0, 0xAA}).ok());
  EXPECT_THAT(sink_.events, IsEmpty());

  sink_.refusal = absl::OkStatus();
  ASSERT_TRUE(Command({Str("publish"), Num(6), Value::Null(), Str("test"), Str("live")}, 1).ok());
  EXPECT_THAT(session_->publishing_streams(), SizeIs(1));
  EXPECT_THAT(registry_.claimed, ElementsAre("live/test"));
}

class BadNameTest : public SessionTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(BadNameTest, UnsafeStreamNameGetsBadName) {
  Reset({.max_name_length = 16});
  Connect();
  ASSERT_TRUE(Command({Str("createStream"), Num(4), Value::Null()}).ok());
  sender_.sent.clear();
  ASSERT_TRUE(Command({Str("publish"), Num(5), Value::Null(), Str(GetParam())}, 1).ok());
  ASSERT_THAT(sender_.sent, SizeIs(1));
  EXPECT_EQ(sender_.sent[0].Code(), "NetStream.Publish.BadName");
  EXPECT_EQ(sender_.sent[0].Amf().at(3).FindString("level"), "error");
  EXPECT_THAT(sink_.events, IsEmpty());
  EXPECT_THAT(registry_.claimed, IsEmpty());
}

INSTANTIATE_TEST_SUITE_P(Names, BadNameTest,
                         ::testing::Values("", "?key=x", "seventeen-bytes-x", "/test", "test/",
                                           "a//b", "..", "../x", "a/./b", "a/..",
                                           std::string("te\0st", 5), "te\x7Fst"));

TEST_F(SessionTest, PublishWithoutNameGetsBadName) {
  Connect();
  ASSERT_TRUE(Command({Str("createStream"), Num(4), Value::Null()}).ok());
  sender_.sent.clear();
  ASSERT_TRUE(Command({Str("publish"), Num(5), Value::Null()}, 1).ok());
  ASSERT_THAT(sender_.sent, SizeIs(1));
  EXPECT_EQ(sender_.sent[0].Code(), "NetStream.Publish.BadName");
}

TEST_F(SessionTest, NameWithSlashSegmentsIsAccepted) {
  Connect();
  Publish("cam/1");
  EXPECT_THAT(registry_.claimed, ElementsAre("live/cam/1"));
}

TEST_F(SessionTest, PublishOnUncreatedStreamIsAnError) {
  Connect();
  for (uint32_t id : {0u, 1u, 17u, 0xFFFFFFFFu}) {
    absl::Status status = Command({Str("publish"), Num(5), Value::Null(), Str("test")}, id);
    EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << id;
    EXPECT_THAT(status.message(), HasSubstr("createStream did not create"));
  }
  EXPECT_THAT(registry_.claimed, IsEmpty());
}

TEST_F(SessionTest, SecondPublishOnAPublishingStreamIsAnError) {
  Connect();
  const uint32_t id = Publish("test");
  absl::Status status = Command({Str("publish"), Num(6), Value::Null(), Str("other")}, id);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("already publishes test"));
  EXPECT_THAT(registry_.claimed, ElementsAre("live/test"));
}

TEST_F(SessionTest, TwoStreamsPublishOnOneConnection) {
  Connect();
  const uint32_t a = Publish("a");
  const uint32_t b = Publish("b");
  EXPECT_NE(a, b);
  ASSERT_TRUE(Video(a, kAvcKeyframe).ok());
  ASSERT_TRUE(Video(b, kAvcKeyframe).ok());
  std::vector<Event> frames = sink_.Frames();
  ASSERT_THAT(frames, SizeIs(2));
  EXPECT_EQ(frames[0].stream_id, a);
  EXPECT_EQ(frames[1].stream_id, b);
}

// ---- data messages ----

TEST_F(SessionTest, SetDataFrameIsUnwrapped) {
  Connect();
  const uint32_t id = Publish();
  const Bytes metadata =
      Amf({Str("onMetaData"), Value::EcmaArray({{"width", Num(1280)}, {"height", Num(720)}})});
  Bytes payload = Amf({Str("@setDataFrame")});
  media::AppendBytes(&payload, metadata);
  ASSERT_TRUE(Deliver(MessageType::kDataAmf0, id, payload, 0).ok());
  std::vector<Event> frames = sink_.Frames();
  ASSERT_THAT(frames, SizeIs(1));
  EXPECT_EQ(frames[0].frame.type, FrameType::kData);
  EXPECT_EQ(frames[0].frame.stream_id, id);
  EXPECT_TRUE(frames[0].frame.keyframe);
  EXPECT_THAT(frames[0].payload, ElementsAreArray(metadata));  // the original bytes
}

// Some encoders write it without the '@' (nginx-rtmp pull request #579).
TEST_F(SessionTest, SetDataFrameWithoutTheAtSignIsUnwrapped) {
  Connect();
  const uint32_t id = Publish();
  const Bytes metadata = Amf({Str("onMetaData"), Obj({{"fps", Num(30)}})});
  Bytes payload = Amf({Str("setDataFrame")});
  media::AppendBytes(&payload, metadata);
  ASSERT_TRUE(Deliver(MessageType::kDataAmf0, id, payload).ok());
  ASSERT_TRUE(Deliver(MessageType::kCommandAmf0, id, payload).ok());
  const std::vector<Event> frames = sink_.Frames();
  ASSERT_THAT(frames, SizeIs(2));
  EXPECT_THAT(frames[0].payload, ElementsAreArray(metadata));
  EXPECT_THAT(frames[1].payload, ElementsAreArray(metadata));
}

TEST_F(SessionTest, SetDataFrameInAmf3DataIsUnwrapped) {
  Connect();
  const uint32_t id = Publish();
  const Bytes metadata = Amf({Str("onMetaData"), Obj({{"duration", Num(0)}})});
  Bytes payload = {0x00};
  media::AppendBytes(&payload, Amf({Str("@setDataFrame")}));
  media::AppendBytes(&payload, metadata);
  ASSERT_TRUE(Deliver(MessageType::kDataAmf3, id, payload).ok());
  ASSERT_THAT(sink_.Frames(), SizeIs(1));
  EXPECT_THAT(sink_.Frames()[0].payload, ElementsAreArray(metadata));
}

TEST_F(SessionTest, Amf3DataWithoutFormatByteZeroIsIgnored) {
  Connect();
  const uint32_t id = Publish();
  ASSERT_TRUE(Deliver(MessageType::kDataAmf3, id, {0x11, 0x02}).ok());
  ASSERT_TRUE(Deliver(MessageType::kDataAmf3, id, {}).ok());
  EXPECT_THAT(sink_.Frames(), IsEmpty());
  EXPECT_EQ(session_->counters().ignored_data, 2u);
}

TEST_F(SessionTest, BareOnMetaDataAndOtherDataArePassedAsIs) {
  Connect();
  const uint32_t id = Publish();
  const Bytes metadata = Amf({Str("onMetaData"), Obj({{"fps", Num(30)}})});
  const Bytes sample_access =
      Amf({Str("|RtmpSampleAccess"), Value::Boolean(false), Value::Boolean(false)});
  const Bytes text = Amf({Str("onTextData"), Obj({{"text", Str("hi")}})});
  for (const Bytes& payload : {metadata, sample_access, text}) {
    ASSERT_TRUE(Deliver(MessageType::kDataAmf0, id, payload, 40).ok());
  }
  std::vector<Event> frames = sink_.Frames();
  ASSERT_THAT(frames, SizeIs(3));
  EXPECT_THAT(frames[0].payload, ElementsAreArray(metadata));
  EXPECT_THAT(frames[1].payload, ElementsAreArray(sample_access));
  EXPECT_THAT(frames[2].payload, ElementsAreArray(text));
  EXPECT_EQ(frames[2].frame.dts, 40u);
}

TEST_F(SessionTest, DataBeforePublishIsIgnoredAndCounted) {
  Connect();
  const Bytes metadata = Amf({Str("@setDataFrame"), Str("onMetaData"), Obj({})});
  ASSERT_TRUE(Deliver(MessageType::kDataAmf0, 1, metadata).ok());
  ASSERT_TRUE(Deliver(MessageType::kDataAmf0, 0, metadata).ok());
  EXPECT_THAT(sink_.events, IsEmpty());
  EXPECT_EQ(session_->counters().ignored_data, 2u);
}

// nginx-rtmp handles @setDataFrame and onMetaData as metadata whatever the message type;
// they used to fail here as commands whose transaction id is not a number.
TEST_F(SessionTest, MetadataSentAsACommandIsHandledAsData) {
  Connect();
  const uint32_t id = Publish();
  const Bytes metadata = Amf({Str("onMetaData"), Value::EcmaArray({{"width", Num(1280)}})});
  Bytes wrapped = Amf({Str("@setDataFrame")});
  media::AppendBytes(&wrapped, metadata);
  Bytes amf3 = {0x00};
  media::AppendBytes(&amf3, wrapped);
  ASSERT_TRUE(Deliver(MessageType::kCommandAmf0, id, wrapped, 10).ok());
  ASSERT_TRUE(Deliver(MessageType::kCommandAmf0, id, metadata, 20).ok());
  ASSERT_TRUE(Deliver(MessageType::kCommandAmf3, id, amf3, 30).ok());
  const std::vector<Event> frames = sink_.Frames();
  ASSERT_THAT(frames, SizeIs(3));
  for (size_t i = 0; i < frames.size(); ++i) {
    EXPECT_EQ(frames[i].frame.type, FrameType::kData);
    EXPECT_EQ(frames[i].frame.stream_id, id);
    EXPECT_EQ(frames[i].frame.dts, 10 * (i + 1));
    EXPECT_THAT(frames[i].payload, ElementsAreArray(metadata));
  }
  EXPECT_THAT(sender_.sent, IsEmpty());  // no _error: it was not a call
}

TEST_F(SessionTest, MetadataSentAsACommandBeforePublishIsIgnoredLikeData) {
  Connect();
  ASSERT_TRUE(Command({Str("onMetaData"), Obj({{"fps", Num(30)}})}, 1).ok());
  EXPECT_THAT(sink_.events, IsEmpty());
  EXPECT_EQ(session_->counters().ignored_data, 1u);
}

TEST_F(SessionTest, SetDataFrameWithNothingAfterItIsIgnored) {
  Connect();
  const uint32_t id = Publish();
  ASSERT_TRUE(Deliver(MessageType::kDataAmf0, id, Amf({Str("@setDataFrame")})).ok());
  EXPECT_THAT(sink_.Frames(), IsEmpty());
  EXPECT_EQ(session_->counters().ignored_data, 1u);
}

// ---- audio and video ----

TEST_F(SessionTest, SequenceHeadersAndFramesCarryTagProperties) {
  Connect();
  const uint32_t id = Publish();
  ASSERT_TRUE(Video(id, kAvcSequenceHeader, 0).ok());
  ASSERT_TRUE(Audio(id, kAacSequenceHeader, 0).ok());
  ASSERT_TRUE(Video(id, kAvcKeyframe, 0).ok());
  ASSERT_TRUE(Audio(id, kAacFrame, 23).ok());
  ASSERT_TRUE(Video(id, kAvcInterFrame, 33).ok());
  std::vector<Event> frames = sink_.Frames();
  ASSERT_THAT(frames, SizeIs(5));

  const Frame& avc_config = frames[0].frame;
  EXPECT_EQ(avc_config.type, FrameType::kVideo);
  EXPECT_EQ(avc_config.codec, uint32_t(media::VideoCodec::kAvc));
  EXPECT_TRUE(avc_config.sequence_header);
  EXPECT_TRUE(avc_config.keyframe);
  EXPECT_THAT(frames[0].payload, ElementsAreArray(kAvcSequenceHeader));

  const Frame& aac_config = frames[1].frame;
  EXPECT_EQ(aac_config.type, FrameType::kAudio);
  EXPECT_EQ(aac_config.codec, uint32_t(media::AudioCodec::kAac));
  EXPECT_TRUE(aac_config.sequence_header);
  EXPECT_TRUE(aac_config.keyframe);
  EXPECT_THAT(frames[1].payload, ElementsAreArray(kAacSequenceHeader));

  EXPECT_TRUE(frames[2].frame.keyframe);
  EXPECT_FALSE(frames[2].frame.sequence_header);
  EXPECT_EQ(frames[2].frame.composition_offset, 80);
  EXPECT_EQ(frames[3].frame.dts, 23u);
  EXPECT_FALSE(frames[3].frame.sequence_header);
  EXPECT_FALSE(frames[4].frame.keyframe);
  EXPECT_EQ(frames[4].frame.composition_offset, 40);
  EXPECT_EQ(frames[4].frame.dts, 33u);
  EXPECT_EQ(session_->counters().frames, 5u);
}

TEST_F(SessionTest, DtsIsThe64BitMessageTimestamp) {
  Connect();
  const uint32_t id = Publish();
  const uint64_t late = (uint64_t{1} << 32) + 1234;
  ASSERT_TRUE(Video(id, kAvcKeyframe, late).ok());
  EXPECT_EQ(sink_.Frames().at(0).frame.dts, late);
}

TEST_F(SessionTest, EnhancedHevcFrameCarriesItsFourCc) {
  Connect();
  const uint32_t id = Publish();
  Bytes body = {uint8_t(media::kVideoExHeaderBit | 1 << 4 | 1)};
  media::AppendU32(&body, media::kFourCcHevc);
  body.insert(body.end(), {0x00, 0x00, 0x21, 0x00, 0x00, 0x00, 0x01, 0x26});
  ASSERT_TRUE(Video(id, body).ok());
  const Frame frame = sink_.Frames().at(0).frame;
  EXPECT_EQ(frame.codec, media::kFourCcHevc);
  EXPECT_TRUE(frame.keyframe);
  EXPECT_EQ(frame.composition_offset, 33);
}

TEST_F(SessionTest, EmptyMediaIsDroppedAndCounted) {
  Connect();
  const uint32_t id = Publish();
  ASSERT_TRUE(Video(id, {}).ok());
  ASSERT_TRUE(Audio(id, {}).ok());
  EXPECT_THAT(sink_.Frames(), IsEmpty());
  EXPECT_EQ(session_->counters().dropped_empty_media, 2u);
}

TEST_F(SessionTest, MediaOnAStreamNotPublishingIsDroppedAndCounted) {
  ASSERT_TRUE(Video(1, kAvcKeyframe).ok());  // before connect
  Connect();
  ASSERT_TRUE(Command({Str("createStream"), Num(2), Value::Null()}).ok());
  ASSERT_TRUE(Video(1, kAvcKeyframe).ok());  // created, not publishing
  ASSERT_TRUE(Audio(0, kAacFrame).ok());     // stream 0, with nothing publishing
  ASSERT_TRUE(Audio(6, kAacFrame).ok());     // never created, with nothing publishing
  EXPECT_THAT(sink_.Frames(), IsEmpty());
  EXPECT_EQ(session_->counters().dropped_unpublished_media, 4u);
  EXPECT_EQ(session_->counters().remapped_media, 0u);
}

// librtmp sends a fmt 1 header, which has no message stream id, as the first chunk of a
// chunk stream whose first packet it marks medium: its media arrive on stream 0.
// nginx-rtmp and SRS ignore the id.
TEST_F(SessionTest, MediaOnAStreamNeverCreatedGoesToTheOnlyPublishingStream) {
  Connect();
  const uint32_t id = Publish();
  ASSERT_TRUE(Video(0, kAvcKeyframe, 40).ok());
  ASSERT_TRUE(Audio(7, kAacFrame, 41).ok());
  ASSERT_TRUE(
      Deliver(MessageType::kDataAmf0, 0, Amf({Str("@setDataFrame"), Str("onMetaData")})).ok());
  const std::vector<Event> frames = sink_.Frames();
  ASSERT_THAT(frames, SizeIs(3));
  for (const Event& e : frames) EXPECT_EQ(e.frame.stream_id, id);
  EXPECT_EQ(frames[0].frame.dts, 40u);
  EXPECT_TRUE(frames[0].frame.keyframe);
  EXPECT_EQ(frames[1].frame.type, FrameType::kAudio);
  EXPECT_THAT(frames[2].payload, ElementsAreArray(Amf({Str("onMetaData")})));
  EXPECT_EQ(session_->counters().remapped_media, 3u);
  EXPECT_EQ(session_->counters().dropped_unpublished_media, 0u);
  // One line for the log, the first time only.
  const std::string notice = session_->TakeRemapNotice();
  EXPECT_THAT(notice, HasSubstr("video on message stream 0"));
  EXPECT_THAT(notice, HasSubstr("stream 1 (live/test)"));
  ASSERT_TRUE(Audio(0, kAacFrame).ok());
  EXPECT_EQ(session_->TakeRemapNotice(), "");
  EXPECT_EQ(session_->counters().remapped_media, 4u);
}

TEST_F(SessionTest, MediaOnAStreamNeverCreatedIsDroppedWhileSeveralPublish) {
  Connect();
  Publish("a");
  const uint32_t b = Publish("b");
  ASSERT_TRUE(Video(0, kAvcKeyframe).ok());
  EXPECT_THAT(sink_.Frames(), IsEmpty());
  EXPECT_EQ(session_->counters().dropped_unpublished_media, 1u);
  // Once only one is left, it takes them.
  ASSERT_TRUE(Command({Str("deleteStream"), Num(7), Value::Null(), Num(1)}).ok());
  ASSERT_TRUE(Video(0, kAvcKeyframe).ok());
  ASSERT_THAT(sink_.Frames(), SizeIs(1));
  EXPECT_EQ(sink_.Frames()[0].frame.stream_id, b);
  EXPECT_EQ(session_->counters().remapped_media, 1u);
}

TEST_F(SessionTest, MediaOnACreatedStreamNotPublishingIsNotGivenToAnother) {
  // Stream 1 is created but does not publish (its publish may have been refused): its
  // media are its own, not the publishing stream's.
  Connect();
  ASSERT_TRUE(Command({Str("createStream"), Num(2), Value::Null()}).ok());
  const uint32_t id = Publish();
  ASSERT_NE(id, 1u);
  ASSERT_TRUE(Video(1, kAvcKeyframe).ok());
  EXPECT_THAT(sink_.Frames(), IsEmpty());
  EXPECT_EQ(session_->counters().dropped_unpublished_media, 1u);
  EXPECT_EQ(session_->TakeRemapNotice(), "");
}

TEST_F(SessionTest, LibrtmpMediumFirstChunkReachesThePublishingStream) {
  // Through the real ChunkReader: a video message whose chunk stream starts with fmt 1.
  Connect();
  const uint32_t id = Publish();
  Bytes wire;
  media::AppendU8(&wire, uint8_t(1 << 6 | 7));  // fmt 1, chunk stream 7
  media::AppendU24(&wire, 33);                  // timestamp delta
  media::AppendU24(&wire, uint32_t(kAvcKeyframe.size()));
  media::AppendU8(&wire, uint8_t(MessageType::kVideo));
  media::AppendBytes(&wire, kAvcKeyframe);
  ChunkReader reader;
  Message message;
  absl::StatusOr<ChunkReader::Result> r = reader.Read(wire, &message);
  ASSERT_TRUE(r.ok() && r->message_ready) << r.status();
  EXPECT_EQ(message.header.stream_id, 0u);
  ASSERT_TRUE(session_->OnMessage(message).ok());
  ASSERT_THAT(sink_.Frames(), SizeIs(1));
  EXPECT_EQ(sink_.Frames()[0].frame.stream_id, id);
  EXPECT_EQ(sink_.Frames()[0].frame.dts, 33u);
  EXPECT_THAT(sink_.Frames()[0].payload, ElementsAreArray(kAvcKeyframe));
}

TEST_F(SessionTest, MediaPathDoesNotAllocate) {
  class NullSink : public FrameSink {
   public:
    absl::Status OnStreamBegin(uint32_t, StreamName) override { return absl::OkStatus(); }
    void OnFrame(const Frame& frame) override { bytes += frame.payload_size(); }
    void OnStreamEnd(uint32_t) override {}
    size_t bytes = 0;
  } sink;
  Session session({}, &sender_, &sink, &registry_);
  auto command = [&](std::vector<Value> values, uint32_t stream_id) {
    Bytes payload = Amf(values);
    return session.OnMessage(Message{
        .header = {.type = MessageType::kCommandAmf0, .stream_id = stream_id}, .payload = payload});
  };
  ASSERT_TRUE(command({Str("connect"), Num(1), ConnectObject()}, 0).ok());
  ASSERT_TRUE(command({Str("createStream"), Num(2), Value::Null()}, 0).ok());
  ASSERT_TRUE(command({Str("publish"), Num(3), Value::Null(), Str("x")}, 1).ok());
  const Message video{.header = {.type = MessageType::kVideo, .stream_id = 1},
                      .payload = kAvcKeyframe};
  const Message audio{.header = {.type = MessageType::kAudio, .stream_id = 1},
                      .payload = kAacFrame};
  g_allocations = 0;
  g_count_allocations = true;
  for (int i = 0; i < 100; ++i) {
    absl::Status v = session.OnMessage(video);
    absl::Status a = session.OnMessage(audio);
    if (!v.ok() || !a.ok()) break;
  }
  g_count_allocations = false;
  EXPECT_EQ(g_allocations, 0u);
  EXPECT_EQ(sink.bytes, 100 * (kAvcKeyframe.size() + kAacFrame.size()));
}

// ---- aggregate ----

void AppendTag(Bytes* out, uint8_t type, uint32_t timestamp, const Bytes& data) {
  media::AppendU8(out, type);
  media::AppendU24(out, uint32_t(data.size()));
  media::AppendU24(out, timestamp & 0xFFFFFF);
  media::AppendU8(out, uint8_t(timestamp >> 24));
  media::AppendU24(out, 0);
  media::AppendBytes(out, data);
  media::AppendU32(out, uint32_t(media::kFlvTagHeaderSize + data.size()));
}

TEST_F(SessionTest, AggregateTimestampsAreRebasedOnTheAggregate) {
  Connect();
  const uint32_t id = Publish();
  Bytes body;
  AppendTag(&body, 9, 90000, kAvcKeyframe);
  AppendTag(&body, 8, 90010, kAacFrame);
  AppendTag(&body, 9, 90033, kAvcInterFrame);
  ASSERT_TRUE(Deliver(MessageType::kAggregate, id, body, 5000).ok());
  std::vector<Event> frames = sink_.Frames();
  ASSERT_THAT(frames, SizeIs(3));
  EXPECT_EQ(frames[0].frame.dts, 5000u);
  EXPECT_EQ(frames[1].frame.dts, 5010u);
  EXPECT_EQ(frames[2].frame.dts, 5033u);
  EXPECT_EQ(frames[0].frame.type, FrameType::kVideo);
  EXPECT_EQ(frames[1].frame.type, FrameType::kAudio);
  EXPECT_TRUE(frames[0].frame.keyframe);
  EXPECT_EQ(frames[2].frame.composition_offset, 40);
  EXPECT_THAT(frames[1].payload, ElementsAreArray(kAacFrame));
  for (const Event& e : frames) EXPECT_EQ(e.frame.stream_id, id);
}

TEST_F(SessionTest, AggregateDataAndEmptyTagsTakeTheSamePath) {
  Connect();
  const uint32_t id = Publish();
  const Bytes metadata = Amf({Str("onMetaData"), Obj({})});
  Bytes wrapped = Amf({Str("@setDataFrame")});
  media::AppendBytes(&wrapped, metadata);
  Bytes body;
  AppendTag(&body, 18, 0, wrapped);
  AppendTag(&body, 8, 0, {});
  ASSERT_TRUE(Deliver(MessageType::kAggregate, id, body).ok());
  ASSERT_THAT(sink_.Frames(), SizeIs(1));
  EXPECT_THAT(sink_.Frames()[0].payload, ElementsAreArray(metadata));
  EXPECT_EQ(session_->counters().dropped_empty_media, 1u);
}

TEST_F(SessionTest, AggregateTagsOfOtherTypesAreSkippedAndBackPointersNotChecked) {
  Connect();
  const uint32_t id = Publish();
  Bytes body;
  AppendTag(&body, 9, 0, kAvcKeyframe);
  media::StoreU32(body.data() + body.size() - 4, 0);  // a back-pointer some muxers write
  AppendTag(&body, 20, 10, Amf({Str("onCuePoint")}));
  AppendTag(&body, 8, 23, kAacFrame);
  ASSERT_TRUE(Deliver(MessageType::kAggregate, id, body, 5000).ok());
  const std::vector<Event> frames = sink_.Frames();
  ASSERT_THAT(frames, SizeIs(2));
  EXPECT_EQ(frames[0].frame.type, FrameType::kVideo);
  EXPECT_EQ(frames[1].frame.dts, 5023u);
  EXPECT_EQ(session_->counters().ignored_messages, 1u);
}

TEST_F(SessionTest, AggregateOnAStreamNotPublishingIsDropped) {
  Connect();
  Bytes body;
  AppendTag(&body, 9, 0, kAvcKeyframe);
  ASSERT_TRUE(Deliver(MessageType::kAggregate, 1, body).ok());
  EXPECT_THAT(sink_.events, IsEmpty());
  EXPECT_EQ(session_->counters().dropped_unpublished_media, 1u);
}

TEST_F(SessionTest, MalformedAggregateIsAnError) {
  Connect();
  const uint32_t id = Publish();
  Bytes body;
  AppendTag(&body, 9, 0, kAvcKeyframe);
  AppendTag(&body, 9, 0, kAvcInterFrame);
  media::StoreU24(body.data() + 1, 0x100000);  // the first tag claims 1 MiB
  absl::Status status = Deliver(MessageType::kAggregate, id, body);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("aggregate"));
  EXPECT_THAT(sink_.Frames(), IsEmpty());
}

// ---- ending streams ----

TEST_F(SessionTest, FcUnpublishEndsTheStreamAndReleasesTheName) {
  Connect();
  const uint32_t id = Publish();
  ASSERT_TRUE(Command({Str("FCUnpublish"), Num(6), Value::Null(), Str("test")}).ok());
  ASSERT_THAT(sender_.sent, SizeIs(2));
  EXPECT_EQ(sender_.sent[0].header.chunk_stream_id, kCommandChunkStream);
  EXPECT_THAT(sender_.sent[0].Amf(), ElementsAre(Str("onFCUnpublish"), Num(0), Value::Null(),
                                                 Obj({{"code", Str("NetStream.Unpublish.Success")},
                                                      {"description", Str("test")}})));
  EXPECT_EQ(sender_.sent[1].header.stream_id, id);
  EXPECT_EQ(sender_.sent[1].Code(), "NetStream.Unpublish.Success");
  ASSERT_THAT(sink_.events, SizeIs(2));
  EXPECT_EQ(sink_.events[1].kind, Event::kEnd);
  EXPECT_EQ(sink_.events[1].stream_id, id);
  EXPECT_THAT(registry_.claimed, IsEmpty());
  EXPECT_THAT(session_->publishing_streams(), IsEmpty());
  // Media after the end is dropped.
  ASSERT_TRUE(Video(id, kAvcKeyframe).ok());
  EXPECT_EQ(session_->counters().dropped_unpublished_media, 1u);
}

TEST_F(SessionTest, FcUnpublishOfAnUnknownNameEndsNothing) {
  Connect();
  Publish("test");
  ASSERT_TRUE(Command({Str("FCUnpublish"), Num(6), Value::Null(), Str("other")}).ok());
  EXPECT_THAT(sink_.events, SizeIs(1));
  EXPECT_THAT(registry_.claimed, ElementsAre("live/test"));
}

TEST_F(SessionTest, DeleteStreamEndsThePublishingStream) {
  Connect();
  const uint32_t id = Publish();
  ASSERT_TRUE(Command({Str("deleteStream"), Num(7), Value::Null(), Num(id)}).ok());
  ASSERT_THAT(sink_.events, SizeIs(2));
  EXPECT_EQ(sink_.events[1].kind, Event::kEnd);
  EXPECT_THAT(registry_.claimed, IsEmpty());
  // The stream is gone: publishing on it again is an error.
  EXPECT_FALSE(Command({Str("publish"), Num(8), Value::Null(), Str("test")}, id).ok());
}

TEST_F(SessionTest, StreamEndsOnlyOnce) {
  Connect();
  const uint32_t id = Publish();
  ASSERT_TRUE(Command({Str("FCUnpublish"), Num(6), Value::Null(), Str("test")}).ok());
  ASSERT_TRUE(Command({Str("closeStream"), Num(0), Value::Null()}, id).ok());
  ASSERT_TRUE(Command({Str("deleteStream"), Num(7), Value::Null(), Num(id)}).ok());
  session_->Close();
  int ends = 0;
  for (const Event& e : sink_.events) ends += e.kind == Event::kEnd;
  EXPECT_EQ(ends, 1);
  EXPECT_EQ(registry_.releases, 1);
}

TEST_F(SessionTest, CloseStreamEndsPublishingButKeepsTheStream) {
  Connect();
  const uint32_t id = Publish("first");
  ASSERT_TRUE(Command({Str("closeStream"), Num(0), Value::Null()}, id).ok());
  EXPECT_EQ(sink_.events.back().kind, Event::kEnd);
  EXPECT_THAT(registry_.claimed, IsEmpty());
  ASSERT_TRUE(Command({Str("publish"), Num(9), Value::Null(), Str("second")}, id).ok());
  EXPECT_THAT(registry_.claimed, ElementsAre("live/second"));
}

TEST_F(SessionTest, DeleteStreamOfUnknownIdIsIgnored) {
  Connect();
  for (Value id : {Num(3), Num(0), Num(-1), Num(1.5), Num(1e300), Str("1")}) {
    ASSERT_TRUE(Command({Str("deleteStream"), Num(7), Value::Null(), id}).ok());
  }
  EXPECT_THAT(sender_.sent, IsEmpty());
  EXPECT_EQ(session_->counters().ignored_messages, 6u);
}

TEST_F(SessionTest, CloseEndsEveryPublishingStream) {
  Connect();
  const uint32_t a = Publish("a");
  const uint32_t b = Publish("b");
  session_->Close();
  EXPECT_THAT(sender_.sent, IsEmpty());  // nobody is listening
  ASSERT_THAT(sink_.events, SizeIs(4));
  EXPECT_EQ(sink_.events[2].kind, Event::kEnd);
  EXPECT_EQ(sink_.events[2].stream_id, a);
  EXPECT_EQ(sink_.events[3].stream_id, b);
  EXPECT_THAT(registry_.claimed, IsEmpty());
  EXPECT_EQ(Video(a, kAvcKeyframe).code(), absl::StatusCode::kFailedPrecondition);
  session_->Close();  // idempotent
  EXPECT_THAT(sink_.events, SizeIs(4));
}

TEST_F(SessionTest, DestructorReleasesNames) {
  Connect();
  Publish("test");
  session_.reset();
  EXPECT_THAT(registry_.claimed, IsEmpty());
  EXPECT_EQ(sink_.events.back().kind, Event::kEnd);
}

// ---- other commands ----

TEST_F(SessionTest, CheckBandwidthAndGetStreamLengthAreAnswered) {
  Connect();
  ASSERT_TRUE(Command({Str("_checkbw"), Num(3), Value::Null()}).ok());
  ASSERT_TRUE(Command({Str("getStreamLength"), Num(4), Value::Null(), Str("test")}).ok());
  ASSERT_THAT(sender_.sent, SizeIs(2));
  EXPECT_THAT(sender_.sent[0].Amf(),
              ElementsAre(Str("_result"), Num(3), Value::Null(), Value::Undefined()));
  EXPECT_THAT(sender_.sent[1].Amf(), ElementsAre(Str("_result"), Num(4), Value::Null(), Num(0)));
}

TEST_F(SessionTest, PlayIsRefusedWithPlayFailed) {
  Connect();
  ASSERT_TRUE(Command({Str("createStream"), Num(2), Value::Null()}).ok());
  sender_.sent.clear();
  ASSERT_TRUE(Command({Str("play"), Num(0), Value::Null(), Str("test")}, 1).ok());
  ASSERT_THAT(sender_.sent, SizeIs(1));
  EXPECT_EQ(sender_.sent[0].header.chunk_stream_id, kStreamCommandChunkStream);
  EXPECT_EQ(sender_.sent[0].header.stream_id, 1u);
  EXPECT_THAT(
      sender_.sent[0].Amf(),
      ElementsAre(
          Str("onStatus"), Num(0), Value::Null(),
          Obj({{"level", Str("error")},
               {"code", Str("NetStream.Play.Failed")},
               {"description", Str("uringest is an ingest server: play is not supported")}})));
}

TEST_F(SessionTest, UnknownCommandWithTransactionGetsCallFailed) {
  Connect();
  ASSERT_TRUE(Command({Str("frobnicate"), Num(9), Value::Null()}).ok());
  ASSERT_THAT(sender_.sent, SizeIs(1));
  EXPECT_THAT(sender_.sent[0].Amf(),
              ElementsAre(Str("_error"), Num(9), Value::Null(),
                          Obj({{"level", Str("error")},
                               {"code", Str("NetConnection.Call.Failed")},
                               {"description", Str("unknown command frobnicate")}})));
}

TEST_F(SessionTest, UnknownCommandWithTransactionZeroIsIgnored) {
  Connect();
  ASSERT_TRUE(Command({Str("frobnicate"), Num(0), Value::Null()}).ok());
  ASSERT_TRUE(Command({Str("receiveVideo")}).ok());  // no transaction id at all
  EXPECT_THAT(sender_.sent, IsEmpty());
  EXPECT_EQ(session_->counters().ignored_messages, 2u);
}

TEST_F(SessionTest, MalformedAmfInCommandIsAnError) {
  Bytes truncated = Amf({Str("connect"), Num(1), ConnectObject()});
  truncated.resize(truncated.size() - 5);
  absl::Status status = Deliver(MessageType::kCommandAmf0, 0, truncated);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("malformed AMF0"));
  EXPECT_THAT(sender_.sent, IsEmpty());
}

TEST_F(SessionTest, CommandWithoutNameOrWithBadTransactionIsAnError) {
  EXPECT_EQ(Command({Num(1), Str("connect")}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Deliver(MessageType::kCommandAmf0, 0, {}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Command({Str("connect"), Str("1"), ConnectObject()}).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(SessionTest, UnhandledMessageTypesAreIgnored) {
  Connect();
  ASSERT_TRUE(Deliver(MessageType::kSharedObjectAmf0, 0, {1, 2, 3}).ok());
  ASSERT_TRUE(Deliver(MessageType(42), 0, {1}).ok());
  EXPECT_EQ(session_->counters().ignored_messages, 2u);
}

// ---- the whole flow of `ffmpeg -f flv rtmp://host/live/test` ----

TEST_F(SessionTest, FfmpegPublishFlow) {
  ASSERT_TRUE(Command({Str("connect"), Num(1), ConnectObject()}).ok());
  ASSERT_TRUE(Command({Str("releaseStream"), Num(2), Value::Null(), Str("test")}).ok());
  ASSERT_TRUE(Command({Str("FCPublish"), Num(3), Value::Null(), Str("test")}).ok());
  ASSERT_TRUE(Command({Str("createStream"), Num(4), Value::Null()}).ok());
  ASSERT_TRUE(Command({Str("publish"), Num(5), Value::Null(), Str("test"), Str("live")}, 1).ok());
  Bytes metadata = Amf({Str("@setDataFrame"), Str("onMetaData"),
                        Value::EcmaArray({{"duration", Num(0)},
                                          {"width", Num(1280)},
                                          {"height", Num(720)},
                                          {"videocodecid", Num(7)},
                                          {"audiocodecid", Num(10)},
                                          {"encoder", Str("Lavf60.16.100")}})});
  ASSERT_TRUE(Deliver(MessageType::kDataAmf0, 1, metadata).ok());
  ASSERT_TRUE(Video(1, kAvcSequenceHeader, 0).ok());
  ASSERT_TRUE(Audio(1, kAacSequenceHeader, 0).ok());
  ASSERT_TRUE(Video(1, kAvcKeyframe, 0).ok());
  ASSERT_TRUE(Audio(1, kAacFrame, 0).ok());
  ASSERT_TRUE(Audio(1, kAacFrame, 23).ok());
  ASSERT_TRUE(Video(1, kAvcInterFrame, 40).ok());
  ASSERT_TRUE(Command({Str("FCUnpublish"), Num(6), Value::Null(), Str("test")}).ok());
  ASSERT_TRUE(Command({Str("deleteStream"), Num(7), Value::Null(), Num(1)}).ok());

  std::vector<std::string> names;
  for (const Sent& s : sender_.sent) {
    names.push_back(s.header.type == MessageType::kCommandAmf0
                        ? s.Name() + (s.Name() == "onStatus" ? " " + s.Code() : "")
                        : "type " + std::to_string(int(s.header.type)));
  }
  EXPECT_THAT(names, ElementsAre("type 5", "type 6", "type 1", "_result", "_result", "onFCPublish",
                                 "_result", "type 4", "onStatus NetStream.Publish.Start",
                                 "onFCUnpublish", "onStatus NetStream.Unpublish.Success"));

  ASSERT_THAT(sink_.events, SizeIs(9));
  EXPECT_EQ(sink_.events.front().kind, Event::kBegin);
  EXPECT_EQ(sink_.events.back().kind, Event::kEnd);
  const std::vector<Event> frames = sink_.Frames();
  ASSERT_THAT(frames, SizeIs(7));
  EXPECT_EQ(frames[0].frame.type, FrameType::kData);
  EXPECT_EQ(Value(media::amf0::DecodeAll(frames[0].payload)->at(0)), Str("onMetaData"));
  EXPECT_TRUE(frames[1].frame.sequence_header);
  EXPECT_TRUE(frames[2].frame.sequence_header);
  EXPECT_EQ(frames[6].frame.dts, 40u);
  EXPECT_THAT(registry_.claimed, IsEmpty());
  EXPECT_EQ(session_->counters().frames, 7u);
  EXPECT_EQ(session_->counters().dropped_unpublished_media, 0u);
}

// A real ffmpeg publish (tests/data), through the real ChunkReader: the session emits
// exactly the video tags of the same clip encoded to an FLV file.
class RecordedPublishTest : public SessionTest,
                            public ::testing::WithParamInterface<const char*> {};

TEST_P(RecordedPublishTest, RecordedFfmpegPublishYieldsTheFileTags) {
  const Bytes capture = testing::ReadTestData(GetParam());
  std::span<const uint8_t> in(capture);
  in = in.subspan(1 + 2 * kHandshakeSize);  // C0 C1 C2
  ChunkReader reader;
  Message message;
  while (!in.empty()) {
    absl::StatusOr<ChunkReader::Result> r = reader.Read(in, &message);
    ASSERT_TRUE(r.ok()) << r.status();
    in = in.subspan(r->consumed);
    if (!r->message_ready || IsProtocolControl(message.header.type)) continue;
    ASSERT_TRUE(session_->OnMessage(message).ok());
  }
  EXPECT_EQ(session_->app(), "live");
  EXPECT_THAT(registry_.claimed, IsEmpty());  // FCUnpublish and deleteStream came
  ASSERT_GE(sink_.events.size(), 2u);
  EXPECT_EQ(sink_.events.front().kind, Event::kBegin);
  EXPECT_EQ(sink_.events.front().name, "test");
  EXPECT_EQ(sink_.events.back().kind, Event::kEnd);

  // The FLV file's body after its header (9 bytes + PreviousTagSize0) is a run of tags
  // laid out exactly like an aggregate message's.
  const Bytes flv = testing::ReadTestData("source_testsrc.flv");
  const Message file{.header = {.type = MessageType::kAggregate},
                     .payload = std::span<const uint8_t>(flv).subspan(9 + 4)};
  AggregateReader tags(file);
  std::vector<Message> file_video;
  Message tag;
  while (tags.Next(&tag)) {
    if (tag.header.type == MessageType::kVideo) file_video.push_back(tag);
  }
  ASSERT_TRUE(tags.status().ok()) << tags.status();

  std::vector<Event> video;
  for (const Event& e : sink_.Frames()) {
    if (e.frame.type == FrameType::kVideo) video.push_back(e);
  }
  ASSERT_EQ(video.size(), file_video.size());
  for (size_t i = 0; i < video.size(); ++i) {
    EXPECT_EQ(video[i].frame.dts, file_video[i].header.timestamp) << i;
    EXPECT_THAT(video[i].payload, ElementsAreArray(file_video[i].payload)) << i;
    const media::MediaTag expected = media::ParseVideoTag(file_video[i].payload);
    EXPECT_EQ(video[i].frame.keyframe, expected.keyframe) << i;
    EXPECT_EQ(video[i].frame.sequence_header, expected.sequence_header) << i;
  }
  EXPECT_TRUE(video.front().frame.sequence_header);
  EXPECT_EQ(sink_.Frames().front().frame.type, FrameType::kData);  // onMetaData first
  EXPECT_EQ(session_->counters().dropped_unpublished_media, 0u);
}

INSTANTIATE_TEST_SUITE_P(Captures, RecordedPublishTest,
                         ::testing::Values("ffmpeg_publish_chunk128.rtmp",
                                           "ffmpeg_publish_chunk65536.rtmp"));

}  // namespace
}  // namespace uringest::rtmp
