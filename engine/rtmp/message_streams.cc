#include "engine/rtmp/message_streams.h"

namespace uringest::rtmp {

uint32_t MessageStreams::Create() {
  uint32_t id = 1;
  while (id <= size() && streams_[id - 1].state != State::kFree) ++id;
  if (id > size()) {
    if (id > max_streams_) return 0;
    streams_.emplace_back();
  }
  streams_[id - 1].state = State::kCreated;
  return id;
}

void MessageStreams::Delete(uint32_t stream_id) {
  Stream* stream = At(stream_id);
  if (stream == nullptr) return;
  *stream = Stream{};
  UpdateSolePublishing();
}

MessageStreams::Stream* MessageStreams::At(uint32_t stream_id) {
  return stream_id >= 1 && stream_id <= size() ? &streams_[stream_id - 1] : nullptr;
}

const MessageStreams::Stream* MessageStreams::At(uint32_t stream_id) const {
  return stream_id >= 1 && stream_id <= size() ? &streams_[stream_id - 1] : nullptr;
}

MessageStreams::Stream* MessageStreams::Find(uint32_t stream_id) {
  Stream* stream = At(stream_id);
  return stream != nullptr && stream->state != State::kFree ? stream : nullptr;
}

bool MessageStreams::IsPublishing(uint32_t stream_id) const {
  const Stream* stream = At(stream_id);
  return stream != nullptr && stream->state == State::kPublishing;
}

uint32_t MessageStreams::FindPublishing(std::string_view name) const {
  for (uint32_t id = 1; id <= size(); ++id) {
    if (IsPublishing(id) && streams_[id - 1].name == name) return id;
  }
  return 0;
}

void MessageStreams::SetState(uint32_t stream_id, State state) {
  const bool was_publishing = IsPublishing(stream_id);
  streams_[stream_id - 1].state = state;
  if (was_publishing != (state == State::kPublishing)) UpdateSolePublishing();
}

uint32_t MessageStreams::Route(uint32_t stream_id) const {
  if (IsPublishing(stream_id)) return stream_id;
  const Stream* stream = At(stream_id);
  return stream == nullptr || stream->state == State::kFree ? sole_publishing_ : 0;
}

std::vector<MessageStreams::Publishing> MessageStreams::publishing() const {
  std::vector<Publishing> out;
  for (uint32_t id = 1; id <= size(); ++id) {
    const Stream& s = streams_[id - 1];
    if (s.state == State::kPublishing) out.push_back({id, s.name, s.type});
  }
  return out;
}

void MessageStreams::UpdateSolePublishing() {
  uint32_t sole = 0;
  for (uint32_t id = 1; id <= size(); ++id) {
    if (!IsPublishing(id)) continue;
    if (sole != 0) {
      sole_publishing_ = 0;
      return;
    }
    sole = id;
  }
  sole_publishing_ = sole;
}

}  // namespace uringest::rtmp
