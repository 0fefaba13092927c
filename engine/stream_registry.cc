#include "engine/stream_registry.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"

namespace uringest::engine {

StreamRegistry::StreamRegistry(OnDuplicate policy, std::function<void(const Publisher&)> evict)
    : policy_(policy), evict_(std::move(evict)) {}

absl::Status StreamRegistry::Claim(std::string_view key, const Publisher& publisher) {
  std::optional<Publisher> evicted;
  {
    internal::MutexLock lock(&mu_);
    const std::string name(key);
    if (auto ban = bans_.find(name); ban != bans_.end()) {
      const absl::Duration left = ban->second - absl::Now();
      if (left > absl::ZeroDuration()) {
        return absl::UnavailableError(
            absl::StrCat(name, " is banned for ",
                         absl::ToInt64Seconds(absl::Ceil(left, absl::Seconds(1))), " s more"));
      }
      bans_.erase(ban);
    }
    auto [it, inserted] = owners_.try_emplace(name, publisher);
    if (!inserted) {
      // A connection publishing the name on a second stream of its own is refused
      // whatever the policy: one name, one stream.
      if (policy_ == OnDuplicate::kReject || it->second == publisher) {
        return absl::AlreadyExistsError(absl::StrCat(name, " is already publishing"));
      }
      evicted = std::exchange(it->second, publisher);
    }
  }
  if (evicted.has_value() && evict_) evict_(*evicted);
  return absl::OkStatus();
}

std::optional<Publisher> StreamRegistry::Find(std::string_view key) const {
  internal::MutexLock lock(&mu_);
  auto it = owners_.find(std::string(key));
  if (it == owners_.end()) return std::nullopt;
  return it->second;
}

void StreamRegistry::Ban(std::string_view key, absl::Time until) {
  internal::MutexLock lock(&mu_);
  // Lapsed bans go here too, so that the map holds only the names banned now.
  absl::erase_if(bans_, [now = absl::Now()](const auto& ban) { return ban.second <= now; });
  if (until > absl::Now()) bans_[std::string(key)] = until;
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

absl::Status ConnectionNames::Claim(rtmp::StreamName name) {
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
