#include "loadgen/media_source.h"

#include <string>

#include "gtest/gtest.h"
#include "loadgen/stamp.h"
#include "tests/rtmp_testing.h"

namespace uringest::loadgen {
namespace {

TEST(MediaSourceTest, SyntheticBitrateAndGopShape) {
  std::unique_ptr<MediaSource> src = MediaSource::Synthetic(2'500'000, 30);
  ASSERT_EQ(src->period_frames(), 60u);  // a 2 s GOP
  EXPECT_EQ(src->period_ms(), 2000u);
  EXPECT_NEAR(double(src->period_bytes()) * 8 / 2, 2.5e6, 2.5e6 * 0.01);
  EXPECT_EQ(src->At(0).body[0], 0x17);
  EXPECT_EQ(src->At(1).body[0], 0x27);
  EXPECT_EQ(src->At(60).body[0], 0x17);
  EXPECT_EQ(src->At(61).timestamp_ms, 2033u);
  EXPECT_TRUE(src->IsKeyframe(0));
  EXPECT_FALSE(src->IsKeyframe(1));
  EXPECT_FALSE(src->IsKeyframe(59));
  EXPECT_TRUE(src->IsKeyframe(120));
  for (uint64_t i = 0; i < 60; ++i) EXPECT_TRUE(Stampable(src->At(i).body)) << i;
  ASSERT_EQ(src->headers().size(), 1u);
  EXPECT_EQ(src->headers()[0].body[1], 0) << "an AVC sequence header";
  EXPECT_FALSE(src->metadata().empty());
}

TEST(MediaSourceTest, TinyBitrateStillStampsEveryFrame) {
  std::unique_ptr<MediaSource> src = MediaSource::Synthetic(1000, 30);
  for (uint64_t i = 0; i < src->period_frames(); ++i) EXPECT_TRUE(Stampable(src->At(i).body));
}

TEST(MediaSourceTest, FlvFileLoopsWithTimestampsCarriedOn) {
  const std::vector<uint8_t> flv = testing::ReadTestData("source_testsrc.flv");
  absl::StatusOr<std::unique_ptr<MediaSource>> src = MediaSource::FromFlvBytes(flv);
  ASSERT_TRUE(src.ok()) << src.status();
  const size_t n = (*src)->period_frames();
  ASSERT_GT(n, 10u);
  ASSERT_EQ((*src)->headers().size(), 1u) << "the AVC sequence header, sent once";
  EXPECT_EQ((*src)->At(0).timestamp_ms, 0u);
  EXPECT_EQ((*src)->At(n).timestamp_ms, (*src)->period_ms());
  EXPECT_GT((*src)->At(n).timestamp_ms, (*src)->At(n - 1).timestamp_ms);
}

TEST(MediaSourceTest, NotAnFlvIsRefused) {
  const uint8_t junk[] = {'G', 'I', 'F', '8', '9', 'a', 0, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_FALSE(MediaSource::FromFlvBytes(junk).ok());
}

}  // namespace
}  // namespace uringest::loadgen
