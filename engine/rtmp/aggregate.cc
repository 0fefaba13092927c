// aggregate.cc: see aggregate.h.

#include "engine/rtmp/aggregate.h"

#include "absl/strings/str_format.h"
#include "engine/rtmp/rtmp_format.h"
#include "media/byte_order.h"
#include "media/flv_format.h"

namespace uringest::rtmp {
namespace {

bool IsFlvTagType(uint8_t type) {
  return type == uint8_t(MessageType::kAudio) || type == uint8_t(MessageType::kVideo) ||
         type == uint8_t(MessageType::kDataAmf0);
}

// The aggregate's time plus the signed 32-bit distance of the tag from the first tag.
uint64_t Rebase(uint64_t aggregate_time, uint32_t tag_time, uint32_t first_tag_time) {
  const int64_t delta = int32_t(tag_time - first_tag_time);
  if (delta < 0 && uint64_t(-delta) > aggregate_time) return 0;
  return aggregate_time + delta;
}

}  // namespace

AggregateReader::AggregateReader(const Message& aggregate)
    : header_(aggregate.header), body_(aggregate.payload) {}

bool AggregateReader::Fail(size_t offset, const char* what, uint64_t value) {
  status_ = absl::InvalidArgumentError(
      absl::StrFormat("aggregate message of %u bytes: the tag at offset %u %s (%u)", body_.size(),
                      offset, what, value));
  position_ = body_.size();
  return false;
}

bool AggregateReader::Next(Message* sub) {
  while (status_.ok() && position_ < body_.size()) {
    const size_t offset = position_;
    const size_t left = body_.size() - offset;
    if (left < media::kFlvTagHeaderSize)
      return Fail(offset, "has a truncated header: bytes left", left);
    const uint8_t* tag = body_.data() + offset;
    const size_t data_size = media::LoadU24(tag + 1);
    const size_t tag_size = media::kFlvTagHeaderSize + data_size;
    if (left - media::kFlvTagHeaderSize < data_size) {
      return Fail(offset, "claims more data than the body holds: data size", data_size);
    }
    if (left - tag_size < media::kFlvPreviousTagSizeSize) {
      return Fail(offset, "lacks its previous-tag-size: bytes after the data", left - tag_size);
    }
    position_ =
        offset + tag_size + media::kFlvPreviousTagSizeSize;  // whatever the back-pointer says
    const uint32_t timestamp = media::LoadU24(tag + 4) | uint32_t(tag[7]) << 24;
    if (first_) {
      first_ = false;
      first_timestamp_ = timestamp;
    }
    if (!IsFlvTagType(tag[0])) {
      ++skipped_;
      continue;
    }
    sub->header =
        MessageHeader{.chunk_stream_id = header_.chunk_stream_id,
                      .type = MessageType(tag[0]),
                      .stream_id = header_.stream_id,
                      .timestamp = Rebase(header_.timestamp, timestamp, first_timestamp_)};
    sub->payload = body_.subspan(offset + media::kFlvTagHeaderSize, data_size);
    return true;
  }
  return false;
}

}  // namespace uringest::rtmp
