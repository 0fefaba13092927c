#include "tests/integration/process.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <utility>

#include "absl/time/clock.h"

extern char** environ;

namespace uringest::testing {
namespace {

constexpr absl::Duration kReapPoll = absl::Milliseconds(5);

void RedirectTo(posix_spawn_file_actions_t* actions, int fd, const std::string& path) {
  const char* target = path.empty() ? "/dev/null" : path.c_str();
  posix_spawn_file_actions_addopen(actions, fd, target, O_WRONLY | O_CREAT | O_TRUNC, 0644);
}

}  // namespace

Process Process::Spawn(const std::vector<std::string>& args, const SpawnOptions& options) {
  Process p;
  int pipe_fds[2] = {-1, -1};
  int stdin_fds[2] = {-1, -1};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (options.stdin_pipe && pipe2(stdin_fds, O_CLOEXEC) == 0) {
    posix_spawn_file_actions_adddup2(&actions, stdin_fds[0], STDIN_FILENO);
  } else {
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  }
  if (options.stdout_pipe && pipe2(pipe_fds, O_CLOEXEC) == 0) {
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  } else {
    RedirectTo(&actions, STDOUT_FILENO, options.stdout_path);
  }
  RedirectTo(&actions, STDERR_FILENO, options.stderr_path);
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  // The test may block SIGTERM/SIGINT for its own reasons; children get the defaults.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGTERM);
  sigaddset(&defaults, SIGINT);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  if (posix_spawn(&p.pid_, argv[0], &actions, &attr, argv.data(), environ) != 0) {
    p.pid_ = -1;
    p.exit_code_ = 127;
  }
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  if (pipe_fds[1] >= 0) close(pipe_fds[1]);
  if (stdin_fds[0] >= 0) close(stdin_fds[0]);
  p.stdout_fd_ = pipe_fds[0];
  p.stdin_fd_ = stdin_fds[1];
  return p;
}

Process::Process(Process&& other) noexcept { *this = std::move(other); }

Process& Process::operator=(Process&& other) noexcept {
  if (this != &other) {
    this->~Process();
    pid_ = std::exchange(other.pid_, -1);
    stdin_fd_ = std::exchange(other.stdin_fd_, -1);
    stdout_fd_ = std::exchange(other.stdout_fd_, -1);
    exit_code_ = std::exchange(other.exit_code_, std::nullopt);
    buffered_ = std::move(other.buffered_);
  }
  return *this;
}

Process::~Process() {
  if (pid_ > 0 && !exit_code_) {
    kill(pid_, SIGKILL);
    int status;
    if (waitpid(pid_, &status, 0) == pid_) Reap(status);
  }
  CloseStdin();
  if (stdout_fd_ >= 0) close(stdout_fd_);
  pid_ = -1;
  stdout_fd_ = -1;
}

bool Process::WriteStdin(std::span<const uint8_t> bytes) {
  while (!bytes.empty() && stdin_fd_ >= 0) {
    ssize_t n = write(stdin_fd_, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;  // EPIPE: the child is gone
    bytes = bytes.subspan(size_t(n));
  }
  return bytes.empty();
}

void Process::CloseStdin() {
  if (stdin_fd_ >= 0) close(stdin_fd_);
  stdin_fd_ = -1;
}

void Process::Reap(int status) {
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

bool Process::Running() {
  if (exit_code_ || pid_ <= 0) return false;
  int status;
  if (waitpid(pid_, &status, WNOHANG) == pid_) Reap(status);
  return !exit_code_;
}

std::optional<int> Process::Wait(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (Running()) {
    if (absl::Now() >= deadline) return std::nullopt;
    absl::SleepFor(kReapPoll);
  }
  return exit_code_;
}

void Process::Signal(int sig) {
  if (Running()) kill(pid_, sig);
}

void Process::Kill() { Signal(SIGKILL); }

std::optional<std::string> Process::ReadLine(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    if (size_t nl = buffered_.find('\n'); nl != std::string::npos) {
      std::string line = buffered_.substr(0, nl);
      buffered_.erase(0, nl + 1);
      return line;
    }
    const absl::Duration left = deadline - absl::Now();
    if (stdout_fd_ < 0 || left <= absl::ZeroDuration()) return std::nullopt;
    pollfd pfd{.fd = stdout_fd_, .events = POLLIN};
    if (poll(&pfd, 1, int(absl::ToInt64Milliseconds(left)) + 1) <= 0) continue;
    char chunk[4096];
    ssize_t n = read(stdout_fd_, chunk, sizeof(chunk));
    if (n <= 0) return std::nullopt;  // EOF: the child closed stdout
    buffered_.append(chunk, size_t(n));
  }
}

int RunCommand(const std::vector<std::string>& args, absl::Duration timeout,
               const std::string& stdout_path, const std::string& stderr_path) {
  Process p = Process::Spawn(args, {.stdout_path = stdout_path, .stderr_path = stderr_path});
  std::optional<int> code = p.Wait(timeout);
  return code ? *code : -1;  // the destructor kills it
}

}  // namespace uringest::testing
