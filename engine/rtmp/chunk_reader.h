// chunk_reader.h: reassembles RTMP messages from the chunk stream (RTMP spec 5.3).
//
// The reader is a resumable state machine over the basic header, the message header,
// the extended timestamp and the payload. It takes whatever bytes arrived, one byte or
// megabytes at a time, looks at each byte once, and keeps the header state of every
// chunk stream for the whole connection, so a message whose header or payload is split
// across reads, or whose chunks interleave with other chunk streams', comes out whole.
// It applies Set Chunk Size and Abort itself, the moment they complete.
//
// What it accepts beyond the letter of the spec, as nginx-rtmp does, because encoders
// send it: a chunk stream whose first chunk is fmt 1 (librtmp; its message stream id is
// then 0); a fmt 3 continuation chunk with or without the extended timestamp (see
// continuation_timestamp()); and, in the middle of a message, a fmt 0, 1 or 2 header where
// the spec wants fmt 3, if it repeats the message's length, type and (fmt 0) message
// stream id. That header continues the message; its timestamp is ignored (the message
// keeps its first chunk's, and later fmt 3 headers add the delta that chunk set). Errors:
// a header that changes the length, type or message stream id of a partial message, and
// a chunk stream that starts with fmt 2 or 3.
//
//   ChunkReader reader(options);
//   while (!in.empty() || reader.has_pending()) {
//     absl::StatusOr<ChunkReader::Result> r = reader.Read(in, &message);
//     if (!r.ok()) return r.status();         // close the connection, log the reason
//     in = in.subspan(r->consumed);
//     if (r->message_ready) Handle(message);  // valid until the next Read()
//   }
//
// Memory: a message's payload is assembled in a buffer of its own chunk stream that
// grows with the bytes that actually arrived (never the announced length up front, and
// never the chunk size), starting at 256 bytes. A message that arrives whole inside one input
// span is handed out in place, with no copy: a one-chunk message as one span, a longer audio
// or video message (with gather_media) as the payloads of its chunks. Only audio and video keep
// their buffer for the next message; a command's or data message's buffer is freed once handed
// out (see ReleaseHandedOut()). Options cap the message size,
// the number of chunk streams and the bytes held in partial messages, so a peer can't make a
// connection grow without bound.

#ifndef URINGEST_ENGINE_RTMP_CHUNK_READER_H_
#define URINGEST_ENGINE_RTMP_CHUNK_READER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"
#include "engine/rtmp/buffer_allocator.h"
#include "engine/rtmp/message.h"
#include "engine/rtmp/rtmp_format.h"
#include "engine/rtmp/timestamp_unwrapper.h"

namespace uringest::rtmp {

struct ChunkReaderOptions {
  // Largest message accepted (the wire allows 0xFFFFFF).
  uint32_t max_message_size = 16 << 20;
  // Most chunk streams one connection may use. Each costs about 80 bytes of header state
  // for the connection's life, plus its assembly buffer.
  uint32_t max_chunk_streams = 64;
  // Most bytes of assembly buffers (partial messages, and buffers kept for the next
  // message of their chunk stream) across all chunk streams at once.
  size_t max_buffered_bytes = 64 << 20;
  // An assembly buffer larger than this is freed once its message is handed out, so a
  // chunk stream that carried one huge message doesn't keep it for the connection's life.
  size_t retained_buffer_bytes = 4 << 20;
  // Where assembly buffers come from; nullptr: the heap. Must outlive the reader.
  BufferAllocator* allocator = nullptr;
  // Hand out an audio or video message whose chunks all lie in the input span as pieces
  // (Message::pieces) instead of copying them together. Only for callers that read
  // pieces; and only while the chunk size is at least kMinGatherChunkSize, so a message
  // is never more than a few pieces.
  bool gather_media = false;
};

inline constexpr uint32_t kMinGatherChunkSize = 1024;

class ChunkReader {
 public:
  struct Result {
    size_t consumed = 0;         // bytes of `in` used; the rest must be fed again
    bool message_ready = false;  // `*message` holds a complete message
  };

  explicit ChunkReader(const ChunkReaderOptions& options = {});
  ChunkReader(const ChunkReader&) = delete;
  ChunkReader& operator=(const ChunkReader&) = delete;
  ~ChunkReader();

  // Parses bytes from `in` until a message completes or `in` is used up. When a message
  // completes, Read() stops right after its last byte and fills `*message`; its payload
  // points either into `in` (so it is valid while `in` is) or into the reader's buffer,
  // valid until the next call to Read(). Set Chunk Size and Abort messages are applied
  // before they are returned; the caller need not act on them.
  //
  // An error names the chunk stream and the rule the peer broke. After an error the
  // reader is unusable: the connection must be closed.
  [[nodiscard]] absl::StatusOr<Result> Read(std::span<const uint8_t> in, Message* message);

