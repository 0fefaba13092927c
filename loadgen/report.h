// report.h: uringest-load's output: the live progress line, the final table for people,
// and one JSON document for machines (perf/compare.sh reads it).
//
//   std::fputs(FormatTable(report).c_str(), stdout);
//   std::fputs(FormatJson(report).c_str(), stdout);

#ifndef URINGEST_LOADGEN_REPORT_H_
#define URINGEST_LOADGEN_REPORT_H_

#include <string>

#include "loadgen/load_run.h"

namespace uringest::loadgen {

// Per-stream rows are listed when there are at most `max_rows` streams, and always for
// streams that failed or lost frames.
std::string FormatTable(const LoadReport& report, size_t max_rows = 20);
std::string FormatJson(const LoadReport& report);
// "the server died", "the server shut down" (LoadReport::server_exit), for messages.
const char* ServerExitText(ringbuf::ServerExit exit);

}  // namespace uringest::loadgen

#endif  // URINGEST_LOADGEN_REPORT_H_
