#include "loadgen/verifier.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "loadgen/stamp.h"
#include "ringbuf/clock.h"

namespace uringest::loadgen {

absl::StatusOr<std::unique_ptr<Verifier>> Verifier::Open(const std::string& ring, uint32_t run,
                                                         uint32_t publishers,
                                                         uint64_t frames_hint) {
  absl::StatusOr<std::unique_ptr<ringbuf::Reader>> reader = ringbuf::Reader::Open(ring);
  if (!reader.ok()) return reader.status();
  std::unique_ptr<Verifier> v(new Verifier(run, publishers, frames_hint));
  const ringbuf::DirectoryHeader& header = (*reader)->directory().header();
  v->server_pid_ = header.server_pid;
  for (uint32_t shard = 0; shard < header.shard_count; ++shard) {
    absl::StatusOr<std::unique_ptr<ringbuf::RingReader>> r =
        ringbuf::RingReader::Open((*reader)->directory().RingPath(ring, shard));
    if (!r.ok()) return r.status();
    (*r)->SeekToTail();
    v->rings_.push_back(*std::move(r));
  }
  v->reader_ = *std::move(reader);
  return v;
}

Verifier::Verifier(uint32_t run, uint32_t publishers, uint64_t frames_hint)
    : run_(run), tallies_(publishers) {
  for (PublisherTally& t : tallies_) t.seen.assign(frames_hint / 64 + 2, 0);
}

Verifier::~Verifier() { Stop(); }

void Verifier::Start() {
  thread_ = std::thread([this] { ReadLoop(); });
}

void Verifier::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

uint64_t Verifier::laps() const {
  uint64_t n = 0;
  for (const auto& r : rings_) n += r->laps();
  return n;
}

uint64_t Verifier::lost_bytes() const {
  uint64_t n = 0;
  for (const auto& r : rings_) n += r->lost_bytes();
  return n;
}

// With one shard the reader sleeps on its ring's futex and wakes at each commit (and
// every kWaitInterval, for the server and the stop flag); with several it can only
// sleep on one, so it takes them in turn with a 1 ms timeout (at most 1 ms added to a
// latency, and about a thousand wake-ups a second while idle).
void Verifier::ReadLoop() {
  size_t turn = 0;
  absl::Time next_look = absl::Now();
  while (!stop_.load(std::memory_order_relaxed)) {
    if (absl::Now() >= next_look) {
      if (ServerGone()) break;
      next_look = absl::Now() + ringbuf::kWaitInterval;
    }
    bool any = false;
    for (auto& ring : rings_) any |= DrainRing(ring.get());
    if (any) continue;
    const absl::Duration wait = rings_.size() == 1 ? ringbuf::kWaitInterval : absl::Milliseconds(1);
    rings_[turn++ % rings_.size()]->Wait(wait);
  }
  for (auto& ring : rings_) DrainRing(ring.get());
}

bool Verifier::ServerGone() {
  const ringbuf::ServerExit exit = reader_->CheckServerExit();
  if (exit == ringbuf::ServerExit::kNone) return false;
  server_exit_.store(exit);
  if (on_server_exit_) on_server_exit_(exit);
  return true;
}

bool Verifier::DrainRing(ringbuf::RingReader* ring) {
  ringbuf::RecordView view;
  bool any = false;
  uint8_t copy[kStampedMin];
  while (ring->Poll(&view)) {
    any = true;
    if (view.type() != ringbuf::RecordType::kVideo && view.type() != ringbuf::RecordType::kAudio) {
      continue;
    }
    if (view.payload.size() < kStampedMin) continue;
    std::memcpy(copy, view.payload.data(), kStampedMin);
    const uint64_t now = ringbuf::RealtimeNs();
    if (!ring->Validate(view)) continue;  // overwritten while read: the laps count it
    std::optional<Stamp> stamp = ReadStamp(copy);
    if (!stamp || stamp->run != run_ || stamp->publisher >= tallies_.size()) {
      ++foreign_;
      continue;
    }
    Book(*stamp, view.header.ingest_time_ns, now);
  }
  return any;
}

void Verifier::Book(const Stamp& stamp, uint64_t ingest_ns, uint64_t now_ns) {
  PublisherTally& t = tallies_[stamp.publisher];
  const uint64_t s = stamp.sequence;
  if (s / 64 >= t.seen.size()) t.seen.resize(s / 64 + 1 + t.seen.size() / 2, 0);
  uint64_t& word = t.seen[s / 64];
  const uint64_t bit = uint64_t{1} << (s % 64);
  if (word & bit) {
    ++t.duplicated;
    return;
  }
  word |= bit;
  ++t.delivered;
  delivered_.fetch_add(1, std::memory_order_relaxed);
  if (s < t.max_sequence) {
    ++t.out_of_order;
    live_lost_.fetch_sub(1, std::memory_order_relaxed);  // fills a gap counted before
  } else {
    live_lost_.fetch_add(int64_t(s - t.max_sequence - 1), std::memory_order_relaxed);
    t.max_sequence = s;
  }
  t.latency.Record(int64_t(now_ns - stamp.send_ns));
  t.ingest.Record(int64_t(ingest_ns - stamp.send_ns));
}

}  // namespace uringest::loadgen
