#include "engine/ring_frame_sink.h"

#include <time.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "engine/status_text.h"
#include "engine/stream_registry.h"
#include "media/amf0.h"
#include "media/amf0_decoder.h"
#include "media/media_tag.h"
#include "spdlog/spdlog.h"

namespace uringest::engine {
namespace {

uint64_t RealtimeNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000 + uint64_t(ts.tv_nsec);
}

// A codec id in onMetaData is a number (7) or, from Enhanced RTMP encoders, a FourCC
// string ("hvc1").
uint32_t CodecId(const media::amf0::Value* v) {
  if (v == nullptr) return 0;
  if (v->is_number()) return uint32_t(v->number());
  if (v->is_string() && v->string().size() == 4) {
    const std::string& s = v->string();
    return uint32_t(uint8_t(s[0])) << 24 | uint32_t(uint8_t(s[1])) << 16 |
           uint32_t(uint8_t(s[2])) << 8 | uint8_t(s[3]);
  }
  return 0;
}

uint8_t RecordFlags(const rtmp::Frame& frame) {
  return uint8_t((frame.keyframe ? ringbuf::kFlagKeyframe : 0) |
                 (frame.sequence_header ? ringbuf::kFlagSequenceHeader : 0) |
                 (frame.ex_header ? ringbuf::kFlagExHeader : 0) |
                 (frame.many_tracks ? ringbuf::kFlagMultitrack : 0) |
                 (frame.command ? ringbuf::kFlagCommand : 0));
}

// Enhanced RTMP packets a late joiner needs besides the sequence headers: an audio
// track's MultichannelConfig and a video track's Metadata (colorInfo).
bool IsConfigPacket(const rtmp::Frame& frame) {
  if (!frame.ex_header || frame.command) return false;
  return frame.type == rtmp::FrameType::kAudio
             ? frame.packet_type == uint8_t(media::AudioPacketType::kMultichannelConfig)
             : frame.type == rtmp::FrameType::kVideo &&
                   frame.packet_type == uint8_t(media::VideoPacketType::kMetadata);
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
                             .ingest_time_ns = RealtimeNs(),
                             .codec = frame.codec,
                             .track_id = frame.track_id,
                             .packet_type = frame.packet_type,
                             .time_offset_ns = frame.time_offset_ns};
}

// Configuration messages larger than this are not split per track (a sequence start is
// a few hundred bytes).
constexpr size_t kMaxSplitConfig = 64 * 1024;

}  // namespace

void ParseOnMetaData(std::span<const uint8_t> payload, ringbuf::CodecInfo* codec) {
  // Only onMetaData is decoded: other data frames (cue points, captions) may be large
  // and frequent, and need nothing from here.
  static constexpr uint8_t kPrefix[] = {0x02, 0x00, 0x0A, 'o', 'n', 'M', 'e',
                                        't',  'a',  'D',  'a', 't', 'a'};
  if (payload.size() < sizeof(kPrefix) ||
      std::memcmp(payload.data(), kPrefix, sizeof(kPrefix)) != 0) {
    return;
  }
  media::amf0::Decoder decoder(payload);
  absl::StatusOr<media::amf0::Value> name = decoder.Next();
  if (!name.ok() || !name->is_string() || name->string() != "onMetaData") return;
  absl::StatusOr<media::amf0::Value> meta = decoder.Next();
  if (!meta.ok() || !meta->has_properties()) return;
  auto set = [&](uint32_t* field, std::string_view key, double scale = 1) {
    const media::amf0::Value* v = meta->Find(key);
    if (v != nullptr && v->is_number() && v->number() > 0 && v->number() < 4e9 / scale) {
      *field = uint32_t(v->number() * scale);
    }
  };
  set(&codec->width, "width");
  set(&codec->height, "height");
  set(&codec->frame_rate_milli, "framerate", 1000);
  set(&codec->audio_sample_rate, "audiosamplerate");
  set(&codec->video_bitrate_kbps, "videodatarate");
  set(&codec->audio_bitrate_kbps, "audiodatarate");
  set(&codec->audio_channels, "audiochannels");
  if (const media::amf0::Value* stereo = meta->Find("stereo");
      stereo != nullptr && stereo->type() == media::amf0::Value::Type::kBoolean) {
    codec->audio_channels = stereo->boolean() ? 2 : 1;
  }
  if (uint32_t id = CodecId(meta->Find("videocodecid")); id != 0) codec->video_codec = id;
  if (uint32_t id = CodecId(meta->Find("audiocodecid")); id != 0) codec->audio_codec = id;
}

RingFrameSink::RingFrameSink(ringbuf::ShardWriter* shard, std::string peer)
    : shard_(shard), peer_(std::move(peer)) {}

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
  spdlog::info("{}: publishing {}", peer_, key);
  streams_.push_back(Stream{.stream_id = stream_id, .writer = std::move(*writer)});
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
  const bool config_packet = IsConfigPacket(frame);
  const ringbuf::KeepAsConfig keep =
      config_packet ? ringbuf::KeepAsConfig::kYes : ringbuf::KeepAsConfig::kNo;
  if (absl::Status s = stream->writer.WriteFrame(meta, frame.payload_pieces(), keep); !s.ok()) {
    ++counters_.dropped;
    return;
  }
  if (frame.many_tracks && (frame.sequence_header || config_packet)) {
    KeepTrackConfigs(stream, frame, meta.flags);
  } else if (stream->writer.configs_not_kept() != 0) {
    WarnConfigNotKept(stream, frame.track_id, frame.payload_size());
  }
  ++stream->frames;
  ++counters_.frames;
  counters_.bytes += frame.payload_size();
}

// The writer keeps single-track configuration packets itself; one that carries several
// tracks is kept as one body per track, so that a track's later update replaces just its
// own and a late joiner gets every track's.
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
  const uint8_t frame_type = body.empty() ? 0 : uint8_t((body[0] >> 4) & 0x07);
  const uint8_t kept = flags & ~ringbuf::kFlagMultitrack;
  std::array<media::MediaTrack, 32> tracks;
  const size_t count = std::min(media::ListTracks(body, video, tracks), tracks.size());
  for (const media::MediaTrack& track : std::span(tracks).first(count)) {
    media::SingleTrackBody(video, frame_type, frame.packet_type, track, &track_body_);
    if (!stream->writer.SetConfig(type, track.track_id, kept, frame.packet_type, track_body_)) {
      WarnConfigNotKept(stream, track.track_id, track_body_.size());
    }
  }
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
    ParseOnMetaData(frame.payload, &codec);
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
      spdlog::info("{}: stream ended after {} frames", peer_, it->frames);
      it->writer.End();
      streams_.erase(it);
      return;
    }
  }
}

}  // namespace uringest::engine
