// session.cc: see session.h. Command layouts (RTMP spec 7.2) are
//   name(string) transaction id(number) command object(object or null) arguments...
// and every response mirrors what nginx-rtmp and SRS send, which encoders are tested
// against.

#include "engine/rtmp/session.h"

#include <cmath>
#include <utility>

#include "absl/strings/str_format.h"
#include "engine/rtmp/aggregate.h"
#include "engine/rtmp/command_replies.h"
#include "engine/rtmp/rtmp_format.h"
#include "engine/rtmp/stream_names.h"
#include "media/amf0_decoder.h"
#include "media/byte_order.h"
#include "media/media_tag.h"
#include "media/script_data.h"

namespace uringest::rtmp {
namespace {

constexpr uint8_t kAmf3FormatAmf0 = 0;  // the leading byte of type 15 (17: any)

using media::amf0::Value;

// Debian's abseil has its own absl::string_view, not an alias of std::string_view.
std::string_view ToStd(absl::string_view s) { return {s.data(), s.size()}; }

const Value* Arg(const std::vector<Value>& args, size_t i) {
  return i < args.size() ? &args[i] : nullptr;
}

std::string_view StringArg(const std::vector<Value>& args, size_t i) {
  const Value* v = Arg(args, i);
  return v != nullptr && v->is_string() ? std::string_view(v->string()) : std::string_view();
}

}  // namespace

Session::Session(const SessionOptions& options, MessageSender* sender, FrameSink* sink,
                 PublishRegistry* registry, PublishAuthorizer* authorizer)
    : options_(options),
      sender_(sender),
      sink_(sink),
      registry_(registry),
      authorizer_(authorizer) {}

Session::~Session() { Close(); }

absl::Status Session::OnMessage(const Message& message) {
  if (closed_) return absl::FailedPreconditionError("message after the session was closed");
  if (pending_ > 0) {
    if (absl::Status s = CountUnapproved(message); !s.ok()) return s;
  }
  const std::span<const uint8_t> payload = message.payload;
  switch (message.header.type) {
    case MessageType::kAudio:
    case MessageType::kVideo:
      HandleMedia(message);
      return absl::OkStatus();
    case MessageType::kDataAmf0:
      HandleData(message, payload);
      return absl::OkStatus();
    case MessageType::kDataAmf3:
      if (payload.empty() || payload[0] != kAmf3FormatAmf0) {
        ++counters_.ignored_data;
      } else {
        HandleData(message, payload.subspan(1));
      }
      return absl::OkStatus();
    case MessageType::kCommandAmf0:
      return HandleCommand(message, payload);
    case MessageType::kCommandAmf3:
      // Its first byte is skipped whatever it is (nginx-rtmp and SRS do so): the AMF0
      // after it decides.
      return HandleCommand(message, payload.empty() ? payload : payload.subspan(1));
    case MessageType::kAggregate:
      return HandleAggregate(message);
    default:
      ++counters_.ignored_messages;
      return absl::OkStatus();
  }
}

void Session::Close() {
  if (closed_) return;
  closed_ = true;
  for (uint32_t id = 1; id <= streams_.size(); ++id) {
    AbandonPending(id);
    EndPublishing(id, /*tell_client=*/false);
  }
}

// ---- Media and data: the hot path ----

bool Session::IsPublishing(uint32_t stream_id) const {
  const Stream* stream = StreamAt(stream_id);
  return stream != nullptr && stream->state == StreamState::kPublishing;
}

uint32_t Session::TargetStream(const Message& message) {
  const uint32_t id = message.header.stream_id;
  if (IsPublishing(id)) return id;
  if (sole_publishing_ == 0 || FindStream(id) != nullptr) return 0;
  ++counters_.remapped_media;
  if (!remap_noticed_) NoteRemap(message);
  return sole_publishing_;
}

void Session::NoteRemap(const Message& message) {
  remap_noticed_ = true;
  const MessageType type = message.header.type;
  remap_notice_ = absl::StrFormat(
      "%s on message stream %u, which this connection did not create, goes to stream %u "
      "(%s/%s), the only one publishing, as nginx-rtmp and SRS would take it",
      type == MessageType::kAudio   ? "audio"
      : type == MessageType::kVideo ? "video"
                                    : "data",
      message.header.stream_id, sole_publishing_, app_, streams_[sole_publishing_ - 1].name);
}

void Session::HandleMedia(const Message& message) {
  if (message.payload.empty()) {
    ++counters_.dropped_empty_media;
    return;
  }
  const uint32_t stream_id = TargetStream(message);
  if (stream_id == 0) {
    ++counters_.dropped_unpublished_media;
    return;
  }
  const bool video = message.header.type == MessageType::kVideo;
  const media::MediaTag tag =
      video ? media::ParseVideoTag(message.payload) : media::ParseAudioTag(message.payload);
  const Frame frame{.type = video ? FrameType::kVideo : FrameType::kAudio,
                    .stream_id = stream_id,
                    .dts = message.header.timestamp,
                    .composition_offset = tag.composition_offset,
                    .keyframe = tag.keyframe,
                    .sequence_header = tag.sequence_header,
                    .codec = tag.codec,
                    .ex_header = tag.ex_header,
                    .command = tag.command,
                    .packet_type = tag.packet_type,
                    .track_id = tag.track_id,
                    .many_tracks = tag.many_tracks,
                    .time_offset_ns = tag.time_offset_ns,
                    .payload = message.payload,
                    .pieces = message.pieces};
  ++counters_.frames;
  sink_->OnFrame(frame);
}

void Session::HandleData(const Message& message, std::span<const uint8_t> amf) {
  const uint32_t stream_id = TargetStream(message);
  const std::span<const uint8_t> payload =
      stream_id != 0 ? media::UnwrapSetDataFrame(amf) : amf.first(0);
  if (payload.empty()) {
    ++counters_.ignored_data;
    return;
  }
  const Frame frame{.type = FrameType::kData,
                    .stream_id = stream_id,
                    .dts = message.header.timestamp,
                    .keyframe = true,
                    .payload = payload};
  ++counters_.frames;
  sink_->OnFrame(frame);
}

absl::Status Session::HandleAggregate(const Message& message) {
  AggregateReader reader(message);
  Message sub;
  while (reader.Next(&sub)) {
    if (sub.header.type == MessageType::kDataAmf0) {
      HandleData(sub, sub.payload);
    } else {
      HandleMedia(sub);
    }
  }
  counters_.ignored_messages += reader.skipped();
  return reader.status();
}

// ---- Commands ----

absl::Status Session::HandleCommand(const Message& message, std::span<const uint8_t> amf) {
  if (media::IsMetadataMessage(amf)) {
    HandleData(message, amf);  // undecoded, as any data message
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<Value>> args = media::amf0::DecodeAll(amf);
  if (!args.ok()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("malformed AMF0 in a command message of %u bytes: %s", amf.size(),
                        args.status().message()));
  }
  if (args->empty() || !(*args)[0].is_string()) {
    return absl::InvalidArgumentError("command message that does not start with a name");
  }
  const std::string& name = (*args)[0].string();
  double transaction_id = 0;
  if (const Value* txn = Arg(*args, 1); txn != nullptr) {
    if (!txn->is_number()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("command %s with a transaction id that is not a number", name));
    }
    transaction_id = txn->number();
  }
  return DispatchCommand(
      Command{.message = message, .name = name, .transaction_id = transaction_id, .args = *args});
}

