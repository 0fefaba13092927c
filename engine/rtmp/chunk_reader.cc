#include "engine/rtmp/chunk_reader.h"

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <cstring>
#include <string>

#include "absl/base/attributes.h"
#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "media/byte_order.h"

namespace uringest::rtmp {

// The header state of one chunk stream, kept for the connection's life: every fmt 1, 2
// and 3 header is read against it.
struct ChunkReader::ChunkStream {
  uint32_t csid = 0;
  // From the latest fmt 0/1/2 header (fmt 3 repeats them).
  uint32_t length = 0;
  MessageType type = MessageType::kAudio;
  uint32_t stream_id = 0;
  // The timestamp field of the latest fmt 0/1/2 header, resolved through the extended
  // timestamp: a delta for fmt 1/2 and, as ffmpeg and SRS read it, the absolute time
  // for fmt 0. A fmt 3 header that starts a new message adds it again.
  uint32_t delta = 0;
  bool extended = false;        // that field was 0xFFFFFF: fmt 3 chunks carry 4 bytes
  uint32_t extended_value = 0;  // the extended field of the current message
  uint32_t timestamp32 = 0;     // the current message's wire timestamp
  TimestampUnwrapper unwrapper;
  uint64_t timestamp = 0;  // the current message's unwrapped timestamp

