// command_replies.h: what the server says to a publisher. The AMF0 bodies of _result,
// _error, onStatus, onFCPublish/onFCUnpublish and connect's _result (with Enhanced RTMP's
// capabilities when the client announced its own), and a CommandSender that sends them,
// and the protocol control messages, on the chunk streams encoders expect them on.
//
//   std::vector<uint8_t> body = StatusReply("status", "NetStream.Publish.Start",
//                                           "live/cam1 is now published.", "cam1");
//   CommandSender send(&message_sender);
//   send.Status(1, "status", "NetStream.Publish.Start", "live/cam1 is now published.");
//
// Thread safety: free functions over their arguments; a CommandSender is used on its
// connection's thread.

#ifndef URINGEST_ENGINE_RTMP_COMMAND_REPLIES_H_
#define URINGEST_ENGINE_RTMP_COMMAND_REPLIES_H_

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "engine/rtmp/enhanced_caps.h"
#include "engine/rtmp/message.h"
#include "engine/rtmp/rtmp_format.h"
#include "media/amf0.h"

namespace uringest::rtmp {

// _result, transaction id, null, `value`.
std::vector<uint8_t> ResultReply(double transaction_id, const media::amf0::Value& value);
// _error, transaction id, null, {level: "error", code, description}.
std::vector<uint8_t> ErrorReply(double transaction_id, std::string_view code,
                                std::string_view description);
// onStatus, 0, null, {level, code, description[, details]}: sent on a message stream.
std::vector<uint8_t> StatusReply(std::string_view level, std::string_view code,
                                 std::string_view description, std::string_view details = {});
// onStatus, 0, null, {level: "status", code: "NetConnection.Connect.ReconnectRequest",
// description[, tcUrl]}: Enhanced RTMP v2's request that the client reconnect (to
// `tc_url` when not empty), sent on the NetConnection.
std::vector<uint8_t> ReconnectRequestReply(std::string_view tc_url, std::string_view description);
// `name` (onFCPublish, onFCUnpublish), 0, null, {code, description}.
std::vector<uint8_t> FcReply(std::string_view name, std::string_view code,
                             std::string_view description);
// connect's _result: the server's properties (FMS/3,0,1,123, capabilities 31, mode 1,
// and `client`'s Enhanced RTMP answer if it announced any), then the NetConnection
// status with `object_encoding`.
std::vector<uint8_t> ConnectResult(double transaction_id, const EnhancedCaps& client,
                                   double object_encoding);

// Sends replies and protocol control messages through a MessageSender (which must outlive
// it): protocol control on chunk stream 2, commands on 3, onStatus on 5 with the message
// stream's id, as nginx-rtmp, SRS and the encoders tested against them use them.
class CommandSender {
 public:
  explicit CommandSender(MessageSender* sender) : sender_(sender) {}

  void ProtocolControl(MessageType type, std::span<const uint8_t> payload);
  // What connect's answer starts with: Window Acknowledgement Size, Set Peer Bandwidth
  // (dynamic) and Set Chunk Size.
  void ConnectControls(uint32_t window_ack_size, uint32_t peer_bandwidth, uint32_t chunk_size);
  // User Control StreamBegin for `stream_id`.
  void StreamBegin(uint32_t stream_id);
  void Command(std::span<const uint8_t> body);
  void Status(uint32_t stream_id, std::string_view level, std::string_view code,
              std::string_view description, std::string_view details = {});
  void Result(double transaction_id, const media::amf0::Value& value);
  void Error(double transaction_id, std::string_view code, std::string_view description);

 private:
  MessageSender* const sender_;
};

}  // namespace uringest::rtmp

#endif  // URINGEST_ENGINE_RTMP_COMMAND_REPLIES_H_
