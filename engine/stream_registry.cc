#include "engine/stream_registry.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"

namespace uringest::engine {

StreamRegistry::StreamRegistry(OnDuplicate policy, std::function<void(const Publisher&)> evict)
    : policy_(policy), evict_(std::move(evict)) {}

bool StreamRegistry::Claim(std::string_view key, const Publisher& publisher) {
  std::optional<Publisher> evicted;
  {
    internal::MutexLock lock(&mu_);
    auto [it, inserted] = owners_.try_emplace(std::string(key), publisher);
    if (!inserted) {
      // A connection publishing the name on a second stream of its own is refused
      // whatever the policy: one name, one stream.
      if (policy_ == OnDuplicate::kReject || it->second == publisher) return false;
      evicted = std::exchange(it->second, publisher);
    }
  }
  if (evicted.has_value() && evict_) evict_(*evicted);
  return true;
}

void StreamRegistry::Release(std::string_view key, const Publisher& publisher) {
  internal::MutexLock lock(&mu_);
  auto it = owners_.find(std::string(key));
  if (it != owners_.end() && it->second == publisher) owners_.erase(it);
}

size_t StreamRegistry::size() const {
  internal::MutexLock lock(&mu_);
  return owners_.size();
}

bool ConnectionNames::Claim(rtmp::StreamName name) {
  return registry_->Claim(StreamKey(name), publisher_);
}

void ConnectionNames::Release(rtmp::StreamName name) {
  registry_->Release(StreamKey(name), publisher_);
}

std::string StreamKey(rtmp::StreamName name) {
  std::string key;
  key.reserve(name.app.size() + 1 + name.name.size());
  return key.append(name.app).append("/").append(name.name);
}

}  // namespace uringest::engine
