// ring_reader_fuzz: the ring reader's record validation (ringbuf/ring_reader.h) over a
// ring image the input controls. A real Producer writes into a 64 KiB ring and a
// RingReader reads it, in the order a script from the input says: write a record, reserve
// one and poll before committing it, poll, look up a header, and corrupt the shared
// memory (record bytes, a header field, tail, tail_intent, max_record_length) or seek the
// reader anywhere, as a buggy or hostile process with write access could.
//
// While nothing is corrupted the reader must return exactly what the producer wrote:
// each record once, in order, header and payload intact, skipping only records the
// producer overwrote (and then flagging the gap); it never returns a reservation not yet
// committed, and when Poll() says there is nothing, the reader is at the tail (or, lapped
// by an open reservation, where that begins). After a corruption it may return garbage,
// but every payload it hands out lies inside the ring's data, its lengths are consistent,
// and Poll() comes back (libFuzzer's -timeout catches a reader that spins). The page after the
// ring's mapping is made inaccessible, so a read past the end crashes.

#include <fuzzer/FuzzedDataProvider.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "fuzz/fuzz_util.h"
#include "ringbuf/producer.h"
#include "ringbuf/record_meta.h"
#include "ringbuf/ring_format.h"
#include "ringbuf/ring_reader.h"
#include "ringbuf/shm.h"

namespace uringest::fuzz {
namespace {

using ringbuf::RecordType;
using ringbuf::RecordView;

constexpr uint64_t kCapacity = ringbuf::kMinRingCapacity;
constexpr size_t kRegionSize = ringbuf::kRingHeaderSize + kCapacity;
constexpr size_t kMaxOps = 64;

uint8_t PayloadByte(uint64_t sequence, size_t i) { return uint8_t(sequence * 131 + i * 7); }

struct WrittenRecord {
  uint64_t position;
  ringbuf::RecordMeta meta;
  uint32_t payload_length;
};

// The ring file, created once per process; every input starts from zeroes.
class RingFile {
 public:
  RingFile() : path_("/dev/shm/uringest-fuzz-ring-" + std::to_string(getpid())) {
    unlink(path_.c_str());
    absl::StatusOr<ringbuf::ShmRegion> region =
        ringbuf::ShmRegion::Create(path_, kRegionSize, {.prefault = false});
    FUZZ_CHECK(region.ok(), "creating %s: %s", path_.c_str(), region.status().ToString().c_str());
    region_ = *std::move(region);
  }
  ~RingFile() { unlink(path_.c_str()); }
  ringbuf::ShmRegion Map() const {
    absl::StatusOr<ringbuf::ShmRegion> region = ringbuf::ShmRegion::Open(path_, true, false);
    FUZZ_CHECK(region.ok(), "mapping %s", path_.c_str());
    return *std::move(region);
  }
  uint8_t* bytes() const { return region_.data(); }
  ringbuf::RingHeader* header() const { return reinterpret_cast<ringbuf::RingHeader*>(bytes()); }
  uint8_t* data() const { return bytes() + ringbuf::kRingHeaderSize; }

