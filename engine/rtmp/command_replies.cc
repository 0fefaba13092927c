#include "engine/rtmp/command_replies.h"

#include <string>

namespace uringest::rtmp {
namespace {

using media::amf0::Value;

// name, transaction id, null: how every reply starts.
std::vector<uint8_t> ReplyHead(std::string_view name, double transaction_id) {
  std::vector<uint8_t> out;
  media::amf0::EncodeString(name, &out);
  media::amf0::EncodeNumber(transaction_id, &out);
  media::amf0::EncodeNull(&out);
  return out;
}

// An info object's first three properties; the caller may add more, then ends it.
void EncodeStatusObject(std::string_view level, std::string_view code, std::string_view description,
                        std::vector<uint8_t>* out) {
  media::amf0::EncodeObjectStart(out);
  media::amf0::EncodeProperty("level", Value::String(std::string(level)), out);
  media::amf0::EncodeProperty("code", Value::String(std::string(code)), out);
  media::amf0::EncodeProperty("description", Value::String(std::string(description)), out);
}

}  // namespace

std::vector<uint8_t> ResultReply(double transaction_id, const Value& value) {
  std::vector<uint8_t> out = ReplyHead("_result", transaction_id);
  media::amf0::Encode(value, &out);
  return out;
}

std::vector<uint8_t> ErrorReply(double transaction_id, std::string_view code,
                                std::string_view description) {
  std::vector<uint8_t> out = ReplyHead("_error", transaction_id);
  EncodeStatusObject("error", code, description, &out);
  media::amf0::EncodeObjectEnd(&out);
  return out;
}

std::vector<uint8_t> StatusReply(std::string_view level, std::string_view code,
                                 std::string_view description, std::string_view details) {
  std::vector<uint8_t> out = ReplyHead("onStatus", 0);
  EncodeStatusObject(level, code, description, &out);
  if (!details.empty())
    media::amf0::EncodeProperty("details", Value::String(std::string(details)), &out);
  media::amf0::EncodeObjectEnd(&out);
  return out;
}

std::vector<uint8_t> FcReply(std::string_view name, std::string_view code,
                             std::string_view description) {
  std::vector<uint8_t> out = ReplyHead(name, 0);
  media::amf0::EncodeObjectStart(&out);
  media::amf0::EncodeProperty("code", Value::String(std::string(code)), &out);
  media::amf0::EncodeProperty("description", Value::String(std::string(description)), &out);
  media::amf0::EncodeObjectEnd(&out);
  return out;
}

std::vector<uint8_t> ConnectResult(double transaction_id, const EnhancedCaps& client,
                                   double object_encoding) {
  std::vector<uint8_t> out;
  media::amf0::EncodeString("_result", &out);
  media::amf0::EncodeNumber(transaction_id, &out);
  media::amf0::EncodeObjectStart(&out);
  media::amf0::EncodeProperty("fmsVer", Value::String("FMS/3,0,1,123"), &out);
  media::amf0::EncodeProperty("capabilities", Value::Number(31), &out);
  media::amf0::EncodeProperty("mode", Value::Number(1), &out);
  if (client.present) EncodeEnhancedCaps(client, &out);
  media::amf0::EncodeObjectEnd(&out);
  EncodeStatusObject("status", "NetConnection.Connect.Success", "Connection succeeded.", &out);
  media::amf0::EncodeProperty("objectEncoding", Value::Number(object_encoding), &out);
  media::amf0::EncodeObjectEnd(&out);
  return out;
}

}  // namespace uringest::rtmp
