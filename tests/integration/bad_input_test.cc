// Issue 6's hostile-input suite: a real uringestd on loopback, a well-behaved publisher
// streaming the whole time, and on another connection one bad input each. For every
// input: the server logs a line with the bad peer's address and the reason, its memory
// stays within a bound, and the good publisher's frames are all in the ring, in order,
// byte for byte.
//
// The server runs one shard, so the bad connection shares the good one's event loop
// and frame ring. Memory is the server's RssAnon (heap; the frame ring is shared memory
// and counted apart), sampled every few milliseconds while the case runs, against the
// baseline taken with the good publisher already streaming.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "engine/rtmp/rtmp_format.h"
#include "gtest/gtest.h"
#include "media/amf0.h"
#include "media/byte_order.h"
#include "ringbuf/reader.h"
#include "tests/integration/ingest_harness.h"
#include "tests/integration/rtmp_client.h"

namespace uringest::testing {
namespace {

using media::amf0::Value;
using rtmp::MessageType;
using Bytes = std::vector<uint8_t>;

constexpr char kGoodStream[] = "live/good";
constexpr absl::Duration kFrameInterval = absl::Milliseconds(5);
constexpr size_t kFrameSize = 1000;
constexpr int kKeyframeInterval = 25;
constexpr absl::Duration kLogTimeout = absl::Seconds(15);
constexpr int kIdleConnections = 10000;
constexpr uint32_t kBigMessage = rtmp::kMaxMessageLength;  // 0xFFFFFF

// Memory bounds, over the baseline, for the server's heap while a case runs.
// One bad connection: its receive buffers go back to the ring at once, and what it may
// hold is its handshake (3 KiB), its chunk streams' header state (64 x ~80 B) and their
// partial messages; these cases never get a large message assembled. 16 MiB leaves room
// for the allocator's own granularity.
constexpr int64_t kOneConnectionBound = 16 << 20;
// A 0xFFFFFF-byte message is accepted (the default --max-message-size is 16 MiB) and
// assembled in one buffer that grows by doubling as bytes arrive: 16 MiB + 8 MiB + 4 MiB
// + ... < 32 MiB allocated in all, which the allocator may keep a while after the message
// is handled (measured: 32 MiB). Plus the 16 MiB above.
constexpr int64_t kBigMessageBound = (32 << 20) + kOneConnectionBound;
// Connections that never send a byte hold no receive buffer (the kernel picks one only
// when data arrives), but each has its Connection, handshake state (3 KiB) and chunk
// reader. README measures 18.8 KiB per publishing connection; one that never got past
// the handshake holds less (measured: under 7 KiB). 16 KiB each, plus the 16 MiB.
constexpr int64_t kIdleConnectionsBound =
    int64_t{kIdleConnections} * (16 << 10) + kOneConnectionBound;

// Under AddressSanitizer the server's heap also holds the quarantine of freed blocks
// (256 MiB at most by default) and shadow memory: the bounds stay, loosened by that much,
// so they still catch growth without bound.
#if defined(__SANITIZE_ADDRESS__)
constexpr int64_t kSanitizerSlack = int64_t{320} << 20;
#else
constexpr int64_t kSanitizerSlack = 0;
#endif

// The good publisher's frame `index`: an AVC NALU (keyframe every kKeyframeInterval)
// whose body carries its index and bytes derived from it.
Bytes GoodFrame(uint64_t index) {
  Bytes frame(kFrameSize);
  frame[0] = index % kKeyframeInterval == 0 ? 0x17 : 0x27;
  frame[1] = 0x01;  // NALU, composition time 0
  for (size_t i = 0; i < 8; ++i) frame[5 + i] = uint8_t(index >> (8 * i));
  for (size_t i = 13; i < frame.size(); ++i) frame[i] = uint8_t(index * 31 + i);
  return frame;
}

// Publishes kGoodStream from a thread of its own, a frame every kFrameInterval, until
// Stop().
class GoodPublisher {
 public:
  ~GoodPublisher() {  // a test that failed before Finish()
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

  // `proxy_header`: sent first (a server with --proxy-protocol).
  bool Start(int port, std::string_view proxy_header = {}) {
    client_ = RtmpClient::Connect(port);
    if (client_ != nullptr && !proxy_header.empty() &&
        !client_->SendRaw(media::AsBytes(proxy_header))) {
      return false;
    }
    if (client_ == nullptr || !client_->Handshake() || !client_->ConnectApp("live") ||
        !client_->SetChunkSize(4096)) {
      return false;
    }
    std::optional<uint32_t> id = client_->CreateStream();
    if (!id || client_->Publish(*id, "good") != "NetStream.Publish.Start") return false;
    stream_id_ = *id;
    thread_ = std::thread([this] { Run(); });
    return true;
  }

  // Sends deleteStream, which ends the stream in the ring, and disconnects. Returns
  // whether every frame went out.
  bool Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    const bool ok = !failed_ && client_->SendCommand("deleteStream", 0,
                                                     {Value::Null(), Value::Number(stream_id_)});
    client_.reset();
    return ok;
  }

