// Stream directory: slot claims from several threads, seqlocked descriptions that
// readers always see whole, reuse of ended slots.

#include "ringbuf/directory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "ringbuf/internal/test_util.h"

namespace uringest::ringbuf {
namespace {

class DirectoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ObjectPath(kShmDir, name_.name(), kDirectorySuffix);
    absl::StatusOr<std::unique_ptr<StreamDirectory>> d = StreamDirectory::Create(
        path_, {.shard_count = 4, .slot_count = 64, .ring_capacity = 1 << 20, .epoch = 9}, {});
    ASSERT_TRUE(d.ok()) << d.status();
    writer_ = *std::move(d);
    absl::StatusOr<std::unique_ptr<StreamDirectory>> r = StreamDirectory::Open(path_);
    ASSERT_TRUE(r.ok()) << r.status();
    reader_ = *std::move(r);
  }

  testing::ScopedRingName name_;
  std::string path_;
  std::unique_ptr<StreamDirectory> writer_;
  std::unique_ptr<StreamDirectory> reader_;
};

TEST_F(DirectoryTest, ClaimedEntryIsVisibleToReaders) {
  absl::StatusOr<uint32_t> slot = writer_->Claim(2, "live/cam1", "10.0.0.7:5000");
  ASSERT_TRUE(slot.ok());
  std::vector<uint8_t> avc = {0x17, 0, 0, 0, 0, 1, 0x64};
  ASSERT_TRUE(writer_->SetConfig(*slot, RecordType::kVideo, 0, kFlagSequenceHeader, 0, avc));
  writer_->SetCodecInfo(*slot, {.video_codec = 7, .width = 1920, .height = 1080});
  std::optional<StreamInfo> info = reader_->Find("live/cam1");
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->slot, *slot);
  EXPECT_EQ(info->stream_id, 1u);
  EXPECT_EQ(info->shard, 2u);
  EXPECT_EQ(info->state, SlotState::kPublishing);
  EXPECT_EQ(info->publisher, "10.0.0.7:5000");
  ASSERT_EQ(info->configs.size(), 1u);
  EXPECT_EQ(info->configs[0].body, avc);
  EXPECT_EQ(info->configs[0].flags, kFlagSequenceHeader);
  EXPECT_EQ(info->codec.width, 1920u);
  EXPECT_FALSE(info->latest_keyframe.has_value());
  EXPECT_EQ(reader_->epoch(), 9u);
  EXPECT_EQ(reader_->RingPath(name_.name(), 3), name_.RingPath(3));
  EXPECT_FALSE(reader_->Find("live/other").has_value());
}

// Which of the pages of slot `slot`'s body exist in the shared memory object.
std::vector<bool> BodyPagesPresent(const StreamDirectory& dir, uint32_t slot) {
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  const auto* base = reinterpret_cast<const uint8_t*>(&dir.header());
  const uint8_t* body = base + dir.header().body_offset + size_t{slot} * dir.header().body_size;
  std::vector<unsigned char> present(kStreamBodySize / page);
  EXPECT_EQ(mincore(const_cast<uint8_t*>(body), kStreamBodySize, present.data()), 0);
  return std::vector<bool>(present.begin(), present.end());
}

TEST_F(DirectoryTest, AnIdleStreamTouchesNoPageOfItsBody) {
  // A stream costs memory only for what it holds: its entry is a few hundred bytes
  // packed with the others, and its body's pages exist only once written.
  static_assert(kStreamEntrySize <= 1024);
  uint32_t slot = *writer_->Claim(0, "live/idle", "10.0.0.7:5000");
  std::optional<StreamInfo> info = reader_->Find("live/idle");  // with configs
  ASSERT_TRUE(info.has_value());
  EXPECT_TRUE(info->metadata.empty());
  EXPECT_EQ(BodyPagesPresent(*writer_, slot), std::vector<bool>(4, false));
  const std::vector<uint8_t> metadata(100, 2);
  ASSERT_TRUE(writer_->SetMetadata(slot, metadata));
  EXPECT_EQ(BodyPagesPresent(*writer_, slot), (std::vector<bool>{true, false, false, false}));
  info = reader_->Find("live/idle");
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->metadata, metadata);
  EXPECT_EQ(BodyPagesPresent(*writer_, slot), (std::vector<bool>{true, false, false, false}));
}

