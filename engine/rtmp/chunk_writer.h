// chunk_writer.h: splits RTMP messages into chunks (RTMP spec 5.3), for the server's own
// messages and for publishers built on the core (the load harness, a relay client).
//
// Headers are compressed as encoders do it: fmt 0 for a chunk stream's first message, a
// new message stream or a step back in time; fmt 1 when the length or type changes; fmt
// 2 when only the timestamp delta changes; fmt 3 when nothing does. Timestamps of
// 0xFFFFFF and over go in the extended field, which fmt 3 chunks repeat.
//
//   ChunkWriter writer;
//   std::vector<uint8_t> out;
//   writer.Write(header, payload, &out);  // every chunk of the message
//
//   // Interleaving chunk by chunk, as a publisher sending audio inside video does:
//   ChunkWriter::Cursor video = writer.Begin(video_header, video_payload);
//   ChunkWriter::Cursor audio = writer.Begin(audio_header, audio_payload);
//   writer.WriteChunk(&video, &out);
//   writer.WriteChunk(&audio, &out);
//   while (!writer.WriteChunk(&video, &out)) {}

#ifndef URINGEST_ENGINE_RTMP_CHUNK_WRITER_H_
#define URINGEST_ENGINE_RTMP_CHUNK_WRITER_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "engine/rtmp/message.h"
#include "engine/rtmp/rtmp_format.h"

namespace uringest::rtmp {

struct ChunkWriterOptions {
  uint32_t chunk_size = kDefaultChunkSize;
  // false: every message starts with a fmt 0 header.
  bool compress_headers = true;
  // false: fmt 3 continuation chunks leave the extended timestamp out, as some encoders
  // do (for testing readers that must cope).
  bool repeat_extended_timestamp = true;
};

class ChunkWriter {
 public:
  // One message on its way out, chunk by chunk. It points into the payload passed to
  // Begin(), which must stay valid until the message is written.
  struct Cursor {
    uint32_t csid = 0;
    uint8_t fmt = 0;
    MessageHeader header;
    uint32_t timestamp_field = 0;  // absolute (fmt 0) or delta (fmt 1, 2, 3)
    bool extended = false;
    std::span<const uint8_t> payload;
    size_t offset = 0;
    bool started = false;
  };

  explicit ChunkWriter(const ChunkWriterOptions& options = {});
  ChunkWriter(const ChunkWriter&) = delete;
  ChunkWriter& operator=(const ChunkWriter&) = delete;

  // Appends every chunk of one message to *out. A Set Chunk Size message takes effect
  // for everything written after it.
  // REQUIRES: payload.size() <= kMaxMessageLength; no message of this chunk stream begun
  // and unfinished.
  void Write(const MessageHeader& header, std::span<const uint8_t> payload,
             std::vector<uint8_t>* out);

  // Starts a message to be written one chunk at a time with WriteChunk(). Messages on
  // different chunk streams may be interleaved; on one chunk stream they go in order.
  // REQUIRES: as for Write().
  Cursor Begin(const MessageHeader& header, std::span<const uint8_t> payload);
  // Appends the cursor's next chunk to *out. Returns true once the message is complete.
  bool WriteChunk(Cursor* cursor, std::vector<uint8_t>* out);
  // As WriteChunk(), but the continuation chunk gets a fmt 0, 1 or 2 header where the
  // spec says fmt 3, as some encoders do (for testing readers that must cope): it repeats
  // the message's length, type and stream id, and carries `timestamp_field` (in the
  // extended field from 0xFFFFFF up), which a reader must ignore. The chunk stream's
  // header state stays as the message's first chunk set it.
  // REQUIRES: the cursor's first chunk was written, and not its last; fmt <= 2.
  bool WriteRepeatedHeaderChunk(Cursor* cursor, uint8_t fmt, uint32_t timestamp_field,
                                std::vector<uint8_t>* out);

  uint32_t chunk_size() const { return chunk_size_; }
  // Changes the chunk size without sending Set Chunk Size (the peer must know it).
  // REQUIRES: 1 <= size <= kMaxSetChunkSize.
  void set_chunk_size(uint32_t size);

 private:
  struct StreamState {
    uint32_t csid = 0;
    uint32_t stream_id = 0;
    uint32_t length = 0;
    MessageType type = MessageType::kAudio;
    uint32_t timestamp = 0;        // low 32 bits of the last message's timestamp
    uint32_t timestamp_field = 0;  // what a fmt 3 header would add
  };

  StreamState* FindOrAddState(uint32_t csid, bool* added);
  void AppendHeader(const Cursor& cursor, uint8_t fmt, uint32_t timestamp_field,
                    std::vector<uint8_t>* out) const;
  bool AppendPayload(Cursor* cursor, std::vector<uint8_t>* out);

  ChunkWriterOptions options_;
  uint32_t chunk_size_;
  absl::InlinedVector<StreamState, 4> states_;
};

}  // namespace uringest::rtmp

#endif  // URINGEST_ENGINE_RTMP_CHUNK_WRITER_H_
