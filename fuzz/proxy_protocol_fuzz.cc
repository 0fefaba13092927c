// proxy_protocol_fuzz: the PROXY protocol header parser (engine/proxy_protocol.h), fed as
// a connection feeds it: everything received so far, growing by pieces. The input is a
// split seed (8 bytes) and then what a balancer (or anyone) sends first.
//
// Checked: once a prefix is complete or wrong, every longer input gets the same verdict,
// length and header (what follows the header never changes it); an incomplete verdict
// never comes for more than kMaxProxyHeader bytes, so what a connection keeps is
// bounded; a complete header is at most kMaxProxyHeader bytes and no longer than the
// input; an address it names parses back as an address of its family and, written as a
// v1 line or a v2 header, parses to the same header; an error always has a reason; input
// that starts like neither version is refused at its first byte.

#include <arpa/inet.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/proxy_protocol.h"
#include "fuzz/fuzz_util.h"

namespace uringest::fuzz {
namespace {

using engine::ParseProxyHeader;
using engine::ProxyHeader;
using engine::ProxyParse;
using Result = ProxyParse::Result;

bool SameHeader(const ProxyHeader& a, const ProxyHeader& b) {
  return a.version == b.version && a.local == b.local && a.has_address == b.has_address &&
         a.source_ip == b.source_ip && a.source_port == b.source_port &&
         a.destination_ip == b.destination_ip && a.destination_port == b.destination_port;
}

bool SameVerdict(const ProxyParse& a, const ProxyParse& b) {
  return a.result == b.result && a.length == b.length && a.error == b.error &&
         SameHeader(a.header, b.header);
}

bool IsV6(const std::string& ip) { return ip.find(':') != std::string::npos; }

// The header written again, as v1 and as v2 (addresses only): each must parse the same.
void CheckRoundTrip(const ProxyHeader& h) {
  if (!h.has_address) return;
  const bool v6 = IsV6(h.source_ip);
  FUZZ_CHECK(v6 == IsV6(h.destination_ip), "mixed families: %s, %s", h.source_ip.c_str(),
             h.destination_ip.c_str());
  const std::string line =
      absl::StrCat("PROXY ", v6 ? "TCP6 " : "TCP4 ", h.source_ip, " ", h.destination_ip, " ",
                   h.source_port, " ", h.destination_port, "\r\n");
  const std::span<const uint8_t> v1(reinterpret_cast<const uint8_t*>(line.data()), line.size());
  ProxyParse p1 = ParseProxyHeader(v1);
  FUZZ_CHECK(p1.result == Result::kComplete && p1.length == line.size(),
             "its own v1 line (%s) gives %d: %s", line.c_str(), int(p1.result), p1.error.c_str());
  p1.header.version = h.version;
  FUZZ_CHECK(SameHeader(p1.header, h), "the v1 line %s parses to another header", line.c_str());

  std::vector<uint8_t> v2 = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A,
                             0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, uint8_t(v6 ? 0x21 : 0x11)};
  const size_t width = v6 ? 16 : 4;
  v2.push_back(0);
  v2.push_back(uint8_t(width * 2 + 4));
  uint8_t address[16];
  for (const std::string* ip : {&h.source_ip, &h.destination_ip}) {
    FUZZ_CHECK(inet_pton(v6 ? AF_INET6 : AF_INET, ip->c_str(), address) == 1, "%s is no address",
               ip->c_str());
    v2.insert(v2.end(), address, address + width);
  }
  for (uint16_t port : {h.source_port, h.destination_port}) {
    v2.push_back(uint8_t(port >> 8));
    v2.push_back(uint8_t(port));
  }
  ProxyParse p2 = ParseProxyHeader(v2);
  FUZZ_CHECK(p2.result == Result::kComplete && p2.length == v2.size(), "its own v2 header: %s",
             p2.error.c_str());
  p2.header.version = h.version;
  FUZZ_CHECK(SameHeader(p2.header, h), "the v2 header parses to another header");
}

}  // namespace
}  // namespace uringest::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace uringest;
  using namespace uringest::fuzz;
  if (size <= 8) return 0;
  uint64_t seed;
  std::memcpy(&seed, data, 8);
  const std::span<const uint8_t> bytes(data + 8, size - 8);

  const ProxyParse whole = ParseProxyHeader(bytes);
  FUZZ_CHECK(whole.result != Result::kIncomplete || bytes.size() < engine::kMaxProxyHeader,
             "still incomplete after %zu bytes", bytes.size());
  if (whole.result == Result::kError) {
    FUZZ_CHECK(!whole.error.empty(), "an error without a reason");
  }
  if (bytes[0] != 'P' && bytes[0] != 0x0D) {
    FUZZ_CHECK(whole.result == Result::kError, "accepted input that begins with 0x%02x", bytes[0]);
  }
  if (whole.result == Result::kComplete) {
    FUZZ_CHECK(
        whole.length > 0 && whole.length <= bytes.size() && whole.length <= engine::kMaxProxyHeader,
        "a header of %zu bytes in %zu", whole.length, bytes.size());
    FUZZ_CHECK(whole.header.version == 1 || whole.header.version == 2, "version %d",
               whole.header.version);
    FUZZ_CHECK(!whole.header.local || !whole.header.has_address, "LOCAL with an address");
    // The header alone parses the same as the header with what followed it.
    const ProxyParse alone = ParseProxyHeader(bytes.first(whole.length));
    FUZZ_CHECK(SameVerdict(alone, whole), "the header alone parses differently");
    CheckRoundTrip(whole.header);
  }

  // Growing by pieces, as a connection receives it: incomplete, then the verdict, then
  // the same verdict for every longer prefix.
  size_t received = 0;
  bool decided = false;
  ForEachPiece(bytes, seed, [&](std::span<const uint8_t> piece) {
    received += piece.size();
    const ProxyParse p = ParseProxyHeader(bytes.first(received));
    if (p.result == Result::kIncomplete) {
      FUZZ_CHECK(!decided, "incomplete again at %zu bytes", received);
      return;
    }
    decided = true;
    FUZZ_CHECK(SameVerdict(p, whole), "at %zu of %zu bytes the verdict is not the whole's",
               received, bytes.size());
  });
  return 0;
}