absl::Status Session::DispatchCommand(const Command& command) {
  struct Entry {
    std::string_view name;
    CommandHandler handler;
    bool needs_connect;
  };
  static constexpr Entry kCommands[] = {
      {"connect", &Session::OnConnect, false},
      {"releaseStream", &Session::OnReleaseStream, true},
      {"FCPublish", &Session::OnFcPublish, true},
      {"createStream", &Session::OnCreateStream, true},
      {"publish", &Session::OnPublish, true},
      {"FCUnpublish", &Session::OnFcUnpublish, true},
      {"deleteStream", &Session::OnDeleteStream, true},
      {"closeStream", &Session::OnCloseStream, true},
      {"_checkbw", &Session::OnCheckBandwidth, false},
      {"getStreamLength", &Session::OnGetStreamLength, false},
      {"play", &Session::OnPlay, true},
      {"play2", &Session::OnPlay, true},
      // Responses and notifications a client may send: nothing to answer.
      {"_result", &Session::OnIgnored, false},
      {"_error", &Session::OnIgnored, false},
      {"onStatus", &Session::OnIgnored, false},
      {"onBWDone", &Session::OnIgnored, false},
  };
  for (const Entry& entry : kCommands) {
    if (entry.name != command.name) continue;
    if (entry.needs_connect && !connected_) {
      return absl::FailedPreconditionError(absl::StrFormat("%s before connect", command.name));
    }
    return (this->*entry.handler)(command);
  }
  if (command.transaction_id == 0) return OnIgnored(command);
  // The name is echoed at most 64 bytes long: a peer can't make the reply grow with it.
  SendError(command.transaction_id, "NetConnection.Call.Failed",
            absl::StrFormat("unknown command %s", command.name.substr(0, 64)));
  return absl::OkStatus();
}

