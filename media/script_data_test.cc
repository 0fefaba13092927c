#include "media/script_data.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"
#include "media/amf0.h"
#include "media/amf0_decoder.h"
#include "media/media_tag.h"

namespace uringest::media {
namespace {

using amf0::Value;

std::vector<uint8_t> Encoded(const std::vector<Value>& values) {
  std::vector<uint8_t> out;
  for (const Value& v : values) amf0::Encode(v, &out);
  return out;
}

std::vector<uint8_t> Bytes(std::span<const uint8_t> s) { return {s.begin(), s.end()}; }

std::vector<uint8_t> OnMetaData(std::vector<Value::Property> properties) {
  return Encoded({Value::String("onMetaData"), Value::EcmaArray(std::move(properties))});
}

TEST(ScriptDataTest, UnwrapsEitherSpellingOfSetDataFrameAndNothingElse) {
  const std::vector<uint8_t> body = OnMetaData({{"width", Value::Number(1280)}});
  std::vector<uint8_t> wrapped = Encoded({Value::String("@setDataFrame")});
  wrapped.insert(wrapped.end(), body.begin(), body.end());
  std::vector<uint8_t> no_at = Encoded({Value::String("setDataFrame")});
  no_at.insert(no_at.end(), body.begin(), body.end());

  EXPECT_EQ(Bytes(UnwrapSetDataFrame(wrapped)), body);
  EXPECT_EQ(Bytes(UnwrapSetDataFrame(no_at)), body);
  EXPECT_EQ(UnwrapSetDataFrame(body).data(), body.data());
  EXPECT_EQ(UnwrapSetDataFrame(body).size(), body.size());
  const std::vector<uint8_t> cue = Encoded({Value::String("onCuePoint"), Value::Null()});
  EXPECT_EQ(UnwrapSetDataFrame(cue).size(), cue.size());
}

TEST(ScriptDataTest, MetadataMessagesAreKnownByTheirFirstString) {
  EXPECT_TRUE(IsMetadataMessage(Encoded({Value::String("@setDataFrame"), Value::Null()})));
  EXPECT_TRUE(IsMetadataMessage(Encoded({Value::String("setDataFrame"), Value::Null()})));
  EXPECT_TRUE(IsMetadataMessage(OnMetaData({})));
  EXPECT_FALSE(IsMetadataMessage(Encoded({Value::String("publish"), Value::Number(0)})));
  EXPECT_FALSE(IsMetadataMessage(Encoded({Value::String("onMetaDat")})));
  // A string marker with a length that runs past the end is not a match.
  EXPECT_FALSE(IsMetadataMessage(std::vector<uint8_t>{0x02, 0x00, 0x0A, 'o', 'n'}));
  EXPECT_FALSE(IsMetadataMessage({}));
  EXPECT_TRUE(IsOnMetaData(OnMetaData({})));
  EXPECT_FALSE(IsOnMetaData(Encoded({Value::String("@setDataFrame"), Value::Null()})));
}

TEST(ScriptDataTest, ReadsWhatOnMetaDataAnnounces) {
  const StreamMetadata m = ParseOnMetaData(OnMetaData({
      {"width", Value::Number(1920)},
      {"height", Value::Number(1080)},
      {"framerate", Value::Number(29.97)},
      {"videocodecid", Value::Number(7)},
      {"audiocodecid", Value::Number(10)},
      {"audiosamplerate", Value::Number(48000)},
      {"audiochannels", Value::Number(6)},
      {"videodatarate", Value::Number(2500)},
      {"audiodatarate", Value::Number(160)},
  }));
  EXPECT_EQ(m.width, 1920u);
  EXPECT_EQ(m.height, 1080u);
  EXPECT_EQ(m.frame_rate_milli, 29970u);
  EXPECT_EQ(m.video_codec, 7u);
  EXPECT_EQ(m.audio_codec, 10u);
  EXPECT_EQ(m.audio_sample_rate, 48000u);
  EXPECT_EQ(m.audio_channels, 6u);
  EXPECT_EQ(m.video_bitrate_kbps, 2500u);
  EXPECT_EQ(m.audio_bitrate_kbps, 160u);
}

TEST(ScriptDataTest, FourCcCodecIdsAndStereoAndAnObjectInsteadOfAnArray) {
  const StreamMetadata m = ParseOnMetaData(
      Encoded({Value::String("onMetaData"), Value::Object({{"videocodecid", Value::String("hvc1")},
                                                           {"audiocodecid", Value::String("Opus")},
                                                           {"stereo", Value::Boolean(false)}})}));
  EXPECT_EQ(m.video_codec, kFourCcHevc);
  EXPECT_EQ(m.audio_codec, kFourCcOpus);
  EXPECT_EQ(m.audio_channels, 1u);
}

TEST(ScriptDataTest, UnusableValuesAndOtherMessagesAnnounceNothing) {
  const StreamMetadata m = ParseOnMetaData(OnMetaData({
      {"width", Value::Number(-5)},
      {"height", Value::String("1080")},
      {"framerate", Value::Number(5e6)},  // 5e9 frames per 1000 s: over 32 bits
      {"videocodecid", Value::String("avc")},
      {"audiocodecid", Value::Number(-1)},
  }));
  EXPECT_EQ(m.width, 0u);
  EXPECT_EQ(m.height, 0u);
  EXPECT_EQ(m.frame_rate_milli, 0u);
  EXPECT_EQ(m.video_codec, 0u);
  EXPECT_EQ(m.audio_codec, 0u);

  const std::vector<uint8_t> cue =
      Encoded({Value::String("onCuePoint"), Value::EcmaArray({{"width", Value::Number(640)}})});
  EXPECT_EQ(ParseOnMetaData(cue).width, 0u);
  std::vector<uint8_t> truncated = OnMetaData({{"width", Value::Number(640)}});
  truncated.resize(truncated.size() - 6);
  EXPECT_EQ(ParseOnMetaData(truncated).width, 0u);
  EXPECT_EQ(ParseOnMetaData(Encoded({Value::String("onMetaData"), Value::Number(1)})).width, 0u);
}

TEST(ScriptDataTest, MetadataForAFileLeadsWithDurationAndFilesizeToPatch) {
  const std::vector<uint8_t> published = OnMetaData({{"duration", Value::Number(0)},
                                                     {"width", Value::Number(1280)},
                                                     {"filesize", Value::Number(0)},
                                                     {"encoder", Value::String("Lavf61")}});
  FileMetadata file = MetadataForFile(published);
  PatchNumber(std::span(file.body).subspan(file.duration_offset), 12.5);
  PatchNumber(std::span(file.body).subspan(file.filesize_offset), 4096);
  absl::StatusOr<std::vector<Value>> values = amf0::DecodeAll(file.body);
  ASSERT_TRUE(values.ok()) << values.status();
  ASSERT_EQ(values->size(), 2u);
  EXPECT_EQ((*values)[0], Value::String("onMetaData"));
  EXPECT_EQ((*values)[1].type(), Value::Type::kEcmaArray);
  const std::vector<Value::Property>& p = (*values)[1].properties();
  ASSERT_EQ(p.size(), 4u);  // the publisher's duration and filesize are not repeated
  EXPECT_EQ(p[0], Value::Property("duration", Value::Number(12.5)));
  EXPECT_EQ(p[1], Value::Property("filesize", Value::Number(4096)));
  EXPECT_EQ(p[2], Value::Property("width", Value::Number(1280)));
  EXPECT_EQ(p[3], Value::Property("encoder", Value::String("Lavf61")));
  EXPECT_TRUE(IsOnMetaData(file.body));

  // Nothing usable published: just the two numbers.
  const FileMetadata bare = MetadataForFile({});
  absl::StatusOr<std::vector<Value>> only = amf0::DecodeAll(bare.body);
  ASSERT_TRUE(only.ok()) << only.status();
  EXPECT_EQ((*only)[1].properties().size(), 2u);
}

}  // namespace
}  // namespace uringest::media
