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
  add(Video(0, 0));  // before any keyframe: nothing to start with
  EXPECT_FALSE(start.has_keyframe());
  add(Video(40, ringbuf::kFlagKeyframe));
  add(Audio(50, false));
  const Made k2 = Video(2000, ringbuf::kFlagKeyframe);
  add(k2);
  const Made p = Video(2040, 0);
  add(p);
  const Made aac2 = Audio(2050, true);  // a new audio configuration replaces the old
  add(aac2);
  std::vector<FramePtr> opening = start.Opening();
  ASSERT_EQ(opening.size(), 5u);
  EXPECT_EQ(opening[0], meta.frame);
  EXPECT_EQ(opening[1], avc.frame);
  EXPECT_EQ(opening[2], aac2.frame);
  EXPECT_EQ(opening[3], k2.frame);
  EXPECT_EQ(opening[4], p.frame);
  EXPECT_EQ(start.opening_time(), 2000u);
  EXPECT_TRUE(start.video());

  start.Lost();
  EXPECT_FALSE(start.has_keyframe());
  EXPECT_EQ(start.Opening().size(), 3u);
}

TEST(RelayFrameTest, AudioBeforeTheFirstKeyframeIsKeptForIt) {
  StreamStart start;
  auto add = [&](const Made& m) { start.Add(m.frame, m.meta); };
  add(Video(0, ringbuf::kFlagKeyframe | ringbuf::kFlagSequenceHeader, 0));
  const Made a0 = Audio(0, false);
  add(a0);
  add(Video(10, 0));  // undecodable without a keyframe: left out
  const Made k = Video(23, ringbuf::kFlagKeyframe);
  add(k);
  std::vector<FramePtr> opening = start.Opening();
  ASSERT_EQ(opening.size(), 3u);
  EXPECT_EQ(opening[1], a0.frame);
  EXPECT_EQ(opening[2], k.frame);
  EXPECT_EQ(start.opening_time(), 0u);
}

TEST(RelayFrameTest, AnAudioOnlyStreamStartsWithItsNextFrame) {
  StreamStart start;
  start.Add(Audio(0, true).frame, Audio(0, true).meta);
  for (int i = 1; i < 10; ++i) start.Add(Audio(i * 23, false).frame, Audio(i * 23, false).meta);
  EXPECT_FALSE(start.video());
  EXPECT_EQ(start.Opening().size(), 1u) << "the configuration only";
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