  uint64_t frames() const { return frames_; }

 private:
  void Run() {
    while (!stop_) {
      const Bytes frame = GoodFrame(frames_);
      if (!client_->Send({.chunk_stream_id = 6,
                          .type = MessageType::kVideo,
                          .stream_id = stream_id_,
                          .timestamp = frames_ * 5},
                         frame)) {
        failed_ = true;
        return;
      }
      ++frames_;
      absl::SleepFor(kFrameInterval);
    }
  }

  std::unique_ptr<RtmpClient> client_;
  uint32_t stream_id_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> failed_{false};
  std::atomic<uint64_t> frames_{0};
};

// The server's heap (RssAnon, bytes) from /proc, or -1.
int64_t RssAnon(pid_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    int64_t kib;
    if (line.starts_with("RssAnon:") &&
        absl::SimpleAtoi(absl::StripAsciiWhitespace(absl::StripSuffix(line.substr(8), "kB")),
                         &kib)) {
      return kib << 10;
    }
  }
  return -1;
}

// Samples a process's RssAnon every few milliseconds and keeps the peak.
class RssSampler {
 public:
  explicit RssSampler(pid_t pid) : pid_(pid), baseline_(RssAnon(pid)) {
    thread_ = std::thread([this] {
      while (!stop_) {
        peak_ = std::max<int64_t>(peak_, RssAnon(pid_));
        absl::SleepFor(absl::Milliseconds(3));
      }
    });
  }
  ~RssSampler() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int64_t baseline() const { return baseline_; }
  int64_t peak() const { return peak_; }

 private:
  pid_t pid_;
  int64_t baseline_;
  std::atomic<int64_t> peak_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// The lines of the server's log that contain every one of `parts`; waits up to `timeout`
// for at least `count` of them.
std::vector<std::string> AwaitLogLines(const std::string& path,
                                       const std::vector<std::string>& parts, size_t count = 1,
                                       absl::Duration timeout = kLogTimeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    std::vector<std::string> found;
    for (absl::string_view line : absl::StrSplit(ReadFile(path), '\n')) {
      bool all = true;
      for (const std::string& part : parts) all = all && absl::StrContains(line, part);
      if (all) found.emplace_back(line);
    }
    if (found.size() >= count || absl::Now() >= deadline) return found;
    absl::SleepFor(absl::Milliseconds(20));
  }
}

// What the ring holds of kGoodStream: every frame's index in order, from the first.
void ExpectEveryGoodFrame(const std::string& ring, uint64_t frames) {
  absl::StatusOr<std::unique_ptr<ringbuf::Reader>> reader = ringbuf::Reader::Open(ring);
  ASSERT_TRUE(reader.ok()) << reader.status();
  ASSERT_TRUE(
      (*reader)
          ->Follow(kGoodStream, {.start = ringbuf::StartAt::kOldest, .sequence_headers = false})
          .ok());
  uint64_t next = 0;
  ringbuf::Frame frame;
  Bytes payload;
  for (;;) {
    const ringbuf::ReadResult r = (*reader)->Next(&frame, absl::Seconds(5));
    if (r != ringbuf::ReadResult::kFrame) {
      EXPECT_EQ(r, ringbuf::ReadResult::kStreamEnded) << "after frame " << next;
      break;
    }
    if (frame.meta.type != ringbuf::RecordType::kVideo) continue;
    ASSERT_TRUE((*reader)->CopyOut(frame, &payload)) << "frame " << next << " overwritten";
    ASSERT_TRUE(payload == GoodFrame(next)) << "frame " << next << " is not the one sent";
    ++next;
  }
  EXPECT_EQ(next, frames) << "frames of the good publisher missing from the ring";
  EXPECT_EQ((*reader)->lost(), 0u);
}

class BadInputTest : public ::testing::Test {
 protected:
  void SetUp() override { StartServer({}, {}); }

