#include "engine/ring_frame_sink.h"

#include <cstring>
#include <utility>

#include "engine/status_text.h"
#include "engine/stream_registry.h"
#include "media/media_tag.h"
#include "media/script_data.h"
#include "ringbuf/clock.h"
#include "spdlog/spdlog.h"

namespace uringest::engine {
namespace {

// What onMetaData announces, over what was known: fields it does not announce stay.
void Merge(const media::StreamMetadata& m, ringbuf::CodecInfo* codec) {
  auto set = [](uint32_t* field, uint32_t announced) {
    if (announced != 0) *field = announced;
  };
  set(&codec->width, m.width);
  set(&codec->height, m.height);
  set(&codec->frame_rate_milli, m.frame_rate_milli);
  set(&codec->audio_sample_rate, m.audio_sample_rate);
  set(&codec->video_bitrate_kbps, m.video_bitrate_kbps);
  set(&codec->audio_bitrate_kbps, m.audio_bitrate_kbps);
  set(&codec->audio_channels, m.audio_channels);
  set(&codec->video_codec, m.video_codec);
  set(&codec->audio_codec, m.audio_codec);
}

uint8_t RecordFlags(const rtmp::Frame& frame) {
  return uint8_t((frame.keyframe ? ringbuf::kFlagKeyframe : 0) |
                 (frame.sequence_header ? ringbuf::kFlagSequenceHeader : 0) |
                 (frame.ex_header ? ringbuf::kFlagExHeader : 0) |
                 (frame.many_tracks ? ringbuf::kFlagMultitrack : 0) |
                 (frame.command ? ringbuf::kFlagCommand : 0));
}

// Whether the directory keeps this frame for late joiners, and as what: the one place
// that decides (the FLV knowledge is media/'s).
ringbuf::Keep KeepFor(const rtmp::Frame& frame) {
  if (frame.type == rtmp::FrameType::kData) {
    return media::IsOnMetaData(frame.payload) ? ringbuf::Keep::kAsMetadata : ringbuf::Keep::kNo;
  }
  const bool video = frame.type == rtmp::FrameType::kVideo;
  return media::IsConfiguration(video, frame.sequence_header, frame.ex_header, frame.packet_type)
             ? ringbuf::Keep::kAsConfig
             : ringbuf::Keep::kNo;
}

// The frame in ring terms (stream_id and sequence are the StreamWriter's): the one place
// the RTMP core's Frame becomes a record's metadata.
ringbuf::RecordMeta ToRecordMeta(const rtmp::Frame& frame) {
  const ringbuf::RecordType type =
      frame.type == rtmp::FrameType::kAudio   ? ringbuf::RecordType::kAudio
      : frame.type == rtmp::FrameType::kVideo ? ringbuf::RecordType::kVideo
                                              : ringbuf::RecordType::kData;
  return ringbuf::RecordMeta{.type = type,
                             .flags = RecordFlags(frame),
                             .dts = int64_t(frame.dts),
                             .pts = int64_t(frame.dts) + frame.composition_offset,
                             .ingest_time_ns = ringbuf::RealtimeNs(),
                             .codec = frame.codec,
                             .track_id = frame.track_id,
                             .packet_type = frame.packet_type,
                             .time_offset_ns = frame.time_offset_ns};
}

// Configuration messages larger than this are not split per track (a sequence start is
// a few hundred bytes).
constexpr size_t kMaxSplitConfig = 64 * 1024;

}  // namespace

RingFrameSink::RingFrameSink(ringbuf::ShardWriter* shard, std::string peer, std::string addr,
                             uint16_t port, PublishHook* done, std::atomic<uint64_t>* publishes)
    : shard_(shard),
      peer_(std::move(peer)),
      addr_(std::move(addr)),
      port_(port),
      done_(done),
      publishes_(publishes) {}

RingFrameSink::~RingFrameSink() = default;  // each StreamWriter ends its stream

RingFrameSink::Stream* RingFrameSink::Find(uint32_t stream_id) {
  for (Stream& s : streams_) {
    if (s.stream_id == stream_id) return &s;
  }
  return nullptr;
}

absl::Status RingFrameSink::OnStreamBegin(uint32_t stream_id, rtmp::StreamName name) {
  const std::string key = StreamKey(name);
  absl::StatusOr<ringbuf::StreamWriter> writer = shard_->BeginStream(key, peer_);
  if (!writer.ok()) return writer.status();  // the session refuses the publish, and says why
  has_published_ = true;
  if (publishes_ != nullptr) publishes_->fetch_add(1, std::memory_order_relaxed);
  spdlog::info("{}: publishing {}", peer_, key);
  streams_.push_back(Stream{.stream_id = stream_id,
                            .writer = std::move(*writer),
                            .app = std::string(name.app),
                            .name = std::string(name.name),
                            .begin_ns = ringbuf::MonotonicNs()});
  return absl::OkStatus();
}

void RingFrameSink::OnFrame(const rtmp::Frame& frame) {
  Stream* stream = Find(frame.stream_id);
  if (stream == nullptr) {
    ++counters_.dropped;
    return;
  }
  UpdateCodec(stream, frame);
  const ringbuf::RecordMeta meta = ToRecordMeta(frame);
  const ringbuf::Keep keep = KeepFor(frame);
  // A configuration with several tracks is kept per track, once it is written.
  const bool per_track = keep == ringbuf::Keep::kAsConfig && frame.many_tracks;
  if (absl::Status s = stream->writer.WriteFrame(meta, frame.payload_pieces(),
                                                 per_track ? ringbuf::Keep::kNo : keep);
      !s.ok()) {
    ++counters_.dropped;
    return;
  }
  if (per_track) {
    KeepTrackConfigs(stream, frame, meta.flags);
  } else if (stream->writer.configs_not_kept() != 0) {
    WarnConfigNotKept(stream, frame.track_id, frame.payload_size());
  }
  ++stream->frames;
  stream->bytes += frame.payload_size();
  ++counters_.frames;
  counters_.bytes += frame.payload_size();
}

// A configuration message that carries several tracks is kept as one body per track, so
// that a track's later update replaces just its own and a late joiner gets every track's.
void RingFrameSink::KeepTrackConfigs(Stream* stream, const rtmp::Frame& frame, uint8_t flags) {
  std::span<const uint8_t> body = frame.payload;
  if (!frame.pieces.empty()) {
    if (frame.payload_size() > kMaxSplitConfig) return;
    config_body_.clear();
    for (std::span<const uint8_t> piece : frame.pieces) {
      config_body_.insert(config_body_.end(), piece.begin(), piece.end());
    }
    body = config_body_;
  }
  const bool video = frame.type == rtmp::FrameType::kVideo;
  const ringbuf::RecordType type =
      video ? ringbuf::RecordType::kVideo : ringbuf::RecordType::kAudio;
  const uint8_t kept = flags & ~ringbuf::kFlagMultitrack;
  media::SplitTracks(
      body, video, frame.packet_type, &track_body_,
      [&](uint8_t track_id, std::span<const uint8_t> track_body) {
        if (!stream->writer.SetConfig(type, track_id, kept, frame.packet_type, track_body)) {
          WarnConfigNotKept(stream, track_id, track_body.size());
        }
      });
}

void RingFrameSink::WarnConfigNotKept(Stream* stream, uint8_t track_id, size_t size) {
  if (stream->warned_config) return;
  stream->warned_config = true;
  spdlog::warn(
      "{}: track {} configuration ({} bytes) not kept for late joiners: no room in the "
      "directory entry (said once per stream)",
      peer_, track_id, size);
}

// Codec parameters change rarely: the directory is written only when they do.
void RingFrameSink::UpdateCodec(Stream* stream, const rtmp::Frame& frame) {
  ringbuf::CodecInfo codec = stream->codec;
  if (frame.type == rtmp::FrameType::kData) {
    Merge(media::ParseOnMetaData(frame.payload), &codec);
  } else if (frame.track_id != 0 || frame.command) {
    // The directory's codec fields describe the default track (0).
  } else if (frame.type == rtmp::FrameType::kVideo && frame.codec != 0) {
    codec.video_codec = frame.codec;
  } else if (frame.type == rtmp::FrameType::kAudio && frame.payload.size() > 0) {
    codec.audio_codec = frame.codec;
  }
  if (std::memcmp(&codec, &stream->codec, sizeof(codec)) == 0) return;
  stream->codec = codec;
  stream->writer.SetCodecInfo(codec);
}

void RingFrameSink::OnStreamEnd(uint32_t stream_id) {
  for (auto it = streams_.begin(); it != streams_.end(); ++it) {
    if (it->stream_id == stream_id) {
      spdlog::info("{}: stream {}/{} ended ({}) after {} frames", peer_, it->app, it->name,
                   end_reason_, it->frames);
      it->writer.End();
      if (done_ != nullptr) {
        done_->Notify({.app = std::move(it->app),
                       .name = std::move(it->name),
                       .addr = addr_,
                       .port = port_,
                       .reason = end_reason_,
                       .duration_s = double(ringbuf::MonotonicNs() - it->begin_ns) / 1e9,
                       .bytes = it->bytes,
                       .frames = it->frames});
      }
      streams_.erase(it);
      return;
    }
  }
}

}  // namespace uringest::engine
