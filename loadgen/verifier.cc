#include "loadgen/verifier.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "loadgen/stamp.h"
#include "ringbuf/clock.h"

namespace uringest::loadgen {

// One server's ring: its directory and a reader per shard, while a live server owns it.
struct Verifier::Node {
  std::string name;
  std::unique_ptr<ringbuf::Reader> reader;  // null while the ring is down
  std::vector<std::unique_ptr<ringbuf::RingReader>> rings;
  uint64_t epoch = 0;  // of the server read last; 0: none yet
  int pid = 0;
  uint32_t exits = 0;
  uint64_t laps = 0;  // of the ring readers closed since
  uint64_t lost_bytes = 0;
};

// Opens `node`'s ring if a live server it has not read before owns it: from the tail
// (at Open(), so that only this run's frames are booked) or from its start (a ring a
// server created during the run: all of it is this run's).
absl::Status Verifier::OpenNode(Node* node, bool from_tail) {
  absl::StatusOr<std::unique_ptr<ringbuf::Reader>> reader = ringbuf::Reader::Open(node->name);
  if (!reader.ok()) return reader.status();
  if ((*reader)->CheckServerExit() != ringbuf::ServerExit::kNone) {
    return absl::UnavailableError(absl::StrCat("ring ", node->name, ": its server is gone"));
  }
  if ((*reader)->epoch() == node->epoch) {
    return absl::UnavailableError(absl::StrCat("ring ", node->name, ": the server read before"));
  }
  const ringbuf::DirectoryHeader& header = (*reader)->directory().header();
  std::vector<std::unique_ptr<ringbuf::RingReader>> rings;
  for (uint32_t shard = 0; shard < header.shard_count; ++shard) {
    absl::StatusOr<std::unique_ptr<ringbuf::RingReader>> r =
        ringbuf::RingReader::Open((*reader)->directory().RingPath(node->name, shard));
    if (!r.ok()) return r.status();
    if (from_tail) (*r)->SeekToTail();
    rings.push_back(*std::move(r));
  }
  node->epoch = (*reader)->epoch();
  node->pid = header.server_pid;
  node->rings = std::move(rings);
  node->reader = *std::move(reader);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Verifier>> Verifier::Open(const std::vector<std::string>& rings,
                                                         uint32_t run, uint32_t publishers,
                                                         uint64_t frames_hint) {
  if (rings.empty()) return absl::InvalidArgumentError("no ring to verify");
  std::unique_ptr<Verifier> v(new Verifier(rings, run, publishers, frames_hint));
  absl::Status first_error;
  uint32_t open = 0;
  for (auto& node : v->nodes_) {
    absl::Status s = OpenNode(node.get(), /*from_tail=*/true);
    if (s.ok()) {
      ++open;
    } else if (first_error.ok()) {
      first_error = s;
    }
  }
  if (open == 0) return first_error;
  v->rings_down_.store(uint32_t(rings.size()) - open);
  v->CollectActive();
  return v;
}

Verifier::Verifier(const std::vector<std::string>& rings, uint32_t run, uint32_t publishers,
                   uint64_t frames_hint)
    : run_(run), names_(rings), tallies_(publishers) {
  for (const std::string& name : rings) {
    nodes_.push_back(std::make_unique<Node>());
    nodes_.back()->name = name;
  }
  for (PublisherTally& t : tallies_) {
    t.seen.assign(frames_hint / 64 + 2, 0);
    t.delivered_by_ring.assign(rings.size(), 0);
    t.max_by_ring.assign(rings.size(), 0);
  }
}

Verifier::~Verifier() { Stop(); }

void Verifier::Start() {
  thread_ = std::thread([this] { ReadLoop(); });
}

void Verifier::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

std::vector<int> Verifier::server_pids() const {
  std::vector<int> pids;
  for (const auto& node : nodes_) {
    if (node->pid != 0) pids.push_back(node->pid);
  }
  return pids;
}

uint64_t Verifier::laps() const {
  uint64_t n = 0;
  for (const auto& node : nodes_) {
    n += node->laps;
    for (const auto& r : node->rings) n += r->laps();
  }
  return n;
}

uint64_t Verifier::lost_bytes() const {
  uint64_t n = 0;
  for (const auto& node : nodes_) {
    n += node->lost_bytes;
    for (const auto& r : node->rings) n += r->lost_bytes();
  }
  return n;
}

uint32_t Verifier::ring_exits(size_t k) const { return nodes_[k]->exits; }

void Verifier::CollectActive() {
  active_.clear();
  for (uint32_t k = 0; k < nodes_.size(); ++k) {
    for (auto& ring : nodes_[k]->rings) active_.push_back({ring.get(), k});
  }
}

// With one ring the reader sleeps on its futex and wakes at each commit (and every
// kWaitInterval, for the servers and the stop flag); with several it can only sleep on
// one, so it takes them in turn with a 1 ms timeout (at most 1 ms added to a latency,
// and about a thousand wake-ups a second while idle).
void Verifier::ReadLoop() {
  size_t turn = 0;
  absl::Time next_look = absl::Now();
  while (!stop_.load(std::memory_order_relaxed)) {
    if (absl::Now() >= next_look) {
      if (!LookAtServers()) break;
      next_look = absl::Now() + ringbuf::kWaitInterval;
    }
    bool any = false;
    for (const Active& a : active_) any |= DrainRing(a.ring, a.node);
    if (any) continue;
    if (active_.empty()) {
      absl::SleepFor(ringbuf::kWaitInterval);
      continue;
    }
    const absl::Duration wait =
        active_.size() == 1 ? ringbuf::kWaitInterval : absl::Milliseconds(1);
    active_[turn++ % active_.size()].ring->Wait(wait);
  }
  for (const Active& a : active_) DrainRing(a.ring, a.node);
}

bool Verifier::LookAtServers() {
  bool changed = false;
  for (uint32_t k = 0; k < nodes_.size(); ++k) {
    Node* node = nodes_[k].get();
    if (node->reader == nullptr) {
      // Not there yet, or its server is gone: a new server's ring is all new.
      if (survive_exits_ && OpenNode(node, /*from_tail=*/false).ok()) {
        rings_down_.fetch_sub(1, std::memory_order_relaxed);
        changed = true;
      }
      continue;
    }
    const ringbuf::ServerExit exit = node->reader->CheckServerExit();
    if (exit == ringbuf::ServerExit::kNone) continue;
    if (!survive_exits_) {
      server_exit_.store(exit);
      if (on_server_exit_) on_server_exit_(exit);
      return false;
    }
    CloseNode(k);
    changed = true;
  }
  if (changed) CollectActive();
  return true;
}

// The server of node `k` is gone: what its rings still hold is booked, then they are let go.
void Verifier::CloseNode(uint32_t k) {
  Node* node = nodes_[k].get();
  for (auto& ring : node->rings) {
    DrainRing(ring.get(), k);
    node->laps += ring->laps();
    node->lost_bytes += ring->lost_bytes();
  }
  node->rings.clear();
  node->reader.reset();
  ++node->exits;
  rings_down_.fetch_add(1, std::memory_order_relaxed);
}

bool Verifier::DrainRing(ringbuf::RingReader* ring, uint32_t node) {
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
    Book(*stamp, node, view.header.ingest_time_ns, now);
  }
  return any;
}

void Verifier::Book(const Stamp& stamp, uint32_t node, uint64_t ingest_ns, uint64_t now_ns) {
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
  ++t.delivered_by_ring[node];
  delivered_.fetch_add(1, std::memory_order_relaxed);
  if (s < t.max_by_ring[node]) ++t.out_of_order;
  t.max_by_ring[node] = std::max(t.max_by_ring[node], s);
  if (s < t.max_sequence) {
    live_lost_.fetch_sub(1, std::memory_order_relaxed);  // fills a gap counted before
  } else {
    live_lost_.fetch_add(int64_t(s - t.max_sequence - 1), std::memory_order_relaxed);
    t.max_sequence = s;
  }
  t.latency.Record(int64_t(now_ns - stamp.send_ns));
  t.ingest.Record(int64_t(ingest_ns - stamp.send_ns));
}

}  // namespace uringest::loadgen
