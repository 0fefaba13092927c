#include "consumer/stream_tap.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace uringest::consumer {
namespace {

using ringbuf::RecordHeader;
using ringbuf::RecordType;
using ringbuf::RecordView;
using ringbuf::RingReader;
using ringbuf::ServerExit;
using ringbuf::SlotState;
using ringbuf::StreamInfo;

// Records one shard may hand out before the next shard's turn.
constexpr int kBatch = 256;
// With several shards an idle Poll() sleeps on one ring at a time, this long at most.
constexpr absl::Duration kShardWait = absl::Milliseconds(20);
// How often streams are checked against the directory, and the server's state.
constexpr absl::Duration kCheckInterval = absl::Milliseconds(500);

}  // namespace

StreamTap::StreamTap(std::unique_ptr<ringbuf::Reader> reader, const TapOptions& options,
                     TapHandler* handler)
    : reader_(std::move(reader)), options_(options), handler_(handler) {}

absl::StatusOr<std::unique_ptr<StreamTap>> StreamTap::Open(std::string_view ring_name,
                                                           std::unique_ptr<ringbuf::Reader> reader,
                                                           const TapOptions& options,
                                                           TapHandler* handler) {
  std::unique_ptr<StreamTap> tap(new StreamTap(std::move(reader), options, handler));
  const ringbuf::StreamDirectory& directory = tap->reader_->directory();
  const uint32_t count = directory.header().shard_count;
  tap->shards_.resize(count);
  for (uint32_t k = 0; k < count; ++k) {
    Shard& shard = tap->shards_[k];
    shard.index = k;
    absl::StatusOr<std::unique_ptr<RingReader>> ring =
        RingReader::Open(directory.RingPath(ring_name, k));
    if (!ring.ok()) return ring.status();
    if ((*ring)->epoch() != directory.epoch()) {
      return absl::FailedPreconditionError(
          absl::StrCat("ring ", k, " and the directory are from different server starts"));
    }
    shard.ring = *std::move(ring);
    shard.ring->SeekToTail();
    shard.opened_at = shard.ring->cursor();
    if (options.lossless) {
      if (absl::Status s = shard.ring->EnableLossless(); !s.ok()) return s;
      shard.lossless = true;
    }
  }
  tap->JoinPublishing();
  return tap;
}

size_t StreamTap::streams() const {
  size_t n = 0;
  for (const Shard& shard : shards_) n += shard.followed.size();
  return n;
}

// The accepted streams publishing now, each from its latest keyframe: every shard's
// cursor goes back to the earliest of its streams' keyframes. Nothing was handed out
// yet, so going back repeats nothing.
void StreamTap::JoinPublishing() {
  for (const StreamInfo& listed : reader_->ListStreams()) {
    if (listed.state != SlotState::kPublishing || !Accepts(listed.name)) continue;
    if (listed.shard >= shards_.size()) continue;
    Shard& shard = shards_[listed.shard];
    const std::optional<uint64_t> keyframe = listed.latest_keyframe;
    if (keyframe && shard.ring->Readable(*keyframe) && *keyframe < shard.ring->cursor()) {
      shard.ring->Seek(*keyframe);
    }
  }
  for (const StreamInfo& listed : reader_->ListStreams()) {
    if (listed.state != SlotState::kPublishing || !Accepts(listed.name)) continue;
    if (listed.shard >= shards_.size()) continue;
    StreamInfo info;
    if (!reader_->directory().Read(listed.slot, &info) || info.stream_id != listed.stream_id) {
      continue;  // it ended meanwhile
    }
    Join(&shards_[listed.shard], info);
  }
}

