// chunk_reader_benchmark: how fast the protocol core reassembles RTMP chunk streams.
//
//   build/bin/chunk_reader_benchmark
//   build/bin/chunk_reader_benchmark --benchmark_filter=Synthetic
//
// Bytes are fed in 64 KiB reads, as the engine's receive buffers deliver them. Figures:
// bytes_per_second (MB/s of wire bytes) and items_per_second (messages/s).

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "benchmark/benchmark.h"
#include "engine/rtmp/chunk_reader.h"
#include "engine/rtmp/chunk_writer.h"
#include "engine/rtmp/server_connection.h"
#include "media/byte_order.h"
#include "tests/rtmp_testing.h"

namespace uringest::rtmp {
namespace {

constexpr size_t kReadSize = 64 << 10;
constexpr size_t kHandshakeBytes = 1 + 2 * kHandshakeSize;  // C0 C1 C2

// Reads every message of `bytes` in kReadSize pieces; returns the message count.
size_t ReadAll(std::span<const uint8_t> bytes) {
  ChunkReader reader;
  size_t messages = 0;
  for (size_t pos = 0; pos < bytes.size(); pos += kReadSize) {
    std::span<const uint8_t> in = bytes.subspan(pos, std::min(kReadSize, bytes.size() - pos));
    while (!in.empty() || reader.has_pending()) {
      Message m;
      absl::StatusOr<ChunkReader::Result> r = reader.Read(in, &m);
      if (!r.ok()) std::abort();
      in = in.subspan(r->consumed);
      if (r->message_ready) {
        benchmark::DoNotOptimize(m.payload.data());
        ++messages;
      }
    }
  }
  return messages;
}

void RunReader(benchmark::State& state, std::span<const uint8_t> bytes) {
  size_t messages = 0;
  for (auto _ : state) messages += ReadAll(bytes);
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(bytes.size()));
  state.SetItemsProcessed(int64_t(messages));
}

// The chunk stream of a recorded ffmpeg publish (tests/data), handshake skipped.
void BM_ChunkReaderRecordedSession(benchmark::State& state, const char* file) {
  const std::vector<uint8_t> capture = testing::ReadTestData(file);
  RunReader(state, std::span<const uint8_t>(capture).subspan(kHandshakeBytes));
}
BENCHMARK_CAPTURE(BM_ChunkReaderRecordedSession, ffmpeg_chunk128, "ffmpeg_publish_chunk128.rtmp");
BENCHMARK_CAPTURE(BM_ChunkReaderRecordedSession, ffmpeg_chunk65536,
                  "ffmpeg_publish_chunk65536.rtmp");

// 60 s of a synthetic 6 Mbit/s publish: 30 fps H.264-sized video (a keyframe of 8x the
// average every 2 s) on chunk stream 6 and 128 kbit/s AAC-sized audio at 43 frames/s
// on chunk stream 4, as an encoder interleaves them, at the given chunk size.
std::vector<uint8_t> SyntheticPublish(uint32_t chunk_size) {
  ChunkWriter writer;
  std::vector<uint8_t> out;
  std::vector<uint8_t> size_payload;
  media::AppendU32(&size_payload, chunk_size);
  writer.Write(MessageHeader{.chunk_stream_id = 2, .type = MessageType::kSetChunkSize},
               size_payload, &out);
  std::mt19937 rng(6);
  const size_t average_frame = 6'000'000 / 8 / 30;
  std::vector<uint8_t> payload(8 * average_frame, 0x17);
  double audio_ms = 0;
  for (int frame = 0; frame < 60 * 30; ++frame) {
    const uint64_t ms = frame * 1000 / 30;
    const bool key = frame % 60 == 0;
    const size_t size = key ? 8 * average_frame : average_frame * (6 + rng() % 4) / 10;
    writer.Write(
        MessageHeader{
            .chunk_stream_id = 6, .type = MessageType::kVideo, .stream_id = 1, .timestamp = ms},
        std::span<const uint8_t>(payload).first(size), &out);
    for (; audio_ms <= ms; audio_ms += 1024.0 * 1000 / 44100) {
      writer.Write(MessageHeader{.chunk_stream_id = 4,
                                 .type = MessageType::kAudio,
                                 .stream_id = 1,
                                 .timestamp = uint64_t(audio_ms)},
                   std::span<const uint8_t>(payload).first(372), &out);
    }
  }
  return out;
}

void BM_ChunkReaderSynthetic6Mbps(benchmark::State& state) {
  const std::vector<uint8_t> bytes = SyntheticPublish(uint32_t(state.range(0)));
  RunReader(state, bytes);
}
BENCHMARK(BM_ChunkReaderSynthetic6Mbps)->ArgName("chunk_size")->Arg(128)->Arg(4096)->Arg(65536);

// The whole I/O-free core on the recorded session: handshake, chunks, commands, frames.
class NullSink : public FrameSink {
 public:
  absl::Status OnStreamBegin(uint32_t, StreamName) override { return absl::OkStatus(); }
  void OnFrame(const Frame& frame) override { benchmark::DoNotOptimize(frame.payload.data()); }
  void OnStreamEnd(uint32_t) override {}
};

class AnyName : public PublishRegistry {
 public:
  absl::Status Claim(StreamName) override { return absl::OkStatus(); }
  void Release(StreamName) override {}
};

void BM_ServerConnectionRecordedSession(benchmark::State& state) {
  const std::vector<uint8_t> capture = testing::ReadTestData("ffmpeg_publish_chunk128.rtmp");
  NullSink sink;
  AnyName names;
  for (auto _ : state) {
    ServerConnection conn({}, &sink, &names);
    for (size_t pos = 0; pos < capture.size(); pos += kReadSize) {
      const size_t n = std::min(kReadSize, capture.size() - pos);
      if (!conn.Receive(std::span<const uint8_t>(capture).subspan(pos, n)).ok()) std::abort();
    }
    benchmark::DoNotOptimize(conn.output().size());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(capture.size()));
}
BENCHMARK(BM_ServerConnectionRecordedSession);

}  // namespace
}  // namespace uringest::rtmp