absl::Status Session::OnConnect(const Command& command) {
  if (connected_) {
    SendError(command.transaction_id, "NetConnection.Connect.Rejected", "already connected");
    return absl::FailedPreconditionError("second connect on one connection");
  }
  const Value* object = Arg(command.args, 2);
  if (object == nullptr || !object->has_properties()) {
    return absl::InvalidArgumentError("connect without a command object");
  }
  auto [app, query] = SplitQuery(object->FindString("app"));
  while (!app.empty() && app.back() == '/') app.remove_suffix(1);
  if (absl::Status valid = ValidateName("application name", app, query, options_.max_name_length,
                                        options_.max_query_length);
      !valid.ok()) {
    SendError(command.transaction_id, "NetConnection.Connect.Rejected", ToStd(valid.message()));
    return valid;
  }
  connected_ = true;
  app_ = app;
  app_query_ = query;
  tc_url_ = object->FindString("tcUrl");
  flash_ver_ = object->FindString("flashVer");
  object_encoding_ = object->FindNumber("objectEncoding", 0);
  client_caps_ = ReadEnhancedCaps(*object);
  SendConnectResponses(command.transaction_id);
  return absl::OkStatus();
}

// Window Acknowledgement Size, Set Peer Bandwidth and Set Chunk Size, then _result.
void Session::SendConnectResponses(double transaction_id) {
  std::vector<uint8_t> control;
  media::AppendU32(&control, options_.window_ack_size);
  SendProtocolControl(MessageType::kWindowAckSize, control);
  control.clear();
  media::AppendU32(&control, options_.peer_bandwidth);
  media::AppendU8(&control, uint8_t(BandwidthLimit::kDynamic));
  SendProtocolControl(MessageType::kSetPeerBandwidth, control);
  control.clear();
  media::AppendU32(&control, options_.chunk_size);
  SendProtocolControl(MessageType::kSetChunkSize, control);

  SendCommand(ConnectResult(transaction_id, client_caps_, object_encoding_));
}

absl::Status Session::OnReleaseStream(const Command& command) {
  if (command.transaction_id != 0) SendResult(command.transaction_id, Value::Undefined());
  return absl::OkStatus();
}

absl::Status Session::OnFcPublish(const Command& command) {
  const std::string_view name = SplitQuery(StringArg(command.args, 3)).first;
  SendCommand(FcReply("onFCPublish", "NetStream.Publish.Start", name));
  return absl::OkStatus();
}

