#include "control/control_server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <pthread.h>

#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "consumer/stat_sampler.h"
#include "consumer/stat_table.h"
#include "control/metrics_page.h"
#include "control/process_stats.h"
#include "engine/server.h"
#include "spdlog/spdlog.h"

namespace uringest::control {
namespace {

constexpr std::string_view kStreams = "/v1/streams";
constexpr std::string_view kKick = "/kick";
constexpr size_t kMemoryPerConnection = 64 * 1024;  // a request's headers must fit
// A sample older than this means the sampler is stuck or the ring is gone.
constexpr absl::Duration kStale = absl::Seconds(3);
constexpr double kMaxBanSeconds = 365.0 * 24 * 3600;

Reply Json(int status, std::string body) {
  return Reply{.status = status, .body = std::move(body) + "\n"};
}

Reply Error(int status, std::string_view message) {
  return Json(status, absl::StrCat("{\"error\":", consumer::JsonString(message), "}"));
}

std::string Sha256(std::string_view s) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof(digest));
}

void LogFromMhd(void* /*cls*/, const char* format, va_list args) {
  char line[512];
  std::vsnprintf(line, sizeof(line), format, args);
  std::string text(line);
  while (!text.empty() && text.back() == '\n') text.pop_back();
  spdlog::warn("http: {}", text);
}

}  // namespace

// Samples the ring once a second; the latest table (bitrates over the second before it)
// is what /metrics and /v1/streams show.
struct ControlServer::Sampler {
  struct Snapshot {
    consumer::StatTable table;
    absl::Time taken;
  };

  explicit Sampler(std::unique_ptr<consumer::StatSampler> sampler) : sampler_(std::move(sampler)) {
    previous_ = sampler_->Sample();
    Publish(consumer::BuildStatTable(nullptr, previous_));
    thread_ = std::thread([this] { Run(); });
  }
  ~Sampler() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  std::shared_ptr<const Snapshot> Latest() const {
    std::lock_guard<std::mutex> lock(mu_);
    return latest_;
  }

 private:
  void Run() {
    pthread_setname_np(pthread_self(), "http-sampler");
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_; })) {
      lock.unlock();
      consumer::StatSample current = sampler_->Sample();
      Publish(consumer::BuildStatTable(&previous_, current));
      previous_ = std::move(current);
      lock.lock();
    }
  }
  void Publish(consumer::StatTable table) {
    auto snapshot = std::make_shared<const Snapshot>(Snapshot{std::move(table), absl::Now()});
    std::lock_guard<std::mutex> lock(mu_);
    latest_ = std::move(snapshot);
  }

  std::unique_ptr<consumer::StatSampler> sampler_;
  consumer::StatSample previous_;  // the sampler's thread only
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::shared_ptr<const Snapshot> latest_;
  std::thread thread_;
};

namespace {

// libmicrohttpd's request callback: it runs once when the headers are in (we say
// "go on"), once per piece of body (discarded: no endpoint takes one) and once at the end,
// when the answer is queued.
MHD_Result OnRequest(void* cls, MHD_Connection* connection, const char* url, const char* method,
                     const char* /*version*/, const char* /*upload_data*/, size_t* upload_data_size,
                     void** state) {
  static int started;
  if (*state == nullptr) {
    *state = &started;
    return MHD_YES;
  }
  if (*upload_data_size != 0) {
    *upload_data_size = 0;
    return MHD_YES;
  }
  const char* authorization =
      MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
  const char* ban = MHD_lookup_connection_value(connection, MHD_GET_ARGUMENT_KIND, "ban");
  Reply reply = static_cast<ControlServer*>(cls)->Handle(
      method, url, authorization != nullptr ? authorization : "", ban);
  MHD_Response* response =
      MHD_create_response_from_buffer(reply.body.size(), reply.body.data(), MHD_RESPMEM_MUST_COPY);
  if (response == nullptr) return MHD_NO;
  MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, reply.content_type.c_str());
  MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  if (!reply.allow.empty()) {
    MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, reply.allow.c_str());
  }
  if (reply.status == MHD_HTTP_UNAUTHORIZED) {
    MHD_add_response_header(response, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
  }
  const MHD_Result queued = MHD_queue_response(connection, unsigned(reply.status), response);
  MHD_destroy_response(response);
  return queued;
}

}  // namespace

ControlServer::ControlServer(const ControlOptions& options, engine::Server* server)
    : options_(options), server_(server) {}

