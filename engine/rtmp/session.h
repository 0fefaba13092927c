// session.h: the publish session, the RTMP message layer above the chunk stream. One
// Session per connection takes every complete message that is not a chunk-layer or
// protocol control message (types 1..6 stay with the connection core): it answers the
// NetConnection and NetStream commands of a publisher (connect, releaseStream,
// FCPublish, createStream, publish, FCUnpublish, deleteStream, closeStream, ...), claims
// stream names in the PublishRegistry, and turns audio, video, data and aggregate
// messages into Frames for the FrameSink. It does no I/O and no logging: responses go to
// the MessageSender, failures come back as Status for the caller to log.
//
// Hot path: audio and video messages cost a bounds-checked table lookup, a tag header
// parse and one OnFrame call; nothing is allocated. Commands (the control plane) may
// allocate.
//
// Decisions where the protocol leaves room:
//  - Before connect, commands that need an application (releaseStream, FCPublish,
//    createStream, publish, FCUnpublish, deleteStream, closeStream, play) are a protocol
//    error: OnMessage returns FailedPrecondition. Harmless ones (_checkbw,
//    getStreamLength, responses, unknown commands) are answered or ignored as after
//    connect; media and data are dropped and counted.
//  - A second connect is answered with _error NetConnection.Connect.Rejected and
//    OnMessage returns FailedPrecondition. A connect whose app is unusable (see names
//    below) gets the same _error and InvalidArgument.
//  - Names: the app (trailing '/'s and "?query" stripped) and the publish name ("?query"
//    stripped) must be non-empty '/'-separated segments: no leading, trailing or doubled
//    '/', no "." or ".." segment, no control bytes (< 0x20, 0x7F), at most
//    max_name_length bytes. Such names end up as file and URL paths in recorders and
//    packagers, where "../x" or "a//b" would escape or alias. "live" + "a/b" and
//    "live/a" + "b" are both allowed: they are the same URL, which the registry decides.
//    A refused publish name gets onStatus NetStream.Publish.BadName (level error); the
//    connection stays.
//  - publish on a message stream createStream did not create, or a second publish on a
//    stream already publishing, is a protocol error: OnMessage returns
//    FailedPrecondition.
//  - Media and data on a message stream id this connection never created (0, as
//    librtmp's fmt 1 first chunk of a chunk stream leaves it, or an id createStream did
//    not return) go to the stream publishing when exactly one does: nginx-rtmp and SRS
//    ignore the id. Each is counted (remapped_media); the first leaves a line for the
//    log (TakeRemapNotice()). With none or several publishing they are dropped and
//    counted, as is media on a created stream that does not publish (it is that
//    stream's, say one whose publish was refused or awaits approval).
//  - createStream allocates the lowest free id in 1..max_streams (deleteStream frees
//    it); beyond that it is answered with _error NetConnection.Call.Failed.
//  - A publish that ends by command (FCUnpublish, closeStream, deleteStream) is answered
//    with onStatus NetStream.Unpublish.Success on its stream, as nginx-rtmp and SRS do.
//    FCUnpublish ends the stream it was sent on if that one publishes, else the stream
//    publishing the name it carries. closeStream keeps the stream (it may publish
//    again); deleteStream frees it. Close() sends nothing.
//  - Data messages are passed on unvalidated; only a leading "@setDataFrame" string is
//    removed, or "setDataFrame", as some encoders spell it. A type 15 message whose
//    format byte is not 0 is ignored (counted). The format byte of a type 17 command is
//    skipped whatever it is, as nginx-rtmp and SRS do; the AMF0 after it decides.
//  - A command message (type 20, or 17) that starts with "@setDataFrame" (or
//    "setDataFrame") or "onMetaData" is handled as a data message, as nginx-rtmp does:
//    metadata some encoders send with the wrong type, whose second value is no
//    transaction id.
//  - Aggregates are split by AggregateReader; a malformed one is an error after the
//    sub-messages before the bad tag have been delivered. Its sub-messages of types
//    other than audio, video and data are skipped (counted in ignored_messages).
//  - Access control (publish_authorizer.h): a valid publish is put to the
//    PublishAuthorizer before its name is claimed. Denied: onStatus
//    NetStream.Publish.BadName (level error) with the reason as description, and
//    OnMessage returns PermissionDenied, so the connection closes. Pending: nothing is
//    sent until CompleteApproval(); meanwhile the stream counts as not publishing (its
//    media is dropped and counted), and more than max_unapproved_bytes of media and data
//    on streams waiting for approval is an error (ResourceExhausted). Encoders wait for
//    NetStream.Publish.Start before they send media (ffmpeg, OBS), so a well-behaved one
//    loses nothing. deleteStream, closeStream and FCUnpublish abandon a pending publish.
//
//  - Enhanced RTMP: a connect carrying fourCcList, videoFourCcInfoMap, audioFourCcInfoMap
//    or capsEx is answered with the forwarding capabilities (see client_caps()); a
//    legacy connect gets the legacy _result, byte for byte. Media bodies of any codec
//    pass through; media_tag.h reads their FourCC, track id and flags for the Frame.
//
// After OnMessage returns an error the caller closes the connection (flushing what was
// sent, so the client sees any _error) and calls Close().
//
// Thread safety: none; a Session lives on its connection's thread.
//
//   Session session(options, &sender, &sink, &registry);
//   for each message the ChunkReader completes (types other than 1..6):
//     if (absl::Status s = session.OnMessage(message); !s.ok()) { log s; close; }
//   session.Close();