TEST_F(DirectoryTest, ConfigsAreKeptPerTypeTrackAndPacketTypeInTheOrderTheyCame) {
  uint32_t slot = *writer_->Claim(0, "live/multi", "");
  const std::vector<uint8_t> v0 = {0x90, 'h', 'v', 'c', '1', 0}, v1 = {0x90, 'h', 'v', 'c', '1', 1},
                             v1b = {0x90, 'h', 'v', 'c', '1', 2, 3, 4, 5, 6, 7, 8, 9, 10};
  const std::vector<uint8_t> a1 = {0x90, 'O', 'p', 'u', 's'};
  const std::vector<uint8_t> a1_channels = {0x94, 'O', 'p', 'u', 's', 1, 2};
  constexpr uint8_t kSeq = kFlagSequenceHeader | kFlagExHeader;
  EXPECT_TRUE(writer_->SetConfig(slot, RecordType::kVideo, 0, kSeq, 0, v0));
  EXPECT_TRUE(writer_->SetConfig(slot, RecordType::kVideo, 1, kSeq, 0, v1));
  EXPECT_TRUE(writer_->SetConfig(slot, RecordType::kAudio, 1, kSeq, 0, a1));
  // A longer update of track 1's video replaces it where it stands; the ones after move.
  EXPECT_TRUE(writer_->SetConfig(slot, RecordType::kVideo, 1, kSeq, 0, v1b));
  // Another packet type of the same track (MultichannelConfig) is kept beside it.
  EXPECT_TRUE(writer_->SetConfig(slot, RecordType::kAudio, 1, kFlagExHeader, 4, a1_channels));
  std::optional<StreamInfo> info = reader_->Find("live/multi");
  ASSERT_TRUE(info.has_value());
  ASSERT_EQ(info->configs.size(), 4u);
  EXPECT_EQ(info->config_count, 4u);
  EXPECT_EQ(info->configs[0].body, v0);
  EXPECT_EQ(info->configs[1].type, RecordType::kVideo);
  EXPECT_EQ(info->configs[1].track_id, 1);
  EXPECT_EQ(info->configs[1].flags, kSeq);
  EXPECT_EQ(info->configs[1].body, v1b);
  EXPECT_EQ(info->configs[2].type, RecordType::kAudio);
  EXPECT_EQ(info->configs[2].body, a1);
  EXPECT_EQ(info->configs[3].flags, kFlagExHeader);
  EXPECT_EQ(info->configs[3].packet_type, 4);
  EXPECT_EQ(info->configs[3].body, a1_channels);
  ASSERT_NE(info->FindConfig(RecordType::kAudio, 1, 4), nullptr);
  EXPECT_EQ(info->FindConfig(RecordType::kAudio, 1, 4)->body, a1_channels);
  EXPECT_EQ(info->FindConfig(RecordType::kAudio, 0), nullptr);
  StreamInfo listed;  // listings leave them out, but say how many there are
  ASSERT_TRUE(reader_->Read(slot, &listed, /*with_configs=*/false));
  EXPECT_TRUE(listed.configs.empty());
  EXPECT_EQ(listed.config_count, 4u);
}

// x265's HEVC decoder configuration carries its settings in an SEI: 2.5 KB. Configs of
// any size share the entry's area, until it is full.
TEST_F(DirectoryTest, LargeConfigsFitUntilTheAreaIsFullThenTheOldOneStays) {
  uint32_t slot = *writer_->Claim(0, "a/b", "");
  const std::vector<uint8_t> hevc(2459, 1), hevc1(2462, 2);
  EXPECT_TRUE(writer_->SetConfig(slot, RecordType::kVideo, 0, kFlagSequenceHeader, 0, hevc));
  EXPECT_TRUE(writer_->SetConfig(slot, RecordType::kVideo, 1, kFlagSequenceHeader, 0, hevc1));
  const size_t left = kConfigAreaSize - ConfigRecordSize(hevc.size()) -
                      ConfigRecordSize(hevc1.size()) - sizeof(ConfigHeader);
  const std::vector<uint8_t> fits(left, 3), too_big(kConfigAreaSize, 4), grown(hevc1.size() + 8, 5);
  EXPECT_FALSE(writer_->SetConfig(slot, RecordType::kAudio, 0, kFlagSequenceHeader, 0, too_big));
  EXPECT_TRUE(writer_->SetConfig(slot, RecordType::kAudio, 0, kFlagSequenceHeader, 0, fits));
  // Full: track 1's config can't grow, and what was kept stays.
  EXPECT_FALSE(writer_->SetConfig(slot, RecordType::kVideo, 1, kFlagSequenceHeader, 0, grown));
  std::optional<StreamInfo> info = reader_->Find("a/b");
  ASSERT_EQ(info->configs.size(), 3u);
  EXPECT_EQ(info->configs[0].body, hevc);
  EXPECT_EQ(info->configs[1].body, hevc1);
  EXPECT_EQ(info->configs[2].body, fits);
}

