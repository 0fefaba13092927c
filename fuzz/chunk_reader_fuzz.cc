// chunk_reader_fuzz: the RTMP chunk reader (engine/rtmp/chunk_reader.h) against two
// references. The first input byte picks one:
//
//  - even: generated streams. The rest of the input is a script of operations (start a
//    message on a chunk stream, write a chunk of one, write a continuation chunk whose
//    header is fmt 0, 1 or 2 repeating the message's length, type and stream id with any
//    timestamp, Set Chunk Size, Abort a message half sent, Abort an idle chunk stream)
//    that ChunkWriter turns into wire bytes, interleaving chunk streams chunk by chunk.
//    The reader, fed those bytes in pieces the input picks, must return exactly the
//    messages the script completed, in order, byte for byte, with their unwrapped 64-bit
//    timestamps (a repeated header's timestamp changes nothing), and nothing of an
//    aborted one.
//  - odd: raw bytes (the recorded ffmpeg sessions after their handshake seed these).
//    Two readers with limits the input picks read them in two different splits; they
//    must agree on every message and on the error that ends the stream, if any. A third
//    with a small buffered-bytes limit may stop early, with ResourceExhausted, but the
//    messages it returns are the same.
//
// Both also check the reader's contract on every call (fuzz_util.cc): progress, bytes
// consumed, and the buffered-bytes and chunk-stream limits.

#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "engine/rtmp/chunk_writer.h"
#include "engine/rtmp/rtmp_format.h"
#include "fuzz/fuzz_util.h"
#include "media/byte_order.h"

namespace uringest::fuzz {
namespace {

using rtmp::ChunkWriter;
using rtmp::MessageHeader;
using rtmp::MessageType;

// Chunk stream ids of every basic-header form: 1 byte, 2 bytes, 3 bytes (and the edges).
constexpr uint32_t kDataChunkStreams[] = {3, 4, 5, 6, 63, 64, 319, 320, 65599};
constexpr size_t kMaxOps = 96;
constexpr size_t kMaxMessageBytes = 4096;

// One message of the script on its way out.
struct Pending {
  std::optional<ChunkWriter::Cursor> cursor;
  std::vector<uint8_t> payload;  // the cursor points here: never resized while pending
  uint64_t timestamp = 0;        // what the reader must report (64-bit)
  bool started = false;
};

// The next timestamp of a chunk stream: mostly small steps, sometimes steps that need
// the extended field or cross 2^32; never a step back, so that the reader's unwrapped
// time is the generator's 64-bit time.
uint64_t NextTimestamp(FuzzedDataProvider* in, uint64_t last) {
  switch (in->ConsumeIntegralInRange<int>(0, 3)) {
    case 0:
      return last;
    case 1:
      return last + in->ConsumeIntegralInRange<uint32_t>(1, 100);
    case 2:
      return last + in->ConsumeIntegralInRange<uint32_t>(0xFFFF00, 0x1000100);
    default:
      return last + in->ConsumeIntegralInRange<uint32_t>(0, 0x7FFFFFFF);
  }
}

class Script {
 public:
  explicit Script(FuzzedDataProvider* in)
      : in_(in), writer_(rtmp::ChunkWriterOptions{.compress_headers = in->ConsumeBool()}) {}

  void Run() {
    for (size_t op = 0; op < kMaxOps && in_->remaining_bytes() > 0; ++op) {
      switch (in_->ConsumeIntegralInRange<int>(0, 8)) {
        case 0:
        case 1:
          StartMessage();
          break;
        case 2:
        case 3:
        case 4:
          WriteSomeChunk();
          break;
        case 5:
          SetChunkSize();
          break;
        case 6:
          AbortStarted();
          break;
        case 7:
          WriteRepeatedHeaderChunk();
          break;
        default:
          AbortIdle();
          break;
      }
    }
    for (size_t i = 0; i < std::size(kDataChunkStreams); ++i) {
      while (pending_[i].cursor.has_value()) WriteChunkOf(i);
    }
  }

  const std::vector<uint8_t>& wire() const { return wire_; }
  const std::vector<OwnedMessage>& expected() const { return expected_; }