#ifndef URINGEST_ENGINE_RTMP_SESSION_H_
#define URINGEST_ENGINE_RTMP_SESSION_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "engine/rtmp/command_replies.h"
#include "engine/rtmp/enhanced_caps.h"
#include "engine/rtmp/frame.h"
#include "engine/rtmp/message.h"
#include "engine/rtmp/message_streams.h"
#include "engine/rtmp/publish_authorizer.h"
#include "media/amf0.h"

namespace uringest::rtmp {

struct SessionOptions {
  uint32_t window_ack_size = 2'500'000;  // Window Acknowledgement Size sent on connect
  uint32_t peer_bandwidth = 2'500'000;   // Set Peer Bandwidth (dynamic) sent on connect
  // Set Chunk Size sent on connect; the connection's ChunkWriter must apply it to every
  // message sent after that one.
  uint32_t chunk_size = 65536;
  uint32_t max_streams = 16;       // message streams one connection may have created at once
  size_t max_name_length = 1024;   // app and publish name, queries excluded
  size_t max_query_length = 4096;  // the "?query" of a publish name or app
  // Media and data bytes a connection may send on streams whose publish awaits approval.
  size_t max_unapproved_bytes = 1 << 20;
};

struct SessionCounters {
  uint64_t frames = 0;                     // handed to FrameSink::OnFrame
  uint64_t dropped_empty_media = 0;        // audio/video with an empty body
  uint64_t dropped_unpublished_media = 0;  // audio/video on a stream not publishing
  // Audio, video and data on a message stream never created, given to the only stream
  // publishing (see above).
  uint64_t remapped_media = 0;
  uint64_t ignored_data = 0;  // data on a stream not publishing, empty, or bad format byte
  // Commands nobody answers (transaction id 0, responses, deleteStream of unknown ids),
  // and messages (or aggregate sub-messages) of types the session does not handle.
  uint64_t ignored_messages = 0;
};

class Session {
 public:
  // A stream that is publishing. The views are valid until the next OnMessage or Close.
  using PublishingStream = MessageStreams::Publishing;

  // `sender`, `sink`, `registry` and `authorizer` must outlive the Session. Without an
  // authorizer every valid publish is allowed.
  Session(const SessionOptions& options, MessageSender* sender, FrameSink* sink,
          PublishRegistry* registry, PublishAuthorizer* authorizer = nullptr);
  // Calls Close(), so that no name stays claimed.
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Handles one complete message. `message.payload` is only read during the call. An
  // error means the peer broke the protocol (malformed AMF, publish on an unknown
  // stream, a malformed aggregate, ...): the message says what, for the log. Protocol
  // control messages (types 1..6) belong to the connection core: passed here, they are
  // ignored and counted. The StreamName given to FrameSink::OnStreamBegin and the Frame
  // given to OnFrame are valid during that call only.
  [[nodiscard]] absl::Status OnMessage(const Message& message);

