// session_fuzz: the publish session behind a completed handshake: ServerConnection
// (engine/rtmp/server_connection.h) with its Session, fed well-formed chunks that carry
// whatever messages the input holds. The input is a split seed (8 bytes), then records:
//
//   type(1) message stream id(1) timestamp step(1) length(2, big-endian) payload(length)
//
// (the recorded ffmpeg sessions, turned into records, seed it). ChunkWriter writes them;
// the connection gets the bytes in pieces the seed picks.
//
// Checked: the FrameSink sees OnStreamBegin, OnFrame and OnStreamEnd in a legal order
// (frames only on a stream that began, only non-empty media, no stream begun twice), and
// every begun stream holds a name the registry granted it; names are released exactly
// once and all of them, and every stream ends, after Close(); every message reaches the
// session unless an error ended the connection; what the server sends back is a
// well-formed chunk stream whose commands are well-formed AMF0 of the kinds a server
// sends; it stays in proportion to what came in (no amplification); and each track of an
// Enhanced RTMP frame, rewritten to travel alone (media::SingleTrackBody, as the directory
// and uringest-cat do), parses back as that track with its bytes.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "engine/rtmp/chunk_writer.h"
#include "engine/rtmp/frame.h"
#include "engine/rtmp/handshake.h"
#include "engine/rtmp/server_connection.h"
#include "fuzz/fuzz_util.h"
#include "media/amf0.h"
#include "media/amf0_decoder.h"
#include "media/byte_order.h"
#include "media/media_tag.h"

namespace uringest::fuzz {
namespace {

using rtmp::MessageType;

constexpr size_t kRecordHeader = 1 + 1 + 1 + 2;
constexpr char kTakenName[] = "live/taken";  // claimed by "another connection"

std::string Key(rtmp::StreamName name) {
  return std::string(name.app) + "/" + std::string(name.name);
}

class CheckingRegistry : public rtmp::PublishRegistry {
 public:
  absl::Status Claim(rtmp::StreamName name) override {
    const std::string key = Key(name);
    if (key == kTakenName || claimed_.count(key) > 0) {
      return absl::AlreadyExistsError(key + " is already publishing");
    }
    claimed_.insert(key);
    return absl::OkStatus();
  }
  void Release(rtmp::StreamName name) override {
    FUZZ_CHECK(claimed_.erase(Key(name)) == 1, "released %s, which was not claimed",
               Key(name).c_str());
  }
  bool Holds(const std::string& key) const { return claimed_.count(key) > 0; }
  size_t size() const { return claimed_.size(); }

 private:
  std::set<std::string> claimed_;
};

class CheckingSink : public rtmp::FrameSink {
 public:
  explicit CheckingSink(const CheckingRegistry* registry) : registry_(registry) {}

  absl::Status OnStreamBegin(uint32_t stream_id, rtmp::StreamName name) override {
    FUZZ_CHECK(streams_.count(stream_id) == 0, "stream %u began twice", stream_id);
    FUZZ_CHECK(registry_->Holds(Key(name)), "stream %u began as %s without the name", stream_id,
               Key(name).c_str());
    FUZZ_CHECK(!name.name.empty() && !name.app.empty(), "stream %u began with an empty name",
               stream_id);
    // Every third stream can't be carried (as when the ring's directory is full): its
    // publish is refused, and no frame or end of it may follow.
    if (++begins_ % 3 == 0) return absl::ResourceExhaustedError("no room");
    streams_[stream_id] = Key(name);
    return absl::OkStatus();
  }
  void OnFrame(const rtmp::Frame& frame) override {
    FUZZ_CHECK(streams_.count(frame.stream_id) == 1, "frame on stream %u, which did not begin",
               frame.stream_id);
    FUZZ_CHECK(!frame.payload.empty(), "empty frame of type %u", unsigned(frame.type));
    if (frame.ex_header && frame.pieces.empty()) CheckTracks(frame);
    ++frames_;
  }
  void OnStreamEnd(uint32_t stream_id) override {
    FUZZ_CHECK(streams_.erase(stream_id) == 1, "stream %u ended without beginning", stream_id);
  }
  size_t open_streams() const { return streams_.size(); }
  uint64_t frames() const { return frames_; }

 private:
  // Each track of an Enhanced RTMP body, alone as the directory and uringest-cat keep it,
  // parses back as that track: its FourCC, id and packet type, and its bytes at the end.
  void CheckTracks(const rtmp::Frame& frame) {
    const bool video = frame.type == rtmp::FrameType::kVideo;
    media::MediaTrack tracks[8];
    const size_t count =
        std::min(media::ListTracks(frame.payload, video, tracks), std::size(tracks));
    for (const media::MediaTrack& track : std::span(tracks).first(count)) {
      media::SingleTrackBody(video, uint8_t((frame.payload[0] >> 4) & 0x07), frame.packet_type,
                             track, &alone_);
      const media::MediaTag tag =
          video ? media::ParseVideoTag(alone_) : media::ParseAudioTag(alone_);
      if (tag.command) continue;  // a command frame type: no tracks follow by definition
      FUZZ_CHECK(tag.codec == track.codec && tag.track_id == track.track_id &&
                     tag.packet_type == frame.packet_type && tag.track_count == 1,
                 "track %u alone parses as codec %08x track %u packet type %u (%u tracks)",
                 unsigned(track.track_id), tag.codec, unsigned(tag.track_id),
                 unsigned(tag.packet_type), unsigned(tag.track_count));
      FUZZ_CHECK(alone_.size() >= track.data.size() &&
                     std::equal(track.data.begin(), track.data.end(),
                                alone_.end() - std::ptrdiff_t(track.data.size())),
                 "track %u alone lost its bytes", unsigned(track.track_id));
    }
  }

