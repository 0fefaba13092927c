// Issue 7's RTMPS acceptance tests: the real uringestd with --tls-listen and a
// self-signed certificate, the real ffmpeg publishing to rtmps://, and uringest-cat. The
// clip comes out of the ring byte for byte; a plain RTMP client on the TLS port and a TLS
// client on the plain port each get one clear log line while a good publisher goes on; a
// bad certificate on SIGHUP keeps the old one. An OpenSSL client over a socket checks
// what ffmpeg can't show: the server ends TLS with close_notify both ways.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/integration/ingest_harness.h"
#include "tests/integration/process.h"
#include "tests/rtmp_testing.h"

namespace uringest::testing {
namespace {

constexpr char kOpenssl[] = "/usr/bin/openssl";
constexpr int kClipFrames = 60;  // 2 s at 30 fps

#define REQUIRE_TOOLS()                                        \
  if (!HaveFfmpeg()) GTEST_SKIP() << kFfmpeg << " is missing"; \
  if (access(kOpenssl, X_OK) != 0) GTEST_SKIP() << kOpenssl << " is missing"

// A self-signed P-256 certificate for localhost, made with the openssl tool.
bool MakeCertificate(const ScratchDir& dir) {
  return RunCommand({kOpenssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                     "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                     "-keyout", dir.Path("key.pem"), "-out", dir.Path("cert.pem")},
                    kProcessTimeout) == 0;
}

std::vector<std::string> TlsArgs(const ScratchDir& dir) {
  return {"--tls-listen",       "127.0.0.1:0", "--tls-cert",
          dir.Path("cert.pem"), "--tls-key",   dir.Path("key.pem")};
}

// Polls the server's log for `text`.
bool WaitForLog(const IngestServer& server, const std::string& text, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (ReadFile(server.log_path()).find(text) == std::string::npos) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return true;
}

// The port of the "RTMPS: listening on 127.0.0.1:PORT" log line, or 0.
int TlsPort(const IngestServer& server) {
  const std::string marker = "RTMPS: listening on 127.0.0.1:";
  if (!WaitForLog(server, marker, absl::Seconds(10))) return 0;
  const std::string log = ReadFile(server.log_path());
  const size_t begin = log.find(marker) + marker.size();
  int port = 0;
  return absl::SimpleAtoi(log.substr(begin, log.find(' ', begin) - begin), &port) ? port : 0;
}

std::string RtmpsUrl(int port, const std::string& stream) {
  return absl::StrCat("rtmps://127.0.0.1:", port, "/", stream);
}

// uringestd with `shards` shards, RTMPS on a self-signed certificate made in `dir`, and
// `extra` flags; *port is its RTMPS port. nullptr (and a test failure) if it didn't start.
std::unique_ptr<IngestServer> StartRtmpsServer(int shards, const ScratchDir& dir, int* port,
                                               const std::vector<std::string>& extra = {}) {
  if (!MakeCertificate(dir)) {
    ADD_FAILURE() << "openssl could not make a certificate";
    return nullptr;
  }
  std::vector<std::string> args = TlsArgs(dir);
  args.insert(args.end(), extra.begin(), extra.end());
  std::unique_ptr<IngestServer> server = IngestServer::Start(shards, dir, args);
  if (server == nullptr) return nullptr;
  *port = TlsPort(*server);
  if (*port == 0) {
    ADD_FAILURE() << "no RTMPS listener in the log: " << ReadFile(server->log_path());
    return nullptr;
  }
  return server;
}

// A blocking TLS client on a loopback socket that sends nothing after the handshake.
class TlsSocketClient {
 public:
  TlsSocketClient() : ctx_(SSL_CTX_new(TLS_client_method())) {}
  ~TlsSocketClient() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
    if (fd_ >= 0) close(fd_);
  }
  // Connects, sends `before_tls` (a PROXY protocol header, as a balancer would) and
  // completes the TLS handshake (the self-signed certificate is not checked).
  bool Connect(int port, std::string_view before_tls = {}) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{.sin_family = AF_INET, .sin_port = htons(uint16_t(port)), .sin_addr = {}};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval timeout{.tv_sec = 15, .tv_usec = 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return false;
    if (!before_tls.empty() &&
        write(fd_, before_tls.data(), before_tls.size()) != ssize_t(before_tls.size())) {
      return false;
    }
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    return SSL_connect(ssl_) == 1;
  }
  // Reads until the server ends the connection: SSL_ERROR_ZERO_RETURN if it did so with
  // close_notify, SSL_ERROR_SSL or SSL_ERROR_SYSCALL if the TCP stream just ended.
  int ReadUntilEnd() {
    char buffer[4096];
    int n;
    while ((n = SSL_read(ssl_, buffer, sizeof(buffer))) > 0) {
    }
    return SSL_get_error(ssl_, n);
  }
  // Sends close_notify; then true if the server answered with its own.
  bool ShutDownBothWays() {
    if (SSL_shutdown(ssl_) < 0) return false;
    return SSL_shutdown(ssl_) == 1;
  }

 private:
  SSL_CTX* ctx_;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
};

// Everything uringest-cat wrote must be the source clip's video, frame for frame.
void ExpectSourceClip(const std::string& flv) {
  const std::vector<std::vector<uint8_t>>& source = SourceVideo();
  const std::vector<std::vector<uint8_t>> video = TagBodies(flv, 9);
  ASSERT_EQ(video.size(), source.size()) << "sequence header + 60 frames + end of sequence";
  for (size_t i = 0; i < video.size(); ++i) EXPECT_EQ(video[i], source[i]) << "tag " << i;
  EXPECT_EQ(CountVideoFrames(flv), kClipFrames);
}

TEST(RtmpsTest, PublishedClipComesOutOfTheRingByteForByte) {
  REQUIRE_TOOLS();
  ScratchDir dir;
  int port = 0;
  std::unique_ptr<IngestServer> server = StartRtmpsServer(2, dir, &port);
  ASSERT_NE(server, nullptr);
  Process cat = StartCat(server->ring(), "live/test", dir.Path("out.flv"), dir.Path("cat.log"));
  EXPECT_EQ(RunCommand(PublishClipArgs(RtmpsUrl(port, "live/test")), kProcessTimeout), 0);
  EXPECT_EQ(cat.Wait(kProcessTimeout), 0) << ReadFile(dir.Path("cat.log"));
  ExpectSourceClip(dir.Path("out.flv"));
  EXPECT_NE(ReadFile(server->log_path()).find("(RTMPS)"), std::string::npos);
}

TEST(RtmpsTest, WrongPortClientsGetALogLineAndTheGoodPublisherGoesOn) {
  REQUIRE_TOOLS();
  ScratchDir dir;
  int port = 0;
  std::unique_ptr<IngestServer> server = StartRtmpsServer(2, dir, &port);
  ASSERT_NE(server, nullptr);
  Process cat = StartCat(server->ring(), "live/good", dir.Path("out.flv"), dir.Path("cat.log"));
  Process good = Process::Spawn(PublishClipArgs(RtmpsUrl(port, "live/good"), 4),
                                {.stderr_path = dir.Path("good.log")});
  ASSERT_TRUE(WaitForStream(server->ring(), "live/good", 10, absl::Seconds(20)));

  // Plain RTMP to the TLS port, and rtmps:// to the plain port: both fail, and say why.
  EXPECT_NE(RunCommand(PublishClipArgs(absl::StrCat("rtmp://127.0.0.1:", port, "/live/plain")),
                       kProcessTimeout),
            0);
  EXPECT_NE(RunCommand(PublishClipArgs(RtmpsUrl(server->port(), "live/tls")), kProcessTimeout), 0);
  EXPECT_TRUE(WaitForLog(*server, "plain RTMP on the TLS port", absl::Seconds(5)));
  EXPECT_TRUE(WaitForLog(*server, "TLS client on the plain RTMP port", absl::Seconds(5)));

  // A bad certificate on SIGHUP: said in the log, and the old one stays in force.
  {
    FILE* f = fopen(dir.Path("cert.pem").c_str(), "w");
    fputs("not a certificate\n", f);
    fclose(f);
  }
  server->process().Signal(SIGHUP);
  EXPECT_TRUE(WaitForLog(*server, "TLS certificate not reloaded", absl::Seconds(5)));

  EXPECT_EQ(good.Wait(kProcessTimeout), 0) << ReadFile(dir.Path("good.log"));
  EXPECT_EQ(cat.Wait(kProcessTimeout), 0) << ReadFile(dir.Path("cat.log"));
  EXPECT_EQ(TagBodies(dir.Path("out.flv"), 9).size(), size_t{4 * 30 + 2});
  EXPECT_EQ(ReadFile(server->log_path()).find("critical"), std::string::npos);
}

TEST(RtmpsTest, ServerEndsTlsWithCloseNotifyEitherWay) {
  REQUIRE_TOOLS();
  ScratchDir dir;
  int port = 0;
  std::unique_ptr<IngestServer> server =
      StartRtmpsServer(1, dir, &port, {"--handshake-timeout", "1"});
  ASSERT_NE(server, nullptr);

  // The server closes (no RTMP handshake within 1 s): close_notify, not a bare FIN.
  TlsSocketClient silent;
  ASSERT_TRUE(silent.Connect(port));
  EXPECT_EQ(silent.ReadUntilEnd(), SSL_ERROR_ZERO_RETURN);
  EXPECT_TRUE(WaitForLog(*server, "handshake not done after 1.0 s", absl::Seconds(5)));

  // The client ends TLS: the server answers close_notify with its own and closes.
  TlsSocketClient leaving;
  ASSERT_TRUE(leaving.Connect(port));
  EXPECT_TRUE(leaving.ShutDownBothWays());
  EXPECT_TRUE(WaitForLog(*server, "closed by the peer (TLS close_notify)", absl::Seconds(5)))
      << ReadFile(server->log_path());
}

// Issue 16: with --proxy-protocol the header comes first, then the TLS handshake; a TLS
// client without one is refused, saying so.
TEST(RtmpsTest, ProxyProtocolHeaderComesBeforeTheTlsHandshake) {
  REQUIRE_TOOLS();
  ScratchDir dir;
  int port = 0;
  std::unique_ptr<IngestServer> server = StartRtmpsServer(1, dir, &port, {"--proxy-protocol"});
  ASSERT_NE(server, nullptr);

  TlsSocketClient balanced;
  ASSERT_TRUE(balanced.Connect(port, "PROXY TCP4 198.51.100.7 127.0.0.1 40000 443\r\n"));
  EXPECT_TRUE(WaitForLog(*server,
                         "198.51.100.7:40000: publisher's address from the PROXY v1 header of "
                         "127.0.0.1:",
                         absl::Seconds(5)))
      << ReadFile(server->log_path());
  EXPECT_TRUE(balanced.ShutDownBothWays());
  EXPECT_TRUE(WaitForLog(*server,
                         "198.51.100.7:40000: closed: closed by the peer (TLS close_notify)",
                         absl::Seconds(5)))
      << ReadFile(server->log_path());

  TlsSocketClient direct;
  EXPECT_FALSE(direct.Connect(port));
  EXPECT_TRUE(WaitForLog(*server,
                         "PROXY protocol (--proxy-protocol): no PROXY protocol header: the "
                         "connection began with 0x16, a TLS handshake",
                         absl::Seconds(5)))
      << ReadFile(server->log_path());
}

}  // namespace
}  // namespace uringest::testing
