#include "ringbuf/uringest_ring.h"

#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/time/clock.h"
#include "ringbuf/internal/shared_access.h"
#include "ringbuf/reader.h"

struct uringest_ring_reader {
  std::unique_ptr<uringest::ringbuf::Reader> reader;
  uringest::ringbuf::Frame last;
  bool has_last = false;
};

namespace uringest::ringbuf {
namespace {

int ToErrno(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kOk:
      return 0;
    case absl::StatusCode::kNotFound:
      return -ENOENT;
    case absl::StatusCode::kInvalidArgument:
      return -EINVAL;
    case absl::StatusCode::kResourceExhausted:
      return -EBUSY;
    case absl::StatusCode::kUnavailable:
      return -EAGAIN;
    case absl::StatusCode::kPermissionDenied:
      return -EACCES;
    case absl::StatusCode::kFailedPrecondition:
      return -ESTALE;
    default:
      return -EIO;
  }
}

void CopyString(const std::string& from, char* to, size_t capacity) {
  size_t n = std::min(from.size(), capacity - 1);
  std::memcpy(to, from.data(), n);
  to[n] = '\0';
}

void FillInfo(const StreamInfo& s, uringest_ring_stream_info* out) {
  *out = {};
  out->stream_id = s.stream_id;
  out->shard = s.shard;
  out->publishing = s.state == SlotState::kPublishing;
  CopyString(s.name, out->name, sizeof(out->name));
  CopyString(s.publisher, out->publisher, sizeof(out->publisher));
  out->frames = s.frames;
  out->bytes = s.bytes;
  out->drops = s.drops;
  out->video_codec = s.codec.video_codec;
  out->audio_codec = s.codec.audio_codec;
  out->width = s.codec.width;
  out->height = s.codec.height;
  out->frame_rate_milli = s.codec.frame_rate_milli;
  out->audio_sample_rate = s.codec.audio_sample_rate;
}

// The one place a Frame becomes the C API's layout.
void FillFrame(const Frame& f, uringest_ring_frame* out) {
  const RecordMeta& m = f.meta;
  *out = {};
  out->type = static_cast<uint8_t>(m.type);
  out->flags = m.flags;
  out->from_directory = f.from_directory;
  out->track_id = m.track_id;
  out->stream_id = m.stream_id;
  out->sequence = m.sequence;
  out->dts = m.dts;
  out->pts = m.pts;
  out->ingest_time_ns = m.ingest_time_ns;
  out->payload = f.payload.data();
  out->payload_length = static_cast<uint32_t>(f.payload.size());
  out->lost_before = f.lost_before;
  out->codec = m.codec;
  out->packet_type = m.packet_type;
  out->time_offset_ns = m.time_offset_ns;
}

WaitOptions WaitFor(int timeout_ms) {
  return {.deadline = timeout_ms < 0 ? absl::InfiniteFuture()
                                     : absl::Now() + absl::Milliseconds(timeout_ms)};
}

int ToExitCode(ServerExit exit) {
  switch (exit) {
    case ServerExit::kNone:
      return 0;
    case ServerExit::kDied:
      return URINGEST_RING_SERVER_DIED;
    case ServerExit::kShutDown:
      return URINGEST_RING_SERVER_SHUT_DOWN;
  }
  return URINGEST_RING_SERVER_DIED;
}

}  // namespace
}  // namespace uringest::ringbuf

namespace rb = uringest::ringbuf;