  const CheckingRegistry* registry_;
  std::vector<uint8_t> alone_;
  std::map<uint32_t, std::string> streams_;
  uint64_t begins_ = 0;
  uint64_t frames_ = 0;
};

// The records as wire bytes, after a plain C0 + C1 + C2. Returns how many messages.
size_t WriteConversation(std::span<const uint8_t> records, std::vector<uint8_t>* wire) {
  wire->assign(1 + 2 * rtmp::kHandshakeSize, 0);
  (*wire)[0] = rtmp::kRtmpVersion;
  rtmp::ChunkWriter writer;
  uint64_t time = 0;
  size_t messages = 0;
  size_t pos = 0;
  while (records.size() - pos >= kRecordHeader) {
    const uint8_t* h = records.data() + pos;
    const auto type = static_cast<MessageType>(h[0]);
    const size_t length =
        std::min<size_t>(media::LoadU16(h + 3), records.size() - pos - kRecordHeader);
    std::vector<uint8_t> payload(h + kRecordHeader, h + kRecordHeader + length);
    pos += kRecordHeader + length;
    if (type == MessageType::kSetChunkSize && payload.size() >= 4) {
      // The writer follows what it sends; a size the server refuses would stop the
      // writer, not test the session (chunk_reader_fuzz covers those).
      const uint32_t size = media::LoadU32(payload.data());
      if (size == 0 || size > rtmp::kMaxSetChunkSize) {
        media::StoreU32(payload.data(), (size & 0x7FFFFFFF) | 1);
      }
    }
    time += h[2];
    const uint32_t csid = rtmp::IsProtocolControl(type) ? rtmp::kControlChunkStream
                          : h[1] == 0                   ? rtmp::kCommandChunkStream
                                                        : 4 + h[1] % 4;
    writer.Write({.chunk_stream_id = csid, .type = type, .stream_id = h[1], .timestamp = time},
                 payload, wire);
    ++messages;
  }
  return messages;
}

// What the server sent: S0 + S1 + S2, then a chunk stream of its responses.
void CheckOutput(std::span<const uint8_t> out) {
  FUZZ_CHECK(out.size() >= rtmp::ServerHandshake::kOutputSize && out[0] == rtmp::kRtmpVersion,
             "no handshake answer (%zu bytes)", out.size());
  const ReadOutcome responses =
      ReadChunkStream(out.subspan(rtmp::ServerHandshake::kOutputSize), 0, {});
  FUZZ_CHECK(responses.status.ok(), "the server's chunk stream is malformed: %s",
             responses.status.ToString().c_str());
  static const std::set<std::string> kResponses = {"_result", "_error", "onStatus", "onFCPublish",
                                                   "onFCUnpublish"};
  for (const OwnedMessage& m : responses.messages) {
    if (m.header.type != MessageType::kCommandAmf0) continue;
    absl::StatusOr<std::vector<media::amf0::Value>> values = media::amf0::DecodeAll(m.payload);
    FUZZ_CHECK(values.ok() && !values->empty() && (*values)[0].is_string() &&
                   kResponses.count((*values)[0].string()) == 1,
               "the server sent a malformed command %s", m.Describe().c_str());
  }
}

}  // namespace
}  // namespace uringest::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace uringest;
  using namespace uringest::fuzz;
  if (size < 8) return 0;
  uint64_t seed;
  std::memcpy(&seed, data, 8);
  std::vector<uint8_t> wire;
  const size_t messages = WriteConversation({data + 8, size - 8}, &wire);

  CheckingRegistry registry;
  CheckingSink sink(&registry);
  rtmp::ServerConnectionOptions options;
  options.handshake.random = [](std::span<uint8_t> out) { std::memset(out.data(), 7, out.size()); };
  std::vector<uint8_t> sent;
  absl::Status status;
  {
    rtmp::ServerConnection conn(options, &sink, &registry);
    ForEachPiece(wire, seed, [&](std::span<const uint8_t> in) {
      if (!status.ok()) return;
      status = conn.Receive(in);
      const std::span<const uint8_t> out = conn.output();
      sent.insert(sent.end(), out.begin(), out.end());
      conn.TakeOutput(out.size());
    });
    const auto& counters = conn.counters();
    FUZZ_CHECK(!status.ok() || counters.messages_received == messages,
               "%llu of %zu messages arrived without an error",
               (unsigned long long)counters.messages_received, messages);
    FUZZ_CHECK(conn.session().counters().frames == sink.frames(), "frame counts differ");
    FUZZ_CHECK(sent.size() <= 8192 + 2 * wire.size() + 512 * counters.messages_received,
               "%zu bytes sent for %zu received in %llu messages", sent.size(), wire.size(),
               (unsigned long long)counters.messages_received);
    conn.Close();
    FUZZ_CHECK(sink.open_streams() == 0, "%zu streams still open after Close()",
               sink.open_streams());
    FUZZ_CHECK(registry.size() == 0, "%zu names still claimed after Close()", registry.size());
  }
  CheckOutput(sent);
  return 0;
}