  // The message being assembled: received bytes of length.
  uint32_t received = 0;
  uint8_t* buffer = nullptr;  // from the reader's allocator
  size_t capacity = 0;
};

namespace {

absl::Status PeerError(const absl::FormatSpec<uint32_t>& format, uint32_t a) {
  return absl::InvalidArgumentError(absl::StrFormat(format, a));
}

// The first assembly buffer of a chunk stream: small, so that a peer sending one byte on
// each of many chunk streams holds little; it doubles as bytes arrive.
constexpr size_t kMinAssemblyBuffer = 256;

// The length of the basic header that starts with byte `b0`.
size_t BasicHeaderLength(uint8_t b0) {
  const uint8_t low = b0 & kBasicHeaderIdMask;
  return low == kTwoByteBasicHeader ? 2 : low == kThreeByteBasicHeader ? 3 : 1;
}

// REQUIRES: BasicHeaderLength(p[0]) bytes at p.
uint32_t ChunkStreamId(const uint8_t* p) {
  const uint8_t low = p[0] & kBasicHeaderIdMask;
  if (low == kTwoByteBasicHeader) return kMultiByteChunkStreamIdBase + p[1];
  if (low == kThreeByteBasicHeader) return kMultiByteChunkStreamIdBase + p[1] + 256u * p[2];
  return low;
}

}  // namespace

ChunkReader::ChunkReader(const ChunkReaderOptions& options)
    : options_(options),
      allocator_(options.allocator != nullptr ? options.allocator : HeapBufferAllocator()) {}

ChunkReader::~ChunkReader() {
  for (const auto& cs : streams_) {
    if (cs->buffer != nullptr) allocator_->Free(cs->buffer, cs->capacity);
  }
}

void ChunkReader::ReleaseHandedOut() {
  if (release_pending_ != nullptr) {
    ReleaseBuffer(release_pending_);
    release_pending_ = nullptr;
  }
}

absl::StatusOr<ChunkReader::Result> ChunkReader::Read(std::span<const uint8_t> in,
                                                      Message* message) {
  if (failed_) return absl::FailedPreconditionError("chunk reader: used after an error");
  ReleaseHandedOut();
  Result total;
  for (;;) {
    if (replay_pos_ < replay_len_) {
      // Bytes read ahead that turned out to follow the header: they come before `in`.
      absl::StatusOr<Result> r = ReadBytes(
          std::span<const uint8_t>(replay_ + replay_pos_, replay_len_ - replay_pos_), message);
      if (!r.ok()) {
        failed_ = true;
        return r.status();
      }
      replay_pos_ += r->consumed;
      if (r->message_ready) return Result{total.consumed, true};
    }
    absl::StatusOr<Result> r = ReadBytes(in.subspan(total.consumed), message);
    if (!r.ok()) {
      failed_ = true;
      return r.status();
    }
    total.consumed += r->consumed;
    total.message_ready = r->message_ready;
    if (r->message_ready || replay_pos_ == replay_len_) return total;
  }
}

absl::StatusOr<ChunkReader::Result> ChunkReader::ReadBytes(std::span<const uint8_t> in,
                                                           Message* message) {
  size_t pos = 0;
  while (pos < in.size()) {
    if (state_ == State::kHeader) {
      // The header step: the chunk header at pos, or the rest of one split across reads.
      size_t n = header_len_ == 0 ? HeaderLength(in.data() + pos, in.size() - pos) : SIZE_MAX;
      if (n <= in.size() - pos) {
        if (absl::Status s = ParseHeader(in.data() + pos, &n); !s.ok()) return s;
        pos += n;
      } else {
        absl::StatusOr<bool> parsed = GatherHeader(in, &pos);
        if (!parsed.ok()) return parsed.status();
        if (!*parsed) return Result{pos, false};
      }
      if (chunk_remaining_ == 0) return CompleteCurrent({}, {}, pos, message);  // an empty message
      continue;
    }
    std::span<const uint8_t> payload;
    std::span<const std::span<const uint8_t>> pieces;
    absl::StatusOr<bool> complete = ReadPayload(in, &pos, &payload, &pieces);
    if (!complete.ok()) return complete.status();
    if (*complete) return CompleteCurrent(payload, pieces, pos, message);
  }
  return Result{pos, false};
}

// Gathers a header split across reads in header_, its length growing as its bytes say
// more, and parses it once complete. False: not complete within `in`, or parsed with
// bytes read ahead that are payload and header bytes, to be replayed before the rest of
// `in` (the extended timestamp looked for wasn't there).
absl::StatusOr<bool> ChunkReader::GatherHeader(std::span<const uint8_t> in, size_t* pos) {
  size_t n;
  for (n = HeaderLength(header_, header_len_); header_len_ < n;
       n = HeaderLength(header_, header_len_)) {
    if (*pos == in.size()) return false;
    const size_t take = std::min(n - header_len_, in.size() - *pos);
    std::memcpy(header_ + header_len_, in.data() + *pos, take);
    header_len_ += take;
    *pos += take;
  }
  const size_t gathered = header_len_;
  header_len_ = 0;
  if (absl::Status s = ParseHeader(header_, &n); !s.ok()) return s;
  if (n == gathered) return true;
  replay_len_ = gathered - n;
  replay_pos_ = 0;
  std::memcpy(replay_, header_ + n, replay_len_);
  return false;
}

// The payload step: takes what `in` holds of the current chunk's payload. True when that
// completes the message, whose payload is then *payload, and *pos is past its last byte:
// in place in `in` when the whole message is there, in one chunk or in several whose
// payloads are *pieces (see GatherRest), else its assembly buffer. Always inlined: it
// runs once per chunk (chunk_reader_benchmark measured the split without it 30% dearer).
ABSL_ATTRIBUTE_ALWAYS_INLINE inline absl::StatusOr<bool> ChunkReader::ReadPayload(
    std::span<const uint8_t> in, size_t* pos, std::span<const uint8_t>* payload,
    std::span<const std::span<const uint8_t>>* pieces) {
  ChunkStream* cs = current_;
  const auto take = static_cast<uint32_t>(std::min<size_t>(chunk_remaining_, in.size() - *pos));
  std::span<const uint8_t> bytes = in.subspan(*pos, take);
  *pos += take;
  if (cs->received == 0 && take == cs->length) {
    chunk_remaining_ = 0;
    *payload = bytes;
    return true;
  }
  if (cs->received == 0 && take == chunk_remaining_ && options_.gather_media &&
      (cs->type == MessageType::kAudio || cs->type == MessageType::kVideo) &&
      chunk_size_ >= kMinGatherChunkSize) {
    pieces_.assign(1, bytes);
    if (const size_t end = GatherRest(in, *pos); end > 0) {
      chunk_remaining_ = 0;
      *pos = end;
      *payload = bytes;
      *pieces = pieces_;
      return true;
    }
  }
  if (absl::Status s = AppendPayload(cs, bytes); !s.ok()) return s;
  chunk_remaining_ -= take;
  if (chunk_remaining_ > 0) return false;
  if (cs->received < cs->length) {
    state_ = State::kHeader;
    return false;
  }
  *payload = std::span<const uint8_t>(cs->buffer, cs->length);
  return true;
}

// Looks for the continuation chunks of the current message, whose first chunk's payload
// (pieces_[0]) ends at `pos`, all within `in`. Each must be a fmt 3 header of the same
// chunk stream, read as ParseHeader() would read it, followed by its whole payload. On
// success pieces_ holds every payload and the result is the offset just past the last
// one; 0 means the message must be assembled the usual way (a chunk not all there yet,
// another chunk stream's chunk in between, or an unsettled extended timestamp form).
size_t ChunkReader::GatherRest(std::span<const uint8_t> in, size_t pos) {
  const ChunkStream& cs = *current_;
  size_t extended = 0;
  if (cs.extended) {
    if (continuation_timestamp_ == ContinuationTimestamp::kUnknown) return 0;
    if (continuation_timestamp_ == ContinuationTimestamp::kPresent) {
      extended = kExtendedTimestampSize;
    }
  }
  size_t left = cs.length - pieces_[0].size();
  while (left > 0) {
    if (pos >= in.size() || in[pos] >> 6 != 3) return 0;
    const size_t header = BasicHeaderLength(in[pos]) + extended;
    const size_t n = std::min<size_t>(chunk_size_, left);
    if (in.size() - pos < header + n || ChunkStreamId(in.data() + pos) != cs.csid) return 0;
    pieces_.push_back(in.subspan(pos + header, n));
    pos += header + n;
    left -= n;
  }
  return pos;
}

// How many header bytes the chunk header starting at p needs, judged from the
// `available` bytes already there. Asking again with more bytes can only give more.
size_t ChunkReader::HeaderLength(const uint8_t* p, size_t available) const {
  if (available == 0) return 1;
  const uint8_t fmt = p[0] >> 6;
  const size_t basic = BasicHeaderLength(p[0]);
  if (available < basic) return basic;
  size_t length = basic + kMessageHeaderSize[fmt];
  if (available < length) return length;
  if (fmt < 3) {
    if (media::LoadU24(p + basic) == kExtendedTimestampMarker) length += kExtendedTimestampSize;
    return length;
  }
  const ChunkStream* cs = FindStream(ChunkStreamId(p));
  if (cs == nullptr || !cs->extended) return length;
  // A fmt 3 chunk that starts a message always repeats the extended timestamp; one that
  // continues a message does unless the peer is known to leave it out. While unknown,
  // look at the next 4 bytes (ParseHeader decides).
  if (cs->received == 0 || continuation_timestamp_ != ContinuationTimestamp::kAbsent) {
    length += kExtendedTimestampSize;
  }
  return length;
}

// Decodes the complete chunk header at p, of *length bytes as HeaderLength() said, and
// sets up the chunk's payload. It may shorten *length: see the fmt 3 case.
absl::Status ChunkReader::ParseHeader(const uint8_t* p, size_t* length) {
  const uint8_t fmt = p[0] >> 6;
  const size_t basic = BasicHeaderLength(p[0]);
  const uint32_t csid = ChunkStreamId(p);
  absl::StatusOr<ChunkStream*> found = FindOrAddStream(csid, fmt);
  if (!found.ok()) return found.status();
  ChunkStream* cs = *found;
  const uint8_t* field = p + basic;
  const uint8_t* extended = field + kMessageHeaderSize[fmt];
  if (cs->received == 0) {
    if (absl::Status s = StartMessage(cs, fmt, field, extended); !s.ok()) return s;
  } else if (fmt < 3) {
    if (absl::Status s = ContinueMessage(*cs, fmt, field); !s.ok()) return s;
  } else if (cs->extended && continuation_timestamp_ == ContinuationTimestamp::kUnknown) {
    // The first fmt 3 continuation chunk under an extended timestamp tells which form
    // the peer uses: the repeated field equals the one that opened the message (ffmpeg,
    // librtmp) or the message's absolute timestamp (SRS reads it so).
    const uint32_t repeated = media::LoadU32(extended);
    const bool present = repeated == cs->extended_value || repeated == cs->timestamp32;
    continuation_timestamp_ =
        present ? ContinuationTimestamp::kPresent : ContinuationTimestamp::kAbsent;
    if (!present) *length -= kExtendedTimestampSize;
  }
  current_ = cs;
  chunk_remaining_ = std::min(chunk_size_, cs->length - cs->received);
  state_ = State::kPayload;
  return absl::OkStatus();
}

// A header of any format on a chunk stream with nothing partial: it starts a message.
// REQUIRES: cs->received == 0.
absl::Status ChunkReader::StartMessage(ChunkStream* cs, uint8_t fmt, const uint8_t* field,
                                       const uint8_t* extended) {
  assert(cs->received == 0);
  if (fmt < 3) {
    const uint32_t ts_field = media::LoadU24(field);
    cs->extended = ts_field == kExtendedTimestampMarker;
    cs->delta = cs->extended ? media::LoadU32(extended) : ts_field;
    if (fmt <= 1) {
      cs->length = media::LoadU24(field + 3);
      cs->type = static_cast<MessageType>(field[6]);
    }
    if (fmt == 0) cs->stream_id = media::LoadU32Le(field + 7);
    cs->timestamp32 = fmt == 0 ? cs->delta : cs->timestamp32 + cs->delta;
  } else {
    if (cs->extended) cs->delta = media::LoadU32(extended);
    cs->timestamp32 += cs->delta;
  }
  cs->extended_value = cs->delta;
  cs->timestamp = cs->unwrapper.Next(cs->timestamp32);
  if (cs->length > options_.max_message_size) {
    return absl::InvalidArgumentError(
        absl::StrFormat("chunk stream %u: a message of %u bytes is over the limit of %u bytes",
                        cs->csid, cs->length, options_.max_message_size));
  }
  return absl::OkStatus();
}

// A fmt 0, 1 or 2 header on a chunk stream whose message is partial, where the spec
// wants fmt 3. Like nginx-rtmp, the message goes on if the header repeats what it carries
// of the message's length, type and message stream id. Its timestamp field (and extended
// timestamp) is ignored, as nginx-rtmp ignores it: the message keeps its first chunk's
// timestamp, and the chunk stream's delta and extended state stay as that chunk's header
// set them. A header that changes the message is an error naming the change.
// REQUIRES: cs.received > 0; fmt < 3.
absl::Status ChunkReader::ContinueMessage(const ChunkStream& cs, uint8_t fmt,
                                          const uint8_t* field) const {
  assert(cs.received > 0 && fmt < 3);
  std::string changes;
  auto compare = [&changes](const char* what, uint32_t was, uint32_t now) {
    if (was == now) return;
    absl::StrAppendFormat(&changes, "%s%s from %u to %u", changes.empty() ? "" : ", ", what, was,
                          now);
  };
  if (fmt <= 1) {
    compare("length", cs.length, media::LoadU24(field + 3));
    compare("type", static_cast<uint32_t>(cs.type), field[6]);
  }
  if (fmt == 0) compare("message stream id", cs.stream_id, media::LoadU32Le(field + 7));
  if (changes.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrFormat(
      "chunk stream %u: fmt %u header changes the message's %s while %u of %u bytes of it "
      "were still to come",
      cs.csid, fmt, changes, cs.length - cs.received, cs.length));
}

ChunkReader::ChunkStream* ChunkReader::FindStream(uint32_t csid) const {
  if (last_stream_ != nullptr && last_stream_->csid == csid) return last_stream_;
  for (const auto& cs : streams_) {
    if (cs->csid == csid) return last_stream_ = cs.get();
  }
  return nullptr;
}

absl::StatusOr<ChunkReader::ChunkStream*> ChunkReader::FindOrAddStream(uint32_t csid, uint8_t fmt) {
  if (ChunkStream* cs = FindStream(csid); cs != nullptr) return cs;
  // A chunk stream starts with fmt 0; librtmp starts its pings with fmt 1, which names
  // everything but the message stream (0). fmt 2 and 3 need a header to refer to.
  if (fmt >= 2) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "chunk stream %u: its first chunk has fmt %u, which needs a previous header", csid, fmt));
  }
  if (streams_.size() >= options_.max_chunk_streams) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("chunk stream %u: more than %u chunk streams on one connection", csid,
                        options_.max_chunk_streams));
  }
  auto cs = std::make_unique<ChunkStream>();
  cs->csid = csid;
  streams_.push_back(std::move(cs));
  return last_stream_ = streams_.back().get();
}

