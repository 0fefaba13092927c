#include "consumer/stat_sampler.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "ringbuf/clock.h"

namespace uringest::consumer {
namespace {

using ringbuf::LosslessState;
using ringbuf::RingHeader;
using ringbuf::ServerState;

// Fields the producer and readers update concurrently are read with atomic loads
// (FORMAT.md: "atomic" fields), through the read-only mapping.
template <typename T>
T Load(const T& field) {
  return __atomic_load_n(&field, __ATOMIC_ACQUIRE);
}

const char* StateName(ServerState state) {
  switch (state) {
    case ServerState::kAlive:
      return "live";
    case ServerState::kDead:
      return "dead";
    case ServerState::kRestarted:
      return "restarted";
    case ServerState::kClosed:
      return "closed";
  }
  return "unknown";
}

}  // namespace

absl::StatusOr<std::unique_ptr<StatSampler>> StatSampler::Open(std::string_view ring) {
  return Attach(ring, ringbuf::Reader::Open(ring));
}

absl::StatusOr<std::unique_ptr<StatSampler>> StatSampler::WaitForServer(
    std::string_view ring, const ringbuf::WaitOptions& wait) {
  return Attach(ring, ringbuf::Reader::WaitForServer(ring, wait));
}

absl::StatusOr<std::unique_ptr<StatSampler>> StatSampler::Attach(
    std::string_view ring, absl::StatusOr<std::unique_ptr<ringbuf::Reader>> reader) {
  if (!reader.ok()) {
    return absl::Status(
        reader.status().code(),
        absl::StrCat("ring '", std::string(ring), "': ", std::string(reader.status().message())));
  }
  auto sampler =
      std::unique_ptr<StatSampler>(new StatSampler(std::string(ring), *std::move(reader)));
  sampler->MapRings();
  return sampler;
}

// Only the header pages of each ring are ever touched: no prefault, read-only (but for
// the readers page, FORMAT.md "Permissions").
void StatSampler::MapRings() {
  const ringbuf::StreamDirectory& dir = reader_->directory();
  for (uint32_t shard = 0; shard < dir.header().shard_count; ++shard) {
    absl::StatusOr<ringbuf::ShmRegion> region =
        ringbuf::MapRingForReading(dir.RingPath(ring_, shard), /*prefault=*/false);
    if (!region.ok() || !ringbuf::CheckRingHeader(*region).ok()) continue;
    rings_.emplace_back(shard, *std::move(region));
  }
}

RingSample StatSampler::SampleRing(uint32_t shard, const ringbuf::ShmRegion& region) const {
  const auto& h = *reinterpret_cast<const RingHeader*>(region.data());
  RingSample ring{.shard = shard,
                  .capacity = h.capacity,
                  .tail = Load(h.tail),
                  .records = Load(h.records),
                  .lossless_waits = Load(h.lossless_waits),
                  .lossless_evictions = Load(h.lossless_evictions)};
  for (uint32_t i = 0; i < ringbuf::kLosslessSlots; ++i) {
    const ringbuf::LosslessSlot& slot = h.lossless[i];
    const auto state = static_cast<LosslessState>(Load(slot.state));
    if (state == LosslessState::kFree) continue;
    const uint64_t position = Load(slot.position);
    ring.readers.push_back(
        ReaderSample{.shard = shard,
                     .slot = i,
                     .pid = Load(slot.pid),
                     .evicted = state == LosslessState::kEvicted,
                     .lag_bytes = ring.tail > position ? ring.tail - position : 0});
  }
  return ring;
}

StatSample StatSampler::Sample() const {
  const ringbuf::StreamDirectory& dir = reader_->directory();
  StatSample sample{.ring = ring_,
                    .epoch = dir.epoch(),
                    .server_pid = dir.header().server_pid,
                    .shard_count = dir.header().shard_count,
                    .start_time_ns = dir.header().start_time_ns,
                    .server_state = StateName(reader_->CheckServer()),
                    .taken_ns = int64_t(ringbuf::MonotonicNs()),
                    .wall_ns = ringbuf::RealtimeNs()};
  for (ringbuf::StreamInfo& info : reader_->ListStreams()) {
    if (info.state != ringbuf::SlotState::kPublishing) continue;
    // An Enhanced RTMP stream (a FourCC codec, or more configurations than track 0's two
    // sequence headers) may have more tracks: their configurations say which, so read
    // those too (a listing leaves them out).
    if (info.codec.video_codec > 0xFF || info.codec.audio_codec > 0xFF || info.config_count > 2) {
      ringbuf::StreamInfo full;
      if (dir.Read(info.slot, &full) && full.stream_id == info.stream_id) info = std::move(full);
    }
    sample.streams.push_back(std::move(info));
  }
  std::sort(sample.streams.begin(), sample.streams.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  for (const auto& [shard, region] : rings_) sample.rings.push_back(SampleRing(shard, region));
  return sample;
}

}  // namespace uringest::consumer
