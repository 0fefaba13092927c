// tls.h: RTMPS, both sides. A TLS session over memory BIOs, I/O-free like the RTMP core:
// the caller feeds it the ciphertext that arrived (in io_uring's receive buffers, or from
// the relay's socket), reads the plaintext out for the RTMP connection, hands it the
// RTMP output to encrypt, and sends the ciphertext it produced (handshake messages,
// records, alerts).
//
// The server (the ingest's RTMPS port):
//
//   absl::StatusOr<std::unique_ptr<TlsCertificates>> certs =
//       TlsCertificates::Create("cert.pem", "key.pem");      // at start
//   absl::StatusOr<std::unique_ptr<TlsSession>> tls = TlsSession::Create((*certs)->Current());
//   (*tls)->Feed(received);
//   while ((n = (*tls)->Read(scratch)).ok() && *n > 0) rtmp.Receive(scratch.first(*n), ...);
//   (*tls)->Write(rtmp.output());   // once handshake_done()
//   (*tls)->TakeOutput(&sending);   // then send `sending`
//
// The client (uringest-push publishing to rtmps://host:port/app/name) is the same loop
// after a first Read() with nothing fed, which puts the ClientHello in the output:
//
//   absl::StatusOr<std::shared_ptr<const TlsContext>> ctx =
//       TlsContext::Client(/*verify=*/!insecure, ca_file);   // at start
//   absl::StatusOr<std::unique_ptr<TlsSession>> tls = TlsSession::CreateClient(*ctx, host);
//   (*tls)->Read(scratch);          // returns 0; the ClientHello waits in the output
//   (*tls)->TakeOutput(&sending);   // send it, then Feed() / Read() as above
//
// kTLS is not used: records are decrypted here. (kTLS receive would let io_uring receive
// plaintext, but taking over needs the traffic keys and record sequence numbers out of
// OpenSSL at a record boundary of the socket's stream; see README.md, "RTMPS".)
// DescribeKtls() says what the kernel and OpenSSL offer, for the start-up log.

#ifndef URINGEST_ENGINE_TLS_H_
#define URINGEST_ENGINE_TLS_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/internal/mutex.h"

struct ssl_ctx_st;
struct ssl_st;
struct bio_st;

namespace uringest::engine {

// The first byte of a TLS connection: a handshake record (ClientHello). A plain RTMP
// client starts with C0, the version byte 0x03.
inline constexpr uint8_t kTlsHandshakeRecord = 0x16;
// TLS's largest record plaintext: what one Read() can return at most.
inline constexpr size_t kTlsMaxRecordPlaintext = 16384;

// An SSL_CTX, immutable once made: a server's certificate chain and private key (Load),
// or a client's trust settings (Client).
//
// Thread safety: shards make sessions from one TlsContext at once (SSL_new on a shared
// SSL_CTX is thread-safe); a session keeps its context alive.
class TlsContext {
 public:
  // Server side. Loads PEM files: the chain (leaf first) and the key, which must match.
  static absl::StatusOr<std::shared_ptr<const TlsContext>> Load(const std::string& cert_file,
                                                                const std::string& key_file);
  // Client side, TLS 1.2 or later. With `verify`, the server's certificate must chain to
  // the CA certificates in the PEM file `ca_file`, or to the system's trust store if it is
  // empty, and name the host given to TlsSession::CreateClient(). Without it (the relay's
  // --insecure) any certificate is accepted. An unreadable `ca_file` is an error naming it.
  static absl::StatusOr<std::shared_ptr<const TlsContext>> Client(bool verify,
                                                                  const std::string& ca_file = "");
  explicit TlsContext(ssl_ctx_st* ctx) : ctx_(ctx) {}  // takes ownership
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;
  ~TlsContext();

  ssl_ctx_st* get() const { return ctx_; }
  // Whether sessions check the peer's certificate (a Client() made with `verify`).
  bool verifies_peer() const;

 private:
  ssl_ctx_st* const ctx_;
};

// The certificate in force, replaced by Reload() (SIGHUP).
//
// Thread safety: thread-safe. Sessions made before a reload keep the context they were
// made with.
class TlsCertificates {
 public:
  static absl::StatusOr<std::unique_ptr<TlsCertificates>> Create(std::string cert_file,
                                                                 std::string key_file);
  // The context new connections use.
  std::shared_ptr<const TlsContext> Current() const;
  // Re-reads the files; on error the certificate loaded before stays, and the error says
  // why.
  absl::Status Reload();

