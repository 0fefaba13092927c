// Stream directory: slot claims from several threads, seqlocked descriptions that
// readers always see whole, reuse of ended slots.

#include "ringbuf/directory.h"

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
  ASSERT_TRUE(writer_->SetVideoConfig(*slot, avc));
  writer_->SetCodecInfo(*slot, {.video_codec = 7, .width = 1920, .height = 1080});
  std::optional<StreamInfo> info = reader_->Find("live/cam1");
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->slot, *slot);
  EXPECT_EQ(info->stream_id, 1u);
  EXPECT_EQ(info->shard, 2u);
  EXPECT_EQ(info->state, SlotState::kPublishing);
  EXPECT_EQ(info->publisher, "10.0.0.7:5000");
  EXPECT_EQ(info->video_config, avc);
  EXPECT_EQ(info->codec.width, 1920u);
  EXPECT_FALSE(info->latest_keyframe.has_value());
  EXPECT_EQ(reader_->epoch(), 9u);
  EXPECT_EQ(reader_->RingPath(name_.name(), 3), name_.RingPath(3));
  EXPECT_FALSE(reader_->Find("live/other").has_value());
}

TEST_F(DirectoryTest, OversizedConfigIsRefusedAndOldOneKept) {
  uint32_t slot = *writer_->Claim(0, "a/b", "");
  std::vector<uint8_t> small(10, 1), big(kVideoConfigMax + 1, 2);
  EXPECT_TRUE(writer_->SetVideoConfig(slot, small));
  EXPECT_FALSE(writer_->SetVideoConfig(slot, big));
  EXPECT_EQ(reader_->Find("a/b")->video_config, small);
}

TEST_F(DirectoryTest, TrackConfigsAreKeptPerTypeTrackAndPacketTypeUntilTheSlotsRunOut) {
  uint32_t slot = *writer_->Claim(0, "live/multi", "");
  const std::vector<uint8_t> v1 = {0x90, 'h', 'v', 'c', '1', 1},
                             v1b = {0x90, 'h', 'v', 'c', '1', 2};
  const std::vector<uint8_t> a1 = {0x90, 'O', 'p', 'u', 's'}, big(kTrackConfigMax + 1, 3);
  const std::vector<uint8_t> a1_channels = {0x94, 'O', 'p', 'u', 's', 1, 2};
  constexpr uint8_t kSeq = kFlagSequenceHeader | kFlagExHeader;
  EXPECT_TRUE(writer_->SetTrackConfig(slot, RecordType::kVideo, 1, kSeq, 0, v1));
  EXPECT_TRUE(writer_->SetTrackConfig(slot, RecordType::kAudio, 1, kSeq, 0, a1));
  EXPECT_TRUE(writer_->SetTrackConfig(slot, RecordType::kVideo, 1, kSeq, 0, v1b));  // replaces
  // Another packet type of the same track (MultichannelConfig) is kept beside it.
  EXPECT_TRUE(writer_->SetTrackConfig(slot, RecordType::kAudio, 1, kFlagExHeader, 4, a1_channels));
  EXPECT_FALSE(writer_->SetTrackConfig(slot, RecordType::kVideo, 2, kSeq, 0, big));
  std::optional<StreamInfo> info = reader_->Find("live/multi");
  ASSERT_TRUE(info.has_value());
  ASSERT_EQ(info->track_configs.size(), 3u);
  EXPECT_EQ(info->track_configs[0].type, RecordType::kVideo);
  EXPECT_EQ(info->track_configs[0].track_id, 1);
  EXPECT_EQ(info->track_configs[0].flags, kSeq);
  EXPECT_EQ(info->track_configs[0].body, v1b);
  EXPECT_EQ(info->track_configs[1].type, RecordType::kAudio);
  EXPECT_EQ(info->track_configs[1].body, a1);
  EXPECT_EQ(info->track_configs[2].type, RecordType::kAudio);
  EXPECT_EQ(info->track_configs[2].flags, kFlagExHeader);
  EXPECT_EQ(info->track_configs[2].packet_type, 4);
  EXPECT_EQ(info->track_configs[2].body, a1_channels);
  for (uint8_t track = 2; track < 2 + kTrackConfigSlots - 3; ++track) {
    EXPECT_TRUE(writer_->SetTrackConfig(slot, RecordType::kVideo, track, kSeq, 0, v1));
  }
  EXPECT_FALSE(writer_->SetTrackConfig(slot, RecordType::kVideo, 100, kSeq, 0, v1));  // all used
  EXPECT_EQ(reader_->Find("live/multi")->track_configs.size(), kTrackConfigSlots);
  EXPECT_TRUE(info->video_config.empty());  // track 0's stay separate
  StreamInfo listed;                        // listings leave them out, as the other configs
  ASSERT_TRUE(reader_->Read(slot, &listed, /*with_configs=*/false));
  EXPECT_TRUE(listed.track_configs.empty());
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
      writer_->SetVideoConfig(slot, config);
      writer_->SetCodecInfo(slot, {.width = v, .height = v});
    }
  });
  StreamInfo info;
  for (int i = 0; i < 20000; ++i) {
    ASSERT_TRUE(reader_->Read(slot, &info));
    EXPECT_EQ(info.codec.width, info.codec.height);
    if (info.video_config.empty()) continue;
    uint8_t v = info.video_config[0];
    ASSERT_EQ(info.video_config.size(), 100u + v);
    for (uint8_t b : info.video_config) ASSERT_EQ(b, v);
  }
  stop = true;
  writer.join();
}

}  // namespace
}  // namespace uringest::ringbuf