// Follows a stream already under way: the directory's copies first, then its frames
// from its latest keyframe (or, if that is gone, from its next one).
void StreamTap::Join(Shard* shard, const StreamInfo& info) {
  Followed f{.slot = info.slot, .start = shard->ring->cursor(), .await_keyframe = true};
  RecordHeader first;
  if (info.latest_keyframe && *info.latest_keyframe >= shard->ring->cursor() &&
      shard->ring->HeaderAt(*info.latest_keyframe, &first) && first.stream_id == info.stream_id) {
    f.start = *info.latest_keyframe;
    f.last_sequence = first.sequence - 1;
    f.counting = true;
  }
  handler_->OnStreamStart(info, /*joined=*/true);
  if (!info.metadata.empty()) {
    handler_->OnFrame(
        info.stream_id,
        {.type = RecordType::kData, .flags = ringbuf::kFlagKeyframe, .stream_id = info.stream_id},
        info.metadata, /*from_directory=*/true);
  }
  for (const ringbuf::ConfigPacket& c : info.configs) {
    handler_->OnFrame(info.stream_id,
                      {.type = c.type,
                       .flags = uint8_t(ringbuf::kFlagKeyframe | c.flags),
                       .stream_id = info.stream_id,
                       .track_id = c.track_id,
                       .packet_type = c.packet_type},
                      c.body, /*from_directory=*/true);
  }
  shard->followed[info.stream_id] = f;
}

TapResult StreamTap::Poll(absl::Duration timeout) {
  bool read = false;
  for (Shard& shard : shards_) read |= ReadShard(&shard);
  const absl::Time now = absl::Now();
  const bool due = now - checked_at_ >= kCheckInterval;
  // An idle tap looks at the server each time (its rings close when it goes); a busy
  // one, and the directory's word on each stream, every kCheckInterval.
  if ((!read || due) && reader_->CheckServerExit() != ServerExit::kNone) {
    EndAll(/*clean=*/false);
    return TapResult::kServerGone;
  }
  if (due) {
    checked_at_ = now;
    for (Shard& shard : shards_) CheckEnded(&shard);
  }
  if (!read && !shards_.empty()) {
    Shard& shard = shards_[next_wait_++ % shards_.size()];
    shard.ring->Wait(shards_.size() == 1 ? timeout : std::min(timeout, kShardWait));
  }
  return TapResult::kOk;
}

bool StreamTap::ReadShard(Shard* shard) {
  RecordView view;
  int n = 0;
  while (n < kBatch && shard->ring->Poll(&view)) {
    ++n;
    if (view.gap_before) {
      for (auto& [id, f] : shard->followed) f.await_keyframe = true;
    }
    auto it = shard->followed.find(view.header.stream_id);
    if (it == shard->followed.end()) {
      Meet(shard, view);
    } else {
      Deliver(shard, view, it->first, &it->second);
    }
  }
  CheckLossless(shard);
  return n > 0;
}

// A record of a stream not followed (yet): its begin record, or a stream under way that
// the tap did not know (it began between the listing and the seek, or the tap met it
// after a lap).
void StreamTap::Meet(Shard* shard, const RecordView& view) {
  const uint32_t id = view.header.stream_id;
  if (shard->ignored.contains(id)) {
    if (view.type() == RecordType::kStreamEnd) shard->ignored.erase(id);  // ids never come back
    return;
  }
  if (view.type() == RecordType::kStreamBegin) {
    std::string name(view.payload.begin(), view.payload.end());
    // A begin record before the tap opened is of a stream that had ended by then.
    if (!shard->ring->Validate(view) || view.position() < shard->opened_at || !Accepts(name)) {
      shard->ignored.insert(id);
      return;
    }
    std::optional<StreamInfo> info = reader_->FindStream(name);
    StreamInfo found = info && info->stream_id == id
                           ? *std::move(info)
                           : StreamInfo{.stream_id = id, .shard = shard->index, .name = name};
    handler_->OnStreamStart(found, /*joined=*/false);
    shard->followed[id] = Followed{.slot = found.slot,
                                   .last_sequence = view.header.sequence,
                                   .start = view.position(),
                                   .counting = true};
    return;
  }
  for (const StreamInfo& listed : reader_->ListStreams()) {
    if (listed.stream_id != id) continue;
    StreamInfo info;
    if (listed.state == SlotState::kPublishing && Accepts(listed.name) &&
        reader_->directory().Read(listed.slot, &info) && info.stream_id == id) {
      Join(shard, info);
      Followed& f = shard->followed[id];
      f.start = view.position();  // this record on
      Deliver(shard, view, id, &f);
      return;
    }
    break;
  }
  shard->ignored.insert(id);
}

