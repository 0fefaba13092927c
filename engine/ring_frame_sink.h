// ring_frame_sink.h: connects one connection's publish session to its shard's frame
// ring: each published stream becomes a ringbuf::StreamWriter, each frame one record,
// onMetaData and the first frames fill the directory entry's codec parameters.
//
//   RingFrameSink sink(&shard_writer, "203.0.113.7:50122");
//   rtmp::ServerConnection conn(options, &sink, &names);   // frames flow into the ring
//
// With a hook (--on-publish-done), each stream's end is told to it, with the reason the
// connection set last (set_end_reason(); "unpublish" while it sets none: the publisher
// ended the stream itself) and the stream's duration, bytes and frames.
//
// Thread safety: the shard's thread only. Nothing allocates per frame.

#ifndef URINGEST_ENGINE_RING_FRAME_SINK_H_
#define URINGEST_ENGINE_RING_FRAME_SINK_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "engine/publish_hook.h"
#include "engine/rtmp/frame.h"
#include "ringbuf/ring_format.h"
#include "ringbuf/shard_writer.h"

namespace uringest::engine {

class RingFrameSink : public rtmp::FrameSink {
 public:
  struct Counters {
    uint64_t frames = 0;
    uint64_t bytes = 0;
    uint64_t dropped = 0;  // frames the ring refused (too large, stream not begun)
  };

  // `shard`, `done` (nullptr: nothing to tell) and `publishes` (counts each stream begun;
  // nullptr: not counted) must outlive the sink. `peer` is the publisher's "ip:port";
  // `addr` and `port` the same, for the hook.
  RingFrameSink(ringbuf::ShardWriter* shard, std::string peer, std::string addr = {},
                uint16_t port = 0, PublishHook* done = nullptr,
                std::atomic<uint64_t>* publishes = nullptr);
  ~RingFrameSink() override;

  absl::Status OnStreamBegin(uint32_t stream_id, rtmp::StreamName name) override;
  void OnFrame(const rtmp::Frame& frame) override;
  void OnStreamEnd(uint32_t stream_id) override;

  // The publisher's address, learnt after the sink was made (a PROXY protocol header).
  // REQUIRES: no stream has begun.
  void set_peer(std::string peer, std::string addr, uint16_t port) {
    peer_ = std::move(peer);
    addr_ = std::move(addr);
    port_ = port;
  }

  // Why the streams that end from now on end: a static string ("idle_timeout", ...).
  void set_end_reason(std::string_view reason) { end_reason_ = reason; }

  const Counters& counters() const { return counters_; }
  // A stream has begun on this connection (it may have ended since).
  bool has_published() const { return has_published_; }

 private:
  struct Stream {
    uint32_t stream_id = 0;
    ringbuf::StreamWriter writer;
    ringbuf::CodecInfo codec{};
    uint64_t frames = 0;
    uint64_t bytes = 0;
    bool warned_config = false;
    std::string app;  // for the on-publish-done hook
    std::string name;
    uint64_t begin_ns = 0;  // CLOCK_MONOTONIC
  };

  Stream* Find(uint32_t stream_id);
  void UpdateCodec(Stream* stream, const rtmp::Frame& frame);
  void KeepTrackConfigs(Stream* stream, const rtmp::Frame& frame, uint8_t flags);
  void WarnConfigNotKept(Stream* stream, uint8_t track_id, size_t size);

  ringbuf::ShardWriter* const shard_;
  std::string peer_;
  std::string addr_;
  uint16_t port_;
  PublishHook* const done_;
  std::atomic<uint64_t>* const publishes_;
  std::string_view end_reason_ = "unpublish";
  absl::InlinedVector<Stream, 1> streams_;
  Counters counters_;
  bool has_published_ = false;
  // Scratch for KeepTrackConfigs (configuration messages only).
  std::vector<uint8_t> config_body_;
  std::vector<uint8_t> track_body_;
};

}  // namespace uringest::engine

#endif  // URINGEST_ENGINE_RING_FRAME_SINK_H_
