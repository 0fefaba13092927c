#include "engine/proxy_protocol.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <string_view>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace uringest::engine {
namespace {

constexpr std::string_view kV1Prefix = "PROXY ";
constexpr std::array<uint8_t, 12> kV2Signature = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                  0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

ProxyParse Error(std::string why) {
  ProxyParse p;
  p.result = ProxyParse::Result::kError;
  p.error = std::move(why);
  return p;
}

// A token from the wire, quoted for a log line: escaped, and cut at 40 bytes.
std::string Quoted(absl::string_view token) {
  std::string text = absl::CHexEscape(token.substr(0, 40));
  return absl::StrCat("\"", text, token.size() > 40 ? "...\"" : "\"");
}

// What a connection without a header began with, for the log line: the usual mistakes
// are a publisher that reached the node directly, and TLS that the balancer passes on.
std::string WhatItBeganWith(uint8_t first) {
  switch (first) {
    case 0x03:
      return "0x03, an RTMP handshake: a publisher that did not come through the balancer, "
             "or a balancer that sends no header";
    case 0x16:
      return "0x16, a TLS handshake, and no header before it";
    default:
      return absl::StrFormat("byte 0x%02x", first);
  }
}

// `prefix` is how much of `expected` `bytes` must match to be on the way to it.
bool StartsLike(std::span<const uint8_t> bytes, std::span<const uint8_t> expected) {
  const size_t n = std::min(bytes.size(), expected.size());
  return std::equal(bytes.begin(), bytes.begin() + n, expected.begin());
}

bool ParsePort(absl::string_view text, uint16_t* port) {
  if (text.empty() || text.size() > 5 || (text.size() > 1 && text[0] == '0')) return false;
  uint32_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value > 65535) return false;
  *port = uint16_t(value);
  return true;
}

// An address of `family` in text form, checked by inet_pton and written back the way
// inet_ntop writes it (so that "2001:DB8::07" and "2001:db8::7" are one publisher).
bool ParseAddress(int family, absl::string_view text, std::string* out) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return false;
  const std::string copy(text.data(), text.size());
  std::array<uint8_t, 16> binary;
  if (inet_pton(family, copy.c_str(), binary.data()) != 1) return false;
  char buffer[INET6_ADDRSTRLEN];
  if (inet_ntop(family, binary.data(), buffer, sizeof(buffer)) == nullptr) return false;
  *out = buffer;
  return true;
}

ProxyParse ParseV1(std::span<const uint8_t> bytes) {
  const std::string_view data(reinterpret_cast<const char*>(bytes.data()),
                              std::min(bytes.size(), kProxyV1MaxLine));
  // A line holds only printable ASCII up to its CRLF: anything else shows at once that
  // it is no header, whether the CRLF has come or not (so the verdict on a prefix is the
  // verdict on the whole).
  size_t crlf = std::string_view::npos;
  for (size_t i = 0; i < data.size() && crlf == std::string_view::npos; ++i) {
    const char c = data[i];
    if (c == '\r' && (i + 1 == data.size() || data[i + 1] == '\n')) {
      if (i + 1 < data.size()) crlf = i;
      continue;
    }
    if (c < 0x20 || c > 0x7e) {
      return Error(absl::StrFormat("PROXY v1 line with byte 0x%02x in it", uint8_t(c)));
    }
  }
  if (crlf == std::string_view::npos) {
    if (bytes.size() >= kProxyV1MaxLine) {
      return Error(
          absl::StrCat("PROXY v1 line longer than ", kProxyV1MaxLine, " bytes without its CRLF"));
    }
    return ProxyParse{};
  }
  const std::string_view line = data.substr(0, crlf);
  // Debian's abseil has its own absl::string_view, not an alias of std::string_view.
  const std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(line.data(), line.size()), ' ');
  ProxyParse p;
  p.result = ProxyParse::Result::kComplete;
  p.length = crlf + 2;
  p.header.version = 1;
  if (fields.size() >= 2 && fields[1] == "UNKNOWN") return p;  // the rest is ignored
  if (fields.size() < 2 || (fields[1] != "TCP4" && fields[1] != "TCP6")) {
    return Error(absl::StrCat("PROXY v1 line with protocol ",
                              Quoted(fields.size() < 2 ? "" : fields[1]),
                              " (TCP4, TCP6 or UNKNOWN)"));
  }
  if (fields.size() != 6) {
    return Error(absl::StrCat("PROXY v1 line with ", fields.size(), " fields, not 6 (PROXY ",
                              fields[1], " SRC DST SPORT DPORT)"));
  }
  const bool v4 = fields[1] == "TCP4";
  const int family = v4 ? AF_INET : AF_INET6;
  ProxyHeader& h = p.header;
  for (int i : {2, 3}) {
    if (!ParseAddress(family, fields[i], i == 2 ? &h.source_ip : &h.destination_ip)) {
      return Error(absl::StrCat("PROXY v1 line: ", Quoted(fields[i]), " is not an ",
                                v4 ? "IPv4" : "IPv6", " address"));
    }
  }
  for (int i : {4, 5}) {
    if (!ParsePort(fields[i], i == 4 ? &h.source_port : &h.destination_port)) {
      return Error(absl::StrCat("PROXY v1 line: ", Quoted(fields[i]), " is not a port"));
    }
  }
  h.has_address = true;
  return p;
}

