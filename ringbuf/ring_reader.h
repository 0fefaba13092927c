// ring_reader.h: reads every record of one frame ring, from any process, without the
// producer's cooperation. A reader that the producer laps finds out from the positions,
// counts the bytes it lost, and continues at the oldest record still in the ring.
//
//   absl::StatusOr<std::unique_ptr<RingReader>> reader =
//       RingReader::Open("/dev/shm/live.ring.0");
//   (*reader)->SeekToTail();
//   RecordView view;
//   while (running) {
//     if (!(*reader)->Poll(&view)) { (*reader)->Wait(absl::Milliseconds(100)); continue; }
//     Consume(view.payload);
//     if (!(*reader)->Validate(view)) Discard();  // overwritten while we read it
//   }
//
// Thread safety: a RingReader is used by one thread. Any number of RingReaders, in any
// processes, may read one ring.

#ifndef URINGEST_RINGBUF_RING_READER_H_
#define URINGEST_RINGBUF_RING_READER_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ringbuf/ring_format.h"
#include "ringbuf/shm.h"

namespace uringest::ringbuf {

// One record as Poll() found it. `header` is a copy; `payload` points into the ring and
// may be overwritten at any time: check it with Validate() after use.
struct RecordView {
  RecordHeader header{};
  std::span<const uint8_t> payload;
  // True for the first record after the reader was lapped (bytes were lost before it).
  bool gap_before = false;

  uint64_t position() const { return header.position; }
  RecordType type() const { return static_cast<RecordType>(header.type); }
};

class RingReader {
 public:
  // Maps the ring at `path` as MapRingForReading() does: read-only, but for its readers
  // page (readers write only the waiter count and their lossless slot).
  static absl::StatusOr<std::unique_ptr<RingReader>> Open(const std::string& path);
  static absl::StatusOr<std::unique_ptr<RingReader>> Attach(ShmRegion region);

  RingReader(const RingReader&) = delete;
  RingReader& operator=(const RingReader&) = delete;
  ~RingReader();  // gives back a lossless slot

  // ---- Position ----
  // The next record to read. Starts at Oldest().
  uint64_t cursor() const { return cursor_; }
  // Continues at `position`, which must be a record boundary that the producer handed
  // out (a keyframe position from the directory, a RecordView's position, Tail()).
  void Seek(uint64_t position) { cursor_ = position; }
  void SeekToTail() { cursor_ = Tail(); }
  void SeekToOldest() { cursor_ = Oldest(); }
  uint64_t Tail() const;    // end of the committed records
  uint64_t Oldest() const;  // the oldest record boundary still in the ring
  // True if the record at `position` has not been overwritten (yet).
  bool Readable(uint64_t position) const;
  // Copies the header of the record at `position` (a record boundary the producer handed
  // out); false if it was overwritten before or while it was copied.
  bool HeaderAt(uint64_t position, RecordHeader* header) const;

  // ---- Reading ----
  // Fills *view with the record at the cursor and moves past it; false when there is
  // none yet. Skips padding. If the producer lapped the cursor, continues at Oldest()
  // and sets view->gap_before. The previous view's payload is released: a lossless
  // reader lets the producer overwrite it from now on.
  bool Poll(RecordView* view);
  // True if `view`'s bytes were intact while the caller read them; call it after use.
  bool Validate(const RecordView& view) const;
  // Copies view's payload to `out` (at least payload.size() bytes) and validates it.
  bool CopyPayload(const RecordView& view, std::span<uint8_t> out) const;
  // Sleeps until a record past the cursor is committed, the ring closes, or `timeout`
  // passes (futex; no spinning). May return early.
  void Wait(absl::Duration timeout);

  // ---- Lossless mode ----
  // Asks the producer not to overwrite what this reader has not read, for at most its
  // lossless timeout per write. Fails if all kLosslessSlots are taken.
  absl::Status EnableLossless();
  void DisableLossless();
  bool lossless() const { return slot_ >= 0; }
  // Notices an eviction now rather than at the next Poll(); true if evicted.
  bool CheckEviction();
  // Times the producer evicted this reader to lossy mode (each also disables lossless).
  uint64_t evictions() const { return evictions_; }

  // ---- Producer state and counters ----
  const RingHeader& header() const { return *header_; }
  uint64_t capacity() const { return capacity_; }
  uint64_t epoch() const { return header_->epoch; }
  RingState state() const;
  // Nanoseconds since the producer's last Heartbeat() (CLOCK_MONOTONIC).
  int64_t HeartbeatAgeNs() const;
  uint64_t Lag() const;                    // bytes between the cursor and the tail
  uint64_t laps() const { return laps_; }  // times the producer lapped this reader
  uint64_t lost_bytes() const { return lost_bytes_; }
  uint64_t corrupt() const { return corrupt_; }  // records that failed sanity checks

 private:
  explicit RingReader(ShmRegion region);

  const uint8_t* RecordAt(uint64_t position) const { return data_ + (position & mask_); }
  bool Intact(uint64_t intent, uint64_t position) const;
  bool ReadHeader(RecordHeader* header) const;
  bool SaneHeader(const RecordHeader& h) const;
  void Resync(uint64_t to);
  void PublishLosslessPosition();

  ShmRegion region_;
  RingHeader* header_;
  const uint8_t* data_;
  uint64_t capacity_;
  uint64_t mask_;
  uint64_t cursor_ = 0;
  bool gap_pending_ = false;
  int32_t slot_ = -1;  // lossless slot, -1 if lossy
  uint64_t evictions_ = 0;
  uint64_t laps_ = 0;
  uint64_t lost_bytes_ = 0;
  uint64_t corrupt_ = 0;
};

// Checks a mapped ring's header: magic, version, sizes.
absl::Status CheckRingHeader(const ShmRegion& region);

// Maps the ring object at `path` for a consumer (FORMAT.md, "Permissions"): read-only,
// with its readers object (path + kReadersSuffix) mapped read-write over the header's
// second page; a ring without a readers object (hugetlbfs) is mapped read-write.
absl::StatusOr<ShmRegion> MapRingForReading(const std::string& path, bool prefault);

}  // namespace uringest::ringbuf

#endif  // URINGEST_RINGBUF_RING_READER_H_
