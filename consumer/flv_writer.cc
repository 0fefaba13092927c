#include "consumer/flv_writer.h"

#include <errno.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cassert>

#include "absl/strings/str_cat.h"
#include "media/byte_order.h"
#include "media/flv_format.h"

namespace uringest::consumer {
namespace {

using ringbuf::RecordType;

constexpr size_t kMaxPieces = 8;

}  // namespace

absl::Status VectorSink::Write(std::span<const std::span<const uint8_t>> pieces) {
  for (std::span<const uint8_t> piece : pieces)
    bytes_.insert(bytes_.end(), piece.begin(), piece.end());
  return absl::OkStatus();
}

absl::Status FdSink::Write(std::span<const std::span<const uint8_t>> pieces) {
  assert(pieces.size() <= kMaxPieces);
  std::array<iovec, kMaxPieces> iov;
  size_t count = 0;
  for (std::span<const uint8_t> piece : pieces) {
    if (piece.empty()) continue;
    iov[count++] = iovec{const_cast<uint8_t*>(piece.data()), piece.size()};
  }
  iovec* next = iov.data();
  while (count > 0) {
    ssize_t n = writev(fd_, next, int(count));
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, "writing FLV output");
    }
    // Skip what went out; a short write leaves the rest of one piece.
    size_t done = size_t(n);
    while (count > 0 && done >= next->iov_len) {
      done -= next->iov_len;
      ++next;
      --count;
    }
    if (count > 0) {
      next->iov_base = static_cast<uint8_t*>(next->iov_base) + done;
      next->iov_len -= done;
    }
  }
  return absl::OkStatus();
}

absl::Status FlvWriter::WriteHeader(FlvTracks tracks) {
  assert(!header_written_);
  std::array<uint8_t, media::kFlvHeaderSize + media::kFlvPreviousTagSizeSize> header{
      'F', 'L', 'V', media::kFlvVersion};
  header[4] = uint8_t((tracks.audio ? media::kFlvFlagAudio : 0) |
                      (tracks.video ? media::kFlvFlagVideo : 0));
  media::StoreU32(&header[5], media::kFlvHeaderSize);
  media::StoreU32(&header[media::kFlvHeaderSize], 0);  // PreviousTagSize0
  const std::span<const uint8_t> pieces[] = {header};
  if (absl::Status s = sink_->Write(pieces); !s.ok()) return s;
  header_written_ = true;
  bytes_ += header.size();
  return absl::OkStatus();
}

uint32_t FlvWriter::TagTimestamp(int64_t dts) const {
  if (!base_dts_ || dts <= *base_dts_) return 0;
  return uint32_t(uint64_t(dts - *base_dts_));  // FLV time is 32 bits: wraps like RTMP's
}

absl::Status FlvWriter::WriteTag(RecordType type, int64_t dts, std::span<const uint8_t> body,
                                 bool config) {
  assert(header_written_);
  if (type != RecordType::kAudio && type != RecordType::kVideo && type != RecordType::kData) {
    return absl::OkStatus();
  }
  if (body.size() > media::kFlvMaxTagBody) {
    return absl::OutOfRangeError(absl::StrCat("a ", body.size(), "-byte frame exceeds FLV's ",
                                              media::kFlvMaxTagBody, "-byte tag limit"));
  }
  if (type != RecordType::kData && !config && !base_dts_) base_dts_ = dts;
  const uint32_t timestamp = TagTimestamp(dts);
  std::array<uint8_t, media::kFlvTagHeaderSize> header{};
  header[0] = uint8_t(type);
  media::StoreU24(&header[1], uint32_t(body.size()));
  media::StoreU24(&header[4], timestamp & 0xFFFFFF);
  header[7] = uint8_t(timestamp >> 24);  // TimestampExtended; StreamID (3 bytes) stays 0
  std::array<uint8_t, media::kFlvPreviousTagSizeSize> trailer;
  media::StoreU32(trailer.data(), uint32_t(media::kFlvTagHeaderSize + body.size()));
  const std::span<const uint8_t> pieces[] = {header, body, trailer};
  if (absl::Status s = sink_->Write(pieces); !s.ok()) return s;
  ++tags_;
  bytes_ += header.size() + body.size() + trailer.size();
  return absl::OkStatus();
}

}  // namespace uringest::consumer