uint16_t Big16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }

ProxyParse ParseV2(std::span<const uint8_t> bytes) {
  if (bytes.size() < kProxyV2FixedSize) return ProxyParse{};
  const uint8_t version = bytes[12] >> 4;
  const uint8_t command = bytes[12] & 0x0f;
  const uint8_t family = bytes[13] >> 4;
  const uint8_t transport = bytes[13] & 0x0f;
  const size_t body = Big16(&bytes[14]);
  if (version != 2) return Error(absl::StrCat("PROXY v2 signature with version ", version));
  if (command > 1) {
    return Error(absl::StrCat("PROXY v2 header with command ", command, " (0 LOCAL, 1 PROXY)"));
  }
  if (body > kProxyV2MaxBody) {
    return Error(absl::StrCat("PROXY v2 header of ", kProxyV2FixedSize + body, " bytes: over the ",
                              kMaxProxyHeader, "-byte limit"));
  }
  if (bytes.size() < kProxyV2FixedSize + body) return ProxyParse{};
  ProxyParse p;
  p.result = ProxyParse::Result::kComplete;
  p.length = kProxyV2FixedSize + body;
  p.header.version = 2;
  if (command == 0) {  // LOCAL: the family and addresses are to be ignored
    p.header.local = true;
    return p;
  }
  if (family == 0) return p;  // AF_UNSPEC: the balancer won't say
  if (family == 3) {
    return Error("PROXY v2 header with AF_UNIX addresses, which name no publisher");
  }
  if (family > 3) {
    return Error(absl::StrCat("PROXY v2 header with unknown address family ", family,
                              " (1 AF_INET, 2 AF_INET6)"));
  }
  if (transport != 1) {
    return Error(absl::StrCat("PROXY v2 header for transport ", transport,
                              transport == 2 ? " (UDP)" : "", ", not 1 (TCP)"));
  }
  const bool v4 = family == 1;
  const size_t address_bytes = v4 ? 12 : 36;
  const size_t width = v4 ? 4 : 16;
  if (body < address_bytes) {
    return Error(absl::StrCat("PROXY v2 header too short for ", v4 ? "AF_INET" : "AF_INET6",
                              " addresses (", body, " bytes, not ", address_bytes, ")"));
  }
  const uint8_t* a = &bytes[kProxyV2FixedSize];
  char text[INET6_ADDRSTRLEN];
  ProxyHeader& h = p.header;
  inet_ntop(v4 ? AF_INET : AF_INET6, a, text, sizeof(text));
  h.source_ip = text;
  inet_ntop(v4 ? AF_INET : AF_INET6, a + width, text, sizeof(text));
  h.destination_ip = text;
  h.source_port = Big16(a + 2 * width);
  h.destination_port = Big16(a + 2 * width + 2);
  h.has_address = true;
  return p;
}

}  // namespace

ProxyParse ParseProxyHeader(std::span<const uint8_t> bytes) {
  if (bytes.empty()) return ProxyParse{};
  const auto v1 = std::span(reinterpret_cast<const uint8_t*>(kV1Prefix.data()), kV1Prefix.size());
  if (StartsLike(bytes, v1)) {
    return bytes.size() < v1.size() ? ProxyParse{} : ParseV1(bytes);
  }
  if (StartsLike(bytes, kV2Signature)) {
    return bytes.size() < kV2Signature.size() ? ProxyParse{} : ParseV2(bytes);
  }
  return Error(absl::StrCat("no PROXY protocol header: the connection began with ",
                            WhatItBeganWith(bytes[0])));
}

}  // namespace uringest::engine
