#include "consumer/stream_cat.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "consumer/flv_tags.h"
#include "ringbuf/clock.h"
#include "ringbuf/reader.h"

namespace uringest::consumer {
namespace {

using ringbuf::Frame;
using ringbuf::Reader;
using ringbuf::ReadResult;
using ringbuf::RecordMeta;
using ringbuf::RecordType;
using ringbuf::ServerState;
using ringbuf::SlotState;
using ringbuf::StartAt;
using ringbuf::StreamInfo;
using ringbuf::WaitResult;

constexpr absl::Duration kNextTimeout = absl::Milliseconds(100);

std::string Text(const absl::Status& s) { return std::string(s.message()); }

const char* Describe(ServerState state) {
  switch (state) {
    case ServerState::kAlive:
      return "alive";
    case ServerState::kDead:
      return "the server died (no heartbeat, and its lock is free or it hung)";
    case ServerState::kRestarted:
      return "the server restarted (the ring has a new epoch)";
    case ServerState::kClosed:
      return "the server shut down";
  }
  return "the server is gone";
}

bool IsMedia(RecordType type) { return type == RecordType::kAudio || type == RecordType::kVideo; }

// One run of CatStream(): the reader, the writer, and what was decided on the way.
class Cat {
 public:
  Cat(const CatOptions& options, ByteSink* sink) : options_(options), writer_(sink) {}

  absl::Status Run();
  CatSummary summary() const {
    return {.frames = writer_.tags(),
            .bytes = writer_.bytes(),
            .lost = lost(),
            .server_shut_down = server_shut_down_};
  }

 private:
  absl::Status OpenReader(const ringbuf::WaitOptions& wait);
  absl::StatusOr<StartAt> FindStreamNow();
  absl::StatusOr<std::optional<StartAt>> FindStream();
  std::optional<StartAt> Acceptable(const std::optional<StreamInfo>& info) const;
  absl::Status Follow(StartAt start);
  absl::Status HandleFrame(const Frame& frame);
  uint64_t MissedBeforeFirst(const Frame& frame) const;
  absl::Status WriteFlvHeader(RecordType first);
  absl::Status Write(const RecordMeta& meta, std::span<uint8_t> body);
  absl::Status WriteBody(const RecordMeta& meta, std::span<uint8_t> body, bool config);
  absl::Status Finish();
  bool TakeStandIn(RecordType type, uint8_t track_id, uint8_t packet_type,
                   std::span<const uint8_t> body);
  void DropStandIns(RecordType type, uint8_t track_id);
  uint64_t lost() const { return (reader_ ? reader_->lost() : 0) + missed_at_start_; }
  bool Stopped() const { return options_.stop != nullptr && options_.stop->load(); }
  void Log(const std::string& line) const {
    if (options_.log) options_.log(line);
  }

