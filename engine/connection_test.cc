#include "engine/connection.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gtest/gtest.h"

namespace uringest::engine {
namespace {

TEST(PeerAddressTest, Ipv4IsIpColonPort) {
  EXPECT_EQ((PeerAddress{.ip = "192.0.2.7", .port = 5000}).ToString(), "192.0.2.7:5000");
}

TEST(PeerAddressTest, Ipv6IsBracketed) {
  EXPECT_EQ((PeerAddress{.ip = "2001:db8::7", .port = 1935}).ToString(), "[2001:db8::7]:1935");
}

TEST(PeerAddressTest, UnknownPeerIsAQuestionMark) {
  EXPECT_EQ((PeerAddress{.ip = "?"}).ToString(), "?");
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  EXPECT_EQ(PeerOf(fds[0]).ToString(), "?");  // not a socket
  close(fds[0]);
  close(fds[1]);
}

// PeerOf on the accepted end of a real loopback connection: the client's address and
// its ephemeral port, as the client sees its own socket.
void ExpectPeerOfLoopback(int family, const char* loopback) {
  const int listener = socket(family, SOCK_STREAM, 0);
  ASSERT_GE(listener, 0);
  sockaddr_storage ss{};
  socklen_t len;
  if (family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&ss);
    in->sin_family = AF_INET;
    inet_pton(AF_INET, loopback, &in->sin_addr);
    len = sizeof(sockaddr_in);
  } else {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
    in6->sin6_family = AF_INET6;
    inet_pton(AF_INET6, loopback, &in6->sin6_addr);
    len = sizeof(sockaddr_in6);
  }
  if (bind(listener, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    close(listener);
    GTEST_SKIP() << loopback << " is not available here";
  }
  ASSERT_EQ(listen(listener, 1), 0);
  ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&ss), &len), 0);
  const int client = socket(family, SOCK_STREAM, 0);
  ASSERT_EQ(connect(client, reinterpret_cast<sockaddr*>(&ss), len), 0);
  const int accepted = accept(listener, nullptr, nullptr);
  ASSERT_GE(accepted, 0);
  sockaddr_storage own{};
  socklen_t own_len = sizeof(own);
  ASSERT_EQ(getsockname(client, reinterpret_cast<sockaddr*>(&own), &own_len), 0);
  const uint16_t port = family == AF_INET ? ntohs(reinterpret_cast<sockaddr_in*>(&own)->sin_port)
                                          : ntohs(reinterpret_cast<sockaddr_in6*>(&own)->sin6_port);

  const PeerAddress peer = PeerOf(accepted);
  EXPECT_EQ(peer.ip, loopback);
  EXPECT_EQ(peer.port, port);
  EXPECT_NE(peer.port, 0);
  close(accepted);
  close(client);
  close(listener);
}

TEST(PeerOfTest, Ipv4LoopbackPeer) { ExpectPeerOfLoopback(AF_INET, "127.0.0.1"); }
TEST(PeerOfTest, Ipv6LoopbackPeer) { ExpectPeerOfLoopback(AF_INET6, "::1"); }

}  // namespace
}  // namespace uringest::engine
