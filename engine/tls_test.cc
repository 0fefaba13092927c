// The RTMPS layer without sockets: a TlsSession (the server) and an OpenSSL client over
// memory BIOs, with a self-signed certificate made here, passing bytes by hand in any
// split; then TlsSession's client side against its server side, verifying or not.

#include "engine/tls.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace uringest::engine {
namespace {

// A temp dir with a fresh self-signed P-256 certificate (CN=localhost, and localhost,
// 127.0.0.1 and ::1 in its subjectAltName) and its key.
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
    X509_set_version(cert, 2);  // v3, for the extension
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, cert, cert, nullptr, nullptr, 0);
    X509_EXTENSION* san = X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name,
                                              "DNS:localhost,IP:127.0.0.1,IP:::1");
    X509_add_ext(cert, san, -1);
    X509_EXTENSION_free(san);
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

// Reads `session` until it wants more ciphertext, appending the plaintext to *plain.
absl::Status Drain(TlsSession& session, std::string* plain) {
  std::vector<uint8_t> scratch(kTlsMaxRecordPlaintext);
  for (;;) {
    absl::StatusOr<size_t> n = session.Read(scratch);
    if (!n.ok()) return n.status();
    if (*n == 0) return absl::OkStatus();
    plain->append(reinterpret_cast<const char*>(scratch.data()), *n);
  }
}

// Both ends of a connection made of TlsSessions, the bytes passed by Pump().
struct Link {
  std::unique_ptr<TlsSession> client;
  std::unique_ptr<TlsSession> server;
  absl::Status client_error;  // the first error each side's Read() gave
  absl::Status server_error;
  std::string client_received;  // plaintext
  std::string server_received;

  // Passes ciphertext both ways until none is left to pass; a side that failed is read
  // no more, but the alert it queued still goes.
  void Pump() {
    for (int round = 0; round < 16; ++round) {
      if (client_error.ok()) client_error = Drain(*client, &client_received);
      std::vector<uint8_t> to_server;
      client->TakeOutput(&to_server);
      server->Feed(to_server);
      if (server_error.ok()) server_error = Drain(*server, &server_received);
      std::vector<uint8_t> to_client;
      server->TakeOutput(&to_client);
      client->Feed(to_client);
      if (to_server.empty() && to_client.empty()) return;
    }
    ADD_FAILURE() << "the sessions kept talking";
  }
  bool handshake_done() const { return client->handshake_done() && server->handshake_done(); }
};

// Each test's server: a TlsSession with the self-signed certificate made for it.
class TlsClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::shared_ptr<const TlsContext>> context =
        TlsContext::Load(certs_.cert_path(), certs_.key_path());
    ASSERT_TRUE(context.ok()) << context.status();
    server_context_ = *std::move(context);
  }

  // A client of `host` with the given trust settings, linked to a fresh server.
  Link Connect(bool verify, const std::string& ca_file, const std::string& host) {
    Link link;
    absl::StatusOr<std::shared_ptr<const TlsContext>> context = TlsContext::Client(verify, ca_file);
    EXPECT_TRUE(context.ok()) << context.status();
    if (!context.ok()) return link;
    absl::StatusOr<std::unique_ptr<TlsSession>> client = TlsSession::CreateClient(*context, host);
    absl::StatusOr<std::unique_ptr<TlsSession>> server = TlsSession::Create(server_context_);
    EXPECT_TRUE(client.ok()) << client.status();
    EXPECT_TRUE(server.ok()) << server.status();
    if (client.ok() && server.ok()) {
      link.client = *std::move(client);
      link.server = *std::move(server);
    }
    return link;
  }

  CertDir certs_;
  std::shared_ptr<const TlsContext> server_context_;
};

TEST_F(TlsClientTest, FirstReadWithNothingFedPutsTheClientHelloInTheOutput) {
  Link link = Connect(/*verify=*/false, "", "localhost");
  ASSERT_NE(link.client, nullptr);
  EXPECT_EQ(link.client->pending_output(), 0u);  // nothing before the first Read()
  std::vector<uint8_t> scratch(kTlsMaxRecordPlaintext);
  absl::StatusOr<size_t> n = link.client->Read(scratch);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 0u);
  ASSERT_GT(link.client->pending_output(), 0u);
  std::vector<uint8_t> hello;
  link.client->TakeOutput(&hello);
  EXPECT_EQ(hello[0], kTlsHandshakeRecord);
  EXPECT_FALSE(link.client->handshake_done());
}

TEST_F(TlsClientTest, InsecureClientTakesASelfSignedCertificateAndBytesGoBothWays) {
  Link link = Connect(/*verify=*/false, "", "localhost");
  ASSERT_NE(link.client, nullptr);
  link.Pump();
  ASSERT_TRUE(link.client_error.ok()) << link.client_error;
  ASSERT_TRUE(link.server_error.ok()) << link.server_error;
  ASSERT_TRUE(link.handshake_done());
  EXPECT_NE(link.client->Describe().find("TLS"), std::string::npos);

  ASSERT_TRUE(link.client->Write(std::vector<uint8_t>{'C', '0', 'C', '1'}).ok());
  link.Pump();
  EXPECT_EQ(link.server_received, "C0C1");
  ASSERT_TRUE(link.server->Write(std::vector<uint8_t>{'S', '0', 'S', '1', 'S', '2'}).ok());
  link.Pump();
  EXPECT_EQ(link.client_received, "S0S1S2");

  link.client->Shutdown();
  link.Pump();
  EXPECT_TRUE(link.server->peer_closed());
}

