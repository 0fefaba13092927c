#include "loadgen/proc_stats.h"

#include <unistd.h>

#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"

namespace uringest::loadgen {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

// "VmRSS:     1234 kB" -> bytes; 0 if missing.
uint64_t StatusBytes(const std::string& status, const std::string& key) {
  const size_t at = status.find(key);
  if (at == std::string::npos) return 0;
  std::istringstream line(status.substr(at + key.size(), 32));
  uint64_t kb = 0;
  line >> kb;
  return kb * 1024;
}

}  // namespace

std::optional<ProcSample> SampleProcess(int pid) {
  const std::string stat = ReadAll(absl::StrCat("/proc/", pid, "/stat"));
  // The fields after the command name, which is in parentheses and may hold spaces:
  // state is field 3, utime and stime are fields 14 and 15.
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(stat.substr(close + 2));
  std::string skip;
  for (int field = 3; field < 14; ++field) fields >> skip;
  uint64_t utime = 0, stime = 0;
  if (!(fields >> utime >> stime)) return std::nullopt;
  const std::string status = ReadAll(absl::StrCat("/proc/", pid, "/status"));
  return ProcSample{.cpu_seconds = double(utime + stime) / double(sysconf(_SC_CLK_TCK)),
                    .rss_bytes = StatusBytes(status, "VmRSS:"),
                    .hwm_bytes = StatusBytes(status, "VmHWM:")};
}

}  // namespace uringest::loadgen
