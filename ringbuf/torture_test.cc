// Multi-process torture: a producer process writes PRNG payloads at full speed into a
// 1 MiB ring while reader processes check every frame (content, order, keyframe resync)
// and that what they count as lost equals the gaps. Readers are stopped, killed; the
// producer is killed mid-write. Every child runs under a deadline and is killed if the
// test fails, so nothing hangs.

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "ringbuf/clock.h"
#include "ringbuf/internal/test_util.h"
#include "ringbuf/producer.h"
#include "ringbuf/ring_reader.h"
#include "ringbuf/stream_follower.h"

namespace uringest::ringbuf {
namespace {

constexpr uint64_t kRingCapacity = 1 << 20;
constexpr uint32_t kStream = 1;
constexpr int64_t kDeadAfterNs = 500'000'000;

enum ExitCode {
  kOk = 0,
  kBadContent = 10,
  kBadOrder = 11,
  kBadLostCount = 12,
  kNoKeyframeAfterLoss = 13,
  kTimedOut = 15,
  kOpenFailed = 20,
  kSawDeadProducer = 30,
};

// Written by the children, read by the parent after waitpid().
struct Shared {
  std::atomic<int> readers_ready;
  std::atomic<int> producer_mid_write;
  std::atomic<uint64_t> frames_written;
  struct {
    uint64_t valid, invalid, lost, first, last;
    uint64_t dead_seen_ns;
  } reader[8];
};

class Children {
 public:
  ~Children() {
    for (pid_t pid : pids_) kill(pid, SIGKILL);
    for (pid_t pid : pids_) waitpid(pid, nullptr, 0);
  }
  pid_t Spawn(const std::function<int()>& body) {
    pid_t pid = fork();
    if (pid == 0) _exit(body());
    pids_.push_back(pid);
    return pid;
  }
  // The child's exit code, or -signal; kills it and returns -SIGKILL after `timeout`.
  int Wait(pid_t pid, absl::Duration timeout) {
    absl::Time deadline = absl::Now() + timeout;
    int status = 0;
    while (waitpid(pid, &status, WNOHANG) == 0) {
      if (absl::Now() > deadline) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        break;
      }
      absl::SleepFor(absl::Milliseconds(5));
    }
    std::erase(pids_, pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  }

