// directory.h: the stream directory, a shared-memory table of every stream the server
// carries: its name, shard, state, codec parameters, latest sequence headers and
// onMetaData, the ring position of its latest keyframe, and counters. Shard threads
// write it; any process reads it.
//
//   // Server, on a shard thread:
//   absl::StatusOr<uint32_t> slot = directory->Claim(shard, "live/cam1", "10.0.0.7:5000");
//   directory->SetConfig(*slot, RecordType::kVideo, 0, kFlagSequenceHeader, 0, avc_config);
//   // Consumer, anywhere:
//   std::optional<StreamInfo> info = directory->Find("live/cam1");
//
// Thread safety: Claim() may run on any number of threads at once (slots are claimed by
// compare-and-swap). Every other writer method on a slot runs on the thread that claimed
// it. Readers in any process read concurrently: each entry's description is guarded by a
// seqlock, so Read() always returns a consistent copy; counters are separate atomics.
//
// Memory: a stream's entry (576 bytes, packed with its neighbours') is touched when the
// stream is claimed; its body's pages (onMetaData, configuration packets) only when they
// are written, and a reader copies only the bytes in use. An idle stream costs 576 bytes.

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

// A configuration packet kept for late joiners (ring_format.h's ConfigHeader).
struct ConfigPacket {
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
  std::vector<uint8_t> metadata;  // the onMetaData data tag body
  // Every configuration packet kept, in the order in which the publisher first sent each
  // (type, track, packet type): what a decoder of each track needs before its frames.
  std::vector<ConfigPacket> configs;
  uint32_t config_count = 0;  // configs.size(), also in a listing (without configs)
  // The kept configuration packet of (type, track, packet type), or nullptr. Track 0's
  // sequence header (legacy, or an Enhanced RTMP SequenceStart) has packet type 0.
  const ConfigPacket* FindConfig(RecordType type, uint8_t track_id = 0,
                                 uint8_t packet_type = 0) const;
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
  // Each setter updates the description under the seqlock. A longer input than the
  // entry holds (ring_format.h) is not stored and returns false.
  bool SetMetadata(uint32_t slot, std::span<const uint8_t> metadata);
  // Keeps a configuration packet: replaces the one of the same type (kVideo or kAudio),
  // track and packet type where it stands, else adds it after the others. False when
  // the entry's configuration area (kConfigAreaSize) has no room for it. `flags` are the
  // record flags replayed with it.
  bool SetConfig(uint32_t slot, RecordType type, uint8_t track_id, uint8_t flags,
                 uint8_t packet_type, std::span<const uint8_t> body);
  void SetCodecInfo(uint32_t slot, const CodecInfo& codec);
  // Marks the stream ended; the slot may be reused by a later Claim().
  void End(uint32_t slot);
  void Heartbeat();
  void SetState(DirectoryState state);

  // ---- Reader side (any process) ----
  // Copies entry `slot`; false if it holds no stream. Without `with_configs` the
  // configuration packets and metadata are left empty (cheaper, for listings).
  bool Read(uint32_t slot, StreamInfo* out, bool with_configs = true) const;
  std::vector<StreamInfo> List() const;  // every publishing or ended stream, no configs
  // The publishing stream called `name`, else the most recent ended one.
  std::optional<StreamInfo> Find(std::string_view name) const;

 private:
  explicit StreamDirectory(ShmRegion region);

  StreamEntry* EntryAt(uint32_t slot) const;
  StreamBody* BodyAt(uint32_t slot) const;
  bool TryClaim(uint32_t slot, SlotState from);
  void FillClaimed(uint32_t slot, uint32_t shard, std::string_view name,
                   std::string_view publisher);
  void BeginWrite(StreamEntry& e);
  void EndWrite(StreamEntry& e);

  ShmRegion region_;
  DirectoryHeader* header_;
};

}  // namespace uringest::ringbuf

#endif  // URINGEST_RINGBUF_DIRECTORY_H_