 private:
  std::string path_;
  ringbuf::ShmRegion region_;
};

class Harness {
 public:
  Harness(const RingFile& file, FuzzedDataProvider* in) : file_(file), in_(in) {
    std::memset(file.bytes(), 0, kRegionSize);
    absl::StatusOr<std::unique_ptr<ringbuf::Producer>> producer =
        ringbuf::Producer::Format(file.Map(), {.capacity = kCapacity, .epoch = 1});
    FUZZ_CHECK(producer.ok(), "Format: %s", producer.status().ToString().c_str());
    producer_ = *std::move(producer);
    // An inaccessible page right after the reader's mapping: reserve the ring's size and
    // a page, free all but the page, and the mapping goes into that hole (the kernel uses
    // the highest hole that fits).
    auto* hole = static_cast<uint8_t*>(
        mmap(nullptr, kRegionSize + getpagesize(), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    FUZZ_CHECK(hole != MAP_FAILED, "mmap of the guard page");
    guard_ = hole + kRegionSize;
    munmap(hole, kRegionSize);
    ringbuf::ShmRegion mapping = file.Map();
    FUZZ_CHECK(mapping.data() + mapping.size() == guard_,
               "the reader's mapping does not end at the guard page");
    absl::StatusOr<std::unique_ptr<ringbuf::RingReader>> reader =
        ringbuf::RingReader::Attach(std::move(mapping));
    FUZZ_CHECK(reader.ok(), "Attach: %s", reader.status().ToString().c_str());
    reader_ = *std::move(reader);
  }
  ~Harness() {
    reader_.reset();
    if (guard_ != MAP_FAILED) munmap(guard_, getpagesize());
  }

  void Run() {
    for (size_t op = 0; op < kMaxOps && in_->remaining_bytes() > 0; ++op) {
      switch (in_->ConsumeIntegralInRange<int>(0, 9)) {
        case 0:
        case 1:
        case 2:
          Write();
          break;
        case 3:
          ReserveThenPoll();
          break;
        case 4:
        case 5:
        case 6:
          PollSome();
          break;
        case 7:
          LookUpHeader();
          break;
        default:
          Corrupt();
          break;
      }
    }
    PollSome();
  }

 private:
  ringbuf::RecordMeta NextMeta() {
    static constexpr RecordType kTypes[] = {RecordType::kAudio, RecordType::kVideo,
                                            RecordType::kData, RecordType::kStreamBegin,
                                            RecordType::kStreamEnd};
    return {.type = in_->PickValueInArray(kTypes),
            .flags = in_->ConsumeIntegral<uint8_t>(),
            .stream_id = in_->ConsumeIntegralInRange<uint32_t>(1, 4),
            .sequence = ++sequence_,
            .dts = int64_t(sequence_) * 40,
            .pts = int64_t(sequence_) * 40 + 80};
  }

  size_t NextLength() {
    const size_t max = producer_->max_payload_length();
    return in_->ConsumeBool() ? in_->ConsumeIntegralInRange<size_t>(0, 300)
                              : in_->ConsumeIntegralInRange<size_t>(0, max);
  }

  void Write() {
    const ringbuf::RecordMeta meta = NextMeta();
    std::vector<uint8_t> payload(NextLength());
    for (size_t i = 0; i < payload.size(); ++i) payload[i] = PayloadByte(meta.sequence, i);
    absl::StatusOr<uint64_t> position = producer_->Write(meta, payload);
    FUZZ_CHECK(position.ok(), "Write: %s", position.status().ToString().c_str());
    written_.push_back({*position, meta, uint32_t(payload.size())});
  }

  // A record reserved but not committed is invisible; committed, or aborted into padding,
  // the ring goes on.
  void ReserveThenPoll() {
    const ringbuf::RecordMeta meta = NextMeta();
    const size_t length = NextLength();
    absl::StatusOr<std::span<uint8_t>> room = producer_->Reserve(meta, length);
    FUZZ_CHECK(room.ok(), "Reserve: %s", room.status().ToString().c_str());
    for (size_t i = 0; i < length; ++i) (*room)[i] = PayloadByte(meta.sequence, i);
    PollSome(/*reserved=*/true);
    if (in_->ConsumeBool()) {
      const uint64_t position = producer_->Commit();
      written_.push_back({position, meta, uint32_t(length)});
    } else {
      producer_->Abort();
    }
  }

  // With a reservation open, a lapped reader may resync to where the reservation starts,
  // past the committed tail (the padding before it is all that lies between).
  void PollSome(bool reserved = false) {
    const int polls = in_->ConsumeIntegralInRange<int>(1, 8);
    for (int i = 0; i < polls; ++i) {
      RecordView view;
      if (!reader_->Poll(&view)) {
        const uint64_t cursor = reader_->cursor(), tail = producer_->tail();
        if (!corrupted_) {
          FUZZ_CHECK(
              reserved ? cursor >= tail && cursor < reader_->header().tail_intent : cursor == tail,
              "Poll() empty at %llu, tail %llu", (unsigned long long)cursor,
              (unsigned long long)tail);
        }
        return;
      }
      CheckBounds(view);
      if (!corrupted_) CheckAgainstProducer(view);
    }
  }

  void CheckBounds(const RecordView& view) const {
    const uint8_t* begin = view.payload.data();
    FUZZ_CHECK(view.payload.empty() || (begin >= reader_data() &&
                                        begin + view.payload.size() <= reader_data() + kCapacity),
               "payload of %zu bytes outside the ring", view.payload.size());
    FUZZ_CHECK(uint64_t{view.header.payload_length} + ringbuf::kRecordHeaderSize <=
                   view.header.record_length,
               "payload %u in a record of %u", view.header.payload_length,
               view.header.record_length);
    FUZZ_CHECK(view.header.type != uint8_t(RecordType::kPadding), "padding handed out");
  }

  const uint8_t* reader_data() const {
    // The reader's own mapping: the payload view points into it.
    return reinterpret_cast<const uint8_t*>(&reader_->header()) + ringbuf::kRingHeaderSize;
  }

  void CheckAgainstProducer(const RecordView& view) {
    size_t index = next_;
    while (index < written_.size() && written_[index].position < view.position()) ++index;
    FUZZ_CHECK(index < written_.size() && written_[index].position == view.position(),
               "Poll() returned position %llu, which the producer never wrote",
               (unsigned long long)view.position());
    // A gap may also have swallowed only padding: then the next record still follows.
    FUZZ_CHECK(index == next_ || view.gap_before, "records %zu..%zu skipped without a gap", next_,
               index);
    // Only records the producer overwrote may be skipped: the reader resyncs at the
    // oldest multiple of the capacity that is still intact.
    const uint64_t intent = reader_->header().tail_intent;
    const uint64_t oldest = intent <= kCapacity ? 0 : (intent - 1) & ~(kCapacity - 1);
    for (size_t skipped = next_; skipped < index; ++skipped) {
      FUZZ_CHECK(written_[skipped].position < oldest, "record at %llu skipped, oldest %llu",
                 (unsigned long long)written_[skipped].position, (unsigned long long)oldest);
    }
    const WrittenRecord& w = written_[index];
    FUZZ_CHECK(ringbuf::ToRecordMeta(view.header) == w.meta &&
                   view.header.payload_length == w.payload_length,
               "record %zu's header differs", index);
    std::vector<uint8_t> copy(view.payload.size());
    FUZZ_CHECK(reader_->CopyPayload(view, copy), "a record just polled is not valid");
    for (size_t i = 0; i < copy.size(); ++i) {
      FUZZ_CHECK(copy[i] == PayloadByte(w.meta.sequence, i), "record %zu byte %zu differs", index,
                 i);
    }
    next_ = index + 1;
  }

  void LookUpHeader() {
    const uint64_t position =
        in_->ConsumeBool() && !written_.empty()
            ? written_[in_->ConsumeIntegralInRange<size_t>(0, written_.size() - 1)].position
            : in_->ConsumeIntegral<uint64_t>();
    ringbuf::RecordHeader h;
    if (reader_->HeaderAt(position, &h)) {
      FUZZ_CHECK(h.position == position, "HeaderAt(%llu) gave position %llu",
                 (unsigned long long)position, (unsigned long long)h.position);
    }
  }

  void Corrupt() {
    corrupted_ = true;
    ringbuf::RingHeader* h = file_.header();
    const uint64_t value = in_->ConsumeIntegral<uint64_t>();
    switch (in_->ConsumeIntegralInRange<int>(0, 6)) {
      case 0: {  // bytes anywhere in the data region
        const size_t offset = in_->ConsumeIntegralInRange<size_t>(0, kCapacity - 1);
        std::vector<uint8_t> bytes = in_->ConsumeBytes<uint8_t>(kCapacity - offset);
        if (!bytes.empty()) std::memcpy(file_.data() + offset, bytes.data(), bytes.size());
        break;
      }
      case 1: {  // one field of a record's header
        if (written_.empty()) return;
        const WrittenRecord& w =
            written_[in_->ConsumeIntegralInRange<size_t>(0, written_.size() - 1)];
        const size_t field = in_->ConsumeIntegralInRange<size_t>(0, ringbuf::kRecordHeaderSize - 1);
        file_.data()[(w.position & (kCapacity - 1)) + field] = uint8_t(value);
        break;
      }
      case 2:
        h->tail = value;
        break;
      case 3:
        h->tail_intent = value;
        break;
      case 4:
        h->max_record_length = uint32_t(value);
        break;
      case 5:
        h->tail = h->tail_intent = value;
        break;
      default:
        reader_->Seek(value);
        break;
    }
  }

  const RingFile& file_;
  FuzzedDataProvider* in_;
  std::unique_ptr<ringbuf::Producer> producer_;
  std::unique_ptr<ringbuf::RingReader> reader_;
  void* guard_ = MAP_FAILED;
  std::vector<WrittenRecord> written_;
  size_t next_ = 0;  // the index in written_ of the record the reader should return next
  uint64_t sequence_ = 0;
  bool corrupted_ = false;
};

}  // namespace
}  // namespace uringest::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const uringest::fuzz::RingFile file;
  FuzzedDataProvider in(data, size);
  uringest::fuzz::Harness harness(file, &in);
  harness.Run();
  return 0;
}
