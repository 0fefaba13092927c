#include "media/media_tag.h"

#include <cstdint>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "media/byte_order.h"
#include "media/flv_format.h"

namespace uringest::media {
namespace {

using Bytes = std::vector<uint8_t>;

// An AVC sequence header as ffmpeg's libx264 output sends it: key frame + AVC, packet
// type 0, CTS 0, then an AVCDecoderConfigurationRecord (High profile, level 3.1).
const Bytes kAvcSequenceHeader = {
    0x17, 0x00, 0x00, 0x00, 0x00,                    // tag header
    0x01, 0x64, 0x00, 0x1F, 0xFF, 0xE1, 0x00, 0x19,  // version, profile, level, SPS count
    0x67, 0x64, 0x00, 0x1F, 0xAC, 0xD9, 0x40, 0x50, 0x05, 0xBB, 0x01, 0x10, 0x00,
    0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xC0, 0xF1, 0x83, 0x19, 0x60,  // SPS
    0x01, 0x00, 0x06, 0x68, 0xEB, 0xE3, 0xCB, 0x22, 0xC0,                          // PPS
};

// AAC-LC, 44.1 kHz, stereo: sound format 10, 44 kHz, 16 bit, stereo; packet type 0;
// AudioSpecificConfig 0x12 0x10.
const Bytes kAacSequenceHeader = {0xAF, 0x00, 0x12, 0x10};

Bytes ExVideo(uint8_t frame_type, VideoPacketType packet, uint32_t fourcc) {
  Bytes b = {uint8_t(kVideoExHeaderBit | frame_type << 4 | uint8_t(packet))};
  AppendU32(&b, fourcc);
  return b;
}

TEST(MediaTagTest, AvcSequenceHeaderIsAKeyframeSequenceHeader) {
  MediaTag tag = ParseVideoTag(kAvcSequenceHeader);
  EXPECT_EQ(tag.codec, uint32_t(VideoCodec::kAvc));
  EXPECT_TRUE(tag.keyframe);
  EXPECT_TRUE(tag.sequence_header);
  EXPECT_EQ(tag.composition_offset, 0);
}

TEST(MediaTagTest, AvcNaluCarriesPositiveCompositionOffset) {
  const Bytes body = {0x27, 0x01, 0x00, 0x00, 0x50, 0x00, 0x00, 0x00, 0x05, 0x41};
  MediaTag tag = ParseVideoTag(body);
  EXPECT_EQ(tag.codec, 7u);
  EXPECT_FALSE(tag.keyframe);
  EXPECT_FALSE(tag.sequence_header);
  EXPECT_EQ(tag.composition_offset, 80);
}

TEST(MediaTagTest, AvcCompositionOffsetIsSigned24Bit) {
  const Bytes body = {0x17, 0x01, 0xFF, 0xFF, 0xD8};
  MediaTag tag = ParseVideoTag(body);
  EXPECT_TRUE(tag.keyframe);
  EXPECT_EQ(tag.composition_offset, -40);
}

TEST(MediaTagTest, AvcEndOfSequenceIsNotASequenceHeader) {
  MediaTag tag = ParseVideoTag(Bytes{0x17, 0x02, 0x00, 0x00, 0x00});
  EXPECT_FALSE(tag.sequence_header);
  EXPECT_EQ(tag.composition_offset, 0);
}

TEST(MediaTagTest, LegacyHevcId12IsParsedLikeAvc) {
  MediaTag header = ParseVideoTag(Bytes{0x1C, 0x00, 0x00, 0x00, 0x00, 0x01});
  EXPECT_EQ(header.codec, 12u);
  EXPECT_TRUE(header.sequence_header);
  MediaTag frame = ParseVideoTag(Bytes{0x2C, 0x01, 0x00, 0x00, 0x21});
  EXPECT_FALSE(frame.keyframe);
  EXPECT_EQ(frame.composition_offset, 33);
}

TEST(MediaTagTest, NonAvcLegacyCodecReadsOnlyTheFirstByte) {
  MediaTag tag = ParseVideoTag(Bytes{0x12, 0x00, 0x00});  // Sorenson H.263 keyframe
  EXPECT_EQ(tag.codec, 2u);
  EXPECT_TRUE(tag.keyframe);
  EXPECT_FALSE(tag.sequence_header);
}

TEST(MediaTagTest, CommandFrameIsNotAKeyframe) {
  MediaTag tag = ParseVideoTag(Bytes{0x57, 0x00});
  EXPECT_EQ(tag.codec, 7u);
  EXPECT_FALSE(tag.keyframe);
  EXPECT_FALSE(tag.sequence_header);  // the 0 is a video info byte, not a packet type
}

TEST(MediaTagTest, GeneratedKeyframeIsNotAKeyframe) {
  EXPECT_FALSE(ParseVideoTag(Bytes{0x47, 0x01, 0, 0, 0}).keyframe);
}

TEST(MediaTagTest, EmptyVideoBodyYieldsDefaults) {
  MediaTag tag = ParseVideoTag({});
  EXPECT_EQ(tag.codec, 0u);
  EXPECT_FALSE(tag.keyframe);
  EXPECT_FALSE(tag.sequence_header);
  EXPECT_EQ(tag.composition_offset, 0);
}

TEST(MediaTagTest, TruncatedAvcHeaderKeepsWhatWasRead) {
  MediaTag one = ParseVideoTag(Bytes{0x17});
  EXPECT_EQ(one.codec, 7u);
  EXPECT_TRUE(one.keyframe);
  EXPECT_FALSE(one.sequence_header);
  MediaTag partial_cts = ParseVideoTag(Bytes{0x27, 0x01, 0x00, 0x10});
  EXPECT_EQ(partial_cts.composition_offset, 0);
}

TEST(MediaTagTest, AacSequenceHeaderIsDetected) {
  MediaTag tag = ParseAudioTag(kAacSequenceHeader);
  EXPECT_EQ(tag.codec, uint32_t(AudioCodec::kAac));
  EXPECT_TRUE(tag.keyframe);
  EXPECT_TRUE(tag.sequence_header);
}

TEST(MediaTagTest, AacRawFrameIsAKeyframeButNoSequenceHeader) {
  MediaTag tag = ParseAudioTag(Bytes{0xAF, 0x01, 0x21, 0x10, 0x04});
  EXPECT_TRUE(tag.keyframe);
  EXPECT_FALSE(tag.sequence_header);
}

TEST(MediaTagTest, Mp3HasNoPacketType) {
  MediaTag tag = ParseAudioTag(Bytes{0x2F, 0x00, 0xFF});
  EXPECT_EQ(tag.codec, uint32_t(AudioCodec::kMp3));
  EXPECT_FALSE(tag.sequence_header);
}

TEST(MediaTagTest, EmptyAudioBodyIsAKeyframeWithNoCodec) {
  MediaTag tag = ParseAudioTag({});
  EXPECT_EQ(tag.codec, 0u);
  EXPECT_TRUE(tag.keyframe);
  EXPECT_FALSE(tag.sequence_header);
}

TEST(MediaTagTest, AacWithoutPacketTypeIsNotASequenceHeader) {
  EXPECT_FALSE(ParseAudioTag(Bytes{0xAF}).sequence_header);
}

TEST(MediaTagTest, FourCcIsBigEndian) {
  EXPECT_EQ(kFourCcHevc, 0x68766331u);
  EXPECT_EQ(FourCc("av01"), 0x61763031u);
}

TEST(MediaTagTest, EnhancedHevcSequenceStart) {
  Bytes body = ExVideo(1, VideoPacketType::kSequenceStart, kFourCcHevc);
  body.insert(body.end(), {0x01, 0x01, 0x60});  // HEVCDecoderConfigurationRecord start
  MediaTag tag = ParseVideoTag(body);
  EXPECT_EQ(tag.codec, kFourCcHevc);
  EXPECT_TRUE(tag.keyframe);
  EXPECT_TRUE(tag.sequence_header);
}

TEST(MediaTagTest, EnhancedHevcCodedFramesCarryCompositionOffset) {
  Bytes body = ExVideo(2, VideoPacketType::kCodedFrames, kFourCcHevc);
  body.insert(body.end(), {0xFF, 0xFF, 0xF6, 0x00, 0x00, 0x00, 0x02, 0x02, 0x01});
  MediaTag tag = ParseVideoTag(body);
  EXPECT_FALSE(tag.keyframe);
  EXPECT_FALSE(tag.sequence_header);
  EXPECT_EQ(tag.composition_offset, -10);
}

TEST(MediaTagTest, EnhancedCodedFramesXHaveNoCompositionOffset) {
  Bytes body = ExVideo(1, VideoPacketType::kCodedFramesX, kFourCcHevc);
  body.insert(body.end(), {0x00, 0x00, 0x50, 0x00});
  MediaTag tag = ParseVideoTag(body);
  EXPECT_TRUE(tag.keyframe);
  EXPECT_EQ(tag.composition_offset, 0);
}

TEST(MediaTagTest, EnhancedAv1CodedFramesHaveNoCompositionOffset) {
  Bytes body = ExVideo(1, VideoPacketType::kCodedFrames, kFourCcAv1);
  body.insert(body.end(), {0x12, 0x00, 0x0A});  // OBU bytes, not a CTS
  MediaTag tag = ParseVideoTag(body);
  EXPECT_EQ(tag.codec, kFourCcAv1);
  EXPECT_TRUE(tag.keyframe);
  EXPECT_EQ(tag.composition_offset, 0);
}

TEST(MediaTagTest, EnhancedMpeg2TsSequenceStartIsASequenceHeader) {
  MediaTag tag = ParseVideoTag(ExVideo(1, VideoPacketType::kMpeg2TsSequenceStart, kFourCcAv1));
  EXPECT_TRUE(tag.sequence_header);
}

TEST(MediaTagTest, EnhancedSequenceEndAndMetadataAreNotKeyframes) {
  MediaTag end = ParseVideoTag(ExVideo(1, VideoPacketType::kSequenceEnd, kFourCcHevc));
  EXPECT_FALSE(end.keyframe);
  EXPECT_FALSE(end.sequence_header);
  MediaTag metadata = ParseVideoTag(ExVideo(1, VideoPacketType::kMetadata, kFourCcHevc));
  EXPECT_FALSE(metadata.keyframe);
  EXPECT_EQ(metadata.codec, kFourCcHevc);
}

TEST(MediaTagTest, EnhancedCommandFrameHasNoFourCc) {
  // frame type 5, CodedFrames, then a videoCommand byte instead of a FourCC.
  const Bytes body = {uint8_t(kVideoExHeaderBit | 5 << 4 | 1), 0x01, 0x68, 0x76, 0x63};
  MediaTag tag = ParseVideoTag(body);
  EXPECT_EQ(tag.codec, 0u);
  EXPECT_FALSE(tag.keyframe);
  EXPECT_FALSE(tag.sequence_header);
}

TEST(MediaTagTest, EnhancedModExIsSkipped) {
  // ModEx with 3 bytes of TimestampOffsetNano, then CodedFrames of avc1 with CTS 66.
  Bytes body = {
      uint8_t(kVideoExHeaderBit | 1 << 4 | 7), 0x02, 0x00, 0x01, 0x02, uint8_t(0 << 4 | 1)};
  AppendU32(&body, kFourCcAvc);
  body.insert(body.end(), {0x00, 0x00, 0x42});
  MediaTag tag = ParseVideoTag(body);
  EXPECT_EQ(tag.codec, kFourCcAvc);
  EXPECT_TRUE(tag.keyframe);
  EXPECT_EQ(tag.composition_offset, 66);
}

TEST(MediaTagTest, EnhancedModExWithLongSizeIsSkipped) {
  Bytes body = {uint8_t(kVideoExHeaderBit | 1 << 4 | 7), 0xFF};
  AppendU16(&body, 299);  // 300 bytes of ModEx data
  body.resize(body.size() + 300, 0xAB);
  body.push_back(uint8_t(VideoPacketType::kSequenceStart));
  AppendU32(&body, kFourCcVvc);
  MediaTag tag = ParseVideoTag(body);
  EXPECT_EQ(tag.codec, kFourCcVvc);
  EXPECT_TRUE(tag.sequence_header);
}

TEST(MediaTagTest, EnhancedModExPastTheEndYieldsDefaults) {
  const Bytes body = {uint8_t(kVideoExHeaderBit | 1 << 4 | 7), 0x10, 0x00};
  MediaTag tag = ParseVideoTag(body);
  EXPECT_EQ(tag.codec, 0u);
  EXPECT_FALSE(tag.keyframe);
  EXPECT_FALSE(tag.sequence_header);
}

TEST(MediaTagTest, EnhancedMultitrackOneTrackReadsTheSharedFourCcAndFirstCts) {
  Bytes body = {uint8_t(kVideoExHeaderBit | 1 << 4 | 6),
                uint8_t(uint8_t(AvMultitrackType::kOneTrack) << 4 | 1)};
  AppendU32(&body, kFourCcAvc);
  body.push_back(0);                            // track id
  body.insert(body.end(), {0x00, 0x00, 0x28});  // CTS 40
  MediaTag tag = ParseVideoTag(body);
  EXPECT_EQ(tag.codec, kFourCcAvc);
  EXPECT_TRUE(tag.keyframe);
  EXPECT_FALSE(tag.sequence_header);
  EXPECT_EQ(tag.composition_offset, 40);
}

TEST(MediaTagTest, EnhancedMultitrackManyCodecsReportsTheFirstTrack) {
  Bytes body = {uint8_t(kVideoExHeaderBit | 2 << 4 | 6),
                uint8_t(uint8_t(AvMultitrackType::kManyTracksManyCodecs) << 4 | 1)};
  AppendU32(&body, kFourCcHevc);  // track 0's FourCC
  body.push_back(0);              // track id
  AppendU24(&body, 7);            // track size
  body.insert(body.end(), {0x00, 0x00, 0x14, 1, 2, 3, 4});
  MediaTag tag = ParseVideoTag(body);
  EXPECT_EQ(tag.codec, kFourCcHevc);
  EXPECT_FALSE(tag.keyframe);
  EXPECT_EQ(tag.composition_offset, 20);
}

TEST(MediaTagTest, EnhancedMultitrackSequenceStartIsASequenceHeader) {
  Bytes body = {uint8_t(kVideoExHeaderBit | 1 << 4 | 6),
                uint8_t(uint8_t(AvMultitrackType::kManyTracks) << 4 | 0)};
  AppendU32(&body, kFourCcAv1);
  MediaTag tag = ParseVideoTag(body);
  EXPECT_EQ(tag.codec, kFourCcAv1);
  EXPECT_TRUE(tag.sequence_header);
}

TEST(MediaTagTest, EnhancedNestedMultitrackIsNotTrusted) {
  Bytes body = {uint8_t(kVideoExHeaderBit | 1 << 4 | 6), uint8_t(0 << 4 | 6)};
  AppendU32(&body, kFourCcAvc);
  MediaTag tag = ParseVideoTag(body);
  EXPECT_FALSE(tag.keyframe);
  EXPECT_FALSE(tag.sequence_header);
}

TEST(MediaTagTest, EnhancedTruncatedFourCcKeepsFlags) {
  const Bytes body = {uint8_t(kVideoExHeaderBit | 1 << 4 | 0), 0x68, 0x76};
  MediaTag tag = ParseVideoTag(body);
  EXPECT_EQ(tag.codec, 0u);
  EXPECT_TRUE(tag.sequence_header);
}

TEST(MediaTagTest, EnhancedAudioSequenceStart) {
  Bytes body = {uint8_t(uint8_t(AudioCodec::kExHeader) << 4 | 0)};
  AppendU32(&body, kFourCcOpus);
  body.insert(body.end(), {'O', 'p', 'u', 's', 'H', 'e', 'a', 'd'});
  MediaTag tag = ParseAudioTag(body);
  EXPECT_EQ(tag.codec, kFourCcOpus);
  EXPECT_TRUE(tag.keyframe);
  EXPECT_TRUE(tag.sequence_header);
}

TEST(MediaTagTest, EnhancedAudioCodedFrames) {
  Bytes body = {uint8_t(uint8_t(AudioCodec::kExHeader) << 4 | 1)};
  AppendU32(&body, kFourCcAac);
  body.push_back(0x21);
  MediaTag tag = ParseAudioTag(body);
  EXPECT_EQ(tag.codec, kFourCcAac);
  EXPECT_FALSE(tag.sequence_header);
}

TEST(MediaTagTest, EnhancedAudioMultitrackAndModEx) {
  Bytes body = {uint8_t(uint8_t(AudioCodec::kExHeader) << 4 | 7), 0x00, 0x55, uint8_t(0 << 4 | 5),
                uint8_t(uint8_t(AvMultitrackType::kManyTracks) << 4 | 0)};
  AppendU32(&body, kFourCcFlac);
  MediaTag tag = ParseAudioTag(body);
  EXPECT_EQ(tag.codec, kFourCcFlac);
  EXPECT_TRUE(tag.sequence_header);
}

TEST(MediaTagTest, EnhancedAudioTruncatedYieldsNoCodec) {
  MediaTag tag = ParseAudioTag(Bytes{uint8_t(uint8_t(AudioCodec::kExHeader) << 4 | 1), 'm'});
  EXPECT_EQ(tag.codec, 0u);
  EXPECT_TRUE(tag.keyframe);
}

// ---- Track ids, multitrack kinds, ModEx values (veovera E-RTMP v2 layouts) ----

// Video, ManyTracks of av01, CodedFrames, two tracks:
//   0x96      ExHeader bit | frameType 1 (key) << 4 | packetType 6 (Multitrack)
//   0x11      multitrackType 1 (ManyTracks) << 4 | packetType 1 (CodedFrames)
//   'av01'    the FourCC all tracks share
//   0x00      trackId 0, then sizeOfVideoTrack UI24 = 2, then 2 bytes of OBUs
//   0x01      trackId 1, then sizeOfVideoTrack UI24 = 3, then 3 bytes of OBUs
const Bytes kAv1ManyTracks = {0x96, 0x11, 'a',  'v',  '0',  '1',  0x00, 0x00, 0x00, 0x02,
                              0x12, 0x00, 0x01, 0x00, 0x00, 0x03, 0x32, 0x10, 0x00};

TEST(MediaTagTest, ManyTracksReportsFirstTrackAndCount) {
  MediaTag tag = ParseVideoTag(kAv1ManyTracks);
  EXPECT_TRUE(tag.ex_header);
  EXPECT_TRUE(tag.multitrack);
  EXPECT_EQ(tag.codec, kFourCcAv1);
  EXPECT_EQ(tag.packet_type, uint8_t(VideoPacketType::kCodedFrames));
  EXPECT_EQ(tag.track_id, 0);
  EXPECT_EQ(tag.track_count, 2);
  EXPECT_TRUE(tag.keyframe);
  EXPECT_EQ(tag.composition_offset, 0);  // av01 carries none
}

TEST(MediaTagTest, ManyTracksIsKnownFromTheHeaderOfABodyCutShort) {
  // The first 12 bytes: the header and 2 of track 0's bytes, as the first chunk of a
  // longer message would hold them.
  const std::span<const uint8_t> cut = std::span(kAv1ManyTracks).first(12);
  MediaTag tag = ParseVideoTag(cut);
  EXPECT_TRUE(tag.many_tracks);
  EXPECT_EQ(tag.track_count, 1);  // all the cut body shows
  EXPECT_FALSE(ParseVideoTag(Bytes{0xA6, 0x01, 'h', 'v', 'c', '1', 0x07, 0, 0, 0}).many_tracks);
}

TEST(MediaTagTest, ListTracksSplitsManyTracksBySize) {
  MediaTrack tracks[4];
  ASSERT_EQ(ListTracks(kAv1ManyTracks, /*video=*/true, tracks), 2u);
  EXPECT_EQ(tracks[0].track_id, 0);
  EXPECT_EQ(tracks[0].codec, kFourCcAv1);
  EXPECT_EQ(Bytes(tracks[0].data.begin(), tracks[0].data.end()), (Bytes{0x12, 0x00}));
  EXPECT_EQ(tracks[1].track_id, 1);
  EXPECT_EQ(Bytes(tracks[1].data.begin(), tracks[1].data.end()), (Bytes{0x32, 0x10, 0x00}));
}

// Video, ManyTracksManyCodecs, SequenceStart: track 3 is hvc1, track 4 is vp09.
TEST(MediaTagTest, ManyCodecsListsEachTracksFourCc) {
  const Bytes body = {
      0x96,                   // ExHeader | frameType 1 | Multitrack
      0x20,                   // ManyTracksManyCodecs (2) << 4 | SequenceStart (0)
      'h',  'v',  'c',  '1',  // track's FourCC
      0x03,                   // trackId 3
      0x00, 0x00, 0x01,       // sizeOfVideoTrack 1
      0x01,                   // configurationVersion of an HEVCDecoderConfigurationRecord
      'v',  'p',  '0',  '9',  // next track's FourCC
      0x04,                   // trackId 4
      0x00, 0x00, 0x02,       // sizeOfVideoTrack 2
      0x01, 0x00,             // vpcC version 1, flags
  };
  MediaTag tag = ParseVideoTag(body);
  EXPECT_EQ(tag.codec, kFourCcHevc);
  EXPECT_EQ(tag.track_id, 3);
  EXPECT_EQ(tag.track_count, 2);
  EXPECT_TRUE(tag.sequence_header);
  MediaTrack tracks[2];
  ASSERT_EQ(ListTracks(body, true, tracks), 2u);
  EXPECT_EQ(tracks[1].codec, kFourCcVp9);
  EXPECT_EQ(tracks[1].track_id, 4);
}

TEST(MediaTagTest, OneTrackCarriesItsTrackId) {
  // ExHeader | inter frame (2) | Multitrack; OneTrack | CodedFrames; "hvc1"; trackId 7;
  // compositionTime SI24 -10; one NALU byte.
  const Bytes body = {0xA6, 0x01, 'h', 'v', 'c', '1', 0x07, 0xFF, 0xFF, 0xF6, 0x26};
  MediaTag tag = ParseVideoTag(body);
  EXPECT_EQ(tag.track_id, 7);
  EXPECT_EQ(tag.track_count, 1);
  EXPECT_FALSE(tag.keyframe);
  EXPECT_EQ(tag.composition_offset, -10);
}

TEST(MediaTagTest, ModExTimestampOffsetNanoIsRead) {
  // ExHeader | key frame | ModEx (7); modExDataSize - 1 = 2 (3 bytes); 0x0F423F = 999999
  // ns; modExType 0 (TimestampOffsetNano) << 4 | CodedFramesX (3); "vp08".
  const Bytes body = {0x97, 0x02, 0x0F, 0x42, 0x3F, 0x03, 'v', 'p', '0', '8', 0x9D};
  MediaTag tag = ParseVideoTag(body);
  EXPECT_EQ(tag.time_offset_ns, 999999u);
  EXPECT_EQ(tag.packet_type, uint8_t(VideoPacketType::kCodedFramesX));
  EXPECT_EQ(tag.codec, kFourCcVp8);
  EXPECT_TRUE(tag.keyframe);
}

TEST(MediaTagTest, EnhancedCommandFrameIsFlagged) {
  // ExHeader | frameType 5 (command) | CodedFrames; videoCommand 0 (StartSeek).
  MediaTag tag = ParseVideoTag(Bytes{0xD1, 0x00});
  EXPECT_TRUE(tag.command);
  EXPECT_TRUE(tag.ex_header);
  EXPECT_EQ(tag.codec, 0u);
  // Metadata (4) in a command frame is not a command: AMF colorInfo follows the FourCC.
  MediaTag metadata = ParseVideoTag(Bytes{0xD4, 'a', 'v', '0', '1', 0x02});
  EXPECT_FALSE(metadata.command);
  EXPECT_EQ(metadata.codec, kFourCcAv1);
  EXPECT_EQ(metadata.packet_type, uint8_t(VideoPacketType::kMetadata));
  EXPECT_TRUE(ParseVideoTag(Bytes{0x57, 0x00}).command);  // legacy video info frame
}

TEST(MediaTagTest, EnhancedAudioTracksAndPacketTypes) {
  // SoundFormat 9 << 4 | Multitrack (5); ManyTracksManyCodecs << 4 | CodedFrames;
  // "Opus" track 0 (1 byte), "ac-3" track 1 (2 bytes).
  const Bytes body = {0x95, 0x21, 'O', 'p', 'u',  's',  0x00, 0x00, 0x00, 0x01, 0xFC,
                      'a',  'c',  '-', '3', 0x01, 0x00, 0x00, 0x02, 0x0B, 0x77};
  MediaTag tag = ParseAudioTag(body);
  EXPECT_TRUE(tag.ex_header);
  EXPECT_EQ(tag.codec, kFourCcOpus);
  EXPECT_EQ(tag.track_count, 2);
  EXPECT_FALSE(tag.sequence_header);
  MediaTrack tracks[2];
  ASSERT_EQ(ListTracks(body, /*video=*/false, tracks), 2u);
  EXPECT_EQ(tracks[1].codec, kFourCcAc3);
  EXPECT_EQ(tracks[1].track_id, 1);
  // MultichannelConfig (4) of ec-3: order Native (1), 6 channels, mask 0x3F.
  MediaTag multichannel =
      ParseAudioTag(Bytes{0x94, 'e', 'c', '-', '3', 0x01, 0x06, 0x00, 0x00, 0x00, 0x3F});
  EXPECT_EQ(multichannel.codec, kFourCcEac3);
  EXPECT_EQ(multichannel.packet_type, uint8_t(AudioPacketType::kMultichannelConfig));
  EXPECT_FALSE(multichannel.sequence_header);
  // ".mp3" CodedFrames; legacy AAC keeps its packet type.
  EXPECT_EQ(ParseAudioTag(Bytes{0x91, '.', 'm', 'p', '3', 0xFF}).codec, kFourCcMp3);
  EXPECT_EQ(ParseAudioTag(kAacSequenceHeader).packet_type, 0);
  EXPECT_FALSE(ParseAudioTag(kAacSequenceHeader).ex_header);
}

TEST(MediaTagTest, SingleTrackBodyCarriesOneTrackAloneAsAPublisherWould) {
  // SoundFormat 9 << 4 | Multitrack; ManyTracksManyCodecs << 4 | SequenceStart; "Opus"
  // track 0 (2 bytes), "fLaC" track 3 (1 byte).
  const Bytes body = {0x95, 0x20, 'O', 'p', 'u', 's',  0x00, 0x00, 0x00, 0x02, 0xAA,
                      0xBB, 'f',  'L', 'a', 'C', 0x03, 0x00, 0x00, 0x01, 0xCC};
  MediaTrack tracks[2];
  ASSERT_EQ(ListTracks(body, /*video=*/false, tracks), 2u);
  Bytes out = {0xEE};  // replaced, not appended to
  SingleTrackBody(false, 0, uint8_t(AudioPacketType::kSequenceStart), tracks[0], &out);
  EXPECT_EQ(out, (Bytes{0x90, 'O', 'p', 'u', 's', 0xAA, 0xBB}));  // track 0: no multitrack
  SingleTrackBody(false, 0, uint8_t(AudioPacketType::kSequenceStart), tracks[1], &out);
  // 0x95 (Multitrack), 0x00 (OneTrack | SequenceStart), "fLaC", track 3, its byte.
  EXPECT_EQ(out, (Bytes{0x95, 0x00, 'f', 'L', 'a', 'C', 0x03, 0xCC}));
  EXPECT_EQ(ParseAudioTag(out).track_id, 3);
  EXPECT_TRUE(ParseAudioTag(out).sequence_header);
  // Video keeps the frame type: 0x80 | 1 << 4 | Multitrack, then OneTrack | Metadata.
  const MediaTrack video{.codec = kFourCcAv1, .track_id = 1, .data = body};
  SingleTrackBody(true, 1, uint8_t(VideoPacketType::kMetadata), video, &out);
  EXPECT_EQ(Bytes(out.begin(), out.begin() + 7), (Bytes{0x96, 0x04, 'a', 'v', '0', '1', 0x01}));
  EXPECT_EQ(out.size(), 7 + body.size());
  EXPECT_EQ(ParseVideoTag(out).packet_type, uint8_t(VideoPacketType::kMetadata));
}

TEST(MediaTagTest, LegacyBodiesHaveNoTracks) {
  MediaTrack tracks[1];
  EXPECT_EQ(ListTracks(kAvcSequenceHeader, true, tracks), 0u);
  EXPECT_EQ(ListTracks(kAacSequenceHeader, false, tracks), 0u);
}

TEST(MediaTagTest, SplitTracksGivesEachTrackAloneInOrder) {
  std::vector<std::pair<uint8_t, Bytes>> seen;
  Bytes scratch;
  auto record = [&](uint8_t track_id, std::span<uint8_t> body) {
    seen.emplace_back(track_id, Bytes(body.begin(), body.end()));
  };
  const uint8_t coded = uint8_t(VideoPacketType::kCodedFrames);
  ASSERT_EQ(SplitTracks(kAv1ManyTracks, /*video=*/true, coded, &scratch, record), 2u);
  ASSERT_EQ(seen.size(), 2u);
  // Track 0 as a plain single-track body, keyframe kept; track 1 as a OneTrack body.
  EXPECT_EQ(seen[0].first, 0);
  EXPECT_EQ(seen[0].second, (Bytes{0x91, 'a', 'v', '0', '1', 0x12, 0x00}));
  EXPECT_EQ(seen[1].first, 1);
  EXPECT_EQ(seen[1].second, (Bytes{0x96, 0x01, 'a', 'v', '0', '1', 0x01, 0x32, 0x10, 0x00}));
  for (const auto& [id, body] : seen) {
    const MediaTag tag = ParseVideoTag(body);
    EXPECT_EQ(tag.track_id, id);
    EXPECT_EQ(tag.track_count, 1);
    EXPECT_FALSE(tag.many_tracks);
    EXPECT_TRUE(tag.keyframe);
  }
  seen.clear();
  EXPECT_EQ(SplitTracks(kAvcSequenceHeader, true, 0, &scratch, record), 0u);
  EXPECT_EQ(SplitTracks(kAacSequenceHeader, false, 0, &scratch, record), 0u);
  EXPECT_EQ(SplitTracks(Bytes{0xD0, 0x01}, true, 0, &scratch, record), 0u);  // command frame
  EXPECT_TRUE(seen.empty());
}

TEST(MediaTagTest, SplitTracksIsNotLimitedToAFewTracks) {
  // 40 tracks of one byte each: ManyTracks of Opus, CodedFrames.
  Bytes body = {0x95, 0x11, 'O', 'p', 'u', 's'};
  for (uint8_t id = 0; id < 40; ++id) {
    body.push_back(id);
    AppendU24(&body, 1);
    body.push_back(uint8_t(0x40 + id));
  }
  Bytes scratch;
  std::vector<uint8_t> ids;
  EXPECT_EQ(SplitTracks(body, /*video=*/false, 1, &scratch,
                        [&](uint8_t id, std::span<uint8_t> alone) {
                          ids.push_back(id);
                          EXPECT_EQ(alone.back(), uint8_t(0x40 + id));
                        }),
            40u);
  ASSERT_EQ(ids.size(), 40u);
  EXPECT_EQ(ids.back(), 39);
}

TEST(MediaTagTest, ConfigurationsAreSequenceHeadersAndTheEnhancedConfigPackets) {
  auto is_config = [](bool video, const Bytes& body) {
    const MediaTag tag = video ? ParseVideoTag(body) : ParseAudioTag(body);
    return IsConfiguration(video, tag.sequence_header, tag.ex_header, tag.packet_type);
  };
  EXPECT_TRUE(is_config(true, kAvcSequenceHeader));
  EXPECT_TRUE(is_config(false, kAacSequenceHeader));
  EXPECT_TRUE(is_config(true, ExVideo(1, VideoPacketType::kSequenceStart, kFourCcHevc)));
  EXPECT_TRUE(is_config(true, ExVideo(1, VideoPacketType::kMpeg2TsSequenceStart, kFourCcAv1)));
  EXPECT_TRUE(is_config(true, ExVideo(1, VideoPacketType::kMetadata, kFourCcHevc)));  // colorInfo
  EXPECT_TRUE(is_config(false, Bytes{0x94, 'O', 'p', 'u', 's', 0x01}));  // MultichannelConfig
  EXPECT_FALSE(is_config(true, ExVideo(1, VideoPacketType::kCodedFrames, kFourCcHevc)));
  EXPECT_FALSE(is_config(true, ExVideo(1, VideoPacketType::kSequenceEnd, kFourCcHevc)));
  EXPECT_FALSE(is_config(false, Bytes{0x91, 'O', 'p', 'u', 's', 0x01}));
  EXPECT_FALSE(is_config(false, Bytes{0xAF, 0x01, 0x21}));  // AAC raw
  // Legacy packet type 4 is no Metadata packet.
  EXPECT_FALSE(IsConfiguration(true, false, false, uint8_t(VideoPacketType::kMetadata)));
}

// Every prefix of every layout above parses without reading out of bounds.
TEST(MediaTagTest, EveryPrefixParsesSafely) {
  Bytes hevc = ExVideo(1, VideoPacketType::kCodedFrames, kFourCcHevc);
  hevc.insert(hevc.end(), {0x00, 0x00, 0x01, 0x02});
  Bytes modex = {uint8_t(kVideoExHeaderBit | 1 << 4 | 7), 0xFF, 0x00, 0x02, 1, 2, 3, 0x16};
  for (const Bytes& full : {kAvcSequenceHeader, kAacSequenceHeader, hevc, modex}) {
    for (size_t n = 0; n <= full.size(); ++n) {
      std::vector<uint8_t> prefix(full.begin(), full.begin() + n);  // exact-size heap copy
      (void)ParseVideoTag(prefix);
      (void)ParseAudioTag(prefix);
    }
  }
}

}  // namespace
}  // namespace uringest::media
