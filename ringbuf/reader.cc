#include "ringbuf/reader.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "ringbuf/internal/directory_probe.h"
#include "ringbuf/internal/shared_access.h"
#include "ringbuf/server_lock.h"
#include "ringbuf/shm.h"

namespace uringest::ringbuf {
namespace {

constexpr absl::Duration kIdleCheckInterval = absl::Milliseconds(100);
constexpr absl::Duration kServerProbeInterval = absl::Milliseconds(100);
// WaitForStream scans the stream table at least this often, whatever the claim counter
// says: a claim seen on the counter before its slot was published shows up by then.
constexpr absl::Duration kFullScanInterval = absl::Seconds(1);

// Ends a wait at its deadline or stop flag, else sleeps one kWaitInterval (at most until
// the deadline) and returns nullopt.
std::optional<WaitResult> Pause(const WaitOptions& wait) {
  if (wait.stop != nullptr && wait.stop->load()) return WaitResult::kStopped;
  const absl::Duration left = wait.deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return WaitResult::kTimeout;
  absl::SleepFor(std::min(left, kWaitInterval));
  return std::nullopt;
}

std::optional<WaitResult> AsWaitResult(ServerExit exit) {
  switch (exit) {
    case ServerExit::kNone:
      return std::nullopt;
    case ServerExit::kDied:
      return WaitResult::kServerDied;
    case ServerExit::kShutDown:
      return WaitResult::kServerShutDown;
  }
  return WaitResult::kServerDied;
}

bool Wanted(const std::optional<StreamInfo>& info, uint64_t begun_since_ns) {
  return info && (info->state == SlotState::kPublishing ||
                  (begun_since_ns != 0 && info->begin_time_ns >= begun_since_ns));
}

// Open() failures that a server still being created or replaced explains.
bool Transient(const absl::Status& s) { return absl::IsNotFound(s) || absl::IsUnavailable(s); }

Frame DirectoryFrame(const RecordMeta& meta, std::span<const uint8_t> payload) {
  Frame f;
  f.meta = meta;
  f.payload = payload;
  f.from_directory = true;
  return f;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Reader>> Reader::Open(std::string_view name,
                                                     const ReaderOptions& options) {
  if (absl::Status s = ValidateRingName(name); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<StreamDirectory>> dir =
      StreamDirectory::Open(ObjectPath(kShmDir, name, kDirectorySuffix));
  if (!dir.ok()) return dir.status();
  return std::unique_ptr<Reader>(new Reader(std::string(name), options, *std::move(dir)));
}

absl::StatusOr<std::unique_ptr<Reader>> Reader::WaitForServer(std::string_view name,
                                                              const WaitOptions& wait,
                                                              const ReaderOptions& options) {
  if (absl::Status s = ValidateRingName(name); !s.ok()) return s;
  std::optional<internal::FileId> gone;
  for (;;) {
    absl::StatusOr<internal::DirectoryLook> look =
        internal::LookAtDirectory(name, options.dead_after, gone);
    if (!look.ok()) return look.status();
    if (look->sight == internal::ServerSight::kGone) gone = look->file;
    if (look->sight == internal::ServerSight::kLive) {
      absl::StatusOr<std::unique_ptr<Reader>> reader = Open(name, options);
      if (reader.ok() || !Transient(reader.status())) return reader;
    }
    if (std::optional<WaitResult> end = Pause(wait)) {
      if (*end == WaitResult::kStopped) return absl::CancelledError("stopped");
      return absl::DeadlineExceededError(
          absl::StrCat("no live server for ring '", std::string(name), "' in time"));
    }
  }
}

Reader::Reader(std::string name, const ReaderOptions& options,
               std::unique_ptr<StreamDirectory> directory)
    : name_(std::move(name)), options_(options), directory_(std::move(directory)) {}

absl::Status Reader::Follow(std::string_view name, const FollowOptions& options) {
  std::optional<StreamInfo> info = directory_->Find(name);
  if (!info) {
    return absl::NotFoundError(absl::StrCat("no stream '", std::string(name), "' in ring ", name_));
  }
  follower_.reset();
  absl::StatusOr<std::unique_ptr<RingReader>> ring =
      RingReader::Open(directory_->RingPath(name_, info->shard));
  if (!ring.ok()) return ring.status();
  if ((*ring)->epoch() != directory_->epoch()) {
    return absl::FailedPreconditionError("ring and directory are from different server starts");
  }
  ring_ = *std::move(ring);
  followed_ = *std::move(info);
  queued_.clear();
  ended_ = false;
  evictions_seen_ = 0;
  Seek(options.start);
  follower_ = std::make_unique<StreamFollower>(ring_.get(), followed_.stream_id,
                                               options.start != StartAt::kNow);
  // Starting at the keyframe: its sequence number makes a loss before the first frame
  // (the producer laps the reader before it reads) count exactly.
  RecordHeader first;
  if (options.start == StartAt::kLatestKeyframe && followed_.latest_keyframe &&
      ring_->cursor() == *followed_.latest_keyframe && ring_->HeaderAt(ring_->cursor(), &first) &&
      first.stream_id == followed_.stream_id) {
    follower_->ExpectFirst(first.sequence);
  }
  if (options.lossless) {
    if (absl::Status s = ring_->EnableLossless(); !s.ok()) return s;
  }
  if (options.sequence_headers) QueueDirectoryFrames();
  return absl::OkStatus();
}

void Reader::Seek(StartAt start) {
  switch (start) {
    case StartAt::kLatestKeyframe:
      if (followed_.latest_keyframe && ring_->Readable(*followed_.latest_keyframe)) {
        ring_->Seek(*followed_.latest_keyframe);
      } else {
        ring_->SeekToOldest();  // then the first keyframe from there
      }
      break;
    case StartAt::kNow:
      ring_->SeekToTail();
      break;
    case StartAt::kOldest:
      ring_->SeekToOldest();
      break;
  }
}

// onMetaData first, then the configuration packets in the order the publisher sent them,
// as an FLV file has them.
void Reader::QueueDirectoryFrames() {
  const uint32_t stream_id = followed_.stream_id;
  if (!followed_.metadata.empty()) {
    queued_.push_back(
        DirectoryFrame({.type = RecordType::kData, .flags = kFlagKeyframe, .stream_id = stream_id},
                       followed_.metadata));
  }
  for (const ConfigPacket& c : followed_.configs) {
    queued_.push_back(DirectoryFrame({.type = c.type,
                                      .flags = static_cast<uint8_t>(kFlagKeyframe | c.flags),
                                      .stream_id = stream_id,
                                      .track_id = c.track_id,
                                      .packet_type = c.packet_type},
                                     c.body));
  }
}

bool Reader::NextFromRing(Frame* frame) {
  RecordView& view = frame->view;
  uint64_t lost_before = 0;
  if (!follower_->Poll(&view, &lost_before)) return false;
  frame->meta = ToRecordMeta(view.header);
  frame->payload = view.payload;
  frame->lost_before = lost_before;
  frame->from_directory = false;
  return true;
}

bool Reader::StreamEndedInDirectory() const {
  StreamInfo now;
  return !directory_->Read(followed_.slot, &now, /*with_configs=*/false) ||
         now.stream_id != followed_.stream_id || now.state == SlotState::kEnded;
}

ReadResult Reader::Next(Frame* frame, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    if (!queued_.empty()) {
      *frame = queued_.front();
      queued_.pop_front();
      return ReadResult::kFrame;
    }
    if (follower_ == nullptr || ended_) return ReadResult::kStreamEnded;
    ring_->CheckEviction();
    if (ring_->evictions() > evictions_seen_) {
      evictions_seen_ = ring_->evictions();
      return ReadResult::kEvicted;
    }
    if (NextFromRing(frame)) {
      ended_ = follower_->ended();
      return ReadResult::kFrame;
    }
    if (CheckServer() != ServerState::kAlive) return ReadResult::kServerGone;
    // The server marks a stream ended only after its last record is committed: look at
    // the directory first, so that a tail read after it holds every record.
    if (StreamEndedInDirectory() && ring_->Lag() == 0) {
      ended_ = true;
      return ReadResult::kStreamEnded;
    }
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return ReadResult::kTimeout;
    ring_->Wait(std::min(left, kIdleCheckInterval));
  }
}

bool Reader::Check(const Frame& frame) {
  return frame.from_directory || follower_ == nullptr || follower_->Validate(frame.view);
}

bool Reader::CopyOut(const Frame& frame, std::vector<uint8_t>* out) {
  out->resize(frame.payload.size());
  internal::CopyFromShared(out->data(), frame.payload.data(), frame.payload.size());
  return Check(frame);
}

ServerState Reader::CheckServer() const {
  bool closed = directory_->state() == DirectoryState::kClosed ||
                (ring_ != nullptr && ring_->state() == RingState::kClosed);
  int64_t age = ring_ != nullptr ? ring_->HeartbeatAgeNs() : directory_->HeartbeatAgeNs();
  if (!closed && age <= absl::ToInt64Nanoseconds(options_.dead_after)) return ServerState::kAlive;
  const absl::Time now = absl::Now();
  // A busy server stays busy for a while: spare it a probe on every empty poll.
  if (probed_state_ == ServerState::kAlive && now - probed_at_ < kServerProbeInterval) {
    return ServerState::kAlive;
  }
  probed_at_ = now;
  // Has a new server taken the name? Its directory has another epoch.
  absl::StatusOr<std::unique_ptr<StreamDirectory>> current =
      StreamDirectory::Open(ObjectPath(kShmDir, name_, kDirectorySuffix));
  if (current.ok() && (*current)->epoch() != epoch()) {
    probed_state_ = ServerState::kRestarted;
  } else if (closed) {
    probed_state_ = ServerState::kClosed;
  } else if (age <= absl::ToInt64Nanoseconds(options_.hung_after) && ServerLock::IsHeld(name_)) {
    probed_state_ = ServerState::kAlive;  // busy, not dead: it holds its lock
  } else {
    probed_state_ = ServerState::kDead;
  }
  return probed_state_;
}

ServerExit Reader::CheckServerExit() const {
  if (CheckServer() == ServerState::kAlive) return ServerExit::kNone;
  return directory_->state() == DirectoryState::kClosed ? ServerExit::kShutDown : ServerExit::kDied;
}

WaitResult Reader::WaitForStream(std::string_view name, const WaitOptions& wait, StreamInfo* info,
                                 uint64_t begun_since_ns) const {
  std::optional<uint32_t> seen_claims;
  bool scan_again = false;
  absl::Time scanned_at = absl::InfinitePast();
  for (;;) {
    const uint32_t claims = internal::LoadAcquire(directory_->header().next_stream_id);
    const bool claimed = claims != seen_claims;
    if (claimed || scan_again || absl::Now() - scanned_at >= kFullScanInterval) {
      scan_again = claimed;  // a claim in progress is published by the next look
      seen_claims = claims;
      scanned_at = absl::Now();
      std::optional<StreamInfo> found = FindStream(name);
      if (Wanted(found, begun_since_ns)) {
        *info = *std::move(found);
        return WaitResult::kReady;
      }
    }
    if (std::optional<WaitResult> gone = AsWaitResult(CheckServerExit())) return *gone;
    if (std::optional<WaitResult> end = Pause(wait)) return *end;
  }
}

WaitResult Reader::WatchServer(const WaitOptions& wait) const {
  for (;;) {
    if (std::optional<WaitResult> gone = AsWaitResult(CheckServerExit())) return *gone;
    if (std::optional<WaitResult> end = Pause(wait)) return *end;
  }
}

}  // namespace uringest::ringbuf