  void StartServer(std::vector<std::string> flags, std::string_view good_proxy_header) {
    flags.insert(flags.begin(), {"--handshake-timeout", "1", "--max-connections", "20000"});
    server_ = IngestServer::Start(1, dir_, flags);
    ASSERT_NE(server_, nullptr);
    ASSERT_TRUE(good_.Start(server_->port(), good_proxy_header))
        << "the good publisher could not publish";
    // Some frames in flight before the bad input comes.
    ASSERT_TRUE(WaitForStream(server_->ring(), kGoodStream, 20, absl::Seconds(10)));
    rss_ = std::make_unique<RssSampler>(server_->process().pid());
  }

  std::unique_ptr<RtmpClient> Connect() {
    std::unique_ptr<RtmpClient> client = RtmpClient::Connect(server_->port());
    EXPECT_NE(client, nullptr);
    return client;
  }
  std::unique_ptr<RtmpClient> ConnectAndHandshake() {
    std::unique_ptr<RtmpClient> client = Connect();
    EXPECT_TRUE(client != nullptr && client->Handshake());
    return client;
  }

  // The server logged that it closed `peer`'s connection for `reason`.
  void ExpectClosedFor(const std::string& peer, const std::string& reason) {
    const std::vector<std::string> lines =
        AwaitLogLines(server_->log_path(), {absl::StrCat(" ", peer, ": closed: "), reason});
    EXPECT_FALSE(lines.empty()) << "no log line names " << peer << " and '" << reason
                                << "'; the log:\n"
                                << ReadFile(server_->log_path());
  }

  // Ends the case: memory within `bound`, then every good frame in the ring.
  void Finish(int64_t bound) {
    bound += kSanitizerSlack;
    absl::SleepFor(absl::Milliseconds(100));  // good frames after the bad input, too
    rss_->Stop();
    RecordProperty("server_heap_growth_bytes", std::to_string(rss_->peak() - rss_->baseline()));
    EXPECT_GT(rss_->baseline(), 0);
    EXPECT_LE(rss_->peak() - rss_->baseline(), bound)
        << "server heap grew from " << rss_->baseline() << " to " << rss_->peak() << " bytes";
    EXPECT_TRUE(server_->process().Running()) << "the server died";
    ASSERT_TRUE(good_.Stop()) << "the good publisher's connection failed";
    ExpectEveryGoodFrame(server_->ring(), good_.frames());
  }

