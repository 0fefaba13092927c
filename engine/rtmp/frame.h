// frame.h: what the publish session hands to the rest of the server: the audio, video
// and data frames of a published stream, and its begin and end. The engine connects a
// FrameSink to the shared-memory frame ring; tests connect a recorder.
//
//   class Recorder : public FrameSink { ... };
//   Session session(options, &sender, &recorder, &names);

#ifndef URINGEST_ENGINE_RTMP_FRAME_H_
#define URINGEST_ENGINE_RTMP_FRAME_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "absl/status/status.h"
#include "engine/rtmp/message.h"

namespace uringest::rtmp {

enum class FrameType : uint8_t { kAudio = 8, kVideo = 9, kData = 18 };

// A stream key: "app/name" (e.g. "live/test"). Query strings ("?key=...") are not part
// of the name.
struct StreamName {
  std::string_view app;
  std::string_view name;
};

struct Frame {
  FrameType type = FrameType::kVideo;
  uint32_t stream_id = 0;  // the RTMP message stream the publisher sends on
  uint64_t dts = 0;        // milliseconds, unwrapped 64-bit time
  // pts - dts in milliseconds (the AVC/HEVC composition time offset; 0 otherwise).
  int32_t composition_offset = 0;
  bool keyframe = false;         // video keyframe; every audio and data frame is true
  bool sequence_header = false;  // AVC/HEVC decoder configuration or AAC config
  // The FLV codec id (VideoCodec / AudioCodec), or for Enhanced RTMP the FourCC.
  uint32_t codec = 0;
  // Enhanced RTMP (media/media_tag.h): an ExHeader body, a command frame, the packet type, and
  // for Multitrack messages the (first) track's id and whether it is a ManyTracks or
  // ManyTracksManyCodecs message (which may hold several tracks).
  bool ex_header = false;
  bool command = false;
  uint8_t packet_type = 0;
  uint8_t track_id = 0;
  bool many_tracks = false;
  // Enhanced RTMP ModEx TimestampOffsetNano: nanoseconds (0..999999) after dts.
  uint32_t time_offset_ns = 0;
  // The FLV tag body exactly as the publisher sent it (audio and video: with their tag
  // header bytes; data: onMetaData with the @setDataFrame wrapper removed). Valid only
  // during the OnFrame call.
  std::span<const uint8_t> payload;
  // Not empty when the payload comes in pieces (see Message::pieces): then these are all
  // of it, in order, and `payload` is the first piece (it holds the tag header bytes).
  std::span<const std::span<const uint8_t>> pieces;

  size_t payload_size() const { return pieces.empty() ? payload.size() : SizeOf(pieces); }
  // The payload in pieces: `pieces`, or `payload` as the only one.
  std::span<const std::span<const uint8_t>> payload_pieces() const {
    return pieces.empty() ? std::span<const std::span<const uint8_t>>(&payload, 1) : pieces;
  }
};

// The frame an audio or video message (REQUIRES: type 8 or 9) carries to `stream_id`:
// the properties its FLV tag header announces (media::ParseVideoTag/ParseAudioTag), its
// time and its payload, which the Frame views.
Frame MediaFrame(const Message& message, uint32_t stream_id);

// Receives the frames of the streams a connection publishes. Called on the connection's
// thread; implementations must not block.
class FrameSink {
 public:
  virtual ~FrameSink() = default;
  // A publish is about to succeed: frames of `stream_id` follow until OnStreamEnd. An
  // error (the sink can't carry another stream) refuses the publish, with the error's
  // message as the reason; no OnStreamEnd follows then.
  virtual absl::Status OnStreamBegin(uint32_t stream_id, StreamName name) = 0;
  virtual void OnFrame(const Frame& frame) = 0;
  // The stream ended: FCUnpublish, deleteStream, closeStream, or the connection closed.
  virtual void OnStreamEnd(uint32_t stream_id) = 0;
};

// Decides whether a stream name may be published, so that a second publisher for a name
// already publishing is refused. The engine implements it across shards.
class PublishRegistry {
 public:
  virtual ~PublishRegistry() = default;
  // Claims `name` for this connection. An error refuses the publish, its message saying
  // why: AlreadyExists when another publisher holds the name, anything else (a ban) for
  // other reasons.
  virtual absl::Status Claim(StreamName name) = 0;
  // Gives back a name that Claim() returned true for.
  virtual void Release(StreamName name) = 0;
};

}  // namespace uringest::rtmp

#endif  // URINGEST_ENGINE_RTMP_FRAME_H_
