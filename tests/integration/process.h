// process.h: child processes for the integration tests: the real uringestd, uringest-cat,
// uringest-stat and ffmpeg. Every wait is bounded and a child still running when its
// Process is destroyed (a failed test) is killed, so no test can hang or leak processes.
//
//   Process server = Process::Spawn({bin, "--listen", "127.0.0.1:0"},
//                                   {.stdout_pipe = true, .stderr_path = dir + "/server.log"});
//   std::optional<std::string> line = server.ReadLine(absl::Seconds(10));
//   server.Signal(SIGTERM);
//   std::optional<int> code = server.Wait(absl::Seconds(10));  // nullopt: still running

#ifndef URINGEST_TESTS_INTEGRATION_PROCESS_H_
#define URINGEST_TESTS_INTEGRATION_PROCESS_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace uringest::testing {

struct SpawnOptions {
  bool stdin_pipe = false;   // written with WriteStdin(); else stdin is /dev/null
  bool stdout_pipe = false;  // readable with ReadLine(); else stdout goes to stdout_path
  std::string stdout_path;   // "" (and no pipe): /dev/null
  std::string stderr_path;   // "": /dev/null
};

class Process {
 public:
  // Starts args[0] (a path) with `args`. A spawn failure is a process that exited 127.
  static Process Spawn(const std::vector<std::string>& args, const SpawnOptions& options = {});

  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  ~Process();  // SIGKILLs and reaps a child that is still running

  // The exit code (128 + signal number if a signal ended it), or nullopt if it is still
  // running after `timeout`.
  std::optional<int> Wait(absl::Duration timeout);
  bool Running();
  void Signal(int sig);
  void Kill();
  // One line of the stdout pipe (without the newline), or nullopt at EOF or timeout.
  std::optional<std::string> ReadLine(absl::Duration timeout);
  // Writes all of `bytes` to the stdin pipe (blocking while the child doesn't read);
  // false if the child closed it or there is none.
  bool WriteStdin(std::span<const uint8_t> bytes);
  // Closes the stdin pipe: the child reads EOF.
  void CloseStdin();

  pid_t pid() const { return pid_; }

 private:
  Process() = default;
  void Reap(int status);

  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  std::optional<int> exit_code_;
  std::string buffered_;  // stdout bytes read past the last line returned
};

// Runs a command to completion (bounded by `timeout`, then killed) and returns its exit
// code; its stdout goes to `stdout_path` if given.
int RunCommand(const std::vector<std::string>& args, absl::Duration timeout,
               const std::string& stdout_path = "", const std::string& stderr_path = "");

}  // namespace uringest::testing

#endif  // URINGEST_TESTS_INTEGRATION_PROCESS_H_