  ScratchDir dir_;
  std::unique_ptr<IngestServer> server_;
  GoodPublisher good_;
  std::unique_ptr<RssSampler> rss_;
};

TEST_F(BadInputTest, GarbageAfterConnect) {
  std::unique_ptr<RtmpClient> bad = Connect();
  ASSERT_NE(bad, nullptr);
  Bytes garbage(4096);
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = uint8_t(0xDE ^ (i * 37));
  bad->SendRaw(garbage);
  EXPECT_TRUE(bad->AwaitClose());
  ExpectClosedFor(bad->address(), "unsupported RTMP version 0xde");
  Finish(kOneConnectionBound);
}

TEST_F(BadInputTest, HttpOnTheRtmpPort) {
  std::unique_ptr<RtmpClient> bad = Connect();
  ASSERT_NE(bad, nullptr);
  bad->SendRaw(media::AsBytes("GET /live/good HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
  EXPECT_TRUE(bad->AwaitClose());
  ExpectClosedFor(bad->address(), "looks like an HTTP request (\"GET /live/good HTTP/1.1\")");
  Finish(kOneConnectionBound);
}

TEST_F(BadInputTest, TlsOnTheRtmpPort) {
  std::unique_ptr<RtmpClient> bad = Connect();
  ASSERT_NE(bad, nullptr);
  // A TLS 1.2 record header and the start of a ClientHello.
  const uint8_t hello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03};
  bad->SendRaw(hello);
  EXPECT_TRUE(bad->AwaitClose());
  ExpectClosedFor(bad->address(), "TLS client on the plain RTMP port");
  Finish(kOneConnectionBound);
}

TEST_F(BadInputTest, RtmpeVersionSix) {
  std::unique_ptr<RtmpClient> bad = Connect();
  ASSERT_NE(bad, nullptr);
  Bytes c0c1(1 + rtmp::kHandshakeSize, 0);
  c0c1[0] = rtmp::kRtmpeVersion;
  bad->SendRaw(c0c1);
  EXPECT_TRUE(bad->AwaitClose());
  ExpectClosedFor(bad->address(), "RTMPE (encrypted RTMP, version 6) is not supported");
  Finish(kOneConnectionBound);
}

TEST_F(BadInputTest, HandshakeCutShortThenSilence) {
  std::unique_ptr<RtmpClient> bad = Connect();
  ASSERT_NE(bad, nullptr);
  Bytes part(1 + 100, 0);
  part[0] = rtmp::kRtmpVersion;
  bad->SendRaw(part);
  EXPECT_TRUE(bad->AwaitClose()) << "--handshake-timeout 1 did not close it";
  ExpectClosedFor(bad->address(), "handshake not done after 1.0 s");
  Finish(kOneConnectionBound);
}

// Accepted (it is within the default --max-message-size of 16 MiB) and dropped, as media
// before connect is: no error to log, so the line is the close, with the bytes it took.
// The server copes with 16 million one-byte chunks.
TEST_F(BadInputTest, MaximumMessageAtChunkSizeOne) {
  std::unique_ptr<RtmpClient> bad = ConnectAndHandshake();
  ASSERT_NE(bad, nullptr);
  ASSERT_TRUE(bad->SetChunkSize(1));
  const Bytes payload(kBigMessage, 0x27);
  ASSERT_TRUE(
      bad->Send({.chunk_stream_id = 6, .type = MessageType::kVideo, .stream_id = 1}, payload));
  // Closed with nothing unread (the server answers media with nothing), so the kernel
  // sends a FIN behind the data, not a reset: the server reads it all, then the end.
  const std::string peer = bad->address();
  bad.reset();
  // Two bytes per payload byte (a 1-byte fmt 3 header and the byte): 33,554,430 and more.
  ExpectClosedFor(peer, "closed by the peer (3355");
  Finish(kBigMessageBound);
}

TEST_F(BadInputTest, EveryChunkStreamId) {
  std::unique_ptr<RtmpClient> bad = ConnectAndHandshake();
  ASSERT_NE(bad, nullptr);
  Bytes chunks;
  for (uint32_t csid = rtmp::kMinChunkStreamId; csid <= rtmp::kMaxChunkStreamId; ++csid) {
    // fmt 0, an empty video message: a header and no payload.
    if (csid <= rtmp::kOneByteChunkStreamIdMax) {
      media::AppendU8(&chunks, uint8_t(csid));
    } else {
      media::AppendU8(&chunks, 1);
      media::AppendU8(&chunks, uint8_t((csid - 64) & 0xFF));
      media::AppendU8(&chunks, uint8_t((csid - 64) >> 8));
    }
    const uint8_t header[11] = {0, 0, 0, 0, 0, 0, uint8_t(MessageType::kVideo), 1, 0, 0, 0};
    media::AppendBytes(&chunks, header);
  }
  bad->SendRaw(chunks);  // the server closes part way: the rest may not go out
  EXPECT_TRUE(bad->AwaitClose());
  ExpectClosedFor(bad->address(), "more than 64 chunk streams on one connection");
  Finish(kOneConnectionBound);
}

class SetChunkSizeTest : public BadInputTest, public ::testing::WithParamInterface<uint32_t> {};

TEST_P(SetChunkSizeTest, OutOfRangeIsRefused) {
  std::unique_ptr<RtmpClient> bad = ConnectAndHandshake();
  ASSERT_NE(bad, nullptr);
  // Written by hand: the client's ChunkWriter would take the size for itself.
  Bytes message = {0x02, 0, 0, 0, 0, 0, 4, uint8_t(MessageType::kSetChunkSize), 0, 0, 0, 0};
  media::AppendU32(&message, GetParam());
  bad->SendRaw(message);
  EXPECT_TRUE(bad->AwaitClose());
  ExpectClosedFor(bad->address(), absl::StrCat("Set Chunk Size ", GetParam(),
                                               ": the chunk size must be 1 to 2^31-1"));
  Finish(kOneConnectionBound);
}

INSTANTIATE_TEST_SUITE_P(Sizes, SetChunkSizeTest, ::testing::Values(0u, 0x80000000u));

TEST_F(BadInputTest, AggregateWhoseTagSizesLie) {
  std::unique_ptr<RtmpClient> bad = ConnectAndHandshake();
  ASSERT_NE(bad, nullptr);
  ASSERT_TRUE(bad->ConnectApp("live"));
  std::optional<uint32_t> id = bad->CreateStream();
  ASSERT_TRUE(id.has_value());
  ASSERT_EQ(bad->Publish(*id, "liar"), "NetStream.Publish.Start");
  // One video tag that claims 1000 bytes of data and has 5, then a back-pointer.
  Bytes body = {
      uint8_t(MessageType::kVideo), 0x00, 0x03, 0xE8, 0, 0, 0, 0, 0, 0, 0, 0x17, 0x01, 0, 0, 0};
  media::AppendU32(&body, 11 + 1000);
  ASSERT_TRUE(
      bad->Send({.chunk_stream_id = 7, .type = MessageType::kAggregate, .stream_id = *id}, body));
  EXPECT_TRUE(bad->AwaitClose());
  ExpectClosedFor(bad->address(), "claims more data than the body holds: data size (1000)");
  Finish(kOneConnectionBound);
}

TEST_F(BadInputTest, AmfNestedTenThousandDeep) {
  std::unique_ptr<RtmpClient> bad = ConnectAndHandshake();
  ASSERT_NE(bad, nullptr);
  Bytes command;
  media::amf0::EncodeString("connect", &command);
  media::amf0::EncodeNumber(1, &command);
  for (int i = 0; i < 10000; ++i) {
    const uint8_t strict_array_of_one[] = {uint8_t(media::amf0::Marker::kStrictArray), 0, 0, 0, 1};
    media::AppendBytes(&command, strict_array_of_one);
  }
  media::amf0::EncodeNull(&command);
  ASSERT_TRUE(bad->Send(
      {.chunk_stream_id = rtmp::kCommandChunkStream, .type = MessageType::kCommandAmf0}, command));
  EXPECT_TRUE(bad->AwaitClose());
  ExpectClosedFor(bad->address(), "nests deeper than the limit of 32");
  Finish(kOneConnectionBound);
}

TEST_F(BadInputTest, PublishBeforeConnect) {
  std::unique_ptr<RtmpClient> bad = ConnectAndHandshake();
  ASSERT_NE(bad, nullptr);
  ASSERT_TRUE(bad->SendCommand("publish", 0, {Value::Null(), Value::String("sneaky")}, 1));
  EXPECT_TRUE(bad->AwaitClose());
  ExpectClosedFor(bad->address(), "publish before connect");
  Finish(kOneConnectionBound);
}

// A refused name costs the publish, not the connection: the client gets
// NetStream.Publish.BadName with the reason and may try another name.
class StreamNameTest : public BadInputTest,
                       public ::testing::WithParamInterface<std::pair<size_t, const char*>> {};

TEST_P(StreamNameTest, IsRefused) {
  const auto [length, reason] = GetParam();
  std::unique_ptr<RtmpClient> bad = ConnectAndHandshake();
  ASSERT_NE(bad, nullptr);
  ASSERT_TRUE(bad->ConnectApp("live"));
  std::optional<uint32_t> id = bad->CreateStream();
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(bad->Publish(*id, std::string(length, 'n')), "NetStream.Publish.BadName");
  const std::string peer = bad->address();
  bad.reset();
  ExpectClosedFor(peer, "closed by the peer");
  Finish(kOneConnectionBound);
  // The refusal itself is logged with the peer and the reason (before the close, which
  // is logged already: no need to wait long).
  EXPECT_FALSE(
      AwaitLogLines(server_->log_path(), {peer, "publish refused", reason}, 1, absl::Seconds(1))
          .empty())
      << "no log line with " << peer << " and '" << reason << "'";
}

INSTANTIATE_TEST_SUITE_P(Names, StreamNameTest,
                         ::testing::Values(std::make_pair(size_t{0}, "empty stream name"),
                                           std::make_pair(size_t{64} << 10,
                                                          "stream name longer than 1024 bytes")),
                         [](const auto& info) {
                           return info.param.first == 0 ? std::string("Empty")
                                                        : std::string("SixtyFourKiB");
                         });

// --proxy-protocol: the good publisher comes "through a balancer" with a v1 header that
// names 198.51.100.7; each bad connection sends a broken header, or none. Each is closed
// with a line that names the balancer (the bad peer's own address: no header named a
// publisher) and the reason.
constexpr char kGoodProxyHeader[] = "PROXY TCP4 198.51.100.7 127.0.0.1 40000 1935\r\n";

// A v2 header: the signature, version 2 and `command`, `family`, and `body`.
Bytes ProxyV2(uint8_t command, uint8_t family, const Bytes& body, size_t claimed_length) {
  Bytes h = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
  h.push_back(uint8_t(0x20 | command));
  h.push_back(family);
  h.push_back(uint8_t(claimed_length >> 8));
  h.push_back(uint8_t(claimed_length));
  h.insert(h.end(), body.begin(), body.end());
  return h;
}

class ProxyProtocolBadInputTest : public BadInputTest {
 protected:
  void SetUp() override { StartServer({"--proxy-protocol"}, kGoodProxyHeader); }

  void ExpectRefused(std::span<const uint8_t> input, const std::string& reason) {
    std::unique_ptr<RtmpClient> bad = Connect();
    ASSERT_NE(bad, nullptr);
    bad->SendRaw(input);
    EXPECT_TRUE(bad->AwaitClose());
    ExpectClosedFor(bad->address(), absl::StrCat("PROXY protocol (--proxy-protocol): ", reason));
  }
};

TEST_F(ProxyProtocolBadInputTest, ThePublishersAddressIsTheHeaders) {
  EXPECT_FALSE(AwaitLogLines(server_->log_path(),
                             {"198.51.100.7:40000: publisher's address from the PROXY v1 header "
                              "of 127.0.0.1:"})
                   .empty());
  EXPECT_FALSE(
      AwaitLogLines(server_->log_path(), {"198.51.100.7:40000: publishing live/good"}).empty())
      << ReadFile(server_->log_path());
  Finish(kOneConnectionBound);
}

TEST_F(ProxyProtocolBadInputTest, NoHeader) {
  std::unique_ptr<RtmpClient> bad = Connect();
  ASSERT_NE(bad, nullptr);
  EXPECT_FALSE(bad->Handshake());  // C0 + C1 straight away
  ExpectClosedFor(bad->address(), "PROXY protocol (--proxy-protocol): no PROXY protocol header");
  Finish(kOneConnectionBound);
}

TEST_F(ProxyProtocolBadInputTest, HeaderCutShort) {
  std::unique_ptr<RtmpClient> bad = Connect();
  ASSERT_NE(bad, nullptr);
  bad->SendRaw(media::AsBytes("PROXY TCP4 198.51.100.9 127.0.0.1 400"));
  const std::string peer = bad->address();
  absl::SleepFor(absl::Milliseconds(100));
  bad.reset();
  ExpectClosedFor(peer, "PROXY protocol (--proxy-protocol): the header was cut short (37 bytes");
  Finish(kOneConnectionBound);
}

TEST_F(ProxyProtocolBadInputTest, HeaderCutShortThenSilence) {
  std::unique_ptr<RtmpClient> bad = Connect();
  ASSERT_NE(bad, nullptr);
  bad->SendRaw(ProxyV2(1, 0x11, Bytes(4, 0), 12));  // 4 of the 12 address bytes
  EXPECT_TRUE(bad->AwaitClose(absl::Seconds(5)));
  ExpectClosedFor(bad->address(),
                  "PROXY protocol (--proxy-protocol): no complete header after 1.0 s (20 bytes "
                  "came)");
  Finish(kOneConnectionBound);
}

TEST_F(ProxyProtocolBadInputTest, V1LineTooLong) {
  ExpectRefused(media::AsBytes(absl::StrCat("PROXY TCP4 ", std::string(200, '1'), "\r\n")),
                "PROXY v1 line longer than 107 bytes without its CRLF");
  Finish(kOneConnectionBound);
}

TEST_F(ProxyProtocolBadInputTest, V1BadAddress) {
  ExpectRefused(media::AsBytes("PROXY TCP4 198.51.100.300 127.0.0.1 40000 1935\r\n"),
                "PROXY v1 line: \"198.51.100.300\" is not an IPv4 address");
  Finish(kOneConnectionBound);
}

TEST_F(ProxyProtocolBadInputTest, V2Oversized) {
  ExpectRefused(ProxyV2(1, 0x11, Bytes(12, 0), 60000),
                "PROXY v2 header of 60016 bytes: over the 4096-byte limit");
  Finish(kOneConnectionBound);
}

TEST_F(ProxyProtocolBadInputTest, V2UnknownAddressFamily) {
  ExpectRefused(ProxyV2(1, 0x41, Bytes(12, 0), 12),
                "PROXY v2 header with unknown address family 4");
  Finish(kOneConnectionBound);
}

TEST_F(ProxyProtocolBadInputTest, V2UnixSocketAddresses) {
  ExpectRefused(ProxyV2(1, 0x31, Bytes(216, 0), 216),
                "PROXY v2 header with AF_UNIX addresses, which name no publisher");
  Finish(kOneConnectionBound);
}

TEST_F(ProxyProtocolBadInputTest, V2LocalIsAHealthCheckClosedQuietly) {
  std::unique_ptr<RtmpClient> check = Connect();
  ASSERT_NE(check, nullptr);
  check->SendRaw(ProxyV2(0, 0x00, {}, 0));
  EXPECT_TRUE(check->AwaitClose());
  absl::SleepFor(absl::Milliseconds(200));
  const std::string log = ReadFile(server_->log_path());
  EXPECT_FALSE(absl::StrContains(log, absl::StrCat(check->address(), ": closed")))
      << "a health check logged at info:\n"
      << log;
  Finish(kOneConnectionBound);
}

// --trusted-proxies: a source outside it may not connect at all, header or not.
class UntrustedProxyTest : public BadInputTest {
 protected:
  void SetUp() override {
    StartServer({"--proxy-protocol", "--trusted-proxies", "127.0.0.1/32"}, kGoodProxyHeader);
  }
};

TEST_F(UntrustedProxyTest, OnlyTrustedSourcesMayConnect) {
  // 127.0.0.2 is loopback too, but not a trusted proxy.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in from{.sin_family = AF_INET};
  inet_pton(AF_INET, "127.0.0.2", &from.sin_addr);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof(from)), 0);
  sockaddr_in to{.sin_family = AF_INET, .sin_port = htons(uint16_t(server_->port()))};
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 0);
  const std::string header = kGoodProxyHeader;
  ASSERT_GT(send(fd, header.data(), header.size(), MSG_NOSIGNAL), 0);
  char byte;
  timeval timeout{.tv_sec = 5, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  EXPECT_LE(recv(fd, &byte, 1, 0), 0) << "an untrusted source's connection stayed open";
  close(fd);
  EXPECT_FALSE(
      AwaitLogLines(server_->log_path(), {"127.0.0.2:",
                                          "connection refused: PROXY protocol headers are taken "
                                          "only from --trusted-proxies"})
          .empty())
      << ReadFile(server_->log_path());
  Finish(kOneConnectionBound);
}

