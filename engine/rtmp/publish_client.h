// publish_client.h: the client side of an RTMP publish, with no I/O: the plain handshake
// (C0/C1, C2 = an echo of S1), connect, [releaseStream, FCPublish,] createStream,
// publish, waiting for NetStream.Publish.Start, then messages through rtmp::ChunkWriter,
// and at the end FCUnpublish and deleteStream. Server replies are parsed with
// rtmp::ChunkReader and amf0; pings are answered and bytes acknowledged. uringest-load's
// publishers and uringest-push's upstream connections are both one of these.
//
//   PublishClient conn({.app = "live", .stream = "cam7", .tc_url = url});
//   conn.Start(seed);                          // queues C0 + C1
//   send(conn.NextSend()); conn.Sent(n);       // one send in flight at a time
//   if (absl::Status s = conn.Receive(bytes); !s.ok()) close;  // s names the refusal
//   if (conn.live()) conn.SendMessage(kVideoChunkStream, MessageType::kVideo, dts, body);
//   if (conn.reconnect_request()) ...finish the GOP, Unpublish(), connect elsewhere...
//
// Output: messages are appended to a queue while the previous batch is in flight, and
// NextSend() swaps the two, so the bytes handed out stay put until Sent() covers them.
// Both buffers keep their capacity: after the first frames nothing is allocated.
//
// Thread safety: none; a connection lives on one thread.

#ifndef URINGEST_ENGINE_RTMP_PUBLISH_CLIENT_H_
#define URINGEST_ENGINE_RTMP_PUBLISH_CLIENT_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "engine/rtmp/chunk_reader.h"
#include "engine/rtmp/chunk_writer.h"
#include "engine/rtmp/enhanced_caps.h"
#include "engine/rtmp/message.h"
#include "media/amf0.h"

namespace uringest::rtmp {

// The chunk streams a publisher's messages go on (ffmpeg's numbers): each kind on its
// own, so that consecutive headers compress against their own kind.
inline constexpr uint32_t kAudioChunkStream = 4;
inline constexpr uint32_t kVideoChunkStream = 6;
inline constexpr uint32_t kDataChunkStream = 8;

// Enhanced RTMP v2's Reconnect Request (kReconnectRequestCode): where the server asks
// the client to publish instead.
struct ReconnectRequest {
  std::string tc_url;  // where to reconnect; empty: the same address and application
  std::string description;
};

struct PublishClientOptions {
  std::string app = "live";
  std::string stream;  // the publish name, with its query if any ("cam7?key=k")
  std::string tc_url;  // rtmp://host:port/app
  // Our Set Chunk Size, sent after connect's _result. 0: the size the server announced,
  // as ffmpeg does. At least 128.
  uint32_t chunk_size = 0;
  std::string flash_ver = "FMLE/3.0 (compatible; uringest)";
  // releaseStream and FCPublish before createStream, as ffmpeg and OBS send them (some
  // servers, and CDNs, want them); FCUnpublish before deleteStream at the end.
  bool fc_publish = false;
  // Enhanced RTMP: fourCcList and capsEx in connect's command object (when present).
  // A Reconnect Request is kept (reconnect_request()), never an error; servers send one
  // only to a client with kCapsExReconnect in caps_ex.
  EnhancedCaps enhanced;
};

class PublishClient {
 public:
  enum class State : uint8_t {
    kHandshake,       // C0 + C1 sent, reading S0 + S1 + S2
    kConnecting,      // connect sent
    kCreatingStream,  // createStream sent
    kPublishing,      // publish sent, waiting for NetStream.Publish.Start
    kLive,            // media may flow
    kUnpublished,     // FCUnpublish/deleteStream queued: nothing more goes out
  };

  explicit PublishClient(PublishClientOptions options);
  PublishClient(const PublishClient&) = delete;
  PublishClient& operator=(const PublishClient&) = delete;

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

  // Queues one message of `type` on the publish stream. Returns its first chunk's
  // payload where it sits in the queue (at most chunk_size() bytes of the body), for a
  // caller that writes into the copy on the wire; valid until the next call that queues.
  // REQUIRES: live().
  std::span<uint8_t> SendMessage(uint32_t chunk_stream, MessageType type, uint32_t timestamp,
                                 std::span<const uint8_t> body);
  // Queues @setDataFrame + `metadata` (an AMF0 onMetaData body). REQUIRES: live().
  void SendMetadata(std::span<const uint8_t> metadata, uint32_t timestamp = 0);
  // Queues FCUnpublish (with fc_publish) and deleteStream: the orderly end of the
  // publish. Sending what is queued and then closing completes it. REQUIRES: live().
  void Unpublish();

  State state() const { return state_; }
  bool live() const { return state_ == State::kLive; }
  uint32_t stream_id() const { return stream_id_; }
  uint32_t chunk_size() const { return writer_.chunk_size(); }
  uint64_t bytes_received() const { return bytes_received_; }
  // The server's latest Reconnect Request, at any time after connect; the connection
  // goes on as before (the caller decides when to leave). Empty if none came.
  const std::optional<ReconnectRequest>& reconnect_request() const { return reconnect_request_; }

 private:
  absl::Status ReceiveHandshake(std::span<const uint8_t>* in);
  absl::Status HandleMessage(const Message& message);
  absl::Status HandleCommand(std::span<const uint8_t> payload);
  absl::Status HandleStatus(const media::amf0::Value& info);
  void HandleUserControl(std::span<const uint8_t> payload);
  void SendConnect();
  void SendStreamCommand(std::string_view name, double transaction);
  void SendCreateStream();
  void SendPublish();
  void SendControl(MessageType type, uint32_t value);
  void QueueCommand(uint32_t csid, uint32_t stream_id);

  PublishClientOptions options_;
  State state_ = State::kHandshake;
  uint32_t handshake_received_ = 0;  // of S0 + S1 + S2
  ChunkReader reader_;
  ChunkWriter writer_;
  std::vector<uint8_t> queue_;   // messages queued since the last NextSend()
  std::vector<uint8_t> flight_;  // the batch being sent
  size_t flight_sent_ = 0;
  std::vector<uint8_t> command_;  // scratch for AMF0 bodies
  uint32_t stream_id_ = 0;
  uint32_t ack_window_ = 0;
  uint64_t bytes_received_ = 0;
  uint64_t acked_ = 0;
  std::optional<ReconnectRequest> reconnect_request_;
};

}  // namespace uringest::rtmp

#endif  // URINGEST_ENGINE_RTMP_PUBLISH_CLIENT_H_
