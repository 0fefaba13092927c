#include "engine/rtmp/command_replies.h"

#include <string>

#include "media/byte_order.h"

namespace uringest::rtmp {
namespace {

namespace amf0 = media::amf0;
using amf0::Value;

// name, transaction id, null: how every reply starts.
std::vector<uint8_t> ReplyHead(std::string_view name, double transaction_id) {
  std::vector<uint8_t> out;
  amf0::EncodeString(name, &out);
  amf0::EncodeNumber(transaction_id, &out);
  amf0::EncodeNull(&out);
  return out;
}

// An info object's first three properties; the caller may add more, then ends it.
void EncodeStatusObject(std::string_view level, std::string_view code, std::string_view description,
                        std::vector<uint8_t>* out) {
  amf0::EncodeObjectStart(out);
  amf0::EncodeProperty("level", Value::String(std::string(level)), out);
  amf0::EncodeProperty("code", Value::String(std::string(code)), out);
  amf0::EncodeProperty("description", Value::String(std::string(description)), out);
}

}  // namespace

std::vector<uint8_t> ResultReply(double transaction_id, const Value& value) {
  std::vector<uint8_t> out = ReplyHead("_result", transaction_id);
  amf0::Encode(value, &out);
  return out;
}

std::vector<uint8_t> ErrorReply(double transaction_id, std::string_view code,
                                std::string_view description) {
  std::vector<uint8_t> out = ReplyHead("_error", transaction_id);
  EncodeStatusObject("error", code, description, &out);
  amf0::EncodeObjectEnd(&out);
  return out;
}

std::vector<uint8_t> StatusReply(std::string_view level, std::string_view code,
                                 std::string_view description, std::string_view details) {
  std::vector<uint8_t> out = ReplyHead("onStatus", 0);
  EncodeStatusObject(level, code, description, &out);
  if (!details.empty()) amf0::EncodeProperty("details", Value::String(std::string(details)), &out);
  amf0::EncodeObjectEnd(&out);
  return out;
}

std::vector<uint8_t> ReconnectRequestReply(std::string_view tc_url, std::string_view description) {
  std::vector<uint8_t> out = ReplyHead("onStatus", 0);
  EncodeStatusObject("status", kReconnectRequestCode, description, &out);
  if (!tc_url.empty()) amf0::EncodeProperty("tcUrl", Value::String(std::string(tc_url)), &out);
  amf0::EncodeObjectEnd(&out);
  return out;
}

std::vector<uint8_t> FcReply(std::string_view name, std::string_view code,
                             std::string_view description) {
  std::vector<uint8_t> out = ReplyHead(name, 0);
  amf0::EncodeObjectStart(&out);
  amf0::EncodeProperty("code", Value::String(std::string(code)), &out);
  amf0::EncodeProperty("description", Value::String(std::string(description)), &out);
  amf0::EncodeObjectEnd(&out);
  return out;
}

std::vector<uint8_t> ConnectResult(double transaction_id, const EnhancedCaps& client,
                                   double object_encoding) {
  std::vector<uint8_t> out;
  amf0::EncodeString("_result", &out);
  amf0::EncodeNumber(transaction_id, &out);
  amf0::EncodeObjectStart(&out);
  amf0::EncodeProperty("fmsVer", Value::String("FMS/3,0,1,123"), &out);
  amf0::EncodeProperty("capabilities", Value::Number(31), &out);
  amf0::EncodeProperty("mode", Value::Number(1), &out);
  if (client.present) EncodeEnhancedCaps(client, &out);
  amf0::EncodeObjectEnd(&out);
  EncodeStatusObject("status", "NetConnection.Connect.Success", "Connection succeeded.", &out);
  amf0::EncodeProperty("objectEncoding", Value::Number(object_encoding), &out);
  amf0::EncodeObjectEnd(&out);
  return out;
}

void CommandSender::ProtocolControl(MessageType type, std::span<const uint8_t> payload) {
  sender_->Send(MessageHeader{.chunk_stream_id = kControlChunkStream, .type = type}, payload);
}

void CommandSender::ConnectControls(uint32_t window_ack_size, uint32_t peer_bandwidth,
                                    uint32_t chunk_size) {
  std::vector<uint8_t> control;
  media::AppendU32(&control, window_ack_size);
  ProtocolControl(MessageType::kWindowAckSize, control);
  control.clear();
  media::AppendU32(&control, peer_bandwidth);
  media::AppendU8(&control, uint8_t(BandwidthLimit::kDynamic));
  ProtocolControl(MessageType::kSetPeerBandwidth, control);
  control.clear();
  media::AppendU32(&control, chunk_size);
  ProtocolControl(MessageType::kSetChunkSize, control);
}

void CommandSender::StreamBegin(uint32_t stream_id) {
  std::vector<uint8_t> begin;
  media::AppendU16(&begin, uint16_t(UserControlEvent::kStreamBegin));
  media::AppendU32(&begin, stream_id);
  ProtocolControl(MessageType::kUserControl, begin);
}

void CommandSender::Command(std::span<const uint8_t> body) {
  sender_->Send(
      MessageHeader{.chunk_stream_id = kCommandChunkStream, .type = MessageType::kCommandAmf0},
      body);
}

void CommandSender::Status(uint32_t stream_id, std::string_view level, std::string_view code,
                           std::string_view description, std::string_view details) {
  sender_->Send(MessageHeader{.chunk_stream_id = kStreamCommandChunkStream,
                              .type = MessageType::kCommandAmf0,
                              .stream_id = stream_id},
                StatusReply(level, code, description, details));
}

void CommandSender::Result(double transaction_id, const Value& value) {
  Command(ResultReply(transaction_id, value));
}

void CommandSender::Error(double transaction_id, std::string_view code,
                          std::string_view description) {
  Command(ErrorReply(transaction_id, code, description));
}

}  // namespace uringest::rtmp
