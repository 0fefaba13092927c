#include "relay/push_rules.h"

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace uringest::relay {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(UpstreamUrlTest, SplitsAsFfmpegDoes) {
  absl::StatusOr<UpstreamUrl> u = ParseUpstreamUrl("rtmp://origin.example:1936/live/cam7?key=k");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_FALSE(u->tls);
  EXPECT_EQ(u->host, "origin.example");
  EXPECT_EQ(u->port, 1936);
  EXPECT_EQ(u->app, "live");
  EXPECT_EQ(u->stream, "cam7?key=k");
  EXPECT_EQ(u->tc_url, "rtmp://origin.example:1936/live");

  u = ParseUpstreamUrl("rtmps://a.rtmp.youtube.com/live2/abcd-efgh");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->app, "live2");
  EXPECT_EQ(u->stream, "abcd-efgh");

  // Three path elements: the app has an instance.
  u = ParseUpstreamUrl("rtmp://[::1]/app/inst/name");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 1935);
  EXPECT_EQ(u->app, "app/inst");
  EXPECT_EQ(u->stream, "name");
  EXPECT_EQ(u->tc_url, "rtmp://[::1]/app/inst");
}

TEST(UpstreamUrlTest, BadUrlsSayWhy) {
  EXPECT_THAT(ParseUpstreamUrl("http://x/live/a").status().message(), HasSubstr("rtmp://"));
  EXPECT_THAT(ParseUpstreamUrl("rtmp://x").status().message(), HasSubstr("no application"));
  EXPECT_THAT(ParseUpstreamUrl("rtmp://x/live").status().message(), HasSubstr("/APP/NAME"));
  EXPECT_THAT(ParseUpstreamUrl("rtmp://x:0/live/a").status().message(), HasSubstr("port"));
  EXPECT_THAT(ParseUpstreamUrl("rtmp://x:99999/live/a").status().message(), HasSubstr("port"));
  EXPECT_THAT(ParseUpstreamUrl("rtmp:///live/a").status().message(), HasSubstr("no host"));
  EXPECT_THAT(ParseUpstreamUrl("rtmp://x/live/?k=1").status().message(), HasSubstr("no stream"));
}

TEST(UpstreamUrlTest, TcUrlTakesTheWholePathAsTheApplication) {
  absl::StatusOr<UpstreamUrl> u = ParseTcUrl("rtmp://10.0.0.2:1936/live");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->host, "10.0.0.2");
  EXPECT_EQ(u->port, 1936);
  EXPECT_EQ(u->app, "live");
  EXPECT_EQ(u->stream, "");
  EXPECT_EQ(u->tc_url, "rtmp://10.0.0.2:1936/live");

  u = ParseTcUrl("rtmp://[::1]/app/inst");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 1935);
  EXPECT_EQ(u->app, "app/inst");

  u = ParseTcUrl("rtmps://edge.example/live");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->port, 443);

  EXPECT_THAT(ParseTcUrl("rtmp://x").status().message(), HasSubstr("no application"));
  EXPECT_THAT(ParseTcUrl("rtmp://x/").status().message(), HasSubstr("no application"));
  EXPECT_THAT(ParseTcUrl("rtmp://x:70000/live").status().message(), HasSubstr("port"));
  EXPECT_THAT(ParseTcUrl("http://x/live").status().message(), HasSubstr("rtmp://"));
}

TEST(UpstreamUrlTest, RedactionHidesQueryValues) {
  EXPECT_EQ(RedactedUrl("rtmp://x/live/a?key=secret&u=me&flag"),
            "rtmp://x/live/a?key=***&u=***&flag");
  EXPECT_EQ(RedactedUrl("rtmp://x/live/a"), "rtmp://x/live/a");
}

TEST(PushRuleTest, TemplatesAndSeveralDestinations) {
  std::vector<PushRule> rules;
  for (const char* text :
       {"live/*=rtmp://origin/live/{name}", "live/*  rtmp://backup:1940/{app}/{name}?from=edge",
        "*=rtmp://archive/all/{stream}", "live/*=rtmp://origin/live/{name}"}) {
    absl::StatusOr<PushRule> rule = ParsePushRule(text);
    ASSERT_TRUE(rule.ok()) << rule.status();
    rules.push_back(*rule);
  }
  EXPECT_THAT(Destinations(rules, "live/cam7"),
              ElementsAre("rtmp://origin/live/cam7", "rtmp://backup:1940/live/cam7?from=edge",
                          "rtmp://archive/all/live/cam7"));
  EXPECT_THAT(Destinations(rules, "other/x"), ElementsAre("rtmp://archive/all/other/x"));
  EXPECT_FALSE(ParsePushRule("live/*").ok());
  EXPECT_THAT(ParsePushRule("live/*=ftp://x/{name}").status().message(), HasSubstr("rtmp://"));
}

TEST(PushRuleTest, RulesFileSkipsCommentsAndNamesTheBadLine) {
  const std::string path = ::testing::TempDir() + "/push_rules_test.rules";
  {
    std::ofstream out(path);
    out << "# origin\n\nlive/*=rtmp://origin/live/{name}\n  \ngames/* rtmps://p/app/{name}\n";
  }
  absl::StatusOr<std::vector<PushRule>> rules = LoadPushRules(path);
  ASSERT_TRUE(rules.ok()) << rules.status();
  ASSERT_EQ(rules->size(), 2u);
  EXPECT_EQ((*rules)[1].pattern, "games/*");
  {
    std::ofstream out(path);
    out << "live/*=rtmp://origin/live/{name}\nbroken\n";
  }
  EXPECT_THAT(LoadPushRules(path).status().message(), HasSubstr("push_rules_test.rules:2"));
  EXPECT_FALSE(LoadPushRules(path + ".missing").ok());
}

}  // namespace
}  // namespace uringest::relay
