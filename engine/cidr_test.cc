#include "engine/cidr.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace uringest::engine {
namespace {

using ::testing::HasSubstr;

TEST(CidrListTest, Ipv4Networks) {
  absl::StatusOr<CidrList> list = CidrList::Parse("10.0.0.0/8, 192.0.2.7,172.16.0.0/12");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_TRUE(list->Contains("10.250.0.1"));
  EXPECT_TRUE(list->Contains("192.0.2.7"));
  EXPECT_FALSE(list->Contains("192.0.2.8"));
  EXPECT_TRUE(list->Contains("172.31.255.255"));
  EXPECT_FALSE(list->Contains("172.32.0.0"));
  EXPECT_FALSE(list->Contains("11.0.0.1"));
  EXPECT_FALSE(list->Contains("not an address"));
  EXPECT_EQ(list->ToString(), "10.0.0.0/8,192.0.2.7/32,172.16.0.0/12");
}

TEST(CidrListTest, Ipv6NetworksAndMappedAddresses) {
  absl::StatusOr<CidrList> list = CidrList::Parse("2001:db8::/33,10.1.0.0/16");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_TRUE(list->Contains("2001:db8:7fff::1"));
  EXPECT_FALSE(list->Contains("2001:db8:8000::1"));
  EXPECT_FALSE(list->Contains("10.2.0.1"));
  // A dual-stack listener's IPv4 peer: the IPv4 address it carries.
  EXPECT_TRUE(list->Contains("::ffff:10.1.2.3"));
  EXPECT_FALSE(list->Contains("::ffff:10.2.2.3"));
  // An IPv6 network never holds IPv4 addresses, nor the reverse.
  EXPECT_FALSE(CidrList::Parse("::/0")->Contains("10.1.2.3"));
  EXPECT_FALSE(CidrList::Parse("0.0.0.0/0")->Contains("::1"));
  EXPECT_TRUE(CidrList::Parse("0.0.0.0/0")->Contains("203.0.113.9"));
}

TEST(CidrListTest, HostBitsAreCleared) {
  absl::StatusOr<CidrList> list = CidrList::Parse("10.1.2.3/8");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->ToString(), "10.0.0.0/8");
  EXPECT_TRUE(list->Contains("10.200.0.1"));
}

TEST(CidrListTest, ErrorsNameTheEntry) {
  EXPECT_THAT(CidrList::Parse("10.0.0.0/8,10.0.0.300").status().message(),
              HasSubstr("\"10.0.0.300\": not an IPv4 or IPv6 address"));
  EXPECT_THAT(CidrList::Parse("10.0.0.0/33").status().message(), HasSubstr("from 0 to 32"));
  EXPECT_THAT(CidrList::Parse("::/129").status().message(), HasSubstr("from 0 to 128"));
  EXPECT_THAT(CidrList::Parse("10.0.0.0/").status().message(), HasSubstr("prefix length"));
  EXPECT_THAT(CidrList::Parse("10.0.0.0/8x").status().message(), HasSubstr("prefix length"));
  EXPECT_THAT(CidrList::Parse(" , ").status().message(), HasSubstr("no networks"));
}

}  // namespace
}  // namespace uringest::engine
