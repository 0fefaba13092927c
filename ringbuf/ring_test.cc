// Single-process tests of the ring: Producer and RingReader on one ring, record sizes
// from 0 to the maximum, wrap-around, laps, lossless readers and futex waits.

#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "ringbuf/internal/test_util.h"
#include "ringbuf/producer.h"
#include "ringbuf/record_meta.h"
#include "ringbuf/ring_reader.h"

namespace uringest::ringbuf {
namespace {

using testing::CheckPayload;
using testing::FillPayload;
using testing::ScopedRingName;

constexpr uint64_t kCapacity = kMinRingCapacity;  // 64 KiB: wraps often

class RingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RingOptions options{.capacity = kCapacity,
                        .shard = 0,
                        .epoch = 42,
                        .lossless_timeout = absl::Milliseconds(100)};
    absl::StatusOr<std::unique_ptr<Producer>> p = Producer::Create(name_.RingPath(), options);
    ASSERT_TRUE(p.ok()) << p.status();
    producer_ = *std::move(p);
    reader_ = NewReader();
  }

  std::unique_ptr<RingReader> NewReader() {
    absl::StatusOr<std::unique_ptr<RingReader>> r = RingReader::Open(name_.RingPath());
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *std::move(r) : nullptr;
  }

  // Writes a record whose payload is FillPayload(1, sequence).
  uint64_t WriteFrame(uint64_t sequence, size_t size, uint8_t flags = 0) {
    RecordMeta meta{.type = RecordType::kVideo,
                    .flags = flags,
                    .stream_id = 1,
                    .sequence = sequence,
                    .dts = static_cast<int64_t>(sequence),
                    .pts = static_cast<int64_t>(sequence) + 40,
                    .ingest_time_ns = sequence * 7};
    absl::StatusOr<std::span<uint8_t>> room = producer_->Reserve(meta, size);
    EXPECT_TRUE(room.ok()) << room.status();
    if (!room.ok()) return 0;
    FillPayload(1, sequence, *room);
    return producer_->Commit();
  }

  void ExpectFrame(RingReader& reader, uint64_t sequence, size_t size) {
    RecordView view;
    ASSERT_TRUE(reader.Poll(&view)) << "sequence " << sequence;
    EXPECT_EQ(view.header.sequence, sequence);
    EXPECT_EQ(view.payload.size(), size);
    EXPECT_EQ(view.header.pts, static_cast<int64_t>(sequence) + 40);
    EXPECT_TRUE(CheckPayload(1, sequence, view.payload)) << "sequence " << sequence;
    EXPECT_TRUE(reader.Validate(view));
  }

  ScopedRingName name_;
  std::unique_ptr<Producer> producer_;
  std::unique_ptr<RingReader> reader_;
};

TEST_F(RingTest, EmptyRingHasNothingToPoll) {
  RecordView view;
  EXPECT_FALSE(reader_->Poll(&view));
  EXPECT_EQ(reader_->Lag(), 0u);
  EXPECT_EQ(reader_->epoch(), 42u);
  EXPECT_EQ(reader_->state(), RingState::kLive);
}

TEST_F(RingTest, HeaderFieldsRoundTrip) {
  uint64_t position = WriteFrame(1, 100, kFlagKeyframe | kFlagSequenceHeader);
  RecordView view;
  ASSERT_TRUE(reader_->Poll(&view));
  EXPECT_EQ(view.position(), position);
  EXPECT_EQ(view.type(), RecordType::kVideo);
  EXPECT_EQ(view.header.flags, kFlagKeyframe | kFlagSequenceHeader);
  EXPECT_EQ(view.header.stream_id, 1u);
  EXPECT_EQ(view.header.dts, 1);
  EXPECT_EQ(view.header.ingest_time_ns, 7u);
  EXPECT_EQ(view.header.record_length, AlignRecord(kRecordHeaderSize + 100));
  EXPECT_FALSE(view.gap_before);
  EXPECT_FALSE(reader_->Poll(&view));
}

