#include "engine/proxy_protocol.h"

#include <string>
#include <string_view>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace uringest::engine {
namespace {

using ::testing::HasSubstr;
using Result = ProxyParse::Result;

std::span<const uint8_t> Bytes(std::string_view text) {
  return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

// A v2 header: signature, version 2 and `command`, `family_transport`, the declared
// length `length` (the body's size when negative), then `body`.
std::vector<uint8_t> V2(uint8_t command, uint8_t family_transport, std::vector<uint8_t> body,
                        int length = -1) {
  std::vector<uint8_t> out = {0x0D,
                              0x0A,
                              0x0D,
                              0x0A,
                              0x00,
                              0x0D,
                              0x0A,
                              0x51,
                              0x55,
                              0x49,
                              0x54,
                              0x0A,
                              uint8_t(0x20 | command),
                              family_transport};
  const size_t n = length < 0 ? body.size() : size_t(length);
  out.push_back(uint8_t(n >> 8));
  out.push_back(uint8_t(n));
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

// HAProxy's send-proxy-v2 for 198.51.100.7:40000 -> 10.0.0.2:1935.
std::vector<uint8_t> V2Inet() {
  return V2(1, 0x11, {198, 51, 100, 7, 10, 0, 0, 2, 0x9c, 0x40, 0x07, 0x8f});
}

TEST(ProxyProtocolTest, V1Tcp4) {
  const std::string_view text = "PROXY TCP4 198.51.100.7 10.0.0.2 40000 1935\r\n\x03rest";
  ProxyParse p = ParseProxyHeader(Bytes(text));
  ASSERT_EQ(p.result, Result::kComplete) << p.error;
  EXPECT_EQ(p.length, text.find('\x03'));
  EXPECT_EQ(p.header.version, 1);
  EXPECT_TRUE(p.header.has_address);
  EXPECT_FALSE(p.header.local);
  EXPECT_EQ(p.header.source_ip, "198.51.100.7");
  EXPECT_EQ(p.header.source_port, 40000);
  EXPECT_EQ(p.header.destination_ip, "10.0.0.2");
  EXPECT_EQ(p.header.destination_port, 1935);
}

TEST(ProxyProtocolTest, V1Tcp6IsWrittenBackCanonically) {
  ProxyParse p = ParseProxyHeader(Bytes("PROXY TCP6 2001:DB8:0:0::07 ::1 5000 1935\r\n"));
  ASSERT_EQ(p.result, Result::kComplete) << p.error;
  EXPECT_EQ(p.header.source_ip, "2001:db8::7");
  EXPECT_EQ(p.header.destination_ip, "::1");
}

TEST(ProxyProtocolTest, V1UnknownNamesNoClient) {
  ProxyParse p = ParseProxyHeader(Bytes("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"));
  ASSERT_EQ(p.result, Result::kComplete) << p.error;
  EXPECT_FALSE(p.header.has_address);
  EXPECT_EQ(p.length, 35u);
}

// The header may come a byte at a time: every prefix is incomplete, never an error.
TEST(ProxyProtocolTest, EveryPrefixIsIncomplete) {
  const std::string v1 = "PROXY TCP4 198.51.100.7 10.0.0.2 40000 1935\r\n";
  const std::vector<uint8_t> v2 = V2Inet();
  for (size_t n = 0; n < v1.size(); ++n) {
    ProxyParse p = ParseProxyHeader(Bytes(std::string_view(v1).substr(0, n)));
    EXPECT_EQ(p.result, Result::kIncomplete) << n << ": " << p.error;
  }
  for (size_t n = 0; n < v2.size(); ++n) {
    ProxyParse p = ParseProxyHeader(std::span(v2).first(n));
    EXPECT_EQ(p.result, Result::kIncomplete) << n << ": " << p.error;
  }
  EXPECT_EQ(ParseProxyHeader(v2).result, Result::kComplete);
}

TEST(ProxyProtocolTest, V1Errors) {
  struct Case {
    std::string input;
    std::string error;
  };
  const std::vector<Case> cases = {
      {"PROXY TCP4 198.51.100.300 10.0.0.2 40000 1935\r\n",
       "PROXY v1 line: \"198.51.100.300\" is not an IPv4 address"},
      {"PROXY TCP4 2001:db8::7 10.0.0.2 40000 1935\r\n", "is not an IPv4 address"},
      {"PROXY TCP6 198.51.100.7 ::1 40000 1935\r\n", "is not an IPv6 address"},
      {"PROXY TCP4 198.51.100.7 10.0.0.2 70000 1935\r\n", "\"70000\" is not a port"},
      {"PROXY TCP4 198.51.100.7 10.0.0.2 040 1935\r\n", "\"040\" is not a port"},
      {"PROXY TCP4 198.51.100.7 10.0.0.2 40000\r\n", "5 fields, not 6"},
      {"PROXY UDP4 198.51.100.7 10.0.0.2 40000 1935\r\n", "protocol \"UDP4\""},
      {"PROXY TCP4  198.51.100.7 10.0.0.2 40000 1935\r\n", "7 fields"},
      {"PROXY TCP4 198.51.100.7\n", "byte 0x0a"},
      {"PROXY " + std::string(200, '1') + "\r\n", "PROXY v1 line longer than 107 bytes"},
      {"\x03\x00\x00\x00", "no PROXY protocol header: the connection began with 0x03, an RTMP"},
      {"\x16\x03\x01", "0x16, a TLS handshake"},
      {"PROXZ", "byte 0x50"},
  };
  for (const Case& c : cases) {
    ProxyParse p = ParseProxyHeader(Bytes(c.input));
    EXPECT_EQ(p.result, Result::kError) << c.input;
    EXPECT_THAT(p.error, HasSubstr(c.error)) << c.input;
  }
}

TEST(ProxyProtocolTest, V2Inet) {
  std::vector<uint8_t> bytes = V2Inet();
  bytes.push_back(0x03);  // the client's first byte
  ProxyParse p = ParseProxyHeader(bytes);
  ASSERT_EQ(p.result, Result::kComplete) << p.error;
  EXPECT_EQ(p.length, 28u);
  EXPECT_EQ(p.header.version, 2);
  EXPECT_EQ(p.header.source_ip, "198.51.100.7");
  EXPECT_EQ(p.header.source_port, 40000);
  EXPECT_EQ(p.header.destination_ip, "10.0.0.2");
  EXPECT_EQ(p.header.destination_port, 1935);
}

TEST(ProxyProtocolTest, V2Inet6WithTlvs) {
  std::vector<uint8_t> body(36, 0);
  body[0] = 0x20;
  body[1] = 0x01;
  body[2] = 0x0d;
  body[3] = 0xb8;
  body[15] = 7;
  body[31] = 1;
  body[32] = 0x13;
  body[33] = 0x88;
  // A PP2_TYPE_AWS TLV (type 0xEA), skipped.
  const std::vector<uint8_t> tlv = {0xEA, 0x00, 0x05, 0x01, 'v', 'p', 'c', 'e'};
  body.insert(body.end(), tlv.begin(), tlv.end());
  ProxyParse p = ParseProxyHeader(V2(1, 0x21, body));
  ASSERT_EQ(p.result, Result::kComplete) << p.error;
  EXPECT_EQ(p.length, 16 + body.size());
  EXPECT_EQ(p.header.source_ip, "2001:db8::7");
  EXPECT_EQ(p.header.source_port, 5000);
  EXPECT_EQ(p.header.destination_ip, "::1");
}

TEST(ProxyProtocolTest, V2LocalAndUnspecNameNoClient) {
  ProxyParse local = ParseProxyHeader(V2(0, 0x00, {}));
  ASSERT_EQ(local.result, Result::kComplete) << local.error;
  EXPECT_TRUE(local.header.local);
  EXPECT_FALSE(local.header.has_address);
  // LOCAL with addresses (HAProxy's health checks carry none, others may): ignored.
  ProxyParse local_inet = ParseProxyHeader(V2(0, 0x11, std::vector<uint8_t>(12, 1)));
  ASSERT_EQ(local_inet.result, Result::kComplete) << local_inet.error;
  EXPECT_TRUE(local_inet.header.local);
  EXPECT_FALSE(local_inet.header.has_address);
  ProxyParse unspec = ParseProxyHeader(V2(1, 0x00, {}));
  ASSERT_EQ(unspec.result, Result::kComplete) << unspec.error;
  EXPECT_FALSE(unspec.header.local);
  EXPECT_FALSE(unspec.header.has_address);
}

TEST(ProxyProtocolTest, V2Errors) {
  struct Case {
    std::vector<uint8_t> input;
    std::string error;
  };
  std::vector<uint8_t> version1 = V2Inet();
  version1[12] = 0x11;
  const std::vector<Case> cases = {
      {V2(1, 0x11, std::vector<uint8_t>(12, 0), 60000), "60016 bytes: over the 4096-byte limit"},
      {V2(1, 0x41, std::vector<uint8_t>(12, 0)), "unknown address family 4"},
      {V2(1, 0x31, std::vector<uint8_t>(216, 0)), "AF_UNIX"},
      {V2(1, 0x12, std::vector<uint8_t>(12, 0)), "transport 2 (UDP)"},
      {V2(1, 0x11, std::vector<uint8_t>(8, 0)), "too short for AF_INET addresses (8 bytes"},
      {V2(1, 0x21, std::vector<uint8_t>(12, 0)), "too short for AF_INET6"},
      {V2(2, 0x11, std::vector<uint8_t>(12, 0)), "command 2"},
      {version1, "version 1"},
  };
  for (const Case& c : cases) {
    ProxyParse p = ParseProxyHeader(c.input);
    EXPECT_EQ(p.result, Result::kError) << c.error;
    EXPECT_THAT(p.error, HasSubstr(c.error));
  }
}

// An oversized header is refused from its fixed part: a peer can't make the server wait
// for (and keep) 64 KiB.
TEST(ProxyProtocolTest, OversizedIsRefusedBeforeItsBody) {
  std::vector<uint8_t> bytes = V2(1, 0x11, {}, kProxyV2MaxBody + 1);
  EXPECT_EQ(ParseProxyHeader(bytes).result, Result::kError);
  std::vector<uint8_t> largest = V2(1, 0x11, std::vector<uint8_t>(kProxyV2MaxBody, 0));
  ProxyParse p = ParseProxyHeader(largest);
  ASSERT_EQ(p.result, Result::kComplete) << p.error;
  EXPECT_EQ(p.length, kMaxProxyHeader);
}

}  // namespace
}  // namespace uringest::engine
