#include "loadgen/media_source.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <fstream>
#include <iterator>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "loadgen/stamp.h"
#include "media/amf0.h"
#include "media/flv_format.h"
#include "media/script_data.h"

namespace uringest::loadgen {
namespace {

// A real AVCDecoderConfigurationRecord tag body (ffmpeg testsrc, 320x240, High profile).
constexpr uint8_t kAvcSequenceHeader[] = {
    0x17, 0x00, 0x00, 0x00, 0x00, 0x01, 0xf4, 0x00, 0x0d, 0xff, 0xe1, 0x00, 0x18, 0x67, 0xf4,
    0x00, 0x0d, 0x91, 0x96, 0x81, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00,
    0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0xaa, 0x01, 0x00, 0x05, 0x68, 0xce, 0x0f, 0x19, 0x20};
constexpr int kGopSeconds = 2;
constexpr uint64_t kKeyframeWeight = 8;   // a keyframe is as big as 8 inter frames
constexpr size_t kFlvHeaderSize = 9 + 4;  // header + PreviousTagSize0

std::vector<uint8_t> Filler(size_t size, uint8_t first) {
  std::vector<uint8_t> out(size);
  out[0] = first;  // frame type | codec 7 (AVC)
  out[1] = 1;      // NALU
  // cts 0, then a 4-byte NALU length and a slice header byte; the rest is a pattern.
  for (size_t i = kAvcHeaderSize; i < size; ++i) out[i] = uint8_t(i * 131 + 7);
  return out;
}

uint32_t Be24(const uint8_t* p) { return uint32_t(p[0]) << 16 | uint32_t(p[1]) << 8 | p[2]; }

}  // namespace

std::unique_ptr<MediaSource> MediaSource::Synthetic(uint64_t bitrate_bps, double fps) {
  assert(bitrate_bps > 0 && fps > 0);
  std::unique_ptr<MediaSource> src(new MediaSource());
  const size_t gop = std::max<size_t>(1, size_t(std::lround(fps * kGopSeconds)));
  const double gop_bytes = double(bitrate_bps) / 8 * double(gop) / fps;
  const size_t inter = std::max(kStampedMin, size_t(gop_bytes / double(gop - 1 + kKeyframeWeight)));
  const double key_bytes = gop_bytes - double(inter * (gop - 1));
  const size_t key = std::max(kStampedMin, key_bytes > 0 ? size_t(key_bytes) : 0);
  src->storage_.push_back(
      std::vector<uint8_t>(std::begin(kAvcSequenceHeader), std::end(kAvcSequenceHeader)));
  src->storage_.push_back(Filler(key, 0x17));
  src->storage_.push_back(Filler(inter, 0x27));
  src->headers_.push_back({.type = rtmp::MessageType::kVideo, .body = src->storage_[0]});
  for (size_t i = 0; i < gop; ++i) {
    src->frames_.push_back({.type = rtmp::MessageType::kVideo,
                            .timestamp_ms = uint64_t(std::llround(double(i) * 1000 / fps)),
                            .body = src->storage_[i == 0 ? 1 : 2]});
    src->period_bytes_ += src->frames_.back().body.size();
  }
  src->period_ms_ = uint64_t(std::llround(double(gop) * 1000 / fps));
  src->BuildMetadata(fps, bitrate_bps);
  src->FindKeyframes();
  return src;
}

absl::StatusOr<std::unique_ptr<MediaSource>> MediaSource::FromFlv(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("can't open ", path));
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), {});
  absl::StatusOr<std::unique_ptr<MediaSource>> src = FromFlvBytes(bytes);
  if (!src.ok())
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", src.status().message()));
  return src;
}

