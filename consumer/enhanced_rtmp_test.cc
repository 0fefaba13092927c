// Enhanced RTMP end to end, without sockets: a publisher's E-RTMP messages (byte vectors
// built from the layouts of veovera's "Enhanced RTMP" v2, each byte explained) go through
// the I/O-free Session and the RingFrameSink into a real ring; they come back out of the
// ring with their FourCC, track id and flags, the directory keeps each track's sequence
// header, and uringest-cat's CatStream writes them as Enhanced FLV, body for body.

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "consumer/stream_cat.h"
#include "engine/ring_frame_sink.h"
#include "engine/rtmp/session.h"
#include "gtest/gtest.h"
#include "media/amf0.h"
#include "media/media_tag.h"
#include "ringbuf/reader.h"
#include "ringbuf/ring_reader.h"
#include "ringbuf/ring_server.h"
#include "tests/rtmp_testing.h"

namespace uringest::consumer {
namespace {

using Bytes = std::vector<uint8_t>;
using media::amf0::Value;
using ringbuf::RecordType;
using rtmp::MessageType;

class NullSender : public rtmp::MessageSender {
 public:
  void Send(const rtmp::MessageHeader&, std::span<const uint8_t>) override {}
};

class AnyNameRegistry : public rtmp::PublishRegistry {
 public:
  absl::Status Claim(rtmp::StreamName) override { return absl::OkStatus(); }
  void Release(rtmp::StreamName) override {}
};

Bytes Amf(const std::vector<Value>& values) {
  Bytes out;
  for (const Value& v : values) media::amf0::Encode(v, &out);
  return out;
}

// One message the publisher sends, and what the ring must say about it.
struct Sent {
  MessageType type;
  uint64_t dts;
  Bytes body;
  uint32_t codec = 0;
  uint8_t track_id = 0;
  uint8_t flags = 0;
  int32_t composition_offset = 0;
  uint32_t time_offset_ns = 0;  // ModEx TimestampOffsetNano
};

constexpr uint8_t kKey = ringbuf::kFlagKeyframe;
constexpr uint8_t kConfig = ringbuf::kFlagSequenceHeader;
constexpr uint8_t kEx = ringbuf::kFlagExHeader;
constexpr uint8_t kMulti = ringbuf::kFlagMultitrack;
constexpr uint8_t kCommand = ringbuf::kFlagCommand;

// An OBS-like HEVC + Opus publish with a second (AV1 video, FLAC audio) track.
std::vector<Sent> Publication() {
  using media::kFourCcAv1, media::kFourCcFlac, media::kFourCcHevc, media::kFourCcOpus;
  const Bytes metadata =
      Amf({Value::String("onMetaData"), Value::Object({{"videocodecid", Value::String("hvc1")},
                                                       {"audiocodecid", Value::String("Opus")},
                                                       {"width", Value::Number(1280)},
                                                       {"height", Value::Number(720)}})});
  return {
      {MessageType::kDataAmf0, 0, metadata, 0, 0, kKey},
      // 0x90: ExHeader bit | frameType 1 (key) << 4 | VideoPacketType 0 (SequenceStart);
      // "hvc1"; an HEVCDecoderConfigurationRecord: version 1, Main profile (0x01), the
      // 4-byte compatibility flags 0x60000000, 6 constraint bytes, level 90 (0x5A), then
      // 0xF000 (segmentation), 0xFC (parallelism), 0xFD (4:2:0), 0xF8 0xF8 (8 bit),
      // avgFrameRate 0, 0x0F (lengthSizeMinusOne 3), numOfArrays 0.
      {MessageType::kVideo, 0,
       Bytes{0x90, 'h',  'v',  'c',  '1',  0x01, 0x01, 0x60, 0x00, 0x00, 0x00, 0x90, 0x00, 0x00,
             0x00, 0x00, 0x00, 0x5A, 0xF0, 0x00, 0xFC, 0xFD, 0xF8, 0xF8, 0x00, 0x00, 0x0F, 0x00},
       media::kFourCcHevc, 0, kKey | kConfig | kEx},
      // 0x90: SoundFormat 9 (ExHeader) << 4 | AudioPacketType 0 (SequenceStart); "Opus";
      // an OpusHead: magic, version 1, 2 channels, pre-skip 312 (LE), 48000 Hz (LE),
      // gain 0, mapping family 0.
      {MessageType::kAudio, 0,
       Bytes{0x90, 'O', 'p', 'u',  's',  'O',  'p',  'u',  's',  'H',  'e',  'a',
             'd',  1,   2,   0x38, 0x01, 0x80, 0xBB, 0x00, 0x00, 0x00, 0x00, 0x00},
       media::kFourCcOpus, 0, kKey | kConfig | kEx},
      // 0x96: ExHeader | key | VideoPacketType 6 (Multitrack); 0x00: AvMultitrackType 0
      // (OneTrack) << 4 | SequenceStart; "av01"; trackId 1; an av1C: marker|version
      // 0x81, profile 0 level 4, 4:2:0 8 bit (0x0C), no presentation delay.
      {MessageType::kVideo, 0, Bytes{0x96, 0x00, 'a', 'v', '0', '1', 0x01, 0x81, 0x04, 0x0C, 0x00},
       media::kFourCcAv1, 1, kKey | kConfig | kEx},
      // 0x91: ExHeader | key | CodedFrames; "hvc1"; compositionTime SI24 33; a 4-byte
      // NALU length and an IDR slice NALU header (0x26 0x01).
      {MessageType::kVideo, 40,
       Bytes{0x91, 'h', 'v', 'c', '1', 0x00, 0x00, 0x21, 0x00, 0x00, 0x00, 0x02, 0x26, 0x01},
       media::kFourCcHevc, 0, kKey | kEx, 33},
      // 0xA6: ExHeader | frameType 2 (inter) | Multitrack; 0x23: ManyTracksManyCodecs (2)
      // << 4 | CodedFramesX (3); track "hvc1", id 0, sizeOfVideoTrack 6: a 4-byte NALU
      // length (2) and a TRAIL_R NALU header 0x02 0x01; track "av01", id 1, size 3: an
      // OBU header 0x32 (frame, has size), size 1, payload 0x00.
      {MessageType::kVideo, 73,
       Bytes{0xA6, 0x23, 'h', 'v', 'c', '1', 0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00, 0x02,
             0x02, 0x01, 'a', 'v', '0', '1', 0x01, 0x00, 0x00, 0x03, 0x32, 0x01, 0x00},
       media::kFourCcHevc, 0, kEx | kMulti},
      // 0xA7: ExHeader | inter | VideoPacketType 7 (ModEx); modExDataSize - 1 = 2; UI24
      // 500000 ns; 0x03: ModExType 0 (TimestampOffsetNano) << 4 | CodedFramesX; "hvc1";
      // one NALU.
      {MessageType::kVideo, 106,
       Bytes{0xA7, 0x02, 0x07, 0xA1, 0x20, 0x03, 'h', 'v', 'c', '1', 0x00, 0x00, 0x00, 0x02, 0x02,
             0x01},
       media::kFourCcHevc, 0, kEx, 0, 500'000},
      // 0x91: ExHeader audio | CodedFrames; "Opus"; one Opus packet (TOC 0xFC, 2 bytes).
      {MessageType::kAudio, 110, Bytes{0x91, 'O', 'p', 'u', 's', 0xFC, 0xFF, 0xFE},
       media::kFourCcOpus, 0, kKey | kEx},
      // 0x95: ExHeader audio | AudioPacketType 5 (Multitrack); 0x00: OneTrack |
      // SequenceStart; "fLaC"; trackId 1; the first bytes of a STREAMINFO block (min and
      // max block size 4096).
      {MessageType::kAudio, 110,
       Bytes{0x95, 0x00, 'f', 'L', 'a', 'C', 0x01, 0x10, 0x00, 0x10, 0x00}, media::kFourCcFlac, 1,
       kKey | kConfig | kEx},
      // 0xD1: ExHeader | frameType 5 (command) | CodedFrames; videoCommand 0 (StartSeek).
      {MessageType::kVideo, 120, Bytes{0xD1, 0x00}, 0, 0, kEx | kCommand},
      // 0x92: ExHeader | key | SequenceEnd; "hvc1". Not a keyframe.
      {MessageType::kVideo, 139, Bytes{0x92, 'h', 'v', 'c', '1'}, media::kFourCcHevc, 0, kEx},
  };
}

std::string UniqueName() {
  static std::atomic<int> counter{0};
  return absl::StrCat("uringest-ertmp-test-", getpid(), "-", counter.fetch_add(1));
}

class EnhancedRtmpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = ringbuf::RingServer::Create({.name = name_,
                                               .ring_capacity = ringbuf::kMinRingCapacity,
                                               .directory_slots = 8,
                                               .huge_pages = false,
                                               .prefault = false});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    sink_ = std::make_unique<engine::RingFrameSink>(&server_->shard(0), "127.0.0.1:5000");
    session_ =
        std::make_unique<rtmp::Session>(rtmp::SessionOptions{}, &sender_, sink_.get(), &registry_);
  }
  void TearDown() override {
    session_.reset();
    sink_.reset();
    server_.reset();
  }

