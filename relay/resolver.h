// resolver.h: host names to addresses for uringest-push, off its network thread. The
// system's resolver (getaddrinfo) blocks, for as long as its timeouts when a name server
// is down; run on the relay's epoll thread it would hold up every destination. Here one
// thread of its own resolves, one question at a time, and the answers wait in a queue
// that an eventfd announces to the relay's epoll loop.
//
//   Resolver resolver;                       // starts its thread
//   epoll_ctl(ep, EPOLL_CTL_ADD, resolver.fd(), ...);
//   resolver.Ask(7, "origin.example", 1935);
//   for (Resolver::Answer& a : resolver.Take()) ...   // when fd() is readable
//
// Thread safety: Ask() and Take() from one thread (the relay's); the resolving thread is
// the Resolver's own.

#ifndef URINGEST_RELAY_RESOLVER_H_
#define URINGEST_RELAY_RESOLVER_H_

#include <sys/socket.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"

namespace uringest::relay {

// One address to connect to.
struct Address {
  sockaddr_storage storage{};
  socklen_t length = 0;
};

// The addresses of host:port, in the order getaddrinfo gives them (its RFC 6724 order),
// or an error naming the host. Blocks. An IP literal gives itself without a lookup.
absl::StatusOr<std::vector<Address>> ResolveNow(const std::string& host, uint16_t port);

class Resolver {
 public:
  struct Answer {
    uint64_t id = 0;
    absl::StatusOr<std::vector<Address>> addresses;
  };

  Resolver();
  ~Resolver();  // waits for the question being resolved, if any
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // Readable when answers wait.
  int fd() const { return eventfd_; }
  void Ask(uint64_t id, std::string host, uint16_t port);
  std::vector<Answer> Take();

 private:
  struct Question {
    uint64_t id;
    std::string host;
    uint16_t port;
  };
  void Run();

  const int eventfd_;
  std::mutex mu_;
  std::condition_variable asked_;
  std::deque<Question> questions_;
  std::vector<Answer> answers_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace uringest::relay

#endif  // URINGEST_RELAY_RESOLVER_H_
