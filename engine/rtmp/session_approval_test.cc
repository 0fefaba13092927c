// The Session's access-control flow (publish_authorizer.h), I/O-free: a fake authorizer
// allows, denies or leaves a publish pending, and the test answers it later, as the
// engine's on-publish hook does. Also PublishKey: where a publisher's key is found.

#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "engine/rtmp/publish_authorizer.h"
#include "engine/rtmp/rtmp_format.h"
#include "engine/rtmp/session.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "media/amf0.h"
#include "media/amf0_decoder.h"

namespace uringest::rtmp {
namespace {

using media::amf0::Value;
using Bytes = std::vector<uint8_t>;
using ::testing::HasSubstr;
using ::testing::Not;

// ---- PublishKey ----

TEST(PublishKeyTest, KeyParameterOfTheNameQuery) {
  EXPECT_EQ(PublishKey("key=s3cret", ""), "s3cret");
  EXPECT_EQ(PublishKey("a=1&key=s3cret&b=2", ""), "s3cret");
  EXPECT_EQ(PublishKey("a=1&key=", ""), "");
}

TEST(PublishKeyTest, NameQueryWinsOverTheAppQuery) {
  EXPECT_EQ(PublishKey("key=name", "key=app"), "name");
  EXPECT_EQ(PublishKey("", "key=app"), "app");
  EXPECT_EQ(PublishKey("x=1", "key=app"), "app");
}

TEST(PublishKeyTest, QueryWithoutEqualsSignIsTheKeyItself) {
  EXPECT_EQ(PublishKey("s3cret", ""), "s3cret");
  EXPECT_EQ(PublishKey("", "s3cret"), "s3cret");
}

TEST(PublishKeyTest, NoQueryOrNoKeyParameterMeansNoKey) {
  EXPECT_EQ(PublishKey("", ""), "");
  EXPECT_EQ(PublishKey("mykey=1&token=2", ""), "");
}

// ---- Fakes ----

struct Sent {
  MessageHeader header;
  Bytes payload;
  std::vector<Value> Amf() const {
    absl::StatusOr<std::vector<Value>> values = media::amf0::DecodeAll(payload);
    return values.ok() ? *std::move(values) : std::vector<Value>{};
  }
  std::string Code() const {
    std::vector<Value> v = Amf();
    return v.size() > 3 ? std::string(v[3].FindString("code")) : "";
  }
  std::string Description() const {
    std::vector<Value> v = Amf();
    return v.size() > 3 ? std::string(v[3].FindString("description")) : "";
  }
};

class FakeSender : public MessageSender {
 public:
  void Send(const MessageHeader& header, std::span<const uint8_t> payload) override {
    sent.push_back({header, Bytes(payload.begin(), payload.end())});
  }
  std::vector<Sent> sent;
};

class CountingSink : public FrameSink {
 public:
  absl::Status OnStreamBegin(uint32_t, StreamName name) override {
    begun.push_back(std::string(name.app) + "/" + std::string(name.name));
    return absl::OkStatus();
  }
  void OnFrame(const Frame&) override { ++frames; }
  void OnStreamEnd(uint32_t) override { ++ended; }
  std::vector<std::string> begun;
  int frames = 0;
  int ended = 0;
};

class SetRegistry : public PublishRegistry {
 public:
  absl::Status Claim(StreamName name) override {
    return claimed.insert(Key(name)).second
               ? absl::OkStatus()
               : absl::AlreadyExistsError(Key(name) + " is already publishing");
  }
  void Release(StreamName name) override { claimed.erase(Key(name)); }
  static std::string Key(StreamName n) { return std::string(n.app) + "/" + std::string(n.name); }
  std::set<std::string> claimed;
};

// Answers with `verdict` and remembers what it was asked.
class FakeAuthorizer : public PublishAuthorizer {
 public:
  PublishVerdict Authorize(const PublishRequest& r) override {
    asked.push_back(
        {r.stream_id, r.ticket, std::string(r.app), std::string(r.name), std::string(r.key)});
    return verdict;
  }
  struct Asked {
    uint32_t stream_id;
    uint64_t ticket;
    std::string app, name, key;
  };
  PublishVerdict verdict;
  std::vector<Asked> asked;
};

Value Str(std::string s) { return Value::String(std::move(s)); }
Value Num(double n) { return Value::Number(n); }

class SessionApprovalTest : public ::testing::Test {
 protected:
  absl::Status Deliver(MessageType type, uint32_t stream_id, Bytes payload) {
    payloads_.push_back(std::move(payload));
    return session_.OnMessage(
        Message{.header = {.chunk_stream_id = 3, .type = type, .stream_id = stream_id},
                .payload = payloads_.back()});
  }
  absl::Status Command(const std::vector<Value>& values, uint32_t stream_id = 0) {
    Bytes out;
    for (const Value& v : values) media::amf0::Encode(v, &out);
    return Deliver(MessageType::kCommandAmf0, stream_id, std::move(out));
  }
  // connect + createStream; returns the stream id.
  uint32_t ConnectAndCreate(std::string app = "live") {
    EXPECT_TRUE(
        Command({Str("connect"), Num(1), Value::Object({{"app", Str(std::move(app))}})}).ok());
    EXPECT_TRUE(Command({Str("createStream"), Num(2), Value::Null()}).ok());
    const uint32_t id = uint32_t(sender_.sent.back().Amf().at(3).number());
    sender_.sent.clear();
    return id;
  }
  absl::Status Publish(uint32_t id, std::string name) {
    return Command({Str("publish"), Num(3), Value::Null(), Str(std::move(name)), Str("live")}, id);
  }
  // The codes of the onStatus messages sent so far.
  std::vector<std::string> StatusCodes() const {
    std::vector<std::string> codes;
    for (const Sent& s : sender_.sent) {
      if (s.header.type == MessageType::kCommandAmf0) codes.push_back(s.Code());
    }
    return codes;
  }
  std::string AllSentText() const {
    std::string all;
    for (const Sent& s : sender_.sent) all.append(s.payload.begin(), s.payload.end());
    return all;
  }

