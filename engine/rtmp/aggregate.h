// aggregate.h: splits an aggregate message (type 22) into its sub-messages. Its body is
// a run of FLV tags (FLV spec E.4.1), each followed by its back-pointer:
//
//   type(1) data size(3) timestamp(3) timestamp extended(1) stream id(3)
//   data(data size) previous tag size(4) = 11 + data size
//
// The reader copies nothing and allocates nothing: each sub-message is a Message view
// into the aggregate's payload. Sub-message times are rebased on the aggregate as
// nginx-rtmp and SRS do: time = aggregate timestamp + (tag timestamp - first tag's
// timestamp). The difference is taken in the 32-bit tag-timestamp space (the extended
// byte is the high byte) and read as signed, so a tag timestamp that wraps past 2^32, or
// one slightly behind the first tag's, still lands next to the aggregate's time; a result
// below 0 is clamped to 0. The sub-message's stream id and chunk stream id are the
// aggregate's; the tag's own stream id field (always 0 in FLV) is ignored.
//
// Tags of types other than audio (8), video (9) and AMF0 data (18) are skipped and
// counted (skipped()), as SRS skips them; the first tag sets the time base whatever its
// type, as in nginx-rtmp and SRS. Back-pointers are not compared with their tags (neither
// server does; some muxers write the data size alone, or 0).
//
// Validation: every tag must lie wholly inside the body and be followed by its 4-byte
// back-pointer; the body must end exactly after the last back-pointer. An empty body has
// no sub-messages and is not an error.
//
//   AggregateReader reader(aggregate);
//   Message sub;
//   while (reader.Next(&sub)) Handle(sub);
//   if (!reader.status().ok()) return reader.status();

#ifndef URINGEST_ENGINE_RTMP_AGGREGATE_H_
#define URINGEST_ENGINE_RTMP_AGGREGATE_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "engine/rtmp/message.h"

namespace uringest::rtmp {

class AggregateReader {
 public:
  // Reads the sub-messages of `aggregate`, whose payload must stay valid and unchanged
  // while this reader and the Messages it yields are in use.
  explicit AggregateReader(const Message& aggregate);
  AggregateReader(const AggregateReader&) = delete;
  AggregateReader& operator=(const AggregateReader&) = delete;

  // Sets *sub to the next audio, video or data sub-message and returns true; returns
  // false at the end of the body or at the first malformed tag, after which status()
  // tells which and every further call returns false. *sub's payload points into the
  // aggregate's payload.
  bool Next(Message* sub);

  // OK unless Next() met a malformed tag: then InvalidArgument naming the tag's offset
  // and what is wrong with it.
  const absl::Status& status() const { return status_; }

  // Tags of types other than 8, 9 and 18 that Next() stepped over so far.
  size_t skipped() const { return skipped_; }

 private:
  bool Fail(size_t offset, const char* what, uint64_t value);

  MessageHeader header_;  // of the aggregate
  std::span<const uint8_t> body_;
  size_t position_ = 0;
  bool first_ = true;
  uint32_t first_timestamp_ = 0;  // the first tag's, in 32-bit tag-timestamp space
  size_t skipped_ = 0;
  absl::Status status_;
};

}  // namespace uringest::rtmp

#endif  // URINGEST_ENGINE_RTMP_AGGREGATE_H_
