#include "ringbuf/stream_follower.h"

namespace uringest::ringbuf {

StreamFollower::StreamFollower(RingReader* ring, uint32_t stream_id, bool await_keyframe)
    : ring_(ring), stream_id_(stream_id), await_keyframe_(await_keyframe) {}

// Decides whether a record of our stream is delivered or skipped while resyncing.
bool StreamFollower::Wanted(const RecordView& view) {
  if (view.header.sequence <= last_sequence_) return false;  // already delivered
  if (!await_keyframe_ || view.type() != RecordType::kVideo) return true;
  if ((view.header.flags & kFlagKeyframe) == 0) return false;
  // A sequence header is delivered but doesn't end the wait for a picture.
  if ((view.header.flags & kFlagSequenceHeader) == 0) await_keyframe_ = false;
  return true;
}

bool StreamFollower::Poll(RecordView* view, uint64_t* lost_before) {
  while (ring_->Poll(view)) {
    if (view->gap_before) await_keyframe_ = true;
    if (view->header.stream_id != stream_id_ || !Wanted(*view)) continue;
    const uint64_t gap = counting_ ? view->header.sequence - last_sequence_ - 1 : 0;
    counting_ = true;
    lost_ += gap;
    *lost_before = gap;
    last_sequence_ = view->header.sequence;
    if (view->type() == RecordType::kStreamEnd) ended_ = true;
    return true;
  }
  return false;
}

void StreamFollower::ExpectFirst(uint64_t sequence) {
  last_sequence_ = sequence - 1;
  counting_ = true;
}

bool StreamFollower::Validate(const RecordView& view) {
  if (ring_->Validate(view)) return true;
  if (view.position() != invalid_position_) {  // count each frame once
    invalid_position_ = view.position();
    ++lost_;  // the sequence gaps count everything else
  }
  await_keyframe_ = true;
  return false;
}

}  // namespace uringest::ringbuf
