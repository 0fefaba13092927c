#include "ringbuf/ring_reader.h"

#include <unistd.h>

#include <bit>
#include <utility>

#include "absl/strings/str_cat.h"
#include "ringbuf/clock.h"
#include "ringbuf/internal/futex.h"
#include "ringbuf/internal/shared_access.h"

namespace uringest::ringbuf {

using internal::LoadAcquire;
using internal::LoadRelaxed;
using internal::Shared;
using internal::StoreRelease;

absl::Status CheckRingHeader(const ShmRegion& region) {
  if (region.size() < kRingHeaderSize) return absl::DataLossError("ring object too small");
  const auto& h = *reinterpret_cast<const RingHeader*>(region.data());
  if (LoadAcquire(h.state) == static_cast<uint32_t>(RingState::kInitializing)) {
    return absl::UnavailableError("ring is still being created");
  }
  if (h.magic != kRingMagic) return absl::DataLossError("not a uringest ring (bad magic)");
  if (h.version != kFormatVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat("ring format version ", h.version, ", this reader knows ", kFormatVersion));
  }
  if (!std::has_single_bit(h.capacity) || h.header_size != kRingHeaderSize ||
      region.size() < h.header_size + h.capacity) {
    return absl::DataLossError("ring header sizes don't match the object");
  }
  return absl::OkStatus();
}

absl::StatusOr<ShmRegion> MapRingForReading(const std::string& path, bool prefault) {
  const std::string readers = path + kReadersSuffix;
  const bool has_readers = access(readers.c_str(), F_OK) == 0;
  absl::StatusOr<ShmRegion> region = ShmRegion::Open(path, /*writable=*/!has_readers, prefault);
  if (!region.ok() || !has_readers) return region;
  if (region->size() < kRingHeaderSize) return absl::DataLossError("ring object too small");
  if (absl::Status s = region->Overlay(kRingReadersOffset, readers, /*writable=*/true); !s.ok()) {
    return s;
  }
  return region;
}

absl::StatusOr<std::unique_ptr<RingReader>> RingReader::Open(const std::string& path) {
  absl::StatusOr<ShmRegion> region = MapRingForReading(path, /*prefault=*/true);
  if (!region.ok()) return region.status();
  return Attach(*std::move(region));
}

absl::StatusOr<std::unique_ptr<RingReader>> RingReader::Attach(ShmRegion region) {
  if (absl::Status s = CheckRingHeader(region); !s.ok()) return s;
  auto reader = std::unique_ptr<RingReader>(new RingReader(std::move(region)));
  reader->SeekToOldest();
  return reader;
}

RingReader::RingReader(ShmRegion region)
    : region_(std::move(region)),
      header_(reinterpret_cast<RingHeader*>(region_.data())),
      data_(region_.data() + header_->header_size),
      capacity_(header_->capacity),
      mask_(header_->capacity - 1) {}

RingReader::~RingReader() { DisableLossless(); }

uint64_t RingReader::Tail() const { return LoadAcquire(header_->tail); }

uint64_t RingReader::Oldest() const {
  uint64_t intent = LoadAcquire(header_->tail_intent);
  if (intent <= capacity_) return 0;
  // Every multiple of the capacity starts a record (records never wrap), so the first
  // one that is not being overwritten is a safe place to start.
  return (intent - capacity_ + mask_) & ~mask_;
}

// Whether the bytes at `position` are out of reach of a producer that may be writing up
// to `intent`: intent <= position + capacity, written so that it can't overflow (a corrupt
// ring can hold positions near 2^64, where the sum wraps and every record would look
// overwritten, so that Poll() resynced to the same place for ever).
bool RingReader::Intact(uint64_t intent, uint64_t position) const {
  return intent <= position || intent - position <= capacity_;
}

bool RingReader::Readable(uint64_t position) const {
  return Intact(LoadAcquire(header_->tail_intent), position);
}

bool RingReader::HeaderAt(uint64_t position, RecordHeader* header) const {
  if ((position & mask_) + kRecordHeaderSize > capacity_ || !Readable(position)) return false;
  internal::CopyFromShared(header, RecordAt(position), kRecordHeaderSize);
  return header->position == position && Readable(position);
}

RingState RingReader::state() const { return static_cast<RingState>(LoadAcquire(header_->state)); }

int64_t RingReader::HeartbeatAgeNs() const {
  return static_cast<int64_t>(MonotonicNs() - LoadAcquire(header_->heartbeat_ns));
}

uint64_t RingReader::Lag() const {
  uint64_t tail = Tail();
  return tail > cursor_ ? tail - cursor_ : 0;
}

// Copies the header at the cursor (only the padding part when it is padding).
bool RingReader::ReadHeader(RecordHeader* h) const {
  // A cursor off the record grid (a corrupt tail, a Seek to a non-boundary) is corruption.
  // Checked before the copy: an aligned cursor always has a padding header's 16 bytes
  // before the end of the ring, an unaligned one may not.
  if (cursor_ % kRecordAlignment != 0) return false;
  const uint8_t* record = RecordAt(cursor_);
  internal::CopyFromShared(h, record, kPaddingHeaderSize);
  if (h->type != static_cast<uint8_t>(RecordType::kPadding)) {
    if ((cursor_ & mask_) + kRecordHeaderSize > capacity_) return false;
    internal::CopyFromShared(reinterpret_cast<uint8_t*>(h) + kPaddingHeaderSize,
                             record + kPaddingHeaderSize, kRecordHeaderSize - kPaddingHeaderSize);
  }
  return true;
}

