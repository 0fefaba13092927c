// stream_follower.h: picks one stream's records out of a shard's ring, in order, and
// keeps exact books on what it lost. After any loss (the producer lapped the reader, or
// a frame was overwritten while in use) it resumes at the stream's next video keyframe;
// audio, data and video records that hold no picture (sequence headers, command frames,
// Enhanced RTMP Metadata and SequenceEnd packets) resume at once.
//
// Two counts, from the per-stream sequence numbers: `lost()` is the frames it never got
// to see (overwritten before it read them, or while it used them), and `skipped()` the
// pictures it saw and passed over while waiting for a keyframe, after a loss or at the
// start. Their sum after the first record is the gaps in what it delivered. Only a loss
// is a loss: a follower that starts mid-GOP skips without losing anything.
//
//   StreamFollower follower(ring.get(), info.stream_id);
//   RecordView view;
//   uint64_t lost_before;
//   while (follower.Poll(&view, &lost_before)) Consume(view);
//
// Thread safety: used by one thread, like the RingReader it borrows.

#ifndef URINGEST_RINGBUF_STREAM_FOLLOWER_H_
#define URINGEST_RINGBUF_STREAM_FOLLOWER_H_

#include <cstdint>

#include "ringbuf/ring_reader.h"

namespace uringest::ringbuf {

class StreamFollower {
 public:
  // Borrows `ring`, which must outlive the follower. If `await_keyframe`, video starts
  // at the first keyframe.
  StreamFollower(RingReader* ring, uint32_t stream_id, bool await_keyframe);

  // The next record of the stream; false if none is committed yet. *lost_before is the
  // number of the stream's frames lost (not skipped) since the record delivered before.
  bool Poll(RecordView* view, uint64_t* lost_before);
  // The stream's record with this sequence number is the first wanted: records before it
  // are skipped, and a gap after it (the producer lapped the reader before its first
  // Poll) counts as lost. Without it, counting starts at the first record delivered.
  void ExpectFirst(uint64_t sequence);
  // Checks a delivered view after use (RingReader::Validate); an overwritten one counts
  // as lost and starts a resync.
  bool Validate(const RecordView& view);

  uint32_t stream_id() const { return stream_id_; }
  uint64_t lost() const { return lost_; }
  uint64_t skipped() const { return skipped_; }
  uint64_t last_sequence() const { return last_sequence_; }
  bool ended() const { return ended_; }
  bool awaiting_keyframe() const { return await_keyframe_; }

 private:
  bool Wanted(const RecordView& view);

  RingReader* ring_;
  uint32_t stream_id_;
  bool await_keyframe_;
  bool ended_ = false;
  uint64_t last_sequence_ = 0;  // of the last record seen (or ExpectFirst()'s - 1)
  bool counting_ = false;       // last_sequence_ is known: gaps count as lost
  uint64_t lost_ = 0;
  uint64_t lost_unreported_ = 0;  // lost since the last delivered record
  uint64_t skipped_ = 0;
  uint64_t invalid_position_ = ~uint64_t{0};  // the last view that failed Validate()
};

}  // namespace uringest::ringbuf

#endif  // URINGEST_RINGBUF_STREAM_FOLLOWER_H_