 private:
  std::vector<pid_t> pids_;
};

size_t FrameSize(uint64_t seq) {
  uint64_t state = seq;
  uint64_t r = testing::SplitMix64(state);
  if (r % 64 == 0) return r % (kRingCapacity / 4 - kRecordHeaderSize);  // up to the maximum
  return r % 4096;
}

RecordMeta FrameMeta(uint64_t seq) {
  return {.type = RecordType::kVideo,
          .flags = seq % 16 == 1 ? kFlagKeyframe : uint8_t{0},
          .stream_id = kStream,
          .sequence = seq,
          .dts = static_cast<int64_t>(seq),
          .pts = static_cast<int64_t>(seq),
          .ingest_time_ns = MonotonicNs(),
          .codec = static_cast<uint32_t>(seq * 2654435761u),  // Enhanced RTMP fields too
          .track_id = static_cast<uint8_t>(seq),
          .packet_type = static_cast<uint8_t>(seq % 8)};
}

// Writes frames 1, 2, ... until `duration` passes, then a stream-end record.
int RunProducer(Producer* producer, Shared* shared, absl::Duration duration) {
  uint64_t start = MonotonicNs(), last_beat = start;
  uint64_t end = start + absl::ToInt64Nanoseconds(duration);
  uint64_t seq = 1;
  for (;; ++seq) {
    absl::StatusOr<std::span<uint8_t>> room = producer->Reserve(FrameMeta(seq), FrameSize(seq));
    if (!room.ok()) return 1;
    testing::FillPayload(kStream, seq, *room);
    producer->Commit();
    if (seq % 64 != 0) continue;
    uint64_t now = MonotonicNs();
    if (now - last_beat > 50'000'000) producer->Heartbeat(), last_beat = now;
    if (now > end) break;
  }
  shared->frames_written = seq;
  RecordMeta meta{.type = RecordType::kStreamEnd, .stream_id = kStream, .sequence = seq + 1};
  (void)producer->Write(meta, std::span<const uint8_t>());
  producer->Close();
  return 0;
}

// Follows the stream to its end, checking every frame; see ExitCode.
int RunReader(const std::string& path, Shared* shared, int index, bool lossless) {
  auto ring = RingReader::Open(path);
  if (!ring.ok() || (lossless && !(*ring)->EnableLossless().ok())) return kOpenFailed;
  StreamFollower follower(ring->get(), kStream, /*await_keyframe=*/true);
  auto& out = shared->reader[index];
  std::vector<uint8_t> buf(kRingCapacity);
  bool need_keyframe = true;
  shared->readers_ready.fetch_add(1);
  uint64_t deadline = MonotonicNs() + 60'000'000'000;
  for (;;) {
    RecordView view;
    uint64_t lost_before;
    if (!follower.Poll(&view, &lost_before)) {
      if ((*ring)->state() == RingState::kClosed && (*ring)->Lag() == 0) return kTimedOut;
      if ((*ring)->HeartbeatAgeNs() > kDeadAfterNs) {
        out.dead_seen_ns = MonotonicNs();
        return kSawDeadProducer;
      }
      if (MonotonicNs() > deadline) return kTimedOut;
      (*ring)->Wait(absl::Milliseconds(50));
      continue;
    }
    uint64_t seq = view.header.sequence;
    if (out.first == 0) out.first = seq;
    (void)(*ring)->CopyPayload(view, buf);
    if (!follower.Validate(view)) {
      ++out.invalid;
      need_keyframe = true;
      continue;
    }
    if (seq <= out.last) return kBadOrder;
    if (lost_before > 0 || view.gap_before) need_keyframe = true;
    if (view.type() == RecordType::kStreamEnd) {
      out.last = seq;
      break;
    }
    if (need_keyframe && (view.header.flags & kFlagKeyframe) == 0) return kNoKeyframeAfterLoss;
    need_keyframe = false;
    const RecordMeta expected = FrameMeta(seq);
    if (view.header.codec != expected.codec || view.header.track_id != expected.track_id ||
        view.header.packet_type != expected.packet_type) {
      return kBadContent;
    }
    if (view.payload.size() != FrameSize(seq) ||
        !testing::CheckPayload(kStream, seq, std::span(buf).first(view.payload.size()))) {
      return kBadContent;
    }
    out.last = seq;
    ++out.valid;
  }
  out.lost = follower.lost() + follower.skipped();
  // Everything from the first frame seen to the last valid one was delivered, lost, or
  // passed over on the way to a keyframe.
  uint64_t expected_lost = out.last - out.first + 1 - (out.valid + 1);
  return out.lost == expected_lost ? kOk : kBadLostCount;
}

class TortureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    void* p =
        mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(p, MAP_FAILED);
    shared_ = new (p) Shared{};
    auto producer = Producer::Create(
        name_.RingPath(),
        {.capacity = kRingCapacity, .epoch = 3, .lossless_timeout = absl::Milliseconds(50)});
    ASSERT_TRUE(producer.ok()) << producer.status();
    producer_ = *std::move(producer);
  }
  void TearDown() override { munmap(shared_, sizeof(Shared)); }

  pid_t SpawnReader(int index, bool lossless = false) {
    return children_.Spawn(
        [=, this] { return RunReader(name_.RingPath(), shared_, index, lossless); });
  }
  void AwaitReaders(int n) {
    absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (shared_->readers_ready < n && absl::Now() < deadline)
      absl::SleepFor(absl::Milliseconds(1));
    ASSERT_EQ(shared_->readers_ready, n);
  }

  testing::ScopedRingName name_;
  Shared* shared_ = nullptr;
  std::unique_ptr<Producer> producer_;
  Children children_;
};