absl::Status Session::OnCreateStream(const Command& command) {
  uint32_t id = 1;
  while (id <= streams_.size() && streams_[id - 1].state != StreamState::kFree) ++id;
  if (id > streams_.size() && id <= options_.max_streams) streams_.emplace_back();
  if (id <= streams_.size()) {
    streams_[id - 1].state = StreamState::kCreated;
    SendResult(command.transaction_id, Value::Number(id));
    return absl::OkStatus();
  }
  SendError(
      command.transaction_id, "NetConnection.Call.Failed",
      absl::StrFormat("too many streams: at most %u on one connection", options_.max_streams));
  return absl::OkStatus();
}

absl::Status Session::OnPublish(const Command& command) {
  const uint32_t id = command.message.header.stream_id;
  Stream* stream = FindStream(id);
  if (stream == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrFormat("publish on message stream %u, which createStream did not create", id));
  }
  if (stream->state != StreamState::kCreated) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "second publish on message stream %u, which already publishes %s", id, stream->name));
  }
  const auto [name, query] = SplitQuery(StringArg(command.args, 3));
  if (absl::Status valid = ValidateName("stream name", name, query, options_.max_name_length,
                                        options_.max_query_length);
      !valid.ok()) {
    return RefusePublish(id, ToStd(valid.message()));
  }
  stream->name = name;
  stream->query = query;
  const std::string_view type = StringArg(command.args, 4);
  stream->type = type.empty() ? "live" : type;
  if (authorizer_ == nullptr) return StartPublishing(id);
  const uint64_t ticket = next_ticket_++;
  PublishVerdict verdict =
      authorizer_->Authorize(PublishRequest{.stream_id = id,
                                            .ticket = ticket,
                                            .app = app_,
                                            .name = stream->name,
                                            .key = PublishKey(stream->query, app_query_)});
  switch (verdict.kind) {
    case PublishVerdict::Kind::kAllow:
      return StartPublishing(id);
    case PublishVerdict::Kind::kDeny:
      return DenyPublish(id, verdict.reason);
    case PublishVerdict::Kind::kPending:
      stream->state = StreamState::kPendingApproval;
      stream->ticket = ticket;
      ++pending_;
      return absl::OkStatus();
  }
  return absl::OkStatus();
}

absl::Status Session::CompleteApproval(uint32_t stream_id, uint64_t ticket, bool allowed,
                                       std::string_view reason) {
  Stream* stream = closed_ ? nullptr : StreamAt(stream_id);
  if (stream == nullptr || stream->state != StreamState::kPendingApproval ||
      stream->ticket != ticket) {
    return absl::OkStatus();
  }
  stream->state = StreamState::kCreated;
  --pending_;
  if (pending_ == 0) unapproved_bytes_ = 0;
  return allowed ? StartPublishing(stream_id) : DenyPublish(stream_id, reason);
}

// REQUIRES: the stream is kCreated with its name, query and type set.
absl::Status Session::StartPublishing(uint32_t id) {
  Stream& stream = streams_[id - 1];
  if (!registry_->Claim(StreamName{.app = app_, .name = stream.name})) {
    const std::string taken = absl::StrFormat("%s/%s is already publishing", app_, stream.name);
    stream.ForgetName();
    return RefusePublish(id, taken);
  }
  // The sink first: a stream it can't carry (the ring's directory is full) is refused,
  // not started with its frames going nowhere.
  if (absl::Status carried = sink_->OnStreamBegin(id, StreamName{.app = app_, .name = stream.name});
      !carried.ok()) {
    registry_->Release(StreamName{.app = app_, .name = stream.name});
    const std::string why =
        absl::StrFormat("%s/%s can't be carried: %s", app_, stream.name, carried.message());
    stream.ForgetName();
    return RefusePublish(id, why);
  }
  stream.state = StreamState::kPublishing;
  UpdateSolePublishing();
  std::vector<uint8_t> begin;
  media::AppendU16(&begin, uint16_t(UserControlEvent::kStreamBegin));
  media::AppendU32(&begin, id);
  SendProtocolControl(MessageType::kUserControl, begin);
  SendStatus(id, "status", "NetStream.Publish.Start",
             absl::StrFormat("%s/%s is now published.", app_, stream.name), stream.name);
  return absl::OkStatus();
}