  const CatOptions& options_;
  FlvWriter writer_;
  std::unique_ptr<Reader> reader_;
  const uint64_t started_ns_ = ringbuf::RealtimeNs();
  bool server_shut_down_ = false;  // cleanly, while we waited for the stream
  bool from_start_ = false;        // the stream began after we started waiting
  bool first_from_ring_ = true;    // no ring record of the stream seen yet
  bool await_keyframe_ = false;    // from "now": drop pictures until a keyframe
  uint64_t missed_at_start_ = 0;
  std::vector<uint8_t> scratch_;  // the frame being written
  FlvTagShaper shaper_;
  std::vector<std::vector<uint8_t>> held_data_;  // onMetaData before the FLV header
  // The frame in hand was replayed from the directory.
  bool from_directory_ = false;
  // Configurations and onMetaData written from the directory, which the ring may bring
  // again: until the first frame of its track, the ring's identical copy of one is the
  // one it stood in for, and is not written twice. Anything else is written as sent.
  struct StandIn {
    RecordType type;
    uint8_t track_id;
    uint8_t packet_type;
    std::vector<uint8_t> body;
  };
  std::vector<StandIn> stand_ins_;
};

// A stream worth following: publishing, or (when waiting) one that began and already
// ended after we started, which the ring still holds whole.
std::optional<StartAt> Cat::Acceptable(const std::optional<StreamInfo>& info) const {
  if (!info) return std::nullopt;
  const bool new_since_start = options_.wait && info->begin_time_ns >= started_ns_;
  if (new_since_start) return StartAt::kOldest;
  if (info->state != SlotState::kPublishing) return std::nullopt;
  return options_.start == CatStart::kNow ? StartAt::kNow : StartAt::kLatestKeyframe;
}

// Opens the ring: at once, or (waiting) once a live server owns it.
absl::Status Cat::OpenReader(const ringbuf::WaitOptions& wait) {
  absl::StatusOr<std::unique_ptr<Reader>> reader =
      options_.wait ? Reader::WaitForServer(options_.ring, wait, options_.reader)
                    : Reader::Open(options_.ring, options_.reader);
  if (!reader.ok()) {
    if (options_.wait) return reader.status();  // Cancelled, DeadlineExceeded, EACCES
    return absl::Status(reader.status().code(),
                        absl::StrCat("ring '", options_.ring, "': ", Text(reader.status())));
  }
  reader_ = *std::move(reader);
  return absl::OkStatus();
}

// Without waiting: the stream is publishing now, or it is an error.
absl::StatusOr<StartAt> Cat::FindStreamNow() {
  std::optional<StreamInfo> info = reader_->FindStream(options_.stream);
  if (std::optional<StartAt> start = Acceptable(info)) return *start;
  if (ServerState state = reader_->CheckServer(); state != ServerState::kAlive) {
    return absl::UnavailableError(Describe(state));
  }
  if (info) {
    return absl::FailedPreconditionError(
        absl::StrCat("stream '", options_.stream, "' has ended (--wait waits for the next)"));
  }
  return absl::NotFoundError(
      absl::StrCat("no stream '", options_.stream, "' in ring '", options_.ring, "'"));
}

// Where to start following, or nullopt if the server shut down cleanly while we waited.
absl::StatusOr<std::optional<StartAt>> Cat::FindStream() {
  const ringbuf::WaitOptions wait{.deadline = absl::Now() + options_.wait_timeout,
                                  .stop = options_.stop};
  if (absl::Status s = OpenReader(wait); !s.ok()) return s;
  if (!options_.wait) return FindStreamNow();
  StreamInfo info;
  switch (reader_->WaitForStream(options_.stream, wait, &info, started_ns_)) {
    case WaitResult::kReady:
      return Acceptable(info).value_or(StartAt::kOldest);
    case WaitResult::kTimeout:
      return absl::DeadlineExceededError(
          absl::StrCat("stream '", options_.stream, "' did not start in time"));
    case WaitResult::kStopped:
      return absl::CancelledError("stopped");
    case WaitResult::kServerDied:
      return absl::UnavailableError(
          absl::StrCat("the server died while waiting for stream '", options_.stream, "'"));
    case WaitResult::kServerShutDown:
      return std::nullopt;
  }
  return absl::InternalError("unknown wait result");
}

absl::Status Cat::Follow(StartAt start) {
  from_start_ = start == StartAt::kOldest;
  await_keyframe_ = start == StartAt::kNow;
  ringbuf::FollowOptions follow{.start = start, .lossless = options_.lossless};
  if (absl::Status s = reader_->Follow(options_.stream, follow); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("following '", options_.stream, "': ", Text(s)));
  }
  Log(absl::StrCat("following ", options_.stream, " (publisher ", reader_->followed().publisher,
                   ", shard ", reader_->followed().shard, ")"));
  return absl::OkStatus();
}

// The header's track flags: what the directory knows by now, plus the frame in hand.
absl::Status Cat::WriteFlvHeader(RecordType first) {
  StreamInfo info = reader_->followed();
  StreamInfo now;
  if (reader_->directory().Read(info.slot, &now) && now.stream_id == info.stream_id) {
    info = std::move(now);
  }
  auto has_config = [&](RecordType type) {
    return std::any_of(info.configs.begin(), info.configs.end(),
                       [type](const ringbuf::ConfigPacket& c) { return c.type == type; });
  };
  FlvTracks tracks{
      .audio = first == RecordType::kAudio || info.codec.audio_codec != 0 ||
               has_config(RecordType::kAudio),
      .video = first == RecordType::kVideo || info.codec.video_codec != 0 ||
               has_config(RecordType::kVideo),
  };
  if (absl::Status s = writer_.WriteHeader(tracks); !s.ok()) return s;
  for (const std::vector<uint8_t>& data : held_data_) {
    if (absl::Status s = writer_.WriteTag(RecordType::kData, 0, data, false); !s.ok()) return s;
  }
  held_data_.clear();
  return absl::OkStatus();
}

bool Cat::TakeStandIn(RecordType type, uint8_t track_id, uint8_t packet_type,
                      std::span<const uint8_t> body) {
  if (from_directory_) {
    stand_ins_.push_back({type, track_id, packet_type, {body.begin(), body.end()}});
    return false;
  }
  for (auto it = stand_ins_.begin(); it != stand_ins_.end(); ++it) {
    if (it->type == type && it->track_id == track_id && it->packet_type == packet_type &&
        std::equal(body.begin(), body.end(), it->body.begin(), it->body.end())) {
      stand_ins_.erase(it);
      return true;
    }
  }
  return false;
}

// A frame of the track has come: a configuration of it from now on is a new one.
void Cat::DropStandIns(RecordType type, uint8_t track_id) {
  if (stand_ins_.empty()) return;
  std::erase_if(stand_ins_, [&](const StandIn& s) {
    return s.type == RecordType::kData || (s.type == type && s.track_id == track_id);
  });
}

absl::Status Cat::Write(const RecordMeta& meta, std::span<uint8_t> body) {
  if (meta.type == RecordType::kData && TakeStandIn(RecordType::kData, 0, 0, body)) {
    return absl::OkStatus();
  }
  if (!writer_.header_written()) {
    if (!IsMedia(meta.type)) {
      held_data_.emplace_back(body.begin(), body.end());
      return absl::OkStatus();
    }
    if (absl::Status s = WriteFlvHeader(meta.type); !s.ok()) return s;
  }
  const uint64_t left_out = shaper_.left_out();
  absl::Status s = shaper_.Shape(
      meta, body, [&](const RecordMeta& tag, std::span<uint8_t> tag_body, bool config) {
        return WriteBody(tag, tag_body, config);
      });
  if (shaper_.left_out() > left_out && left_out == 0) {
    Log("left out MPEG2TSSequenceStart packets: FLV readers (ffmpeg) take them for frames");
  }
  return s;
}

// One tag (FlvTagShaper's). A configuration the directory stood in for is not written
// twice (see stream_cat.h).
absl::Status Cat::WriteBody(const RecordMeta& meta, std::span<uint8_t> body, bool config) {
  if (config && TakeStandIn(meta.type, meta.track_id, meta.packet_type, body)) {
    return absl::OkStatus();
  }
  if (!config && meta.type != RecordType::kData) DropStandIns(meta.type, meta.track_id);
  return writer_.WriteTag(meta.type, meta.dts, body, config);
}

// A stream followed from its start begins at the oldest record, where the follower can't
// know the first sequence number: its first record is the stream-begin (sequence 1), so
// a loss before the first frame is found here. (From a keyframe the follower knows the
// keyframe's sequence number and counts such a loss itself.)
uint64_t Cat::MissedBeforeFirst(const Frame& frame) const {
  return from_start_ ? frame.meta.sequence - 1 : 0;
}

absl::Status Cat::HandleFrame(const Frame& frame) {
  if (!frame.from_directory && first_from_ring_) {
    first_from_ring_ = false;
    missed_at_start_ = MissedBeforeFirst(frame);
    if (missed_at_start_ > 0) {
      Log(absl::StrCat("lost the first ", missed_at_start_, " frames: the ring overwrote them"));
    }
  }
  if (frame.lost_before > 0) {
    Log(absl::StrCat("lost ", frame.lost_before, " frames before dts ", frame.meta.dts,
                     " ms (the server overwrote them); video resumes at the next keyframe"));
  }
  const RecordMeta& meta = frame.meta;
  if (meta.type != RecordType::kData && !IsMedia(meta.type)) return absl::OkStatus();
  if (await_keyframe_ && meta.type == RecordType::kVideo) {
    if (!ringbuf::StandsAlone(meta.flags, meta.packet_type)) return absl::OkStatus();
    const uint8_t picture = meta.flags & (ringbuf::kFlagKeyframe | ringbuf::kFlagSequenceHeader);
    if (picture == ringbuf::kFlagKeyframe) await_keyframe_ = false;
  }
  from_directory_ = frame.from_directory;
  if (!reader_->CopyOut(frame, &scratch_)) {
    Log(absl::StrCat("lost the frame at dts ", meta.dts, " ms while copying it (reader too slow)"));
    return absl::OkStatus();
  }
  return Write(meta, scratch_);
}

absl::Status Cat::Finish() {
  if (!writer_.header_written()) {
    // A stream without audio or video: still a valid (empty) FLV file.
    if (absl::Status s = writer_.WriteHeader({}); !s.ok()) return s;
    for (const std::vector<uint8_t>& data : held_data_) {
      if (absl::Status s = writer_.WriteTag(RecordType::kData, 0, data, false); !s.ok()) return s;
    }
  }
  if (lost() > 0) {
    return absl::DataLossError(absl::StrCat(lost(), " frames of '", options_.stream,
                                            "' were lost (overwritten before they were read)"));
  }
  return absl::OkStatus();
}

absl::Status Cat::Run() {
  absl::StatusOr<std::optional<StartAt>> start = FindStream();
  if (!start.ok()) return start.status();
  if (!start->has_value()) {
    server_shut_down_ = true;
    return absl::OkStatus();
  }
  if (absl::Status s = Follow(**start); !s.ok()) return s;
  Frame frame;
  for (;;) {
    switch (reader_->Next(&frame, kNextTimeout)) {
      case ReadResult::kFrame:
        if (absl::Status s = HandleFrame(frame); !s.ok()) return s;
        break;
      case ReadResult::kTimeout:
        if (Stopped()) return absl::CancelledError("stopped");
        break;
      case ReadResult::kEvicted:
        Log("the server evicted this lossless reader (too slow): frames may be lost from now on");
        break;
      case ReadResult::kStreamEnded:
        return Finish();
      case ReadResult::kServerGone:
        return absl::UnavailableError(absl::StrCat(Describe(reader_->CheckServer()),
                                                   " before stream '", options_.stream, "' ended"));
    }
  }
}

}  // namespace

absl::Status CatStream(const CatOptions& options, ByteSink* sink, CatSummary* summary) {
  Cat cat(options, sink);
  absl::Status status = cat.Run();
  if (summary != nullptr) *summary = cat.summary();
  return status;
}

}  // namespace uringest::consumer