  FakeSender sender_;
  CountingSink sink_;
  SetRegistry registry_;
  FakeAuthorizer authorizer_;
  std::vector<Bytes> payloads_;
  Session session_{SessionOptions{.max_unapproved_bytes = 1000}, &sender_, &sink_, &registry_,
                   &authorizer_};
};

const Bytes kKeyframe = {0x17, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x65, 0x88};

TEST_F(SessionApprovalTest, AuthorizerSeesAppNameAndKeyWithoutTheQuery) {
  authorizer_.verdict = PublishVerdict::Allow();
  const uint32_t id = ConnectAndCreate();
  ASSERT_TRUE(Publish(id, "cam?token=1&key=s3cret").ok());
  ASSERT_EQ(authorizer_.asked.size(), 1u);
  EXPECT_EQ(authorizer_.asked[0].app, "live");
  EXPECT_EQ(authorizer_.asked[0].name, "cam");
  EXPECT_EQ(authorizer_.asked[0].key, "s3cret");
  EXPECT_EQ(sink_.begun, std::vector<std::string>{"live/cam"});
  EXPECT_EQ(StatusCodes(), std::vector<std::string>{"NetStream.Publish.Start"});
  EXPECT_THAT(AllSentText(), Not(HasSubstr("s3cret")));
}

TEST_F(SessionApprovalTest, DeniedPublishGetsBadNameAndAnErrorWithoutTheKey) {
  authorizer_.verdict = PublishVerdict::Deny("wrong key");
  const uint32_t id = ConnectAndCreate();
  absl::Status s = Publish(id, "cam?key=guess");
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(s.message()), HasSubstr("live/cam"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("wrong key"));
  EXPECT_THAT(std::string(s.message()), Not(HasSubstr("guess")));
  ASSERT_EQ(StatusCodes(), std::vector<std::string>{"NetStream.Publish.BadName"});
  EXPECT_THAT(sender_.sent.back().Description(), HasSubstr("wrong key"));
  EXPECT_THAT(AllSentText(), Not(HasSubstr("guess")));
  EXPECT_TRUE(sink_.begun.empty());
  EXPECT_TRUE(registry_.claimed.empty());
}

TEST_F(SessionApprovalTest, PendingPublishSendsNothingUntilApproved) {
  authorizer_.verdict = PublishVerdict::Pending();
  const uint32_t id = ConnectAndCreate();
  ASSERT_TRUE(Publish(id, "cam?key=k").ok());
  EXPECT_TRUE(sender_.sent.empty());
  EXPECT_TRUE(registry_.claimed.empty()) << "nothing is claimed while pending";
  EXPECT_EQ(session_.pending_approvals(), 1u);
  ASSERT_TRUE(session_.CompleteApproval(id, authorizer_.asked[0].ticket, true, "").ok());
  EXPECT_EQ(session_.pending_approvals(), 0u);
  EXPECT_EQ(StatusCodes(), std::vector<std::string>{"NetStream.Publish.Start"});
  EXPECT_EQ(sink_.begun, std::vector<std::string>{"live/cam"});
  ASSERT_TRUE(Deliver(MessageType::kVideo, id, kKeyframe).ok());
  EXPECT_EQ(sink_.frames, 1);
}

TEST_F(SessionApprovalTest, PendingPublishDeniedLaterGetsBadNameAndAnError) {
  authorizer_.verdict = PublishVerdict::Pending();
  const uint32_t id = ConnectAndCreate();
  ASSERT_TRUE(Publish(id, "cam").ok());
  absl::Status s = session_.CompleteApproval(id, authorizer_.asked[0].ticket, false,
                                             "on-publish hook answered 403");
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  ASSERT_EQ(StatusCodes(), std::vector<std::string>{"NetStream.Publish.BadName"});
  EXPECT_THAT(sender_.sent.back().Description(), HasSubstr("403"));
  EXPECT_TRUE(sink_.begun.empty());
}

TEST_F(SessionApprovalTest, MediaBeforeApprovalIsDroppedUpToTheBoundThenAnError) {
  authorizer_.verdict = PublishVerdict::Pending();
  const uint32_t id = ConnectAndCreate();
  ASSERT_TRUE(Publish(id, "cam").ok());
  ASSERT_TRUE(Deliver(MessageType::kVideo, id, Bytes(600, 0x17)).ok());
  EXPECT_EQ(sink_.frames, 0);
  EXPECT_EQ(session_.counters().dropped_unpublished_media, 1u);
  absl::Status s = Deliver(MessageType::kVideo, id, Bytes(600, 0x17));  // 1200 > 1000
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(s.message()), HasSubstr("before the publish of live/cam was approved"));
}

TEST_F(SessionApprovalTest, AnswerForAnAbandonedPublishIsIgnored) {
  authorizer_.verdict = PublishVerdict::Pending();
  const uint32_t id = ConnectAndCreate();
  ASSERT_TRUE(Publish(id, "cam").ok());
  const uint64_t old_ticket = authorizer_.asked[0].ticket;
  ASSERT_TRUE(Command({Str("closeStream"), Num(0), Value::Null()}, id).ok());
  EXPECT_EQ(session_.pending_approvals(), 0u);
  // Published again: a new request; the first one's answer must not decide it.
  ASSERT_TRUE(Publish(id, "cam").ok());
  ASSERT_EQ(authorizer_.asked.size(), 2u);
  EXPECT_NE(authorizer_.asked[1].ticket, old_ticket);
  sender_.sent.clear();
  ASSERT_TRUE(session_.CompleteApproval(id, old_ticket, true, "").ok());
  EXPECT_TRUE(sender_.sent.empty());
  EXPECT_TRUE(sink_.begun.empty());
  EXPECT_EQ(session_.pending_approvals(), 1u);
}

TEST_F(SessionApprovalTest, SecondPublishWhilePendingIsAProtocolError) {
  authorizer_.verdict = PublishVerdict::Pending();
  const uint32_t id = ConnectAndCreate();
  ASSERT_TRUE(Publish(id, "cam").ok());
  EXPECT_EQ(Publish(id, "cam").code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(SessionApprovalTest, CloseWhilePendingClaimsAndEndsNothing) {
  authorizer_.verdict = PublishVerdict::Pending();
  const uint32_t id = ConnectAndCreate();
  ASSERT_TRUE(Publish(id, "cam").ok());
  session_.Close();
  EXPECT_EQ(session_.pending_approvals(), 0u);
  EXPECT_TRUE(session_.CompleteApproval(id, authorizer_.asked[0].ticket, true, "").ok());
  EXPECT_TRUE(sink_.begun.empty());
  EXPECT_EQ(sink_.ended, 0);
  EXPECT_TRUE(registry_.claimed.empty());
}

TEST_F(SessionApprovalTest, ApprovedButNameTakenMeanwhileIsRefusedAndTheConnectionStays) {
  authorizer_.verdict = PublishVerdict::Pending();
  const uint32_t id = ConnectAndCreate();
  ASSERT_TRUE(Publish(id, "cam").ok());
  registry_.claimed.insert("live/cam");  // another connection got there first
  EXPECT_TRUE(session_.CompleteApproval(id, authorizer_.asked[0].ticket, true, "").ok());
  ASSERT_EQ(StatusCodes(), std::vector<std::string>{"NetStream.Publish.BadName"});
  EXPECT_THAT(sender_.sent.back().Description(), HasSubstr("already publishing"));
}

}  // namespace
}  // namespace uringest::rtmp