// REQUIRES: the stream is kCreated with its name set.
absl::Status Session::DenyPublish(uint32_t id, std::string_view reason) {
  Stream& stream = streams_[id - 1];
  const std::string what =
      absl::StrFormat("publish of %s/%s refused: %s", app_, stream.name, reason);
  stream.ForgetName();
  SendStatus(id, "error", "NetStream.Publish.BadName", what);
  return absl::PermissionDeniedError(what);
}

void Session::AbandonPending(uint32_t id) {
  Stream& stream = streams_[id - 1];
  if (stream.state != StreamState::kPendingApproval) return;
  stream.state = StreamState::kCreated;
  stream.ForgetName();
  if (--pending_ == 0) unapproved_bytes_ = 0;
}

absl::Status Session::CountUnapproved(const Message& message) {
  switch (message.header.type) {
    case MessageType::kAudio:
    case MessageType::kVideo:
    case MessageType::kDataAmf0:
    case MessageType::kDataAmf3:
    case MessageType::kAggregate:
      break;
    default:
      return absl::OkStatus();
  }
  const Stream* stream = StreamAt(message.header.stream_id);
  if (stream == nullptr || stream->state != StreamState::kPendingApproval) {
    return absl::OkStatus();
  }
  unapproved_bytes_ += message.payload_size();
  if (unapproved_bytes_ <= options_.max_unapproved_bytes) return absl::OkStatus();
  return absl::ResourceExhaustedError(
      absl::StrFormat("%u bytes of media sent before the publish of %s/%s was approved",
                      unapproved_bytes_, app_, stream->name));
}

absl::Status Session::RefusePublish(uint32_t stream_id, std::string_view description) {
  SendStatus(stream_id, "error", "NetStream.Publish.BadName", description);
  ++refusals_.count;
  refusals_.last.assign(description.substr(0, 256));  // a line for the log, not a name's worth
  return absl::OkStatus();
}

absl::Status Session::OnFcUnpublish(const Command& command) {
  const std::string_view name = SplitQuery(StringArg(command.args, 3)).first;
  SendCommand(FcReply("onFCUnpublish", "NetStream.Unpublish.Success", name));

  uint32_t target = command.message.header.stream_id;
  if (const Stream* stream = StreamAt(target);
      stream != nullptr && stream->state == StreamState::kPendingApproval) {
    AbandonPending(target);
    return absl::OkStatus();
  }
  for (uint32_t id = 1; !IsPublishing(target) && id <= streams_.size(); ++id) {
    if (IsPublishing(id) && streams_[id - 1].name == name) target = id;
  }
  if (IsPublishing(target)) {
    EndPublishing(target, /*tell_client=*/true);
  } else {
    ++counters_.ignored_messages;
  }
  return absl::OkStatus();
}

absl::Status Session::OnDeleteStream(const Command& command) {
  const Value* arg = Arg(command.args, 3);
  const double n = arg != nullptr && arg->is_number() ? arg->number() : 0;
  const bool in_range = n >= 1 && n <= double(streams_.size()) && n == std::floor(n);
  Stream* stream = in_range ? FindStream(uint32_t(n)) : nullptr;
  if (stream == nullptr) {
    ++counters_.ignored_messages;
    return absl::OkStatus();
  }
  AbandonPending(uint32_t(n));
  EndPublishing(uint32_t(n), /*tell_client=*/true);
  *stream = Stream{};
  return absl::OkStatus();
}

absl::Status Session::OnCloseStream(const Command& command) {
  const uint32_t id = command.message.header.stream_id;
  if (FindStream(id) != nullptr) AbandonPending(id);
  if (IsPublishing(id)) {
    EndPublishing(id, /*tell_client=*/true);
  } else {
    ++counters_.ignored_messages;
  }
  return absl::OkStatus();
}

