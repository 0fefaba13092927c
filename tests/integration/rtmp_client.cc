#include "tests/integration/rtmp_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "engine/rtmp/handshake.h"
#include "engine/rtmp/rtmp_format.h"
#include "media/amf0_decoder.h"
#include "media/byte_order.h"

namespace uringest::testing {
namespace {

using media::amf0::Value;
using rtmp::MessageType;

constexpr absl::Duration kSendTimeout = absl::Seconds(10);

}  // namespace

std::unique_ptr<RtmpClient> RtmpClient::Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return nullptr;
  sockaddr_in to{.sin_family = AF_INET, .sin_port = htons(uint16_t(port))};
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sockaddr_in local{};
  socklen_t len = sizeof(local);
  if (connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0) {
    close(fd);
    return nullptr;
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  timeval tv = absl::ToTimeval(kSendTimeout);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  return std::unique_ptr<RtmpClient>(
      new RtmpClient(fd, absl::StrCat("127.0.0.1:", ntohs(local.sin_port))));
}

RtmpClient::RtmpClient(int fd, std::string address) : fd_(fd), address_(std::move(address)) {}

RtmpClient::~RtmpClient() { close(fd_); }

bool RtmpClient::SendRaw(std::span<const uint8_t> bytes) {
  while (!bytes.empty()) {
    const ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    bytes = bytes.subspan(size_t(n));
  }
  return true;
}

bool RtmpClient::Receive(absl::Duration timeout) {
  pollfd pfd{.fd = fd_, .events = POLLIN};
  if (poll(&pfd, 1, int(absl::ToInt64Milliseconds(timeout))) <= 0) return false;
  uint8_t buffer[64 << 10];
  const ssize_t n = recv(fd_, buffer, sizeof(buffer), 0);
  if (n <= 0) return false;
  in_.insert(in_.end(), buffer, buffer + n);
  return true;
}

bool RtmpClient::Handshake() {
  std::vector<uint8_t> c0c1(1 + rtmp::kHandshakeSize, 0);
  c0c1[0] = rtmp::kRtmpVersion;
  if (!SendRaw(c0c1)) return false;
  const absl::Time deadline = absl::Now() + kReplyTimeout;
  while (in_.size() < rtmp::ServerHandshake::kOutputSize) {
    if (!Receive(deadline - absl::Now())) return false;
  }
  // C2 echoes S1.
  std::span<const uint8_t> s1(in_.data() + 1, rtmp::kHandshakeSize);
  if (!SendRaw(s1)) return false;
  in_.erase(in_.begin(), in_.begin() + rtmp::ServerHandshake::kOutputSize);
  return true;
}

bool RtmpClient::Send(const rtmp::MessageHeader& header, std::span<const uint8_t> payload) {
  out_.clear();
  writer_.Write(header, payload, &out_);
  return SendRaw(out_);
}

bool RtmpClient::SendCommand(std::string_view name, double transaction_id,
                             const std::vector<Value>& args, uint32_t stream_id) {
  std::vector<uint8_t> payload;
  media::amf0::EncodeString(name, &payload);
  media::amf0::EncodeNumber(transaction_id, &payload);
  for (const Value& arg : args) media::amf0::Encode(arg, &payload);
  const uint32_t csid =
      stream_id == 0 ? rtmp::kCommandChunkStream : rtmp::kStreamCommandChunkStream;
  return Send({.chunk_stream_id = csid, .type = MessageType::kCommandAmf0, .stream_id = stream_id},
              payload);
}

bool RtmpClient::SetChunkSize(uint32_t size) {
  uint8_t payload[4];
  media::StoreU32(payload, size);
  return Send({.chunk_stream_id = rtmp::kControlChunkStream, .type = MessageType::kSetChunkSize},
              payload);
}

std::optional<std::vector<Value>> RtmpClient::AwaitCommand(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    size_t used = 0;
    while (used < in_.size() || reader_.has_pending()) {
      rtmp::Message message;
      absl::StatusOr<rtmp::ChunkReader::Result> r =
          reader_.Read(std::span<const uint8_t>(in_).subspan(used), &message);
      if (!r.ok()) return std::nullopt;
      used += r->consumed;
      if (r->message_ready && message.header.type == MessageType::kCommandAmf0) {
        absl::StatusOr<std::vector<Value>> values = media::amf0::DecodeAll(message.payload);
        in_.erase(in_.begin(), in_.begin() + used);
        if (!values.ok()) return std::nullopt;
        return *std::move(values);
      }
      if (!r->message_ready && r->consumed == 0) break;
    }
    in_.erase(in_.begin(), in_.begin() + used);
    if (!Receive(deadline - absl::Now())) return std::nullopt;
  }
}

bool RtmpClient::ConnectApp(std::string_view app, std::vector<media::amf0::Value::Property> extra) {
  std::vector<media::amf0::Value::Property> properties = {
      {"app", Value::String(std::string(app))},
      {"type", Value::String("nonprivate")},
      {"tcUrl", Value::String(absl::StrCat("rtmp://127.0.0.1/", std::string(app)))}};
  properties.insert(properties.end(), extra.begin(), extra.end());
  if (!SendCommand("connect", next_transaction_++, {Value::Object(std::move(properties))})) {
    return false;
  }
  std::optional<std::vector<Value>> reply = AwaitCommand();
  return reply && (*reply)[0].string() == "_result";
}

std::optional<uint32_t> RtmpClient::CreateStream() {
  if (!SendCommand("createStream", next_transaction_++, {Value::Null()})) return std::nullopt;
  std::optional<std::vector<Value>> reply = AwaitCommand();
  if (!reply || (*reply)[0].string() != "_result" || reply->size() < 4 ||
      !(*reply)[3].is_number()) {
    return std::nullopt;
  }
  return uint32_t((*reply)[3].number());
}

std::string RtmpClient::Publish(uint32_t stream_id, std::string_view name) {
  if (!SendCommand("publish", 0,
                   {Value::Null(), Value::String(std::string(name)), Value::String("live")},
                   stream_id)) {
    return "";
  }
  for (;;) {
    std::optional<std::vector<Value>> reply = AwaitCommand();
    if (!reply) return "";
    if ((*reply)[0].string() != "onStatus" || reply->size() < 4) continue;
    return std::string((*reply)[3].FindString("code"));
  }
}

bool RtmpClient::AwaitClose(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  uint8_t buffer[64 << 10];
  while (absl::Now() < deadline) {
    pollfd pfd{.fd = fd_, .events = POLLIN};
    if (poll(&pfd, 1, int(absl::ToInt64Milliseconds(deadline - absl::Now())) + 1) <= 0) continue;
    const ssize_t n = recv(fd_, buffer, sizeof(buffer), 0);
    if (n <= 0) return true;  // EOF or reset
  }
  return false;
}

}  // namespace uringest::testing
