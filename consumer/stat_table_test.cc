#include "consumer/stat_table.h"

#include <string>

#include "gtest/gtest.h"

namespace uringest::consumer {
namespace {

constexpr uint64_t kSecond = 1'000'000'000;

ringbuf::StreamInfo Stream(std::string name, uint32_t id, uint64_t bytes) {
  ringbuf::StreamInfo s;
  s.stream_id = id;
  s.shard = 1;
  s.state = ringbuf::SlotState::kPublishing;
  s.name = std::move(name);
  s.publisher = "127.0.0.1:50000";
  s.codec = {
      .video_codec = 7, .audio_codec = 10, .width = 1280, .height = 720, .frame_rate_milli = 30000};
  s.frames = 300;
  s.bytes = bytes;
  s.begin_time_ns = 100 * kSecond;
  return s;
}

StatSample Sample(int64_t at_s, uint64_t bytes) {
  StatSample s{.ring = "test",
               .epoch = 42,
               .server_pid = 1234,
               .shard_count = 2,
               .start_time_ns = 90 * kSecond,
               .server_state = "live",
               .taken_ns = at_s * int64_t(kSecond),
               .wall_ns = uint64_t(at_s) * kSecond};
  s.streams.push_back(Stream("live/test", 7, bytes));
  RingSample ring{.shard = 1, .capacity = 1 << 20, .tail = 5000, .records = 10};
  ring.readers.push_back({.shard = 1, .slot = 3, .pid = 999, .lag_bytes = 1536});
  s.rings.push_back(ring);
  return s;
}

TEST(JsonStringTest, EscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(JsonString("live/test"), "\"live/test\"");
  EXPECT_EQ(JsonString("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(JsonString("\n\r\t\b\f"), "\"\\n\\r\\t\\b\\f\"");
  EXPECT_EQ(JsonString(std::string("\x01\x1f\x00", 3)), "\"\\u0001\\u001f\\u0000\"");
  EXPECT_EQ(JsonString("\x7f"), "\"\x7f\"");
}

TEST(JsonStringTest, KeepsValidUtf8ReplacesInvalidBytes) {
  EXPECT_EQ(JsonString("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\xa5"),
            "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\xa5\"");
  EXPECT_EQ(JsonString("\xff"), "\"\\ufffd\"");
  EXPECT_EQ(JsonString("\xc3"), "\"\\ufffd\"");                        // truncated
  EXPECT_EQ(JsonString("\xc0\xaf"), "\"\\ufffd\\ufffd\"");             // overlong '/'
  EXPECT_EQ(JsonString("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");  // a surrogate
}

TEST(HumanBytesTest, BinaryUnits) {
  EXPECT_EQ(HumanBytes(0), "0 B");
  EXPECT_EQ(HumanBytes(1023), "1023 B");
  EXPECT_EQ(HumanBytes(1536), "1.5 KiB");
  EXPECT_EQ(HumanBytes(uint64_t{3} << 30), "3.0 GiB");
}

TEST(StatTableTest, BitrateComesFromTheBytesBetweenTwoSamples) {
  StatSample a = Sample(200, 1'000'000), b = Sample(202, 1'750'000);
  StatTable table = BuildStatTable(&a, b);
  ASSERT_EQ(table.streams.size(), 1u);
  ASSERT_TRUE(table.streams[0].bitrate_kbps.has_value());
  EXPECT_DOUBLE_EQ(*table.streams[0].bitrate_kbps, 3000);  // 750 kB in 2 s
  EXPECT_DOUBLE_EQ(table.interval_s, 2);
  EXPECT_DOUBLE_EQ(table.streams[0].fps, 30);
  EXPECT_EQ(table.streams[0].video_codec, "H.264");
  EXPECT_DOUBLE_EQ(table.streams[0].duration_s, 102);
  EXPECT_DOUBLE_EQ(table.uptime_s, 112);
}

TEST(StatTableTest, NoBitrateWithoutPreviousSampleOrAcrossRestarts) {
  StatSample a = Sample(200, 1'000'000), b = Sample(202, 1'750'000);
  EXPECT_FALSE(BuildStatTable(nullptr, b).streams[0].bitrate_kbps.has_value());
  a.epoch = 41;
  EXPECT_FALSE(BuildStatTable(&a, b).streams[0].bitrate_kbps.has_value());
  a = Sample(200, 0);
  a.streams[0].stream_id = 6;  // another stream of the same name
  EXPECT_FALSE(BuildStatTable(&a, b).streams[0].bitrate_kbps.has_value());
}

TEST(StatTableTest, JsonDocumentHasStreamsAndReaders) {
  StatSample a = Sample(200, 1'000'000), b = Sample(202, 1'750'000);
  b.streams[0].name = "live/\"odd\"";
  const std::string json = RenderStatJson(BuildStatTable(&a, b));
  EXPECT_EQ(json,
            "{\"ring\":\"test\",\"epoch\":\"000000000000002a\",\"server_pid\":1234,\"server_"
            "state\":\"live\","
            "\"shards\":2,\"uptime_s\":112.000,\"interval_s\":2.000,\"streams\":[{\"name\":"
            "\"live/\\\"odd\\\"\",\"publisher\":\"127.0.0.1:50000\",\"shard\":1,\"stream_id\":7,"
            "\"video_codec\":\"H.264\",\"audio_codec\":\"AAC\",\"width\":1280,\"height\":720,"
            "\"fps\":30.000,\"bitrate_kbps\":3000.000,\"frames\":300,\"bytes\":1750000,"
            "\"drops\":0,\"duration_s\":102.000,\"tracks\":[]}],\"rings\":[{\"shard\":1,"
            "\"capacity\":1048576,"
            "\"tail\":5000,\"records\":10,\"lossless_waits\":0,\"lossless_evictions\":0,"
            "\"readers\":[{\"slot\":3,\"pid\":999,\"state\":\"active\",\"lag_bytes\":1536}]}]}\n");
}

TEST(StatTableTest, TextTableAlignsColumns) {
  StatSample a = Sample(200, 1'000'000), b = Sample(202, 1'750'000);
  b.streams.push_back(Stream("live/a-much-longer-name", 8, 10));
  b.streams.back().codec = {};
  const std::string text = RenderStatText(BuildStatTable(&a, b));
  EXPECT_EQ(text,
            "ring 'test'  server pid 1234 (live)  2 shards  up 112 s  2 streams publishing, "
            "1.7 MiB\n"
            "\n"
            "STREAM                   PUBLISHER        SHARD  CODEC      SIZE        FPS  KBIT/S  "
            "FRAMES    BYTES  DROPS\n"
            "live/test                127.0.0.1:50000      1  H.264+AAC  1280x720  30.00    3000  "
            "   300  1.7 MiB      0\n"
            "live/a-much-longer-name  127.0.0.1:50000      1  -          -             -       -  "
            "   300     10 B      0\n"
            "\n"
            "READER    SHARD  SLOT      PID  STATE    LAG\n"
            "lossless      1     3      999  active   1.5 KiB\n");
}

TEST(StatTableTest, EnhancedRtmpTracksBeyondTrackZeroAreCountedAndListed) {
  StatSample s = Sample(200, 0);
  ringbuf::StreamInfo& stream = s.streams[0];
  stream.codec.video_codec = 0x68766331;  // "hvc1"
  stream.codec.audio_codec = 0x4F707573;  // "Opus"
  constexpr uint8_t kConfig = ringbuf::kFlagSequenceHeader | ringbuf::kFlagExHeader;
  // OneTrack SequenceStart bodies: video 0x96 0x00 "av01" track 1; audio 0x95 0x00
  // "fLaC" track 2; and track 0's MultichannelConfig, which is no track of its own.
  stream.configs = {
      {.type = ringbuf::RecordType::kVideo,
       .track_id = 1,
       .flags = kConfig,
       .body = {0x96, 0x00, 'a', 'v', '0', '1', 0x01, 0x81}},
      {.type = ringbuf::RecordType::kAudio,
       .track_id = 2,
       .flags = kConfig,
       .body = {0x95, 0x00, 'f', 'L', 'a', 'C', 0x02, 0x10}},
      {.type = ringbuf::RecordType::kAudio,
       .track_id = 0,
       .flags = ringbuf::kFlagExHeader,
       .packet_type = 4,
       .body = {0x94, 'O', 'p', 'u', 's', 0x00, 0x02}},
  };
  const StatTable table = BuildStatTable(nullptr, s);
  EXPECT_NE(RenderStatText(table).find("HEVC+Opus +2 tracks"), std::string::npos)
      << RenderStatText(table);
  EXPECT_NE(RenderStatJson(table).find(
                "\"tracks\":[{\"type\":\"video\",\"track_id\":1,\"codec\":\"AV1\"},"
                "{\"type\":\"audio\",\"track_id\":2,\"codec\":\"FLAC\"}]"),
            std::string::npos)
      << RenderStatJson(table);
}

TEST(StatTableTest, EmptyServerSaysSo) {
  StatSample s = Sample(200, 0);
  s.streams.clear();
  s.rings.clear();
  EXPECT_NE(RenderStatText(BuildStatTable(nullptr, s)).find("(no stream is publishing)"),
            std::string::npos);
}

}  // namespace
}  // namespace uringest::consumer
