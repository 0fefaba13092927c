#include "ringbuf/producer.h"

#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <bit>
#include <cassert>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "ringbuf/clock.h"
#include "ringbuf/internal/futex.h"
#include "ringbuf/internal/shared_access.h"

namespace uringest::ringbuf {

using internal::LoadAcquire;
using internal::LoadRelaxed;
using internal::Shared;
using internal::StoreRelaxed;
using internal::StoreRelease;

namespace {

// A header's bytes after `position`, which is stored last, with release: the record is
// published by it.
constexpr size_t kAfterPosition = offsetof(RecordHeader, record_length);
static_assert(kAfterPosition == sizeof(RecordHeader::position));

absl::Status CheckOptions(const RingOptions& options, size_t region_size) {
  uint64_t c = options.capacity;
  if (!std::has_single_bit(c) || c < kMinRingCapacity || c > kMaxRingCapacity) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ring capacity ", c, " must be a power of two in [", kMinRingCapacity, ", 2^40]"));
  }
  if (region_size < kRingHeaderSize + c) {
    return absl::InvalidArgumentError("ring region smaller than header + capacity");
  }
  if (options.epoch == 0) return absl::InvalidArgumentError("epoch 0 is reserved");
  return absl::OkStatus();
}

bool ProcessAlive(int32_t pid) { return pid <= 0 || kill(pid, 0) == 0 || errno == EPERM; }

}  // namespace

absl::StatusOr<std::unique_ptr<Producer>> Producer::Create(const std::string& path,
                                                           const RingOptions& options,
                                                           const ShmCreateOptions& shm) {
  absl::StatusOr<ShmRegion> region =
      ShmRegion::Create(path, kRingHeaderSize + options.capacity, shm);
  if (!region.ok()) return region.status();
  return Format(*std::move(region), options);
}

absl::StatusOr<std::unique_ptr<Producer>> Producer::Format(ShmRegion region,
                                                           const RingOptions& options) {
  if (absl::Status s = CheckOptions(options, region.size()); !s.ok()) return s;
  return std::unique_ptr<Producer>(new Producer(std::move(region), options));
}

Producer::Producer(ShmRegion region, const RingOptions& options)
    : region_(std::move(region)),
      header_(reinterpret_cast<RingHeader*>(region_.data())),
      data_(region_.data() + kRingHeaderSize),
      capacity_(options.capacity),
      mask_(options.capacity - 1),
      max_record_length_(
          static_cast<uint32_t>(std::min<uint64_t>(options.capacity / 4, uint64_t{1} << 31))),
      lossless_timeout_(options.lossless_timeout),
      batch_wakes_(options.batch_wakes) {
  RingHeader& h = *header_;
  h.magic = kRingMagic;
  h.version = kFormatVersion;
  h.header_size = kRingHeaderSize;
  h.capacity = capacity_;
  h.epoch = options.epoch;
  h.shard = options.shard;
  h.max_record_length = max_record_length_;
  h.lossless_slots = kLosslessSlots;
  h.producer_pid = getpid();
  StoreRelaxed(h.heartbeat_ns, MonotonicNs());
  StoreRelease(h.state, static_cast<uint32_t>(RingState::kLive));
}

Producer::~Producer() { Close(); }

absl::StatusOr<std::span<uint8_t>> Producer::Reserve(const RecordMeta& meta,
                                                     size_t payload_length) {
  assert(!pending_);
  if (payload_length > max_payload_length()) {
    return absl::OutOfRangeError(absl::StrCat("record payload of ", payload_length,
                                              " bytes exceeds ", max_payload_length()));
  }
  auto length = static_cast<uint32_t>(AlignRecord(kRecordHeaderSize + payload_length));
  uint64_t to_end = capacity_ - (tail_ & mask_);
  uint64_t position = tail_ + (length > to_end ? to_end : 0);
  uint64_t end = position + length;
  WaitForLossless(end);
  // Seqlock-style: announce the overwrite before touching the bytes, so that a reader
  // whose copy saw any of the new bytes also sees the new tail_intent when validating.
  StoreRelaxed(header_->tail_intent, end);
  internal::ReleaseFence();
  if (position != tail_) WritePadding(tail_, static_cast<uint32_t>(position - tail_));
  pending_header_ = ToRecordHeader(meta);
  pending_header_.position = position;
  pending_header_.record_length = length;
  pending_header_.payload_length = static_cast<uint32_t>(payload_length);
  // Everything but `position`, which Commit() stores last.
  uint8_t* record = RecordAt(position);
  internal::CopyToShared(record + kAfterPosition,
                         reinterpret_cast<const uint8_t*>(&pending_header_) + kAfterPosition,
                         kRecordHeaderSize - kAfterPosition);
  pending_ = true;
  pending_position_ = position;
  pending_end_ = end;
  return std::span<uint8_t>(record + kRecordHeaderSize, payload_length);
}

void Producer::WritePadding(uint64_t position, uint32_t length) {
  RecordHeader padding{};
  padding.record_length = length;
  padding.type = static_cast<uint8_t>(RecordType::kPadding);
  uint8_t* record = RecordAt(position);
  internal::CopyToShared(record + kAfterPosition,
                         reinterpret_cast<const uint8_t*>(&padding) + kAfterPosition,
                         kPaddingHeaderSize - kAfterPosition);
  StoreRelease(*reinterpret_cast<uint64_t*>(record), position);
}