// With --proxy-protocol the per-address cap counts the publishers' addresses from the
// headers, not the balancer's (every connection comes from it).
class ProxyPerAddressCapTest : public BadInputTest {
 protected:
  void SetUp() override {
    StartServer({"--proxy-protocol", "--max-connections-per-ip", "1"}, kGoodProxyHeader);
  }
};

TEST_F(ProxyPerAddressCapTest, CountsTheHeadersAddresses) {
  // The good publisher holds 198.51.100.7's one connection.
  std::unique_ptr<RtmpClient> same = Connect();
  ASSERT_NE(same, nullptr);
  same->SendRaw(media::AsBytes("PROXY TCP4 198.51.100.7 127.0.0.1 40001 1935\r\n"));
  EXPECT_TRUE(same->AwaitClose());
  ExpectClosedFor("198.51.100.7:40001",
                  "connection refused: 198.51.100.7 holds --max-connections-per-ip=1");
  // Another publisher behind the same balancer (127.0.0.1) is taken.
  std::unique_ptr<RtmpClient> other = Connect();
  ASSERT_NE(other, nullptr);
  other->SendRaw(media::AsBytes("PROXY TCP4 198.51.100.8 127.0.0.1 40002 1935\r\n"));
  EXPECT_TRUE(other->Handshake()) << ReadFile(server_->log_path());
  EXPECT_TRUE(other->ConnectApp("live"));
  Finish(kOneConnectionBound);
}