void StreamTap::Deliver(Shard* shard, const RecordView& view, uint32_t id, Followed* f) {
  const uint64_t sequence = view.header.sequence;
  if (view.position() < f->start || (f->counting && sequence <= f->last_sequence)) return;
  const uint64_t gap = f->counting ? sequence - f->last_sequence - 1 : 0;
  f->counting = true;
  f->last_sequence = sequence;
  if (gap > 0) {
    lost_ += gap;
    f->await_keyframe = true;
    handler_->OnLoss(id, gap);
  }
  const RecordType type = view.type();
  if (type == RecordType::kStreamEnd) {
    shard->followed.erase(id);
    handler_->OnStreamEnd(id, /*clean=*/true);
    return;
  }
  if (type != RecordType::kAudio && type != RecordType::kVideo && type != RecordType::kData) return;
  if (f->await_keyframe && type == RecordType::kVideo) {
    const uint8_t flags = view.header.flags;
    if (!ringbuf::StandsAlone(flags, view.header.packet_type)) return;
    if ((flags & ringbuf::kFlagKeyframe) != 0 && (flags & ringbuf::kFlagSequenceHeader) == 0) {
      f->await_keyframe = false;
    }
  }
  payload_.resize(view.payload.size());
  if (!shard->ring->CopyPayload(view, payload_)) {  // overwritten while copied
    ++lost_;
    f->await_keyframe = true;
    handler_->OnLoss(id, 1);
    return;
  }
  handler_->OnFrame(id, ringbuf::ToRecordMeta(view.header), payload_, /*from_directory=*/false);
}

// A stream whose end record the tap never read (lost in a lap) ends once the directory
// says it ended and the cursor has passed the ring's tail of that moment: the server
// writes the end record before it marks the entry ended, so the record lay behind that
// tail. The frames the tap never saw are lost.
void StreamTap::CheckEnded(Shard* shard) {
  std::vector<uint32_t> ended;
  for (auto& [id, f] : shard->followed) {
    StreamInfo now;
    const bool same =
        reader_->directory().Read(f.slot, &now, /*with_configs=*/false) && now.stream_id == id;
    if (same && now.state != SlotState::kEnded) continue;
    if (!f.ended_by) f.ended_by = shard->ring->Tail();
    if (shard->ring->cursor() < *f.ended_by) continue;
    // The end record itself is the last of the stream's `frames` records.
    if (same && f.counting && now.frames > f.last_sequence + 1) {
      const uint64_t gap = now.frames - f.last_sequence - 1;
      lost_ += gap;
      handler_->OnLoss(id, gap);
    }
    ended.push_back(id);
  }
  for (uint32_t id : ended) {
    shard->followed.erase(id);
    handler_->OnStreamEnd(id, /*clean=*/true);
  }
}

void StreamTap::CheckLossless(Shard* shard) {
  if (!options_.lossless) return;
  shard->ring->CheckEviction();
  if (shard->ring->evictions() > shard->evictions) {
    shard->evictions = shard->ring->evictions();
    shard->lossless = false;
    handler_->OnEvicted(shard->index);
  }
  if (!shard->lossless && shard->ring->Lag() < shard->ring->capacity() / 4 &&
      shard->ring->EnableLossless().ok()) {
    shard->lossless = true;
    handler_->OnLossless(shard->index);
  }
}

void StreamTap::EndAll(bool clean) {
  for (Shard& shard : shards_) {
    std::vector<uint32_t> ids;
    for (const auto& [id, f] : shard.followed) ids.push_back(id);
    shard.followed.clear();
    for (uint32_t id : ids) handler_->OnStreamEnd(id, clean);
  }
}

}  // namespace uringest::consumer
