// uringestd: the RTMP ingest server. Encoders publish to it; every frame goes into the
// shared-memory ring that uringest-cat, uringest-stat and other consumers read.
//
//   uringestd                                   # 0.0.0.0:1935, ring "uringest", a shard per CPU
//   uringestd --listen 127.0.0.1:19350 --ring test --shards 2 --log-level debug
//   uringestd --config /etc/uringest.ini        # the same flags, as "name = value" lines
//   uringestd --auth-file /etc/uringest/keys --ring-group video   # keys; consumers in "video"
//   uringestd --on-publish http://127.0.0.1:8080/auth --on-publish-timeout 2
//   uringestd --tls-cert cert.pem --tls-key key.pem   # RTMPS on 0.0.0.0:1936 as well
//   uringestd --http-listen 127.0.0.1:9935 --http-token-file /etc/uringest/token
//                                               # /metrics, /v1/streams, kick, /readyz
//   uringestd --on-publish-done http://127.0.0.1:8080/done   # told when a publish ends
//   uringestd --proxy-protocol --trusted-proxies 10.0.0.0/24 --on-duplicate takeover
//                                               # behind HAProxy (send-proxy-v2), in a fleet
//
// SIGINT/SIGTERM: graceful shutdown (streams end cleanly, the ring is removed); a second
// signal exits at once. SIGHUP: re-read --auth-file (a bad file keeps the old keys) and
// the TLS certificate (a bad one keeps the old one). SIGUSR1 (or POST /v1/drain): drain
// the node, then exit once no connection is left.

#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "control/control_server.h"
#include "engine/server.h"
#include "engine/status_text.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

