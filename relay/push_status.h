// push_status.h: uringest-push's status file. The relay rewrites it every second (a new
// file renamed over the old, so a reader never sees half of one) as JSON:
//
//   {"pid": 4242, "updated_unix_ms": 1764780000000,
//    "destinations": [{"stream": "live/cam7", "url": "rtmp://origin/live/cam7",
//                      "state": "live", "bytes": 123456, "frames": 1800,
//                      "reconnects": 0, "dropped_frames": 0, "lag_ms": 12,
//                      "last_error": ""}]}
//
// and `uringest-push --status` prints it as a table.
//
// Thread safety: free functions.

#ifndef URINGEST_RELAY_PUSH_STATUS_H_
#define URINGEST_RELAY_PUSH_STATUS_H_

#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "relay/upstream.h"

namespace uringest::relay {

struct DestinationStatus {
  std::string stream;
  std::string url;  // redacted
  UpstreamStats stats;
};

// Where the status file goes unless told: $XDG_RUNTIME_DIR, else /run for root, else
// /tmp; named after the ring.
std::string DefaultStatusFile(const std::string& ring);

absl::Status WriteStatusFile(const std::string& path, const std::vector<DestinationStatus>& rows);

// Prints the status file at `path` as a table on `out`: how old it is, and a line per
// destination. An error if it can't be read or parsed, or if the relay that wrote it is
// gone (the file is then older than a few seconds).
absl::Status PrintStatus(const std::string& path, std::FILE* out);

}  // namespace uringest::relay

#endif  // URINGEST_RELAY_PUSH_STATUS_H_