  const std::string& cert_file() const { return cert_file_; }
  const std::string& key_file() const { return key_file_; }

 private:
  TlsCertificates(std::string cert_file, std::string key_file)
      : cert_file_(std::move(cert_file)), key_file_(std::move(key_file)) {}
  const std::string cert_file_;
  const std::string key_file_;
  mutable internal::Mutex mu_;
  std::shared_ptr<const TlsContext> current_ ABSL_GUARDED_BY(mu_);
};

// One connection's TLS, either side, over memory BIOs. Memory stays bounded as long as
// the caller reads after every Feed() until Read() returns 0 (what is left inside is at
// most one partial record) and sends what TakeOutput() gives before asking for more.
//
// Thread safety: one thread at a time (its shard's).
class TlsSession {
 public:
  // The server side of an accepted connection. REQUIRES: `context` came from Load().
  static absl::StatusOr<std::unique_ptr<TlsSession>> Create(
      std::shared_ptr<const TlsContext> context);
  // The client side of a connection to `host`, a DNS name or an IP literal (v4, or v6 with
  // or without brackets) as in the URL. A name goes in the ClientHello (SNI); if `context`
  // verifies, the certificate must match the name, or the address for an IP literal.
  // Nothing is sent until the first Read(), which starts the handshake.
  // REQUIRES: `context` came from TlsContext::Client().
  static absl::StatusOr<std::unique_ptr<TlsSession>> CreateClient(
      std::shared_ptr<const TlsContext> context, const std::string& host);
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;
  ~TlsSession();

  // Ciphertext that arrived, in any split.
  void Feed(std::span<const uint8_t> ciphertext);
  // Runs the handshake and decrypts into `out`: the plaintext bytes written, 0 when more
  // ciphertext is needed (or the peer sent close_notify), or an error (a bad record, a
  // failed handshake: TakeOutput() may then hold an alert worth sending). A client's
  // rejected certificate gives "TLS handshake failed: certificate verify failed: " and
  // the reason ("self-signed certificate", "hostname mismatch", ...).
  absl::StatusOr<size_t> Read(std::span<uint8_t> out);
  // Encrypts `plaintext` into the output. REQUIRES: handshake_done().
  absl::Status Write(std::span<const uint8_t> plaintext);
  // Queues close_notify, the orderly end of the session, after what is in the output.
  // The peer's close_notify is not waited for.
  // Only once, and only where one can go: after the handshake, and not after an error.
  void Shutdown();
  // Whether Shutdown() would queue a close_notify now.
  bool can_shut_down() const { return handshake_done() && !failed_ && !shutdown_; }
  // Ciphertext waiting to be sent.
  size_t pending_output() const;
  // Appends the waiting ciphertext to *out; the session no longer holds it.
  void TakeOutput(std::vector<uint8_t>* out);

  bool handshake_done() const;
  bool peer_closed() const { return peer_closed_; }  // close_notify came
  // "TLSv1.3 TLS_AES_256_GCM_SHA384" once the handshake is done.
  std::string Describe() const;

 private:
  TlsSession(std::shared_ptr<const TlsContext> context, ssl_st* ssl, bio_st* rbio, bio_st* wbio)
      : context_(std::move(context)), ssl_(ssl), rbio_(rbio), wbio_(wbio) {}
  // An SSL over two fresh memory BIOs, in neither the accept nor the connect state.
  static absl::StatusOr<std::unique_ptr<TlsSession>> New(std::shared_ptr<const TlsContext> context);
  // Read()'s error for a failed SSL_read, from OpenSSL's error queue (emptied).
  absl::Status ReadError() const;

  const std::shared_ptr<const TlsContext> context_;
  ssl_st* const ssl_;   // owns both BIOs
  bio_st* const rbio_;  // ciphertext in
  bio_st* const wbio_;  // ciphertext out
  bool peer_closed_ = false;
  bool failed_ = false;    // a fatal error: no more records, close_notify included
  bool shutdown_ = false;  // close_notify queued
};

// What kTLS would need and what is there, for the start-up log: whether the kernel takes
// the "tls" ULP (tried on a loopback connection) and whether OpenSSL was built with it.
std::string DescribeKtls();

}  // namespace uringest::engine

#endif  // URINGEST_ENGINE_TLS_H_