  absl::Status Deliver(MessageType type, uint32_t stream_id, const Bytes& payload,
                       uint64_t timestamp = 0) {
    return session_->OnMessage(rtmp::Message{.header = {.chunk_stream_id = 4,
                                                        .type = type,
                                                        .stream_id = stream_id,
                                                        .timestamp = timestamp},
                                             .payload = payload});
  }
  // connect (announcing E-RTMP as OBS 30 does), createStream, publish live/erx.
  void Publish() {
    const Value connect = Value::Object(
        {{"app", Value::String("live")},
         {"tcUrl", Value::String("rtmp://127.0.0.1/live")},
         {"fourCcList", Value::StrictArray({Value::String("av01"), Value::String("hvc1")})},
         {"capsEx", Value::Number(rtmp::kCapsExMultitrack)}});
    ASSERT_TRUE(Deliver(MessageType::kCommandAmf0, 0,
                        Amf({Value::String("connect"), Value::Number(1), connect}))
                    .ok());
    ASSERT_TRUE(session_->client_caps().present);
    ASSERT_TRUE(Deliver(MessageType::kCommandAmf0, 0,
                        Amf({Value::String("createStream"), Value::Number(2), Value::Null()}))
                    .ok());
    ASSERT_TRUE(Deliver(MessageType::kCommandAmf0, 1,
                        Amf({Value::String("publish"), Value::Number(3), Value::Null(),
                             Value::String("erx"), Value::String("live")}))
                    .ok());
  }
  void Send(const std::vector<Sent>& messages) {
    for (const Sent& m : messages) {
      Bytes payload = m.body;
      if (m.type == MessageType::kDataAmf0) {
        payload = Amf({Value::String("@setDataFrame")});
        payload.insert(payload.end(), m.body.begin(), m.body.end());
      }
      ASSERT_TRUE(Deliver(m.type, 1, payload, m.dts).ok());
    }
  }

