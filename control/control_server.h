// control_server.h: uringestd's HTTP control listener (`--http-listen`): Prometheus
// metrics, the streams as JSON, kicking a publisher, health and readiness. Served by
// GNU libmicrohttpd on a thread of its own (never a shard's), with its own connection
// cap, per-client cap, memory cap and timeout. A second thread samples the ring once a
// second, so that bitrates are measured over a second and no request reads the ring.
//
//   GET  /metrics                        Prometheus text format (metrics_page.h)
//   GET  /v1/streams                     uringest-stat --json's document
//   GET  /v1/streams/{app}/{name}        one stream's object; 404 if it is not publishing
//   POST /v1/streams/{app}/{name}/kick   ends the publish; ?ban=S refuses the name S s
//   GET  /healthz                        200 while the process runs
//   GET  /readyz                         200 when every shard runs and the ring is live
//
// Mutating requests (POST) need `Authorization: Bearer TOKEN` matching --http-token
// (compared in constant time); without --http-token they are refused (403). Errors are
// JSON: {"error":"..."} with a 4xx status.
//
//   absl::StatusOr<std::unique_ptr<ControlServer>> http =
//       ControlServer::Start({.host = "127.0.0.1", .port = 9935, .token = token}, &server);
//   ... (*http)->address() ...
//
// Thread safety: Start() and the destructor on one thread; the server's requests run on
// the listener's thread.

#ifndef URINGEST_CONTROL_CONTROL_SERVER_H_
#define URINGEST_CONTROL_CONTROL_SERVER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace uringest::engine {
class Server;
}

namespace uringest::control {

struct ControlOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 9935;  // 0: any free port (tests)
  std::string token;     // "": POST requests are refused
  uint32_t max_connections = 64;
  uint32_t max_connections_per_ip = 16;
  absl::Duration timeout = absl::Seconds(10);  // an idle connection's
};

// An HTTP answer: a status, a content type and a body.
struct Reply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::string allow;  // for a 405: the methods the path takes
};

class ControlServer {
 public:
  // Binds and starts serving. `server` must be started and outlive the ControlServer.
  static absl::StatusOr<std::unique_ptr<ControlServer>> Start(const ControlOptions& options,
                                                              engine::Server* server);
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;
  ~ControlServer();

  // "127.0.0.1:9935", with the port the kernel chose for port 0.
  const std::string& address() const { return address_; }

  // Answers one request (the listener's thread calls it; tests may too). `authorization`
  // is the Authorization header ("" if none); `query_ban` the ?ban= value (nullptr if
  // none).
  Reply Handle(std::string_view method, std::string_view path, std::string_view authorization,
               const char* query_ban);

 private:
  struct Sampler;
  ControlServer(const ControlOptions& options, engine::Server* server);

  Reply Metrics();
  Reply Streams();
  Reply Stream(std::string_view key);
  Reply Kick(std::string_view key, std::string_view authorization, const char* query_ban);
  Reply Ready();
  // GET: the drain's progress; POST: starts one (Server::Drain).
  Reply Drain(bool start, std::string_view authorization);
  // Why a POST is refused (no token configured, a wrong one); nullopt: allowed.
  std::optional<Reply> RefusePost(std::string_view authorization) const;
  bool Authorized(std::string_view authorization) const;

  const ControlOptions options_;
  engine::Server* const server_;
  std::unique_ptr<Sampler> sampler_;
  void* daemon_ = nullptr;  // MHD_Daemon*
  std::string address_;
};

}  // namespace uringest::control

#endif  // URINGEST_CONTROL_CONTROL_SERVER_H_
