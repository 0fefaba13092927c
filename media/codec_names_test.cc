#include "media/codec_names.h"

#include "gtest/gtest.h"
#include "media/media_tag.h"

namespace uringest::media {
namespace {

TEST(CodecNamesTest, FlvCodecIds) {
  EXPECT_EQ(VideoCodecName(7), "H.264");
  EXPECT_EQ(VideoCodecName(12), "HEVC");
  EXPECT_EQ(VideoCodecName(2), "Sorenson H.263");
  EXPECT_EQ(AudioCodecName(10), "AAC");
  EXPECT_EQ(AudioCodecName(2), "MP3");
}

TEST(CodecNamesTest, EnhancedRtmpFourCcs) {
  EXPECT_EQ(VideoCodecName(media::kFourCcAvc), "H.264");
  EXPECT_EQ(VideoCodecName(media::kFourCcHevc), "HEVC");
  EXPECT_EQ(VideoCodecName(media::kFourCcAv1), "AV1");
  EXPECT_EQ(VideoCodecName(media::kFourCcVp9), "VP9");
  EXPECT_EQ(AudioCodecName(media::kFourCcOpus), "Opus");
  EXPECT_EQ(AudioCodecName(media::kFourCcAac), "AAC");
}

TEST(CodecNamesTest, ZeroIsUnknownAndEmpty) {
  EXPECT_EQ(VideoCodecName(0), "");
  EXPECT_EQ(AudioCodecName(0), "");
}

TEST(CodecNamesTest, UnnamedFourCcShowsItsCharactersOtherIdsTheirNumber) {
  EXPECT_EQ(VideoCodecName(media::FourCc("xyz1")), "xyz1");
  EXPECT_EQ(VideoCodecName(99), "codec 99");
  EXPECT_EQ(AudioCodecName(0x01020304), "codec 16909060");
}

}  // namespace
}  // namespace uringest::media
