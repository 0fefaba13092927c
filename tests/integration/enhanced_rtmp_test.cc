// Issue 7's Enhanced RTMP over real sockets: a test publisher (no ffmpeg here speaks
// Enhanced RTMP) announces it at connect, as OBS 30 does, and publishes HEVC, AV1, Opus
// and FLAC in Enhanced RTMP messages, some in several chunks, one large enough for the
// server to hand out in pieces, to the real uringestd; the real uringest-cat writes the
// stream as Enhanced FLV. The file must hold every message, body for body, with the
// multitrack ones one tag per track; uringest-stat shows the stream's tracks.

#include <unistd.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "engine/rtmp/enhanced_caps.h"
#include "gtest/gtest.h"
#include "media/amf0.h"
#include "media/byte_order.h"
#include "media/media_tag.h"
#include "tests/integration/ingest_harness.h"
#include "tests/integration/process.h"
#include "tests/integration/rtmp_client.h"
#include "tests/rtmp_testing.h"

namespace uringest::testing {
namespace {

using Bytes = std::vector<uint8_t>;
using media::amf0::Value;
using rtmp::MessageType;

// What the publisher sends, in order.
struct Sent {
  MessageType type;
  uint32_t timestamp;
  Bytes body;
};

// "hvc1" CodedFrames, keyframe, composition time 0: one IDR slice NALU of `size` bytes.
Bytes HevcKeyframe(size_t size) {
  Bytes b = {0x91, 'h', 'v', 'c', '1', 0x00, 0x00, 0x00};
  media::AppendU32(&b, uint32_t(size));
  b.push_back(0x26);  // NALU header: IDR_W_RADL
  b.push_back(0x01);
  for (size_t i = 2; i < size; ++i) b.push_back(uint8_t(i * 7));
  return b;
}

// 0x96: ExHeader | key | Multitrack; 0x11: ManyTracks | CodedFrames; "av01"; tracks 1
// and 2 of `size` bytes each: larger than a chunk, so the server gathers the message from
// chunks whose first ends inside track 1.
Bytes Av1ManyTracksKeyframe(size_t size) {
  Bytes b = {0x96, 0x11, 'a', 'v', '0', '1'};
  for (uint8_t track : {1, 2}) {
    b.push_back(track);
    media::AppendU24(&b, uint32_t(size));
    for (size_t i = 0; i < size; ++i) b.push_back(uint8_t(i * track + 3));
  }
  return b;
}

std::vector<Sent> Publication() {
  return {
      // 0x90: ExHeader | key | SequenceStart; "hvc1"; an HEVCDecoderConfigurationRecord
      // cut to its first 23 bytes (version 1, Main, level 90, no arrays).
      {MessageType::kVideo, 0, {0x90, 'h',  'v',  'c',  '1',  0x01, 0x01, 0x60, 0x00, 0x00,
                                0x00, 0x90, 0x00, 0x00, 0x00, 0x00, 0x00, 0x5A, 0xF0, 0x00,
                                0xFC, 0xFD, 0xF8, 0xF8, 0x00, 0x00, 0x0F, 0x00}},
      // 0x90: SoundFormat 9 << 4 | SequenceStart; "Opus"; an OpusHead (2 channels,
      // pre-skip 312, 48 kHz).
      {MessageType::kAudio, 0, {0x90, 'O',  'p',  'u',  's',  'O',  'p',  'u',
                                's',  'H',  'e',  'a',  'd',  1,    2,    0x38,
                                0x01, 0x80, 0xBB, 0x00, 0x00, 0x00, 0x00, 0x00}},
      // 0x96: ExHeader | key | Multitrack; 0x20: ManyTracksManyCodecs | SequenceStart;
      // "av01" track 1, size 4: an av1C; "vp09" track 2, size 3: a vpcC stand-in.
      {MessageType::kVideo, 0, {0x96, 0x20, 'a',  'v',  '0',  '1',  0x01, 0x00, 0x00,
                                0x04, 0x81, 0x08, 0x0C, 0x00, 'v',  'p',  '0',  '9',
                                0x02, 0x00, 0x00, 0x03, 0x01, 0x00, 0x00}},
      // 0x95: audio Multitrack; 0x00: OneTrack | SequenceStart; "fLaC", track 1: the
      // first bytes of a STREAMINFO block.
      {MessageType::kAudio, 0, {0x95, 0x00, 'f', 'L', 'a', 'C', 0x01, 0x10, 0x00, 0x10, 0x00}},
      // A 300 KB HEVC keyframe: many chunks, handed out in pieces.
      {MessageType::kVideo, 0, HevcKeyframe(300'000)},
      // Both AV1 tracks' keyframes in one 200 KB ManyTracks message.
      {MessageType::kVideo, 0, Av1ManyTracksKeyframe(100'000)},
      // 0xA6: inter | Multitrack; 0x13: ManyTracks | CodedFramesX; "av01"; track 1 size 3
      // (an OBU), track 2 size 3.
      {MessageType::kVideo, 33, {0xA6, 0x13, 'a',  'v',  '0',  '1',  0x01, 0x00, 0x00, 0x03,
                                 0x32, 0x01, 0x00, 0x02, 0x00, 0x00, 0x03, 0x32, 0x01, 0x01}},
      // 0xA7: inter | ModEx; 3 bytes: 250000 ns; TimestampOffsetNano | CodedFramesX;
      // "hvc1"; one TRAIL_R NALU.
      {MessageType::kVideo,
       66,
       {0xA7, 0x02, 0x03, 0xD0, 0x90, 0x03, 'h', 'v', 'c', '1', 0x00, 0x00, 0x00, 0x02, 0x02,
        0x01}},
      // 0x91: audio CodedFrames; "Opus"; a 3-byte packet.
      {MessageType::kAudio, 70, {0x91, 'O', 'p', 'u', 's', 0xFC, 0xFF, 0xFE}},
      // 0x92: ExHeader | key | SequenceEnd; "hvc1".
      {MessageType::kVideo, 99, {0x92, 'h', 'v', 'c', '1'}},
  };
}

// The tags uringest-cat must write for `sent`, of `type`: multitrack messages as one
// message per track.
std::vector<Bytes> ExpectedTags(const std::vector<Sent>& sent, MessageType type) {
  std::vector<Bytes> tags;
  for (const Sent& s : sent) {
    if (s.type != type) continue;
    const bool video = type == MessageType::kVideo;
    const media::MediaTag tag = video ? media::ParseVideoTag(s.body) : media::ParseAudioTag(s.body);
    if (!tag.multitrack || tag.track_count == 1) {
      tags.push_back(s.body);
      continue;
    }
    media::MediaTrack tracks[4];
    const size_t count = media::ListTracks(s.body, video, tracks);
    for (size_t i = 0; i < count; ++i) {
      Bytes alone;
      media::SingleTrackBody(video, (s.body[0] >> 4) & 0x07, tag.packet_type, tracks[i], &alone);
      tags.push_back(alone);
    }
  }
  return tags;
}

TEST(EnhancedRtmpTest, PublishedEnhancedRtmpComesOutAsEnhancedFlv) {
  ScratchDir dir;
  std::unique_ptr<IngestServer> server = IngestServer::Start(1, dir);
  ASSERT_NE(server, nullptr);
  Process cat = StartCat(server->ring(), "live/erx", dir.Path("out.flv"), dir.Path("cat.log"));
  ASSERT_TRUE(AwaitDirectoryMapped(cat.pid(), server->ring()));

  std::unique_ptr<RtmpClient> client = RtmpClient::Connect(server->port());
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Handshake());
  // connect as OBS 30 does: the FourCCs it may send, and capsEx Multitrack | ModEx.
  ASSERT_TRUE(client->SendCommand(
      "connect", 1,
      {Value::Object(
          {{"app", Value::String("live")},
           {"tcUrl", Value::String("rtmp://127.0.0.1/live")},
           {"fourCcList", Value::StrictArray({Value::String("hvc1"), Value::String("av01"),
                                              Value::String("vp09")})},
           {"capsEx", Value::Number(rtmp::kCapsExMultitrack | rtmp::kCapsExModEx)}})}));
  std::optional<std::vector<Value>> result = client->AwaitCommand();
  ASSERT_TRUE(result.has_value());
  ASSERT_EQ((*result)[0].string(), "_result");
  ASSERT_GE(result->size(), 3u);
  // The answer: the server can forward every codec, and has Multitrack and ModEx.
  const Value* caps = (*result)[2].Find("capsEx");
  ASSERT_NE(caps, nullptr);
  EXPECT_EQ(uint32_t(caps->number()) & (rtmp::kCapsExMultitrack | rtmp::kCapsExModEx),
            rtmp::kCapsExMultitrack | rtmp::kCapsExModEx);
  const Value* video_map = (*result)[2].Find("videoFourCcInfoMap");
  ASSERT_NE(video_map, nullptr);
  const Value* any = video_map->Find("*");
  ASSERT_NE(any, nullptr);
  EXPECT_EQ(uint32_t(any->number()), rtmp::kFourCcCanForward);

  std::optional<uint32_t> stream = client->CreateStream();
  ASSERT_TRUE(stream.has_value());
  ASSERT_EQ(client->Publish(*stream, "erx"), "NetStream.Publish.Start");
  const std::vector<Sent> sent = Publication();
  for (size_t i = 0; i < sent.size(); ++i) {
    // The default chunk size (128) for the small messages, then 64 KiB from the large
    // keyframe on, so that it arrives in the few chunks the server gathers.
    if (i == 4) {
      ASSERT_TRUE(client->SetChunkSize(65536));
    }
    const Sent& s = sent[i];
    ASSERT_TRUE(client->Send({.chunk_stream_id = s.type == MessageType::kAudio ? 4u : 6u,
                              .type = s.type,
                              .stream_id = *stream,
                              .timestamp = s.timestamp},
                             s.body));
  }
  ASSERT_TRUE(WaitForStream(server->ring(), "live/erx", 1 + sent.size(), absl::Seconds(10)));
  // uringest-stat names track 0's codecs and the other tracks.
  const std::string json = dir.Path("stat.json");
  ASSERT_EQ(RunCommand({ToolPath("uringest-stat"), "--ring", server->ring(), "--json", "--interval",
                        "0.1"},
                       kProcessTimeout, json),
            0);
  const std::string stat = ReadFile(json);
  EXPECT_NE(stat.find("\"video_codec\":\"HEVC\",\"audio_codec\":\"Opus\""), std::string::npos)
      << stat;
  EXPECT_NE(stat.find("\"tracks\":[{\"type\":\"video\",\"track_id\":1,\"codec\":\"AV1\"},"
                      "{\"type\":\"video\",\"track_id\":2,\"codec\":\"VP9\"},"
                      "{\"type\":\"audio\",\"track_id\":1,\"codec\":\"FLAC\"}]"),
            std::string::npos)
      << stat;
  ASSERT_TRUE(client->SendCommand("deleteStream", 0, {Value::Null(), Value::Number(*stream)}));
  client.reset();
  ASSERT_EQ(cat.Wait(kProcessTimeout), 0)
      << ReadFile(dir.Path("cat.log")) << ReadFile(server->log_path());

  const std::string flv = dir.Path("out.flv");
  EXPECT_EQ(TagBodies(flv, 9), ExpectedTags(sent, MessageType::kVideo));
  EXPECT_EQ(TagBodies(flv, 8), ExpectedTags(sent, MessageType::kAudio));
  const std::string log = ReadFile(server->log_path());
  EXPECT_NE(log.find("publishing live/erx"), std::string::npos) << log;
  EXPECT_EQ(log.find("error"), std::string::npos) << log;
}

}  // namespace
}  // namespace uringest::testing