  // The answer to a publish the authorizer left pending (PublishRequest's stream_id and
  // ticket). Allowed: the publish goes on as if allowed at once (the name may still turn
  // out taken: BadName, the connection stays). Denied: onStatus BadName with `reason`,
  // and PermissionDenied is returned for the caller to log and close the connection. An
  // answer for a publish no longer waiting (abandoned, closed, another ticket) is
  // ignored.
  [[nodiscard]] absl::Status CompleteApproval(uint32_t stream_id, uint64_t ticket, bool allowed,
                                              std::string_view reason);
  // Publishes waiting for CompleteApproval().
  uint32_t pending_approvals() const { return pending_; }

  // Why a publish was refused (each with onStatus NetStream.Publish.BadName).
  enum class Refusal : uint8_t {
    kInvalidName,  // not a valid stream name
    kTaken,        // another connection publishes it
    kBanned,       // the name is banned for now (a kick with ?ban=)
    kNoRoom,       // the sink can't carry another stream (the ring's directory is full)
    kDenied,       // the key file or the on-publish hook said no (the connection closes)
  };
  static constexpr size_t kRefusalKinds = 5;
  // Publishes refused since the last call: for the caller to log, how many refusals left
  // the connection open, and the description sent with the latest; for its counters,
  // every refusal by kind.
  struct Refusals {
    uint32_t count = 0;
    std::string last;
    std::array<uint32_t, kRefusalKinds> by_kind{};
  };
  Refusals TakeRefusals() { return std::exchange(refusals_, {}); }

  // Once per session: after the first message counted in remapped_media, a line that
  // says what went where, for the caller to log with the peer; "" before that and once
  // taken.
  std::string TakeRemapNotice() { return std::exchange(remap_notice_, {}); }

  // The connection is going away: ends every publishing stream (OnStreamEnd, then the
  // name is released). Later OnMessage calls fail. Idempotent. With a `notice` (the
  // server ends the publish: a kick), each publishing stream is told first, with
  // onStatus NetStream.Unpublish.Success and "app/name: notice" as its description.
  void Close(std::string_view notice = {});

  // Enhanced RTMP v2's reconnect request (a drain): when connect announced capsEx
  // Reconnect, queues onStatus NetConnection.Connect.ReconnectRequest on the
  // NetConnection (message stream 0), with `tc_url` (the URL to reconnect to; empty: the
  // same one) and `description`, and returns true; the client finishes its GOP,
  // unpublishes and reconnects. Returns false, and sends nothing, for a client without
  // the capability or a session not connected or closed.
  bool RequestReconnect(std::string_view tc_url, std::string_view description);
  bool can_reconnect() const {
    return connected_ && !closed_ && (client_caps_.caps_ex & kCapsExReconnect) != 0;
  }

  bool connected() const { return connected_; }
  bool closed() const { return closed_; }
  // What connect carried. The app without trailing '/'s and without its query.
  const std::string& app() const { return app_; }
  // The "?query" of the app (after the '?'). It may hold a stream key: never log it.
  const std::string& app_query() const { return app_query_; }
  // As sent; like app_query() it may hold a key.
  const std::string& tc_url() const { return tc_url_; }
  const std::string& flash_ver() const { return flash_ver_; }
  double object_encoding() const { return object_encoding_; }
  // The Enhanced RTMP capabilities connect announced. When present, the connect _result
  // answers with what uringest forwards: every codec passes through untouched, so it
  // echoes fourCcList and sets CanForward for every FourCC (and "*") in
  // videoFourCcInfoMap / audioFourCcInfoMap, and capsEx Multitrack | ModEx |
  // TimestampNanoOffset, and Reconnect (a drain asks such publishers to reconnect:
  // RequestReconnect()).
  const EnhancedCaps& client_caps() const { return client_caps_; }

