#include "ringbuf/directory.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "ringbuf/clock.h"
#include "ringbuf/internal/shared_access.h"

namespace uringest::ringbuf {

using internal::CopyFromShared;
using internal::CopyToShared;
using internal::LoadAcquire;
using internal::LoadRelaxed;
using internal::Shared;
using internal::StoreRelaxed;
using internal::StoreRelease;

namespace {

template <typename T>
void Put(T& field, const T& value) {
  CopyToShared(&field, &value, sizeof(T));
}

constexpr size_t kPageSize = 4096;

// Where the bodies start: past the entries, on a page of their own.
size_t BodyOffset(uint32_t slot_count) {
  const size_t entries_end = kDirectoryHeaderSize + size_t{slot_count} * kStreamEntrySize;
  return (entries_end + kPageSize - 1) & ~(kPageSize - 1);
}

// The configuration packets packed in `area` (a consistent copy), in order. A packet
// that claims more bytes than the area has ends the list.
void ReadConfigs(std::span<const uint8_t> area, std::vector<ConfigPacket>* out) {
  ConfigHeader h;
  for (size_t at = 0; at + sizeof(h) <= area.size(); at += ConfigRecordSize(h.length)) {
    std::memcpy(&h, area.data() + at, sizeof(h));
    if (h.length > area.size() - at - sizeof(h)) return;
    const uint8_t* body = area.data() + at + sizeof(h);
    out->push_back(ConfigPacket{.type = static_cast<RecordType>(h.type),
                                .track_id = h.track_id,
                                .flags = h.flags,
                                .packet_type = h.packet_type,
                                .body = std::vector<uint8_t>(body, body + h.length)});
  }
}

absl::Status CheckDirectoryHeader(const ShmRegion& region) {
  if (region.size() < kDirectoryHeaderSize) return absl::DataLossError("directory too small");
  const auto& h = *reinterpret_cast<const DirectoryHeader*>(region.data());
  if (LoadAcquire(h.state) == static_cast<uint32_t>(DirectoryState::kInitializing)) {
    return absl::UnavailableError("directory is still being created");
  }
  if (h.magic != kDirectoryMagic) return absl::DataLossError("not a uringest directory");
  if (h.version != kFormatVersion) {
    return absl::FailedPreconditionError(absl::StrCat("directory format version ", h.version,
                                                      ", this reader knows ", kFormatVersion));
  }
  if (h.entry_size != kStreamEntrySize || h.body_size != kStreamBodySize ||
      h.shard_count > kMaxShards ||
      h.body_offset < h.header_size + uint64_t{h.slot_count} * h.entry_size ||
      region.size() < h.body_offset + uint64_t{h.slot_count} * h.body_size) {
    return absl::DataLossError("directory header sizes don't match the object");
  }
  return absl::OkStatus();
}

}  // namespace

const ConfigPacket* StreamInfo::FindConfig(RecordType type, uint8_t track_id,
                                           uint8_t packet_type) const {
  for (const ConfigPacket& c : configs) {
    if (c.type == type && c.track_id == track_id && c.packet_type == packet_type) return &c;
  }
  return nullptr;
}

absl::StatusOr<std::unique_ptr<StreamDirectory>> StreamDirectory::Create(
    const std::string& path, const DirectoryOptions& options, const ShmCreateOptions& shm) {
  if (options.shard_count == 0 || options.shard_count > kMaxShards || options.slot_count == 0) {
    return absl::InvalidArgumentError("directory needs 1..256 shards and at least one slot");
  }
  if (options.hugetlbfs_dir.size() >= sizeof(DirectoryHeader::hugetlbfs_dir)) {
    return absl::InvalidArgumentError("hugetlbfs path too long");
  }
  const size_t body_offset = BodyOffset(options.slot_count);
  if (body_offset > UINT32_MAX) return absl::InvalidArgumentError("too many directory slots");
  size_t size = body_offset + size_t{options.slot_count} * kStreamBodySize;
  // Entries and bodies are touched only when used: don't prefault the whole table.
  ShmCreateOptions no_prefault = shm;
  no_prefault.prefault = false;
  no_prefault.huge_pages = false;
  absl::StatusOr<ShmRegion> region = ShmRegion::Create(path, size, no_prefault);
  if (!region.ok()) return region.status();
  auto dir = std::unique_ptr<StreamDirectory>(new StreamDirectory(*std::move(region)));
  DirectoryHeader& h = *dir->header_;
  h.magic = kDirectoryMagic;
  h.version = kFormatVersion;
  h.header_size = kDirectoryHeaderSize;
  h.epoch = options.epoch;
  h.shard_count = options.shard_count;
  h.slot_count = options.slot_count;
  h.entry_size = kStreamEntrySize;
  h.body_size = kStreamBodySize;
  h.body_offset = static_cast<uint32_t>(body_offset);
  h.server_pid = getpid();
  h.ring_capacity = options.ring_capacity;
  h.start_time_ns = RealtimeNs();
  for (size_t i = 0; i < options.ring_locations.size() && i < kMaxShards; ++i) {
    h.ring_location[i] = static_cast<uint8_t>(options.ring_locations[i]);
  }
  std::memcpy(h.hugetlbfs_dir, options.hugetlbfs_dir.data(), options.hugetlbfs_dir.size());
  dir->Heartbeat();
  dir->SetState(DirectoryState::kLive);
  return dir;
}

absl::StatusOr<std::unique_ptr<StreamDirectory>> StreamDirectory::Open(const std::string& path) {
  absl::StatusOr<ShmRegion> region = ShmRegion::Open(path, /*writable=*/false, /*prefault=*/false);
  if (!region.ok()) return region.status();
  if (absl::Status s = CheckDirectoryHeader(*region); !s.ok()) return s;
  return std::unique_ptr<StreamDirectory>(new StreamDirectory(*std::move(region)));
}

StreamDirectory::StreamDirectory(ShmRegion region)
    : region_(std::move(region)), header_(reinterpret_cast<DirectoryHeader*>(region_.data())) {}

DirectoryState StreamDirectory::state() const {
  return static_cast<DirectoryState>(LoadAcquire(header_->state));
}

int64_t StreamDirectory::HeartbeatAgeNs() const {
  return static_cast<int64_t>(MonotonicNs() - LoadAcquire(header_->heartbeat_ns));
}

std::string StreamDirectory::RingPath(std::string_view name, uint32_t shard) const {
  bool huge = shard < kMaxShards &&
              header_->ring_location[shard] == static_cast<uint8_t>(RingLocation::kHugetlbfs);
  std::string dir = huge ? std::string(header_->hugetlbfs_dir) : std::string(kShmDir);
  return ObjectPath(dir, name, RingSuffix(shard));
}

StreamEntry* StreamDirectory::EntryAt(uint32_t slot) const {
  return reinterpret_cast<StreamEntry*>(region_.data() + header_->header_size +
                                        size_t{slot} * kStreamEntrySize);
}

StreamBody* StreamDirectory::BodyAt(uint32_t slot) const {
  return reinterpret_cast<StreamBody*>(region_.data() + header_->body_offset +
                                       size_t{slot} * kStreamBodySize);
}

void StreamDirectory::Heartbeat() { StoreRelease(header_->heartbeat_ns, MonotonicNs()); }

void StreamDirectory::SetState(DirectoryState state) {
  StoreRelease(header_->state, static_cast<uint32_t>(state));
}

// ---- Writer side ----

void StreamDirectory::BeginWrite(StreamEntry& e) {
  StoreRelaxed(e.seqlock, LoadRelaxed(e.seqlock) + 1);  // odd: readers retry
  internal::ReleaseFence();
}

void StreamDirectory::EndWrite(StreamEntry& e) {
  StoreRelease(e.seqlock, LoadRelaxed(e.seqlock) + 1);
}

bool StreamDirectory::TryClaim(uint32_t slot, SlotState from) {
  auto expected = static_cast<uint32_t>(from);
  return Shared(EntryAt(slot)->slot_state)
      .compare_exchange_strong(expected, static_cast<uint32_t>(SlotState::kClaimed));
}

absl::StatusOr<uint32_t> StreamDirectory::Claim(uint32_t shard, std::string_view name,
                                                std::string_view publisher) {
  if (name.empty() || name.size() > kStreamNameMax) {
    return absl::InvalidArgumentError("stream name must be 1..256 bytes");
  }
  const uint32_t n = header_->slot_count;
  for (SlotState from : {SlotState::kFree, SlotState::kEnded}) {
    uint32_t start = Shared(header_->slot_hint).fetch_add(1) % n;
    for (uint32_t i = 0; i < n; ++i) {
      uint32_t slot = (start + i) % n;
      if (LoadRelaxed(EntryAt(slot)->slot_state) != static_cast<uint32_t>(from)) continue;
      if (!TryClaim(slot, from)) continue;
      FillClaimed(slot, shard, name, publisher);
      return slot;
    }
  }
  return absl::ResourceExhaustedError(absl::StrCat("all ", n, " directory slots are in use"));
}

void StreamDirectory::FillClaimed(uint32_t slot, uint32_t shard, std::string_view name,
                                  std::string_view publisher) {
  StreamEntry& e = *EntryAt(slot);
  publisher = publisher.substr(0, kPublisherMax);
  BeginWrite(e);
  StreamInfoImage& info = e.info;
  Put(info.stream_id, Shared(header_->next_stream_id).fetch_add(1) + 1);
  Put(info.shard, shard);
  Put(info.state, static_cast<uint32_t>(SlotState::kPublishing));
  Put(info.name_length, static_cast<uint16_t>(name.size()));
  Put(info.publisher_length, static_cast<uint8_t>(publisher.size()));
  Put(info.begin_time_ns, RealtimeNs());
  Put(info.end_time_ns, uint64_t{0});
  Put(info.codec, CodecInfo{});
  Put(info.configs_length, 0u);
  Put(info.config_count, 0u);
  Put(info.metadata_length, 0u);
  CopyToShared(info.name, name.data(), name.size());
  CopyToShared(info.publisher, publisher.data(), publisher.size());
  StoreRelaxed(e.frames, uint64_t{0});
  StoreRelaxed(e.bytes, uint64_t{0});
  StoreRelaxed(e.drops, uint64_t{0});
  StoreRelaxed(e.latest_keyframe, uint64_t{0});
  StoreRelaxed(e.last_dts, int64_t{0});
  EndWrite(e);
  StoreRelease(e.slot_state, static_cast<uint32_t>(SlotState::kPublishing));
}

uint32_t StreamDirectory::stream_id(uint32_t slot) const { return EntryAt(slot)->info.stream_id; }

bool StreamDirectory::SetMetadata(uint32_t slot, std::span<const uint8_t> metadata) {
  if (metadata.size() > kMetadataMax) return false;
  StreamEntry& e = *EntryAt(slot);
  BeginWrite(e);
  CopyToShared(BodyAt(slot)->metadata, metadata.data(), metadata.size());
  Put(e.info.metadata_length, static_cast<uint32_t>(metadata.size()));
  EndWrite(e);
  return true;
}

bool StreamDirectory::SetConfig(uint32_t slot, RecordType type, uint8_t track_id, uint8_t flags,
                                uint8_t packet_type, std::span<const uint8_t> body) {
  StreamEntry& e = *EntryAt(slot);
  StreamInfoImage& info = e.info;
  uint8_t* const area = BodyAt(slot)->configs;
  const size_t used = info.configs_length;  // only this thread writes the entry
  // Where the packet of this kind stands, if there is one.
  size_t at = 0;
  size_t old_size = 0;
  for (ConfigHeader h; at < used; at += ConfigRecordSize(h.length)) {
    std::memcpy(&h, area + at, sizeof(h));
    if (h.type == uint8_t(type) && h.track_id == track_id && h.packet_type == packet_type) {
      old_size = ConfigRecordSize(h.length);
      break;
    }
  }
  const size_t new_size = ConfigRecordSize(body.size());
  if (used - old_size + new_size > kConfigAreaSize) return false;
  // The packets after it move when its size changes.
  std::vector<uint8_t> after;
  if (old_size != 0 && old_size != new_size) {
    after.assign(area + at + old_size, area + used);
  }
  const ConfigHeader header{.type = uint8_t(type),
                            .track_id = track_id,
                            .flags = flags,
                            .packet_type = packet_type,
                            .length = static_cast<uint32_t>(body.size())};
  BeginWrite(e);
  CopyToShared(area + at, &header, sizeof(header));
  CopyToShared(area + at + sizeof(header), body.data(), body.size());
  if (!after.empty()) CopyToShared(area + at + new_size, after.data(), after.size());
  Put(info.configs_length, static_cast<uint32_t>(used - old_size + new_size));
  if (old_size == 0) Put(info.config_count, info.config_count + 1);
  EndWrite(e);
  return true;
}

void StreamDirectory::SetCodecInfo(uint32_t slot, const CodecInfo& codec) {
  StreamEntry& e = *EntryAt(slot);
  BeginWrite(e);
  Put(e.info.codec, codec);
  EndWrite(e);
}

void StreamDirectory::End(uint32_t slot) {
  StreamEntry& e = *EntryAt(slot);
  BeginWrite(e);
  Put(e.info.state, static_cast<uint32_t>(SlotState::kEnded));
  Put(e.info.end_time_ns, RealtimeNs());
  EndWrite(e);
  StoreRelease(e.slot_state, static_cast<uint32_t>(SlotState::kEnded));
}

// ---- Reader side ----

bool StreamDirectory::Read(uint32_t slot, StreamInfo* out, bool with_configs) const {
  if (slot >= header_->slot_count) return false;
  const StreamEntry& e = *EntryAt(slot);
  const StreamBody& body = *BodyAt(slot);
  StreamInfoImage image;
  std::vector<uint8_t> configs;
  for (int attempt = 0;; ++attempt) {
    uint32_t state = LoadAcquire(e.slot_state);
    if (state != static_cast<uint32_t>(SlotState::kPublishing) &&
        state != static_cast<uint32_t>(SlotState::kEnded)) {
      return false;
    }
    uint32_t before = LoadAcquire(e.seqlock);
    if (before % 2 == 0) {
      CopyFromShared(&image, &e.info, sizeof(image));
      if (with_configs) {
        // Only the bytes in use: a body's untouched pages stay untouched. The lengths
        // may be torn: the seqlock check below tells, and they are clamped meanwhile.
        out->metadata.resize(std::min<size_t>(image.metadata_length, kMetadataMax));
        CopyFromShared(out->metadata.data(), body.metadata, out->metadata.size());
        configs.resize(std::min<size_t>(image.configs_length, kConfigAreaSize));
        CopyFromShared(configs.data(), body.configs, configs.size());
      }
      internal::AcquireFence();
      if (LoadRelaxed(e.seqlock) == before) break;
    }
    if (attempt > 16) sched_yield();
  }
  out->slot = slot;
  out->stream_id = image.stream_id;
  out->shard = image.shard;
  out->state = static_cast<SlotState>(image.state);
  out->name.assign(image.name, std::min<size_t>(image.name_length, kStreamNameMax));
  out->publisher.assign(image.publisher, std::min<size_t>(image.publisher_length, kPublisherMax));
  out->begin_time_ns = image.begin_time_ns;
  out->end_time_ns = image.end_time_ns;
  out->codec = image.codec;
  out->config_count = image.config_count;
  out->configs.clear();
  if (with_configs) {
    ReadConfigs(configs, &out->configs);
  } else {
    out->metadata.clear();
  }
  out->frames = LoadAcquire(e.frames);
  out->bytes = LoadRelaxed(e.bytes);
  out->drops = LoadRelaxed(e.drops);
  uint64_t keyframe = LoadAcquire(e.latest_keyframe);
  out->latest_keyframe = keyframe == 0 ? std::nullopt : std::optional<uint64_t>(keyframe - 1);
  out->last_dts = LoadRelaxed(e.last_dts);
  return true;
}

std::vector<StreamInfo> StreamDirectory::List() const {
  std::vector<StreamInfo> streams;
  StreamInfo info;
  for (uint32_t slot = 0; slot < header_->slot_count; ++slot) {
    if (LoadRelaxed(EntryAt(slot)->slot_state) == static_cast<uint32_t>(SlotState::kFree)) {
      continue;
    }
    if (Read(slot, &info, /*with_configs=*/false)) streams.push_back(info);
  }
  return streams;
}

std::optional<StreamInfo> StreamDirectory::Find(std::string_view name) const {
  std::optional<uint32_t> best;
  uint32_t best_id = 0;
  bool best_live = false;
  for (const StreamInfo& s : List()) {
    if (s.name != name) continue;
    bool live = s.state == SlotState::kPublishing;
    if (!best || (live && !best_live) || (live == best_live && s.stream_id > best_id)) {
      best = s.slot;
      best_id = s.stream_id;
      best_live = live;
    }
  }
  StreamInfo info;
  if (!best || !Read(*best, &info)) return std::nullopt;
  return info;
}

}  // namespace uringest::ringbuf
