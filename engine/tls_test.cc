// The RTMPS layer without sockets: a TlsSession (the server) and an OpenSSL client over
// memory BIOs, with a self-signed certificate made here, passing bytes by hand in any
// split.

#include "engine/tls.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace uringest::engine {
namespace {

// A temp dir with a fresh self-signed P-256 certificate (CN=localhost) and its key.
class CertDir {
 public:
  CertDir() {
    std::string pattern = ::testing::TempDir() + "/tls_test.XXXXXX";
    dir_ = mkdtemp(pattern.data());
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* cert = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    X509_set_issuer_name(cert, name);
    X509_sign(cert, key, EVP_sha256());
    FILE* f = fopen(cert_path().c_str(), "w");
    PEM_write_X509(f, cert);
    fclose(f);
    f = fopen(key_path().c_str(), "w");
    PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
    fclose(f);
    X509_free(cert);
    EVP_PKEY_free(key);
  }
  ~CertDir() {
    unlink(cert_path().c_str());
    unlink(key_path().c_str());
    rmdir(dir_.c_str());
  }
  std::string cert_path() const { return dir_ + "/cert.pem"; }
  std::string key_path() const { return dir_ + "/key.pem"; }

 private:
  std::string dir_;
};

std::string ReadText(const std::string& path) {
  FILE* f = fopen(path.c_str(), "r");
  std::string text;
  for (int c; (c = fgetc(f)) != EOF;) text.push_back(char(c));
  fclose(f);
  return text;
}

void WriteFile(const std::string& path, const std::string& text) {
  FILE* f = fopen(path.c_str(), "w");
  fputs(text.c_str(), f);
  fclose(f);
}

// An OpenSSL client that doesn't verify the certificate (as ffmpeg's -tls_verify 0).
class Client {
 public:
  Client() : ctx_(SSL_CTX_new(TLS_client_method())) {
    ssl_ = SSL_new(ctx_);
    in_ = BIO_new(BIO_s_mem());
    out_ = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(in_, -1);
    SSL_set_bio(ssl_, in_, out_);
    SSL_set_connect_state(ssl_);
  }
  ~Client() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
  }
  void Start() { SSL_do_handshake(ssl_); }
  std::vector<uint8_t> TakeOutput() {
    std::vector<uint8_t> bytes(BIO_ctrl_pending(out_));
    if (!bytes.empty()) BIO_read(out_, bytes.data(), int(bytes.size()));
    return bytes;
  }
  void Feed(const std::vector<uint8_t>& bytes) {
    if (!bytes.empty()) BIO_write(in_, bytes.data(), int(bytes.size()));
    SSL_do_handshake(ssl_);
  }
  bool done() const { return SSL_is_init_finished(ssl_) == 1; }
  void Write(const std::string& text) { SSL_write(ssl_, text.data(), int(text.size())); }
  void SendCloseNotify() { SSL_shutdown(ssl_); }
  bool ReceivedCloseNotify() const { return (SSL_get_shutdown(ssl_) & SSL_RECEIVED_SHUTDOWN) != 0; }
  std::string ReadAll() {
    std::string text;
    char buffer[4096];
    for (int n; (n = SSL_read(ssl_, buffer, sizeof(buffer))) > 0;) text.append(buffer, size_t(n));
    return text;
  }

 private:
  SSL_CTX* ctx_;
  SSL* ssl_;
  BIO* in_;
  BIO* out_;
};

// Feeds `bytes` to the server `step` bytes at a time, reading after each; returns the
// plaintext, or stops at the first error (left in *error).
std::string FeedServer(TlsSession& server, const std::vector<uint8_t>& bytes, size_t step,
                       absl::Status* error) {
  std::string plain;
  std::vector<uint8_t> scratch(kTlsMaxRecordPlaintext);
  for (size_t at = 0; at < bytes.size(); at += step) {
    server.Feed(std::span(bytes).subspan(at, std::min(step, bytes.size() - at)));
    for (;;) {
      absl::StatusOr<size_t> n = server.Read(scratch);
      if (!n.ok()) {
        *error = n.status();
        return plain;
      }
      if (*n == 0) break;
      plain.append(reinterpret_cast<const char*>(scratch.data()), *n);
    }
  }
  return plain;
}

