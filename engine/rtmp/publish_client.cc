#include "engine/rtmp/publish_client.h"

#include <algorithm>
#include <cassert>
#include <utility>

#include "absl/strings/str_cat.h"
#include "media/amf0.h"
#include "media/amf0_decoder.h"
#include "media/byte_order.h"
#include "media/script_data.h"

namespace uringest::rtmp {
namespace {

namespace amf0 = media::amf0;

constexpr size_t kServerHandshakeSize = 1 + 2 * kHandshakeSize;  // S0 + S1 + S2
constexpr double kConnectTransaction = 1;
constexpr double kReleaseStreamTransaction = 2;
constexpr double kFcPublishTransaction = 3;
constexpr double kCreateStreamTransaction = 4;
constexpr uint32_t kMinChunkSize = 128;

}  // namespace

PublishClient::PublishClient(PublishClientOptions options) : options_(std::move(options)) {}

void PublishClient::Start(uint32_t seed) {
  queue_.push_back(kRtmpVersion);
  const size_t c1 = queue_.size();
  queue_.resize(c1 + kHandshakeSize, 0);  // time 0, zero 0: the plain handshake
  uint32_t x = seed | 1;
  for (size_t i = 8; i < kHandshakeSize; ++i) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;  // xorshift32
    queue_[c1 + i] = uint8_t(x);
  }
}

std::span<const uint8_t> PublishClient::NextSend() {
  if (flight_sent_ == flight_.size() && !queue_.empty()) {
    std::swap(flight_, queue_);
    queue_.clear();
    flight_sent_ = 0;
  }
  return std::span<const uint8_t>(flight_).subspan(flight_sent_);
}

void PublishClient::Sent(size_t n) {
  assert(flight_sent_ + n <= flight_.size());
  flight_sent_ += n;
  if (flight_sent_ == flight_.size()) {
    flight_.clear();
    flight_sent_ = 0;
  }
}

absl::Status PublishClient::Receive(std::span<const uint8_t> in) {
  bytes_received_ += in.size();
  if (state_ == State::kHandshake) {
    if (absl::Status s = ReceiveHandshake(&in); !s.ok()) return s;
  }
  Message message;
  // The reader may hold read-ahead bytes that complete a message after `in` is used up.
  while (!in.empty() || reader_.has_pending()) {
    absl::StatusOr<ChunkReader::Result> r = reader_.Read(in, &message);
    if (!r.ok()) return r.status();
    in = in.subspan(r->consumed);
    if (!r->message_ready) continue;
    if (absl::Status s = HandleMessage(message); !s.ok()) return s;
  }
  if (ack_window_ > 0 && bytes_received_ - acked_ >= ack_window_) {
    acked_ = bytes_received_;
    SendControl(MessageType::kAcknowledgement, uint32_t(bytes_received_));
  }
  return absl::OkStatus();
}

// S0 is checked; S1 is echoed as C2 byte by byte as it arrives; S2 is skipped.
absl::Status PublishClient::ReceiveHandshake(std::span<const uint8_t>* in) {
  while (!in->empty() && handshake_received_ < kServerHandshakeSize) {
    if (handshake_received_ == 0) {
      if ((*in)[0] != kRtmpVersion) {
        return absl::InvalidArgumentError(absl::StrCat("server sent S0 ", (*in)[0]));
      }
      ++handshake_received_;
      *in = in->subspan(1);
      continue;
    }
    const size_t s1_end = 1 + kHandshakeSize;
    const size_t limit = handshake_received_ < s1_end ? s1_end : kServerHandshakeSize;
    const size_t n = std::min(in->size(), limit - handshake_received_);
    if (handshake_received_ < s1_end) queue_.insert(queue_.end(), in->begin(), in->begin() + n);
    handshake_received_ += uint32_t(n);
    *in = in->subspan(n);
  }
  if (handshake_received_ == kServerHandshakeSize) SendConnect();
  return absl::OkStatus();
}

