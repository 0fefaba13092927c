#include "relay/resolver.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace uringest::relay {

absl::StatusOr<std::vector<Address>> ResolveNow(const std::string& host, uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0) {
    return absl::UnavailableError(absl::StrCat("can't resolve ", host, ": ", gai_strerror(rc)));
  }
  std::vector<Address> out;
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    Address address;
    std::memcpy(&address.storage, a->ai_addr, a->ai_addrlen);
    address.length = a->ai_addrlen;
    out.push_back(address);
  }
  freeaddrinfo(found);
  if (out.empty()) return absl::UnavailableError(absl::StrCat(host, " has no address"));
  return out;
}

Resolver::Resolver()
    : eventfd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)), thread_([this] { Run(); }) {}

Resolver::~Resolver() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  asked_.notify_all();
  thread_.join();
  close(eventfd_);
}

void Resolver::Ask(uint64_t id, std::string host, uint16_t port) {
  {
    std::lock_guard lock(mu_);
    questions_.push_back({id, std::move(host), port});
  }
  asked_.notify_one();
}

std::vector<Resolver::Answer> Resolver::Take() {
  uint64_t count;
  (void)!read(eventfd_, &count, sizeof(count));
  std::vector<Answer> out;
  std::lock_guard lock(mu_);
  out.swap(answers_);
  return out;
}

void Resolver::Run() {
  for (;;) {
    Question q;
    {
      std::unique_lock lock(mu_);
      asked_.wait(lock, [&] { return stop_ || !questions_.empty(); });
      if (stop_) return;
      q = std::move(questions_.front());
      questions_.pop_front();
    }
    Answer answer{.id = q.id, .addresses = ResolveNow(q.host, q.port)};
    {
      std::lock_guard lock(mu_);
      answers_.push_back(std::move(answer));
    }
    const uint64_t one = 1;
    (void)!write(eventfd_, &one, sizeof(one));
  }
}

}  // namespace uringest::relay
