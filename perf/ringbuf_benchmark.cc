// Frame ring benchmarks: producer and reader throughput for 200 B, 4 KiB, 64 KiB and
// 1 MiB frames, and producer-to-reader latency across processes (p50/p99).
//
//   build/bin/ringbuf_benchmark
//   build/bin/ringbuf_benchmark --benchmark_filter=Latency

#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <vector>

#include "benchmark/benchmark.h"
#include "ringbuf/clock.h"
#include "ringbuf/internal/test_util.h"
#include "ringbuf/producer.h"
#include "ringbuf/ring_reader.h"

namespace uringest::ringbuf {
namespace {

constexpr uint64_t kCapacity = 64 << 20;  // the engine's default ring

struct Ring {
  Ring() {
    auto p = Producer::Create(name.RingPath(), {.capacity = kCapacity});
    if (!p.ok()) abort();
    producer = *std::move(p);
    auto r = RingReader::Open(name.RingPath());
    if (!r.ok()) abort();
    reader = *std::move(r);
  }
  testing::ScopedRingName name;
  std::unique_ptr<Producer> producer;
  std::unique_ptr<RingReader> reader;
};

RecordMeta Meta(uint64_t seq) {
  return {.type = RecordType::kVideo, .stream_id = 1, .sequence = seq};
}

void BM_ProducerWrite(benchmark::State& state) {
  Ring ring;
  std::vector<uint8_t> payload(state.range(0), 0x5A);
  uint64_t seq = 0;
  for (auto _ : state) {
    absl::StatusOr<uint64_t> position = ring.producer->Write(Meta(++seq), payload);
    benchmark::DoNotOptimize(position);
  }
  state.SetBytesProcessed(state.iterations() * payload.size());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ProducerWrite)->Arg(200)->Arg(4 << 10)->Arg(64 << 10)->Arg(1 << 20);

// Reserve/commit with the payload written in place (the engine's zero-copy path).
void BM_ProducerReserveCommit(benchmark::State& state) {
  Ring ring;
  size_t size = state.range(0);
  uint64_t seq = 0;
  for (auto _ : state) {
    absl::StatusOr<std::span<uint8_t>> room = ring.producer->Reserve(Meta(++seq), size);
    benchmark::DoNotOptimize(room->data());
    ring.producer->Commit();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ProducerReserveCommit)->Arg(200)->Arg(4 << 10);

// Poll + copy-out + validate of frames already in the ring, refilled outside the timing.
void BM_ReaderCopyOut(benchmark::State& state) {
  Ring ring;
  std::vector<uint8_t> payload(state.range(0), 0x5A), copy(state.range(0));
  const uint64_t batch = std::max<uint64_t>(1, kCapacity / 2 / (payload.size() + 64));
  uint64_t seq = 0, pending = 0;
  RecordView view;
  for (auto _ : state) {
    if (pending == 0) {
      state.PauseTiming();
      for (uint64_t i = 0; i < batch; ++i) (void)ring.producer->Write(Meta(++seq), payload);
      pending = batch;
      state.ResumeTiming();
    }
    bool ok = ring.reader->Poll(&view) && ring.reader->CopyPayload(view, copy);
    benchmark::DoNotOptimize(ok);
    --pending;
  }
  state.SetBytesProcessed(state.iterations() * payload.size());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ReaderCopyOut)->Arg(200)->Arg(4 << 10)->Arg(64 << 10)->Arg(1 << 20);

// ---- Cross-process latency ----

constexpr int kMaxSamples = 1 << 20;
struct LatencyShared {
  std::atomic<uint64_t> acked;
  std::atomic<int> ready;
  uint64_t samples[kMaxSamples];
};

// The reader process: takes each frame, stores now - ingest_time, acknowledges it.
[[noreturn]] void RunLatencyReader(const std::string& path, LatencyShared* shared, bool sleep) {
  auto reader = RingReader::Open(path);
  if (!reader.ok()) _exit(1);
  (*reader)->SeekToTail();
  shared->ready = 1;
  RecordView view;
  for (;;) {
    if (!(*reader)->Poll(&view)) {
      if ((*reader)->state() == RingState::kClosed) _exit(0);
      if (sleep) {
        (*reader)->Wait(absl::Milliseconds(100));
      } else {
        sched_yield();  // polls, but lets the producer run on a busy machine
      }
      continue;
    }
    uint64_t now = MonotonicNs();
    uint64_t seq = view.header.sequence;
    shared->samples[seq % kMaxSamples] = now - view.header.ingest_time_ns;
    shared->acked.store(seq, std::memory_order_release);
  }
}

// Arg 0: frame size; arg 1: 1 = the reader sleeps on the futex when idle, 0 = it polls
// (yielding). Each frame is acknowledged before the next is written: one-way latency.
void BM_CrossProcessLatency(benchmark::State& state) {
  Ring ring;
  auto* shared = static_cast<LatencyShared*>(mmap(
      nullptr, sizeof(LatencyShared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  pid_t child = fork();
  if (child == 0) RunLatencyReader(ring.name.RingPath(), shared, state.range(1) != 0);
  while (shared->ready.load() == 0) sched_yield();
  std::vector<uint8_t> payload(state.range(0), 0x5A);
  uint64_t seq = 0;
  for (auto _ : state) {
    RecordMeta meta = Meta(++seq);
    meta.ingest_time_ns = MonotonicNs();
    (void)ring.producer->Write(meta, payload);
    while (shared->acked.load(std::memory_order_acquire) != seq) sched_yield();
  }
  ring.producer->Close();
  waitpid(child, nullptr, 0);
  uint64_t n = std::min<uint64_t>(seq, kMaxSamples);
  std::vector<uint64_t> samples(shared->samples + 1,
                                shared->samples + 1 + std::min(n, kMaxSamples - 1ul));
  std::sort(samples.begin(), samples.end());
  if (!samples.empty()) {
    state.counters["p50_us"] = samples[samples.size() / 2] / 1e3;
    state.counters["p99_us"] = samples[samples.size() * 99 / 100] / 1e3;
  }
  state.SetItemsProcessed(state.iterations());
  munmap(shared, sizeof(LatencyShared));
}
BENCHMARK(BM_CrossProcessLatency)
    ->ArgNames({"size", "futex"})
    ->Args({200, 0})
    ->Args({200, 1})
    ->Args({64 << 10, 0})
    ->Args({64 << 10, 1})
    ->UseRealTime();

}  // namespace
}  // namespace uringest::ringbuf