absl::Status Session::OnCheckBandwidth(const Command& command) {
  SendResult(command.transaction_id, Value::Undefined());
  return absl::OkStatus();
}

absl::Status Session::OnGetStreamLength(const Command& command) {
  SendResult(command.transaction_id, Value::Number(0));
  return absl::OkStatus();
}

absl::Status Session::OnPlay(const Command& command) {
  SendStatus(command.message.header.stream_id, "error", "NetStream.Play.Failed",
             "uringest is an ingest server: play is not supported");
  return absl::OkStatus();
}

absl::Status Session::OnIgnored(const Command& /*command*/) {
  ++counters_.ignored_messages;
  return absl::OkStatus();
}

// ---- Streams ----

Session::Stream* Session::StreamAt(uint32_t stream_id) {
  return stream_id >= 1 && stream_id <= streams_.size() ? &streams_[stream_id - 1] : nullptr;
}

const Session::Stream* Session::StreamAt(uint32_t stream_id) const {
  return stream_id >= 1 && stream_id <= streams_.size() ? &streams_[stream_id - 1] : nullptr;
}

Session::Stream* Session::FindStream(uint32_t stream_id) {
  Stream* stream = StreamAt(stream_id);
  return stream != nullptr && stream->state != StreamState::kFree ? stream : nullptr;
}

void Session::EndPublishing(uint32_t stream_id, bool tell_client) {
  if (!IsPublishing(stream_id)) return;
  Stream& stream = streams_[stream_id - 1];
  if (tell_client) {
    SendStatus(stream_id, "status", "NetStream.Unpublish.Success",
               absl::StrFormat("%s/%s is now unpublished.", app_, stream.name), stream.name);
  }
  sink_->OnStreamEnd(stream_id);
  registry_->Release(StreamName{.app = app_, .name = stream.name});
  stream.state = StreamState::kCreated;
  UpdateSolePublishing();
  stream.ForgetName();
}

void Session::UpdateSolePublishing() {
  uint32_t sole = 0;
  for (uint32_t id = 1; id <= streams_.size(); ++id) {
    if (!IsPublishing(id)) continue;
    if (sole != 0) {
      sole_publishing_ = 0;
      return;
    }
    sole = id;
  }
  sole_publishing_ = sole;
}

std::vector<Session::PublishingStream> Session::publishing_streams() const {
  std::vector<PublishingStream> out;
  for (uint32_t id = 1; id <= streams_.size(); ++id) {
    const Stream& s = streams_[id - 1];
    if (s.state == StreamState::kPublishing) out.push_back({id, s.name, s.type});
  }
  return out;
}

std::string_view Session::publish_query(uint32_t stream_id) const {
  return IsPublishing(stream_id) ? std::string_view(streams_[stream_id - 1].query)
                                 : std::string_view();
}

// ---- Sending ----

void Session::SendProtocolControl(MessageType type, std::span<const uint8_t> payload) {
  sender_->Send(MessageHeader{.chunk_stream_id = kControlChunkStream, .type = type}, payload);
}

void Session::SendCommand(const std::vector<uint8_t>& payload) {
  sender_->Send(
      MessageHeader{.chunk_stream_id = kCommandChunkStream, .type = MessageType::kCommandAmf0},
      payload);
}

void Session::SendStatus(uint32_t stream_id, std::string_view level, std::string_view code,
                         std::string_view description, std::string_view details) {
  sender_->Send(MessageHeader{.chunk_stream_id = kStreamCommandChunkStream,
                              .type = MessageType::kCommandAmf0,
                              .stream_id = stream_id},
                StatusReply(level, code, description, details));
}

void Session::SendResult(double transaction_id, const Value& value) {
  SendCommand(ResultReply(transaction_id, value));
}

void Session::SendError(double transaction_id, std::string_view code,
                        std::string_view description) {
  SendCommand(ErrorReply(transaction_id, code, description));
}

}  // namespace uringest::rtmp
