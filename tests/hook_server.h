// hook_server.h: a tiny HTTP/1.1 server on 127.0.0.1:0 for tests of --on-publish: it
// answers each request with the status a test's function picks for its body, or never.
//
//   HookServer hook([](const std::string& body) {
//     return body.find("&name=ok") != std::string::npos ? 200 : 403;
//   });
//   options.on_publish_url = hook.Url();
//   ... hook.Bodies() ...

#ifndef URINGEST_TESTS_HOOK_SERVER_H_
#define URINGEST_TESTS_HOOK_SERVER_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace uringest::testing {

// A one-thread HTTP/1.1 server on 127.0.0.1: answers each POST with the status that
// `decide` gives its body, or never (0: the connection is held open until the end).
class HookServer {
 public:
  // `decide` runs on the server's thread; 0 means: never answer (the connection stays
  // open until the HookServer goes).
  explicit HookServer(std::function<int(const std::string& body)> decide)
      : decide_(std::move(decide)) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{.sin_family = AF_INET, .sin_port = 0, .sin_addr = {htonl(INADDR_LOOPBACK)}};
    socklen_t len = sizeof(addr);
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        listen(listen_fd_, 64) != 0 ||
        getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "hook server: can't listen";
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~HookServer() {
    stop_ = true;
    thread_.join();
    for (int fd : held_) close(fd);
    close(listen_fd_);
  }
  std::string Url() const { return absl::StrCat("http://127.0.0.1:", port_, "/on_publish"); }
  std::vector<std::string> Bodies() {
    std::lock_guard<std::mutex> lock(mu_);
    return bodies_;
  }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{.fd = listen_fd_, .events = POLLIN};
      if (poll(&p, 1, 50) <= 0) continue;
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) Handle(fd);
    }
  }
  void Handle(int fd) {
    const std::string body = ReadRequestBody(fd);
    {
      std::lock_guard<std::mutex> lock(mu_);
      bodies_.push_back(body);
    }
    const int status = decide_(body);
    if (status == 0) {
      held_.push_back(fd);
      return;
    }
    const std::string reply =
        absl::StrCat("HTTP/1.1 ", status, " X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    (void)!write(fd, reply.data(), reply.size());
    close(fd);
  }
  // Headers up to the blank line, then Content-Length bytes of body.
  static std::string ReadRequestBody(int fd) {
    std::string in;
    char buf[4096];
    size_t body_at = std::string::npos, length = 0;
    while (body_at == std::string::npos || in.size() < body_at + length) {
      pollfd p{.fd = fd, .events = POLLIN};
      if (poll(&p, 1, 5000) <= 0) break;
      const ssize_t n = read(fd, buf, sizeof(buf));
      if (n <= 0) break;
      in.append(buf, size_t(n));
      if (body_at == std::string::npos && (body_at = in.find("\r\n\r\n")) != std::string::npos) {
        body_at += 4;
        const size_t at = in.find("Content-Length: ");
        if (at != std::string::npos) {
          const size_t end = in.find('\r', at);
          (void)absl::SimpleAtoi(in.substr(at + 16, end - at - 16), &length);
        }
      }
    }
    return body_at == std::string::npos ? "" : in.substr(body_at);
  }

  const std::function<int(const std::string&)> decide_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::vector<int> held_;  // the server thread's
  std::mutex mu_;
  std::vector<std::string> bodies_;
};

}  // namespace uringest::testing

#endif  // URINGEST_TESTS_HOOK_SERVER_H_
