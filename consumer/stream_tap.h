// stream_tap.h: follows every stream of one server whose name a filter accepts, from one
// thread, reading each shard's ring once: one cursor and (for a recorder) one lossless
// slot per shard, however many streams it follows. This is what uringest-record and
// uringest-push stand on; uringest-cat follows one stream with ringbuf::Reader instead.
//
//   absl::StatusOr<std::unique_ptr<Reader>> reader = Reader::WaitForServer("uringest", {});
//   MyHandler handler;   // a TapHandler: OnStreamStart, OnFrame, OnLoss, OnStreamEnd
//   absl::StatusOr<std::unique_ptr<StreamTap>> tap =
//       StreamTap::Open("uringest", *std::move(reader), {.accept = MatchLive}, &handler);
//   while ((*tap)->Poll(absl::Milliseconds(100)) == TapResult::kOk) {}
//
// Where each stream starts. A stream that begins after Open() is followed from its first
// frame. One that was publishing when Open() was called is joined as a late joiner is:
// the directory's onMetaData and configuration packets first (from_directory), then its
// frames from its latest keyframe still in the ring.
//
// Losses. Frames overwritten before the tap read them (a lossy tap that fell a ring
// behind, or a lossless one the producer evicted after its bounded wait) are counted per
// stream from the records' sequence numbers and reported with OnLoss before the frame
// that follows them; video then resumes at the next keyframe (StandsAlone). A payload is
// copied out and checked before the handler sees it, so the handler never gets torn
// bytes: a frame overwritten while copied counts as lost. A lossless tap that was
// evicted says so (OnEvicted), is lossy while it catches up, and asks to be lossless again
// once it is within a quarter of the ring of the tail (OnLossless).
//
// Thread safety: one thread; the handler is called on it, from Open() and Poll().

#ifndef URINGEST_CONSUMER_STREAM_TAP_H_
#define URINGEST_CONSUMER_STREAM_TAP_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ringbuf/reader.h"

namespace uringest::consumer {

struct TapOptions {
  // Which streams ("app/name") to follow; empty: all of them.
  std::function<bool(std::string_view name)> accept;
  // Hold each shard's producer back rather than lose frames (bounded by the server's
  // lossless wait; see ringbuf/FORMAT.md).
  bool lossless = false;
};

class TapHandler {
 public:
  virtual ~TapHandler() = default;
  // A stream is followed from now on: from its first frame, or `joined` (it was
  // publishing when the tap opened, or the tap met it mid-stream): from the directory's
  // onMetaData and configurations, then its latest keyframe. `info` has the directory's
  // copy of the stream, with its codec fields, onMetaData and configurations.
  virtual void OnStreamStart(const ringbuf::StreamInfo& info, bool joined) = 0;
  // The stream's next frame (audio, video or data). `payload` is valid during the call.
  virtual void OnFrame(uint32_t stream_id, const ringbuf::RecordMeta& meta,
                       std::span<const uint8_t> payload, bool from_directory) = 0;
  // `count` frames of the stream were lost before the next frame it gets.
  virtual void OnLoss(uint32_t stream_id, uint64_t count) = 0;
  // The stream ended: its publisher stopped (`clean`), or the server went away first.
  virtual void OnStreamEnd(uint32_t stream_id, bool clean) = 0;
  // A lossless tap was evicted on `shard`, and is lossy there until OnLossless(shard).
  virtual void OnEvicted(uint32_t shard) {}
  virtual void OnLossless(uint32_t shard) {}
};

enum class TapResult {
  kOk,
  kServerGone,  // the server died, restarted or shut down: every stream got OnStreamEnd
};

class StreamTap {
 public:
  // Opens every shard's ring of the server `reader` found under `ring_name` and joins
  // the accepted streams now publishing. `handler` must outlive the tap.
  static absl::StatusOr<std::unique_ptr<StreamTap>> Open(std::string_view ring_name,
                                                         std::unique_ptr<ringbuf::Reader> reader,
                                                         const TapOptions& options,
                                                         TapHandler* handler);
  StreamTap(const StreamTap&) = delete;
  StreamTap& operator=(const StreamTap&) = delete;

  // Hands out what the rings hold, sleeping up to `timeout` when they hold nothing new.
  TapResult Poll(absl::Duration timeout);

  // How the server went, once Poll() said kServerGone.
  ringbuf::ServerExit server_exit() const { return reader_->CheckServerExit(); }
  size_t streams() const;                  // followed now
  uint64_t lost() const { return lost_; }  // frames lost, all streams together

 private:
  struct Followed {
    uint32_t slot = 0;           // its directory entry
    uint64_t last_sequence = 0;  // of the last record seen, once `counting`
    uint64_t start = 0;          // ring position: records before it are not wanted
    bool counting = false;       // last_sequence is known: a gap after it is a loss
    bool await_keyframe = false;
    // The ring's tail when the directory was first seen saying the stream ended.
    std::optional<uint64_t> ended_by;
  };
  struct Shard {
    uint32_t index = 0;
    std::unique_ptr<ringbuf::RingReader> ring;
    absl::flat_hash_map<uint32_t, Followed> followed;  // by stream id
    absl::flat_hash_set<uint32_t> ignored;             // stream ids not accepted
    uint64_t opened_at = 0;                            // the ring's tail when the tap opened
    uint64_t evictions = 0;
    bool lossless = false;
  };

  StreamTap(std::unique_ptr<ringbuf::Reader> reader, const TapOptions& options,
            TapHandler* handler);
  bool Accepts(std::string_view name) const { return !options_.accept || options_.accept(name); }
  void JoinPublishing();
  void Join(Shard* shard, const ringbuf::StreamInfo& info);
  bool ReadShard(Shard* shard);
  void Meet(Shard* shard, const ringbuf::RecordView& view);
  void Deliver(Shard* shard, const ringbuf::RecordView& view, uint32_t id, Followed* f);
  void CheckEnded(Shard* shard);
  void CheckLossless(Shard* shard);
  void EndAll(bool clean);

  std::unique_ptr<ringbuf::Reader> reader_;
  const TapOptions options_;
  TapHandler* const handler_;
  std::vector<Shard> shards_;
  std::vector<uint8_t> payload_;  // the frame being handed out
  uint64_t lost_ = 0;
  absl::Time checked_at_ = absl::InfinitePast();
  size_t next_wait_ = 0;  // the shard whose ring the next idle Poll() sleeps on
};

}  // namespace uringest::consumer

#endif  // URINGEST_CONSUMER_STREAM_TAP_H_