  // Frees the buffer of the message Read() handed out last if it is not to be kept (a
  // command's, a data message's, or one over retained_buffer_bytes); Read() does it too.
  // Call it once done with that message when no Read() may follow for a while, so an idle
  // connection holds no buffer. The message's payload is invalid afterwards.
  void ReleaseHandedOut();

  // The chunk size the peer announced (after clamping to 0xFFFFFF), 128 initially.
  uint32_t chunk_size() const { return chunk_size_; }
  // Chunk streams with header state so far.
  size_t chunk_stream_count() const { return streams_.size(); }
  // Bytes of assembly buffers held now (see max_buffered_bytes).
  size_t buffered_bytes() const { return buffered_bytes_; }
  // Bytes the reader read ahead and still has to parse (see ContinuationTimestamp): call
  // Read() again, with empty input if need be, until this is false.
  bool has_pending() const { return replay_pos_ < replay_len_; }
  // Whether the peer repeats the extended timestamp on fmt 3 continuation chunks, as the
  // spec says; kUnknown until a continuation chunk with an extended timestamp arrives.
  // Telling needs the 4 bytes after that chunk's header: until they arrive, a last chunk
  // of fewer than 4 payload bytes waits for the next bytes of the stream (this happens
  // once per connection, and only with timestamps past 4.6 hours).
  enum class ContinuationTimestamp : uint8_t { kUnknown, kPresent, kAbsent };
  ContinuationTimestamp continuation_timestamp() const { return continuation_timestamp_; }

 private:
  struct ChunkStream;
  enum class State : uint8_t { kHeader, kPayload };

  // Read() without the replayed bytes: the header and the payload step in turn.
  absl::StatusOr<Result> ReadBytes(std::span<const uint8_t> in, Message* message);
  absl::StatusOr<bool> GatherHeader(std::span<const uint8_t> in, size_t* pos);
  absl::StatusOr<bool> ReadPayload(std::span<const uint8_t> in, size_t* pos,
                                   std::span<const uint8_t>* payload,
                                   std::span<const std::span<const uint8_t>>* pieces);
  size_t HeaderLength(const uint8_t* p, size_t available) const;
  absl::Status ParseHeader(const uint8_t* p, size_t* length);
  absl::Status StartMessage(ChunkStream* cs, uint8_t fmt, const uint8_t* field,
                            const uint8_t* extended);
  absl::Status ContinueMessage(const ChunkStream& cs, uint8_t fmt, const uint8_t* field) const;
  ChunkStream* FindStream(uint32_t csid) const;
  absl::StatusOr<ChunkStream*> FindOrAddStream(uint32_t csid, uint8_t fmt);
  absl::Status AppendPayload(ChunkStream* cs, std::span<const uint8_t> bytes);
  size_t GatherRest(std::span<const uint8_t> in, size_t pos);
  // Hands out the current chunk stream's message: `payload`, or when not empty `pieces`
  // (of which `payload` is the first), with `consumed` bytes of the Read() input used.
  absl::StatusOr<Result> CompleteCurrent(std::span<const uint8_t> payload,
                                         std::span<const std::span<const uint8_t>> pieces,
                                         size_t consumed, Message* message);
  absl::Status ApplyControl(const Message& message);
  void ReleaseBuffer(ChunkStream* cs);

  ChunkReaderOptions options_;
  BufferAllocator* const allocator_;
  uint32_t chunk_size_ = kDefaultChunkSize;
  State state_ = State::kHeader;
  ContinuationTimestamp continuation_timestamp_ = ContinuationTimestamp::kUnknown;
  size_t buffered_bytes_ = 0;
  ChunkStream* current_ = nullptr;  // the chunk stream whose payload is being read
  uint32_t chunk_remaining_ = 0;    // payload bytes left in the current chunk
  // A header split across reads is gathered here; `replay_` holds bytes that were read
  // ahead to tell whether a continuation chunk carries an extended timestamp, and turned
  // out to belong to the payload and the next header.
  uint8_t header_[kChunkHeaderMax];
  uint8_t header_len_ = 0;
  uint8_t replay_[kExtendedTimestampSize];
  uint8_t replay_len_ = 0;
  uint8_t replay_pos_ = 0;
  absl::InlinedVector<std::unique_ptr<ChunkStream>, 4> streams_;
  // The pieces of a gathered message, valid until the next Read(). On the heap, not
  // inline: a connection that sends no media doesn't pay for it; one that does allocates
  // it at its first gathered message and keeps it.
  std::vector<std::span<const uint8_t>> pieces_;
  mutable ChunkStream* last_stream_ = nullptr;  // FindStream()'s cache
  // A buffer not to be kept (see ReleaseHandedOut()), freed at the next Read() or
  // ReleaseHandedOut() (its message is in the caller's hands until then).
  ChunkStream* release_pending_ = nullptr;
  bool failed_ = false;
};

}  // namespace uringest::rtmp

#endif  // URINGEST_ENGINE_RTMP_CHUNK_READER_H_
