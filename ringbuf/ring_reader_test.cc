// The ring reader over a corrupted ring: positions and lengths in shared memory that no
// correct producer writes, as a buggy or hostile process with write access could leave
// them. The reader must neither spin nor read outside the ring. Cases found by
// fuzz/ring_reader_fuzz.cc. Each runs in a child process (a death test) so that a
// reader that spins (stopped by alarm()) or reads past the mapping fails the test
// without stopping the others.

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <limits>
#include <memory>

#include "gtest/gtest.h"
#include "ringbuf/internal/test_util.h"
#include "ringbuf/producer.h"
#include "ringbuf/ring_reader.h"
#include "ringbuf/shm.h"

namespace uringest::ringbuf {
namespace {

using testing::ScopedRingName;

constexpr uint64_t kCapacity = kMinRingCapacity;
constexpr unsigned kAlarmSeconds = 5;

class CorruptRingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Producer>> p =
        Producer::Create(name_.RingPath(), {.capacity = kCapacity, .epoch = 1});
    ASSERT_TRUE(p.ok()) << p.status();
    producer_ = *std::move(p);
    absl::StatusOr<std::unique_ptr<RingReader>> r = RingReader::Open(name_.RingPath());
    ASSERT_TRUE(r.ok()) << r.status();
    reader_ = *std::move(r);
    absl::StatusOr<ShmRegion> region = ShmRegion::Open(name_.RingPath(), true, false);
    ASSERT_TRUE(region.ok()) << region.status();
    scribble_ = *std::move(region);
  }

  void Write(size_t payload_length) {
    std::vector<uint8_t> payload(payload_length, 0xAB);
    ASSERT_TRUE(producer_->Write(RecordMeta{.stream_id = 1}, payload).ok());
  }

  // The ring header as another process could write it.
  RingHeader& header() { return *reinterpret_cast<RingHeader*>(scribble_.data()); }
  uint8_t* data() { return scribble_.data() + kRingHeaderSize; }

  // Reopens the reader with an inaccessible page right after its mapping, so that a read
  // past the ring's end crashes rather than reading whatever lies there: reserves the
  // ring's size plus a page, frees all but the last page, and maps the ring into the hole
  // (the kernel places a mapping in the highest hole it fits, which is this one).
  void GuardReaderMapping() {
    const size_t ring = kRingHeaderSize + kCapacity;
    auto* hole = static_cast<uint8_t*>(
        mmap(nullptr, ring + getpagesize(), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    ASSERT_NE(hole, MAP_FAILED);
    guard_ = hole + ring;
    munmap(hole, ring);
    absl::StatusOr<std::unique_ptr<RingReader>> r = RingReader::Open(name_.RingPath());
    ASSERT_TRUE(r.ok()) << r.status();
    reader_ = *std::move(r);
    const auto* end =
        reinterpret_cast<const uint8_t*>(&reader_->header()) + kRingHeaderSize + kCapacity;
    ASSERT_EQ(end, guard_) << "the reader's mapping does not end at the guard page";
  }

  void TearDown() override {
    reader_.reset();
    if (guard_ != MAP_FAILED) munmap(guard_, getpagesize());
  }

  // Polls until the reader has nothing, in a child; the child exits 0 if it got there.
  void ExpectPollReturns() {
    EXPECT_EXIT(
        {
          alarm(kAlarmSeconds);
          RecordView view;
          for (int i = 0; i < 1000 && reader_->Poll(&view); ++i) {
          }
          _exit(0);
        },
        ::testing::ExitedWithCode(0), "");
  }

  ScopedRingName name_;
  std::unique_ptr<Producer> producer_;
  std::unique_ptr<RingReader> reader_;
  ShmRegion scribble_;
  void* guard_ = MAP_FAILED;
};

// tail_intent + capacity wraps past 2^64: every position looked overwritten, and the
// reader resynced to the same oldest position for ever.
TEST_F(CorruptRingTest, PositionsNearTwoToTheSixtyFourDoNotSpin) {
  Write(100);
  header().tail = header().tail_intent = std::numeric_limits<uint64_t>::max() - 5;
  ExpectPollReturns();
}

TEST_F(CorruptRingTest, IntentJustBelowTheWrapDoesNotSpin) {
  Write(100);
  header().tail = std::numeric_limits<uint64_t>::max();
  header().tail_intent = std::numeric_limits<uint64_t>::max() - kCapacity / 2;
  ExpectPollReturns();
}

// A tail that is not a record boundary, 8 bytes before the end of the ring: a reader
// resynced there must not copy a 16-byte padding header across the end.
TEST_F(CorruptRingTest, UnalignedTailAtTheEndOfTheRingIsNotReadPast) {
  Write(100);
  GuardReaderMapping();
  header().tail = kCapacity - 8;
  data()[0] ^= 0xFF;  // the first record's position: corrupt, so the reader resyncs to tail
  RecordView view;
  EXPECT_FALSE(reader_->Poll(&view));
  EXPECT_EQ(reader_->corrupt(), 1u);
  header().tail = kCapacity + 4096;
  ExpectPollReturns();
}

TEST_F(CorruptRingTest, SeekToAnUnalignedPositionIsCorruptNotACrash) {
  Write(100);
  GuardReaderMapping();
  reader_->Seek(kCapacity - 1);
  header().tail = kCapacity + 4096;
  ExpectPollReturns();
}

TEST_F(CorruptRingTest, HeaderAtNearTheWrapIsFalse) {
  Write(100);
  header().tail_intent = std::numeric_limits<uint64_t>::max() - 5;
  RecordHeader h;
  EXPECT_FALSE(reader_->HeaderAt(0, &h));
  EXPECT_FALSE(reader_->HeaderAt(kCapacity - 8, &h));
}

}  // namespace
}  // namespace uringest::ringbuf
