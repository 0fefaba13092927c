#include "engine/tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/opensslv.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
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

bool IsIpLiteral(const std::string& host) {
  in6_addr address;  // big enough for either
  return inet_pton(AF_INET, host.c_str(), &address) == 1 ||
         inet_pton(AF_INET6, host.c_str(), &address) == 1;
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

absl::StatusOr<std::shared_ptr<const TlsContext>> TlsContext::Client(bool verify,
                                                                     const std::string& ca_file) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) return TlsError("SSL_CTX_new", "out of memory");
  auto context = std::make_shared<const TlsContext>(ctx);
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (!verify) {
    // OpenSSL still checks the chain, but only to report it: the handshake goes on.
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    return context;
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  if (!ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr) != 1) {
      return TlsError(absl::StrCat("CA file ", ca_file), "unreadable");
    }
  } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
    return TlsError("the system's CA certificates", "unreadable");
  }
  return context;
}

bool TlsContext::verifies_peer() const {
  return (SSL_CTX_get_verify_mode(ctx_) & SSL_VERIFY_PEER) != 0;
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

absl::StatusOr<std::unique_ptr<TlsSession>> TlsSession::New(
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
  return std::unique_ptr<TlsSession>(new TlsSession(std::move(context), ssl, rbio, wbio));
}

absl::StatusOr<std::unique_ptr<TlsSession>> TlsSession::Create(
    std::shared_ptr<const TlsContext> context) {
  absl::StatusOr<std::unique_ptr<TlsSession>> session = New(std::move(context));
  if (session.ok()) SSL_set_accept_state((*session)->ssl_);
  return session;
}

absl::StatusOr<std::unique_ptr<TlsSession>> TlsSession::CreateClient(
    std::shared_ptr<const TlsContext> context, const std::string& host) {
  assert(SSL_CTX_get_ssl_method(context->get()) == TLS_client_method());
  // URLs bracket IPv6 literals (rtmps://[::1]:443/...); certificates and inet_pton don't.
  std::string name = host;
  if (name.size() >= 2 && name.front() == '[' && name.back() == ']') {
    name = name.substr(1, name.size() - 2);
  }
  if (name.empty()) return absl::InvalidArgumentError("TLS client: no host to connect to");
  absl::StatusOr<std::unique_ptr<TlsSession>> session = New(std::move(context));
  if (!session.ok()) return session;
  SSL* ssl = (*session)->ssl_;
  SSL_set_connect_state(ssl);
  const bool ip = IsIpLiteral(name);
  // SNI names hosts only: RFC 6066, section 3, forbids IP literals in it.
  if (!ip && SSL_set_tlsext_host_name(ssl, name.c_str()) != 1) {
    return TlsError(absl::StrCat("TLS server name ", name), "rejected");
  }
  if ((*session)->context_->verifies_peer()) {
    // A certificate names an address in an IP SAN, never in a DNS one, so the two are
    // checked apart. "*.example.com" matches, "f*.example.com" doesn't (as curl does).
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    const int set = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str())
                       : SSL_set1_host(ssl, name.c_str());
    if (set != 1) return TlsError(absl::StrCat("TLS peer name ", name), "invalid");
  }
  return session;
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
      return ReadError();
  }
}

absl::Status TlsSession::ReadError() const {
  // OpenSSL's own line for a rejected certificate, "certificate verify failed", doesn't
  // say why; the verify result does. It is only looked at when that was the error: a
  // session that doesn't verify has a result too, which failed nothing.
  const unsigned long first = ERR_peek_error();
  const long verify = SSL_get_verify_result(ssl_);
  if (ERR_GET_LIB(first) == ERR_LIB_SSL &&
      ERR_GET_REASON(first) == SSL_R_CERTIFICATE_VERIFY_FAILED && verify != X509_V_OK) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat("TLS handshake failed: certificate verify failed: ",
                     X509_verify_cert_error_string(verify)));
  }
  return TlsError(handshake_done() ? "TLS" : "TLS handshake failed", "protocol error");
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
  // 0: close_notify is in the output and the peer's is still to come, which neither side
  // waits for; 1: the peer's came first. Either way the alert is queued.
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