namespace {

using uringest::control::ControlOptions;
using uringest::control::ControlServer;
using uringest::engine::Backend;
using uringest::engine::OnDuplicate;
using uringest::engine::Placement;
using uringest::engine::ServerOptions;

// "HOST:PORT", "[IPV6]:PORT" or ":PORT", for `flag` (whose usual port is `example`).
std::string ParseListen(const std::string& value, const char* flag, const char* example,
                        std::string* host_out, uint16_t* port_out) {
  const size_t colon = value.rfind(':');
  uint32_t port;
  if (colon == std::string::npos || !absl::SimpleAtoi(value.substr(colon + 1), &port) ||
      port > 65535) {
    return absl::StrCat(flag, " wants HOST:PORT, e.g. 0.0.0.0:", example);
  }
  std::string host = value.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  *host_out = host.empty() ? "0.0.0.0" : host;
  *port_out = uint16_t(port);
  return {};
}

void AddTlsFlags(CLI::App& app, ServerOptions* o, std::string* tls_listen) {
  app.add_option("--tls-listen", *tls_listen,
                 "Where encoders connect over RTMPS (TLS): HOST:PORT; on with --tls-cert")
      ->capture_default_str();
  app.add_option("--tls-cert", o->tls_cert,
                 "RTMPS certificate chain, PEM (leaf first); re-read on SIGHUP")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-key", o->tls_key, "RTMPS private key, PEM; re-read on SIGHUP")
      ->check(CLI::ExistingFile);
}

// A flag in seconds (a double) that sets an absl::Duration of the options.
CLI::Option* AddSeconds(CLI::App& app, const std::string& name, absl::Duration* out,
                        const std::string& help) {
  return app
      .add_option_function<double>(
          name, [out](double seconds) { *out = absl::Seconds(seconds); }, help)
      ->check(CLI::PositiveNumber)
      ->default_str(absl::StrCat(absl::ToDoubleSeconds(*out)));
}

// Running in a fleet, behind a load balancer.
void AddFleetFlags(CLI::App& app, ServerOptions* o) {
  app.add_flag("--proxy-protocol", o->proxy_protocol,
               "Every connection, on every listener (RTMPS too), begins with a PROXY protocol "
               "v1 or v2 header (HAProxy send-proxy[-v2], AWS NLB): its source address is the "
               "publisher's");
  app.add_option("--trusted-proxies", o->trusted_proxies,
                 "With --proxy-protocol: CIDR,... of the balancers that may connect (others are "
                 "refused); default: any");
  app.add_option("--drain-redirect", o->drain_redirect,
                 "A drain asks publishers to reconnect to this rtmp:// URL (its app, or theirs "
                 "appended); default: the address they used (the balancer's)");
  AddSeconds(app, "--drain-timeout", &o->drain_timeout,
             "A drain closes publishers still streaming after this long (those that can't "
             "follow a reconnect request)");
}

void AddAccessFlags(CLI::App& app, ServerOptions* o) {
  app.add_option("--auth-file", o->auth_file,
                 "Publish keys: 'app/name key' lines ('app/*' for any name); re-read on SIGHUP")
      ->check(CLI::ExistingFile);
  app.add_option("--on-publish", o->on_publish_url,
                 "HTTP hook POSTed call=publish&app&name&key&addr&port before each publish; "
                 "a 2xx answer allows it");
  app.add_option("--on-publish-done", o->on_publish_done_url,
                 "HTTP hook POSTed call=publish_done&app&name&addr&port&reason&duration_s&"
                 "bytes&frames when a publish ends, for any reason (retried 3 times)");
  AddSeconds(app, "--on-publish-timeout", &o->on_publish_timeout,
             "Seconds a hook has to answer (--on-publish: no answer refuses)");
  app.add_option("--ring-group", o->ring_group,
                 "Group (name or number) given the ring's shared memory (mode 0640), so "
                 "that consumers in it can read it");
}

// Where it listens, the ring, the shards, and what one node takes at once.
void AddServerFlags(CLI::App& app, ServerOptions* o, std::string* listen) {
  app.add_option("--listen", *listen, "Where encoders connect: HOST:PORT")->capture_default_str();
  app.add_option("--ring", o->ring_name, "Name of the shared-memory ring (/dev/shm/NAME.*)")
      ->capture_default_str();
  app.add_option("--shards", o->shards,
                 "Shard threads, each with its own io_uring (0: one per CPU)")
      ->capture_default_str();
  app.add_option("--ring-size", o->ring_size,
                 "Bytes of frame ring per shard, a power of two (e.g. 64MiB)")
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str();
  app.add_option("--max-connections", o->max_connections,
                 "Connections at once, all shards (0: no cap)")
      ->capture_default_str();
  app.add_option("--max-connections-per-ip", o->max_connections_per_ip,
                 "Connections at once from one address (0: no cap)")
      ->capture_default_str();
  app.add_option("--max-streams", o->max_published_streams,
                 "Streams published at once, all shards; a publish past it is refused (0: "
                 "--max-connections, at least 4096)")
      ->capture_default_str();
  AddSeconds(app, "--idle-timeout", &o->idle_timeout,
             "Seconds without a byte before a connection is closed");
  AddSeconds(app, "--publish-timeout", &o->publish_timeout,
             "Seconds a connection has, from connecting, to start publishing");
  AddSeconds(app, "--handshake-timeout", &o->handshake_timeout,
             "Seconds a connection has to finish the handshake");
}

// Which loop, which shard takes a connection, and what a second publisher of a name gets.
void AddPlacementFlags(CLI::App& app, ServerOptions* o) {
  std::map<std::string, Backend> backends{
      {"auto", Backend::kAuto}, {"io_uring", Backend::kIoUring}, {"epoll", Backend::kEpoll}};
  app.add_option("--backend", o->backend,
                 "io_uring, epoll, or auto (io_uring where the kernel allows)")
      ->transform(CLI::CheckedTransformer(backends).description(""))
      ->type_name("auto|io_uring|epoll")
      ->default_str("auto");
  std::map<std::string, Placement> placements{{"load", Placement::kLoad},
                                              {"reuseport", Placement::kReusePort}};
  app.add_option("--placement", o->placement,
                 "load: one acceptor gives each connection to the shard with the least ingress; "
                 "reuseport: the kernel spreads them by count")
      ->transform(CLI::CheckedTransformer(placements).description(""))
      ->type_name("load|reuseport")
      ->default_str("reuseport");
  std::map<std::string, OnDuplicate> duplicates{{"reject", OnDuplicate::kReject},
                                                {"takeover", OnDuplicate::kTakeover}};
  app.add_option("--on-duplicate", o->on_duplicate,
                 "A second publisher of a name: reject (NetStream.Publish.BadName) or takeover "
                 "(the older one is closed)")
      ->transform(CLI::CheckedTransformer(duplicates).description(""))
      ->type_name("reject|takeover")
      ->default_str("reject");
  app.add_flag("--pin-cpus", o->pin_cpus, "Pin shard k to CPU k");
}

// What one connection may make the server hold of the RTMP it sends.
void AddProtocolFlags(CLI::App& app, ServerOptions* o) {
  app.add_option("--chunk-size", o->connection.session.chunk_size,
                 "Chunk size announced to publishers (they send with it)")
      ->check(CLI::Range(128u, 0xFFFFFFu))
      ->capture_default_str();
  app.add_option("--max-message-size", o->connection.reader.max_message_size,
                 "Largest RTMP message accepted, bytes")
      ->transform(CLI::AsSizeValue(false))
      ->check(CLI::Range(1u, 16u << 20))
      ->default_str("16MiB");
  app.add_option("--max-partial-bytes", o->connection.reader.max_buffered_bytes,
                 "Bytes of partial messages one connection may hold")
      ->transform(CLI::AsSizeValue(false))
      ->default_str("64MiB");
  app.add_option("--max-assembly-memory", o->max_assembly_memory,
                 "Bytes of partial messages all connections of a shard may hold (0: no cap)")
      ->transform(CLI::AsSizeValue(false))
      ->default_str("512MiB");
  app.add_option("--max-chunk-streams", o->connection.reader.max_chunk_streams,
                 "Chunk streams one connection may use")
      ->check(CLI::Range(1u, 65599u))
      ->capture_default_str();
}

// The event loop's receive buffers and wake-ups.
void AddLoopFlags(CLI::App& app, ServerOptions* o) {
  app.add_option("--recv-buffers", o->loop.recv_buffers,
                 "Receive buffers per shard (io_uring provided buffers), a power of two")
      ->check([](const std::string& s) {
        uint32_t n;
        return absl::SimpleAtoi(s, &n) && n > 0 && n <= 32768 && (n & (n - 1)) == 0
                   ? std::string()
                   : std::string("must be a power of two up to 32768");
      })
      ->capture_default_str();
  app.add_option("--recv-buffer-size", o->loop.recv_buffer_size, "Bytes per receive buffer")
      ->transform(CLI::AsSizeValue(false))
      ->check(CLI::Range(4096u, 1u << 20))
      ->default_str("32KiB");
  app.add_option_function<uint32_t>(
         "--batch-wait-us", [o](uint32_t us) { o->loop.batch_wait = absl::Microseconds(us); },
         "io_uring: microseconds a busy shard lets completions gather before it wakes "
         "(fewer wake-ups per byte, at most this much added latency; 0: off)")
      ->check(CLI::Range(0u, 100000u))
      ->default_str(std::to_string(absl::ToInt64Microseconds(o->loop.batch_wait)));
}

// The HTTP control listener's flags (control_server.h).
struct HttpFlags {
  std::string listen;  // "": off
  std::string token;
  std::string token_file;
  ControlOptions options;
};

void AddHttpFlags(CLI::App& app, HttpFlags* http) {
  app.add_option("--http-listen", http->listen,
                 "HTTP control API and /metrics: HOST:PORT, e.g. 127.0.0.1:9935 (off by "
                 "default)");
  app.add_option("--http-token", http->token,
                 "Bearer token that POST requests (kick) need; without one they are refused. "
                 "Better in --config or --http-token-file than on the command line");
  app.add_option("--http-token-file", http->token_file,
                 "Read --http-token from FILE (its first line)")
      ->check(CLI::ExistingFile);
  app.add_option("--http-max-connections", http->options.max_connections,
                 "HTTP connections at once (each client: at most a quarter)")
      ->capture_default_str()
      ->check(CLI::Range(1u, 100000u));
}

// --http-listen and the token into http->options; an error message, or "".
std::string ResolveHttp(HttpFlags* http) {
  if (http->listen.empty()) return {};
  if (std::string error = ParseListen(http->listen, "--http-listen", "9935", &http->options.host,
                                      &http->options.port);
      !error.empty()) {
    return error;
  }
  http->options.max_connections_per_ip = std::max(1u, http->options.max_connections / 4);
  http->options.token = http->token;
  if (!http->token_file.empty()) {
    std::ifstream file(http->token_file);
    std::string line;
    std::getline(file, line);
    http->options.token = std::string(absl::StripAsciiWhitespace(line));
    if (http->options.token.empty()) {
      return absl::StrCat("--http-token-file ", http->token_file, ": no token in its first line");
    }
  }
  return {};
}

// Parses the command line (and a --config file) into *options; an exit status when the
// program ends here (--help: 0, a bad flag: 2), nothing to go on.
std::optional<int> ParseFlags(int argc, char** argv, ServerOptions* options, HttpFlags* http,
                              std::string* log_level) {
  std::string listen = "0.0.0.0:1935";
  std::string tls_listen = "0.0.0.0:1936";
  CLI::App app("uringestd: RTMP ingest server. Publishers' frames go to a shared-memory ring.",
               "uringestd");
  AddServerFlags(app, options, &listen);
  AddPlacementFlags(app, options);
  AddProtocolFlags(app, options);
  AddLoopFlags(app, options);
  app.add_option("--log-level", *log_level,
                 "How much to log: one line per connection event at info")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->capture_default_str();
  app.set_config("--config", "", "Read flags from FILE: one 'name = value' per line (INI/TOML)");
  app.allow_config_extras(
      false);  // an unknown name in the file is an error, as on the command line
  AddAccessFlags(app, options);
  AddTlsFlags(app, options, &tls_listen);
  AddHttpFlags(app, http);
  AddFleetFlags(app, options);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  for (std::string error :
       {ParseListen(listen, "--listen", "1935", &options->listen_host, &options->listen_port),
        ParseListen(tls_listen, "--tls-listen", "1936", &options->tls_listen_host,
                    &options->tls_listen_port),
        ResolveHttp(http)}) {
    if (error.empty()) continue;
    std::fprintf(stderr, "uringestd: %s\n", error.c_str());
    return 2;
  }
  return std::nullopt;
}

void ReloadAccess(uringest::engine::Server& server) {
  if (server.options().auth_file.empty()) {
    if (!server.tls_enabled()) spdlog::info("SIGHUP: no --auth-file to reload");
    return;
  }
  absl::StatusOr<size_t> rules = server.ReloadAccess();
  if (rules.ok()) {
    spdlog::info("SIGHUP: --auth-file reloaded, {} rules", *rules);
  } else {
    spdlog::error("SIGHUP: --auth-file not reloaded, the keys loaded before stay: {}",
                  uringest::engine::StatusText(rules.status()));
  }
}

void ReloadTls(uringest::engine::Server& server) {
  if (!server.tls_enabled()) return;
  if (absl::Status s = server.ReloadTls(); s.ok()) {
    spdlog::info("SIGHUP: TLS certificate reloaded from {}", server.options().tls_cert);
  } else {
    spdlog::error("SIGHUP: TLS certificate not reloaded, the one loaded before stays: {}",
                  uringest::engine::StatusText(s));
  }
}

// A drain's progress, every 5 s while it runs, and its end.
class DrainReporter {
 public:
  // Called about once a second.
  void Tick(const uringest::engine::Server& server) {
    const uringest::engine::Server::DrainProgress p = server.drain_progress();
    if (!p.draining) return;
    const absl::Time now = absl::Now();
    if (now < next_) return;
    next_ = now + absl::Seconds(5);
    spdlog::info(
        "drain: {} connections left after {:.0f} s ({} asked to reconnect and not gone yet, {} "
        "that can't be asked); {} reconnect requests sent; the rest are closed in {:.0f} s",
        p.connections, absl::ToDoubleSeconds(now - p.started), p.asked_open, p.unasked_open,
        p.reconnect_requests, std::max(0.0, absl::ToDoubleSeconds(p.started + p.timeout - now)));
  }
  void Done(const uringest::engine::Server& server) {
    const uringest::engine::Server::DrainProgress p = server.drain_progress();
    spdlog::info(
        "drain: complete after {:.1f} s: {} reconnect requests sent, {} connections closed at "
        "--drain-timeout; stopping",
        absl::ToDoubleSeconds(absl::Now() - p.started), p.reconnect_requests, p.closed_at_timeout);
  }