  // The streams now publishing, by stream id. Allocates: for logs and stats.
  std::vector<PublishingStream> publishing_streams() const { return streams_.publishing(); }
  // The query of the name `stream_id` publishes (after the '?'), for authorization; ""
  // when it has none or does not publish. It may hold a stream key: never log it.
  std::string_view publish_query(uint32_t stream_id) const;

  const SessionCounters& counters() const { return counters_; }

 private:
  using State = MessageStreams::State;
  using Stream = MessageStreams::Stream;
  // A decoded command and the message it came in.
  struct Command {
    const Message& message;
    std::string_view name;
    double transaction_id = 0;
    const std::vector<media::amf0::Value>& args;  // args[0] is the name, args[1] the txn id

    // Argument i; nullptr past the end.
    const media::amf0::Value* arg(size_t i) const { return i < args.size() ? &args[i] : nullptr; }
    // Argument i if it is a string, else "".
    std::string_view string_arg(size_t i) const {
      const media::amf0::Value* v = arg(i);
      return v != nullptr && v->is_string() ? std::string_view(v->string()) : std::string_view();
    }
  };
  using CommandHandler = absl::Status (Session::*)(const Command&);

  absl::Status HandleCommand(const Message& message, std::span<const uint8_t> amf);
  absl::Status DispatchCommand(const Command& command);
  absl::Status OnConnect(const Command& command);
  void SendConnectResponses(double transaction_id);
  absl::Status OnReleaseStream(const Command& command);
  absl::Status OnFcPublish(const Command& command);
  absl::Status OnCreateStream(const Command& command);
  absl::Status OnPublish(const Command& command);
  absl::Status OnFcUnpublish(const Command& command);
  absl::Status OnDeleteStream(const Command& command);
  absl::Status OnCloseStream(const Command& command);
  absl::Status OnCheckBandwidth(const Command& command);
  absl::Status OnGetStreamLength(const Command& command);
  absl::Status OnPlay(const Command& command);
  absl::Status OnIgnored(const Command& command);

  absl::Status RefusePublish(uint32_t stream_id, Refusal why, std::string_view description);
  // Claims the stream's name and starts it (or refuses it: name taken).
  absl::Status StartPublishing(uint32_t stream_id);
  absl::Status DenyPublish(uint32_t stream_id, std::string_view reason);
  // Forgets a pending publish: the stream goes back to created.
  void AbandonPending(uint32_t stream_id);
  // Counts media or data sent on a stream awaiting approval; an error past the bound.
  absl::Status CountUnapproved(const Message& message);
  // The stream a media or data message goes to (see remapped_media); 0: none, drop it.
  uint32_t TargetStream(const Message& message);
  void NoteRemap(const Message& message, uint32_t target);
  void HandleMedia(const Message& message);
  void HandleData(const Message& message, std::span<const uint8_t> amf);
  absl::Status HandleAggregate(const Message& message);

  // If `stream_id` publishes: optionally tells the client, then OnStreamEnd and Release.
  void EndPublishing(uint32_t stream_id, bool tell_client);

  const SessionOptions options_;
  CommandSender send_;
  FrameSink* const sink_;
  PublishRegistry* const registry_;
  PublishAuthorizer* const authorizer_;  // nullptr: allow every publish

  bool connected_ = false;
  bool closed_ = false;
  std::string app_;
  std::string app_query_;
  std::string tc_url_;
  std::string flash_ver_;
  double object_encoding_ = 0;
  EnhancedCaps client_caps_;
  MessageStreams streams_;
  uint32_t pending_ = 0;  // streams in kPendingApproval
  uint64_t next_ticket_ = 1;
  size_t unapproved_bytes_ = 0;  // media and data bytes sent while a publish was pending
  Refusals refusals_;
  bool remap_noticed_ = false;
  std::string remap_notice_;
  SessionCounters counters_;
};

}  // namespace uringest::rtmp

#endif  // URINGEST_ENGINE_RTMP_SESSION_H_