TEST_F(RingTest, EnhancedRtmpFieldsRoundTrip) {
  RecordMeta meta{.type = RecordType::kVideo,
                  .flags = kFlagKeyframe | kFlagExHeader | kFlagMultitrack,
                  .stream_id = 3,
                  .sequence = 1,
                  .codec = 0x61763031,  // "av01"
                  .track_id = 5,
                  .packet_type = 1,
                  .time_offset_ns = 999'999};
  const uint8_t body[] = {0x96, 0x11, 'a', 'v', '0', '1'};
  ASSERT_TRUE(producer_->Write(meta, body).ok());
  RecordView view;
  ASSERT_TRUE(reader_->Poll(&view));
  EXPECT_EQ(view.header.flags, kFlagKeyframe | kFlagExHeader | kFlagMultitrack);
  EXPECT_EQ(view.header.codec, 0x61763031u);
  EXPECT_EQ(view.header.track_id, 5);
  EXPECT_EQ(view.header.packet_type, 1);
  EXPECT_EQ(view.header.time_offset_ns, 999'999u);
  EXPECT_EQ(std::vector<uint8_t>(view.payload.begin(), view.payload.end()),
            std::vector<uint8_t>(std::begin(body), std::end(body)));
  // The layout FORMAT.md documents: codec at 56, track id at 14, packet type at 15.
  const uint8_t* raw = reinterpret_cast<const uint8_t*>(&view.header);
  EXPECT_EQ(raw[14], 5);
  EXPECT_EQ(raw[15], 1);
  EXPECT_EQ(raw[56], 0x31);  // little endian: the FourCC's last character first
  EXPECT_EQ(raw[60] | raw[61] << 8 | raw[62] << 16, 999'999);  // time_offset_ns at 60
  EXPECT_EQ(kRecordHeaderSize, 64u);
}

// Each field of the in-memory description lands in its own place of the header and
// comes back from it; the layout fields are the producer's.
TEST(RecordMetaTest, EveryFieldSurvivesTheRecordHeader) {
  const RecordMeta meta{.type = RecordType::kAudio,
                        .flags = kFlagKeyframe | kFlagExHeader,
                        .stream_id = 7,
                        .sequence = 0x1'0000'0001,
                        .dts = -40,
                        .pts = 80,
                        .ingest_time_ns = 1'700'000'000'000'000'000,
                        .codec = 0x4F707573,  // "Opus"
                        .track_id = 3,
                        .packet_type = 4,
                        .time_offset_ns = 999'999};
  const RecordHeader header = ToRecordHeader(meta);
  EXPECT_EQ(header.position, 0u);
  EXPECT_EQ(header.record_length, 0u);
  EXPECT_EQ(header.payload_length, 0u);
  EXPECT_EQ(ToRecordMeta(header), meta);
}

TEST_F(RingTest, RandomSizesFromZeroToMaximumRoundTrip) {
  std::mt19937_64 rng(1234);
  const size_t max = producer_->max_payload_length();
  for (uint64_t seq = 1; seq <= 3000; ++seq) {
    size_t size;
    switch (rng() % 4) {
      case 0:
        size = 0;
        break;
      case 1:
        size = max;
        break;
      case 2:
        size = rng() % 64;
        break;
      default:
        size = rng() % (max + 1);
        break;
    }
    WriteFrame(seq, size);
    ExpectFrame(*reader_, seq, size);
  }
  EXPECT_EQ(reader_->laps(), 0u);
  EXPECT_GT(producer_->tail(), 10 * kCapacity);
}

TEST_F(RingTest, ExactFitAtWrapNeedsNoPadding) {
  // Fill the ring up to exactly its end with records, then one more wraps to offset 0.
  const size_t record_payload = 1000 - kRecordHeaderSize;  // record length 1008
  uint64_t seq = 0;
  while (kCapacity - producer_->tail() >= 2 * 1008) WriteFrame(++seq, record_payload);
  size_t last = kCapacity - producer_->tail() - kRecordHeaderSize;  // fills the rest
  uint64_t position = WriteFrame(++seq, last);
  EXPECT_EQ(position + AlignRecord(kRecordHeaderSize + last), kCapacity);
  for (uint64_t s = 1; s < seq; ++s) ExpectFrame(*reader_, s, record_payload);
  ExpectFrame(*reader_, seq, last);
  EXPECT_EQ(WriteFrame(++seq, 10), kCapacity);  // no padding in between
  ExpectFrame(*reader_, seq, 10);
  EXPECT_EQ(reader_->laps(), 0u);
}

TEST_F(RingTest, SmallestGapAtWrapHoldsPadding) {
  uint64_t seq = 0;
  while (kCapacity - producer_->tail() >= 2 * 1008) WriteFrame(++seq, 1000 - kRecordHeaderSize);
  // Leave exactly kRecordAlignment bytes before the end.
  size_t last = kCapacity - producer_->tail() - kRecordHeaderSize - kRecordAlignment;
  WriteFrame(++seq, last);
  EXPECT_EQ(kCapacity - producer_->tail(), kRecordAlignment);
  RecordView view;
  while (reader_->Poll(&view)) {
  }
  EXPECT_EQ(view.header.sequence, seq);
  EXPECT_EQ(WriteFrame(++seq, 0), kCapacity);  // a 16-byte padding record went first
  ExpectFrame(*reader_, seq, 0);
  EXPECT_EQ(reader_->laps(), 0u);
}

TEST_F(RingTest, LappedReaderCountsLossAndResumesAtOldestRecord) {
  const size_t size = 3000;
  uint64_t seq = 0;
  while (producer_->tail() < 3 * kCapacity + 100) WriteFrame(++seq, size);
  RecordView view;
  ASSERT_TRUE(reader_->Poll(&view));
  EXPECT_TRUE(view.gap_before);
  EXPECT_EQ(reader_->laps(), 1u);
  EXPECT_GT(reader_->lost_bytes(), 2 * kCapacity);
  uint64_t first = view.header.sequence;
  EXPECT_TRUE(CheckPayload(1, first, view.payload));
  // Everything after the resync point is intact and in order.
  uint64_t expected = first + 1;
  while (reader_->Poll(&view)) {
    EXPECT_FALSE(view.gap_before);
    EXPECT_EQ(view.header.sequence, expected++);
    EXPECT_TRUE(CheckPayload(1, view.header.sequence, view.payload));
    EXPECT_TRUE(reader_->Validate(view));
  }
  EXPECT_EQ(expected, seq + 1);
  // At most one ring's worth of records was still there to read.
  EXPECT_LE((seq - first + 1) * AlignRecord(kRecordHeaderSize + size), kCapacity);
}

TEST_F(RingTest, ViewOverwrittenAfterPollFailsValidation) {
  WriteFrame(1, 100);
  RecordView view;
  ASSERT_TRUE(reader_->Poll(&view));
  EXPECT_TRUE(reader_->Validate(view));
  for (uint64_t seq = 2; producer_->tail() < kCapacity + 200; ++seq) WriteFrame(seq, 500);
  EXPECT_FALSE(reader_->Validate(view));
  std::vector<uint8_t> copy(view.payload.size());
  EXPECT_FALSE(reader_->CopyPayload(view, copy));
}

TEST_F(RingTest, OversizedPayloadIsRejectedAndNothingIsWritten) {
  RecordMeta meta;
  EXPECT_EQ(producer_->Reserve(meta, producer_->max_payload_length() + 1).status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(producer_->tail(), 0u);
  EXPECT_EQ(producer_->max_payload_length(), kCapacity / 4 - kRecordHeaderSize);
}

TEST_F(RingTest, AbortedReservationIsSkipped) {
  RecordMeta meta{.stream_id = 1, .sequence = 5};
  ASSERT_TRUE(producer_->Reserve(meta, 300).ok());
  producer_->Abort();
  WriteFrame(6, 20);
  ExpectFrame(*reader_, 6, 20);
  EXPECT_EQ(producer_->header().records, 1u);
}

TEST_F(RingTest, GatheredPiecesAreConcatenated) {
  std::vector<uint8_t> whole(777);
  FillPayload(1, 9, whole);
  std::span<const uint8_t> all(whole);
  std::span<const uint8_t> pieces[] = {all.subspan(0, 1), all.subspan(1, 0), all.subspan(1, 500),
                                       all.subspan(501)};
  RecordMeta meta{.stream_id = 1, .sequence = 9, .pts = 49};
  ASSERT_TRUE(producer_->Write(meta, pieces).ok());
  ExpectFrame(*reader_, 9, 777);
}

TEST_F(RingTest, OldestIsARecordBoundaryAfterManyLaps) {
  uint64_t seq = 0;
  while (producer_->tail() < 5 * kCapacity + 12345) {
    ++seq;
    WriteFrame(seq, 1 + seq * 37 % 2000);
  }
  reader_->SeekToOldest();
  RecordView view;
  uint64_t expected = 0;
  while (reader_->Poll(&view)) {
    if (expected != 0) {
      EXPECT_EQ(view.header.sequence, expected);
    }
    expected = view.header.sequence + 1;
    EXPECT_TRUE(CheckPayload(1, view.header.sequence, view.payload));
  }
  EXPECT_EQ(expected, seq + 1);
  EXPECT_EQ(reader_->laps(), 0u);
  EXPECT_EQ(reader_->corrupt(), 0u);
}

TEST_F(RingTest, WaitReturnsAfterTimeoutOnIdleRing) {
  reader_->SeekToTail();
  absl::Time start = absl::Now();
  reader_->Wait(absl::Milliseconds(30));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(25));
  EXPECT_EQ(reader_->header().waiters, 0u);
}

TEST_F(RingTest, WaitWakesWhenARecordIsCommitted) {
  reader_->SeekToTail();
  std::thread writer([&] {
    absl::SleepFor(absl::Milliseconds(20));
    RecordMeta meta{.stream_id = 1, .sequence = 1};
    std::vector<uint8_t> payload(10);
    (void)producer_->Write(meta, payload);
  });
  RecordView view;
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (!reader_->Poll(&view) && absl::Now() < deadline) reader_->Wait(absl::Seconds(10));
  writer.join();
  EXPECT_EQ(view.header.sequence, 1u);
}

TEST_F(RingTest, CloseWakesSleepingReader) {
  reader_->SeekToTail();
  std::thread closer([&] {
    absl::SleepFor(absl::Milliseconds(20));
    producer_->Close();
  });
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (reader_->state() != RingState::kClosed && absl::Now() < deadline) {
    reader_->Wait(absl::Seconds(10));
  }
  closer.join();
  EXPECT_EQ(reader_->state(), RingState::kClosed);
}

TEST_F(RingTest, LosslessReaderIsNeverOverwrittenWhileItKeepsUp) {
  ASSERT_TRUE(reader_->EnableLossless().ok());
  constexpr uint64_t kFrames = 2000;
  std::thread writer([&] {
    for (uint64_t seq = 1; seq <= kFrames; ++seq) {
      RecordMeta meta{.stream_id = 1, .sequence = seq};
      std::vector<uint8_t> payload(1 + seq % 3000);
      FillPayload(1, seq, payload);
      (void)producer_->Write(meta, payload);
    }
  });
  std::vector<uint8_t> copy(kCapacity);
  uint64_t expected = 1;
  RecordView view;
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (expected <= kFrames && absl::Now() < deadline) {
    if (!reader_->Poll(&view)) {
      reader_->Wait(absl::Milliseconds(10));
      continue;
    }
    ASSERT_EQ(view.header.sequence, expected);
    ASSERT_TRUE(reader_->CopyPayload(view, copy));
    ASSERT_TRUE(CheckPayload(1, expected, std::span(copy).first(view.payload.size())));
    ++expected;
  }
  writer.join();
  EXPECT_EQ(expected, kFrames + 1);
  // A scheduler stall longer than the timeout may evict it; then it still never lost
  // a frame, because it was never lapped.
  EXPECT_EQ(reader_->laps(), 0u);
}

TEST_F(RingTest, StalledLosslessReaderIsEvictedAfterTimeout) {
  ASSERT_TRUE(reader_->EnableLossless().ok());
  absl::Time start = absl::Now();
  for (uint64_t seq = 1; producer_->tail() < 2 * kCapacity; ++seq) WriteFrame(seq, 1000);
  absl::Duration waited = absl::Now() - start;
  EXPECT_GE(waited, absl::Milliseconds(90));              // the producer held back once...
  EXPECT_EQ(producer_->header().lossless_evictions, 1u);  // ...then evicted the reader
  EXPECT_EQ(producer_->header().lossless_mask, 0u);
  RecordView view;
  ASSERT_TRUE(reader_->Poll(&view));
  EXPECT_EQ(reader_->evictions(), 1u);
  EXPECT_FALSE(reader_->lossless());
  EXPECT_TRUE(view.gap_before);
}

TEST_F(RingTest, LosslessSlotsRunOut) {
  std::vector<std::unique_ptr<RingReader>> readers;
  for (uint32_t i = 0; i < kLosslessSlots; ++i) {
    readers.push_back(NewReader());
    ASSERT_TRUE(readers.back()->EnableLossless().ok());
  }
  EXPECT_EQ(reader_->EnableLossless().code(), absl::StatusCode::kResourceExhausted);
  readers.pop_back();  // gives its slot back
  EXPECT_TRUE(reader_->EnableLossless().ok());
}

// batch_wakes: Commit() makes records visible at once but only Flush() wakes sleepers
// and updates the header's counters. A reader that sleeps between batches (a 3 s
// timeout) must be woken by every Flush(): each batch is read within a second.
TEST(RingBatchWakesTest, FlushWakesASleepingReaderAfterEveryBatch) {
  ScopedRingName name;
  absl::StatusOr<std::unique_ptr<Producer>> p =
      Producer::Create(name.RingPath(), {.capacity = kCapacity, .epoch = 7, .batch_wakes = true});
  ASSERT_TRUE(p.ok()) << p.status();
  Producer& producer = **p;
  absl::StatusOr<std::unique_ptr<RingReader>> r = RingReader::Open(name.RingPath());
  ASSERT_TRUE(r.ok()) << r.status();
  RingReader& reader = **r;
  constexpr uint64_t kBatches = 300, kPerBatch = 20;
  std::atomic<uint64_t> read{0};
  std::atomic<bool> stop{false};
  std::thread consumer([&] {
    RecordView view;
    while (read.load() < kBatches * kPerBatch && !stop.load()) {
      if (reader.Poll(&view)) {
        read.fetch_add(1);
      } else {
        reader.Wait(absl::Seconds(3));
      }
    }
  });
  std::vector<uint8_t> payload(16);
  for (uint64_t batch = 0; batch < kBatches; ++batch) {
    for (uint64_t k = 1; k <= kPerBatch; ++k) {
      ASSERT_TRUE(
          producer.Write({.stream_id = 1, .sequence = batch * kPerBatch + k}, payload).ok());
    }
    EXPECT_EQ(producer.header().records, batch * kPerBatch) << "counted before the flush";
    producer.Flush();
    EXPECT_EQ(producer.header().records, (batch + 1) * kPerBatch);
    EXPECT_EQ(producer.header().bytes, (batch + 1) * kPerBatch * payload.size());
    // The reader catches up (and most often falls asleep) before the next batch.
    const absl::Time deadline = absl::Now() + absl::Seconds(1);
    while (read.load() < (batch + 1) * kPerBatch && absl::Now() < deadline) {
      std::this_thread::yield();
    }
    if (read.load() < (batch + 1) * kPerBatch) {
      ADD_FAILURE() << "batch " << batch << " not read within 1 s: a wake-up was lost";
      break;
    }
  }
  stop.store(true);
  producer.Close();  // wakes the reader if it sleeps
  consumer.join();
  EXPECT_EQ(read.load(), kBatches * kPerBatch);
}

TEST_F(RingTest, ConcurrentProducerAndLossyReaderNeverSeeTornFrames) {
  constexpr uint64_t kFrames = 20000;
  std::atomic<bool> done{false};
  std::thread writer([&] {
    std::vector<uint8_t> payload(4000);
    for (uint64_t seq = 1; seq <= kFrames; ++seq) {
      RecordMeta meta{.stream_id = 1, .sequence = seq};
      size_t size = seq * 7919 % payload.size();
      FillPayload(1, seq, std::span(payload).first(size));
      (void)producer_->Write(meta, std::span<const uint8_t>(payload).first(size));
    }
    done = true;
  });
  std::vector<uint8_t> copy(kCapacity);
  RecordView view;
  uint64_t last = 0, delivered = 0, gaps = 0;
  for (;;) {
    bool finished = done.load();
    if (!reader_->Poll(&view)) {
      if (finished) break;
      reader_->Wait(absl::Milliseconds(1));
      continue;
    }
    if (!reader_->CopyPayload(view, copy)) continue;  // overwritten while copying
    ASSERT_GT(view.header.sequence, last);
    if (view.header.sequence != last + 1) ++gaps;
    ASSERT_TRUE(CheckPayload(1, view.header.sequence, std::span(copy).first(view.payload.size())));
    last = view.header.sequence;
    ++delivered;
  }
  writer.join();
  EXPECT_GT(delivered, 0u);
  EXPECT_EQ(reader_->corrupt(), 0u);
}

}  // namespace
}  // namespace uringest::ringbuf
