#include "loadgen/client_connection.h"

#include <algorithm>
#include <cassert>
#include <utility>

#include "absl/strings/str_cat.h"
#include "media/amf0.h"
#include "media/amf0_decoder.h"
#include "media/byte_order.h"
#include "media/script_data.h"

namespace uringest::loadgen {
namespace {

namespace amf0 = media::amf0;
using rtmp::MessageType;

constexpr uint32_t kMediaChunkStream = 6;  // audio and video, as ffmpeg sends them
constexpr uint32_t kDataChunkStream = 4;
constexpr size_t kServerHandshakeSize = 1 + 2 * rtmp::kHandshakeSize;  // S0 + S1 + S2
constexpr double kConnectTransaction = 1;
constexpr double kCreateStreamTransaction = 2;
constexpr uint32_t kMinChunkSize = 128;

}  // namespace

ClientConnection::ClientConnection(ClientOptions options) : options_(std::move(options)) {}

void ClientConnection::Start(uint32_t seed) {
  queue_.push_back(rtmp::kRtmpVersion);
  const size_t c1 = queue_.size();
  queue_.resize(c1 + rtmp::kHandshakeSize, 0);  // time 0, zero 0: the plain handshake
  uint32_t x = seed | 1;
  for (size_t i = 8; i < rtmp::kHandshakeSize; ++i) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;  // xorshift32
    queue_[c1 + i] = uint8_t(x);
  }
}

std::span<const uint8_t> ClientConnection::NextSend() {
  if (flight_sent_ == flight_.size() && !queue_.empty()) {
    std::swap(flight_, queue_);
    queue_.clear();
    flight_sent_ = 0;
  }
  return std::span<const uint8_t>(flight_).subspan(flight_sent_);
}

void ClientConnection::Sent(size_t n) {
  assert(flight_sent_ + n <= flight_.size());
  flight_sent_ += n;
  if (flight_sent_ == flight_.size()) {
    flight_.clear();
    flight_sent_ = 0;
  }
}

