#include "loadgen/report.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace uringest::loadgen {
namespace {

double Ms(int64_t ns) { return double(ns) / 1e6; }

std::string LatencyCells(const LatencyHistogram& h) {
  if (h.count() == 0) return "      -       -       -       -";
  return absl::StrFormat("%7.2f %7.2f %7.2f %7.2f", Ms(h.PercentileNs(0.5)),
                         Ms(h.PercentileNs(0.99)), Ms(h.PercentileNs(0.999)), Ms(h.MaxNs()));
}

std::string LatencyJson(const LatencyHistogram& h) {
  return absl::StrFormat(R"({"count":%u,"p50_ms":%.3f,"p99_ms":%.3f,"p999_ms":%.3f,"max_ms":%.3f})",
                         h.count(), Ms(h.PercentileNs(0.5)), Ms(h.PercentileNs(0.99)),
                         Ms(h.PercentileNs(0.999)), Ms(h.MaxNs()));
}

std::string JsonString(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      absl::StrAppendFormat(&out, "\\u%04x", c);
    } else {
      out += c;
    }
  }
  return out + "\"";
}

const char* ServerExitJson(ringbuf::ServerExit exit) {
  switch (exit) {
    case ringbuf::ServerExit::kNone:
      return "none";
    case ringbuf::ServerExit::kDied:
      return "died";
    case ringbuf::ServerExit::kShutDown:
      return "shut_down";
  }
  return "died";
}

std::string StreamRow(const StreamReport& s, bool verified) {
  std::string row = absl::StrFormat("%-20s %-6s %9u", s.name,
                                    s.failed ? "FAIL" : (s.went_live ? "ok" : "-"), s.sent);
  if (verified) {
    absl::StrAppendFormat(&row, " %9u %7u %5u %5u  %s", s.delivered, s.lost, s.duplicated,
                          s.out_of_order, LatencyCells(s.latency));
  }
  if (s.reconnects > 0 || s.reconnect_requests > 0) {
    absl::StrAppendFormat(&row, "  reconnects %u (requests %u, skipped %u)", s.reconnects,
                          s.reconnect_requests, s.skipped);
  }
  if (s.failed) absl::StrAppend(&row, "  ", s.error);
  return row + "\n";
}

// {"ringA":frames,...}: where the stream's frames were first seen.
std::string ByRingJson(const std::vector<std::string>& rings, const std::vector<uint64_t>& frames) {
  std::string out = "{";
  for (size_t k = 0; k < rings.size() && k < frames.size(); ++k) {
    absl::StrAppend(&out, k ? "," : "", JsonString(rings[k]), ":", frames[k]);
  }
  return out + "}";
}

}  // namespace

const char* ServerExitText(ringbuf::ServerExit exit) {
  switch (exit) {
    case ringbuf::ServerExit::kNone:
      return "the server lived";
    case ringbuf::ServerExit::kDied:
      return "the server died";
    case ringbuf::ServerExit::kShutDown:
      return "the server shut down";
  }
  return "the server is gone";
}

namespace {

// The lines about the server's and uringest-load's own CPU and memory.
std::string CostLines(const LoadReport& r) {
  std::string out;
  if (r.server.sampled) {
    const double gb = double(r.bytes) / 1e9;
    absl::StrAppendFormat(
        &out,
        "  server: %.2f CPU-s (%.0f%% of one core), %.2f CPU-s/GB, RSS %.1f MB "
        "-> peak %.1f MB (%.1f KB per publisher)\n",
        r.server.cpu_seconds, r.seconds > 0 ? 100 * r.server.cpu_seconds / r.seconds : 0,
        gb > 0 ? r.server.cpu_seconds / gb : 0, double(r.server.rss_start) / 1e6,
        double(r.server.rss_peak) / 1e6,
        double(r.server.rss_peak - r.server.rss_start) / 1e3 / std::max<uint32_t>(1, r.publishers));
  }
  absl::StrAppendFormat(&out,
                        "  uringest-load: %.2f CPU-s (%.0f%% of one core), queue peak %.1f KB, "
                        "backlog at the end %.1f KB (the most of one publisher)\n",
                        r.load_cpu_seconds,
                        r.seconds > 0 ? 100 * r.load_cpu_seconds / r.seconds : 0,
                        double(r.max_queued) / 1e3, double(r.max_backlog) / 1e3);
  if (r.load_bound()) {
    absl::StrAppend(&out,
                    "  LOAD-BOUND: uringest-load used its whole core; the figures may be its "
                    "limit, not the server's\n");
  }
  return out;
}

}  // namespace

