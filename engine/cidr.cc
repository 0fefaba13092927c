#include "engine/cidr.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace uringest::engine {
namespace {

// Parses an address into `out`; sets `v6`. An IPv4-mapped IPv6 address becomes IPv4.
bool ParseIp(std::string_view text, bool* v6, std::array<uint8_t, 16>* out) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return false;
  const std::string copy(text);
  out->fill(0);
  if (inet_pton(AF_INET, copy.c_str(), out->data()) == 1) {
    *v6 = false;
    return true;
  }
  if (inet_pton(AF_INET6, copy.c_str(), out->data()) != 1) return false;
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(out->data(), kMapped, sizeof(kMapped)) == 0) {
    std::memmove(out->data(), out->data() + 12, 4);
    std::memset(out->data() + 4, 0, 12);
    *v6 = false;
    return true;
  }
  *v6 = true;
  return true;
}

}  // namespace

absl::StatusOr<CidrList> CidrList::Parse(std::string_view text) {
  CidrList list;
  // Debian's abseil has its own absl::string_view, not an alias of std::string_view.
  for (absl::string_view entry : absl::StrSplit(absl::string_view(text.data(), text.size()), ',')) {
    entry = absl::StripAsciiWhitespace(entry);
    if (entry.empty()) continue;
    Network n;
    const size_t slash = entry.find('/');  // npos: a network of one
    const std::string_view ip(entry.data(), std::min(slash, entry.size()));
    if (!ParseIp(ip, &n.v6, &n.address)) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", entry, "\": not an IPv4 or IPv6 address (or network, ADDRESS/BITS)"));
    }
    const int bits = n.v6 ? 128 : 32;
    n.prefix = bits;
    if (slash != std::string_view::npos) {
      const absl::string_view length = entry.substr(slash + 1);
      auto [end, ec] = std::from_chars(length.data(), length.data() + length.size(), n.prefix);
      if (length.empty() || ec != std::errc() || end != length.data() + length.size() ||
          n.prefix < 0 || n.prefix > bits) {
        return absl::InvalidArgumentError(absl::StrCat(
            "\"", entry, "\": the prefix length must be a number of bits from 0 to ", bits));
      }
    }
    // Host bits set ("10.1.2.3/8") are an operator's slip, not a different network:
    // cleared, so that the list matches what the operator meant.
    for (int bit = n.prefix; bit < bits; ++bit) n.address[bit / 8] &= ~uint8_t(0x80 >> bit % 8);
    list.networks_.push_back(n);
  }
  if (list.networks_.empty()) {
    return absl::InvalidArgumentError("no networks given (CIDR,...: 10.0.0.0/8,192.0.2.7)");
  }
  return list;
}

bool CidrList::Matches(const Network& n, bool v6, const std::array<uint8_t, 16>& address) {
  if (n.v6 != v6) return false;
  const int whole = n.prefix / 8;
  if (std::memcmp(n.address.data(), address.data(), whole) != 0) return false;
  const int rest = n.prefix % 8;
  if (rest == 0) return true;
  const uint8_t mask = uint8_t(0xff00 >> rest);
  return (n.address[whole] & mask) == (address[whole] & mask);
}

bool CidrList::Contains(std::string_view ip) const {
  bool v6 = false;
  std::array<uint8_t, 16> address;
  if (!ParseIp(ip, &v6, &address)) return false;
  for (const Network& n : networks_) {
    if (Matches(n, v6, address)) return true;
  }
  return false;
}

std::string CidrList::ToString() const {
  return absl::StrJoin(networks_, ",", [](std::string* out, const Network& n) {
    char text[INET6_ADDRSTRLEN];
    inet_ntop(n.v6 ? AF_INET6 : AF_INET, n.address.data(), text, sizeof(text));
    absl::StrAppend(out, text, "/", n.prefix);
  });
}

}  // namespace uringest::engine
