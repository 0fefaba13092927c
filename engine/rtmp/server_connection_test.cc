#include "engine/rtmp/server_connection.h"

#include <algorithm>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "engine/rtmp/chunk_reader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "media/amf0.h"
#include "media/amf0_decoder.h"
#include "media/byte_order.h"
#include "tests/rtmp_testing.h"

namespace uringest::rtmp {
namespace {

using ::testing::HasSubstr;

struct RecordedFrame {
  FrameType type;
  uint64_t dts;
  bool keyframe;
  bool sequence_header;
  std::vector<uint8_t> payload;
};

class RecordingSink : public FrameSink {
 public:
  absl::Status OnStreamBegin(uint32_t stream_id, StreamName name) override {
    began.push_back(std::string(name.app) + "/" + std::string(name.name));
    return absl::OkStatus();
  }
  void OnFrame(const Frame& frame) override {
    frames.push_back({frame.type, frame.dts, frame.keyframe, frame.sequence_header,
                      testing::PayloadBytes(frame)});
  }
  void OnStreamEnd(uint32_t stream_id) override { ++ended; }

  std::vector<std::string> began;
  std::vector<RecordedFrame> frames;
  int ended = 0;
};

class NameSet : public PublishRegistry {
 public:
  absl::Status Claim(StreamName name) override {
    const std::string key = std::string(name.app) + "/" + std::string(name.name);
    return names.insert(key).second ? absl::OkStatus()
                                    : absl::AlreadyExistsError(key + " is already publishing");
  }
  void Release(StreamName name) override {
    names.erase(std::string(name.app) + "/" + std::string(name.name));
  }
  std::set<std::string> names;
};

ServerConnectionOptions DeterministicOptions() {
  ServerConnectionOptions options;
  options.handshake.random = [](std::span<uint8_t> out) {
    std::fill(out.begin(), out.end(), 0x5A);
  };
  return options;
}

// Feeds `bytes` in pieces ending at `cuts` (ascending) and checks that each Receive()
// succeeds.
void FeedInPieces(ServerConnection& conn, std::span<const uint8_t> bytes,
                  const std::vector<size_t>& cuts) {
  size_t start = 0;
  for (size_t i = 0; i <= cuts.size(); ++i) {
    const size_t end = i < cuts.size() ? cuts[i] : bytes.size();
    std::vector<uint8_t> piece(bytes.begin() + start, bytes.begin() + end);
    ASSERT_TRUE(conn.Receive(piece).ok()) << "piece ending at " << end;
    start = end;
  }
}

// ---- The recorded ffmpeg sessions: the scenario the project exists for ----

class RecordedSessionTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    capture_ = testing::ReadTestData(GetParam());
    for (auto& tag : testing::ParseFlvTags(testing::ReadTestData("source_testsrc.flv"))) {
      if (tag.type == 9) source_video_.push_back(std::move(tag));
    }
  }

  // Every video tag of the source, in order, with its timestamp and exact bytes.
  void ExpectSourceVideo(const RecordingSink& sink) {
    std::vector<const RecordedFrame*> video;
    for (const auto& f : sink.frames) {
      if (f.type == FrameType::kVideo) video.push_back(&f);
    }
    ASSERT_EQ(video.size(), source_video_.size());
    int coded = 0, keyframes = 0, sequence_headers = 0;
    for (size_t i = 0; i < video.size(); ++i) {
      ASSERT_EQ(video[i]->payload, source_video_[i].body) << "video frame " << i;
      EXPECT_EQ(video[i]->dts, source_video_[i].timestamp) << "video frame " << i;
      const uint8_t avc_packet_type = video[i]->payload[1];
      coded += avc_packet_type == 1;
      keyframes += avc_packet_type == 1 && video[i]->keyframe;
      sequence_headers += video[i]->sequence_header;
    }
    EXPECT_EQ(coded, 60);     // 2 s at 30 fps
    EXPECT_EQ(keyframes, 2);  // -g 30
    EXPECT_EQ(sequence_headers, 1);
    ASSERT_EQ(sink.began.size(), 1u);
    EXPECT_EQ(sink.began[0], "live/test");
    EXPECT_EQ(sink.ended, 1);  // ffmpeg's FCUnpublish/deleteStream end it once
  }