absl::Status PublishClient::HandleMessage(const Message& message) {
  switch (message.header.type) {
    case MessageType::kWindowAckSize:
      if (message.payload.size() >= 4) ack_window_ = media::LoadU32(message.payload.data());
      return absl::OkStatus();
    case MessageType::kUserControl:
      HandleUserControl(message.payload);
      return absl::OkStatus();
    case MessageType::kCommandAmf0:
      return HandleCommand(message.payload);
    case MessageType::kCommandAmf3:
      if (message.payload.empty()) return absl::OkStatus();
      return HandleCommand(message.payload.subspan(1));
    default:
      return absl::OkStatus();  // chunk size and abort: the reader applied them
  }
}

void PublishClient::HandleUserControl(std::span<const uint8_t> payload) {
  if (payload.size() < 6 ||
      media::LoadU16(payload.data()) != uint16_t(UserControlEvent::kPingRequest)) {
    return;
  }
  uint8_t body[6] = {0, uint8_t(UserControlEvent::kPingResponse)};
  std::copy(payload.begin() + 2, payload.begin() + 6, body + 2);
  writer_.Write({.chunk_stream_id = kControlChunkStream, .type = MessageType::kUserControl}, body,
                &queue_);
}

absl::Status PublishClient::HandleCommand(std::span<const uint8_t> payload) {
  amf0::Decoder decoder(payload);
  absl::StatusOr<amf0::Value> name = decoder.Next();
  absl::StatusOr<amf0::Value> transaction = decoder.Next();
  if (!name.ok() || !name->is_string() || !transaction.ok()) {
    return absl::InvalidArgumentError("malformed command from the server");
  }
  absl::StatusOr<amf0::Value> object = decoder.Next();
  absl::StatusOr<amf0::Value> info = decoder.done() ? amf0::Value() : decoder.Next();
  const std::string& command = name->string();
  const double tid = transaction->is_number() ? transaction->number() : -1;
  if (command == "_error") {
    std::string what = info.ok() ? std::string(info->FindString("description")) : "";
    return absl::PermissionDeniedError(absl::StrCat("server refused with _error: ", what));
  }
  if (command == "onStatus") return info.ok() ? HandleStatus(*info) : absl::OkStatus();
  if (command != "_result") return absl::OkStatus();
  if (state_ == State::kConnecting && tid == kConnectTransaction) {
    const uint32_t size = options_.chunk_size ? options_.chunk_size : reader_.chunk_size();
    if (std::max(size, kMinChunkSize) != writer_.chunk_size()) {
      SendControl(MessageType::kSetChunkSize, std::max(size, kMinChunkSize));
    }
    SendCreateStream();
  } else if (state_ == State::kCreatingStream && tid == kCreateStreamTransaction) {
    if (!info.ok() || !info->is_number()) {
      return absl::InvalidArgumentError("createStream's _result carries no stream id");
    }
    stream_id_ = uint32_t(info->number());
    SendPublish();
  }
  return absl::OkStatus();
}

absl::Status PublishClient::HandleStatus(const amf0::Value& info) {
  const std::string_view code = info.FindString("code");
  if (code == kReconnectRequestCode) {
    // Not an error whatever its level says: the server still takes our media until we
    // leave, and a client that follows requests wants to know where to go.
    reconnect_request_ =
        ReconnectRequest{.tc_url = std::string(info.FindString("tcUrl")),
                         .description = std::string(info.FindString("description"))};
    return absl::OkStatus();
  }
  if (code == "NetStream.Publish.Start" && state_ == State::kPublishing) {
    state_ = State::kLive;
  } else if (info.FindString("level") == "error") {
    return absl::PermissionDeniedError(
        absl::StrCat("server refused the publish: ", std::string(code)));
  }
  return absl::OkStatus();
}

void PublishClient::SendControl(MessageType type, uint32_t value) {
  uint8_t body[4];
  media::StoreU32(body, value);
  writer_.Write({.chunk_stream_id = kControlChunkStream, .type = type}, body, &queue_);
}

void PublishClient::QueueCommand(uint32_t csid, uint32_t stream_id) {
  writer_.Write(
      {.chunk_stream_id = csid, .type = MessageType::kCommandAmf0, .stream_id = stream_id},
      command_, &queue_);
  command_.clear();
}