ControlServer::~ControlServer() {
  if (daemon_ != nullptr) MHD_stop_daemon(static_cast<MHD_Daemon*>(daemon_));
}

absl::StatusOr<std::unique_ptr<ControlServer>> ControlServer::Start(const ControlOptions& options,
                                                                    engine::Server* server) {
  auto control = std::unique_ptr<ControlServer>(new ControlServer(options, server));
  absl::StatusOr<std::unique_ptr<consumer::StatSampler>> sampler =
      consumer::StatSampler::Open(server->options().ring_name);
  if (!sampler.ok()) return sampler.status();
  control->sampler_ = std::make_unique<Sampler>(*std::move(sampler));

  sockaddr_storage ss{};
  auto* in4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
  unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
  if (inet_pton(AF_INET, options.host.c_str(), &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons(options.port);
  } else if (inet_pton(AF_INET6, options.host.c_str(), &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(options.port);
    flags |= MHD_USE_IPv6;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--http-listen: '", options.host, "' is not an IP address"));
  }
  MHD_Daemon* daemon =
      MHD_start_daemon(flags, options.port, nullptr, nullptr, &OnRequest, control.get(),
                       // The logger first, so that every message goes through it.
                       MHD_OPTION_EXTERNAL_LOGGER, &LogFromMhd, nullptr, MHD_OPTION_SOCK_ADDR,
                       reinterpret_cast<sockaddr*>(&ss), MHD_OPTION_CONNECTION_LIMIT,
                       unsigned(options.max_connections), MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                       unsigned(options.max_connections_per_ip), MHD_OPTION_CONNECTION_TIMEOUT,
                       unsigned(absl::ToInt64Seconds(options.timeout)),
                       MHD_OPTION_CONNECTION_MEMORY_LIMIT, kMemoryPerConnection, MHD_OPTION_END);
  if (daemon == nullptr) {
    return absl::UnavailableError(absl::StrCat("--http-listen: can't listen on ", options.host, ":",
                                               options.port, " (in use?)"));
  }
  control->daemon_ = daemon;
  const MHD_DaemonInfo* info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
  const uint16_t port = info != nullptr ? info->port : options.port;
  control->address_ = (flags & MHD_USE_IPv6) != 0 ? absl::StrCat("[", options.host, "]:", port)
                                                  : absl::StrCat(options.host, ":", port);
  return control;
}

Reply ControlServer::Handle(std::string_view method, std::string_view path,
                            std::string_view authorization, const char* query_ban) {
  const bool get = method == "GET" || method == "HEAD";
  auto only = [&](bool ok, const char* allow, auto answer) -> Reply {
    if (ok) return answer();
    Reply r = Error(405, absl::StrCat(std::string(method), " is not allowed here"));
    r.allow = allow;
    return r;
  };
  if (path == "/metrics") return only(get, "GET, HEAD", [&] { return Metrics(); });
  if (path == "/healthz") {
    return only(get, "GET, HEAD", [] { return Json(200, "{\"status\":\"ok\"}"); });
  }
  if (path == "/readyz") return only(get, "GET, HEAD", [&] { return Ready(); });
  if (path == "/v1/drain") {
    return only(get || method == "POST", "GET, HEAD, POST",
                [&] { return Drain(method == "POST", authorization); });
  }
  if (path == kStreams || path == absl::StrCat(std::string(kStreams), "/")) {
    return only(get, "GET, HEAD", [&] { return Streams(); });
  }
  if (path.starts_with(absl::StrCat(std::string(kStreams), "/"))) {
    std::string_view key = path.substr(kStreams.size() + 1);
    if (key.ends_with(kKick)) {
      key.remove_suffix(kKick.size());
      return only(method == "POST", "POST", [&] { return Kick(key, authorization, query_ban); });
    }
    return only(get, "GET, HEAD", [&] { return Stream(key); });
  }
  return Error(404, absl::StrCat("no such endpoint: ", std::string(path)));
}

Reply ControlServer::Metrics() {
  std::shared_ptr<const Sampler::Snapshot> snapshot = sampler_->Latest();
  return Reply{.content_type = "text/plain; version=0.0.4; charset=utf-8",
               .body = RenderMetrics({.metrics = &server_->metrics(),
                                      .table = &snapshot->table,
                                      .process = ReadProcessStats(),
                                      .backend = server_->backend(),
                                      .version = URINGEST_VERSION})};
}

Reply ControlServer::Streams() {
  std::string body = consumer::RenderStatJson(sampler_->Latest()->table);
  body.pop_back();  // Json() adds the newline back
  return Json(200, std::move(body));
}

Reply ControlServer::Stream(std::string_view key) {
  std::shared_ptr<const Sampler::Snapshot> snapshot = sampler_->Latest();
  for (const consumer::StreamRow& row : snapshot->table.streams) {
    if (row.name == key) return Json(200, consumer::RenderStreamJson(row));
  }
  return Error(404, absl::StrCat(std::string(key), " is not publishing"));
}

bool ControlServer::Authorized(std::string_view authorization) const {
  constexpr std::string_view kBearer = "Bearer ";
  if (!authorization.starts_with(kBearer)) return false;
  // Digests of equal length, compared in constant time: neither the token's bytes nor
  // its length leak through timing.
  const std::string given = Sha256(authorization.substr(kBearer.size()));
  const std::string wanted = Sha256(options_.token);
  return CRYPTO_memcmp(given.data(), wanted.data(), given.size()) == 0;
}

std::optional<Reply> ControlServer::RefusePost(std::string_view authorization) const {
  if (options_.token.empty()) {
    return Error(403, "this server takes no changes over HTTP: start it with --http-token");
  }
  if (!Authorized(authorization)) {
    return Error(401, "wrong or missing token (Authorization: Bearer TOKEN)");
  }
  return std::nullopt;
}

Reply ControlServer::Drain(bool start, std::string_view authorization) {
  bool started = false;
  if (start) {
    if (std::optional<Reply> refused = RefusePost(authorization)) return *std::move(refused);
    started = server_->Drain("POST /v1/drain");
  }
  const engine::Server::DrainProgress p = server_->drain_progress();
  if (start && !p.draining) return Error(409, "the server is shutting down");
  std::string body = absl::StrCat("{\"draining\":", p.draining ? "true" : "false");
  if (start) absl::StrAppend(&body, ",\"started_now\":", started ? "true" : "false");
  if (p.draining) {
    absl::StrAppend(
        &body, ",\"started\":", absl::ToUnixSeconds(p.started),
        ",\"seconds\":", int64_t(absl::ToDoubleSeconds(absl::Now() - p.started)),
        ",\"timeout_s\":", absl::ToInt64Seconds(p.timeout), ",\"connections\":", p.connections,
        ",\"asked_to_reconnect_open\":", p.asked_open, ",\"cannot_be_asked_open\":", p.unasked_open,
        ",\"reconnect_requests\":", p.reconnect_requests,
        ",\"closed_at_timeout\":", p.closed_at_timeout);
  }
  body += "}";
  return Json(start && started ? 202 : 200, std::move(body));
}

Reply ControlServer::Kick(std::string_view key, std::string_view authorization,
                          const char* query_ban) {
  if (std::optional<Reply> refused = RefusePost(authorization)) return *std::move(refused);
  double ban_s = 0;
  if (query_ban != nullptr &&
      (!absl::SimpleAtod(query_ban, &ban_s) || !(ban_s >= 0) || ban_s > kMaxBanSeconds)) {
    return Error(400,
                 absl::StrCat("ban=", query_ban, ": want seconds, 0 to ", int64_t(kMaxBanSeconds)));
  }
  if (key.find('/') == std::string_view::npos) {
    return Error(400, "want /v1/streams/APP/NAME/kick");
  }
  const engine::Server::KickResult result = server_->Kick(std::string(key), absl::Seconds(ban_s));
  if (!result.kicked && ban_s == 0) {
    return Error(404, absl::StrCat(std::string(key), " is not publishing"));
  }
  return Json(200, absl::StrCat("{\"stream\":", consumer::JsonString(key), ",\"kicked\":",
                                result.kicked ? "true" : "false", ",\"banned_s\":", ban_s, "}"));
}

Reply ControlServer::Ready() {
  std::string why;
  if (!server_->Ready(&why)) {
    return Json(503, absl::StrCat("{\"ready\":false,\"reason\":", consumer::JsonString(why), "}"));
  }
  std::shared_ptr<const Sampler::Snapshot> snapshot = sampler_->Latest();
  if (snapshot->table.server_state != "live") {
    return Json(503, absl::StrCat("{\"ready\":false,\"reason\":",
                                  consumer::JsonString(
                                      absl::StrCat("the ring is ", snapshot->table.server_state)),
                                  "}"));
  }
  if (absl::Now() - snapshot->taken > kStale) {
    return Json(503, "{\"ready\":false,\"reason\":\"the ring has not been sampled lately\"}");
  }
  return Json(200, "{\"ready\":true}");
}

}  // namespace uringest::control