 private:
  absl::Time next_ = absl::InfinitePast();
};

// Waits for SIGINT/SIGTERM, shuts down gracefully; a second signal exits at once. SIGHUP
// reloads the auth file and the TLS certificate. SIGUSR1 starts a drain (as POST
// /v1/drain does); once a drain has emptied every shard, returns.
void ServeUntilSignalled(uringest::engine::Server& server, const sigset_t& signals) {
  int sig = 0;
  DrainReporter drain;
  const timespec tick{0, 200'000'000};
  for (;;) {
    sig = sigtimedwait(&signals, nullptr, &tick);
    if (sig == SIGHUP) {
      ReloadAccess(server);
      ReloadTls(server);
    } else if (sig == SIGUSR1) {
      if (!server.Drain("SIGUSR1")) spdlog::info("SIGUSR1: a drain is already under way");
    } else if (sig > 0) {
      break;
    }
    drain.Tick(server);
    if (server.drain_progress().draining && server.Stopped()) {
      drain.Done(server);
      return;
    }
  }
  spdlog::info("{}: shutting down (a second signal exits at once)", strsignal(sig));
  server.Shutdown();
  const timespec poll{0, 50'000'000};
  while (!server.Stopped()) {
    if (const int second = sigtimedwait(&signals, nullptr, &poll);
        second > 0 && second != SIGHUP && second != SIGUSR1) {
      spdlog::warn("second signal: exiting now");
      std::_Exit(1);
    }
  }
}

// Signals go to the main thread's sigwait, not to the shards.
sigset_t BlockSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  sigaddset(&signals, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return signals;
}

// Creates and starts the server, then serves until a signal ends it: the exit status.
int Run(const ServerOptions& options, const HttpFlags& http, const sigset_t& signals) {
  absl::StatusOr<std::unique_ptr<uringest::engine::Server>> server =
      uringest::engine::Server::Create(options);
  if (!server.ok()) {
    std::fprintf(stderr, "uringestd: %s\n",
                 std::string(uringest::engine::StatusText(server.status())).c_str());
    return 1;
  }
  if (!(*server)->backend_reason().empty()) {
    spdlog::warn("io_uring unavailable ({}): using the epoll backend", (*server)->backend_reason());
  } else if ((*server)->backend() == "io_uring") {
    spdlog::info("io_uring: {}", (*server)->io_uring().Describe());
  }
  if (absl::Status s = (*server)->Start(); !s.ok()) {
    std::fprintf(stderr, "uringestd: %s\n", std::string(uringest::engine::StatusText(s)).c_str());
    return 1;
  }
  std::printf("uringestd: listening on %s, ring '%s' (/dev/shm/%s.*), %u shards on %s\n",
              (*server)->listen_address().c_str(), options.ring_name.c_str(),
              options.ring_name.c_str(), (*server)->shard_count(), (*server)->backend().c_str());
  std::fflush(stdout);
  std::unique_ptr<ControlServer> control;
  if (!http.listen.empty()) {
    absl::StatusOr<std::unique_ptr<ControlServer>> started =
        ControlServer::Start(http.options, server->get());
    if (!started.ok()) {
      std::fprintf(stderr, "uringestd: %s\n",
                   std::string(uringest::engine::StatusText(started.status())).c_str());
      return 1;
    }
    control = *std::move(started);
    spdlog::info(
        "HTTP API: listening on {} ({})", control->address(),
        http.options.token.empty() ? "read-only: no --http-token" : "POST needs the --http-token");
  }
  ServeUntilSignalled(**server, signals);
  control.reset();  // before the server it reads
  server->reset();
  spdlog::info("stopped; ring '{}' removed", options.ring_name);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  ServerOptions options;
  HttpFlags http;
  std::string log_level = "info";
  if (std::optional<int> exit_status = ParseFlags(argc, argv, &options, &http, &log_level)) {
    return *exit_status;
  }
  spdlog::set_default_logger(spdlog::stderr_color_mt("uringestd"));
  spdlog::set_level(spdlog::level::from_str(log_level));
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  return Run(options, http, BlockSignals());
}
