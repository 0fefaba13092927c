// shard_writer.h: what a shard thread of the engine calls to publish streams into its
// ring and the stream directory. One ShardWriter per shard; one StreamWriter per
// published stream.
//
//   absl::StatusOr<StreamWriter> stream = shard.BeginStream("live/cam1", "10.0.0.7:5000");
//   RecordMeta meta{.type = RecordType::kVideo, .flags = kFlagKeyframe, .dts = 40,
//                   .pts = 80, .ingest_time_ns = now};
//   absl::Status s = stream->WriteFrame(meta, flv_tag_body);  // or chunk pieces
//   ...
//   stream->End();   // also done by the destructor
//   shard.Heartbeat();  // from the shard's timer, at least every 100 ms
//
// WriteFrame keeps the directory current: video keyframes move its latest-keyframe
// position and the counters advance. What a late joiner needs besides (a track's
// configuration packets, the latest onMetaData) the caller says with a Keep: which frames
// those are is FLV knowledge, decided in the engine (media/), not here. A frame too large for the
// ring is dropped and counted, and the next frame carries kFlagDiscontinuity.
//
// Thread safety: a ShardWriter and its StreamWriters are used on the shard's thread only.
// Nothing allocates per frame; WriteFrame blocks only in the bounded lossless wait.

#ifndef URINGEST_RINGBUF_SHARD_WRITER_H_
#define URINGEST_RINGBUF_SHARD_WRITER_H_

#include <cstdint>
#include <span>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ringbuf/directory.h"
#include "ringbuf/producer.h"
#include "ringbuf/ring_format.h"

namespace uringest::ringbuf {

// What WriteFrame also keeps in the directory entry for late joiners: nothing, the frame
// as its track's configuration packet (StreamWriter::SetConfig), or the frame as the
// stream's metadata (StreamDirectory::SetMetadata: a data frame's onMetaData body).
enum class Keep { kNo, kAsConfig, kAsMetadata };

class ShardWriter;

// One published stream. Movable; ends the stream when destroyed.
class StreamWriter {
 public:
  StreamWriter() = default;
  StreamWriter(StreamWriter&& other) noexcept;
  StreamWriter& operator=(StreamWriter&& other) noexcept;
  StreamWriter(const StreamWriter&) = delete;
  StreamWriter& operator=(const StreamWriter&) = delete;
  ~StreamWriter();

  // Writes one frame whose payload (the FLV tag body) is the concatenation of `pieces`.
  // `meta` is the frame's (kAudio, kVideo or kData); the writer fills in its stream_id and
  // sequence, and adds kFlagDiscontinuity after a drop.
  absl::Status WriteFrame(const RecordMeta& meta, std::span<const std::span<const uint8_t>> pieces,
                          Keep keep = Keep::kNo);
  absl::Status WriteFrame(const RecordMeta& meta, std::span<const uint8_t> payload,
                          Keep keep = Keep::kNo);
  // Zero-copy variant: reserve room for `length` payload bytes, fill it, commit.
  // The span is valid until CommitFrame() or AbortFrame().
  absl::StatusOr<std::span<uint8_t>> ReserveFrame(const RecordMeta& meta, size_t length,
                                                  Keep keep = Keep::kNo);
  void CommitFrame();
  void AbortFrame();

  // Keeps `body`, one track's configuration packet (a single-track or OneTrack FLV tag
  // body), in the directory for late joiners, in place of the last one of (type,
  // track_id, packet_type) (StreamDirectory::SetConfig).
  // WriteFrame does this itself for a frame with Keep::kAsConfig. False, and counted in
  // configs_not_kept(), when the directory has no room for it.
  bool SetConfig(RecordType type, uint8_t track_id, uint8_t flags, uint8_t packet_type,
                 std::span<const uint8_t> body);
  // Codec parameters for uringest-stat (parsed by the engine from onMetaData and the
  // sequence headers).
  void SetCodecInfo(const CodecInfo& codec);
  // Writes the stream-end record and marks the entry ended. Idempotent.
  void End();

  bool active() const { return shard_ != nullptr; }
  uint32_t stream_id() const { return stream_id_; }
  uint32_t slot() const { return slot_; }
  uint64_t frames() const { return sequence_; }
  // Configuration packets the directory had no room for (see SetConfig).
  uint64_t configs_not_kept() const { return configs_not_kept_; }

 private:
  friend class ShardWriter;
  StreamWriter(ShardWriter* shard, uint32_t slot, uint32_t stream_id)
      : shard_(shard), slot_(slot), stream_id_(stream_id) {}

  RecordMeta NextRecord(const RecordMeta& meta, Keep keep);
  void AfterCommit(uint64_t position);
  void CountDrop();

  ShardWriter* shard_ = nullptr;
  uint32_t slot_ = 0;
  uint32_t stream_id_ = 0;
  uint64_t sequence_ = 0;  // of the last record written
  bool discontinuity_ = false;
  bool has_video_ = false;
  uint64_t configs_not_kept_ = 0;
  RecordMeta pending_{};  // the record being written, or the last one
  Keep pending_keep_ = Keep::kNo;
};

class ShardWriter {
 public:
  // Borrows both; they must outlive the ShardWriter and every StreamWriter it made.
  ShardWriter(Producer* producer, StreamDirectory* directory, uint32_t shard)
      : producer_(producer), directory_(directory), shard_(shard) {}
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  // Claims a directory entry for `name` ("app/name") and writes its stream-begin record.
  absl::StatusOr<StreamWriter> BeginStream(std::string_view name, std::string_view publisher);
  // Stamps the ring's and the directory's heartbeats.
  void Heartbeat();
  // Producer::Flush(): after each batch of frames, when the ring batches its wakes.
  void Flush() { producer_->Flush(); }

  Producer& producer() { return *producer_; }
  StreamDirectory& directory() { return *directory_; }
  uint32_t shard() const { return shard_; }

 private:
  Producer* producer_;
  StreamDirectory* directory_;
  uint32_t shard_;
};

}  // namespace uringest::ringbuf

#endif  // URINGEST_RINGBUF_SHARD_WRITER_H_
