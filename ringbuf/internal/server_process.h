// server_process.h: a ring server in a forked child, for tests of what a consumer does
// when its server dies. SIGKILL leaves what a crash leaves (the objects, a stale
// heartbeat, a free lock); ShutDown() is the clean end (closed, then removed). The child
// stamps its heartbeat every 20 ms and does what the parent asks over a pipe.
//
//   std::unique_ptr<ServerProcess> server = ServerProcess::Start(name);  // ring is live
//   server->BeginStream();  // "live/x": stream-begin, sequence header, keyframe
//   server->Kill();         // SIGKILL, reaped
//
// Thread safety: one thread. Other threads of the test may run meanwhile: the child only
// allocates (glibc's malloc is safe across fork) and touches its own ring.

#ifndef URINGEST_RINGBUF_INTERNAL_SERVER_PROCESS_H_
#define URINGEST_RINGBUF_INTERNAL_SERVER_PROCESS_H_

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "ringbuf/ring_server.h"

namespace uringest::ringbuf::testing {

class ServerProcess {
 public:
  static constexpr char kStream[] = "live/x";

  // Forks a child that creates ring `name`; returns once it is live, or nullptr.
  static std::unique_ptr<ServerProcess> Start(const std::string& name) {
    int down[2], up[2];
    if (pipe(down) != 0 || pipe(up) != 0) return nullptr;
    const pid_t pid = fork();
    if (pid < 0) return nullptr;
    if (pid == 0) {
      close(down[1]);
      close(up[0]);
      Serve(name, down[0], up[1]);
    }
    close(down[0]);
    close(up[1]);
    auto server = std::unique_ptr<ServerProcess>(new ServerProcess(pid, down[1], up[0]));
    if (!server->AwaitAck('r')) return nullptr;
    return server;
  }

  ~ServerProcess() {
    if (pid_ > 0) Kill();
    close(commands_);
    close(acks_);
  }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Begins kStream: stream-begin, an AVC sequence header and a keyframe in the ring.
  bool BeginStream() { return Ask('b'); }
  bool WriteFrame() { return Ask('f'); }  // one inter frame of kStream
  // Ends the stream (if any) and shuts the server down cleanly; true if it exited 0.
  bool ShutDown() {
    if (!Ask('q')) return false;
    int status = 0;
    const bool ok =
        waitpid(pid_, &status, 0) == pid_ && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    pid_ = -1;
    return ok;
  }
  void Kill() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  pid_t pid() const { return pid_; }

 private:
  ServerProcess(pid_t pid, int commands, int acks) : pid_(pid), commands_(commands), acks_(acks) {}

  bool Ask(char command) { return write(commands_, &command, 1) == 1 && AwaitAck(command); }
  bool AwaitAck(char expected) {
    pollfd p{.fd = acks_, .events = POLLIN, .revents = 0};
    char c = 0;
    return poll(&p, 1, 10'000) == 1 && read(acks_, &c, 1) == 1 && c == expected;
  }

  static void Write(StreamWriter& stream, uint8_t flags, std::vector<uint8_t> body) {
    if (!stream.WriteFrame({.type = RecordType::kVideo, .flags = flags}, body).ok()) _exit(4);
  }

  [[noreturn]] static void Serve(const std::string& name, int commands, int acks) {
    auto server = RingServer::Create({.name = name,
                                      .ring_capacity = kMinRingCapacity,
                                      .directory_slots = 8,
                                      .huge_pages = false,
                                      .prefault = false});
    if (!server.ok()) _exit(2);
    StreamWriter stream;
    char c = 'r';
    for (;;) {
      if (c != 0 && write(acks, &c, 1) != 1) _exit(3);
      (*server)->HeartbeatAll();
      pollfd p{.fd = commands, .events = POLLIN, .revents = 0};
      c = 0;
      if (poll(&p, 1, 20) != 1) continue;
      if (read(commands, &c, 1) != 1) _exit(3);  // the parent went away
      if (c == 'b') {
        absl::StatusOr<StreamWriter> begun = (*server)->shard(0).BeginStream(kStream, "");
        if (!begun.ok()) _exit(4);
        stream = *std::move(begun);
        Write(stream, kFlagKeyframe | kFlagSequenceHeader, {0x17, 0, 0, 0, 0, 1});
        Write(stream, kFlagKeyframe, std::vector<uint8_t>(100, 0x17));
      } else if (c == 'f') {
        Write(stream, 0, std::vector<uint8_t>(100, 0x27));
      } else if (c == 'q') {
        stream.End();
        server->reset();
        if (write(acks, &c, 1) != 1) _exit(3);
        _exit(0);
      }
    }
  }

  pid_t pid_;
  int commands_;
  int acks_;
};

}  // namespace uringest::ringbuf::testing

#endif  // URINGEST_RINGBUF_INTERNAL_SERVER_PROCESS_H_
