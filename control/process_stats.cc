#include "control/process_stats.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace uringest::control {
namespace {

// When the machine booted, seconds since the Unix epoch ("btime" in /proc/stat).
double BootTime() {
  std::ifstream stat("/proc/stat");
  std::string key;
  double value = 0;
  while (stat >> key) {
    if (key == "btime" && (stat >> value)) return value;
    stat.ignore(1 << 20, '\n');
  }
  return 0;
}

uint64_t CountOpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  uint64_t n = 0;
  while (const dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++n;
  }
  closedir(dir);
  return n > 0 ? n - 1 : 0;  // not the one opendir() holds
}

}  // namespace

ProcessStats ReadProcessStats() {
  ProcessStats p;
  const double ticks = double(sysconf(_SC_CLK_TCK));
  const double page = double(sysconf(_SC_PAGESIZE));
  std::ifstream file("/proc/self/stat");
  std::string line;
  if (std::getline(file, line)) {
    // The command name, field 2, is in parentheses and may hold spaces: fields after it
    // are counted from its closing parenthesis (field 3, the state, comes next).
    const size_t close = line.rfind(')');
    if (close != std::string::npos) {
      std::istringstream rest(line.substr(close + 2));
      std::string field;
      double utime = 0, stime = 0, start = 0, vsize = 0, rss = 0;
      for (int n = 3; rest >> field && n <= 24; ++n) {
        if (n == 14) utime = std::stod(field);
        if (n == 15) stime = std::stod(field);
        if (n == 22) start = std::stod(field);
        if (n == 23) vsize = std::stod(field);
        if (n == 24) rss = std::stod(field);
      }
      p.cpu_seconds = (utime + stime) / ticks;
      p.start_time_seconds = BootTime() + start / ticks;
      p.virtual_bytes = uint64_t(vsize);
      p.resident_bytes = uint64_t(rss * page);
    }
  }
  p.open_fds = CountOpenFds();
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) p.max_fds = limit.rlim_cur;
  return p;
}

}  // namespace uringest::control
