// metrics_page.h: uringestd's `GET /metrics` page, in Prometheus's text format: the
// server's counters (engine/server_metrics.h), what its ring says per shard and per
// stream (a uringest-stat table), the process's CPU and memory, and build facts.
//
//   std::string page = RenderMetrics({.metrics = &server.metrics(), .table = &table,
//                                     .process = ReadProcessStats(), .backend = "io_uring"});
//
// Names follow Prometheus's conventions: uringest_ prefix, counters end in _total,
// durations in _seconds, sizes in _bytes. A stream's series are labelled app and name.

#ifndef URINGEST_CONTROL_METRICS_PAGE_H_
#define URINGEST_CONTROL_METRICS_PAGE_H_

#include <string>

#include "consumer/stat_table.h"
#include "control/process_stats.h"
#include "engine/server_metrics.h"

namespace uringest::control {

struct MetricsInput {
  const engine::ServerMetrics* metrics = nullptr;
  // The ring's latest table (bitrates over the last second); nullptr before the first.
  const consumer::StatTable* table = nullptr;
  ProcessStats process;
  std::string backend;  // "io_uring" or "epoll"
  std::string version;
};

std::string RenderMetrics(const MetricsInput& in);

}  // namespace uringest::control

#endif  // URINGEST_CONTROL_METRICS_PAGE_H_
