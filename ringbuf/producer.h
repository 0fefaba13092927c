// producer.h: the single writer of one frame ring (one per shard). It appends records
// and never waits for a reader, except for lossless readers, and for those only up to
// a bounded time, after which they are evicted to lossy mode.
//
//   absl::StatusOr<std::unique_ptr<Producer>> producer = Producer::Create(
//       "/dev/shm/live.ring.0", {.capacity = 64 << 20, .shard = 0, .epoch = epoch});
//   RecordMeta meta{.type = RecordType::kVideo, .flags = kFlagKeyframe, .stream_id = 7,
//                   .sequence = 1, .dts = 40, .pts = 80, .ingest_time_ns = now};
//   absl::StatusOr<std::span<uint8_t>> room = (*producer)->Reserve(meta, size);
//   memcpy(room->data(), message, size);  // or assemble it from chunks in place
//   uint64_t position = (*producer)->Commit();
//
// Thread safety: one thread (the shard's) calls every method. Readers in any process
// read the ring concurrently (ring_reader.h). No method allocates after Create().

#ifndef URINGEST_RINGBUF_PRODUCER_H_
#define URINGEST_RINGBUF_PRODUCER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ringbuf/record_meta.h"
#include "ringbuf/ring_format.h"
#include "ringbuf/shm.h"

namespace uringest::ringbuf {

struct RingOptions {
  uint64_t capacity = 64 << 20;  // data bytes, a power of two
  uint32_t shard = 0;
  uint64_t epoch = 1;  // the server start this ring belongs to, never 0
  // How long Reserve() may wait for a lossless reader before evicting it.
  absl::Duration lossless_timeout = absl::Milliseconds(250);
  // Commit() makes each record visible at once but leaves waking sleeping readers, and
  // the header's latest_record / records / bytes, to Flush(): one look at the readers
  // per batch of records instead of one (and a futex wake) per record. The owner must
  // call Flush() after each batch, before it sleeps.
  bool batch_wakes = false;
};

class Producer {
 public:
  // Creates the ring object at `path` (in /dev/shm or on hugetlbfs) and formats it.
  static absl::StatusOr<std::unique_ptr<Producer>> Create(const std::string& path,
                                                          const RingOptions& options,
                                                          const ShmCreateOptions& shm = {});
  // Formats a zeroed region of kRingHeaderSize + options.capacity bytes.
  static absl::StatusOr<std::unique_ptr<Producer>> Format(ShmRegion region,
                                                          const RingOptions& options);

  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;
  // Marks the ring closed (Close()); the object stays until unlinked.
  ~Producer();

  // Reserves room for a record with a payload of `payload_length` bytes and returns it;
  // the caller fills all of it, then calls Commit() (or Abort()). Waits only for lossless
  // readers, at most the lossless timeout. Fails (and writes nothing) if the record is
  // larger than max_payload_length().
  // REQUIRES: no reservation pending.
  // The span is valid until Commit() or Abort().
  absl::StatusOr<std::span<uint8_t>> Reserve(const RecordMeta& meta, size_t payload_length);
  // Publishes the reserved record to readers and returns its ring position; wakes
  // readers sleeping in RingReader::Wait() (with batch_wakes: at the next Flush()).
  // REQUIRES: a reservation is pending.
  uint64_t Commit();
  // With batch_wakes: brings the header's counters up to date and wakes sleeping readers
  // if anything was committed since the last Flush(). Without: nothing to do.
  void Flush();
  // Turns the pending reservation into padding, which readers skip.
  void Abort();

  // Reserve + copy + Commit. `pieces` are concatenated into one payload.
  absl::StatusOr<uint64_t> Write(const RecordMeta& meta,
                                 std::span<const std::span<const uint8_t>> pieces);
  absl::StatusOr<uint64_t> Write(const RecordMeta& meta, std::span<const uint8_t> payload);

  // Stamps the liveness heartbeat. Call at least every ~100 ms, busy or idle.
  void Heartbeat();
  // Marks the ring closed (a clean shutdown) and wakes every sleeping reader.
  void Close();

  uint64_t capacity() const { return capacity_; }
  uint64_t tail() const { return tail_; }
  // Records committed since the ring was made, padding excluded (flushed or not).
  uint64_t records() const { return header_->records + unflushed_records_; }
  size_t max_payload_length() const { return max_record_length_ - kRecordHeaderSize; }
  const RingHeader& header() const { return *header_; }
  // The committed payload of the record at `position`, while still in the ring.
  std::span<const uint8_t> PayloadAt(uint64_t position) const;

 private:
  Producer(ShmRegion region, const RingOptions& options);

  uint8_t* RecordAt(uint64_t position) const { return data_ + (position & mask_); }
  void WritePadding(uint64_t position, uint32_t length);
  void WaitForLossless(uint64_t new_intent);
  bool LosslessBlocks(uint32_t slot, uint64_t new_intent) const;
  void EvictLossless(uint32_t slot);
  void WakeReaders();

  ShmRegion region_;
  RingHeader* header_;
  uint8_t* data_;
  uint64_t capacity_;
  uint64_t mask_;
  uint32_t max_record_length_;
  absl::Duration lossless_timeout_;
  uint64_t tail_ = 0;              // == header_->tail, kept here to avoid reading it back
  bool pending_ = false;           // a reservation is open
  uint64_t pending_position_ = 0;  // its record
  uint64_t pending_end_ = 0;       // tail after it
  RecordHeader pending_header_{};
  const bool batch_wakes_;
  // Committed since the last Flush() (batch_wakes): what the header doesn't count yet.
  uint64_t flushed_tail_ = 0;
  uint64_t unflushed_records_ = 0;
  uint64_t unflushed_bytes_ = 0;
  uint64_t unflushed_latest_ = 0;
};

}  // namespace uringest::ringbuf

#endif  // URINGEST_RINGBUF_PRODUCER_H_
