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
#include "media/script_data.h"

namespace uringest::rtmp {
namespace {

constexpr uint8_t kAmf3FormatAmf0 = 0;  // the leading byte of type 15 (17: any)

using media::amf0::Value;

// Debian's abseil has its own absl::string_view, not an alias of std::string_view.
std::string_view ToStd(absl::string_view s) { return {s.data(), s.size()}; }

}  // namespace

Session::Session(const SessionOptions& options, MessageSender* sender, FrameSink* sink,
                 PublishRegistry* registry, PublishAuthorizer* authorizer)
    : options_(options),
      send_(sender),
      sink_(sink),
      registry_(registry),
      authorizer_(authorizer),
      streams_(options.max_streams) {}

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

void Session::Close(std::string_view notice) {
  if (closed_) return;
  closed_ = true;
  for (uint32_t id = 1; id <= streams_.size(); ++id) {
    AbandonPending(id);
    if (!notice.empty() && streams_.IsPublishing(id)) {
      const Stream& stream = *streams_.At(id);
      send_.Status(id, "status", "NetStream.Unpublish.Success",
                   absl::StrFormat("%s/%s: %s", app_, stream.name, notice), stream.name);
    }
    EndPublishing(id, /*tell_client=*/false);
  }
}

bool Session::RequestReconnect(std::string_view tc_url, std::string_view description) {
  if (!can_reconnect()) return false;
  send_.Command(ReconnectRequestReply(tc_url, description));
  return true;
}

// ---- Media and data: the hot path ----

uint32_t Session::TargetStream(const Message& message) {
  const uint32_t id = message.header.stream_id;
  const uint32_t target = streams_.Route(id);
  if (target == 0 || target == id) return target;
  ++counters_.remapped_media;
  if (!remap_noticed_) NoteRemap(message, target);
  return target;
}

void Session::NoteRemap(const Message& message, uint32_t target) {
  remap_noticed_ = true;
  const MessageType type = message.header.type;
  remap_notice_ = absl::StrFormat(
      "%s on message stream %u, which this connection did not create, goes to stream %u "
      "(%s/%s), the only one publishing, as nginx-rtmp and SRS would take it",
      type == MessageType::kAudio   ? "audio"
      : type == MessageType::kVideo ? "video"
                                    : "data",
      message.header.stream_id, target, app_, streams_.At(target)->name);
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
  const Frame frame = MediaFrame(message, stream_id);
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
  if (args->size() > 1) {
    const Value& txn = (*args)[1];
    if (!txn.is_number()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("command %s with a transaction id that is not a number", name));
    }
    transaction_id = txn.number();
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
  send_.Error(command.transaction_id, "NetConnection.Call.Failed",
              absl::StrFormat("unknown command %s", command.name.substr(0, 64)));
  return absl::OkStatus();
}

absl::Status Session::OnConnect(const Command& command) {
  if (connected_) {
    send_.Error(command.transaction_id, "NetConnection.Connect.Rejected", "already connected");
    return absl::FailedPreconditionError("second connect on one connection");
  }
  const Value* object = command.arg(2);
  if (object == nullptr || !object->has_properties()) {
    return absl::InvalidArgumentError("connect without a command object");
  }
  auto [app, query] = SplitQuery(object->FindString("app"));
  while (!app.empty() && app.back() == '/') app.remove_suffix(1);
  if (absl::Status valid = ValidateName("application name", app, query, options_.max_name_length,
                                        options_.max_query_length);
      !valid.ok()) {
    send_.Error(command.transaction_id, "NetConnection.Connect.Rejected", ToStd(valid.message()));
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

void Session::SendConnectResponses(double transaction_id) {
  send_.ConnectControls(options_.window_ack_size, options_.peer_bandwidth, options_.chunk_size);
  send_.Command(ConnectResult(transaction_id, client_caps_, object_encoding_));
}

absl::Status Session::OnReleaseStream(const Command& command) {
  if (command.transaction_id != 0) send_.Result(command.transaction_id, Value::Undefined());
  return absl::OkStatus();
}

absl::Status Session::OnFcPublish(const Command& command) {
  const std::string_view name = SplitQuery(command.string_arg(3)).first;
  send_.Command(FcReply("onFCPublish", "NetStream.Publish.Start", name));
  return absl::OkStatus();
}

absl::Status Session::OnCreateStream(const Command& command) {
  if (const uint32_t id = streams_.Create(); id != 0) {
    send_.Result(command.transaction_id, Value::Number(id));
    return absl::OkStatus();
  }
  send_.Error(
      command.transaction_id, "NetConnection.Call.Failed",
      absl::StrFormat("too many streams: at most %u on one connection", options_.max_streams));
  return absl::OkStatus();
}

absl::Status Session::OnPublish(const Command& command) {
  const uint32_t id = command.message.header.stream_id;
  Stream* stream = streams_.Find(id);
  if (stream == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrFormat("publish on message stream %u, which createStream did not create", id));
  }
  if (stream->state != State::kCreated) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "second publish on message stream %u, which already publishes %s", id, stream->name));
  }
  const auto [name, query] = SplitQuery(command.string_arg(3));
  if (absl::Status valid = ValidateName("stream name", name, query, options_.max_name_length,
                                        options_.max_query_length);
      !valid.ok()) {
    return RefusePublish(id, Refusal::kInvalidName, ToStd(valid.message()));
  }
  stream->name = name;
  stream->query = query;
  const std::string_view type = command.string_arg(4);
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
      streams_.SetState(id, State::kPendingApproval);
      stream->ticket = ticket;
      ++pending_;
      return absl::OkStatus();
  }
  return absl::OkStatus();
}