std::string FormatTable(const LoadReport& r, size_t max_rows) {
  std::string out = absl::StrFormat(
      "uringest-load: %u publishers -> %s, %s, %.1f s%s: %u live, %u failed\n"
      "  sent %u frames, %.1f MB, %.1f Mbit/s (%.1f MB/s)\n",
      r.publishers, r.target, r.paced ? "paced" : "unpaced", r.seconds,
      r.interrupted ? " (interrupted)" : "", r.went_live, r.failed, r.sent, double(r.bytes) / 1e6,
      r.mbit_per_s(), r.mbit_per_s() / 8);
  if (r.verified) {
    absl::StrAppendFormat(&out,
                          "  verified in the ring: delivered %u, lost %u, duplicated %u, out of "
                          "order %u\n  latency send->ring ms p50/p99/p999/max: %s\n",
                          r.delivered, r.lost, r.duplicated, r.out_of_order,
                          LatencyCells(r.latency));
    if (r.reader_laps > 0) {
      absl::StrAppendFormat(&out,
                            "  WARNING: the verifier was lapped %u times: losses may be "
                            "its own, not the server's\n",
                            r.reader_laps);
    }
  }
  if (r.server_exit != ringbuf::ServerExit::kNone) {
    absl::StrAppend(&out, "  ", ServerExitText(r.server_exit),
                    " during the run (the verifier saw it in the ring): the run ended there\n");
  }
  if (r.reconnects > 0 || r.reconnect_requests > 0 || r.skipped > 0) {
    absl::StrAppendFormat(&out,
                          "  reconnects %u (reconnect requests followed %u), frames skipped "
                          "while down %u\n",
                          r.reconnects, r.reconnect_requests, r.skipped);
  }
  for (size_t k = 0; k < r.ring_exits.size(); ++k) {
    if (r.ring_exits[k] > 0) {
      absl::StrAppendFormat(&out, "  ring %s: its server ended %u time(s) during the run\n",
                            r.rings[k], r.ring_exits[k]);
    }
  }
  out += CostLines(r);
  std::string rows;
  for (const StreamReport& s : r.streams) {
    if (r.streams.size() <= max_rows || s.failed || s.lost > 0) rows += StreamRow(s, r.verified);
  }
  if (!rows.empty()) {
    out += absl::StrFormat("%-20s %-6s %9s", "stream", "state", "sent");
    if (r.verified) {
      out += absl::StrFormat(" %9s %7s %5s %5s  %7s %7s %7s %7s", "delivered", "lost", "dup", "ooo",
                             "p50ms", "p99ms", "p999ms", "maxms");
    }
    out += "\n" + rows;
  }
  absl::StrAppend(&out, r.ok() ? "OK\n" : "FAILED\n");
  return out;
}

std::string FormatJson(const LoadReport& r) {
  std::string out = absl::StrFormat(
      R"({"target":%s,"publishers":%u,"paced":%s,"verified":%s,"interrupted":%s,"ok":%s,)"
      R"("went_live":%u,)"
      R"("max_live":%u,"max_backlog":%u,"max_queued":%u,"load_cpu_seconds":%.3f,"load_bound":%s,)"
      R"("failed":%u,"seconds":%.3f,"sent":%u,"bytes":%u,"mbit_per_s":%.3f,)"
      R"("delivered":%u,"lost":%u,"duplicated":%u,"out_of_order":%u,"reader_laps":%u,)"
      R"("reconnect_requests":%u,"reconnects":%u,"skipped":%u,)"
      R"("server_exit":"%s","latency":%s,"ingest_latency":%s,)",
      JsonString(r.target), r.publishers, r.paced ? "true" : "false", r.verified ? "true" : "false",
      r.interrupted ? "true" : "false", r.ok() ? "true" : "false", r.went_live, r.max_live,
      r.max_backlog, r.max_queued, r.load_cpu_seconds, r.load_bound() ? "true" : "false", r.failed,
      r.seconds, r.sent, r.bytes, r.mbit_per_s(), r.delivered, r.lost, r.duplicated, r.out_of_order,
      r.reader_laps, r.reconnect_requests, r.reconnects, r.skipped, ServerExitJson(r.server_exit),
      LatencyJson(r.latency), LatencyJson(r.ingest_latency));
  absl::StrAppendFormat(&out,
                        R"("server":{"sampled":%s,"cpu_seconds":%.3f,"rss_start":%u,)"
                        R"("rss_peak":%u,"rss_end":%u},"rings":[)",
                        r.server.sampled ? "true" : "false", r.server.cpu_seconds,
                        r.server.rss_start, r.server.rss_peak, r.server.rss_end);
  for (size_t k = 0; k < r.rings.size(); ++k) {
    absl::StrAppendFormat(&out, R"(%s{"name":%s,"server_exits":%u})", k ? "," : "",
                          JsonString(r.rings[k]), k < r.ring_exits.size() ? r.ring_exits[k] : 0);
  }
  out += R"(],"streams":[)";
  for (size_t i = 0; i < r.streams.size(); ++i) {
    const StreamReport& s = r.streams[i];
    absl::StrAppendFormat(
        &out,
        R"(%s{"name":%s,"went_live":%s,"failed":%s,"error":%s,"sent":%u,"bytes":%u,)"
        R"("delivered":%u,"lost":%u,"duplicated":%u,"out_of_order":%u,"latency":%s,)"
        R"("reconnect_requests":%u,"reconnects":%u,"skipped":%u,"last_break":%s,)"
        R"("delivered_by_ring":%s})",
        i ? "," : "", JsonString(s.name), s.went_live ? "true" : "false",
        s.failed ? "true" : "false", JsonString(s.error), s.sent, s.bytes, s.delivered, s.lost,
        s.duplicated, s.out_of_order, LatencyJson(s.latency), s.reconnect_requests, s.reconnects,
        s.skipped, JsonString(s.last_break), ByRingJson(r.rings, s.delivered_by_ring));
  }
  return out + "]}\n";
}

}  // namespace uringest::loadgen