TEST_F(DirectoryTest, EndedSlotsAreReusedWhenFreeOnesRunOut) {
  std::vector<uint32_t> slots;
  for (int i = 0; i < 64; ++i) slots.push_back(*writer_->Claim(0, "s/" + std::to_string(i), ""));
  EXPECT_EQ(writer_->Claim(0, "s/full", "").status().code(), absl::StatusCode::kResourceExhausted);
  writer_->End(slots[5]);
  EXPECT_EQ(reader_->Find("s/5")->state, SlotState::kEnded);
  absl::StatusOr<uint32_t> reused = writer_->Claim(1, "s/new", "");
  ASSERT_TRUE(reused.ok());
  EXPECT_EQ(*reused, slots[5]);
  EXPECT_EQ(reader_->Find("s/new")->stream_id, 65u);
  EXPECT_FALSE(reader_->Find("s/5").has_value());
}

TEST_F(DirectoryTest, FindPrefersThePublishingStreamOfAName) {
  uint32_t old_slot = *writer_->Claim(0, "live/x", "");
  writer_->End(old_slot);
  uint32_t new_slot = *writer_->Claim(1, "live/x", "");
  EXPECT_EQ(reader_->Find("live/x")->slot, new_slot);
  writer_->End(new_slot);
  EXPECT_EQ(reader_->Find("live/x")->slot, new_slot);  // the most recent ended one
  EXPECT_EQ(reader_->List().size(), 2u);
}

TEST_F(DirectoryTest, ConcurrentClaimsGetDistinctSlotsAndIds) {
  std::vector<std::thread> shards;
  std::vector<std::vector<uint32_t>> claimed(4);
  for (uint32_t k = 0; k < 4; ++k) {
    shards.emplace_back([&, k] {
      for (int i = 0; i < 16; ++i) {
        absl::StatusOr<uint32_t> slot =
            writer_->Claim(k, "shard" + std::to_string(k) + "/" + std::to_string(i), "");
        if (slot.ok()) claimed[k].push_back(*slot);
      }
    });
  }
  for (std::thread& t : shards) t.join();
  std::set<uint32_t> slots, ids;
  for (uint32_t k = 0; k < 4; ++k) {
    for (uint32_t slot : claimed[k]) {
      slots.insert(slot);
      StreamInfo info;
      ASSERT_TRUE(reader_->Read(slot, &info));
      EXPECT_EQ(info.shard, k);
      ids.insert(info.stream_id);
    }
  }
  EXPECT_EQ(slots.size(), 64u);
  EXPECT_EQ(ids.size(), 64u);
}

TEST_F(DirectoryTest, ReadersNeverSeeAHalfWrittenDescription) {
  uint32_t slot = *writer_->Claim(0, "live/torn", "");
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    std::vector<uint8_t> config;
    for (uint8_t v = 0; !stop; ++v) {
      config.assign(100 + v, v);  // the length changes with the contents
      writer_->SetConfig(slot, RecordType::kVideo, 0, kFlagSequenceHeader, 0, config);
      writer_->SetCodecInfo(slot, {.width = v, .height = v});
    }
  });
  StreamInfo info;
  for (int i = 0; i < 20000; ++i) {
    ASSERT_TRUE(reader_->Read(slot, &info));
    EXPECT_EQ(info.codec.width, info.codec.height);
    if (info.configs.empty()) continue;
    ASSERT_EQ(info.configs.size(), 1u);
    const std::vector<uint8_t>& config = info.configs[0].body;
    uint8_t v = config[0];
    ASSERT_EQ(config.size(), 100u + v);
    for (uint8_t b : config) ASSERT_EQ(b, v);
  }
  stop = true;
  writer.join();
}

}  // namespace
}  // namespace uringest::ringbuf