TEST_F(TortureTest, ReadersCheckEveryFrameWhileOthersAreStoppedAndKilled) {
  pid_t steady0 = SpawnReader(0);
  pid_t steady1 = SpawnReader(1);
  pid_t stopped = SpawnReader(2);
  pid_t killed = SpawnReader(3);
  pid_t killed_lossless = SpawnReader(4, /*lossless=*/true);
  AwaitReaders(5);
  pid_t producer = children_.Spawn(
      [this] { return RunProducer(producer_.get(), shared_, absl::Milliseconds(1500)); });
  absl::SleepFor(absl::Milliseconds(300));
  kill(stopped, SIGSTOP);
  kill(killed, SIGKILL);
  kill(killed_lossless, SIGKILL);
  absl::SleepFor(absl::Milliseconds(300));
  kill(stopped, SIGCONT);
  EXPECT_EQ(children_.Wait(producer, absl::Seconds(30)), 0);
  EXPECT_EQ(children_.Wait(steady0, absl::Seconds(30)), kOk);
  EXPECT_EQ(children_.Wait(steady1, absl::Seconds(30)), kOk);
  EXPECT_EQ(children_.Wait(stopped, absl::Seconds(30)), kOk);
  EXPECT_EQ(children_.Wait(killed, absl::Seconds(5)), -SIGKILL);
  EXPECT_EQ(children_.Wait(killed_lossless, absl::Seconds(5)), -SIGKILL);
  uint64_t written = shared_->frames_written;
  EXPECT_GT(written, 1000u);
  for (int i : {0, 1, 2}) {
    EXPECT_EQ(shared_->reader[i].last, written + 1) << "reader " << i << " saw the end";
    EXPECT_GT(shared_->reader[i].valid, 0u);
  }
  // Stopped for 300 ms while the producer lapped a 1 MiB ring many times.
  EXPECT_GT(shared_->reader[2].lost, 0u);
  // The killed lossless reader was evicted, so the producer went on.
  EXPECT_GE(producer_->header().lossless_evictions, 1u);
  EXPECT_EQ(producer_->header().lossless_mask, 0u);
}

TEST_F(TortureTest, ProducerKilledMidWriteNeverHandsOutATornFrame) {
  pid_t reader = SpawnReader(0);
  AwaitReaders(1);
  pid_t producer = children_.Spawn([this] {
    for (uint64_t seq = 1; seq <= 100; ++seq) {
      std::vector<uint8_t> payload(FrameSize(seq));
      testing::FillPayload(kStream, seq, payload);
      (void)producer_->Write(FrameMeta(seq), payload);
    }
    auto room = producer_->Reserve(FrameMeta(101), 100000);
    std::fill(room->begin(), room->begin() + 50000, 0xEE);  // half a frame, then death
    producer_->Heartbeat();
    shared_->producer_mid_write = 1;
    for (;;) pause();
    return 0;
  });
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (!shared_->producer_mid_write && absl::Now() < deadline)
    absl::SleepFor(absl::Milliseconds(1));
  ASSERT_TRUE(shared_->producer_mid_write);
  kill(producer, SIGKILL);
  uint64_t killed_ns = MonotonicNs();
  EXPECT_EQ(children_.Wait(producer, absl::Seconds(5)), -SIGKILL);
  EXPECT_EQ(children_.Wait(reader, absl::Seconds(20)), kSawDeadProducer);
  EXPECT_EQ(shared_->reader[0].last, 100u);  // every whole frame, not the torn one
  EXPECT_EQ(shared_->reader[0].lost, 0u);
  int64_t noticed_after = static_cast<int64_t>(shared_->reader[0].dead_seen_ns - killed_ns);
  EXPECT_LT(noticed_after, 1'500'000'000) << "dead producer reported within about a second";
}

TEST_F(TortureTest, ProducerKilledAtFullSpeedIsReportedAndNoReaderSeesGarbage) {
  pid_t r0 = SpawnReader(0);
  pid_t r1 = SpawnReader(1);
  AwaitReaders(2);
  pid_t producer =
      children_.Spawn([this] { return RunProducer(producer_.get(), shared_, absl::Seconds(60)); });
  absl::SleepFor(absl::Milliseconds(400));
  kill(producer, SIGKILL);
  uint64_t killed_ns = MonotonicNs();
  EXPECT_EQ(children_.Wait(producer, absl::Seconds(5)), -SIGKILL);
  for (auto [pid, i] : {std::pair{r0, 0}, std::pair{r1, 1}}) {
    EXPECT_EQ(children_.Wait(pid, absl::Seconds(20)), kSawDeadProducer) << "reader " << i;
    EXPECT_GT(shared_->reader[i].valid, 0u);
    int64_t noticed_after = static_cast<int64_t>(shared_->reader[i].dead_seen_ns - killed_ns);
    EXPECT_LT(noticed_after, 1'500'000'000) << "reader " << i;
  }
}

}  // namespace
}  // namespace uringest::ringbuf
