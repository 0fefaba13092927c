#include "consumer/flv_writer.h"

#include <errno.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cassert>

#include "absl/strings/str_cat.h"

namespace uringest::consumer {
namespace {

using ringbuf::RecordType;

void StoreU24(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 16);
  p[1] = uint8_t(v >> 8);
  p[2] = uint8_t(v);
}

void StoreU32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 24);
  StoreU24(p + 1, v);
}

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
  std::array<uint8_t, kFlvHeaderSize + kFlvPreviousTagSize> header{'F', 'L', 'V', kFlvVersion};
  header[4] = uint8_t((tracks.audio ? kFlvFlagAudio : 0) | (tracks.video ? kFlvFlagVideo : 0));
  StoreU32(&header[5], kFlvHeaderSize);
  StoreU32(&header[kFlvHeaderSize], 0);  // PreviousTagSize0
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
  if (body.size() > kFlvMaxTagBody) {
    return absl::OutOfRangeError(absl::StrCat("a ", body.size(), "-byte frame exceeds FLV's ",
                                              kFlvMaxTagBody, "-byte tag limit"));
  }
  if (type != RecordType::kData && !config && !base_dts_) base_dts_ = dts;
  const uint32_t timestamp = TagTimestamp(dts);
  std::array<uint8_t, kFlvTagHeaderSize> header{};
  header[0] = uint8_t(type);
  StoreU24(&header[1], uint32_t(body.size()));
  StoreU24(&header[4], timestamp & 0xFFFFFF);
  header[7] = uint8_t(timestamp >> 24);  // TimestampExtended; StreamID (3 bytes) stays 0
  std::array<uint8_t, kFlvPreviousTagSize> trailer;
  StoreU32(trailer.data(), uint32_t(kFlvTagHeaderSize + body.size()));
  const std::span<const uint8_t> pieces[] = {header, body, trailer};
  if (absl::Status s = sink_->Write(pieces); !s.ok()) return s;
  ++tags_;
  bytes_ += header.size() + body.size() + trailer.size();
  return absl::OkStatus();
}

}  // namespace uringest::consumer
