#include "loadgen/stamp.h"

#include <vector>

#include "gtest/gtest.h"

namespace uringest::loadgen {
namespace {

std::vector<uint8_t> NaluTag(size_t size, uint8_t first = 0x27) {
  std::vector<uint8_t> body(size, 0xAB);
  body[0] = first;
  body[1] = 1;
  body[2] = body[3] = body[4] = 0;
  return body;
}

TEST(StampTest, RoundTripsEveryField) {
  std::vector<uint8_t> body = NaluTag(100);
  const Stamp in{.run = 0xDEADBEEF,
                 .publisher = 999,
                 .sequence = 1ull << 40,
                 .send_ns = 1'700'000'000'123'456'789ull};
  WriteStamp(in, body.data() + kAvcHeaderSize);
  std::optional<Stamp> out = ReadStamp(body);
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->run, in.run);
  EXPECT_EQ(out->publisher, in.publisher);
  EXPECT_EQ(out->sequence, in.sequence);
  EXPECT_EQ(out->send_ns, in.send_ns);
  EXPECT_EQ(body[0], 0x27) << "the AVC tag header is left alone";
  EXPECT_EQ(body[kStampedMin], 0xAB) << "bytes after the stamp are left alone";
}

TEST(StampTest, SmallestStampableBodyHoldsTheStamp) {
  std::vector<uint8_t> body = NaluTag(kStampedMin, 0x17);
  WriteStamp({.sequence = 7}, body.data() + kAvcHeaderSize);
  ASSERT_TRUE(ReadStamp(body).has_value());
  EXPECT_EQ(ReadStamp(body)->sequence, 7u);
  body.pop_back();
  EXPECT_FALSE(Stampable(body));
  EXPECT_FALSE(ReadStamp(body).has_value());
}

TEST(StampTest, SequenceHeadersAndOtherCodecsAreNotStamped) {
  std::vector<uint8_t> header = NaluTag(64, 0x17);
  header[1] = 0;  // AVC sequence header
  EXPECT_FALSE(Stampable(header));
  std::vector<uint8_t> vp6 = NaluTag(64, 0x24);
  EXPECT_FALSE(Stampable(vp6));
}

TEST(StampTest, RawAacFramesAreStampedAfterTheirTwoHeaderBytes) {
  std::vector<uint8_t> aac(kStampedMin, 0xAB);
  aac[0] = 0xAF;  // AAC, 44 kHz, 16-bit, stereo
  aac[1] = 1;     // raw frame
  ASSERT_EQ(StampOffset(aac), kAacHeaderSize);
  WriteStamp({.publisher = 4, .sequence = 9}, aac.data() + kAacHeaderSize);
  std::optional<Stamp> out = ReadStamp(aac);
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->publisher, 4u);
  EXPECT_EQ(out->sequence, 9u);
  EXPECT_EQ(aac[0], 0xAF);
  EXPECT_EQ(aac[1], 1);
  aac[1] = 0;  // AudioSpecificConfig: left intact
  EXPECT_EQ(StampOffset(aac), 0u);
  std::vector<uint8_t> mp3(64, 0xAB);
  mp3[0] = 0x2F;  // MP3 has no packet type byte: not stamped
  mp3[1] = 1;
  EXPECT_EQ(StampOffset(mp3), 0u);
}

TEST(StampTest, BodyWithoutMagicIsNotAStamp) {
  std::vector<uint8_t> body = NaluTag(64);
  EXPECT_TRUE(Stampable(body));
  EXPECT_FALSE(ReadStamp(body).has_value());
}

}  // namespace
}  // namespace uringest::loadgen