TEST_F(TlsClientTest, SystemTrustStoreRejectsASelfSignedCertificateAndSaysWhy) {
  Link link = Connect(/*verify=*/true, "", "localhost");
  ASSERT_NE(link.client, nullptr);
  link.Pump();
  EXPECT_FALSE(link.handshake_done());
  ASSERT_FALSE(link.client_error.ok());
  EXPECT_NE(link.client_error.message().find("certificate verify failed: self"), std::string::npos)
      << link.client_error;
  EXPECT_FALSE(link.server_error.ok()) << "the client's alert reaches the server";
}

TEST_F(TlsClientTest, CaFileTrustsTheCertificateForItsName) {
  Link link = Connect(/*verify=*/true, certs_.cert_path(), "localhost");
  ASSERT_NE(link.client, nullptr);
  link.Pump();
  EXPECT_TRUE(link.client_error.ok()) << link.client_error;
  EXPECT_TRUE(link.handshake_done());
}

TEST_F(TlsClientTest, IpLiteralIsCheckedAgainstTheIpSan) {
  Link link = Connect(/*verify=*/true, certs_.cert_path(), "127.0.0.1");
  ASSERT_NE(link.client, nullptr);
  link.Pump();
  EXPECT_TRUE(link.client_error.ok()) << link.client_error;
  EXPECT_TRUE(link.handshake_done());
}

TEST_F(TlsClientTest, BracketedIpv6LiteralIsCheckedAgainstTheIpSan) {
  Link link = Connect(/*verify=*/true, certs_.cert_path(), "[::1]");
  ASSERT_NE(link.client, nullptr);
  link.Pump();
  EXPECT_TRUE(link.client_error.ok()) << link.client_error;
  EXPECT_TRUE(link.handshake_done());
}

TEST_F(TlsClientTest, NameTheCertificateDoesNotCarryFails) {
  Link link = Connect(/*verify=*/true, certs_.cert_path(), "example.com");
  ASSERT_NE(link.client, nullptr);
  link.Pump();
  EXPECT_FALSE(link.handshake_done());
  ASSERT_FALSE(link.client_error.ok());
  EXPECT_NE(link.client_error.message().find("certificate verify failed: hostname mismatch"),
            std::string::npos)
      << link.client_error;
}

TEST_F(TlsClientTest, AddressTheCertificateDoesNotCarryFails) {
  Link link = Connect(/*verify=*/true, certs_.cert_path(), "127.0.0.2");
  ASSERT_NE(link.client, nullptr);
  link.Pump();
  EXPECT_FALSE(link.handshake_done());
  ASSERT_FALSE(link.client_error.ok());
  EXPECT_NE(link.client_error.message().find("certificate verify failed: IP address mismatch"),
            std::string::npos)
      << link.client_error;
}

TEST_F(TlsClientTest, InsecureClientIgnoresANameMismatch) {
  Link link = Connect(/*verify=*/false, "", "example.com");
  ASSERT_NE(link.client, nullptr);
  link.Pump();
  EXPECT_TRUE(link.client_error.ok()) << link.client_error;
  EXPECT_TRUE(link.handshake_done());
}

// The ClientHello is plaintext, so the server name can be looked for in its bytes.
TEST_F(TlsClientTest, SniCarriesAHostNameButNeverAnIpLiteral) {
  for (const std::string host : {"localhost", "127.0.0.1", "::1"}) {
    Link link = Connect(/*verify=*/false, "", host);
    ASSERT_NE(link.client, nullptr);
    std::vector<uint8_t> scratch(kTlsMaxRecordPlaintext);
    ASSERT_TRUE(link.client->Read(scratch).ok());
    std::vector<uint8_t> hello;
    link.client->TakeOutput(&hello);
    const bool named =
        std::search(hello.begin(), hello.end(), host.begin(), host.end()) != hello.end();
    EXPECT_EQ(named, host == "localhost") << host;
  }
}

TEST(TlsContextTest, MissingCaFileIsAnErrorThatNamesIt) {
  const std::string missing = ::testing::TempDir() + "/tls_test_no_such_ca.pem";
  absl::StatusOr<std::shared_ptr<const TlsContext>> context = TlsContext::Client(true, missing);
  ASSERT_FALSE(context.ok());
  EXPECT_NE(context.status().message().find("CA file " + missing), std::string::npos)
      << context.status();
}

TEST(TlsContextTest, CaFileWithoutCertificatesIsAnError) {
  const std::string bad = ::testing::TempDir() + "/tls_test_bad_ca.pem";
  WriteFile(bad, "not a certificate\n");
  absl::StatusOr<std::shared_ptr<const TlsContext>> context = TlsContext::Client(true, bad);
  unlink(bad.c_str());
  ASSERT_FALSE(context.ok());
  EXPECT_NE(context.status().message().find("CA file " + bad), std::string::npos)
      << context.status();
}

TEST(TlsContextTest, OnlyAVerifyingClientVerifiesPeers) {
  EXPECT_TRUE((*TlsContext::Client(true))->verifies_peer());
  EXPECT_FALSE((*TlsContext::Client(false))->verifies_peer());
}

}  // namespace
}  // namespace uringest::engine
