// proxy_protocol.h: the header a TCP load balancer (HAProxy's send-proxy and
// send-proxy-v2, an AWS NLB, IPVS with the PROXY module) puts before the client's bytes
// to name the client: PROXY protocol version 1 (a text line) and version 2 (binary),
// as https://www.haproxy.org/download/2.6/doc/proxy-protocol.txt defines them.
//
// The parser is resumable in the simplest way: it is given everything received so far
// and says whether the header is complete, incomplete, or wrong; it refuses a header
// longer than kMaxProxyHeader as soon as the bytes show it, so a caller that keeps the
// incomplete bytes keeps less than that.
//
//   ProxyParse p = ParseProxyHeader(bytes);
//   switch (p.result) {
//     case ProxyParse::Result::kIncomplete: keep `bytes`, wait for more;
//     case ProxyParse::Result::kError: close, logging p.error;
//     case ProxyParse::Result::kComplete: the client's bytes start at bytes[p.length];
//   }
//
// What is accepted: v1 "PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n" and "PROXY UNKNOWN...";
// v2 PROXY over AF_INET or AF_INET6 (TLVs after the addresses are skipped), v2 PROXY
// with AF_UNSPEC, and v2 LOCAL (a balancer's own connection, a health check). The last
// three and "UNKNOWN" name no client: has_address is false, and the connection's own
// source stays its address. Refused: AF_UNIX (it names no publisher), datagram
// transports, unknown families, versions and commands, and malformed lines.
//
// Thread safety: pure functions.

#ifndef URINGEST_ENGINE_PROXY_PROTOCOL_H_
#define URINGEST_ENGINE_PROXY_PROTOCOL_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace uringest::engine {

// v1: "PROXY " ... "\r\n" is at most 107 bytes (the spec's bound, with TCP6 addresses).
inline constexpr size_t kProxyV1MaxLine = 107;
// v2: the 12-byte signature, version and command, family, and the 16-bit length.
inline constexpr size_t kProxyV2FixedSize = 16;
// The most a v2 header may declare after its fixed part. Addresses take 36 bytes at
// most; the rest is TLVs (AWS puts a VPC endpoint id there, HAProxy SSL facts, unique
// ids), for which 4 KiB is ample.
inline constexpr size_t kProxyV2MaxBody = 4080;
inline constexpr size_t kMaxProxyHeader = kProxyV2FixedSize + kProxyV2MaxBody;

struct ProxyHeader {
  int version = 0;           // 1 or 2
  bool local = false;        // v2 LOCAL: the balancer's own connection (a health check)
  bool has_address = false;  // false: LOCAL, AF_UNSPEC, "UNKNOWN"
  std::string source_ip;     // "198.51.100.7", "2001:db8::7"
  uint16_t source_port = 0;
  std::string destination_ip;
  uint16_t destination_port = 0;
};

struct ProxyParse {
  enum class Result { kIncomplete, kComplete, kError };
  Result result = Result::kIncomplete;
  size_t length = 0;  // kComplete: the header's bytes
  ProxyHeader header;
  std::string error;  // kError: why, for a log line ("PROXY v1 line ...")
};

// Parses the header at the start of `bytes` (everything received so far).
ProxyParse ParseProxyHeader(std::span<const uint8_t> bytes);

}  // namespace uringest::engine

#endif  // URINGEST_ENGINE_PROXY_PROTOCOL_H_
