#include "engine/rtmp/chunk_writer.h"

#include <algorithm>
#include <cassert>

#include "media/byte_order.h"

namespace uringest::rtmp {

ChunkWriter::ChunkWriter(const ChunkWriterOptions& options)
    : options_(options), chunk_size_(options.chunk_size) {
  set_chunk_size(options.chunk_size);
}

void ChunkWriter::set_chunk_size(uint32_t size) {
  assert(size >= 1 && size <= kMaxSetChunkSize);
  chunk_size_ = std::min(size, kMaxEffectiveChunkSize);
}

void ChunkWriter::Write(const MessageHeader& header, std::span<const uint8_t> payload,
                        std::vector<uint8_t>* out) {
  Cursor cursor = Begin(header, payload);
  while (!WriteChunk(&cursor, out)) {
  }
}

ChunkWriter::StreamState* ChunkWriter::FindOrAddState(uint32_t csid, bool* added) {
  *added = false;
  for (StreamState& state : states_) {
    if (state.csid == csid) return &state;
  }
  *added = true;
  states_.push_back(StreamState{.csid = csid});
  return &states_.back();
}

ChunkWriter::Cursor ChunkWriter::Begin(const MessageHeader& header,
                                       std::span<const uint8_t> payload) {
  assert(header.chunk_stream_id >= kMinChunkStreamId &&
         header.chunk_stream_id <= kMaxChunkStreamId);
  assert(payload.size() <= kMaxMessageLength);
  Cursor cursor{.csid = header.chunk_stream_id, .header = header, .payload = payload};
  bool added;
  StreamState* state = FindOrAddState(header.chunk_stream_id, &added);
  const auto length = static_cast<uint32_t>(payload.size());
  const auto timestamp = static_cast<uint32_t>(header.timestamp);
  const uint32_t delta = timestamp - state->timestamp;
  if (added || !options_.compress_headers || header.stream_id != state->stream_id ||
      static_cast<int32_t>(delta) < 0) {
    cursor.fmt = 0;
    cursor.timestamp_field = timestamp;
  } else if (length != state->length || header.type != state->type) {
    cursor.fmt = 1;
    cursor.timestamp_field = delta;
  } else if (delta != state->timestamp_field) {
    cursor.fmt = 2;
    cursor.timestamp_field = delta;
  } else {
    cursor.fmt = 3;
    cursor.timestamp_field = delta;
  }
  cursor.extended = cursor.timestamp_field >= kExtendedTimestampMarker;
  *state = StreamState{.csid = header.chunk_stream_id,
                       .stream_id = header.stream_id,
                       .length = length,
                       .type = header.type,
                       .timestamp = timestamp,
                       .timestamp_field = cursor.timestamp_field};
  return cursor;
}

// A chunk header of format `fmt` for the cursor's message, with `timestamp_field` in
// its timestamp field: in the extended field from 0xFFFFFF up, which a fmt 3
// continuation chunk repeats only if options_.repeat_extended_timestamp says so.
void ChunkWriter::AppendHeader(const Cursor& cursor, uint8_t fmt, uint32_t timestamp_field,
                               std::vector<uint8_t>* out) const {
  const uint32_t csid = cursor.csid;
  if (csid <= kOneByteChunkStreamIdMax) {
    media::AppendU8(out, uint8_t(fmt << 6 | csid));
  } else if (csid <= kTwoByteChunkStreamIdMax) {
    media::AppendU8(out, uint8_t(fmt << 6 | kTwoByteBasicHeader));
    media::AppendU8(out, uint8_t(csid - kMultiByteChunkStreamIdBase));
  } else {
    media::AppendU8(out, uint8_t(fmt << 6 | kThreeByteBasicHeader));
    media::AppendU8(out, uint8_t((csid - kMultiByteChunkStreamIdBase) & 0xFF));
    media::AppendU8(out, uint8_t((csid - kMultiByteChunkStreamIdBase) >> 8));
  }
  const bool extended = timestamp_field >= kExtendedTimestampMarker;
  if (fmt <= 2) media::AppendU24(out, extended ? kExtendedTimestampMarker : timestamp_field);
  if (fmt <= 1) {
    media::AppendU24(out, static_cast<uint32_t>(cursor.payload.size()));
    media::AppendU8(out, static_cast<uint8_t>(cursor.header.type));
  }
  if (fmt == 0) media::AppendU32Le(out, cursor.header.stream_id);
  const bool fmt3_continuation = fmt == 3 && cursor.started;
  if (extended && (!fmt3_continuation || options_.repeat_extended_timestamp)) {
    media::AppendU32(out, timestamp_field);
  }
}

bool ChunkWriter::WriteChunk(Cursor* cursor, std::vector<uint8_t>* out) {
  AppendHeader(*cursor, cursor->started ? 3 : cursor->fmt, cursor->timestamp_field, out);
  return AppendPayload(cursor, out);
}

bool ChunkWriter::WriteRepeatedHeaderChunk(Cursor* cursor, uint8_t fmt, uint32_t timestamp_field,
                                           std::vector<uint8_t>* out) {
  assert(cursor->started && cursor->offset < cursor->payload.size() && fmt <= 2);
  AppendHeader(*cursor, fmt, timestamp_field, out);
  return AppendPayload(cursor, out);
}

// The cursor's next chunk of payload, after its header. Returns true once the message is
// complete.
bool ChunkWriter::AppendPayload(Cursor* cursor, std::vector<uint8_t>* out) {
  cursor->started = true;
  const size_t take = std::min<size_t>(chunk_size_, cursor->payload.size() - cursor->offset);
  media::AppendBytes(out, cursor->payload.subspan(cursor->offset, take));
  cursor->offset += take;
  if (cursor->offset < cursor->payload.size()) return false;
  if (cursor->header.type == MessageType::kSetChunkSize && cursor->payload.size() >= 4) {
    set_chunk_size(media::LoadU32(cursor->payload.data()));
  }
  return true;
}

}  // namespace uringest::rtmp
