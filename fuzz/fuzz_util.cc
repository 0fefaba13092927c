#include "fuzz/fuzz_util.h"

#include <fstream>
#include <iterator>

#include "absl/strings/str_format.h"

namespace uringest::fuzz {

std::string OwnedMessage::Describe() const {
  return absl::StrFormat("{csid %u type %u stream %u ts %u, %u bytes}", header.chunk_stream_id,
                         unsigned(header.type), header.stream_id, header.timestamp, payload.size());
}

ReadOutcome ReadChunkStream(std::span<const uint8_t> bytes, uint64_t split_seed,
                            const rtmp::ChunkReaderOptions& options) {
  rtmp::ChunkReader reader(options);
  ReadOutcome outcome;
  ForEachPiece(bytes, split_seed, [&](std::span<const uint8_t> in) {
    while (outcome.status.ok() && (!in.empty() || reader.has_pending())) {
      rtmp::Message message;
      absl::StatusOr<rtmp::ChunkReader::Result> r = reader.Read(in, &message);
      if (!r.ok()) {
        outcome.status = r.status();
        return;
      }
      FUZZ_CHECK(r->consumed <= in.size(), "consumed %zu of %zu", r->consumed, in.size());
      FUZZ_CHECK(r->consumed > 0 || r->message_ready || reader.has_pending() || in.empty(),
                 "Read() made no progress on %zu bytes", in.size());
      FUZZ_CHECK(reader.buffered_bytes() <= options.max_buffered_bytes,
                 "%zu bytes buffered, limit %zu", reader.buffered_bytes(),
                 options.max_buffered_bytes);
      FUZZ_CHECK(reader.chunk_stream_count() <= options.max_chunk_streams, "%zu chunk streams",
                 reader.chunk_stream_count());
      outcome.consumed += r->consumed;
      in = in.subspan(r->consumed);
      if (r->message_ready) {
        FUZZ_CHECK(message.payload.size() <= options.max_message_size, "message of %zu bytes",
                   message.payload.size());
        outcome.messages.push_back(OwnedMessage::Of(message));
      }
    }
  });
  return outcome;
}

std::vector<uint8_t> ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

}  // namespace uringest::fuzz
