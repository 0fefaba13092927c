// A consumer and a server that ends, with the server in a forked process: killed
// (SIGKILL: stale objects, a free lock) or shut down cleanly, while the consumer waits for
// the server, for a stream or for the next frame, or follows. Each wait ends as
// reader.h's "Waiting" says, within a second of the kill, through the C++ API and the C
// API alike. (In-process cases: reader_test.cc and c_api_test.cc.)

#include <time.h>

#include <future>
#include <memory>
#include <optional>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "ringbuf/internal/server_process.h"
#include "ringbuf/internal/test_util.h"
#include "ringbuf/reader.h"
#include "ringbuf/uringest_ring.h"

namespace uringest::ringbuf {
namespace {

using testing::ServerProcess;

// The dead_after of ReaderOptions plus a look: how late a death may be noticed.
constexpr absl::Duration kNoticeBound = absl::Seconds(1);

absl::Duration ThreadCpuTime() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return absl::DurationFromTimespec(ts);
}

// Runs `wait` on a thread of its own; `Ended()` says how long after `from` it ended.
template <typename T>
class Waiter {
 public:
  explicit Waiter(std::function<T()> wait)
      : future_(std::async(std::launch::async, [this, wait = std::move(wait)] {
          T result = wait();
          ended_ = absl::Now();
          return result;
        })) {}
  bool Running() { return future_.wait_for(std::chrono::seconds(0)) != std::future_status::ready; }
  // The result, if it came within `timeout` (else the test fails and waits on).
  T Get(absl::Duration timeout) {
    EXPECT_EQ(future_.wait_for(absl::ToChronoSeconds(timeout)), std::future_status::ready);
    return future_.get();
  }
  absl::Duration Since(absl::Time from) const { return ended_ - from; }

 private:
  absl::Time ended_;
  std::future<T> future_;
};

// CheckServer() once it is no longer kAlive (at most kNoticeBound later).
ServerState AwaitEnd(const Reader& reader) {
  const absl::Time deadline = absl::Now() + kNoticeBound;
  ServerState state;
  while ((state = reader.CheckServer()) == ServerState::kAlive && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  return state;
}

class ServerExitTest : public ::testing::Test {
 protected:
  void StartServer() {
    server_ = ServerProcess::Start(name_.name());
    ASSERT_NE(server_, nullptr);
  }
  std::unique_ptr<Reader> OpenReader() {
    auto reader = Reader::Open(name_.name());
    EXPECT_TRUE(reader.ok()) << reader.status();
    return reader.ok() ? *std::move(reader) : nullptr;
  }

  testing::ScopedRingName name_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(ServerExitTest, WaitForServerSleepsThroughStaleObjectsUntilANewServerStarts) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  server_->Kill();  // its objects stay, with a free lock
  Waiter<absl::StatusOr<std::unique_ptr<Reader>>> waiter([&] {
    const absl::Duration cpu = ThreadCpuTime();
    auto reader = Reader::WaitForServer(name_.name(), {.deadline = absl::Now() + absl::Seconds(1)});
    // Under 1% of the second it waited: a look is a stat, not a map and a scan.
    EXPECT_LT(ThreadCpuTime() - cpu, absl::Milliseconds(10));
    return reader;
  });
  EXPECT_EQ(waiter.Get(absl::Seconds(5)).status().code(), absl::StatusCode::kDeadlineExceeded);

  Waiter<absl::StatusOr<std::unique_ptr<Reader>>> second(
      [&] { return Reader::WaitForServer(name_.name(), {}); });
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_TRUE(second.Running()) << "a dead server's objects are not a server";
  ASSERT_NO_FATAL_FAILURE(StartServer());
  absl::StatusOr<std::unique_ptr<Reader>> reader = second.Get(absl::Seconds(5));
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ((*reader)->CheckServerExit(), ServerExit::kNone);
}

TEST_F(ServerExitTest, ServerKilledWhileWaitingForAStreamEndsTheWaitAsDied) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  auto reader = Reader::WaitForServer(name_.name(), {});
  ASSERT_TRUE(reader.ok()) << reader.status();
  Waiter<WaitResult> waiter([&] {
    StreamInfo info;
    return (*reader)->WaitForStream(ServerProcess::kStream, {}, &info);
  });
  absl::SleepFor(absl::Milliseconds(200));
  const absl::Time killed = absl::Now();
  server_->Kill();
  EXPECT_EQ(waiter.Get(absl::Seconds(5)), WaitResult::kServerDied);
  EXPECT_LT(waiter.Since(killed), kNoticeBound);
}

TEST_F(ServerExitTest, CleanShutdownWhileWaitingForAStreamEndsTheWaitAsShutDown) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::unique_ptr<Reader> reader = OpenReader();
  ASSERT_NE(reader, nullptr);
  Waiter<WaitResult> waiter([&] {
    StreamInfo info;
    return reader->WaitForStream(ServerProcess::kStream, {}, &info);
  });
  absl::SleepFor(absl::Milliseconds(200));
  const absl::Time stopped = absl::Now();
  ASSERT_TRUE(server_->ShutDown());
  EXPECT_EQ(waiter.Get(absl::Seconds(5)), WaitResult::kServerShutDown);
  EXPECT_LT(waiter.Since(stopped), absl::Milliseconds(500)) << "a closed directory shows at once";
}