  // Runs uringest-cat's CatStream as a late joiner of live/erx, then ends the stream;
  // its output goes to *out, its log lines to *log. Fails the test unless it ends OK.
  void CatLateJoiner(VectorSink* out, std::vector<std::string>* log) {
    std::promise<void> followed;
    CatOptions options{.ring = name_, .stream = "live/erx"};
    options.log = [&followed, log, done = false](std::string_view line) mutable {
      log->emplace_back(line);
      if (!done && line.starts_with("following")) {
        done = true;
        followed.set_value();
      }
    };
    auto cat = std::async(std::launch::async, [&] { return CatStream(options, out); });
    ASSERT_EQ(followed.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
    session_->Close();  // ends the stream
    ASSERT_EQ(cat.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    absl::Status status = cat.get();
    ASSERT_TRUE(status.ok()) << status;
  }

  std::string name_ = UniqueName();
  std::unique_ptr<ringbuf::RingServer> server_;
  NullSender sender_;
  AnyNameRegistry registry_;
  std::unique_ptr<engine::RingFrameSink> sink_;
  std::unique_ptr<rtmp::Session> session_;
};

TEST_F(EnhancedRtmpTest, RecordsCarryFourCcTrackIdAndFlagsWithBodiesAsSent) {
  Publish();
  const std::vector<Sent> sent = Publication();
  Send(sent);
  auto reader = ringbuf::RingReader::Open(server_->directory().RingPath(name_, 0));
  ASSERT_TRUE(reader.ok()) << reader.status();
  (*reader)->SeekToOldest();
  size_t i = 0;
  ringbuf::RecordView view;
  while ((*reader)->Poll(&view)) {
    if (view.type() == RecordType::kStreamBegin) continue;
    ASSERT_LT(i, sent.size());
    const Sent& want = sent[i++];
    SCOPED_TRACE(absl::StrCat("message ", i));
    EXPECT_EQ(view.header.type, uint8_t(want.type));
    EXPECT_EQ(view.header.codec, want.codec);
    EXPECT_EQ(view.header.track_id, want.track_id);
    EXPECT_EQ(view.header.flags, want.flags);
    EXPECT_EQ(view.header.dts, int64_t(want.dts));
    EXPECT_EQ(view.header.pts, int64_t(want.dts) + want.composition_offset);
    EXPECT_EQ(view.header.time_offset_ns, want.time_offset_ns);
    EXPECT_EQ(Bytes(view.payload.begin(), view.payload.end()), want.body);
    EXPECT_TRUE((*reader)->Validate(view));
  }
  EXPECT_EQ(i, sent.size());
}

TEST_F(EnhancedRtmpTest, DirectoryKeepsEachTracksSequenceHeader) {
  Publish();
  const std::vector<Sent> sent = Publication();
  Send(sent);
  std::optional<ringbuf::StreamInfo> info = server_->directory().Find("live/erx");
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->codec.video_codec, media::kFourCcHevc);
  EXPECT_EQ(info->codec.audio_codec, media::kFourCcOpus);
  // In the order they came.
  ASSERT_EQ(info->configs.size(), 4u);
  EXPECT_EQ(info->configs[0].body, sent[1].body);  // track 0: hvc1
  EXPECT_EQ(info->configs[1].body, sent[2].body);  // track 0: Opus
  EXPECT_EQ(info->configs[2].type, RecordType::kVideo);
  EXPECT_EQ(info->configs[2].track_id, 1);
  EXPECT_EQ(info->configs[2].body, sent[3].body);  // av01 on track 1
  EXPECT_EQ(info->configs[3].type, RecordType::kAudio);
  EXPECT_EQ(info->configs[3].track_id, 1);
  EXPECT_EQ(info->configs[3].body, sent[8].body);  // fLaC on track 1
}

TEST_F(EnhancedRtmpTest, LateJoinerGetsEnhancedFlvWithEveryTracksConfig) {
  Publish();
  const std::vector<Sent> sent = Publication();
  Send(sent);
  VectorSink out;
  std::vector<std::string> log;
  ASSERT_NO_FATAL_FAILURE(CatLateJoiner(&out, &log));

  ASSERT_GE(out.bytes().size(), 9u);
  EXPECT_EQ(out.bytes()[4], 0x05);  // FLV header: audio and video
  const std::vector<testing::FlvTag> tags = testing::ParseFlvTags(out.bytes());
  // The ManyTracksManyCodecs message (5) is written as one tag per track: 0xA3 (ExHeader
  // | inter | CodedFramesX) "hvc1" and track 0's bytes; 0xA6 (Multitrack), 0x03
  // (OneTrack | CodedFramesX), "av01", track 1 and its bytes.
  const Bytes track0 = {0xA3, 'h', 'v', 'c', '1', 0x00, 0x00, 0x00, 0x02, 0x02, 0x01};
  const Bytes track1 = {0xA6, 0x03, 'a', 'v', '0', '1', 0x01, 0x32, 0x01, 0x00};
  // The directory's onMetaData, track 0's configs, track 1's configs, then from the
  // latest keyframe (message 4) on; track 1's fLaC config is not repeated.
  const std::vector<Bytes> expected = {sent[0].body, sent[1].body, sent[2].body, sent[3].body,
                                       sent[8].body, sent[4].body, track0,       track1,
                                       sent[6].body, sent[7].body, sent[9].body, sent[10].body};
  ASSERT_EQ(tags.size(), expected.size());
  for (size_t i = 0; i < tags.size(); ++i) {
    SCOPED_TRACE(absl::StrCat("tag ", i));
    EXPECT_EQ(tags[i].body, expected[i]);
  }
  EXPECT_EQ(tags[0].type, uint8_t(MessageType::kDataAmf0));
  EXPECT_EQ(tags[4].type, uint8_t(MessageType::kAudio));
  EXPECT_EQ(tags[5].timestamp, 0u);                       // the keyframe starts the file
  EXPECT_EQ(tags[6].timestamp - tags[5].timestamp, 33u);  // dts 73 - 40, as sent
  EXPECT_EQ(tags[7].timestamp, tags[6].timestamp);        // both tracks of message 5
}

// A ManyTracks sequence start holds several tracks' configurations in one message. The
// ring keeps the message as sent; the directory keeps each track's on its own, as the
// single-track (track 0) or OneTrack message that would carry it alone, so that a later
// update of one track replaces just that track's.
TEST_F(EnhancedRtmpTest, ManyTracksSequenceStartIsKeptPerTrack) {
  Publish();
  // 0x96: ExHeader | key | Multitrack; 0x20: ManyTracksManyCodecs << 4 | SequenceStart;
  // track "hvc1", id 0, size 3 (3 bytes standing in for an hvcC); track "av01", id 2,
  // size 4: an av1C (0x81, profile 0 level 8, 0x0C, 0x00).
  const Bytes many = {0x96, 0x20, 'h', 'v', 'c',  '1',  0x00, 0x00, 0x00, 0x03, 0x01, 0x02, 0x03,
                      'a',  'v',  '0', '1', 0x02, 0x00, 0x00, 0x04, 0x81, 0x08, 0x0C, 0x00};
  // 0x96, 0x00 (OneTrack | SequenceStart), "av01", track 2: a new av1C (level 9).
  const Bytes track2_update = {0x96, 0x00, 'a', 'v', '0', '1', 0x02, 0x81, 0x09, 0x0C, 0x00};
  ASSERT_TRUE(Deliver(MessageType::kVideo, 1, many, 0).ok());

  std::optional<ringbuf::StreamInfo> info = server_->directory().Find("live/erx");
  ASSERT_TRUE(info.has_value());
  // Track 0 alone: 0x90 (ExHeader | key | SequenceStart), "hvc1", its 3 bytes.
  ASSERT_EQ(info->configs.size(), 2u);
  EXPECT_EQ(info->configs[0].body, (Bytes{0x90, 'h', 'v', 'c', '1', 0x01, 0x02, 0x03}));
  EXPECT_EQ(info->configs[1].type, RecordType::kVideo);
  EXPECT_EQ(info->configs[1].track_id, 2);
  EXPECT_EQ(info->configs[1].flags, kConfig | kEx);
  // Track 2 alone: 0x96, 0x00 (OneTrack | SequenceStart), "av01", id 2, its 4 bytes.
  EXPECT_EQ(info->configs[1].body,
            (Bytes{0x96, 0x00, 'a', 'v', '0', '1', 0x02, 0x81, 0x08, 0x0C, 0x00}));

  ASSERT_TRUE(Deliver(MessageType::kVideo, 1, track2_update, 40).ok());
  info = server_->directory().Find("live/erx");
  ASSERT_TRUE(info.has_value());
  ASSERT_EQ(info->configs.size(), 2u);
  EXPECT_EQ(info->configs[1].body, track2_update);
  EXPECT_EQ(info->configs[0].body, (Bytes{0x90, 'h', 'v', 'c', '1', 0x01, 0x02, 0x03}));

  // The ring has both messages as sent.
  auto reader = ringbuf::RingReader::Open(server_->directory().RingPath(name_, 0));
  ASSERT_TRUE(reader.ok()) << reader.status();
  (*reader)->SeekToOldest();
  std::vector<Bytes> bodies;
  ringbuf::RecordView view;
  while ((*reader)->Poll(&view)) {
    if (view.type() == RecordType::kVideo)
      bodies.emplace_back(view.payload.begin(), view.payload.end());
  }
  EXPECT_EQ(bodies, (std::vector<Bytes>{many, track2_update}));
}

// What else a decoder needs from a track's start: an audio MultichannelConfig and a
// video Metadata packet (colorInfo). They are no sequence headers, but a late joiner gets
// them from the directory as it gets those.
TEST_F(EnhancedRtmpTest, MultichannelConfigAndColorInfoReachLateJoiners) {
  Publish();
  const std::vector<Sent> sent = Publication();
  Send(sent);
  // 0x94: SoundFormat 9 << 4 | AudioPacketType 4 (MultichannelConfig); "Opus";
  // audioChannelOrder 1 (Native), channelCount 6, audioChannelFlags UI32 0x3F (front
  // left, front right, front center, LFE, back left, back right: 5.1).
  const Bytes channels = {0x94, 'O', 'p', 'u', 's', 0x01, 0x06, 0x00, 0x00, 0x00, 0x3F};
  // 0x94: ExHeader | key | VideoPacketType 4 (Metadata); "hvc1"; then AMF0 "colorInfo"
  // and an object with colorConfig (BT.2020 primaries 9, PQ transfer 16, matrix 9, 10 bit).
  Bytes color = {0x94, 'h', 'v', 'c', '1'};
  const Bytes amf =
      Amf({Value::String("colorInfo"),
           Value::Object(
               {{"colorConfig", Value::Object({{"bitDepth", Value::Number(10)},
                                               {"colorPrimaries", Value::Number(9)},
                                               {"transferCharacteristics", Value::Number(16)},
                                               {"matrixCoefficients", Value::Number(9)}})}})});
  color.insert(color.end(), amf.begin(), amf.end());
  ASSERT_TRUE(Deliver(MessageType::kAudio, 1, channels, 150).ok());
  ASSERT_TRUE(Deliver(MessageType::kVideo, 1, color, 150).ok());

  std::optional<ringbuf::StreamInfo> info = server_->directory().Find("live/erx");
  ASSERT_TRUE(info.has_value());
  // Track 0's two sequence headers, av01 and fLaC on track 1, then these two.
  ASSERT_EQ(info->configs.size(), 6u);
  EXPECT_EQ(info->configs[4].type, RecordType::kAudio);
  EXPECT_EQ(info->configs[4].track_id, 0);
  EXPECT_EQ(info->configs[4].packet_type, uint8_t(media::AudioPacketType::kMultichannelConfig));
  EXPECT_EQ(info->configs[4].flags, kEx);  // not a sequence header
  EXPECT_EQ(info->configs[4].body, channels);
  EXPECT_EQ(info->configs[5].type, RecordType::kVideo);
  EXPECT_EQ(info->configs[5].packet_type, uint8_t(media::VideoPacketType::kMetadata));
  EXPECT_EQ(info->configs[5].body, color);

  // A reader that joins now gets them before the first frame, without the sequence
  // header flag.
  auto reader = ringbuf::Reader::Open(name_);
  ASSERT_TRUE(reader.ok()) << reader.status();
  ASSERT_TRUE((*reader)->Follow("live/erx", {}).ok());
  std::vector<ringbuf::Frame> replayed;
  ringbuf::Frame frame;
  while ((*reader)->Next(&frame, absl::ZeroDuration()) == ringbuf::ReadResult::kFrame &&
         frame.from_directory) {
    replayed.push_back(frame);
  }
  ASSERT_EQ(replayed.size(), 1u + 2u + 4u);  // onMetaData, track 0's two, the four above
  EXPECT_EQ(Bytes(replayed[5].payload.begin(), replayed[5].payload.end()), channels);
  EXPECT_EQ(replayed[5].meta.flags, kKey | kEx);
  EXPECT_EQ(replayed[5].meta.packet_type, uint8_t(media::AudioPacketType::kMultichannelConfig));
  EXPECT_EQ(Bytes(replayed[6].payload.begin(), replayed[6].payload.end()), color);
  EXPECT_EQ(replayed[6].meta.type, RecordType::kVideo);
}

// What uringest-cat makes of those for an FLV reader: configurations at time 0 that don't
// move the file's start (the keyframe it joins at is still 0), colorInfo with frame type
// 5 as ffmpeg reads it, and no MPEG2TSSequenceStart.
TEST_F(EnhancedRtmpTest, LateJoinerFileStartsAtZeroWithKeptConfigurationPackets) {
  Publish();
  const std::vector<Sent> sent = Publication();
  Send(sent);
  // 0x94 "Opus": MultichannelConfig, Unspecified order (0), 2 channels.
  const Bytes channels = {0x94, 'O', 'p', 'u', 's', 0x00, 0x02};
  // 0x94 "hvc1": Metadata (frame type 1); AMF0 "colorInfo", {}.
  Bytes color = {0x94, 'h', 'v', 'c', '1'};
  const Bytes amf = Amf({Value::String("colorInfo"), Value::Object({})});
  color.insert(color.end(), amf.begin(), amf.end());
  // 0x95 "av01": MPEG2TSSequenceStart (5), a 3-byte stand-in for the descriptor.
  const Bytes mpeg2ts = {0x95, 'a', 'v', '0', '1', 0x80, 0x04, 0x81};
  ASSERT_TRUE(Deliver(MessageType::kAudio, 1, channels, 5000).ok());
  ASSERT_TRUE(Deliver(MessageType::kVideo, 1, color, 5000).ok());
  ASSERT_TRUE(Deliver(MessageType::kVideo, 1, mpeg2ts, 5000).ok());
  // A keyframe an hour in: "hvc1" CodedFramesX, one NALU.
  const Bytes key = {0x93, 'h', 'v', 'c', '1', 0x00, 0x00, 0x00, 0x02, 0x26, 0x01};
  ASSERT_TRUE(Deliver(MessageType::kVideo, 1, key, 3'600'000).ok());
  // The MPEG2TSSequenceStart did not replace track 0's SequenceStart.
  EXPECT_EQ(server_->directory().Find("live/erx")->FindConfig(RecordType::kVideo)->body,
            sent[1].body);

  VectorSink out;
  std::vector<std::string> log;
  ASSERT_NO_FATAL_FAILURE(CatLateJoiner(&out, &log));

  const std::vector<testing::FlvTag> tags = testing::ParseFlvTags(out.bytes());
  Bytes color_type5 = color;
  color_type5[0] = 0xD4;  // ExHeader | frame type 5 | Metadata
  std::vector<Bytes> bodies;
  for (const testing::FlvTag& t : tags) {
    bodies.push_back(t.body);
    EXPECT_EQ(t.timestamp, 0u);  // the configurations, and the keyframe joined at
  }
  EXPECT_NE(std::find(bodies.begin(), bodies.end(), channels), bodies.end());
  EXPECT_NE(std::find(bodies.begin(), bodies.end(), color_type5), bodies.end());
  EXPECT_EQ(std::find(bodies.begin(), bodies.end(), color), bodies.end());
  EXPECT_EQ(std::find(bodies.begin(), bodies.end(), mpeg2ts), bodies.end());
  EXPECT_EQ(bodies.back(), key);
  EXPECT_EQ(
      std::count_if(log.begin(), log.end(),
                    [](const std::string& l) { return l.find("MPEG2TSSequenceStart") != l.npos; }),
      1);
}

}  // namespace
}  // namespace uringest::consumer
