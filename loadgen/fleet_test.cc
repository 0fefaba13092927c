// The fleet against fake nodes: the server's own protocol core (rtmp::ServerConnection)
// on real loopback sockets, one thread per connection, that sends an E-RTMP v2
// Reconnect Request once a connection has published a few frames. What each node saw
// is booked by stamp, so a move that lost, repeated or reordered a frame shows.

#include "loadgen/fleet.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/rtmp/chunk_writer.h"
#include "engine/rtmp/command_replies.h"
#include "engine/rtmp/publish_client.h"
#include "engine/rtmp/server_connection.h"
#include "gtest/gtest.h"
#include "loadgen/media_source.h"
#include "loadgen/stamp.h"
#include "tests/rtmp_testing.h"

namespace uringest::loadgen {
namespace {

constexpr uint32_t kServerChunk = 4096;
constexpr double kFps = 25;  // a 2 s GOP of 50 frames

// A stamped frame as a node saw it.
struct Got {
  int node = 0;
  int connection = 0;  // of that node, in accept order
  uint64_t sequence = 0;
  bool keyframe = false;
};

// What every node saw, per publisher.
struct Book {
  std::mutex mu;
  std::map<uint32_t, std::vector<Got>> frames;  // by publisher
};

// The server's own Reconnect Request (what uringestd's drain sends), chunked.
std::vector<uint8_t> ReconnectRequest(const std::string& tc_url) {
  const std::vector<uint8_t> body = rtmp::ReconnectRequestReply(tc_url, "draining");
  rtmp::ChunkWriter writer;
  writer.set_chunk_size(kServerChunk);
  std::vector<uint8_t> bytes;
  writer.Write({.chunk_stream_id = rtmp::kCommandChunkStream,
                .type = rtmp::MessageType::kCommandAmf0,
                .stream_id = 0},
               body, &bytes);
  return bytes;
}

bool SendAll(int fd, std::span<const uint8_t> bytes) {
  while (!bytes.empty()) {
    const ssize_t n = send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    bytes = bytes.subspan(size_t(n));
  }
  return true;
}

// A node: listens on 127.0.0.1 (port 0), serves each connection on its own thread, and
// asks its first `asks` connections that announced capsEx Reconnect, after `ask_after`
// frames each, to reconnect to `tc_url`, as uringestd's drain does.
class FakeNode {
 public:
  FakeNode(int id, Book* book, int asks, std::string tc_url)
      : id_(id), book_(book), asks_left_(asks), tc_url_(std::move(tc_url)) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{.sin_family = AF_INET, .sin_port = 0, .sin_addr = {htonl(INADDR_LOOPBACK)}};
    socklen_t len = sizeof(a);
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), len) != 0 ||
        listen(listen_fd_, 64) != 0 ||
        getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      ADD_FAILURE() << "can't listen";
    }
    port_ = ntohs(a.sin_port);
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }
  ~FakeNode() {
    shutdown(listen_fd_, SHUT_RDWR);  // wakes accept()
    accept_thread_.join();
    for (std::thread& t : connections_) t.join();
    close(listen_fd_);
  }

  uint16_t port() const { return port_; }
  // The node closes its first connection, unasked, once it has booked `frames` frames.
  void HangUpFirstAfter(uint64_t frames) { hang_up_after_ = frames; }

 private:
  class Sink : public rtmp::FrameSink {
   public:
    Sink(FakeNode* node, int connection) : node_(node), connection_(connection) {}
    absl::Status OnStreamBegin(uint32_t, rtmp::StreamName) override { return absl::OkStatus(); }
    void OnFrame(const rtmp::Frame& frame) override {
      if (frame.type != rtmp::FrameType::kVideo || frame.sequence_header) return;
      std::optional<Stamp> stamp = ReadStamp(testing::PayloadBytes(frame));
      if (!stamp) return;
      ++frames;
      std::lock_guard<std::mutex> lock(node_->book_->mu);
      node_->book_->frames[stamp->publisher].push_back(
          {node_->id_, connection_, stamp->sequence, frame.keyframe});
    }
    void OnStreamEnd(uint32_t) override {}
    uint64_t frames = 0;

   private:
    FakeNode* node_;
    int connection_;
  };

  // Names taken, across the node's connection threads.
  class Names : public rtmp::PublishRegistry {
   public:
    absl::Status Claim(rtmp::StreamName name) override {
      std::lock_guard<std::mutex> lock(mu_);
      return taken_.insert(std::string(name.name)).second
                 ? absl::OkStatus()
                 : absl::AlreadyExistsError(std::string(name.name) + " is taken");
    }
    void Release(rtmp::StreamName name) override {
      std::lock_guard<std::mutex> lock(mu_);
      taken_.erase(std::string(name.name));
    }

   private:
    std::mutex mu_;
    std::set<std::string> taken_;
  };

  void AcceptLoop() {
    for (int connection = 0;; ++connection) {
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      connections_.emplace_back([this, fd, connection] { Serve(fd, connection); });
    }
  }

  void Serve(int fd, int connection) {
    rtmp::ServerConnectionOptions options;
    options.session.chunk_size = kServerChunk;
    Sink sink(this, connection);
    rtmp::ServerConnection conn(options, &sink, &names_);
    bool asked = false;
    uint8_t buffer[1 << 16];
    for (;;) {
      const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
      if (n <= 0 || !conn.Receive({buffer, size_t(n)}).ok()) break;
      const std::vector<uint8_t> out(conn.output().begin(), conn.output().end());
      conn.TakeOutput(out.size());
      if (!SendAll(fd, out)) break;
      if (connection == 0 && hang_up_after_ > 0 && sink.frames >= hang_up_after_) break;
      if (!asked && sink.frames >= kAskAfter) {
        asked = true;
        if (MayAsk(conn) && !SendAll(fd, ReconnectRequest(tc_url_))) break;
      }
    }
    conn.Close();
    close(fd);
  }

  bool MayAsk(const rtmp::ServerConnection& conn) {
    if ((conn.session().client_caps().caps_ex & rtmp::kCapsExReconnect) == 0) return false;
    return asks_left_.fetch_sub(1) > 0;
  }

  static constexpr uint64_t kAskAfter = 5;  // frames into a connection
  const int id_;
  Book* const book_;
  std::atomic<int> asks_left_;
  std::atomic<uint64_t> hang_up_after_{0};
  const std::string tc_url_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  Names names_;
  std::thread accept_thread_;
  std::vector<std::thread> connections_;
};