std::vector<uint8_t> ServerOutput(TlsSession& server) {
  std::vector<uint8_t> out;
  server.TakeOutput(&out);
  return out;
}

// Runs the handshake, the server's input split every `step` bytes.
void Handshake(Client& client, TlsSession& server, size_t step) {
  client.Start();
  absl::Status error;
  for (int round = 0; round < 4 && !(client.done() && server.handshake_done()); ++round) {
    FeedServer(server, client.TakeOutput(), step, &error);
    ASSERT_TRUE(error.ok()) << error;
    client.Feed(ServerOutput(server));
  }
  ASSERT_TRUE(client.done());
  ASSERT_TRUE(server.handshake_done());
}

// Each test's server side: a session made from a freshly made certificate.
class TlsSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<TlsCertificates>> loaded =
        TlsCertificates::Create(certs_.cert_path(), certs_.key_path());
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    certificates_ = *std::move(loaded);
    absl::StatusOr<std::unique_ptr<TlsSession>> server =
        TlsSession::Create(certificates_->Current());
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  CertDir certs_;
  std::unique_ptr<TlsCertificates> certificates_;
  std::unique_ptr<TlsSession> server_;
};

TEST_F(TlsSessionTest, HandshakeThenBytesBothWays) {
  Client client;
  Handshake(client, *server_, 1 << 20);
  EXPECT_NE(server_->Describe().find("TLS"), std::string::npos);

  client.Write("\x03 an RTMP C0 and more");
  absl::Status error;
  EXPECT_EQ(FeedServer(*server_, client.TakeOutput(), 1 << 20, &error), "\x03 an RTMP C0 and more");
  ASSERT_TRUE(server_->Write(std::span(reinterpret_cast<const uint8_t*>("S0S1S2"), 6)).ok());
  client.Feed(ServerOutput(*server_));
  EXPECT_EQ(client.ReadAll(), "S0S1S2");
}