void PublishClient::SendConnect() {
  amf0::EncodeString("connect", &command_);
  amf0::EncodeNumber(kConnectTransaction, &command_);
  amf0::EncodeObjectStart(&command_);
  amf0::EncodeProperty("app", amf0::Value::String(options_.app), &command_);
  amf0::EncodeProperty("type", amf0::Value::String("nonprivate"), &command_);
  amf0::EncodeProperty("flashVer", amf0::Value::String(options_.flash_ver), &command_);
  amf0::EncodeProperty("tcUrl", amf0::Value::String(options_.tc_url), &command_);
  if (options_.enhanced.present) EncodeEnhancedConnect(options_.enhanced, &command_);
  amf0::EncodeObjectEnd(&command_);
  QueueCommand(kCommandChunkStream, 0);
  state_ = State::kConnecting;
}

void PublishClient::SendStreamCommand(std::string_view name, double transaction) {
  amf0::EncodeString(name, &command_);
  amf0::EncodeNumber(transaction, &command_);
  amf0::EncodeNull(&command_);
  amf0::EncodeString(options_.stream, &command_);
  QueueCommand(kCommandChunkStream, 0);
}

void PublishClient::SendCreateStream() {
  if (options_.fc_publish) {
    SendStreamCommand("releaseStream", kReleaseStreamTransaction);
    SendStreamCommand("FCPublish", kFcPublishTransaction);
  }
  amf0::EncodeString("createStream", &command_);
  amf0::EncodeNumber(kCreateStreamTransaction, &command_);
  amf0::EncodeNull(&command_);
  QueueCommand(kCommandChunkStream, 0);
  state_ = State::kCreatingStream;
}

void PublishClient::SendPublish() {
  amf0::EncodeString("publish", &command_);
  amf0::EncodeNumber(0, &command_);
  amf0::EncodeNull(&command_);
  amf0::EncodeString(options_.stream, &command_);
  amf0::EncodeString("live", &command_);
  QueueCommand(kStreamCommandChunkStream, stream_id_);
  state_ = State::kPublishing;
}

std::span<uint8_t> PublishClient::SendMessage(uint32_t chunk_stream, MessageType type,
                                              uint32_t timestamp, std::span<const uint8_t> body) {
  assert(live());
  const MessageHeader header{.chunk_stream_id = chunk_stream,
                             .type = type,
                             .stream_id = stream_id_,
                             .timestamp = timestamp};
  ChunkWriter::Cursor cursor = writer_.Begin(header, body);
  bool done = writer_.WriteChunk(&cursor, &queue_);
  const size_t first_payload = std::min<size_t>(writer_.chunk_size(), body.size());
  const size_t body_at = queue_.size() - first_payload;
  while (!done) done = writer_.WriteChunk(&cursor, &queue_);
  return std::span<uint8_t>(queue_).subspan(body_at, first_payload);
}

void PublishClient::SendMetadata(std::span<const uint8_t> metadata, uint32_t timestamp) {
  assert(live());
  amf0::EncodeString(media::kSetDataFrame, &command_);
  command_.insert(command_.end(), metadata.begin(), metadata.end());
  writer_.Write({.chunk_stream_id = kDataChunkStream,
                 .type = MessageType::kDataAmf0,
                 .stream_id = stream_id_,
                 .timestamp = timestamp},
                command_, &queue_);
  command_.clear();
}

void PublishClient::Unpublish() {
  assert(live());
  if (options_.fc_publish) {
    amf0::EncodeString("FCUnpublish", &command_);
    amf0::EncodeNumber(0, &command_);
    amf0::EncodeNull(&command_);
    amf0::EncodeString(options_.stream, &command_);
    QueueCommand(kCommandChunkStream, 0);
  }
  amf0::EncodeString("deleteStream", &command_);
  amf0::EncodeNumber(0, &command_);
  amf0::EncodeNull(&command_);
  amf0::EncodeNumber(stream_id_, &command_);
  QueueCommand(kCommandChunkStream, 0);
  state_ = State::kUnpublished;
}

}  // namespace uringest::rtmp