FleetOptions Options(uint16_t port, uint32_t publishers) {
  FleetOptions o;
  o.host = "127.0.0.1";
  o.port = port;
  o.publishers = publishers;
  o.duration = absl::Seconds(3);
  o.drain = absl::Seconds(3);
  return o;
}

// Every sequence 1..sent seen exactly once, in order, across the nodes.
void ExpectEveryFrameOnce(const std::vector<Got>& got, uint64_t sent) {
  ASSERT_EQ(got.size(), sent);
  for (uint64_t k = 0; k < got.size(); ++k) ASSERT_EQ(got[k].sequence, k + 1) << "at " << k;
}

TEST(FleetMoveTest, ARequestWithTcUrlMovesAtTheGopsEndLosingNothing) {
  Book book;
  FakeNode b(1, &book, 0, "");  // asks nobody
  FakeNode a(0, &book, 2, absl::StrCat("rtmp://127.0.0.1:", b.port(), "/live"));
  std::unique_ptr<MediaSource> src = MediaSource::Synthetic(300'000, kFps);
  Fleet fleet(Options(a.port(), 2), src.get());
  ASSERT_TRUE(fleet.Init().ok());
  fleet.Run(nullptr);
  for (uint32_t i = 0; i < 2; ++i) {
    const PublisherResult& r = fleet.results()[i];
    SCOPED_TRACE(r.name);
    EXPECT_FALSE(r.failed) << r.error;
    EXPECT_TRUE(r.closed_cleanly);
    EXPECT_EQ(r.reconnect_requests, 1u);
    EXPECT_EQ(r.reconnects, 1u);
    EXPECT_EQ(r.skipped, 0u);
    const std::vector<Got>& got = book.frames[i];
    ExpectEveryFrameOnce(got, r.frames);
    const auto first_b =
        std::find_if(got.begin(), got.end(), [](const Got& g) { return g.node == 1; });
    ASSERT_NE(first_b, got.end()) << "never moved";
    EXPECT_TRUE(first_b->keyframe) << "B starts at a keyframe";
    EXPECT_EQ((first_b->sequence - 1) % src->period_frames(), 0u) << "A sent whole GOPs";
    EXPECT_TRUE(std::all_of(first_b, got.end(), [](const Got& g) { return g.node == 1; }));
  }
}

TEST(FleetMoveTest, ARequestWithoutTcUrlComesBackToTheSameAddress) {
  Book book;
  FakeNode a(0, &book, 1, "");
  std::unique_ptr<MediaSource> src = MediaSource::Synthetic(300'000, kFps);
  Fleet fleet(Options(a.port(), 1), src.get());
  ASSERT_TRUE(fleet.Init().ok());
  fleet.Run(nullptr);
  const PublisherResult& r = fleet.results()[0];
  EXPECT_FALSE(r.failed) << r.error;
  EXPECT_EQ(r.reconnect_requests, 1u);
  EXPECT_EQ(r.reconnects, 1u);
  const std::vector<Got>& got = book.frames[0];
  ExpectEveryFrameOnce(got, r.frames);
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got.front().connection, 0);
  EXPECT_EQ(got.back().connection, 1);
}

TEST(FleetMoveTest, ARequestToRtmpsFailsThePublisherNotTheFleet) {
  Book book;
  FakeNode a(0, &book, 1, "rtmps://127.0.0.1:1/live");
  std::unique_ptr<MediaSource> src = MediaSource::Synthetic(300'000, kFps);
  FleetOptions o = Options(a.port(), 1);
  o.duration = absl::Seconds(1);
  Fleet fleet(o, src.get());
  ASSERT_TRUE(fleet.Init().ok());
  fleet.Run(nullptr);
  EXPECT_TRUE(fleet.results()[0].failed);
  EXPECT_NE(fleet.results()[0].error.find("TLS"), std::string::npos) << fleet.results()[0].error;
}

TEST(FleetMoveTest, WithoutFollowingTheCapabilityIsNotAnnouncedAndNothingMoves) {
  Book book;
  FakeNode a(0, &book, 1, "");
  std::unique_ptr<MediaSource> src = MediaSource::Synthetic(300'000, kFps);
  FleetOptions o = Options(a.port(), 1);
  o.duration = absl::Seconds(1);
  o.follow_reconnect = false;
  Fleet fleet(o, src.get());
  ASSERT_TRUE(fleet.Init().ok());
  fleet.Run(nullptr);
  const PublisherResult& r = fleet.results()[0];
  EXPECT_FALSE(r.failed) << r.error;
  EXPECT_EQ(r.reconnect_requests, 0u);
  EXPECT_EQ(r.reconnects, 0u);
  ExpectEveryFrameOnce(book.frames[0], r.frames);
}

TEST(FleetReconnectTest, ABrokenConnectionIsRetriedAndResumesAtAKeyframe) {
  Book book;
  FakeNode a(0, &book, 0, "");
  a.HangUpFirstAfter(10);
  std::unique_ptr<MediaSource> src = MediaSource::Synthetic(300'000, kFps);
  FleetOptions o = Options(a.port(), 1);
  o.duration = absl::Seconds(2.5);
  o.reconnect = true;
  Fleet fleet(o, src.get());
  ASSERT_TRUE(fleet.Init().ok());
  fleet.Run(nullptr);
  const PublisherResult& r = fleet.results()[0];
  EXPECT_FALSE(r.failed) << r.error;
  EXPECT_TRUE(r.closed_cleanly);
  EXPECT_EQ(r.broken, 1u);
  EXPECT_EQ(r.reconnects, 1u);
  EXPECT_EQ(r.reconnect_requests, 0u);
  // Down for the backoff, then up to the next keyframe (2 s): the rest of the first GOP.
  EXPECT_GE(r.skipped, 20u);
  const std::vector<Got>& got = book.frames[0];
  const auto second =
      std::find_if(got.begin(), got.end(), [](const Got& g) { return g.connection == 1; });
  ASSERT_NE(second, got.end());
  EXPECT_TRUE(second->keyframe);
  // What the node saw: increasing, with a gap only where its first connection ended
  // (frames queued on it that it never read), and the sequence carried on.
  for (size_t k = 1; k < got.size(); ++k) {
    EXPECT_GT(got[k].sequence, got[k - 1].sequence);
    if (got[k].connection == got[k - 1].connection) {
      EXPECT_EQ(got[k].sequence, got[k - 1].sequence + 1);
    }
  }
  EXPECT_EQ(got.back().sequence, r.frames);
}

TEST(FleetReconnectTest, WithoutReconnectABrokenConnectionFailsThePublisher) {
  Book book;
  FakeNode a(0, &book, 0, "");
  a.HangUpFirstAfter(5);
  std::unique_ptr<MediaSource> src = MediaSource::Synthetic(300'000, kFps);
  FleetOptions o = Options(a.port(), 1);
  o.duration = absl::Seconds(1);
  Fleet fleet(o, src.get());
  ASSERT_TRUE(fleet.Init().ok());
  fleet.Run(nullptr);
  EXPECT_TRUE(fleet.results()[0].failed);
  EXPECT_EQ(fleet.results()[0].reconnects, 0u);
}

}  // namespace
}  // namespace uringest::loadgen