absl::Status Session::CompleteApproval(uint32_t stream_id, uint64_t ticket, bool allowed,
                                       std::string_view reason) {
  Stream* stream = closed_ ? nullptr : streams_.At(stream_id);
  if (stream == nullptr || stream->state != State::kPendingApproval || stream->ticket != ticket) {
    return absl::OkStatus();
  }
  streams_.SetState(stream_id, State::kCreated);
  --pending_;
  if (pending_ == 0) unapproved_bytes_ = 0;
  return allowed ? StartPublishing(stream_id) : DenyPublish(stream_id, reason);
}

// REQUIRES: the stream is kCreated with its name, query and type set.
absl::Status Session::StartPublishing(uint32_t id) {
  Stream& stream = *streams_.At(id);
  if (absl::Status claimed = registry_->Claim(StreamName{.app = app_, .name = stream.name});
      !claimed.ok()) {
    stream.ForgetName();
    return RefusePublish(id, absl::IsAlreadyExists(claimed) ? Refusal::kTaken : Refusal::kBanned,
                         ToStd(claimed.message()));
  }
  // The sink first: a stream it can't carry (the ring's directory is full) is refused,
  // not started with its frames going nowhere.
  if (absl::Status carried = sink_->OnStreamBegin(id, StreamName{.app = app_, .name = stream.name});
      !carried.ok()) {
    registry_->Release(StreamName{.app = app_, .name = stream.name});
    const std::string why =
        absl::StrFormat("%s/%s can't be carried: %s", app_, stream.name, carried.message());
    stream.ForgetName();
    return RefusePublish(id, Refusal::kNoRoom, why);
  }
  streams_.SetState(id, State::kPublishing);
  send_.StreamBegin(id);
  send_.Status(id, "status", "NetStream.Publish.Start",
               absl::StrFormat("%s/%s is now published.", app_, stream.name), stream.name);
  return absl::OkStatus();
}

// REQUIRES: the stream is kCreated with its name set.
absl::Status Session::DenyPublish(uint32_t id, std::string_view reason) {
  Stream& stream = *streams_.At(id);
  const std::string what =
      absl::StrFormat("publish of %s/%s refused: %s", app_, stream.name, reason);
  stream.ForgetName();
  send_.Status(id, "error", "NetStream.Publish.BadName", what);
  ++refusals_.by_kind[size_t(Refusal::kDenied)];
  return absl::PermissionDeniedError(what);
}

