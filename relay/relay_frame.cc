#include "relay/relay_frame.h"

#include <algorithm>

#include "media/media_tag.h"
#include "media/script_data.h"
#include "ringbuf/ring_format.h"

namespace uringest::relay {
namespace {

using ringbuf::RecordType;

std::string FourCcText(uint32_t fourcc) {
  return {char(fourcc >> 24), char(fourcc >> 16), char(fourcc >> 8), char(fourcc)};
}

}  // namespace

FramePtr MakeFrame(const ringbuf::RecordMeta& meta, std::span<const uint8_t> payload,
                   uint64_t now_ns) {
  auto frame = std::make_shared<RelayFrame>();
  const bool video = meta.type == RecordType::kVideo;
  frame->type = meta.type == RecordType::kAudio ? rtmp::MessageType::kAudio
                : video                         ? rtmp::MessageType::kVideo
                                                : rtmp::MessageType::kDataAmf0;
  frame->timestamp = uint32_t(meta.dts);
  if (meta.type == RecordType::kData) {
    frame->metadata = media::IsOnMetaData(payload);
  } else {
    frame->config =
        media::IsConfiguration(video, (meta.flags & ringbuf::kFlagSequenceHeader) != 0,
                               (meta.flags & ringbuf::kFlagExHeader) != 0, meta.packet_type);
    frame->keyframe =
        video && !frame->config && (meta.flags & ringbuf::kFlagKeyframe) != 0 && meta.track_id == 0;
    if (frame->config) {
      frame->config_key =
          uint32_t(meta.type) << 16 | uint32_t(meta.track_id) << 8 | meta.packet_type;
    }
  }
  frame->queued_ns = now_ns;
  frame->body.assign(payload.begin(), payload.end());
  return frame;
}

void StreamStart::Add(const FramePtr& frame, const ringbuf::RecordMeta& meta) {
  if (frame->metadata) {
    metadata_ = frame;
    return;
  }
  if (frame->type == rtmp::MessageType::kDataAmf0) return;
  media_ = true;
  last_time_ = frame->timestamp;
  if (frame->type == rtmp::MessageType::kVideo) video_ = true;
  NoteEnhanced(meta);
  if (frame->config) {
    auto same = std::find_if(configs_.begin(), configs_.end(),
                             [&](const FramePtr& c) { return c->config_key == frame->config_key; });
    if (same != configs_.end()) {
      *same = frame;
    } else {
      configs_.push_back(frame);
    }
  }
  if (frame->keyframe) {
    if (keyframe_) {
      history_.clear();
      history_bytes_ = 0;
    }
    keyframe_ = true;
  } else if (!keyframe_) {
    // Before the first keyframe (of the stream, or since a loss), what a decoder can use
    // is kept for it, as it came: configurations, audio, frames that stand alone (of
    // other tracks); video frames that need the pictures before them are not.
    const bool stands_alone = frame->config || (meta.flags & ringbuf::kFlagKeyframe) != 0 ||
                              frame->type != rtmp::MessageType::kVideo;
    if (!stands_alone || history_.size() >= kMaxPreroll) return;
  }
  history_bytes_ += frame->body.size();
  if (history_bytes_ > kMaxGopBytes) {
    Lost();
    return;
  }
  history_.push_back(frame);
}

void StreamStart::Lost() {
  keyframe_ = false;
  history_.clear();
  history_bytes_ = 0;
}

StreamStart::Start StreamStart::Opening() const {
  Start out{.metadata = metadata_};
  // What came before a keyframe is worth sending only while a keyframe is awaited: an
  // audio-only stream starts with its next frame.
  if (keyframe_ || video_) out.frames = history_;
  for (const FramePtr& c : configs_) {
    if (std::find(out.frames.begin(), out.frames.end(), c) == out.frames.end()) {
      out.configs.push_back(c);
    }
  }
  return out;
}

void StreamStart::NoteEnhanced(const ringbuf::RecordMeta& meta) {
  if ((meta.flags & ringbuf::kFlagExHeader) == 0) return;
  caps_.present = true;
  const std::string fourcc = FourCcText(meta.codec);
  if (meta.codec != 0 && caps_.fourcc_list.size() < rtmp::EnhancedCaps::kMaxEnhancedFourCcs &&
      std::find(caps_.fourcc_list.begin(), caps_.fourcc_list.end(), fourcc) ==
          caps_.fourcc_list.end()) {
    caps_.fourcc_list.push_back(fourcc);
  }
  if ((meta.flags & ringbuf::kFlagMultitrack) != 0) caps_.caps_ex |= rtmp::kCapsExMultitrack;
  if (meta.time_offset_ns != 0) {
    caps_.caps_ex |= rtmp::kCapsExModEx | rtmp::kCapsExTimestampNanoOffset;
  }
}

}  // namespace uringest::relay
