#include "engine/tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/opensslv.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace uringest::engine {
namespace {

// OpenSSL's error queue (per thread) as one line, emptied; `fallback` if it is empty.
std::string DrainErrors(const std::string& fallback) {
  std::string text;
  char line[256];
  while (const unsigned long e = ERR_get_error()) {
    ERR_error_string_n(e, line, sizeof(line));
    absl::StrAppend(&text, text.empty() ? "" : "; ", line);
  }
  return text.empty() ? fallback : text;
}

absl::Status TlsError(const std::string& what, const std::string& fallback) {
  return absl::InvalidArgumentError(absl::StrCat(what, ": ", DrainErrors(fallback)));
}

}  // namespace

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

absl::StatusOr<std::shared_ptr<const TlsContext>> TlsContext::Load(const std::string& cert_file,
                                                                   const std::string& key_file) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) return TlsError("SSL_CTX_new", "out of memory");
  auto context = std::make_shared<const TlsContext>(ctx);
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // Renegotiation is a way to make the server spend CPU; publishers never need it.
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // Idle connections give their read and write buffers back (about 34 KiB each).
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1) {
    return TlsError(absl::StrCat("--tls-cert ", cert_file), "unreadable");
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return TlsError(absl::StrCat("--tls-key ", key_file), "unreadable");
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return TlsError(absl::StrCat("--tls-key ", key_file, " does not match --tls-cert ", cert_file),
                    "mismatch");
  }
  return context;
}

absl::StatusOr<std::unique_ptr<TlsCertificates>> TlsCertificates::Create(std::string cert_file,
                                                                         std::string key_file) {
  auto certs = std::unique_ptr<TlsCertificates>(
      new TlsCertificates(std::move(cert_file), std::move(key_file)));
  if (absl::Status s = certs->Reload(); !s.ok()) return s;
  return certs;
}

std::shared_ptr<const TlsContext> TlsCertificates::Current() const {
  internal::MutexLock lock(&mu_);
  return current_;
}

absl::Status TlsCertificates::Reload() {
  absl::StatusOr<std::shared_ptr<const TlsContext>> context =
      TlsContext::Load(cert_file_, key_file_);
  if (!context.ok()) return context.status();
  internal::MutexLock lock(&mu_);
  current_ = *std::move(context);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<TlsSession>> TlsSession::Create(
    std::shared_ptr<const TlsContext> context) {
  ERR_clear_error();
  SSL* ssl = SSL_new(context->get());
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  if (ssl == nullptr || rbio == nullptr || wbio == nullptr) {
    SSL_free(ssl);
    BIO_free(rbio);
    BIO_free(wbio);
    return TlsError("TLS session", "out of memory");
  }
  // An empty input BIO means "wait for more", not end of stream.
  BIO_set_mem_eof_return(rbio, -1);
  SSL_set_bio(ssl, rbio, wbio);
  SSL_set_accept_state(ssl);
  return std::unique_ptr<TlsSession>(new TlsSession(std::move(context), ssl, rbio, wbio));
}

TlsSession::~TlsSession() { SSL_free(ssl_); }

void TlsSession::Feed(std::span<const uint8_t> ciphertext) {
  // A memory BIO takes everything (it grows); Read() drains it.
  while (!ciphertext.empty()) {
    const int chunk = int(std::min<size_t>(ciphertext.size(), 1 << 30));
    const int n = BIO_write(rbio_, ciphertext.data(), chunk);
    if (n <= 0) return;  // out of memory: the handshake or next record then fails
    ciphertext = ciphertext.subspan(size_t(n));
  }
}

absl::StatusOr<size_t> TlsSession::Read(std::span<uint8_t> out) {
  if (peer_closed_ || out.empty()) return 0;
  ERR_clear_error();
  const int n = SSL_read(ssl_, out.data(), int(std::min<size_t>(out.size(), 1 << 30)));
  if (n > 0) return size_t(n);
  switch (SSL_get_error(ssl_, n)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:  // never with a memory BIO; harmless
      return 0;
    case SSL_ERROR_ZERO_RETURN:
      peer_closed_ = true;
      return 0;
    default:
      failed_ = true;
      return TlsError(handshake_done() ? "TLS" : "TLS handshake failed", "protocol error");
  }
}

absl::Status TlsSession::Write(std::span<const uint8_t> plaintext) {
  ERR_clear_error();
  while (!plaintext.empty()) {
    const int chunk = int(std::min<size_t>(plaintext.size(), 1 << 30));
    const int n = SSL_write(ssl_, plaintext.data(), chunk);
    if (n <= 0) {
      failed_ = true;
      return TlsError("TLS write", "failed");
    }
    plaintext = plaintext.subspan(size_t(n));
  }
  return absl::OkStatus();
}

void TlsSession::Shutdown() {
  if (!can_shut_down()) return;
  shutdown_ = true;
  ERR_clear_error();
  // 0: close_notify is in the output and the peer's is still to come, which the server
  // doesn't wait for; 1: the peer's came first. Either way the alert is queued.
  SSL_shutdown(ssl_);
  ERR_clear_error();
}

size_t TlsSession::pending_output() const { return BIO_ctrl_pending(wbio_); }

void TlsSession::TakeOutput(std::vector<uint8_t>* out) {
  const size_t pending = pending_output();
  if (pending == 0) return;
  const size_t at = out->size();
  out->resize(at + pending);
  const int n = BIO_read(wbio_, out->data() + at, int(pending));
  out->resize(at + size_t(std::max(n, 0)));
}

bool TlsSession::handshake_done() const { return SSL_is_init_finished(ssl_) == 1; }

std::string TlsSession::Describe() const {
  if (!handshake_done()) return "TLS handshake not done";
  return absl::StrCat(SSL_get_version(ssl_), " ", SSL_get_cipher_name(ssl_));
}

namespace {

// Whether the kernel takes the "tls" upper-layer protocol on a TCP socket: tried on a
// loopback connection (the ULP can only be set on an established socket), which also
// loads the module if the kernel has it as one. Empty if it does, else why not.
std::string KernelTlsUnavailable() {
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int server = -1;
  std::string why = "no loopback socket to try it on";
  sockaddr_in addr{.sin_family = AF_INET, .sin_port = 0, .sin_addr = {htonl(INADDR_LOOPBACK)}};
  socklen_t length = sizeof(addr);
  if (listener >= 0 && client >= 0 &&
      bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      listen(listener, 1) == 0 &&
      getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &length) == 0 &&
      connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      (server = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC)) >= 0) {
    why = setsockopt(server, IPPROTO_TCP, TCP_ULP, "tls", 3) == 0
              ? ""
              : absl::StrCat("TCP_ULP \"tls\": ", strerror(errno));
  }
  for (int fd : {server, client, listener}) {
    if (fd >= 0) close(fd);
  }
  return why;
}

}  // namespace

std::string DescribeKtls() {
  const std::string kernel = KernelTlsUnavailable();
#if defined(SSL_OP_ENABLE_KTLS) && !defined(OPENSSL_NO_KTLS)
  const char* openssl = "OpenSSL " OPENSSL_VERSION_STR " has it";
#else
  const char* openssl = "this OpenSSL was built without it";
#endif
  return absl::StrCat(
      "kTLS: not used (records are decrypted on the shard threads); kernel: ",
      kernel.empty() ? "offers it" : absl::StrCat("doesn't offer it (", kernel, ")"), "; ",
      openssl);
}

}  // namespace uringest::engine
