#include "control/metrics_page.h"

#include <span>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "control/prometheus_text.h"

namespace uringest::control {
namespace {

using engine::Counter;
using engine::HookMetrics;
using engine::ServerMetrics;
using engine::ShardMetrics;

double Get(const Counter& c) { return double(ServerMetrics::Get(c)); }

// A family with one series per shard, from `value(k)`.
template <typename F>
void PerShard(PrometheusText& out, const ServerMetrics& m, std::string_view name,
              std::string_view type, std::string_view help, F value) {
  out.Family(name, type, help);
  for (uint32_t k = 0; k < m.shard_count; ++k) {
    out.Sample(name, {{"shard", absl::StrCat(k)}}, value(m.shard(k)));
  }
}

void ShardFamilies(PrometheusText& out, const ServerMetrics& m) {
  PerShard(out, m, "uringest_shard_connections", "gauge", "Connections open on the shard.",
           [](const ShardMetrics& s) { return Get(s.connections); });
  PerShard(out, m, "uringest_shard_connections_accepted_total", "counter",
           "Connections the shard took on since the server started.",
           [](const ShardMetrics& s) { return Get(s.accepted); });
  PerShard(out, m, "uringest_shard_received_bytes_total", "counter",
           "Bytes the shard received from its sockets (TLS records included).",
           [](const ShardMetrics& s) { return Get(s.bytes_received); });
  PerShard(out, m, "uringest_shard_receive_buffer_shortages_total", "counter",
           "Times the shard ran out of receive buffers (TCP held the bytes meanwhile).",
           [](const ShardMetrics& s) { return Get(s.buffer_shortages); });
}

// What each shard's ring says: frames written, its tail, its lossless readers.
void RingFamilies(PrometheusText& out, const consumer::StatTable& t) {
  struct Family {
    std::string_view name, type, help;
    double (*value)(const consumer::RingSample&);
  };
  static constexpr Family kFamilies[] = {
      {"uringest_shard_frames_total", "counter",
       "Frames (audio, video and data records) the shard wrote to its ring.",
       [](const consumer::RingSample& r) { return double(r.records); }},
      {"uringest_shard_ring_tail_bytes_total", "counter",
       "The ring's tail: bytes the shard wrote to its ring since the ring was created.",
       [](const consumer::RingSample& r) { return double(r.tail); }},
      {"uringest_shard_ring_capacity_bytes", "gauge", "The size of the shard's ring.",
       [](const consumer::RingSample& r) { return double(r.capacity); }},
      {"uringest_shard_lossless_readers", "gauge", "Lossless readers registered in the ring.",
       [](const consumer::RingSample& r) { return double(r.readers.size()); }},
      {"uringest_shard_lossless_waits_total", "counter",
       "Times the shard waited for a lossless reader to make room.",
       [](const consumer::RingSample& r) { return double(r.lossless_waits); }},
      {"uringest_shard_lossless_evictions_total", "counter",
       "Times the shard gave up waiting for a lossless reader (it reads lossy since).",
       [](const consumer::RingSample& r) { return double(r.lossless_evictions); }},
  };
  for (const Family& f : kFamilies) {
    out.Family(f.name, f.type, f.help);
    for (const consumer::RingSample& r : t.rings) {
      out.Sample(f.name, {{"shard", absl::StrCat(r.shard)}}, f.value(r));
    }
  }
}

// "app/name" as the app and name labels: the app is what comes before the first '/'.
Labels StreamLabels(const std::string& key) {
  const size_t slash = key.find('/');
  if (slash == std::string::npos) return {{"app", key}, {"name", ""}};
  return {{"app", key.substr(0, slash)}, {"name", key.substr(slash + 1)}};
}

void StreamFamilies(PrometheusText& out, const consumer::StatTable& t) {
  out.Family("uringest_streams_publishing", "gauge", "Streams publishing now.");
  out.Sample("uringest_streams_publishing", {}, double(t.streams.size()));
  out.Family("uringest_stream_info", "gauge",
             "A publishing stream: its publisher, shard and track-0 codecs (value 1).");
  for (const consumer::StreamRow& r : t.streams) {
    Labels labels = StreamLabels(r.name);
    labels.insert(labels.end(), {{"publisher", r.publisher},
                                 {"shard", absl::StrCat(r.shard)},
                                 {"video_codec", r.video_codec},
                                 {"audio_codec", r.audio_codec}});
    out.Sample("uringest_stream_info", labels, 1);
  }
  struct Family {
    std::string_view name, type, help;
    double (*value)(const consumer::StreamRow&);
  };
  static constexpr Family kFamilies[] = {
      {"uringest_stream_start_time_seconds", "gauge",
       "When the stream began, seconds since the Unix epoch.",
       [](const consumer::StreamRow& r) { return r.begin_time_s; }},
      {"uringest_stream_received_bytes_total", "counter", "Payload bytes the stream brought.",
       [](const consumer::StreamRow& r) { return double(r.bytes); }},
      {"uringest_stream_frames_total", "counter",
       "Frames (audio, video and data) of the stream written to the ring.",
       [](const consumer::StreamRow& r) { return double(r.frames); }},
      {"uringest_stream_dropped_frames_total", "counter",
       "Frames of the stream the ring could not take.",
       [](const consumer::StreamRow& r) { return double(r.drops); }},
  };
  for (const Family& f : kFamilies) {
    out.Family(f.name, f.type, f.help);
    for (const consumer::StreamRow& r : t.streams) {
      out.Sample(f.name, StreamLabels(r.name), f.value(r));
    }
  }
  // Bytes, not bits: Prometheus's base unit (multiply by 8 for a bitrate).
  out.Family("uringest_stream_received_bytes_per_second", "gauge",
             "The stream's payload bytes per second over the last second.");
  for (const consumer::StreamRow& r : t.streams) {
    if (r.bitrate_kbps.has_value()) {
      out.Sample("uringest_stream_received_bytes_per_second", StreamLabels(r.name),
                 *r.bitrate_kbps * 1000 / 8);
    }
  }
}

void ServerFamilies(PrometheusText& out, const ServerMetrics& m) {
  out.Family("uringest_publishes_total", "counter", "Publishes that started.");
  out.Sample("uringest_publishes_total", {}, Get(m.publishes));
  out.Family("uringest_publishes_refused_total", "counter", "Publishes refused, by reason.");
  for (size_t k = 0; k < m.publishes_refused.size(); ++k) {
    out.Sample("uringest_publishes_refused_total",
               {{"reason", std::string(engine::RefusalName(rtmp::Session::Refusal(k)))}},
               Get(m.publishes_refused[k]));
  }
  out.Family("uringest_connections_refused_total", "counter",
             "Connections refused by --max-connections or --max-connections-per-ip.");
  out.Sample("uringest_connections_refused_total", {}, Get(m.connections_refused));
  out.Family("uringest_timeouts_total", "counter",
             "Connections closed by a timeout: handshake, publish (no publish in time) or "
             "idle.");
  out.Sample("uringest_timeouts_total", {{"kind", "handshake"}}, Get(m.handshake_timeouts));
  out.Sample("uringest_timeouts_total", {{"kind", "publish"}}, Get(m.publish_timeouts));
  out.Sample("uringest_timeouts_total", {{"kind", "idle"}}, Get(m.idle_timeouts));
  out.Family("uringest_protocol_errors_total", "counter",
             "Connections closed for what the peer sent, by kind.");
  for (size_t k = 0; k < m.protocol_errors.size(); ++k) {
    out.Sample("uringest_protocol_errors_total",
               {{"kind", std::string(engine::ProtocolErrorName(engine::ProtocolError(k)))}},
               Get(m.protocol_errors[k]));
  }
  out.Family("uringest_tls_handshakes_total", "counter", "RTMPS handshakes completed.");
  out.Sample("uringest_tls_handshakes_total", {}, Get(m.tls_handshakes));
  out.Family("uringest_kicks_total", "counter", "Publishers ended through the HTTP API.");
  out.Sample("uringest_kicks_total", {}, Get(m.kicks));
  out.Family("uringest_proxy_headers_total", "counter",
             "PROXY protocol headers taken (--proxy-protocol), by version and command (local: "
             "a balancer's health check, closed quietly).");
  out.Sample("uringest_proxy_headers_total", {{"version", "1"}, {"command", "proxy"}},
             Get(m.proxy_headers[0]));
  out.Sample("uringest_proxy_headers_total", {{"version", "2"}, {"command", "proxy"}},
             Get(m.proxy_headers[1]));
  out.Sample("uringest_proxy_headers_total", {{"version", "2"}, {"command", "local"}},
             Get(m.proxy_local));
  out.Family("uringest_draining", "gauge",
             "1 while the node drains (POST /v1/drain, SIGUSR1): it accepts no connection.");
  out.Sample("uringest_draining", {}, Get(m.draining));
  out.Family("uringest_drain_start_time_seconds", "gauge",
             "When the drain began, Unix seconds; 0: none.");
  out.Sample("uringest_drain_start_time_seconds", {}, Get(m.drain_started_s));
  out.Family("uringest_drain_reconnect_requests_total", "counter",
             "Enhanced RTMP reconnect requests sent to publishers by a drain.");
  out.Sample("uringest_drain_reconnect_requests_total", {}, Get(m.drain_reconnect_requests));
  out.Family("uringest_drain_timeouts_total", "counter",
             "Connections a drain closed at --drain-timeout.");
  out.Sample("uringest_drain_timeouts_total", {}, Get(m.drain_timeouts));
}

void HookFamilies(PrometheusText& out, const ServerMetrics& m) {
  const std::pair<std::string_view, const HookMetrics*> hooks[] = {
      {"on_publish", &m.on_publish}, {"on_publish_done", &m.on_publish_done}};
  out.Family("uringest_hook_calls_total", "counter",
             "HTTP hook calls, by hook and result (ok: a 2xx; refused: another status; "
             "failed: no answer).");
  for (const auto& [hook, h] : hooks) {
    out.Sample("uringest_hook_calls_total", {{"hook", std::string(hook)}, {"result", "ok"}},
               Get(h->ok));
    out.Sample("uringest_hook_calls_total", {{"hook", std::string(hook)}, {"result", "refused"}},
               Get(h->refused));
    out.Sample("uringest_hook_calls_total", {{"hook", std::string(hook)}, {"result", "failed"}},
               Get(h->failed));
  }
  out.Family("uringest_hook_duration_seconds", "histogram", "How long HTTP hook calls took.");
  for (const auto& [hook, h] : hooks) {
    uint64_t counts[HookMetrics::kBuckets.size() + 1];
    for (size_t i = 0; i < h->buckets.size(); ++i) counts[i] = ServerMetrics::Get(h->buckets[i]);
    out.Histogram("uringest_hook_duration_seconds", {{"hook", std::string(hook)}},
                  HookMetrics::kBuckets, counts, Get(h->latency_us) / 1e6);
  }
  out.Family("uringest_hook_notifications_dropped_total", "counter",
             "on-publish-done notifications given up (retries spent, queue full, shutdown).");
  out.Sample("uringest_hook_notifications_dropped_total", {}, Get(m.publish_done_dropped));
}

void ProcessFamilies(PrometheusText& out, const ProcessStats& p) {
  out.Family("process_cpu_seconds_total", "counter", "User and system CPU time spent.");
  out.Sample("process_cpu_seconds_total", {}, p.cpu_seconds);
  out.Family("process_resident_memory_bytes", "gauge", "Resident memory size.");
  out.Sample("process_resident_memory_bytes", {}, double(p.resident_bytes));
  out.Family("process_virtual_memory_bytes", "gauge", "Virtual memory size.");
  out.Sample("process_virtual_memory_bytes", {}, double(p.virtual_bytes));
  out.Family("process_start_time_seconds", "gauge",
             "When the process started, seconds since the Unix epoch.");
  out.Sample("process_start_time_seconds", {}, p.start_time_seconds);
  out.Family("process_open_fds", "gauge", "Open file descriptors.");
  out.Sample("process_open_fds", {}, double(p.open_fds));
  out.Family("process_max_fds", "gauge", "The limit on open file descriptors.");
  out.Sample("process_max_fds", {}, double(p.max_fds));
}

}  // namespace

std::string RenderMetrics(const MetricsInput& in) {
  PrometheusText out;
  out.Family("uringest_build_info", "gauge", "The build and the I/O backend (value 1).");
  out.Sample("uringest_build_info", {{"version", in.version}, {"backend", in.backend}}, 1);
  ShardFamilies(out, *in.metrics);
  if (in.table != nullptr) {
    RingFamilies(out, *in.table);
    StreamFamilies(out, *in.table);
  }
  ServerFamilies(out, *in.metrics);
  HookFamilies(out, *in.metrics);
  ProcessFamilies(out, in.process);
  return out.Take();
}

}  // namespace uringest::control