extern "C" {

int uringest_ring_open(const char* name, uringest_ring_reader** out) {
  if (name == nullptr || out == nullptr) return -EINVAL;
  absl::StatusOr<std::unique_ptr<rb::Reader>> reader = rb::Reader::Open(name);
  if (!reader.ok()) return rb::ToErrno(reader.status());
  *out = new uringest_ring_reader{*std::move(reader), {}, false};
  return 0;
}

void uringest_ring_close(uringest_ring_reader* reader) { delete reader; }

int uringest_ring_list(uringest_ring_reader* reader, uringest_ring_stream_info* out,
                       size_t capacity) {
  std::vector<rb::StreamInfo> streams = reader->reader->ListStreams();
  for (size_t i = 0; i < streams.size() && i < capacity; ++i) rb::FillInfo(streams[i], &out[i]);
  return static_cast<int>(streams.size());
}

int uringest_ring_follow(uringest_ring_reader* reader, const char* stream, int from, int lossless) {
  if (stream == nullptr || from < 0 || from > 2) return -EINVAL;
  rb::FollowOptions options{.start = static_cast<rb::StartAt>(from), .lossless = lossless != 0};
  reader->has_last = false;
  return rb::ToErrno(reader->reader->Follow(stream, options));
}

int uringest_ring_next(uringest_ring_reader* reader, uringest_ring_frame* frame, int timeout_ms) {
  reader->has_last = false;
  switch (reader->reader->Next(&reader->last, absl::Milliseconds(timeout_ms))) {
    case rb::ReadResult::kFrame:
      reader->has_last = true;
      rb::FillFrame(reader->last, frame);
      return URINGEST_RING_FRAME;
    case rb::ReadResult::kTimeout:
      return URINGEST_RING_TIMEOUT;
    case rb::ReadResult::kStreamEnded:
      return URINGEST_RING_STREAM_ENDED;
    case rb::ReadResult::kEvicted:
      return URINGEST_RING_EVICTED;
    case rb::ReadResult::kServerGone:
      return URINGEST_RING_SERVER_GONE;
  }
  return -EIO;
}

int uringest_ring_check(uringest_ring_reader* reader) {
  return reader->has_last && reader->reader->Check(reader->last) ? 1 : 0;
}

int64_t uringest_ring_copy(uringest_ring_reader* reader, uint8_t* buf, size_t capacity) {
  if (!reader->has_last) return -EINVAL;
  std::span<const uint8_t> payload = reader->last.payload;
  if (payload.size() > capacity) return -ENOSPC;
  uringest::ringbuf::internal::CopyFromShared(buf, payload.data(), payload.size());
  if (!reader->reader->Check(reader->last)) return -ESTALE;
  return static_cast<int64_t>(payload.size());
}

uint64_t uringest_ring_lost(const uringest_ring_reader* reader) { return reader->reader->lost(); }

uint64_t uringest_ring_lag(const uringest_ring_reader* reader) {
  return reader->reader->lag_bytes();
}

int uringest_ring_server_state(const uringest_ring_reader* reader) {
  switch (reader->reader->CheckServer()) {
    case rb::ServerState::kAlive:
      return URINGEST_RING_SERVER_ALIVE;
    case rb::ServerState::kDead:
      return URINGEST_RING_SERVER_DEAD;
    case rb::ServerState::kRestarted:
      return URINGEST_RING_SERVER_RESTARTED;
    case rb::ServerState::kClosed:
      return URINGEST_RING_SERVER_CLOSED;
  }
  return URINGEST_RING_SERVER_DEAD;
}

int uringest_ring_wait_open(const char* name, int timeout_ms, uringest_ring_reader** out) {
  if (name == nullptr || out == nullptr) return -EINVAL;
  absl::StatusOr<std::unique_ptr<rb::Reader>> reader =
      rb::Reader::WaitForServer(name, rb::WaitFor(timeout_ms));
  if (absl::IsDeadlineExceeded(reader.status())) return -ETIMEDOUT;
  if (!reader.ok()) return rb::ToErrno(reader.status());
  *out = new uringest_ring_reader{*std::move(reader), {}, false};
  return 0;
}

int uringest_ring_wait_stream(uringest_ring_reader* reader, const char* stream, int timeout_ms) {
  if (stream == nullptr) return -EINVAL;
  rb::StreamInfo info;
  switch (reader->reader->WaitForStream(stream, rb::WaitFor(timeout_ms), &info)) {
    case rb::WaitResult::kReady:
      return URINGEST_RING_STREAM_READY;
    case rb::WaitResult::kTimeout:
    case rb::WaitResult::kStopped:
      return URINGEST_RING_TIMEOUT;
    case rb::WaitResult::kServerDied:
      return URINGEST_RING_SERVER_DIED;
    case rb::WaitResult::kServerShutDown:
      return URINGEST_RING_SERVER_SHUT_DOWN;
  }
  return -EIO;
}

uint32_t uringest_ring_shard_count(const uringest_ring_reader* reader) {
  return reader->reader->directory().header().shard_count;
}

int uringest_ring_server_exit(const uringest_ring_reader* reader) {
  return rb::ToExitCode(reader->reader->CheckServerExit());
}

}  // extern "C"
