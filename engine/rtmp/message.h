// message.h: an RTMP message as the chunk layer hands it up and takes it down.
//
// A Message is a view: its payload points either into the bytes the caller fed to the
// ChunkReader (a message that arrived whole in one read) or into the reader's
// per-chunk-stream assembly buffer. Whoever hands out a Message states how long it lives.
//
//   MessageHeader h{.chunk_stream_id = kCommandChunkStream,
//                   .type = MessageType::kCommandAmf0, .stream_id = 0};
//   writer.Write(h, payload, &out);

#ifndef URINGEST_ENGINE_RTMP_MESSAGE_H_
#define URINGEST_ENGINE_RTMP_MESSAGE_H_

#include <cstddef>
#include <cstdint>
#include <span>

#include "engine/rtmp/rtmp_format.h"

namespace uringest::rtmp {

struct MessageHeader {
  uint32_t chunk_stream_id = 0;
  // The type id as sent; values outside MessageType are possible and mean "unknown".
  MessageType type = MessageType::kAudio;
  uint32_t stream_id = 0;  // message stream id (little-endian on the wire)
  // Milliseconds. On the receive side the 32-bit wire timestamps unwrapped into 64-bit
  // time, so a stream outlives the 49.7-day wrap; on the send side the low 32 bits go
  // out.
  uint64_t timestamp = 0;
};

// The bytes in `pieces`, all together.
inline size_t SizeOf(std::span<const std::span<const uint8_t>> pieces) {
  size_t size = 0;
  for (std::span<const uint8_t> piece : pieces) size += piece.size();
  return size;
}

struct Message {
  MessageHeader header;
  // The payload. An audio or video message whose chunks all arrived in one read may come
  // in `pieces` instead (the chunks' payloads in order, without the chunk headers between
  // them, so it is not copied); then `payload` is the first piece. Readers that gather
  // say so (ChunkReaderOptions::gather_media); every other message is one span.
  std::span<const uint8_t> payload;
  std::span<const std::span<const uint8_t>> pieces;

  size_t payload_size() const { return pieces.empty() ? payload.size() : SizeOf(pieces); }
};

// Where the protocol layers above the chunk stream send their messages. The connection
// core implements it with a ChunkWriter and its output queue.
class MessageSender {
 public:
  virtual ~MessageSender() = default;
  // Queues one message. `payload` is copied before the call returns.
  virtual void Send(const MessageHeader& header, std::span<const uint8_t> payload) = 0;
};

}  // namespace uringest::rtmp

#endif  // URINGEST_ENGINE_RTMP_MESSAGE_H_