TEST_F(ServerExitTest, ServerKilledWhileWaitingForTheNextFrameIsReportedDied) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  ASSERT_TRUE(server_->BeginStream());
  std::unique_ptr<Reader> reader = OpenReader();
  ASSERT_NE(reader, nullptr);
  ASSERT_TRUE(reader->Follow(ServerProcess::kStream, {.sequence_headers = false}).ok());
  Frame frame;
  ASSERT_EQ(reader->Next(&frame, absl::Seconds(5)), ReadResult::kFrame);  // the keyframe
  Waiter<ReadResult> waiter([&] { return reader->Next(&frame, absl::Seconds(10)); });
  absl::SleepFor(absl::Milliseconds(200));
  const absl::Time killed = absl::Now();
  server_->Kill();
  EXPECT_EQ(waiter.Get(absl::Seconds(5)), ReadResult::kServerGone);
  EXPECT_LT(waiter.Since(killed), kNoticeBound);
  EXPECT_EQ(reader->CheckServerExit(), ServerExit::kDied);
}

TEST_F(ServerExitTest, ServerKilledWhileFollowingIsReportedDied) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  ASSERT_TRUE(server_->BeginStream());
  std::unique_ptr<Reader> reader = OpenReader();
  ASSERT_NE(reader, nullptr);
  ASSERT_TRUE(reader->Follow(ServerProcess::kStream).ok());
  Frame frame;
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(server_->WriteFrame());
    while (reader->Next(&frame, absl::ZeroDuration()) == ReadResult::kFrame) {
    }
  }
  const absl::Time killed = absl::Now();
  server_->Kill();
  ReadResult result;
  while ((result = reader->Next(&frame, absl::Seconds(5))) == ReadResult::kFrame) {
  }
  EXPECT_EQ(result, ReadResult::kServerGone);
  EXPECT_LT(absl::Now() - killed, kNoticeBound);
  EXPECT_EQ(reader->CheckServerExit(), ServerExit::kDied);
}

// A crashed server replaced by a new one is still a death to its consumers; one that
// shut down cleanly first is a shutdown.
TEST_F(ServerExitTest, ServerReplacedAfterACrashReadsDiedAndAfterACleanShutdownShutDown) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::unique_ptr<Reader> reader = OpenReader();
  ASSERT_NE(reader, nullptr);
  server_->Kill();
  ASSERT_NO_FATAL_FAILURE(StartServer());
  // Its heartbeat is fresh a while yet: a reader of the directory alone waits it out.
  EXPECT_EQ(AwaitEnd(*reader), ServerState::kRestarted);
  EXPECT_EQ(reader->CheckServerExit(), ServerExit::kDied);

  reader = OpenReader();
  ASSERT_NE(reader, nullptr);
  ASSERT_TRUE(server_->ShutDown());
  ASSERT_NO_FATAL_FAILURE(StartServer());
  EXPECT_EQ(AwaitEnd(*reader), ServerState::kRestarted);
  EXPECT_EQ(reader->CheckServerExit(), ServerExit::kShutDown);
}

// ---- The same through the C API ----

TEST_F(ServerExitTest, CWaitOpenSleepsThroughStaleObjectsUntilANewServerStarts) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  server_->Kill();
  uringest_ring_reader* r = nullptr;
  const absl::Time start = absl::Now();
  EXPECT_EQ(uringest_ring_wait_open(name_.name().c_str(), 300, &r), -ETIMEDOUT);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(300));
  ASSERT_NO_FATAL_FAILURE(StartServer());
  ASSERT_EQ(uringest_ring_wait_open(name_.name().c_str(), 5000, &r), 0);
  EXPECT_EQ(uringest_ring_server_exit(r), 0);
  uringest_ring_close(r);
}

