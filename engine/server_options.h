// server_options.h: everything uringestd's flags configure, with the defaults a new
// operator gets.

#ifndef URINGEST_ENGINE_SERVER_OPTIONS_H_
#define URINGEST_ENGINE_SERVER_OPTIONS_H_

#include <algorithm>
#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "engine/event_loop.h"
#include "engine/rtmp/server_connection.h"
#include "engine/stream_registry.h"

namespace uringest::engine {

enum class Backend { kAuto, kIoUring, kEpoll };
// How connections find their shard: by the kernel's SO_REUSEPORT hash (by count), or by
// one acceptor that hands each to the shard with the least ingress bytes/s.
enum class Placement { kLoad, kReusePort };

struct ServerOptions {
  std::string listen_host = "0.0.0.0";
  uint16_t listen_port = 1935;  // 0: any free port (tests)
  std::string ring_name = "uringest";
  uint32_t shards = 0;                  // 0: one per online CPU
  uint64_t ring_size = 64 << 20;        // per shard, a power of two
  uint32_t max_connections = 10000;     // across all shards
  uint32_t max_connections_per_ip = 0;  // 0: no per-address cap
  // Streams published at once, all shards: the ring directory's slots. A publish past it
  // is refused. 0: max_connections, at least kMinStreams.
  uint32_t max_published_streams = 0;
  static constexpr uint32_t kMinStreams = 4096;
  uint32_t stream_slots() const {
    return max_published_streams != 0 ? max_published_streams
                                      : std::max(max_connections, kMinStreams);
  }
  // Bytes of partial messages all of one shard's connections may hold at once (each
  // connection is capped too: connection.reader.max_buffered_bytes); 0: no limit. A
  // connection whose message would take more is closed.
  uint64_t max_assembly_memory = uint64_t{512} << 20;
  absl::Duration handshake_timeout = absl::Seconds(10);
  absl::Duration idle_timeout = absl::Seconds(30);
  // From accept to the first publish: an ingest port is for publishing, and a connection
  // that only trickles bytes must not hold a slot for ever.
  absl::Duration publish_timeout = absl::Seconds(30);
  Backend backend = Backend::kAuto;
  // reuseport measured as even or better than load in perf/RESULTS.md (a burst of mixed
  // bitrates once left placement by load 2.5x uneven); see the note there.
  Placement placement = Placement::kReusePort;
  OnDuplicate on_duplicate = OnDuplicate::kReject;
  bool pin_cpus = false;
  // Access control (access_control.h): `--auth-file`, `--on-publish` and its timeout.
  std::string auth_file;
  std::string on_publish_url;
  // `--on-publish-done`: told when each publish ends; shares on-publish's client and
  // timeout.
  std::string on_publish_done_url;
  absl::Duration on_publish_timeout = absl::Seconds(5);
  // Shared memory: the group (name or number) the ring's objects are given, so that
  // consumers in it may read them; "" keeps the server's own group.
  std::string ring_group;
  // RTMPS (`--tls-listen`, `--tls-cert`, `--tls-key`): on when tls_cert is set. The
  // certificate and key are re-read on SIGHUP.
  std::string tls_listen_host = "0.0.0.0";
  uint16_t tls_listen_port = 1936;  // 0: any free port (tests)
  std::string tls_cert;
  std::string tls_key;
  // Behind a load balancer (--proxy-protocol): every connection, on every listener, begins
  // with a PROXY protocol v1 or v2 header, and its source address is the publisher's.
  // --trusted-proxies: "CIDR,..." of the balancers that may send one; "": any.
  bool proxy_protocol = false;
  std::string trusted_proxies;
  // A drain (POST /v1/drain, SIGUSR1): publishers whose connect announced Enhanced RTMP's
  // Reconnect are asked to reconnect, to drain_redirect when set (rtmp://HOST[:PORT][/APP]);
  // the others stream on until they end or drain_timeout passes.
  std::string drain_redirect;
  absl::Duration drain_timeout = absl::Seconds(300);
  // How long a graceful shutdown waits for connections to close.
  absl::Duration shutdown_grace = absl::Seconds(2);
  EventLoopOptions loop;
  rtmp::ServerConnectionOptions connection;
};

}  // namespace uringest::engine

#endif  // URINGEST_ENGINE_SERVER_OPTIONS_H_
