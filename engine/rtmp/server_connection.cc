#include "engine/rtmp/server_connection.h"

#include <cassert>

#include "absl/strings/str_format.h"
#include "media/byte_order.h"

namespace uringest::rtmp {

namespace {

// The session hands audio and video on as the reader gives them, pieces included.
ChunkReaderOptions Gathering(ChunkReaderOptions options) {
  options.gather_media = true;
  return options;
}

}  // namespace

ServerConnection::ServerConnection(const ServerConnectionOptions& options, FrameSink* sink,
                                   PublishRegistry* registry, PublishAuthorizer* authorizer)
    : handshake_(std::make_unique<ServerHandshake>(options.handshake)),
      reader_(Gathering(options.reader)),
      session_(options.session, this, sink, registry, authorizer) {}

ServerConnection::~ServerConnection() { Close(); }

void ServerConnection::Close(std::string_view notice) { session_.Close(notice); }

void ServerConnection::TakeOutput(size_t n) {
  assert(n <= out_.size() - out_taken_);
  out_taken_ += n;
  if (out_taken_ == out_.size()) {
    // An idle connection holds no output buffer: the handshake's 3 KiB and the connect
    // responses go once sent. A small one stays for acks and pings.
    if (out_.capacity() > kRetainedOutput) {
      std::vector<uint8_t>().swap(out_);
    } else {
      out_.clear();
    }
    out_taken_ = 0;
  }
}

void ServerConnection::Send(const MessageHeader& header, std::span<const uint8_t> payload) {
  writer_.Write(header, payload, &out_);
}

void ServerConnection::SendControl(MessageType type, std::span<const uint8_t> payload) {
  Send(MessageHeader{.chunk_stream_id = kControlChunkStream, .type = type}, payload);
}

absl::Status ServerConnection::Receive(std::span<const uint8_t> in, bool more_queued) {
  counters_.bytes_received += in.size();
  if (handshake_ != nullptr) {
    if (absl::Status s = ReceiveHandshake(&in); !s.ok()) return s;
  }
  while (!in.empty() || reader_.has_pending()) {
    Message message;
    absl::StatusOr<ChunkReader::Result> r = reader_.Read(in, &message);
    if (!r.ok()) return r.status();
    in = in.subspan(r->consumed);
    if (r->message_ready) {
      ++counters_.messages_received;
      if (absl::Status s = HandleMessage(message); !s.ok()) return s;
    }
  }
  reader_.ReleaseHandedOut();
  if (handshake_ == nullptr) AcknowledgeReceived(more_queued);
  return absl::OkStatus();
}

absl::Status ServerConnection::ReceiveHandshake(std::span<const uint8_t>* in) {
  absl::StatusOr<size_t> consumed = handshake_->Consume(*in);
  if (!consumed.ok()) return consumed.status();
  *in = in->subspan(*consumed);
  const std::span<const uint8_t> answer = handshake_->output();
  out_.insert(out_.end(), answer.begin(), answer.end());
  handshake_->MarkOutputTaken(answer.size());
  if (handshake_->complete()) handshake_.reset();
  return absl::OkStatus();
}

// The acknowledgement's sequence number is the count of bytes received (handshake
// included), modulo 2^32: it wraps every 4 GiB and acks go on (servers that stop acking
// make encoders stall).
void ServerConnection::AcknowledgeReceived(bool more_queued) {
  if (ack_window_ == 0) return;
  const uint64_t unacked = counters_.bytes_received - acked_;
  // Wait for a drained socket (see Receive()), but never past a second window: an
  // encoder that waits for acks must not stall.
  if (unacked < ack_window_ || (more_queued && unacked < 2 * uint64_t{ack_window_})) return;
  acked_ = counters_.bytes_received;
  uint8_t sequence[4];
  media::StoreU32(sequence, static_cast<uint32_t>(counters_.bytes_received));
  SendControl(MessageType::kAcknowledgement, sequence);
  ++counters_.acks_sent;
}

absl::Status ServerConnection::HandleMessage(const Message& message) {
  switch (message.header.type) {
    case MessageType::kSetChunkSize:
    case MessageType::kAbort:
      return absl::OkStatus();  // the reader applied them
    case MessageType::kAcknowledgement:
    case MessageType::kSetPeerBandwidth:
      return absl::OkStatus();  // this server sends too little for either to matter
    case MessageType::kWindowAckSize:
      if (message.payload.size() < 4) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "Window Acknowledgement Size of %u bytes, 4 expected", message.payload.size()));
      }
      if (uint32_t window = media::LoadU32(message.payload.data()); window > 0) {
        ack_window_ = window;
        acked_ = counters_.bytes_received;  // the first ack comes a window from now
      }
      return absl::OkStatus();
    case MessageType::kUserControl:
      return HandleUserControl(message);
    default:
      return session_.OnMessage(message);
  }
}

absl::Status ServerConnection::HandleUserControl(const Message& message) {
  const std::span<const uint8_t> p = message.payload;
  if (p.size() < 2) {
    return absl::InvalidArgumentError(
        absl::StrFormat("User Control message of %u bytes: no event type", p.size()));
  }
  const auto event = static_cast<UserControlEvent>(media::LoadU16(p.data()));
  if (event == UserControlEvent::kPingRequest && p.size() >= 6) {
    uint8_t response[6];
    media::StoreU16(response, static_cast<uint16_t>(UserControlEvent::kPingResponse));
    media::StoreU32(response + 2, media::LoadU32(p.data() + 2));
    SendControl(MessageType::kUserControl, response);
    ++counters_.pings_answered;
  } else if (event == UserControlEvent::kSetBufferLength && p.size() >= 10) {
    peer_buffer_length_ms_ = media::LoadU32(p.data() + 6);
  }
  return absl::OkStatus();  // Stream Begin, Ping Response and the rest need no answer
}

}  // namespace uringest::rtmp
