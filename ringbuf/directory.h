// directory.h: the stream directory, a shared-memory table of every stream the server
// carries: its name, shard, state, codec parameters, latest sequence headers and
// onMetaData, the ring position of its latest keyframe, and counters. Shard threads
// write it; any process reads it.
//
//   // Server, on a shard thread:
//   absl::StatusOr<uint32_t> slot = directory->Claim(shard, "live/cam1", "10.0.0.7:5000");
//   directory->SetVideoConfig(*slot, avc_decoder_configuration_tag_body);
//   // Consumer, anywhere:
//   std::optional<StreamInfo> info = directory->Find("live/cam1");
//
// Thread safety: Claim() may run on any number of threads at once (slots are claimed by
// compare-and-swap). Every other writer method on a slot runs on the thread that claimed
// it. Readers in any process read concurrently: each entry's description is guarded by a
// seqlock, so Read() always returns a consistent copy; counters are separate atomics.

#ifndef URINGEST_RINGBUF_DIRECTORY_H_
#define URINGEST_RINGBUF_DIRECTORY_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ringbuf/ring_format.h"
#include "ringbuf/shm.h"

namespace uringest::ringbuf {

// The latest configuration packet of one kind of an Enhanced RTMP track (ring_format.h's
// TrackConfig).
struct TrackConfigInfo {
  RecordType type = RecordType::kVideo;  // kVideo or kAudio
  uint8_t track_id = 0;
  uint8_t flags = 0;  // kFlagSequenceHeader, kFlagExHeader
  uint8_t packet_type = 0;
  std::vector<uint8_t> body;  // a single-track FLV tag body
};

// A consistent copy of one directory entry.
struct StreamInfo {
  uint32_t slot = 0;
  uint32_t stream_id = 0;
  uint32_t shard = 0;
  SlotState state = SlotState::kFree;
  std::string name;       // "app/name"
  std::string publisher;  // the publisher's address, "ip:port"
  uint64_t begin_time_ns = 0;
  uint64_t end_time_ns = 0;
  CodecInfo codec{};
  std::vector<uint8_t> video_config;           // the FLV video tag body of the sequence header
  std::vector<uint8_t> audio_config;           // the FLV audio tag body of the sequence header
  std::vector<uint8_t> metadata;               // the onMetaData data tag body
  std::vector<TrackConfigInfo> track_configs;  // in slot order
  // Counters (each read atomically, not together with the rest).
  uint64_t frames = 0;
  uint64_t bytes = 0;
  uint64_t drops = 0;
  std::optional<uint64_t> latest_keyframe;  // ring position
  int64_t last_dts = 0;
};

struct DirectoryOptions {
  uint32_t shard_count = 1;
  uint32_t slot_count = 4096;
  uint64_t ring_capacity = 64 << 20;
  uint64_t epoch = 1;
  std::string hugetlbfs_dir;                 // where huge-page rings live, "" if none
  std::vector<RingLocation> ring_locations;  // per shard; empty: all kShm
};

class StreamDirectory {
 public:
  // Creates and formats the directory object at `path` (server).
  static absl::StatusOr<std::unique_ptr<StreamDirectory>> Create(const std::string& path,
                                                                 const DirectoryOptions& options,
                                                                 const ShmCreateOptions& shm);
  // Maps an existing directory read-only (consumers).
  static absl::StatusOr<std::unique_ptr<StreamDirectory>> Open(const std::string& path);

  StreamDirectory(const StreamDirectory&) = delete;
  StreamDirectory& operator=(const StreamDirectory&) = delete;

  const DirectoryHeader& header() const { return *header_; }
  uint64_t epoch() const { return header_->epoch; }
  uint32_t slot_count() const { return header_->slot_count; }
  DirectoryState state() const;
  int64_t HeartbeatAgeNs() const;  // since any shard's last Heartbeat()
  // Where shard `shard`'s ring object is, for ring `name`.
  std::string RingPath(std::string_view name, uint32_t shard) const;

  // ---- Writer side (server only) ----
  // Claims a slot for a new stream, preferring never-used slots, then ended ones.
  // Returns the slot; the entry is kPublishing with a fresh stream id.
  absl::StatusOr<uint32_t> Claim(uint32_t shard, std::string_view name, std::string_view publisher);
  StreamEntry& entry(uint32_t slot) { return *EntryAt(slot); }
  uint32_t stream_id(uint32_t slot) const;  // as set by Claim()
  // Each setter updates the description under the seqlock. Longer inputs than the
  // entry holds (ring_format.h) are not stored and return false.
  bool SetVideoConfig(uint32_t slot, std::span<const uint8_t> config);
  bool SetAudioConfig(uint32_t slot, std::span<const uint8_t> config);
  bool SetMetadata(uint32_t slot, std::span<const uint8_t> metadata);
  // A configuration packet of Enhanced RTMP track `track_id` of `type` (kVideo or
  // kAudio) with `packet_type`: replaces the one of the same type, track and packet
  // type, else takes a free track slot; false when none is free or the body is longer
  // than kTrackConfigMax. `flags` are the record flags replayed with it.
  bool SetTrackConfig(uint32_t slot, RecordType type, uint8_t track_id, uint8_t flags,
                      uint8_t packet_type, std::span<const uint8_t> config);
  void SetCodecInfo(uint32_t slot, const CodecInfo& codec);
  // Marks the stream ended; the slot may be reused by a later Claim().
  void End(uint32_t slot);
  void Heartbeat();
  void SetState(DirectoryState state);

  // ---- Reader side (any process) ----
  // Copies entry `slot`; false if it holds no stream. Without `with_configs` the
  // sequence headers and metadata are left empty (cheaper, for listings).
  bool Read(uint32_t slot, StreamInfo* out, bool with_configs = true) const;
  std::vector<StreamInfo> List() const;  // every publishing or ended stream, no configs
  // The publishing stream called `name`, else the most recent ended one.
  std::optional<StreamInfo> Find(std::string_view name) const;

 private:
  explicit StreamDirectory(ShmRegion region);

  StreamEntry* EntryAt(uint32_t slot) const;
  bool TryClaim(uint32_t slot, SlotState from);
  void FillClaimed(uint32_t slot, uint32_t shard, std::string_view name,
                   std::string_view publisher);
  bool SetBlob(uint32_t slot, uint8_t* field, uint32_t* length, size_t max,
               std::span<const uint8_t> bytes);
  void BeginWrite(StreamEntry& e);
  void EndWrite(StreamEntry& e);

  ShmRegion region_;
  DirectoryHeader* header_;
};

}  // namespace uringest::ringbuf

#endif  // URINGEST_RINGBUF_DIRECTORY_H_