  // A fresh connection fed the capture in pieces ending at `cuts` yields the source.
  void FeedAndExpectSourceVideo(const std::vector<size_t>& cuts) {
    RecordingSink sink;
    NameSet names;
    ServerConnection conn(DeterministicOptions(), &sink, &names);
    FeedInPieces(conn, capture_, cuts);
    ExpectSourceVideo(sink);
  }

  std::vector<uint8_t> capture_;
  std::vector<testing::FlvTag> source_video_;
};

TEST_P(RecordedSessionTest, WholeCaptureYieldsEverySourceFrame) {
  RecordingSink sink;
  NameSet names;
  ServerConnection conn(DeterministicOptions(), &sink, &names);
  ASSERT_TRUE(conn.Receive(capture_).ok());
  ExpectSourceVideo(sink);
  ASSERT_EQ(sink.frames.front().type, FrameType::kData);  // onMetaData, unwrapped
  EXPECT_EQ(media::amf0::DecodeAll(sink.frames.front().payload).value()[0].string(), "onMetaData");
  EXPECT_TRUE(names.names.empty());
}

TEST_P(RecordedSessionTest, SplitAtEveryByteBoundaryYieldsEverySourceFrame) {
  for (size_t cut = 0; cut <= capture_.size(); ++cut) {
    FeedAndExpectSourceVideo({cut});
    if (::testing::Test::HasFailure()) FAIL() << "split at byte " << cut;
  }
}

TEST_P(RecordedSessionTest, OneByteAtATimeYieldsEverySourceFrame) {
  RecordingSink sink;
  NameSet names;
  ServerConnection conn(DeterministicOptions(), &sink, &names);
  for (uint8_t byte : capture_) {
    ASSERT_TRUE(conn.Receive(std::span<const uint8_t>(&byte, 1)).ok());
  }
  ExpectSourceVideo(sink);
}

TEST_P(RecordedSessionTest, ThousandRandomSplittingsYieldEverySourceFrame) {
  std::mt19937 rng(1935);
  for (int i = 0; i < 1000; ++i) {
    std::vector<size_t> cuts;
    // From a few large pieces to hundreds of small ones.
    const size_t pieces = 1 + rng() % (i % 2 ? 8 : 400);
    for (size_t p = 0; p < pieces; ++p) cuts.push_back(rng() % (capture_.size() + 1));
    std::sort(cuts.begin(), cuts.end());
    FeedAndExpectSourceVideo(cuts);
    if (::testing::Test::HasFailure()) FAIL() << "splitting " << i;
  }
}

TEST_P(RecordedSessionTest, ServerAnswersEachStepOfThePublish) {
  RecordingSink sink;
  NameSet names;
  ServerConnection conn(DeterministicOptions(), &sink, &names);
  ASSERT_TRUE(conn.Receive(capture_).ok());
  // What the server sent, read back as a client would after S0 S1 S2.
  std::span<const uint8_t> out = conn.output();
  ASSERT_GT(out.size(), 3073u);
  EXPECT_EQ(out[0], kRtmpVersion);
  ChunkReader client;
  std::vector<std::string> commands;
  std::span<const uint8_t> in = out.subspan(3073);
  while (!in.empty()) {
    Message m;
    auto r = client.Read(in, &m);
    ASSERT_TRUE(r.ok()) << r.status();
    in = in.subspan(r->consumed);
    if (r->message_ready && m.header.type == MessageType::kCommandAmf0) {
      auto values = media::amf0::DecodeAll(m.payload);
      ASSERT_TRUE(values.ok());
      std::string line = (*values)[0].string();
      if (values->size() > 3 && (*values)[3].has_properties()) {
        line += " " + std::string((*values)[3].FindString("code"));
      }
      commands.push_back(line);
    }
  }
  EXPECT_THAT(commands,
              ::testing::IsSupersetOf({std::string("_result NetConnection.Connect.Success"),
                                       std::string("onStatus NetStream.Publish.Start")}));
  EXPECT_EQ(client.chunk_size(), 65536u);  // announced on connect
}

INSTANTIATE_TEST_SUITE_P(Ffmpeg, RecordedSessionTest,
                         ::testing::Values("ffmpeg_publish_chunk128.rtmp",
                                           "ffmpeg_publish_chunk65536.rtmp"));

// ---- Acknowledgements and user control ----