TEST_F(ServerExitTest, CServerKilledWhileWaitingForAStreamIsReportedDied) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  uringest_ring_reader* r = nullptr;
  ASSERT_EQ(uringest_ring_wait_open(name_.name().c_str(), -1, &r), 0);
  EXPECT_EQ(uringest_ring_wait_stream(r, ServerProcess::kStream, 50), URINGEST_RING_TIMEOUT);
  Waiter<int> waiter([&] { return uringest_ring_wait_stream(r, ServerProcess::kStream, -1); });
  absl::SleepFor(absl::Milliseconds(200));
  const absl::Time killed = absl::Now();
  server_->Kill();
  EXPECT_EQ(waiter.Get(absl::Seconds(5)), URINGEST_RING_SERVER_DIED);
  EXPECT_LT(waiter.Since(killed), kNoticeBound);
  uringest_ring_close(r);
}

TEST_F(ServerExitTest, CCleanShutdownWhileWaitingForAStreamIsReportedShutDown) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  uringest_ring_reader* r = nullptr;
  ASSERT_EQ(uringest_ring_wait_open(name_.name().c_str(), -1, &r), 0);
  Waiter<int> waiter([&] { return uringest_ring_wait_stream(r, ServerProcess::kStream, 10'000); });
  absl::SleepFor(absl::Milliseconds(200));
  ASSERT_TRUE(server_->ShutDown());
  EXPECT_EQ(waiter.Get(absl::Seconds(5)), URINGEST_RING_SERVER_SHUT_DOWN);
  EXPECT_EQ(uringest_ring_server_exit(r), URINGEST_RING_SERVER_SHUT_DOWN);
  uringest_ring_close(r);
}

TEST_F(ServerExitTest, CServerKilledWhileWaitingForTheNextFrameIsReportedDied) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  uringest_ring_reader* r = nullptr;
  ASSERT_EQ(uringest_ring_wait_open(name_.name().c_str(), -1, &r), 0);
  Waiter<int> begun([&] { return uringest_ring_wait_stream(r, ServerProcess::kStream, 10'000); });
  ASSERT_TRUE(server_->BeginStream());
  ASSERT_EQ(begun.Get(absl::Seconds(5)), URINGEST_RING_STREAM_READY);
  ASSERT_EQ(uringest_ring_follow(r, ServerProcess::kStream, URINGEST_RING_FROM_OLDEST, 0), 0);
  uringest_ring_frame f;
  while (uringest_ring_next(r, &f, 100) == URINGEST_RING_FRAME) {
  }
  Waiter<int> waiter([&] { return uringest_ring_next(r, &f, 10'000); });
  absl::SleepFor(absl::Milliseconds(200));
  const absl::Time killed = absl::Now();
  server_->Kill();
  EXPECT_EQ(waiter.Get(absl::Seconds(5)), URINGEST_RING_SERVER_GONE);
  EXPECT_LT(waiter.Since(killed), kNoticeBound);
  EXPECT_EQ(uringest_ring_server_exit(r), URINGEST_RING_SERVER_DIED);
  uringest_ring_close(r);
}

TEST_F(ServerExitTest, CServerKilledWhileFollowingIsReportedDied) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  ASSERT_TRUE(server_->BeginStream());
  uringest_ring_reader* r = nullptr;
  ASSERT_EQ(uringest_ring_open(name_.name().c_str(), &r), 0);
  ASSERT_EQ(uringest_ring_follow(r, ServerProcess::kStream, URINGEST_RING_FROM_NOW, 0), 0);
  uringest_ring_frame f;
  int frames = 0;
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(server_->WriteFrame());
    while (uringest_ring_next(r, &f, 0) == URINGEST_RING_FRAME) ++frames;
  }
  EXPECT_GE(frames, 10);
  const absl::Time killed = absl::Now();
  server_->Kill();
  int result;
  while ((result = uringest_ring_next(r, &f, 5000)) == URINGEST_RING_FRAME) {
  }
  EXPECT_EQ(result, URINGEST_RING_SERVER_GONE);
  EXPECT_LT(absl::Now() - killed, kNoticeBound);
  EXPECT_EQ(uringest_ring_server_exit(r), URINGEST_RING_SERVER_DIED);
  uringest_ring_close(r);
}

}  // namespace
}  // namespace uringest::ringbuf
