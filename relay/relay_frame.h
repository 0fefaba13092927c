// relay_frame.h: what uringest-push moves from the ring to its upstreams. A RelayFrame is
// one message of a stream, copied out of the ring once and shared (FramePtr) by every
// destination's queue and by the stream's own memory of how to start a destination:
// StreamStart keeps the latest onMetaData, each track's latest configuration and the
// frames since the latest video keyframe, so that a destination that connects (or
// reconnects) starts with onMetaData, the sequence headers and that keyframe.
//
//   StreamStart start;
//   FramePtr frame = MakeFrame(meta, payload, now_ns);
//   start.Add(frame, meta);                 // on the relay's thread, for every frame
//   StreamStart::Start opening = start.Opening();   // metadata, configs, frames
//
// Thread safety: a RelayFrame is immutable once made, and may be shared by threads; a
// StreamStart belongs to one thread.

#ifndef URINGEST_RELAY_RELAY_FRAME_H_
#define URINGEST_RELAY_RELAY_FRAME_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/rtmp/enhanced_caps.h"
#include "engine/rtmp/rtmp_format.h"
#include "ringbuf/record_meta.h"

namespace uringest::relay {

struct RelayFrame {
  rtmp::MessageType type = rtmp::MessageType::kVideo;  // kAudio, kVideo or kDataAmf0
  uint32_t timestamp = 0;                              // ms, the RTMP message timestamp
  // A video frame of the default track (track 0) that a decoder can start at (not a
  // configuration): where a destination starts or resumes. Other tracks' keyframes
  // (multitrack) are not: starting there would cut track 0 off from its own.
  bool keyframe = false;
  bool config = false;    // a sequence header: each track's decoder needs its latest
  bool metadata = false;  // onMetaData
  // Which configuration it is: (type, track, packet type), so that a newer one replaces
  // it; 0 for frames that are not configurations.
  uint32_t config_key = 0;
  uint64_t queued_ns = 0;  // MonotonicNs when the relay took it from the ring
  std::vector<uint8_t> body;
};
using FramePtr = std::shared_ptr<const RelayFrame>;

// A frame of a record from the ring: `meta` and its payload (copied).
FramePtr MakeFrame(const ringbuf::RecordMeta& meta, std::span<const uint8_t> payload,
                   uint64_t now_ns);

class StreamStart {
 public:
  // More bytes than this since the latest keyframe (a GOP longer than any sane encoder
  // makes) and the frames are let go: a destination that connects then waits for the
  // next keyframe instead.
  static constexpr size_t kMaxGopBytes = 64 << 20;
  // Frames kept before a stream's first keyframe (or the first after a loss).
  static constexpr size_t kMaxPreroll = 512;

  struct Start {
    FramePtr metadata;              // may be null
    std::vector<FramePtr> configs;  // the latest of each that `frames` doesn't hold
    std::vector<FramePtr> frames;   // in the order they came, from a keyframe
  };

  // Takes note of the stream's next frame.
  void Add(const FramePtr& frame, const ringbuf::RecordMeta& meta);
  // Frames were lost before the next one: the frames since the latest keyframe no longer
  // lead up to it.
  void Lost();

  // What a destination that goes live now sends first: onMetaData, the configurations,
  // then the frames from the latest keyframe (if the stream has video and one is kept;
  // before the first keyframe, what came since the start).
  Start Opening() const;
  // Whether the stream has video: a destination that starts without a keyframe kept
  // waits for the next one before it sends video or audio.
  bool video() const { return video_; }
  bool has_keyframe() const { return keyframe_; }
  bool has_media() const { return media_; }
  // The time the opening's onMetaData and configurations go out with: its keyframe's, or
  // the latest frame's, so that a destination's timestamps never go back.
  uint32_t opening_time() const {
    return history_.empty() || !(keyframe_ || video_) ? last_time_ : history_.front()->timestamp;
  }
  // The Enhanced RTMP FourCCs and features seen, for the upstream's connect.
  const rtmp::EnhancedCaps& caps() const { return caps_; }

 private:
  void NoteEnhanced(const ringbuf::RecordMeta& meta);

  FramePtr metadata_;
  std::vector<FramePtr> configs_;
  // From the latest keyframe on, configurations included; before the first, what a
  // decoder can use since the start.
  std::vector<FramePtr> history_;
  bool keyframe_ = false;  // history_ holds a keyframe
  size_t history_bytes_ = 0;
  bool video_ = false;
  bool media_ = false;  // an audio or video frame came
  uint32_t last_time_ = 0;
  rtmp::EnhancedCaps caps_;
};

}  // namespace uringest::relay

#endif  // URINGEST_RELAY_RELAY_FRAME_H_