// A connection past its handshake, fed chunk bytes built by a ChunkWriter.
class ConnectedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<uint8_t> c0c1c2(1 + 2 * kHandshakeSize, 0);
    c0c1c2[0] = kRtmpVersion;
    ASSERT_TRUE(conn_.Receive(c0c1c2).ok());
    ASSERT_TRUE(conn_.handshake_complete());
    conn_.TakeOutput(conn_.output().size());
  }

  void SendFromClient(MessageType type, uint32_t csid, std::span<const uint8_t> payload) {
    std::vector<uint8_t> bytes;
    client_writer_.Write(MessageHeader{.chunk_stream_id = csid, .type = type}, payload, &bytes);
    ASSERT_TRUE(conn_.Receive(bytes).ok());
  }

  // The messages the server sent since the last call.
  std::vector<std::pair<MessageType, std::vector<uint8_t>>> ServerMessages() {
    std::vector<std::pair<MessageType, std::vector<uint8_t>>> messages;
    std::span<const uint8_t> in = conn_.output();
    while (!in.empty()) {
      Message m;
      auto r = client_reader_.Read(in, &m);
      EXPECT_TRUE(r.ok()) << r.status();
      if (!r.ok()) break;
      in = in.subspan(r->consumed);
      if (r->message_ready) {
        messages.push_back({m.header.type, {m.payload.begin(), m.payload.end()}});
      }
    }
    conn_.TakeOutput(conn_.output().size());
    return messages;
  }

  RecordingSink sink_;
  NameSet names_;
  ServerConnection conn_{DeterministicOptions(), &sink_, &names_};
  ChunkWriter client_writer_;
  ChunkReader client_reader_;
};

TEST_F(ConnectedTest, AcknowledgementEachTimeThePeersWindowIsCrossed) {
  std::vector<uint8_t> window;
  media::AppendU32(&window, 10000);
  SendFromClient(MessageType::kWindowAckSize, 2, window);
  ServerMessages();
  std::vector<uint32_t> acks;
  std::vector<uint8_t> data(1000, 0);
  for (int i = 0; i < 60; ++i) {
    SendFromClient(MessageType::kAcknowledgement, 2, std::span<const uint8_t>(data).first(4));
    SendFromClient(MessageType::kVideo, 6, data);  // dropped: not publishing, still counted
    for (auto& [type, payload] : ServerMessages()) {
      if (type == MessageType::kAcknowledgement) acks.push_back(media::LoadU32(payload.data()));
    }
  }
  // About 60 KB arrived: 5 or 6 windows of 10000 bytes, each acked with the byte count.
  ASSERT_GE(acks.size(), 5u);
  for (size_t i = 1; i < acks.size(); ++i) EXPECT_GE(acks[i] - acks[i - 1], 10000u);
  EXPECT_LE(conn_.counters().bytes_received - acks.back(), 10000u);
}

TEST_F(ConnectedTest, AcknowledgementSequenceNumberWrapsAt4GiBAndGoesOn) {
  std::vector<uint8_t> window;
  media::AppendU32(&window, 1 << 20);
  SendFromClient(MessageType::kWindowAckSize, 2, window);
  // 4.5 GiB of 16 MiB messages, each read in one piece that crosses the 1 MiB window:
  // each piece gets its acknowledgement, before and after the 32-bit wrap.
  ChunkWriter writer;
  std::vector<uint8_t> payload(0xFFFFFF - 16, 0);
  std::vector<uint8_t> bytes;
  std::vector<uint8_t> chunk_size;
  media::AppendU32(&chunk_size, 0xFFFFFF);
  writer.Write(MessageHeader{.chunk_stream_id = 2, .type = MessageType::kSetChunkSize}, chunk_size,
               &bytes);
  ASSERT_TRUE(conn_.Receive(bytes).ok());
  bytes.clear();
  writer.Write(MessageHeader{.chunk_stream_id = 8, .type = MessageType::kVideo, .stream_id = 1},
               payload, &bytes);
  uint64_t acks = 0, pieces = 0;
  uint32_t last = 0;
  bool wrapped = false;
  while (conn_.counters().bytes_received < (uint64_t{9} << 29)) {
    ASSERT_TRUE(conn_.Receive(bytes).ok());
    ++pieces;
    for (auto& [type, p] : ServerMessages()) {
      if (type != MessageType::kAcknowledgement) continue;
      const uint32_t sequence = media::LoadU32(p.data());
      wrapped |= sequence < last;
      last = sequence;
      ++acks;
    }
  }
  EXPECT_TRUE(wrapped);
  EXPECT_EQ(acks, pieces);
  EXPECT_EQ(last, static_cast<uint32_t>(conn_.counters().bytes_received));
}

