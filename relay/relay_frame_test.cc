#include "relay/relay_frame.h"

#include "gtest/gtest.h"
#include "media/amf0.h"
#include "media/media_tag.h"
#include "ringbuf/ring_format.h"

namespace uringest::relay {
namespace {

using ringbuf::RecordMeta;
using ringbuf::RecordType;

struct Made {
  FramePtr frame;
  RecordMeta meta;
};

Made Video(int64_t dts, uint8_t flags, uint8_t packet_type = 1) {
  RecordMeta meta{
      .type = RecordType::kVideo, .flags = flags, .dts = dts, .packet_type = packet_type};
  const uint8_t body[] = {
      uint8_t((flags & ringbuf::kFlagKeyframe) ? 0x17 : 0x27), packet_type, 0, 0, 0, uint8_t(dts)};
  return {MakeFrame(meta, body, 0), meta};
}

Made Audio(int64_t dts, bool config) {
  RecordMeta meta{.type = RecordType::kAudio,
                  .flags = uint8_t(config ? ringbuf::kFlagSequenceHeader : 0),
                  .dts = dts,
                  .packet_type = uint8_t(config ? 0 : 1)};
  const uint8_t body[] = {0xaf, uint8_t(config ? 0 : 1), uint8_t(dts)};
  return {MakeFrame(meta, body, 0), meta};
}

Made Metadata() {
  std::vector<uint8_t> body;
  media::amf0::EncodeString("onMetaData", &body);
  media::amf0::EncodeObjectStart(&body);
  media::amf0::EncodeObjectEnd(&body);
  RecordMeta meta{.type = RecordType::kData};
  return {MakeFrame(meta, body, 0), meta};
}

TEST(RelayFrameTest, KindsOfFrames) {
  EXPECT_TRUE(Video(0, ringbuf::kFlagKeyframe | ringbuf::kFlagSequenceHeader, 0).frame->config);
  EXPECT_FALSE(Video(0, ringbuf::kFlagKeyframe | ringbuf::kFlagSequenceHeader, 0).frame->keyframe);
  EXPECT_TRUE(Video(40, ringbuf::kFlagKeyframe).frame->keyframe);
  EXPECT_FALSE(Video(80, 0).frame->keyframe);
  EXPECT_TRUE(Audio(0, true).frame->config);
  EXPECT_EQ(Audio(0, true).frame->type, rtmp::MessageType::kAudio);
  EXPECT_TRUE(Metadata().frame->metadata);
  EXPECT_EQ(Metadata().frame->type, rtmp::MessageType::kDataAmf0);
  EXPECT_EQ(Video(1234, 0).frame->timestamp, 1234u);
}

TEST(RelayFrameTest, OpeningIsMetadataConfigsAndTheLatestGop) {
  StreamStart start;
  auto add = [&](const Made& m) { start.Add(m.frame, m.meta); };
  const Made meta = Metadata();
  const Made avc = Video(0, ringbuf::kFlagKeyframe | ringbuf::kFlagSequenceHeader, 0);
  const Made aac = Audio(0, true);
  add(meta);
  add(avc);
  add(aac);
  EXPECT_FALSE(start.has_keyframe());
  add(Video(0, 0));  // before any keyframe: undecodable, not kept
  EXPECT_FALSE(start.has_keyframe());
  add(Video(40, ringbuf::kFlagKeyframe));
  EXPECT_TRUE(start.has_keyframe());
  add(Audio(50, false));
  const Made k2 = Video(2000, ringbuf::kFlagKeyframe);
  add(k2);
  const Made p = Video(2040, 0);
  add(p);
  const Made aac2 = Audio(2050, true);  // a new audio configuration replaces the old
  add(aac2);
  StreamStart::Start opening = start.Opening();
  EXPECT_EQ(opening.metadata, meta.frame);
  // The configurations from before the keyframe; the new one stays where it came.
  EXPECT_EQ(opening.configs, std::vector<FramePtr>{avc.frame});
  EXPECT_EQ(opening.frames, (std::vector<FramePtr>{k2.frame, p.frame, aac2.frame}));
  EXPECT_EQ(start.opening_time(), 2000u);
  EXPECT_TRUE(start.video());

  start.Lost();
  EXPECT_FALSE(start.has_keyframe());
  opening = start.Opening();
  EXPECT_EQ(opening.configs, (std::vector<FramePtr>{avc.frame, aac2.frame}));
  EXPECT_TRUE(opening.frames.empty());
}

TEST(RelayFrameTest, DuringTheFirstGopTheStreamIsKeptAsItCame) {
  StreamStart start;
  auto add = [&](const Made& m) { start.Add(m.frame, m.meta); };
  const Made cfg = Video(0, ringbuf::kFlagKeyframe | ringbuf::kFlagSequenceHeader, 0);
  add(cfg);
  const Made a0 = Audio(0, false);
  add(a0);
  add(Video(10, 0));  // undecodable without a keyframe: left out
  const Made k = Video(23, ringbuf::kFlagKeyframe);
  add(k);
  const StreamStart::Start opening = start.Opening();
  EXPECT_TRUE(opening.configs.empty()) << "the configuration is in its place";
  EXPECT_EQ(opening.frames, (std::vector<FramePtr>{cfg.frame, a0.frame, k.frame}));
  EXPECT_EQ(start.opening_time(), 0u);
}

// Multitrack (ffmpeg sends track 1 as OneTrack messages): a keyframe of another track
// is not where a destination can start, and keeps the frames of track 0's GOP.
TEST(RelayFrameTest, OnlyTrackZerosKeyframesStartAGop) {
  StreamStart start;
  auto add = [&](const Made& m) { start.Add(m.frame, m.meta); };
  const Made k0 = Video(0, ringbuf::kFlagKeyframe);
  add(k0);
  RecordMeta track1{
      .type = RecordType::kVideo,
      .flags = ringbuf::kFlagKeyframe | ringbuf::kFlagExHeader | ringbuf::kFlagMultitrack,
      .dts = 0,
      .codec = media::FourCc("hvc1"),
      .track_id = 1,
      .packet_type = 1};
  const uint8_t body[] = {0x96, 0x01, 'h', 'v', 'c', '1', 1};
  const FramePtr k1 = MakeFrame(track1, body, 0);
  EXPECT_FALSE(k1->keyframe);
  start.Add(k1, track1);
  EXPECT_EQ(start.Opening().frames, (std::vector<FramePtr>{k0.frame, k1}));
}

TEST(RelayFrameTest, AnAudioOnlyStreamStartsWithItsNextFrame) {
  StreamStart start;
  const Made config = Audio(0, true);
  start.Add(config.frame, config.meta);
  for (int i = 1; i < 10; ++i) start.Add(Audio(i * 23, false).frame, Audio(i * 23, false).meta);
  EXPECT_FALSE(start.video());
  const StreamStart::Start opening = start.Opening();
  EXPECT_EQ(opening.configs, std::vector<FramePtr>{config.frame});
  EXPECT_TRUE(opening.frames.empty());
  EXPECT_EQ(start.opening_time(), 9u * 23);
}

TEST(RelayFrameTest, EnhancedFramesAnnounceTheirFourCcs) {
  StreamStart start;
  RecordMeta meta{
      .type = RecordType::kVideo,
      .flags = ringbuf::kFlagKeyframe | ringbuf::kFlagExHeader | ringbuf::kFlagMultitrack,
      .codec = media::FourCc("hvc1"),
      .packet_type = 1};
  const uint8_t body[] = {0x96, 'h', 'v', 'c', '1', 0, 0, 0};
  start.Add(MakeFrame(meta, body, 0), meta);
  start.Add(MakeFrame(meta, body, 0), meta);
  EXPECT_TRUE(start.caps().present);
  EXPECT_EQ(start.caps().fourcc_list, std::vector<std::string>{"hvc1"});
  EXPECT_EQ(start.caps().caps_ex & rtmp::kCapsExMultitrack, rtmp::kCapsExMultitrack);
  EXPECT_FALSE(StreamStart().caps().present);
}

}  // namespace
}  // namespace uringest::relay