absl::Status ChunkReader::AppendPayload(ChunkStream* cs, std::span<const uint8_t> bytes) {
  const size_t needed = size_t{cs->received} + bytes.size();
  if (needed > cs->capacity) {
    // Grow with what arrived, never straight to the announced length.
    const size_t grown = std::min<size_t>(cs->length, std::max<size_t>(needed, cs->capacity * 2));
    size_t capacity;
    uint8_t* buffer = allocator_->Allocate(
        std::max<size_t>(grown, std::min<size_t>(cs->length, kMinAssemblyBuffer)), &capacity);
    if (buffer == nullptr) {
      return absl::ResourceExhaustedError(absl::StrFormat(
          "chunk stream %u: no memory left for partial messages (the shard's budget is spent)",
          cs->csid));
    }
    const size_t would_hold = buffered_bytes_ - cs->capacity + capacity;
    if (would_hold > options_.max_buffered_bytes) {
      allocator_->Free(buffer, capacity);
      return absl::ResourceExhaustedError(absl::StrFormat(
          "chunk stream %u: partial messages would hold %u bytes, over the limit of %u", cs->csid,
          would_hold, options_.max_buffered_bytes));
    }
    if (cs->received > 0) std::memcpy(buffer, cs->buffer, cs->received);
    if (cs->buffer != nullptr) allocator_->Free(cs->buffer, cs->capacity);
    buffered_bytes_ = would_hold;
    cs->buffer = buffer;
    cs->capacity = capacity;
  }
  std::memcpy(cs->buffer + cs->received, bytes.data(), bytes.size());
  cs->received += static_cast<uint32_t>(bytes.size());
  return absl::OkStatus();
}

