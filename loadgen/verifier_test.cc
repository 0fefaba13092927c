// The verifier over several rings (the nodes of a fleet), each with an in-process
// RingServer: frames counted once across the rings, a duplicate across two rings, a
// node that shuts down while the others are read on, and a node that comes back (its
// ring re-created) read again from its start.

#include "loadgen/verifier.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "loadgen/stamp.h"
#include "ringbuf/internal/test_util.h"
#include "ringbuf/ring_server.h"

namespace uringest::loadgen {
namespace {

constexpr uint32_t kRun = 77;

// A node's ring with one stream on it.
class Node {
 public:
  explicit Node(const std::string& name) {
    absl::StatusOr<std::unique_ptr<ringbuf::RingServer>> s = ringbuf::RingServer::Create(
        {.name = name, .ring_capacity = 1 << 20, .huge_pages = false, .prefault = false});
    EXPECT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    absl::StatusOr<ringbuf::StreamWriter> w = server_->shard(0).BeginStream("live/load0", "test");
    EXPECT_TRUE(w.ok()) << w.status();
    stream_ = *std::move(w);
  }

  // A video NALU tag stamped (publisher, sequence).
  void Write(uint32_t publisher, uint64_t sequence) {
    std::vector<uint8_t> body(kStampedMin + 16, 0);
    body[0] = 0x27;
    body[1] = 1;
    WriteStamp({.run = kRun, .publisher = publisher, .sequence = sequence, .send_ns = 1},
               body.data() + StampOffset(body));
    ASSERT_TRUE(stream_.WriteFrame({.type = ringbuf::RecordType::kVideo}, body).ok());
  }
  void Heartbeat() { server_->HeartbeatAll(); }

 private:
  std::unique_ptr<ringbuf::RingServer> server_;
  ringbuf::StreamWriter stream_;
};

// Keeps the live nodes' heartbeats fresh until the verifier delivered `n` (or 5 s).
bool AwaitDelivered(const Verifier& v, uint64_t n, std::vector<Node*> live) {
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (v.delivered() < n && absl::Now() < deadline) {
    for (Node* node : live) node->Heartbeat();
    absl::SleepFor(absl::Milliseconds(10));
  }
  return v.delivered() == n;
}

TEST(VerifierTest, CountsEachFrameOnceAcrossRingsThroughANodesEndAndReturn) {
  ringbuf::testing::ScopedRingName a_name, b_name;
  auto a = std::make_unique<Node>(a_name.name());
  Node b(b_name.name());
  absl::StatusOr<std::unique_ptr<Verifier>> opened =
      Verifier::Open({a_name.name(), b_name.name()}, kRun, 2, 16);
  ASSERT_TRUE(opened.ok()) << opened.status();
  Verifier& v = **opened;
  v.set_survive_exits(true);
  v.Start();

  for (uint64_t s = 1; s <= 3; ++s) a->Write(0, s);
  b.Write(0, 4);
  b.Write(0, 5);
  b.Write(1, 1);
  ASSERT_TRUE(AwaitDelivered(v, 6, {a.get(), &b}));
  a->Write(0, 5);  // the same frame through the other node: booked when A's end is seen

  a.reset();  // node A shuts down; B goes on
  b.Write(0, 6);
  ASSERT_TRUE(AwaitDelivered(v, 7, {&b}));

  a = std::make_unique<Node>(a_name.name());  // a new server, a new ring: all new
  a->Write(0, 7);
  ASSERT_TRUE(AwaitDelivered(v, 8, {a.get(), &b}));
  v.Stop();

  const PublisherTally& t = v.tally(0);
  EXPECT_EQ(t.delivered, 7u);
  EXPECT_EQ(t.duplicated, 1u);
  EXPECT_EQ(t.out_of_order, 0u);
  EXPECT_EQ(t.delivered_by_ring, (std::vector<uint64_t>{4, 3}));
  EXPECT_EQ(v.tally(1).delivered_by_ring, (std::vector<uint64_t>{0, 1}));
  EXPECT_EQ(v.ring_exits(0), 1u);
  EXPECT_EQ(v.ring_exits(1), 0u);
  EXPECT_EQ(v.server_exit(), ringbuf::ServerExit::kNone) << "the run went on";
}

TEST(VerifierTest, OrderIsJudgedWithinARingNotAcrossRings) {
  ringbuf::testing::ScopedRingName a_name, b_name;
  Node a(a_name.name());
  Node b(b_name.name());
  absl::StatusOr<std::unique_ptr<Verifier>> opened =
      Verifier::Open({a_name.name(), b_name.name()}, kRun, 1, 16);
  ASSERT_TRUE(opened.ok()) << opened.status();
  Verifier& v = **opened;
  v.set_survive_exits(true);
  v.Start();
  // The verifier sees the new node's frames before the old node's last ones.
  b.Write(0, 4);
  b.Write(0, 5);
  ASSERT_TRUE(AwaitDelivered(v, 2, {&a, &b}));
  for (uint64_t s = 1; s <= 3; ++s) a.Write(0, s);
  ASSERT_TRUE(AwaitDelivered(v, 5, {&a, &b}));
  b.Write(0, 2);  // a duplicate, not reordered
  a.Write(0, 7);
  a.Write(0, 6);  // reordered within node A
  ASSERT_TRUE(AwaitDelivered(v, 7, {&a, &b}));
  v.Stop();
  EXPECT_EQ(v.tally(0).out_of_order, 1u);
  EXPECT_EQ(v.live_lost(), 0);
}

TEST(VerifierTest, ARingMissingAtTheStartIsWaitedFor) {
  ringbuf::testing::ScopedRingName a_name, b_name;
  Node a(a_name.name());
  absl::StatusOr<std::unique_ptr<Verifier>> opened =
      Verifier::Open({a_name.name(), b_name.name()}, kRun, 1, 16);
  ASSERT_TRUE(opened.ok()) << opened.status();
  Verifier& v = **opened;
  v.set_survive_exits(true);
  v.Start();
  EXPECT_EQ(v.rings_down(), 1u);
  Node b(b_name.name());
  b.Write(0, 1);
  ASSERT_TRUE(AwaitDelivered(v, 1, {&a, &b}));
  v.Stop();
  EXPECT_EQ(v.tally(0).delivered_by_ring, (std::vector<uint64_t>{0, 1}));
}

TEST(VerifierTest, NoRingThereIsAnError) {
  ringbuf::testing::ScopedRingName a_name, b_name;
  EXPECT_FALSE(Verifier::Open({a_name.name(), b_name.name()}, kRun, 1, 16).ok());
}

TEST(VerifierTest, WithoutSurvivingTheFirstServersEndEndsTheReading) {
  ringbuf::testing::ScopedRingName a_name;
  auto a = std::make_unique<Node>(a_name.name());
  absl::StatusOr<std::unique_ptr<Verifier>> opened = Verifier::Open({a_name.name()}, kRun, 1, 16);
  ASSERT_TRUE(opened.ok()) << opened.status();
  std::optional<ringbuf::ServerExit> told;
  (*opened)->set_on_server_exit([&](ringbuf::ServerExit e) { told = e; });
  (*opened)->Start();
  a.reset();
  const absl::Time deadline = absl::Now() + absl::Seconds(3);
  while ((*opened)->server_exit() == ringbuf::ServerExit::kNone && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  (*opened)->Stop();
  EXPECT_EQ((*opened)->server_exit(), ringbuf::ServerExit::kShutDown);
  EXPECT_EQ(told, ringbuf::ServerExit::kShutDown);
}

}  // namespace
}  // namespace uringest::loadgen
