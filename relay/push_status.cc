#include "relay/push_status.h"

#include <stdio.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"

namespace uringest::relay {
namespace {

using nlohmann::json;

// A status older than this was written by a relay that is gone (it writes every second).
constexpr int64_t kStaleMs = 5000;

std::string Bytes(uint64_t n) {
  if (n >= (uint64_t{1} << 30)) return absl::StrFormat("%.2f GiB", double(n) / (1 << 30));
  if (n >= (1 << 20)) return absl::StrFormat("%.1f MiB", double(n) / (1 << 20));
  if (n >= (1 << 10)) return absl::StrFormat("%.1f KiB", double(n) / (1 << 10));
  return absl::StrCat(n, " B");
}

}  // namespace

std::string DefaultStatusFile(const std::string& ring) {
  const char* runtime = std::getenv("XDG_RUNTIME_DIR");
  const std::string dir = runtime != nullptr && *runtime != '\0' ? runtime
                          : geteuid() == 0                       ? "/run"
                                                                 : "/tmp";
  return absl::StrCat(dir, "/uringest-push.", ring, ".json");
}

absl::Status WriteStatusFile(const std::string& path, const std::vector<DestinationStatus>& rows) {
  json doc{{"pid", getpid()},
           {"updated_unix_ms", absl::ToUnixMillis(absl::Now())},
           {"destinations", json::array()}};
  for (const DestinationStatus& r : rows) {
    doc["destinations"].push_back({{"stream", r.stream},
                                   {"url", r.url},
                                   {"state", r.stats.state},
                                   {"bytes", r.stats.bytes},
                                   {"frames", r.stats.frames},
                                   {"reconnects", r.stats.reconnects},
                                   {"dropped_frames", r.stats.dropped},
                                   {"lag_ms", r.stats.lag_ms},
                                   {"last_error", r.stats.last_error}});
  }
  const std::string temp = absl::StrCat(path, ".", getpid(), ".tmp");
  {
    std::ofstream out(temp, std::ios::trunc);
    out << doc.dump(1) << '\n';
    if (!out.flush()) return absl::InternalError(absl::StrCat("can't write status file ", temp));
  }
  if (rename(temp.c_str(), path.c_str()) != 0) {
    unlink(temp.c_str());
    return absl::InternalError(absl::StrCat("can't replace status file ", path));
  }
  return absl::OkStatus();
}

absl::Status PrintStatus(const std::string& path, std::FILE* out) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("no status file ", path, ": is uringest-push running (--status-file)?"));
  }
  const json doc = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.contains("destinations")) {
    return absl::DataLossError(absl::StrCat(path, " is not a uringest-push status file"));
  }
  const int64_t age_ms = absl::ToUnixMillis(absl::Now()) - doc.value("updated_unix_ms", int64_t{0});
  if (age_ms > kStaleMs) {
    return absl::UnavailableError(absl::StrCat(path, " was last written ", age_ms / 1000,
                                               " s ago: the relay (pid ", doc.value("pid", 0),
                                               ") is not running"));
  }
  std::fprintf(out, "uringest-push pid %d, %zu destination(s), as of %lld ms ago\n",
               doc.value("pid", 0), doc["destinations"].size(), (long long)age_ms);
  std::fprintf(out, "%-24s %-10s %10s %8s %6s %8s %8s  %s\n", "STREAM", "STATE", "SENT", "FRAMES",
               "RECONN", "DROPPED", "LAG", "URL / LAST ERROR");
  for (const json& d : doc["destinations"]) {
    const std::string error = d.value("last_error", "");
    std::fprintf(out, "%-24s %-10s %10s %8llu %6llu %8llu %6lldms  %s%s\n",
                 d.value("stream", "").c_str(), d.value("state", "").c_str(),
                 Bytes(d.value("bytes", uint64_t{0})).c_str(),
                 (unsigned long long)d.value("frames", uint64_t{0}),
                 (unsigned long long)d.value("reconnects", uint64_t{0}),
                 (unsigned long long)d.value("dropped_frames", uint64_t{0}),
                 (long long)d.value("lag_ms", int64_t{0}), d.value("url", "").c_str(),
                 error.empty() ? "" : absl::StrCat("  (", error, ")").c_str());
  }
  return absl::OkStatus();
}

}  // namespace uringest::relay
