// aggregate_fuzz: aggregate splitting (engine/rtmp/aggregate.h). The input is the
// aggregate's timestamp (8 bytes) and its body.
//
// Every sub-message is a view inside the body, after the previous one, of an allowed
// type, carrying the aggregate's stream and chunk stream; the reader agrees with a
// straightforward model of the format written here from the FLV spec (how many tags,
// where each lies, their times, which are skipped, whether the body is well-formed, and
// which tags come out before a malformed one); and the tags it read, written back as a
// fresh aggregate with correct back-pointers, read back the same.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "engine/rtmp/aggregate.h"
#include "engine/rtmp/rtmp_format.h"
#include "fuzz/fuzz_util.h"
#include "media/byte_order.h"
#include "media/flv_format.h"

namespace uringest::fuzz {
namespace {

using media::kFlvPreviousTagSizeSize;
using media::kFlvTagHeaderSize;
using rtmp::Message;

struct ModelTag {
  size_t data_offset = 0;
  size_t data_size = 0;
  uint8_t type = 0;
  uint64_t time = 0;
  bool skipped = false;  // not audio, video or data: the reader steps over it
};

// The model: tags one after another, each with its data and a 4-byte back-pointer of
// any value, ending exactly at the end. Tags of types other than 8, 9 and 18 are skipped,
// but the first tag of any type sets the time base.
bool Model(std::span<const uint8_t> body, uint64_t aggregate_time, std::vector<ModelTag>* tags) {
  size_t pos = 0;
  int64_t first = -1;
  while (pos < body.size()) {
    if (body.size() - pos < media::kFlvTagHeaderSize) return false;
    const uint8_t* p = body.data() + pos;
    const size_t size = media::LoadU24(p + 1);
    const size_t end = pos + media::kFlvTagHeaderSize + size + media::kFlvPreviousTagSizeSize;
    if (end > body.size()) return false;
    const int64_t ts = int64_t(media::LoadU24(p + 4) | uint32_t(p[7]) << 24);
    if (first < 0) first = ts;
    // The signed 32-bit distance from the first tag, added to the aggregate's time,
    // clamped at 0.
    const int64_t delta = int32_t(uint32_t(ts - first));
    const uint64_t time =
        delta < 0 && uint64_t(-delta) > aggregate_time ? 0 : aggregate_time + delta;
    const bool skipped = p[0] != 8 && p[0] != 9 && p[0] != 18;
    tags->push_back({pos + media::kFlvTagHeaderSize, size, p[0], time, skipped});
    pos = end;
  }
  return true;
}

std::vector<Message> ReadAll(const Message& aggregate, absl::Status* status, size_t* skipped) {
  rtmp::AggregateReader reader(aggregate);
  std::vector<Message> subs;
  Message sub;
  while (reader.Next(&sub)) subs.push_back(sub);
  FUZZ_CHECK(!reader.Next(&sub), "Next() went on after returning false");
  *status = reader.status();
  *skipped = reader.skipped();
  return subs;
}

}  // namespace
}  // namespace uringest::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace uringest;
  using namespace uringest::fuzz;
  if (size < 8) return 0;
  uint64_t time;
  std::memcpy(&time, data, 8);
  time >>= data[0] & 63;  // mostly small times, sometimes huge ones
  const std::span<const uint8_t> body(data + 8, size - 8);
  const Message aggregate{.header = {.chunk_stream_id = 6,
                                     .type = rtmp::MessageType::kAggregate,
                                     .stream_id = 1,
                                     .timestamp = time},
                          .payload = body};
  absl::Status status;
  size_t skipped;
  const std::vector<Message> subs = ReadAll(aggregate, &status, &skipped);
  std::vector<ModelTag> all;
  const bool well_formed = Model(body, time, &all);
  FUZZ_CHECK(status.ok() == well_formed, "reader says '%s', the model says %s",
             status.ToString().c_str(), well_formed ? "well-formed" : "malformed");
  // A malformed body yields the tags before the bad one, as the model lists them.
  std::vector<ModelTag> model;
  for (const ModelTag& tag : all) {
    if (!tag.skipped) model.push_back(tag);
  }
  FUZZ_CHECK(subs.size() == model.size(), "%zu sub-messages, the model has %zu tags", subs.size(),
             model.size());
  FUZZ_CHECK(skipped == all.size() - model.size(), "%zu tags skipped, the model skips %zu", skipped,
             all.size() - model.size());
  const uint8_t* end = body.data() + body.size();
  for (size_t i = 0; i < subs.size(); ++i) {
    const Message& sub = subs[i];
    FUZZ_CHECK(sub.payload.empty() || (sub.payload.data() >= body.data() &&
                                       sub.payload.data() + sub.payload.size() <= end),
               "sub-message %zu outside the body", i);
    FUZZ_CHECK(size_t(sub.payload.data() - body.data()) == model[i].data_offset &&
                   sub.payload.size() == model[i].data_size,
               "sub-message %zu at %td+%zu, the model has %zu+%zu", i,
               sub.payload.data() - body.data(), sub.payload.size(), model[i].data_offset,
               model[i].data_size);
    FUZZ_CHECK(uint8_t(sub.header.type) == model[i].type && sub.header.timestamp == model[i].time &&
                   sub.header.stream_id == 1 && sub.header.chunk_stream_id == 6,
               "sub-message %zu header: type %u time %llu", i, unsigned(sub.header.type),
               (unsigned long long)sub.header.timestamp);
  }
  if (all.empty()) return 0;
  // Written back with exact back-pointers, the tags read (skipped ones too) read back the
  // same.
  std::vector<uint8_t> rebuilt;
  for (const ModelTag& tag : all) {
    media::AppendBytes(&rebuilt, body.subspan(tag.data_offset - media::kFlvTagHeaderSize,
                                              media::kFlvTagHeaderSize + tag.data_size));
    media::AppendU32(&rebuilt, uint32_t(media::kFlvTagHeaderSize + tag.data_size));
  }
  Message copy = aggregate;
  copy.payload = rebuilt;
  absl::Status rebuilt_status;
  size_t rebuilt_skipped;
  const std::vector<Message> again = ReadAll(copy, &rebuilt_status, &rebuilt_skipped);
  FUZZ_CHECK(rebuilt_status.ok() && again.size() == subs.size() && rebuilt_skipped == skipped,
             "the rebuilt aggregate fails");
  for (size_t i = 0; i < again.size(); ++i) {
    FUZZ_CHECK(again[i].header.timestamp == subs[i].header.timestamp &&
                   std::equal(again[i].payload.begin(), again[i].payload.end(),
                              subs[i].payload.begin(), subs[i].payload.end()),
               "rebuilt sub-message %zu differs", i);
  }
  return 0;
}