 private:
  void StartMessage() {
    const size_t i = in_->ConsumeIntegralInRange<size_t>(0, std::size(kDataChunkStreams) - 1);
    Pending& p = pending_[i];
    if (p.cursor.has_value()) return;
    static constexpr MessageType kTypes[] = {MessageType::kAudio,     MessageType::kVideo,
                                             MessageType::kDataAmf0,  MessageType::kCommandAmf0,
                                             MessageType::kAggregate, MessageType::kUserControl};
    const size_t length = in_->ConsumeIntegralInRange<size_t>(0, kMaxMessageBytes);
    p.payload = in_->ConsumeBytes<uint8_t>(length);
    p.payload.resize(length, uint8_t(0xA5 ^ length));
    timestamps_[i] = NextTimestamp(in_, timestamps_[i]);
    p.timestamp = timestamps_[i];
    const MessageHeader header{.chunk_stream_id = kDataChunkStreams[i],
                               .type = in_->PickValueInArray(kTypes),
                               .stream_id = in_->ConsumeIntegralInRange<uint32_t>(0, 3),
                               .timestamp = p.timestamp};
    p.cursor = writer_.Begin(header, p.payload);
    // The first chunk goes out at once: the writer's header state changed with Begin(),
    // and the reader's changes only when it sees the header.
    WriteChunkOf(i);
  }

  void WriteSomeChunk() {
    const size_t i = in_->ConsumeIntegralInRange<size_t>(0, std::size(kDataChunkStreams) - 1);
    if (pending_[i].cursor.has_value()) WriteChunkOf(i);
  }

  void WriteChunkOf(size_t i) {
    Pending& p = pending_[i];
    p.started = true;
    if (writer_.WriteChunk(&*p.cursor, &wire_)) Complete(i);
  }

  // A continuation chunk with a fmt 0, 1 or 2 header where the spec wants fmt 3, as some
  // encoders send it: it repeats the message's length, type and stream id, and carries a
  // timestamp field the reader must ignore (extended ones too).
  void WriteRepeatedHeaderChunk() {
    const size_t i = in_->ConsumeIntegralInRange<size_t>(0, std::size(kDataChunkStreams) - 1);
    Pending& p = pending_[i];
    if (!p.cursor.has_value()) return;  // its first chunk went out with StartMessage()
    static constexpr uint32_t kFields[] = {0, 1, 0xFFFFFE, 0xFFFFFF, 0x1000000, 0xFFFFFFFF};
    const auto fmt = in_->ConsumeIntegralInRange<uint8_t>(0, 2);
    const uint32_t field =
        in_->ConsumeBool() ? in_->PickValueInArray(kFields) : in_->ConsumeIntegral<uint32_t>();
    if (writer_.WriteRepeatedHeaderChunk(&*p.cursor, fmt, field, &wire_)) Complete(i);
  }

  // The message of chunk stream i has gone out whole: the reader must return it.
  void Complete(size_t i) {
    Pending& p = pending_[i];
    OwnedMessage done{p.cursor->header, p.payload};
    done.header.timestamp = p.timestamp;
    expected_.push_back(std::move(done));
    p.cursor.reset();
  }

  // A control message on chunk stream 2, whole: the reader returns it too.
  void WriteControl(MessageType type, uint32_t value) {
    uint8_t payload[4];
    media::StoreU32(payload, value);
    const MessageHeader header{
        .chunk_stream_id = rtmp::kControlChunkStream, .type = type, .timestamp = control_time_};
    writer_.Write(header, payload, &wire_);
    expected_.push_back(OwnedMessage{header, {payload, payload + 4}});
  }

  void SetChunkSize() {
    static constexpr uint32_t kSizes[] = {1,    2,     3,        127,       128,       129,
                                          4096, 65536, 0xFFFFFF, 0x1000000, 0x7FFFFFFF};
    const uint32_t size = in_->ConsumeBool() ? in_->PickValueInArray(kSizes)
                                             : in_->ConsumeIntegralInRange<uint32_t>(1, 5000);
    WriteControl(MessageType::kSetChunkSize, size);
  }

  // Aborts a message that has sent some chunks but not all: the reader drops it.
  void AbortStarted() {
    const size_t i = in_->ConsumeIntegralInRange<size_t>(0, std::size(kDataChunkStreams) - 1);
    if (!pending_[i].cursor.has_value()) return;
    WriteControl(MessageType::kAbort, kDataChunkStreams[i]);
    pending_[i].cursor.reset();
  }