TEST_F(ConnectedTest, NoAcknowledgementUntilThePeerAnnouncesAWindow) {
  std::vector<uint8_t> data(100000, 0);
  for (int i = 0; i < 40; ++i) SendFromClient(MessageType::kVideo, 6, data);  // 4 MB
  for (auto& [type, payload] : ServerMessages()) {
    EXPECT_NE(type, MessageType::kAcknowledgement);
  }
  EXPECT_EQ(conn_.ack_window(), 0u);
}

TEST_F(ConnectedTest, AcknowledgementWaitsUntilTheSocketIsDrained) {
  std::vector<uint8_t> window;
  media::AppendU32(&window, 1000);
  SendFromClient(MessageType::kWindowAckSize, 2, window);
  ServerMessages();
  std::vector<uint8_t> bytes;
  client_writer_.Write(MessageHeader{.chunk_stream_id = 6, .type = MessageType::kVideo},
                       std::vector<uint8_t>(5000, 0), &bytes);
  ASSERT_TRUE(conn_.Receive(std::span(bytes).first(1500), /*more_queued=*/true).ok());
  EXPECT_TRUE(ServerMessages().empty());  // the window is crossed, but more is queued
  ASSERT_TRUE(conn_.Receive(std::span(bytes).subspan(1500, 100), /*more_queued=*/false).ok());
  auto messages = ServerMessages();
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].first, MessageType::kAcknowledgement);
  EXPECT_EQ(media::LoadU32(messages[0].second.data()), conn_.counters().bytes_received);
  // A socket that never drains still gets an ack once two windows went by.
  ASSERT_TRUE(conn_.Receive(std::span(bytes).subspan(1600, 1500), /*more_queued=*/true).ok());
  EXPECT_TRUE(ServerMessages().empty());
  ASSERT_TRUE(conn_.Receive(std::span(bytes).subspan(3100, 600), /*more_queued=*/true).ok());
  messages = ServerMessages();
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].first, MessageType::kAcknowledgement);
}

TEST_F(ConnectedTest, PingRequestIsAnsweredWithItsTimestamp) {
  std::vector<uint8_t> ping;
  media::AppendU16(&ping, static_cast<uint16_t>(UserControlEvent::kPingRequest));
  media::AppendU32(&ping, 0xCAFE);
  SendFromClient(MessageType::kUserControl, 2, ping);
  auto messages = ServerMessages();
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].first, MessageType::kUserControl);
  EXPECT_EQ(media::LoadU16(messages[0].second.data()),
            static_cast<uint16_t>(UserControlEvent::kPingResponse));
  EXPECT_EQ(media::LoadU32(messages[0].second.data() + 2), 0xCAFEu);
}

TEST_F(ConnectedTest, SetBufferLengthIsRecorded) {
  std::vector<uint8_t> event;
  media::AppendU16(&event, static_cast<uint16_t>(UserControlEvent::kSetBufferLength));
  media::AppendU32(&event, 1);
  media::AppendU32(&event, 3000);
  SendFromClient(MessageType::kUserControl, 2, event);
  EXPECT_EQ(conn_.peer_buffer_length_ms(), 3000u);
}

TEST_F(ConnectedTest, TruncatedUserControlIsAnError) {
  std::vector<uint8_t> bytes;
  client_writer_.Write(MessageHeader{.chunk_stream_id = 2, .type = MessageType::kUserControl},
                       std::vector<uint8_t>{0}, &bytes);
  absl::Status s = conn_.Receive(bytes);
  EXPECT_THAT(s.message(), HasSubstr("User Control message of 1 bytes"));
}

TEST(ServerConnectionTest, HttpOnTheRtmpPortIsNamedInTheError) {
  RecordingSink sink;
  NameSet names;
  ServerConnection conn(DeterministicOptions(), &sink, &names);
  absl::Status s = conn.Receive(media::AsBytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_THAT(s.message(), HasSubstr("HTTP"));
}

}  // namespace
}  // namespace uringest::rtmp
