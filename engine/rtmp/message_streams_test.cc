#include "engine/rtmp/message_streams.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace uringest::rtmp {
namespace {

using State = MessageStreams::State;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::IsEmpty;

TEST(MessageStreamsTest, CreateHandsOutTheLowestFreeIdUpToTheMaximum) {
  MessageStreams streams(3);
  EXPECT_EQ(streams.Create(), 1u);
  EXPECT_EQ(streams.Create(), 2u);
  EXPECT_EQ(streams.Create(), 3u);
  EXPECT_EQ(streams.Create(), 0u);  // all three in use
  streams.Delete(2);
  EXPECT_EQ(streams.Find(2), nullptr);
  ASSERT_NE(streams.At(2), nullptr);  // still in the table, free
  EXPECT_EQ(streams.At(2)->state, State::kFree);
  EXPECT_EQ(streams.Create(), 2u);
  EXPECT_EQ(streams.size(), 3u);
  EXPECT_EQ(streams.At(0), nullptr);
  EXPECT_EQ(streams.At(4), nullptr);
}

TEST(MessageStreamsTest, DeleteForgetsEverythingAboutTheStream) {
  MessageStreams streams(2);
  const uint32_t id = streams.Create();
  streams.At(id)->name = "cam";
  streams.At(id)->ticket = 9;
  streams.SetState(id, State::kPublishing);
  streams.Delete(id);
  EXPECT_EQ(streams.At(id)->name, "");
  EXPECT_EQ(streams.At(id)->ticket, 0u);
  EXPECT_FALSE(streams.IsPublishing(id));
  EXPECT_EQ(streams.sole_publishing(), 0u);
}

TEST(MessageStreamsTest, MediaOnAStreamNeverCreatedGoesToTheOnlyOnePublishing) {
  MessageStreams streams(4);
  const uint32_t a = streams.Create();
  const uint32_t b = streams.Create();
  EXPECT_EQ(streams.Route(a), 0u);  // created, not publishing
  EXPECT_EQ(streams.Route(7), 0u);  // nobody publishes
  streams.SetState(a, State::kPublishing);
  EXPECT_EQ(streams.sole_publishing(), a);
  EXPECT_EQ(streams.Route(a), a);
  EXPECT_EQ(streams.Route(0), a);  // never created: the only publisher takes it
  EXPECT_EQ(streams.Route(7), a);
  EXPECT_EQ(streams.Route(b), 0u);  // created by the client: its own, not publishing
  streams.SetState(b, State::kPublishing);
  EXPECT_EQ(streams.sole_publishing(), 0u);  // two publish: no guessing
  EXPECT_EQ(streams.Route(7), 0u);
  streams.SetState(a, State::kCreated);
  EXPECT_EQ(streams.sole_publishing(), b);
}

TEST(MessageStreamsTest, PublishingStreamsAreListedAndFoundByName) {
  MessageStreams streams(4);
  const uint32_t a = streams.Create();
  const uint32_t b = streams.Create();
  EXPECT_THAT(streams.publishing(), IsEmpty());
  streams.At(b)->name = "cam2";
  streams.At(b)->type = "live";
  streams.SetState(b, State::kPublishing);
  streams.At(a)->name = "cam1";
  streams.SetState(a, State::kPendingApproval);
  EXPECT_THAT(streams.publishing(), ElementsAre(Field(&MessageStreams::Publishing::name, "cam2")));
  EXPECT_EQ(streams.FindPublishing("cam2"), b);
  EXPECT_EQ(streams.FindPublishing("cam1"), 0u);  // pending is not publishing
}

}  // namespace
}  // namespace uringest::rtmp
