// command_replies.h: the AMF0 bodies of what the server says to a publisher: _result,
// _error, onStatus, onFCPublish/onFCUnpublish, and connect's _result (with Enhanced RTMP's
// capabilities when the client announced its own). Encoding only: the Session sends them.
//
//   std::vector<uint8_t> body = StatusReply("status", "NetStream.Publish.Start",
//                                           "live/cam1 is now published.", "cam1");
//
// Thread safety: free functions over their arguments.

#ifndef URINGEST_ENGINE_RTMP_COMMAND_REPLIES_H_
#define URINGEST_ENGINE_RTMP_COMMAND_REPLIES_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "engine/rtmp/enhanced_caps.h"
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
// `name` (onFCPublish, onFCUnpublish), 0, null, {code, description}.
std::vector<uint8_t> FcReply(std::string_view name, std::string_view code,
                             std::string_view description);
// connect's _result: the server's properties (FMS/3,0,1,123, capabilities 31, mode 1,
// and `client`'s Enhanced RTMP answer if it announced any), then the NetConnection
// status with `object_encoding`.
std::vector<uint8_t> ConnectResult(double transaction_id, const EnhancedCaps& client,
                                   double object_encoding);

}  // namespace uringest::rtmp

#endif  // URINGEST_ENGINE_RTMP_COMMAND_REPLIES_H_
