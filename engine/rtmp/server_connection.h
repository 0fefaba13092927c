// server_connection.h: one publisher's RTMP connection, server side, with no I/O: the
// handshake, the chunk reader and writer, acknowledgements, protocol control and user
// control messages, and the publish session. The engine feeds it the bytes that arrived
// and sends the bytes it queues; frames leave through the FrameSink.
//
//   ServerConnection conn(options, &frame_sink, &registry);
//   absl::Status s = conn.Receive(bytes);  // any split
//   if (!s.ok()) { log(peer, s); close; }
//   Send(conn.output());  conn.TakeOutput(n_sent);
//   ...
//   conn.Close();  // the socket closed: every publishing stream ends
//
// Thread safety: none; a connection lives on its shard's thread.

#ifndef URINGEST_ENGINE_RTMP_SERVER_CONNECTION_H_
#define URINGEST_ENGINE_RTMP_SERVER_CONNECTION_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "engine/rtmp/chunk_reader.h"
#include "engine/rtmp/chunk_writer.h"
#include "engine/rtmp/frame.h"
#include "engine/rtmp/handshake.h"
#include "engine/rtmp/message.h"
#include "engine/rtmp/session.h"

namespace uringest::rtmp {

struct ServerConnectionOptions {
  ChunkReaderOptions reader;
  SessionOptions session;
  ServerHandshakeOptions handshake;
};

class ServerConnection : private MessageSender {
 public:
  struct Counters {
    uint64_t bytes_received = 0;
    uint64_t messages_received = 0;
    uint64_t acks_sent = 0;
    uint64_t pings_answered = 0;
  };

  // `sink`, `registry` and `authorizer` (nullptr: every publish allowed) must outlive
  // the connection.
  ServerConnection(const ServerConnectionOptions& options, FrameSink* sink,
                   PublishRegistry* registry, PublishAuthorizer* authorizer = nullptr);
  ServerConnection(const ServerConnection&) = delete;
  ServerConnection& operator=(const ServerConnection&) = delete;
  ~ServerConnection() override;

  // Takes the bytes that arrived from the peer, in any split. `in` is not retained: it can
  // go back to the buffer ring when this returns. An error says what the peer did wrong;
  // the caller sends what output() holds if it can, then closes the connection.
  //
  // `more_queued` says the socket already holds more bytes: an Acknowledgement then
  // waits until they are read, or until a second window has gone by. A publisher that closes its
  // socket while our bytes sit unread in it (ffmpeg stops reading once it has written everything)
  // makes its kernel answer with a reset, and a reset throws away whatever we had not read yet: the
  // end of its stream. Acking only a drained socket keeps that window as small as TCP allows.
  [[nodiscard]] absl::Status Receive(std::span<const uint8_t> in, bool more_queued = false);

  // Bytes queued for the peer, in order. Valid until the next call of a non-const method.
  std::span<const uint8_t> output() const {
    return std::span<const uint8_t>(out_).subspan(out_taken_);
  }
  // The authorizer's late answer (Session::CompleteApproval): queues the onStatus. An
  // error (denied) says why, for the log; the caller sends output() and closes.
  [[nodiscard]] absl::Status CompleteApproval(uint32_t stream_id, uint64_t ticket, bool allowed,
                                              std::string_view reason) {
    return session_.CompleteApproval(stream_id, ticket, allowed, reason);
  }

  Session::Refusals TakeRefusals() { return session_.TakeRefusals(); }
  // Session::TakeRemapNotice(): media on a message stream never created went to the only
  // stream publishing. One line per connection, for the log.
  std::string TakeRemapNotice() { return session_.TakeRemapNotice(); }

  // Marks the first n bytes of output() as sent.
  // REQUIRES: n <= output().size().
  void TakeOutput(size_t n);

  // The peer is gone, or the server ends it: ends every publishing stream (Session::Close;
  // with a `notice`, the streams are told why). Idempotent.
  void Close(std::string_view notice = {});
  // Session::RequestReconnect(): a drain asks a capable publisher to reconnect.
  bool RequestReconnect(std::string_view tc_url, std::string_view description) {
    return session_.RequestReconnect(tc_url, description);
  }

  bool handshake_complete() const { return handshake_ == nullptr; }
  const Session& session() const { return session_; }
  const ChunkReader& reader() const { return reader_; }
  const Counters& counters() const { return counters_; }
  // The acknowledgement window in force: the peer's Window Acknowledgement Size; 0 (no
  // acknowledgements) until the peer sends one. As in SRS and nginx-rtmp: ffmpeg never
  // sends one and never reads acks, and an ack it leaves unread when it closes its socket
  // makes its kernel reset the connection, which drops the end of its stream.
  uint32_t ack_window() const { return ack_window_; }
  uint32_t peer_buffer_length_ms() const { return peer_buffer_length_ms_; }

 private:
  // MessageSender: the session's and this class's own messages.
  void Send(const MessageHeader& header, std::span<const uint8_t> payload) override;

  absl::Status ReceiveHandshake(std::span<const uint8_t>* in);
  absl::Status HandleMessage(const Message& message);
  absl::Status HandleUserControl(const Message& message);
  void AcknowledgeReceived(bool more_queued);
  void SendControl(MessageType type, std::span<const uint8_t> payload);

  // An output buffer larger than this is freed once everything in it is sent.
  static constexpr size_t kRetainedOutput = 256;

  std::unique_ptr<ServerHandshake> handshake_;  // freed once complete
  ChunkReader reader_;
  ChunkWriter writer_;
  Session session_;
  std::vector<uint8_t> out_;
  size_t out_taken_ = 0;
  Counters counters_;
  uint32_t ack_window_ = 0;
  uint64_t acked_ = 0;  // bytes_received when the last Acknowledgement went out
  uint32_t peer_buffer_length_ms_ = 0;
};

}  // namespace uringest::rtmp

#endif  // URINGEST_ENGINE_RTMP_SERVER_CONNECTION_H_