absl::StatusOr<ChunkReader::Result> ChunkReader::CompleteCurrent(
    std::span<const uint8_t> payload, std::span<const std::span<const uint8_t>> pieces,
    size_t consumed, Message* message) {
  ChunkStream* cs = current_;
  state_ = State::kHeader;
  cs->received = 0;
  message->header.chunk_stream_id = cs->csid;
  message->header.type = cs->type;
  message->header.stream_id = cs->stream_id;
  message->header.timestamp = cs->timestamp;
  message->payload = payload;
  message->pieces = pieces;
  // A large buffer goes, and so does a command's or a data message's: those come
  // seldom, so an idle connection holds no assembly buffer. Audio, video and aggregates
  // keep theirs for the next frame.
  const bool media = cs->type == MessageType::kAudio || cs->type == MessageType::kVideo ||
                     cs->type == MessageType::kAggregate;
  if (cs->capacity > options_.retained_buffer_bytes || (cs->buffer != nullptr && !media)) {
    release_pending_ = cs;
  }
  if (cs->type == MessageType::kSetChunkSize || cs->type == MessageType::kAbort) {
    if (absl::Status s = ApplyControl(*message); !s.ok()) return s;
  }
  return Result{consumed, true};
}

absl::Status ChunkReader::ApplyControl(const Message& message) {
  if (message.payload.size() < 4) {
    return PeerError("protocol control message of type %u shorter than 4 bytes",
                     static_cast<uint32_t>(message.header.type));
  }
  const uint32_t value = media::LoadU32(message.payload.data());
  if (message.header.type == MessageType::kAbort) {
    if (ChunkStream* cs = FindStream(value); cs != nullptr) {
      cs->received = 0;  // its partial message is dropped; its header state stays
    }
    return absl::OkStatus();
  }
  if (value == 0 || value > kMaxSetChunkSize) {
    return PeerError("Set Chunk Size %u: the chunk size must be 1 to 2^31-1", value);
  }
  chunk_size_ = std::min(value, kMaxEffectiveChunkSize);
  return absl::OkStatus();
}

void ChunkReader::ReleaseBuffer(ChunkStream* cs) {
  if (cs->received > 0) return;  // a new message started in it meanwhile
  buffered_bytes_ -= cs->capacity;
  allocator_->Free(cs->buffer, cs->capacity);
  cs->buffer = nullptr;
  cs->capacity = 0;
}

}  // namespace uringest::rtmp