TEST_F(TlsSessionTest, OneByteAtATimeStillHandshakesAndDecrypts) {
  Client client;
  Handshake(client, *server_, 1);
  const std::string big(100'000, 'x');  // several records
  client.Write(big);
  absl::Status error;
  EXPECT_EQ(FeedServer(*server_, client.TakeOutput(), 7, &error), big);
  EXPECT_TRUE(error.ok()) << error;
}

TEST_F(TlsSessionTest, LargeWriteReachesTheClientWhole) {
  Client client;
  Handshake(client, *server_, 1 << 20);
  const std::vector<uint8_t> big(70'000, 0x5a);
  ASSERT_TRUE(server_->Write(big).ok());
  EXPECT_GT(server_->pending_output(), big.size());
  client.Feed(ServerOutput(*server_));
  EXPECT_EQ(server_->pending_output(), 0u);
  EXPECT_EQ(client.ReadAll(), std::string(big.size(), 0x5a));
}

TEST_F(TlsSessionTest, PlainRtmpHandshakeIsAnErrorNotPlaintext) {
  std::vector<uint8_t> c0c1(1 + 1536, 0);
  c0c1[0] = 0x03;
  absl::Status error;
  EXPECT_EQ(FeedServer(*server_, c0c1, c0c1.size(), &error), "");
  EXPECT_FALSE(error.ok());
  EXPECT_NE(error.message().find("TLS handshake failed"), absl::string_view::npos) << error;
}

TEST_F(TlsSessionTest, CloseNotifyEndsReadingQuietly) {
  Client client;
  Handshake(client, *server_, 1 << 20);
  client.Write("last");
  client.SendCloseNotify();
  std::vector<uint8_t> bytes = client.TakeOutput();
  absl::Status error;
  EXPECT_EQ(FeedServer(*server_, bytes, bytes.size(), &error), "last");
  EXPECT_TRUE(error.ok()) << error;
  EXPECT_TRUE(server_->peer_closed());
}

TEST_F(TlsSessionTest, ShutdownQueuesOneCloseNotifyAfterTheLastRecord) {
  EXPECT_FALSE(server_->can_shut_down());  // nothing to end before the handshake
  Client client;
  Handshake(client, *server_, 1 << 20);
  ASSERT_TRUE(server_->Write(std::vector<uint8_t>{'b', 'y', 'e'}).ok());
  EXPECT_TRUE(server_->can_shut_down());
  server_->Shutdown();
  EXPECT_FALSE(server_->can_shut_down());
  std::vector<uint8_t> out = ServerOutput(*server_);
  server_->Shutdown();  // only once
  EXPECT_EQ(server_->pending_output(), 0u);
  client.Feed(out);
  EXPECT_EQ(client.ReadAll(), "bye");
  EXPECT_TRUE(client.ReceivedCloseNotify());
}

TEST_F(TlsSessionTest, NoCloseNotifyAfterAFatalError) {
  Client client;
  Handshake(client, *server_, 1 << 20);
  // A record with a corrupt body fails authentication: a fatal error.
  client.Write("hello");
  std::vector<uint8_t> record = client.TakeOutput();
  record.back() ^= 0xFF;
  absl::Status error;
  FeedServer(*server_, record, record.size(), &error);
  EXPECT_FALSE(error.ok());
  (void)ServerOutput(*server_);  // the alert that error queued
  EXPECT_FALSE(server_->can_shut_down());
  server_->Shutdown();
  EXPECT_EQ(server_->pending_output(), 0u);
}

TEST(TlsCertificatesTest, MissingKeyIsAnErrorThatNamesTheFile) {
  CertDir certs;
  auto loaded = TlsCertificates::Create(certs.cert_path(), certs.key_path() + ".missing");
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.status().message().find("--tls-key"), absl::string_view::npos);
}

TEST(TlsCertificatesTest, BadReloadKeepsTheCertificateInForce) {
  CertDir certs;
  auto loaded = TlsCertificates::Create(certs.cert_path(), certs.key_path());
  ASSERT_TRUE(loaded.ok());
  std::shared_ptr<const TlsContext> before = (*loaded)->Current();
  WriteFile(certs.cert_path(), "not a certificate\n");
  EXPECT_FALSE((*loaded)->Reload().ok());
  EXPECT_EQ((*loaded)->Current(), before);
  // A session made after the failed reload still handshakes with the old certificate.
  auto server = TlsSession::Create((*loaded)->Current());
  ASSERT_TRUE(server.ok());
  Client client;
  Handshake(client, **server, 1 << 20);
}

TEST(TlsCertificatesTest, GoodReloadReplacesTheContextForNewSessionsOnly) {
  CertDir certs;
  auto loaded = TlsCertificates::Create(certs.cert_path(), certs.key_path());
  ASSERT_TRUE(loaded.ok());
  std::shared_ptr<const TlsContext> before = (*loaded)->Current();
  auto old_session = TlsSession::Create(before);
  ASSERT_TRUE(old_session.ok());
  CertDir fresh;  // a new key pair, copied over the old files
  WriteFile(certs.cert_path(), ReadText(fresh.cert_path()));
  EXPECT_FALSE((*loaded)->Reload().ok()) << "the new certificate does not match the old key";
  WriteFile(certs.key_path(), ReadText(fresh.key_path()));
  ASSERT_TRUE((*loaded)->Reload().ok());
  EXPECT_NE((*loaded)->Current(), before);
  Client client;
  Handshake(client, **old_session, 1 << 20);  // made before the reload: still works
}

}  // namespace
}  // namespace uringest::engine