absl::StatusOr<std::unique_ptr<MediaSource>> MediaSource::FromFlvBytes(
    std::span<const uint8_t> flv) {
  if (flv.size() < kFlvHeaderSize || flv[0] != 'F' || flv[1] != 'L' || flv[2] != 'V') {
    return absl::InvalidArgumentError("not an FLV file");
  }
  std::unique_ptr<MediaSource> src(new MediaSource());
  size_t pos = kFlvHeaderSize;
  std::vector<std::pair<uint8_t, uint64_t>> tags;  // type, timestamp, in storage_ order
  double fps = 30;
  while (pos + media::kFlvTagHeaderSize <= flv.size()) {
    const uint8_t* h = flv.data() + pos;
    const uint32_t size = Be24(h + 1);
    const uint64_t ts = Be24(h + 4) | uint64_t(h[7]) << 24;
    if (pos + media::kFlvTagHeaderSize + size > flv.size()) break;  // a cut-off last tag
    std::span<const uint8_t> body = flv.subspan(pos + media::kFlvTagHeaderSize, size);
    pos += media::kFlvTagHeaderSize + size + media::kFlvPreviousTagSizeSize;
    const uint8_t type = h[0] & 0x1F;
    if ((type != 8 && type != 9) || body.empty()) continue;
    const bool sequence_header =
        body.size() >= 2 && body[1] == 0 &&
        ((type == 9 && (body[0] & 0x0F) == 7) || (type == 8 && (body[0] >> 4) == 10));
    src->storage_.emplace_back(body.begin(), body.end());
    MediaFrame frame{
        .type = rtmp::MessageType(type), .timestamp_ms = ts, .body = src->storage_.back()};
    if (sequence_header) {
      if (src->frames_.empty()) src->headers_.push_back({frame.type, 0, frame.body});
      continue;
    }
    src->frames_.push_back(frame);
    src->period_bytes_ += body.size();
  }
  if (src->frames_.empty()) return absl::InvalidArgumentError("no audio or video frames");
  const uint64_t first = src->frames_.front().timestamp_ms;
  for (MediaFrame& f : src->frames_)
    f.timestamp_ms = f.timestamp_ms >= first ? f.timestamp_ms - first : 0;
  size_t video = 0;
  for (const MediaFrame& f : src->frames_) video += f.type == rtmp::MessageType::kVideo;
  const uint64_t span_ms = src->frames_.back().timestamp_ms;
  if (video > 1 && span_ms > 0) fps = double(video - 1) * 1000 / double(span_ms);
  src->period_ms_ = span_ms + uint64_t(std::llround(1000 / fps));
  src->BuildMetadata(fps, src->period_bytes_ * 8000 / std::max<uint64_t>(1, src->period_ms_));
  src->FindKeyframes();
  return src;
}

namespace {

// FLV's video tag: frame type in bits 4..6 of the first byte (bit 7 is E-RTMP's
// IsExHeader), 1 = keyframe.
bool IsVideoKeyframe(const MediaFrame& f) {
  return f.type == rtmp::MessageType::kVideo && !f.body.empty() && ((f.body[0] >> 4) & 7) == 1;
}

}  // namespace

void MediaSource::FindKeyframes() {
  has_keyframe_ = std::any_of(frames_.begin(), frames_.end(), IsVideoKeyframe);
}

bool MediaSource::IsKeyframe(uint64_t index) const {
  if (!has_keyframe_) return index % frames_.size() == 0;
  return IsVideoKeyframe(frames_[index % frames_.size()]);
}

MediaFrame MediaSource::At(uint64_t index) const {
  MediaFrame f = frames_[index % frames_.size()];
  f.timestamp_ms += index / frames_.size() * period_ms_;
  return f;
}

void MediaSource::BuildMetadata(double fps, uint64_t bitrate_bps) {
  using media::amf0::Value;
  media::amf0::EncodeString(media::kOnMetaData, &metadata_);
  media::amf0::Encode(
      Value::EcmaArray({{"videocodecid", Value::Number(7)},
                        {"framerate", Value::Number(fps)},
                        {"videodatarate", Value::Number(double(bitrate_bps) / 1000)},
                        {"encoder", Value::String("uringest-load")}}),
      &metadata_);
}

void SendFrame(rtmp::PublishClient* conn, const MediaFrame& frame, const Stamp* stamp) {
  // Media goes on one chunk stream, audio and video alike, as uringest-load always sent it.
  std::span<uint8_t> first = conn->SendMessage(rtmp::kVideoChunkStream, frame.type,
                                               uint32_t(frame.timestamp_ms), frame.body);
  const size_t stamp_at = stamp != nullptr ? StampOffset(frame.body) : 0;
  if (stamp_at != 0) WriteStamp(*stamp, first.data() + stamp_at);
}

}  // namespace uringest::loadgen
