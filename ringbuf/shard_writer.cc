#include "ringbuf/shard_writer.h"

#include <cassert>
#include <utility>

#include "ringbuf/clock.h"
#include "ringbuf/internal/shared_access.h"

namespace uringest::ringbuf {

using internal::AddRelaxed;
using internal::StoreRelaxed;
using internal::StoreRelease;

absl::StatusOr<StreamWriter> ShardWriter::BeginStream(std::string_view name,
                                                      std::string_view publisher) {
  absl::StatusOr<uint32_t> slot = directory_->Claim(shard_, name, publisher);
  if (!slot.ok()) return slot.status();
  StreamWriter stream(this, *slot, directory_->stream_id(*slot));
  RecordMeta begin{
      .type = RecordType::kStreamBegin, .flags = kFlagKeyframe, .ingest_time_ns = RealtimeNs()};
  std::span<const uint8_t> payload(reinterpret_cast<const uint8_t*>(name.data()), name.size());
  if (absl::Status s = stream.WriteFrame(begin, payload); !s.ok()) return s;
  return stream;
}

void ShardWriter::Heartbeat() {
  producer_->Heartbeat();
  directory_->Heartbeat();
}

StreamWriter::StreamWriter(StreamWriter&& other) noexcept { *this = std::move(other); }

StreamWriter& StreamWriter::operator=(StreamWriter&& other) noexcept {
  if (this != &other) {
    End();
    shard_ = std::exchange(other.shard_, nullptr);
    slot_ = other.slot_;
    stream_id_ = other.stream_id_;
    sequence_ = other.sequence_;
    discontinuity_ = other.discontinuity_;
    has_video_ = other.has_video_;
    configs_not_kept_ = other.configs_not_kept_;
    pending_ = other.pending_;
    pending_keep_ = other.pending_keep_;
  }
  return *this;
}

StreamWriter::~StreamWriter() { End(); }

RecordMeta StreamWriter::NextRecord(const RecordMeta& meta, Keep keep) {
  pending_ = meta;
  pending_.flags |= discontinuity_ ? kFlagDiscontinuity : 0;
  pending_.stream_id = stream_id_;
  pending_.sequence = sequence_ + 1;
  pending_keep_ = keep;
  return pending_;
}

absl::Status StreamWriter::WriteFrame(const RecordMeta& meta,
                                      std::span<const std::span<const uint8_t>> pieces, Keep keep) {
  assert(active());
  absl::StatusOr<uint64_t> position = shard_->producer().Write(NextRecord(meta, keep), pieces);
  if (!position.ok()) {
    CountDrop();
    return position.status();
  }
  AfterCommit(*position);
  return absl::OkStatus();
}

absl::Status StreamWriter::WriteFrame(const RecordMeta& meta, std::span<const uint8_t> payload,
                                      Keep keep) {
  return WriteFrame(meta, std::span<const std::span<const uint8_t>>(&payload, 1), keep);
}

absl::StatusOr<std::span<uint8_t>> StreamWriter::ReserveFrame(const RecordMeta& meta, size_t length,
                                                              Keep keep) {
  assert(active());
  absl::StatusOr<std::span<uint8_t>> room =
      shard_->producer().Reserve(NextRecord(meta, keep), length);
  if (!room.ok()) CountDrop();
  return room;
}

void StreamWriter::CommitFrame() { AfterCommit(shard_->producer().Commit()); }

void StreamWriter::AbortFrame() {
  shard_->producer().Abort();
  CountDrop();
}

void StreamWriter::CountDrop() {
  discontinuity_ = true;
  AddRelaxed(shard_->directory().entry(slot_).drops, uint64_t{1});
}

// Brings the directory entry up to date with the record just committed at `position`.
void StreamWriter::AfterCommit(uint64_t position) {
  ++sequence_;
  discontinuity_ = false;
  StreamDirectory& dir = shard_->directory();
  StreamEntry& e = dir.entry(slot_);
  std::span<const uint8_t> payload = shard_->producer().PayloadAt(position);
  AddRelaxed(e.bytes, uint64_t{payload.size()});
  StoreRelaxed(e.last_dts, pending_.dts);
  StoreRelease(e.frames, sequence_);
  bool video = pending_.type == RecordType::kVideo;
  bool audio = pending_.type == RecordType::kAudio;
  bool config = (pending_.flags & kFlagSequenceHeader) != 0;
  has_video_ |= video;
  if (!config && (pending_.flags & kFlagKeyframe) != 0 && (video || (audio && !has_video_))) {
    StoreRelease(e.latest_keyframe, position + 1);
  }
  if (pending_keep_ == Keep::kAsConfig) {
    SetConfig(pending_.type, pending_.track_id, pending_.flags, pending_.packet_type, payload);
  } else if (pending_keep_ == Keep::kAsMetadata) {
    dir.SetMetadata(slot_, payload);
  }
}

bool StreamWriter::SetConfig(RecordType type, uint8_t track_id, uint8_t flags, uint8_t packet_type,
                             std::span<const uint8_t> body) {
  if (type != RecordType::kVideo && type != RecordType::kAudio) return false;
  const uint8_t kept = flags & (kFlagSequenceHeader | kFlagExHeader);
  if (shard_->directory().SetConfig(slot_, type, track_id, kept, packet_type, body)) return true;
  ++configs_not_kept_;
  return false;
}

void StreamWriter::SetCodecInfo(const CodecInfo& codec) {
  shard_->directory().SetCodecInfo(slot_, codec);
}

void StreamWriter::End() {
  if (shard_ == nullptr) return;
  RecordMeta end{.type = RecordType::kStreamEnd,
                 .flags = kFlagKeyframe,
                 .dts = pending_.dts,
                 .pts = pending_.dts,
                 .ingest_time_ns = RealtimeNs()};
  (void)WriteFrame(end, std::span<const uint8_t>());
  shard_->directory().End(slot_);
  shard_ = nullptr;
}

}  // namespace uringest::ringbuf