void Session::AbandonPending(uint32_t id) {
  Stream& stream = *streams_.At(id);
  if (stream.state != State::kPendingApproval) return;
  streams_.SetState(id, State::kCreated);
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
  const Stream* stream = streams_.At(message.header.stream_id);
  if (stream == nullptr || stream->state != State::kPendingApproval) {
    return absl::OkStatus();
  }
  unapproved_bytes_ += message.payload_size();
  if (unapproved_bytes_ <= options_.max_unapproved_bytes) return absl::OkStatus();
  return absl::ResourceExhaustedError(
      absl::StrFormat("%u bytes of media sent before the publish of %s/%s was approved",
                      unapproved_bytes_, app_, stream->name));
}

absl::Status Session::RefusePublish(uint32_t stream_id, Refusal why, std::string_view description) {
  send_.Status(stream_id, "error", "NetStream.Publish.BadName", description);
  ++refusals_.count;
  ++refusals_.by_kind[size_t(why)];
  refusals_.last.assign(description.substr(0, 256));  // a line for the log, not a name's worth
  return absl::OkStatus();
}

absl::Status Session::OnFcUnpublish(const Command& command) {
  const std::string_view name = SplitQuery(command.string_arg(3)).first;
  send_.Command(FcReply("onFCUnpublish", "NetStream.Unpublish.Success", name));

  uint32_t target = command.message.header.stream_id;
  if (const Stream* stream = streams_.At(target);
      stream != nullptr && stream->state == State::kPendingApproval) {
    AbandonPending(target);
    return absl::OkStatus();
  }
  if (!streams_.IsPublishing(target)) target = streams_.FindPublishing(name);
  if (streams_.IsPublishing(target)) {
    EndPublishing(target, /*tell_client=*/true);
  } else {
    ++counters_.ignored_messages;
  }
  return absl::OkStatus();
}

absl::Status Session::OnDeleteStream(const Command& command) {
  const Value* arg = command.arg(3);
  const double n = arg != nullptr && arg->is_number() ? arg->number() : 0;
  const bool in_range = n >= 1 && n <= double(streams_.size()) && n == std::floor(n);
  Stream* stream = in_range ? streams_.Find(uint32_t(n)) : nullptr;
  if (stream == nullptr) {
    ++counters_.ignored_messages;
    return absl::OkStatus();
  }
  AbandonPending(uint32_t(n));
  EndPublishing(uint32_t(n), /*tell_client=*/true);
  streams_.Delete(uint32_t(n));
  return absl::OkStatus();
}

absl::Status Session::OnCloseStream(const Command& command) {
  const uint32_t id = command.message.header.stream_id;
  if (streams_.Find(id) != nullptr) AbandonPending(id);
  if (streams_.IsPublishing(id)) {
    EndPublishing(id, /*tell_client=*/true);
  } else {
    ++counters_.ignored_messages;
  }
  return absl::OkStatus();
}

absl::Status Session::OnCheckBandwidth(const Command& command) {
  send_.Result(command.transaction_id, Value::Undefined());
  return absl::OkStatus();
}

absl::Status Session::OnGetStreamLength(const Command& command) {
  send_.Result(command.transaction_id, Value::Number(0));
  return absl::OkStatus();
}

absl::Status Session::OnPlay(const Command& command) {
  send_.Status(command.message.header.stream_id, "error", "NetStream.Play.Failed",
               "uringest is an ingest server: play is not supported");
  return absl::OkStatus();
}

absl::Status Session::OnIgnored(const Command& /*command*/) {
  ++counters_.ignored_messages;
  return absl::OkStatus();
}

// ---- Streams ----

void Session::EndPublishing(uint32_t stream_id, bool tell_client) {
  if (!streams_.IsPublishing(stream_id)) return;
  Stream& stream = *streams_.At(stream_id);
  if (tell_client) {
    send_.Status(stream_id, "status", "NetStream.Unpublish.Success",
                 absl::StrFormat("%s/%s is now unpublished.", app_, stream.name), stream.name);
  }
  sink_->OnStreamEnd(stream_id);
  registry_->Release(StreamName{.app = app_, .name = stream.name});
  streams_.SetState(stream_id, State::kCreated);
  stream.ForgetName();
}

std::string_view Session::publish_query(uint32_t stream_id) const {
  return streams_.IsPublishing(stream_id) ? std::string_view(streams_.At(stream_id)->query)
                                          : std::string_view();
}

}  // namespace uringest::rtmp
