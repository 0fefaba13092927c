// cidr.h: a list of IPv4 and IPv6 networks ("10.0.0.0/8,2001:db8::/32,192.0.2.7"), as
// --trusted-proxies takes them, and the test whether an address is in one of them.
//
//   absl::StatusOr<CidrList> trusted = CidrList::Parse("10.0.0.0/8,192.0.2.7");
//   if (!trusted->Contains(peer_ip)) refuse();
//
// An address without a prefix length is a network of one. An IPv4-mapped IPv6 address
// ("::ffff:10.1.2.3", what a dual-stack listener reports for an IPv4 peer) is matched as
// the IPv4 address it carries.
//
// Thread safety: immutable after Parse(); Contains() from any thread.

#ifndef URINGEST_ENGINE_CIDR_H_
#define URINGEST_ENGINE_CIDR_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace uringest::engine {

class CidrList {
 public:
  // Comma-separated networks; spaces around them are allowed. Errors name the entry.
  static absl::StatusOr<CidrList> Parse(std::string_view text);

  // `ip` in text form, as the connection's peer has it; false for text that is no address.
  bool Contains(std::string_view ip) const;
  bool empty() const { return networks_.empty(); }
  // The networks as written back in canonical form ("10.0.0.0/8,2001:db8::/32").
  std::string ToString() const;

 private:
  struct Network {
    bool v6 = false;
    std::array<uint8_t, 16> address{};  // v4: the first 4 bytes
    int prefix = 0;                     // bits
  };
  static bool Matches(const Network& n, bool v6, const std::array<uint8_t, 16>& address);

  std::vector<Network> networks_;
};

}  // namespace uringest::engine

#endif  // URINGEST_ENGINE_CIDR_H_
