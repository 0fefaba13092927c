// rtmp_client.h: a small blocking RTMP client over loopback for the integration tests,
// built on the protocol core's ChunkWriter, ChunkReader and AMF0 codec. It speaks as
// much of RTMP as a publisher needs (plain handshake, connect, createStream, publish,
// media) and lets a test send anything else raw. Every wait is bounded.
//
//   std::unique_ptr<RtmpClient> c = RtmpClient::Connect(port);
//   ASSERT_TRUE(c && c->Handshake() && c->ConnectApp("live"));
//   std::optional<uint32_t> id = c->CreateStream();
//   EXPECT_EQ(c->Publish(*id, "test"), "NetStream.Publish.Start");
//   c->Send({.chunk_stream_id = 6, .type = MessageType::kVideo, .stream_id = *id}, frame);

#ifndef URINGEST_TESTS_INTEGRATION_RTMP_CLIENT_H_
#define URINGEST_TESTS_INTEGRATION_RTMP_CLIENT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "engine/rtmp/chunk_reader.h"
#include "engine/rtmp/chunk_writer.h"
#include "engine/rtmp/message.h"
#include "media/amf0.h"

namespace uringest::testing {

inline constexpr absl::Duration kReplyTimeout = absl::Seconds(10);

class RtmpClient {
 public:
  // A TCP connection to 127.0.0.1:port, or nullptr.
  static std::unique_ptr<RtmpClient> Connect(int port);
  ~RtmpClient();
  RtmpClient(const RtmpClient&) = delete;
  RtmpClient& operator=(const RtmpClient&) = delete;

  // "127.0.0.1:PORT": this end, as the server names its peer in the log.
  const std::string& address() const { return address_; }
  int fd() const { return fd_; }

  // Sends every byte (false if the socket failed or stayed full past the send timeout).
  bool SendRaw(std::span<const uint8_t> bytes);
  // C0 + C1 (a plain handshake), waits for S0 + S1 + S2, sends C2.
  bool Handshake();
  // One message, chunked at the client's current chunk size.
  bool Send(const rtmp::MessageHeader& header, std::span<const uint8_t> payload);
  bool SendCommand(std::string_view name, double transaction_id,
                   const std::vector<media::amf0::Value>& args, uint32_t stream_id = 0);
  // Set Chunk Size: the client chunks at `size` from now on.
  bool SetChunkSize(uint32_t size);

  // The next command message from the server (name first), or nullopt on timeout/close.
  std::optional<std::vector<media::amf0::Value>> AwaitCommand(
      absl::Duration timeout = kReplyTimeout);
  // connect; true on _result. `extra`: more properties of the command object (an
  // Enhanced RTMP client's capsEx, say).
  bool ConnectApp(std::string_view app, std::vector<media::amf0::Value::Property> extra = {});
  // createStream; the stream id from _result.
  std::optional<uint32_t> CreateStream();
  // publish; the onStatus code the server answers with ("" if none came).
  std::string Publish(uint32_t stream_id, std::string_view name);

  // Reads and discards until the server closes the connection; false on timeout.
  bool AwaitClose(absl::Duration timeout = kReplyTimeout);

 private:
  RtmpClient(int fd, std::string address);
  // Reads whatever arrives within `timeout` into in_; false on timeout, error or close.
  bool Receive(absl::Duration timeout);

  int fd_;
  std::string address_;
  rtmp::ChunkWriter writer_;
  rtmp::ChunkReader reader_;
  std::vector<uint8_t> in_;  // received bytes the reader has not consumed
  std::vector<uint8_t> out_;
  double next_transaction_ = 1;
};

}  // namespace uringest::testing

#endif  // URINGEST_TESTS_INTEGRATION_RTMP_CLIENT_H_