bool RingReader::SaneHeader(const RecordHeader& h) const {
  uint64_t offset = cursor_ & mask_;
  if (h.position != cursor_ || h.record_length % kRecordAlignment != 0 ||
      h.record_length < kRecordAlignment || offset + h.record_length > capacity_) {
    return false;
  }
  if (h.type == static_cast<uint8_t>(RecordType::kPadding)) return true;
  return h.record_length <= header_->max_record_length &&
         uint64_t{h.payload_length} + kRecordHeaderSize <= h.record_length;
}

void RingReader::Resync(uint64_t to) {
  if (to > cursor_) lost_bytes_ += to - cursor_;
  cursor_ = to;
  gap_pending_ = true;
}

bool RingReader::Poll(RecordView* view) {
  PublishLosslessPosition();
  for (;;) {
    if (cursor_ >= Tail()) return false;
    RecordHeader h;
    bool complete = ReadHeader(&h);
    internal::AcquireFence();
    if (!Readable(cursor_)) {  // overwritten before or while we read the header
      ++laps_;
      Resync(Oldest());
      continue;
    }
    if (!complete || !SaneHeader(h)) {  // can't happen with a correct producer
      ++corrupt_;
      Resync(Tail());
      continue;
    }
    uint64_t position = cursor_;
    cursor_ += h.record_length;
    if (h.type == static_cast<uint8_t>(RecordType::kPadding)) continue;
    view->header = h;
    view->payload = {RecordAt(position) + kRecordHeaderSize, h.payload_length};
    view->gap_before = std::exchange(gap_pending_, false);
    return true;
  }
}

bool RingReader::Validate(const RecordView& view) const {
  internal::AcquireFence();
  return Intact(LoadRelaxed(header_->tail_intent), view.position());
}

bool RingReader::CopyPayload(const RecordView& view, std::span<uint8_t> out) const {
  if (out.size() < view.payload.size()) return false;
  internal::CopyFromShared(out.data(), view.payload.data(), view.payload.size());
  return Validate(view);
}

void RingReader::Wait(absl::Duration timeout) {
  PublishLosslessPosition();
  if (cursor_ < Tail() || state() == RingState::kClosed) return;
  Shared(header_->waiters).fetch_add(1, std::memory_order_seq_cst);
  uint32_t word = LoadAcquire(header_->futex_word);
  // seq_cst pairs with the producer's store of `tail` (see Producer::Commit).
  if (Shared(header_->tail).load(std::memory_order_seq_cst) <= cursor_ &&
      state() != RingState::kClosed) {
    internal::FutexWait(&header_->futex_word, word, absl::ToInt64Nanoseconds(timeout));
  }
  Shared(header_->waiters).fetch_sub(1, std::memory_order_seq_cst);
}

absl::Status RingReader::EnableLossless() {
  if (slot_ >= 0) return absl::OkStatus();
  for (uint32_t i = 0; i < kLosslessSlots; ++i) {
    LosslessSlot& s = header_->lossless[i];
    auto expected = static_cast<uint32_t>(LosslessState::kFree);
    if (!Shared(s.state).compare_exchange_strong(expected,
                                                 static_cast<uint32_t>(LosslessState::kActive))) {
      continue;
    }
    // The producer looks only at slots in the mask, so fill the slot in first.
    StoreRelease(s.pid, static_cast<int32_t>(getpid()));
    StoreRelease(s.position, cursor_);
    Shared(header_->lossless_mask).fetch_or(uint64_t{1} << i, std::memory_order_seq_cst);
    slot_ = static_cast<int32_t>(i);
    return absl::OkStatus();
  }
  return absl::ResourceExhaustedError("all lossless reader slots are taken");
}

void RingReader::DisableLossless() {
  if (slot_ < 0) return;
  Shared(header_->lossless_mask).fetch_and(~(uint64_t{1} << slot_));
  StoreRelease(header_->lossless[slot_].state, static_cast<uint32_t>(LosslessState::kFree));
  slot_ = -1;
}

bool RingReader::CheckEviction() {
  if (slot_ < 0) return false;
  LosslessSlot& s = header_->lossless[slot_];
  if (LoadAcquire(s.state) != static_cast<uint32_t>(LosslessState::kEvicted)) return false;
  ++evictions_;
  StoreRelease(s.state, static_cast<uint32_t>(LosslessState::kFree));
  slot_ = -1;
  return true;
}

void RingReader::PublishLosslessPosition() {
  if (slot_ < 0 || CheckEviction()) return;
  StoreRelease(header_->lossless[slot_].position, cursor_);
}

}  // namespace uringest::ringbuf
