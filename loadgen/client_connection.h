// client_connection.h: one RTMP publisher, client side, with no I/O: the plain handshake
// (C0/C1, C2 = an echo of S1), connect, createStream, publish, waiting for
// NetStream.Publish.Start, then media through rtmp::ChunkWriter. Server replies are
// parsed with rtmp::ChunkReader and amf0; pings are answered and bytes acknowledged.
// The caller moves bytes: Receive() what arrived, send what NextSend() gives.
//
//   ClientConnection conn({.app = "live", .stream = "load7", .tc_url = url});
//   conn.Start(seed);                          // queues C0 + C1
//   send(conn.NextSend()); conn.Sent(n);       // one send in flight at a time
//   if (absl::Status s = conn.Receive(bytes); !s.ok()) close;  // s names the refusal
//   if (conn.live()) conn.SendMedia(frame, &stamp);
//
// Output: messages are appended to a queue while the previous batch is in flight, and
// NextSend() swaps the two, so the bytes handed out stay put until Sent() covers them.
// Both buffers keep their capacity: after the first frames nothing is allocated.
//
// Thread safety: none; a connection lives on its fleet's thread.

#ifndef URINGEST_LOADGEN_CLIENT_CONNECTION_H_
#define URINGEST_LOADGEN_CLIENT_CONNECTION_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/rtmp/chunk_reader.h"
#include "engine/rtmp/chunk_writer.h"
#include "engine/rtmp/message.h"
#include "loadgen/media_source.h"
#include "loadgen/stamp.h"
#include "media/amf0.h"

namespace uringest::loadgen {

struct ClientOptions {
  std::string app = "live";
  std::string stream;  // the publish name
  std::string tc_url;  // rtmp://host:port/app
  // Our Set Chunk Size. 0: the size the server announced, as ffmpeg does. Clamped to at
  // least 128, so a stamp always sits whole in a frame's first chunk.
  uint32_t chunk_size = 0;
};

class ClientConnection {
 public:
  enum class State : uint8_t {
    kHandshake,       // C0 + C1 sent, reading S0 + S1 + S2
    kConnecting,      // connect sent
    kCreatingStream,  // createStream sent
    kPublishing,      // publish sent, waiting for NetStream.Publish.Start
    kLive,            // media may flow
  };

  explicit ClientConnection(ClientOptions options);
  ClientConnection(const ClientConnection&) = delete;
  ClientConnection& operator=(const ClientConnection&) = delete;

  // Queues C0 + C1 (C1's random part from `seed`).
  void Start(uint32_t seed);
  // Takes the server's bytes, in any split. An error (a refused publish, a protocol
  // error) means: close the connection.
  [[nodiscard]] absl::Status Receive(std::span<const uint8_t> in);

  // The bytes to send next: the rest of the batch in flight, else the queued messages.
  // Valid until Sent() has covered them. Empty when nothing is queued.
  std::span<const uint8_t> NextSend();
  // REQUIRES: n <= NextSend().size() of the span last handed out.
  void Sent(size_t n);
  // Bytes queued or in flight, not yet sent.
  size_t pending_bytes() const { return queue_.size() + flight_.size() - flight_sent_; }

  // Queues one audio or video message on the publish stream; a Stampable() video body
  // carries *stamp (if given) on the wire. REQUIRES: live().
  void SendMedia(const MediaFrame& frame, const Stamp* stamp);
  // Queues @setDataFrame + `metadata` (an AMF0 onMetaData body). REQUIRES: live().
  void SendMetadata(std::span<const uint8_t> metadata);

  State state() const { return state_; }
  bool live() const { return state_ == State::kLive; }
  uint32_t stream_id() const { return stream_id_; }
  uint32_t chunk_size() const { return writer_.chunk_size(); }
  uint64_t bytes_received() const { return bytes_received_; }

 private:
  absl::Status ReceiveHandshake(std::span<const uint8_t>* in);
  absl::Status HandleMessage(const rtmp::Message& message);
  absl::Status HandleCommand(std::span<const uint8_t> payload);
  absl::Status HandleStatus(const media::amf0::Value& info);
  void HandleUserControl(std::span<const uint8_t> payload);
  void SendConnect();
  void SendCreateStream();
  void SendPublish();
  void SendControl(rtmp::MessageType type, uint32_t value);
  void QueueCommand(uint32_t csid, uint32_t stream_id);

  ClientOptions options_;
  State state_ = State::kHandshake;
  uint32_t handshake_received_ = 0;  // of S0 + S1 + S2
  rtmp::ChunkReader reader_;
  rtmp::ChunkWriter writer_;
  std::vector<uint8_t> queue_;   // messages queued since the last NextSend()
  std::vector<uint8_t> flight_;  // the batch being sent
  size_t flight_sent_ = 0;
  std::vector<uint8_t> command_;  // scratch for AMF0 bodies
  uint32_t stream_id_ = 0;
  uint32_t ack_window_ = 0;
  uint64_t bytes_received_ = 0;
  uint64_t acked_ = 0;
};

}  // namespace uringest::loadgen

#endif  // URINGEST_LOADGEN_CLIENT_CONNECTION_H_