absl::Status ClientConnection::Receive(std::span<const uint8_t> in) {
  bytes_received_ += in.size();
  if (state_ == State::kHandshake) {
    if (absl::Status s = ReceiveHandshake(&in); !s.ok()) return s;
  }
  rtmp::Message message;
  // The reader may hold read-ahead bytes that complete a message after `in` is used up.
  while (!in.empty() || reader_.has_pending()) {
    absl::StatusOr<rtmp::ChunkReader::Result> r = reader_.Read(in, &message);
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
absl::Status ClientConnection::ReceiveHandshake(std::span<const uint8_t>* in) {
  while (!in->empty() && handshake_received_ < kServerHandshakeSize) {
    if (handshake_received_ == 0) {
      if ((*in)[0] != rtmp::kRtmpVersion) {
        return absl::InvalidArgumentError(absl::StrCat("server sent S0 ", (*in)[0]));
      }
      ++handshake_received_;
      *in = in->subspan(1);
      continue;
    }
    const size_t s1_end = 1 + rtmp::kHandshakeSize;
    const size_t limit = handshake_received_ < s1_end ? s1_end : kServerHandshakeSize;
    const size_t n = std::min(in->size(), limit - handshake_received_);
    if (handshake_received_ < s1_end) queue_.insert(queue_.end(), in->begin(), in->begin() + n);
    handshake_received_ += uint32_t(n);
    *in = in->subspan(n);
  }
  if (handshake_received_ == kServerHandshakeSize) SendConnect();
  return absl::OkStatus();
}

absl::Status ClientConnection::HandleMessage(const rtmp::Message& message) {
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

void ClientConnection::HandleUserControl(std::span<const uint8_t> payload) {
  if (payload.size() < 6 ||
      media::LoadU16(payload.data()) != uint16_t(rtmp::UserControlEvent::kPingRequest)) {
    return;
  }
  uint8_t body[6] = {0, uint8_t(rtmp::UserControlEvent::kPingResponse)};
  std::copy(payload.begin() + 2, payload.begin() + 6, body + 2);
  writer_.Write({.chunk_stream_id = rtmp::kControlChunkStream, .type = MessageType::kUserControl},
                body, &queue_);
}

absl::Status ClientConnection::HandleCommand(std::span<const uint8_t> payload) {
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

absl::Status ClientConnection::HandleStatus(const amf0::Value& info) {
  const std::string_view code = info.FindString("code");
  if (code == "NetStream.Publish.Start" && state_ == State::kPublishing) {
    state_ = State::kLive;
  } else if (info.FindString("level") == "error") {
    return absl::PermissionDeniedError(
        absl::StrCat("server refused the publish: ", std::string(code)));
  }
  return absl::OkStatus();
}

void ClientConnection::SendControl(MessageType type, uint32_t value) {
  uint8_t body[4];
  media::StoreU32(body, value);
  writer_.Write({.chunk_stream_id = rtmp::kControlChunkStream, .type = type}, body, &queue_);
}

void ClientConnection::QueueCommand(uint32_t csid, uint32_t stream_id) {
  writer_.Write(
      {.chunk_stream_id = csid, .type = MessageType::kCommandAmf0, .stream_id = stream_id},
      command_, &queue_);
  command_.clear();
}

void ClientConnection::SendConnect() {
  amf0::EncodeString("connect", &command_);
  amf0::EncodeNumber(kConnectTransaction, &command_);
  amf0::EncodeObjectStart(&command_);
  amf0::EncodeProperty("app", amf0::Value::String(options_.app), &command_);
  amf0::EncodeProperty("type", amf0::Value::String("nonprivate"), &command_);
  amf0::EncodeProperty("flashVer", amf0::Value::String("FMLE/3.0 (compatible; uringest-load)"),
                       &command_);
  amf0::EncodeProperty("tcUrl", amf0::Value::String(options_.tc_url), &command_);
  amf0::EncodeObjectEnd(&command_);
  QueueCommand(rtmp::kCommandChunkStream, 0);
  state_ = State::kConnecting;
}

void ClientConnection::SendCreateStream() {
  amf0::EncodeString("createStream", &command_);
  amf0::EncodeNumber(kCreateStreamTransaction, &command_);
  amf0::EncodeNull(&command_);
  QueueCommand(rtmp::kCommandChunkStream, 0);
  state_ = State::kCreatingStream;
}

void ClientConnection::SendPublish() {
  amf0::EncodeString("publish", &command_);
  amf0::EncodeNumber(0, &command_);
  amf0::EncodeNull(&command_);
  amf0::EncodeString(options_.stream, &command_);
  amf0::EncodeString("live", &command_);
  QueueCommand(rtmp::kStreamCommandChunkStream, stream_id_);
  state_ = State::kPublishing;
}

void ClientConnection::SendMedia(const MediaFrame& frame, const Stamp* stamp) {
  assert(live());
  const rtmp::MessageHeader header{.chunk_stream_id = kMediaChunkStream,
                                   .type = frame.type,
                                   .stream_id = stream_id_,
                                   .timestamp = frame.timestamp_ms};
  const size_t stamp_at = stamp != nullptr ? StampOffset(frame.body) : 0;
  if (stamp_at == 0) {
    writer_.Write(header, frame.body, &queue_);
    return;
  }
  // The body is shared by every publisher: the stamp goes into the copy on the wire,
  // inside the first chunk (chunk size >= 128 > kStampedMin).
  [[maybe_unused]] const size_t start = queue_.size();
  rtmp::ChunkWriter::Cursor cursor = writer_.Begin(header, frame.body);
  bool done = writer_.WriteChunk(&cursor, &queue_);
  const size_t first_payload = std::min<size_t>(writer_.chunk_size(), frame.body.size());
  const size_t body_at = queue_.size() - first_payload;
  assert(body_at > start);
  WriteStamp(*stamp, queue_.data() + body_at + stamp_at);
  while (!done) done = writer_.WriteChunk(&cursor, &queue_);
}

void ClientConnection::SendMetadata(std::span<const uint8_t> metadata) {
  assert(live());
  amf0::EncodeString(media::kSetDataFrame, &command_);
  command_.insert(command_.end(), metadata.begin(), metadata.end());
  writer_.Write({.chunk_stream_id = kDataChunkStream,
                 .type = MessageType::kDataAmf0,
                 .stream_id = stream_id_},
                command_, &queue_);
  command_.clear();
}

}  // namespace uringest::loadgen
