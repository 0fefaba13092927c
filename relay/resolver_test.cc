#include "relay/resolver.h"

#include <arpa/inet.h>
#include <poll.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace uringest::relay {
namespace {

TEST(ResolveNowTest, IpLiteralsAndNames) {
  absl::StatusOr<std::vector<Address>> v4 = ResolveNow("127.0.0.1", 1935);
  ASSERT_TRUE(v4.ok()) << v4.status();
  ASSERT_EQ(v4->size(), 1u);
  const auto* in = reinterpret_cast<const sockaddr_in*>(&(*v4)[0].storage);
  EXPECT_EQ(in->sin_family, AF_INET);
  EXPECT_EQ(ntohs(in->sin_port), 1935);
  EXPECT_EQ(ntohl(in->sin_addr.s_addr), INADDR_LOOPBACK);

  absl::StatusOr<std::vector<Address>> local = ResolveNow("localhost", 80);
  ASSERT_TRUE(local.ok()) << local.status();
  EXPECT_GE(local->size(), 1u);

  // A name that fails without asking a name server (the test machine may have none).
  absl::StatusOr<std::vector<Address>> bad = ResolveNow("", 1935);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), ::testing::HasSubstr("can't resolve"));
}

TEST(ResolverTest, AnswersComeThroughItsFdByQuestion) {
  Resolver resolver;
  resolver.Ask(1, "127.0.0.1", 1);
  resolver.Ask(2, "", 2);
  std::vector<Resolver::Answer> answers;
  while (answers.size() < 2) {
    pollfd p{.fd = resolver.fd(), .events = POLLIN};
    ASSERT_EQ(poll(&p, 1, 30'000), 1) << "no answer in 30 s";
    for (Resolver::Answer& a : resolver.Take()) answers.push_back(std::move(a));
  }
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(answers[0].id, 1u);
  EXPECT_TRUE(answers[0].addresses.ok());
  EXPECT_EQ(answers[1].id, 2u);
  EXPECT_FALSE(answers[1].addresses.ok());
}

}  // namespace
}  // namespace uringest::relay
