#include "ringbuf/stream_follower.h"

namespace uringest::ringbuf {

StreamFollower::StreamFollower(RingReader* ring, uint32_t stream_id, bool await_keyframe)
    : ring_(ring), stream_id_(stream_id), await_keyframe_(await_keyframe) {}

// Decides whether a record of our stream is delivered or skipped while resyncing.
bool StreamFollower::Wanted(const RecordView& view) {
  if (!await_keyframe_ || view.type() != RecordType::kVideo) return true;
  if (!StandsAlone(view.header.flags, view.header.packet_type)) return false;
  // Only a picture ends the wait.
  if ((view.header.flags & kFlagKeyframe) != 0 && (view.header.flags & kFlagSequenceHeader) == 0) {
    await_keyframe_ = false;
  }
  return true;
}

bool StreamFollower::Poll(RecordView* view, uint64_t* lost_before) {
  while (ring_->Poll(view)) {
    if (view->gap_before) await_keyframe_ = true;
    const uint64_t sequence = view->header.sequence;
    if (view->header.stream_id != stream_id_ || sequence <= last_sequence_) continue;
    // Records between the last one seen and this one were overwritten unseen.
    const uint64_t gap = counting_ ? sequence - last_sequence_ - 1 : 0;
    counting_ = true;
    last_sequence_ = sequence;
    lost_ += gap;
    lost_unreported_ += gap;
    if (!Wanted(*view)) {
      ++skipped_;
      continue;
    }
    *lost_before = lost_unreported_;
    lost_unreported_ = 0;
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