  // Aborts a chunk stream with nothing partial (or one never used): nothing happens.
  void AbortIdle() {
    const uint32_t csid = in_->ConsumeBool()
                              ? in_->ConsumeIntegral<uint32_t>()
                              : kDataChunkStreams[in_->ConsumeIntegralInRange<size_t>(
                                    0, std::size(kDataChunkStreams) - 1)];
    for (size_t i = 0; i < std::size(kDataChunkStreams); ++i) {
      if (kDataChunkStreams[i] == csid && pending_[i].cursor.has_value()) return;
    }
    WriteControl(MessageType::kAbort, csid);
  }

  FuzzedDataProvider* in_;
  ChunkWriter writer_;
  Pending pending_[std::size(kDataChunkStreams)];
  uint64_t timestamps_[std::size(kDataChunkStreams)] = {};
  uint64_t control_time_ = 0;
  std::vector<uint8_t> wire_;
  std::vector<OwnedMessage> expected_;
};

void CheckSame(const ReadOutcome& got, const std::vector<OwnedMessage>& want, const char* what) {
  for (size_t i = 0; i < got.messages.size() && i < want.size(); ++i) {
    FUZZ_CHECK(got.messages[i] == want[i], "%s: message %zu is %s, expected %s", what, i,
               got.messages[i].Describe().c_str(), want[i].Describe().c_str());
  }
  FUZZ_CHECK(got.messages.size() == want.size(), "%s: %zu messages, expected %zu", what,
             got.messages.size(), want.size());
}

void FuzzGenerated(FuzzedDataProvider* in) {
  const uint64_t split_seed = in->ConsumeIntegral<uint64_t>();
  Script script(in);
  script.Run();
  const ReadOutcome outcome = ReadChunkStream(script.wire(), split_seed, {});
  FUZZ_CHECK(outcome.status.ok(), "a well-formed stream failed: %s",
             std::string(outcome.status.message()).c_str());
  CheckSame(outcome, script.expected(), "generated stream");
}

void FuzzRaw(FuzzedDataProvider* in) {
  const uint64_t seed_a = in->ConsumeIntegral<uint64_t>();
  const uint64_t seed_b = in->ConsumeIntegral<uint64_t>();
  rtmp::ChunkReaderOptions options;
  rtmp::ChunkReaderOptions tight;
  if (in->ConsumeBool()) {
    // Small limits, so that the input reaches them. The message size and chunk stream
    // limits don't depend on the split; the buffered-bytes limit does (a message that
    // arrives whole in one piece is handed out in place, unbuffered), so it gets a run
    // of its own.
    options.max_message_size = in->ConsumeIntegralInRange<uint32_t>(0, 1 << 16);
    options.max_chunk_streams = in->ConsumeIntegralInRange<uint32_t>(1, 8);
    options.retained_buffer_bytes = in->ConsumeIntegralInRange<size_t>(0, 1 << 12);
    tight = options;
    tight.max_buffered_bytes = in->ConsumeIntegralInRange<size_t>(0, 1 << 17);
  }
  const std::vector<uint8_t> bytes = in->ConsumeRemainingBytes<uint8_t>();
  const ReadOutcome a = ReadChunkStream(bytes, seed_a, options);
  const ReadOutcome b = ReadChunkStream(bytes, seed_b, options);
  CheckSame(b, a.messages, "second split");
  FUZZ_CHECK(a.status == b.status, "the splits end differently: '%s' and '%s'",
             std::string(a.status.message()).c_str(), std::string(b.status.message()).c_str());
  // A buffered-bytes limit can only cut the stream short, never change a message.
  const ReadOutcome c = ReadChunkStream(bytes, seed_b, tight);
  FUZZ_CHECK(c.messages.size() <= a.messages.size(), "a limit added messages");
  for (size_t i = 0; i < c.messages.size(); ++i) {
    FUZZ_CHECK(c.messages[i] == a.messages[i], "under the limit, message %zu is %s, not %s", i,
               c.messages[i].Describe().c_str(), a.messages[i].Describe().c_str());
  }
  if (c.messages.size() < a.messages.size() || (!c.status.ok() && a.status.ok())) {
    FUZZ_CHECK(c.status.code() == absl::StatusCode::kResourceExhausted,
               "cut short by '%s', not by the limit", c.status.ToString().c_str());
  }
}

}  // namespace
}  // namespace uringest::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  FuzzedDataProvider in(data + 1, size - 1);
  if (data[0] & 1) {
    uringest::fuzz::FuzzRaw(&in);
  } else {
    uringest::fuzz::FuzzGenerated(&in);
  }
  return 0;
}
