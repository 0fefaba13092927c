// message_streams.h: the message streams of one RTMP connection, the ids 1..max that
// createStream hands out, and what each is doing: created, waiting for its publish to be
// approved, or publishing. The Session's command state machine decides when a stream
// moves; this table keeps the invariants: ids in range, the lowest free id reused, and
// which stream is the only one publishing (where media sent on a stream never created
// goes, as nginx-rtmp and SRS take it).
//
//   MessageStreams streams(/*max_streams=*/16);
//   uint32_t id = streams.Create();            // 1, or 0 when all are in use
//   streams.At(id)->name = "cam1";
//   streams.SetState(id, MessageStreams::State::kPublishing);
//   streams.Route(7);                          // 1: the only stream publishing
//
// Thread safety: the connection's thread only, like the Session that owns it.

#ifndef URINGEST_ENGINE_RTMP_MESSAGE_STREAMS_H_
#define URINGEST_ENGINE_RTMP_MESSAGE_STREAMS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace uringest::rtmp {

class MessageStreams {
 public:
  enum class State : uint8_t { kFree, kCreated, kPendingApproval, kPublishing };
  struct Stream {
    State state = State::kFree;
    std::string name;  // while pending or publishing
    std::string query;
    std::string type;
    uint64_t ticket = 0;  // while pending

    // Back to no name: a publish refused, denied, abandoned or ended.
    void ForgetName() {
      name.clear();
      query.clear();
      type.clear();
    }
  };
  // A stream that is publishing. The views are valid until the table next changes.
  struct Publishing {
    uint32_t stream_id = 0;
    std::string_view name;  // without the query
    std::string_view type;  // the publish type argument: "live", "record", "append"
  };

  explicit MessageStreams(uint32_t max_streams) : max_streams_(max_streams) {}

  // createStream: the lowest free id, now kCreated; 0 when max_streams are in use.
  uint32_t Create();
  // deleteStream: the stream is free again, its id the next one Create() may hand out.
  void Delete(uint32_t stream_id);

  // The entry of `stream_id` in any state; nullptr outside the ids ever created.
  Stream* At(uint32_t stream_id);
  const Stream* At(uint32_t stream_id) const;
  // nullptr unless `stream_id` was created (and not deleted).
  Stream* Find(uint32_t stream_id);
  bool IsPublishing(uint32_t stream_id) const;
  // A publishing stream named `name`; 0: none.
  uint32_t FindPublishing(std::string_view name) const;
  // Moves a stream (REQUIRES: At(stream_id) != nullptr) to `state`.
  void SetState(uint32_t stream_id, State state);

  // Where media or data sent on `stream_id` goes: that stream if it publishes; else, if
  // `stream_id` was never created and exactly one stream publishes, that one; else 0.
  uint32_t Route(uint32_t stream_id) const;
  // The only stream publishing; 0: none or several.
  uint32_t sole_publishing() const { return sole_publishing_; }

  // Ids 1..size() have been created at some time (the table never shrinks).
  uint32_t size() const { return uint32_t(streams_.size()); }
  // The streams now publishing, by id. Allocates: for logs and stats.
  std::vector<Publishing> publishing() const;

 private:
  void UpdateSolePublishing();

  const uint32_t max_streams_;
  std::vector<Stream> streams_;  // index = stream id - 1; grows to max_streams_
  uint32_t sole_publishing_ = 0;
};

}  // namespace uringest::rtmp

#endif  // URINGEST_ENGINE_RTMP_MESSAGE_STREAMS_H_