// RLIMIT_NOFILE: this process holds one descriptor per connection, and so does the server,
// which inherits the limit.
void RaiseFileLimit(rlim_t wanted) {
  rlimit limit;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
  if (limit.rlim_cur >= wanted) return;
  limit.rlim_cur = std::min(wanted, limit.rlim_max);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &limit), 0);
  ASSERT_GE(limit.rlim_cur, wanted) << "the hard limit on open files is too low";
}

class IdleConnectionsTest : public BadInputTest {
 protected:
  void SetUp() override {
    RaiseFileLimit(kIdleConnections + 1024);
    if (HasFatalFailure()) return;
    BadInputTest::SetUp();
  }
};

TEST_F(IdleConnectionsTest, TenThousandConnectionsThatNeverSendAByte) {
  std::vector<std::unique_ptr<RtmpClient>> idle;
  std::set<std::string> peers;
  for (int i = 0; i < kIdleConnections; ++i) {
    idle.push_back(Connect());
    ASSERT_NE(idle.back(), nullptr) << "connection " << i;
    peers.insert(idle.back()->address());
  }
  // --handshake-timeout 1: each is closed with a line that names it.
  const std::vector<std::string> lines = AwaitLogLines(
      server_->log_path(), {": closed: handshake not done after 1.0 s"}, kIdleConnections);
  for (const std::string& line : lines) {
    // "... conn N 127.0.0.1:PORT: closed: ..."
    const size_t at = line.find("127.0.0.1:");
    if (at != std::string::npos) peers.erase(line.substr(at, line.find(':', at + 10) - at));
  }
  EXPECT_TRUE(peers.empty()) << peers.size() << " idle connections not logged, e.g. "
                             << (peers.empty() ? "" : *peers.begin());
  for (const auto& client : idle) EXPECT_TRUE(client->AwaitClose(absl::Seconds(5)));
  Finish(kIdleConnectionsBound);
}

}  // namespace
}  // namespace uringest::testing