uint64_t Producer::Commit() {
  assert(pending_);
  uint64_t position = pending_position_;
  StoreRelease(*reinterpret_cast<uint64_t*>(RecordAt(position)), position);
  const bool record = pending_header_.type != static_cast<uint8_t>(RecordType::kPadding);
  tail_ = pending_end_;
  pending_ = false;
  if (batch_wakes_) {
    if (record) {
      ++unflushed_records_;
      unflushed_bytes_ += pending_header_.payload_length;
      unflushed_latest_ = position;
    }
    // Visible at once; Flush() does the other half of the Dekker pair below.
    StoreRelease(header_->tail, tail_);
    return position;
  }
  if (record) {
    StoreRelaxed(header_->latest_record, position);
    internal::AddRelaxed(header_->records, uint64_t{1});
    internal::AddRelaxed(header_->bytes, uint64_t{pending_header_.payload_length});
  }
  // seq_cst pairs with the readers' seq_cst increment of `waiters` (a Dekker pair):
  // either we see their flag and wake them, or they see our tail and don't sleep.
  Shared(header_->tail).store(tail_, std::memory_order_seq_cst);
  WakeReaders();
  return position;
}

void Producer::Flush() {
  if (!batch_wakes_ || tail_ == flushed_tail_) return;
  flushed_tail_ = tail_;
  if (unflushed_records_ > 0) {
    StoreRelaxed(header_->latest_record, unflushed_latest_);
    internal::AddRelaxed(header_->records, unflushed_records_);
    internal::AddRelaxed(header_->bytes, unflushed_bytes_);
    unflushed_records_ = unflushed_bytes_ = 0;
  }
  // The batch's tail, stored again seq_cst, then the look at `waiters`: the producer's
  // half of the Dekker pair with RingReader::Wait(), once per batch.
  Shared(header_->tail).store(tail_, std::memory_order_seq_cst);
  WakeReaders();
}

void Producer::Abort() {
  assert(pending_);
  pending_header_.type = static_cast<uint8_t>(RecordType::kPadding);
  internal::CopyToShared(RecordAt(pending_position_) + offsetof(RecordHeader, type),
                         &pending_header_.type, 1);
  Commit();
}

absl::StatusOr<uint64_t> Producer::Write(const RecordMeta& meta,
                                         std::span<const std::span<const uint8_t>> pieces) {
  size_t total = 0;
  for (std::span<const uint8_t> piece : pieces) total += piece.size();
  absl::StatusOr<std::span<uint8_t>> room = Reserve(meta, total);
  if (!room.ok()) return room.status();
  uint8_t* out = room->data();
  for (std::span<const uint8_t> piece : pieces) {
    internal::StreamToShared(out, piece.data(), piece.size());
    out += piece.size();
  }
  internal::StreamFence();  // before Commit() publishes them
  return Commit();
}

absl::StatusOr<uint64_t> Producer::Write(const RecordMeta& meta, std::span<const uint8_t> payload) {
  return Write(meta, std::span<const std::span<const uint8_t>>(&payload, 1));
}

void Producer::Heartbeat() { StoreRelease(header_->heartbeat_ns, MonotonicNs()); }

void Producer::Close() {
  Flush();
  StoreRelease(header_->state, static_cast<uint32_t>(RingState::kClosed));
  Shared(header_->futex_word).fetch_add(1, std::memory_order_seq_cst);
  internal::FutexWakeAll(&header_->futex_word);
}

std::span<const uint8_t> Producer::PayloadAt(uint64_t position) const {
  const auto* h = reinterpret_cast<const RecordHeader*>(RecordAt(position));
  return {RecordAt(position) + kRecordHeaderSize, h->payload_length};
}

void Producer::WakeReaders() {
  if (Shared(header_->waiters).load(std::memory_order_seq_cst) == 0) return;
  Shared(header_->futex_word).fetch_add(1, std::memory_order_release);
  internal::FutexWakeAll(&header_->futex_word);
}

bool Producer::LosslessBlocks(uint32_t slot, uint64_t new_intent) const {
  const LosslessSlot& s = header_->lossless[slot];
  if (LoadAcquire(s.state) != static_cast<uint32_t>(LosslessState::kActive)) return false;
  return new_intent > LoadAcquire(s.position) + capacity_;
}

void Producer::EvictLossless(uint32_t slot) {
  LosslessSlot& s = header_->lossless[slot];
  auto expected = static_cast<uint32_t>(LosslessState::kActive);
  if (Shared(s.state).compare_exchange_strong(expected,
                                              static_cast<uint32_t>(LosslessState::kEvicted))) {
    Shared(header_->lossless_mask).fetch_and(~(uint64_t{1} << slot));
    internal::AddRelaxed(s.evictions, uint64_t{1});
    internal::AddRelaxed(header_->lossless_evictions, uint64_t{1});
  }
}

// Waits until no active lossless reader still needs the bytes below new_intent -
// capacity, evicting readers that are dead or that don't catch up within the timeout.
void Producer::WaitForLossless(uint64_t new_intent) {
  uint64_t mask = LoadAcquire(header_->lossless_mask);
  if (mask == 0) return;
  uint64_t deadline = 0;
  for (; mask != 0; mask &= mask - 1) {
    auto slot = static_cast<uint32_t>(std::countr_zero(mask));
    for (int spins = 0; LosslessBlocks(slot, new_intent); ++spins) {
      uint64_t now = MonotonicNs();
      if (deadline == 0) {
        deadline = now + static_cast<uint64_t>(absl::ToInt64Nanoseconds(lossless_timeout_));
        internal::AddRelaxed(header_->lossless_waits, uint64_t{1});
      }
      if (now >= deadline || !ProcessAlive(LoadRelaxed(header_->lossless[slot].pid))) {
        EvictLossless(slot);
        break;
      }
      if (spins < 64) {
        sched_yield();
      } else {
        usleep(50);
      }
    }
  }
}

}  // namespace uringest::ringbuf
