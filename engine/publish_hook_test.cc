// PublishHook against a real HTTP server on loopback (tests/hook_server.h): what the
// POST carries, which answers allow, and that a hook that never answers is timed out
// without holding up the requests behind it.

#include "engine/publish_hook.h"

#include <future>
#include <string>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/hook_server.h"

namespace uringest::engine {
namespace {

using ::testing::HasSubstr;
using uringest::testing::HookServer;

constexpr absl::Duration kWait = absl::Seconds(10);

// Posts one request and waits for its answer.
class Asker {
 public:
  explicit Asker(PublishHook* hook) : hook_(hook) {}
  std::future<PublishHook::Answer> Ask(std::string name, std::string key = "k") {
    auto promise = std::make_shared<std::promise<PublishHook::Answer>>();
    std::future<PublishHook::Answer> answer = promise->get_future();
    hook_->Post({.app = "live",
                 .name = std::move(name),
                 .key = std::move(key),
                 .addr = "203.0.113.7",
                 .port = 51234},
                [promise](PublishHook::Answer a) { promise->set_value(std::move(a)); });
    return answer;
  }

 private:
  PublishHook* const hook_;
};

std::unique_ptr<PublishHook> MakeHook(const std::string& url,
                                      absl::Duration timeout = absl::Seconds(5)) {
  absl::StatusOr<std::unique_ptr<PublishHook>> hook =
      PublishHook::Create({.url = url, .timeout = timeout});
  EXPECT_TRUE(hook.ok()) << hook.status();
  return hook.ok() ? *std::move(hook) : nullptr;
}

PublishHook::Answer Get(std::future<PublishHook::Answer>& f) {
  EXPECT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  return f.get();
}

int ByName(const std::string& body) {
  if (body.find("&name=ok") != std::string::npos) return 204;
  if (body.find("&name=slow") != std::string::npos) return 0;
  if (body.find("&name=moved") != std::string::npos) return 302;
  return 403;
}

TEST(PublishHookTest, PostsTheFormWithEveryValuePercentEncoded) {
  HookServer server(ByName);
  std::unique_ptr<PublishHook> hook = MakeHook(server.Url());
  Asker asker(hook.get());
  std::future<PublishHook::Answer> a = asker.Ask("ok cam&x=1", "s3cret/+=?");
  (void)Get(a);
  ASSERT_EQ(server.Bodies().size(), 1u);
  EXPECT_EQ(server.Bodies()[0],
            "call=publish&app=live&name=ok%20cam%26x%3D1&key=s3cret%2F%2B%3D%3F"
            "&addr=203.0.113.7&port=51234");
}

TEST(PublishHookTest, TwoHundredsAllowAnythingElseRefusesWithTheStatus) {
  HookServer server(ByName);
  std::unique_ptr<PublishHook> hook = MakeHook(server.Url());
  Asker asker(hook.get());
  std::future<PublishHook::Answer> ok = asker.Ask("ok");
  std::future<PublishHook::Answer> refused = asker.Ask("cam");
  std::future<PublishHook::Answer> moved = asker.Ask("moved");
  EXPECT_TRUE(Get(ok).allowed);
  const PublishHook::Answer r = Get(refused);
  EXPECT_FALSE(r.allowed);
  EXPECT_EQ(r.reason, "on-publish hook answered 403");
  EXPECT_EQ(Get(moved).reason, "on-publish hook answered 302") << "redirects are not followed";
}

TEST(PublishHookTest, HookThatNeverAnswersTimesOutWithoutHoldingUpOthers) {
  HookServer server(ByName);
  std::unique_ptr<PublishHook> hook = MakeHook(server.Url(), absl::Seconds(2));
  Asker asker(hook.get());
  const absl::Time start = absl::Now();
  std::future<PublishHook::Answer> slow = asker.Ask("slow");
  while (server.Bodies().empty() && absl::Now() - start < kWait) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  std::future<PublishHook::Answer> ok = asker.Ask("ok");
  EXPECT_TRUE(Get(ok).allowed);
  EXPECT_LT(absl::Now() - start, absl::Seconds(2)) << "the fast request waited for the slow one";
  const PublishHook::Answer s = Get(slow);
  EXPECT_GE(absl::Now() - start, absl::Seconds(2));
  EXPECT_FALSE(s.allowed);
  EXPECT_EQ(s.reason, "on-publish hook did not answer within 2s");
}

TEST(PublishHookTest, UnreachableHookRefuses) {
  std::unique_ptr<PublishHook> hook = MakeHook("http://127.0.0.1:1/on_publish");
  Asker asker(hook.get());
  std::future<PublishHook::Answer> a = asker.Ask("ok");
  const PublishHook::Answer answer = Get(a);
  EXPECT_FALSE(answer.allowed);
  EXPECT_THAT(answer.reason, HasSubstr("on-publish hook failed"));
}

TEST(PublishHookTest, OnlyHttpUrlsAreAccepted) {
  EXPECT_FALSE(PublishHook::Create({.url = "ftp://example.com/x"}).ok());
  EXPECT_FALSE(PublishHook::Create({.url = "127.0.0.1:8080"}).ok());
}

TEST(PublishHookTest, DestroyedWithARequestInFlightAnswersNothingAndLeaksNothing) {
  HookServer server(ByName);
  std::unique_ptr<PublishHook> hook = MakeHook(server.Url());
  bool answered = false;
  hook->Post({.name = "slow"}, [&](PublishHook::Answer) { answered = true; });
  const absl::Time start = absl::Now();
  while (server.Bodies().empty() && absl::Now() - start < kWait) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  hook.reset();
  EXPECT_FALSE(answered);
}

}  // namespace
}  // namespace uringest::engine
