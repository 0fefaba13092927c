// stream_registry.h: which connection publishes each stream name, across all shards, so
// that a second publisher of a name gets NetStream.Publish.BadName, or with
// --on-duplicate=takeover evicts the first (an encoder reconnecting after a network
// blip, while the server has not yet noticed the old connection is dead).
//
// This is the control plane: a publish claims a name once, under a mutex. The HTTP API
// finds a name's publisher here (to kick it) and bans names for a while.
//
//   StreamRegistry registry(OnDuplicate::kTakeover, [&](const Publisher& old) {
//     shards[old.shard]->PostEviction(old.connection);
//   });
//   ConnectionNames names(&registry, {.shard = 1, .connection = 7});
//   Session session(options, &sender, &sink, &names);   // names is a PublishRegistry
//
// Thread safety: StreamRegistry is thread-safe. A ConnectionNames belongs to its
// connection's shard thread.

#ifndef URINGEST_ENGINE_STREAM_REGISTRY_H_
#define URINGEST_ENGINE_STREAM_REGISTRY_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "engine/internal/mutex.h"
#include "engine/rtmp/frame.h"

namespace uringest::engine {

enum class OnDuplicate { kReject, kTakeover };

// A connection, named so that any shard can find it: its shard and its serial number
// (unique for the server's life).
struct Publisher {
  uint32_t shard = 0;
  uint64_t connection = 0;
  bool operator==(const Publisher&) const = default;
};

class StreamRegistry {
 public:
  // `evict` is called, without the lock held, when a takeover claims a name from an
  // older publisher; it must arrange for that connection to be closed.
  StreamRegistry(OnDuplicate policy, std::function<void(const Publisher&)> evict);

  // Claims "app/name" for `publisher`. AlreadyExists if the name is held by another
  // publisher and the policy is kReject, or by `publisher` itself (on another of its
  // streams); Unavailable while the name is banned. The message says which, for the
  // publisher's onStatus.
  absl::Status Claim(std::string_view key, const Publisher& publisher);
  // Releases the name if `publisher` still holds it (after a takeover it doesn't).
  void Release(std::string_view key, const Publisher& publisher);
  // Who publishes "app/name" now.
  std::optional<Publisher> Find(std::string_view key) const;
  // Refuses "app/name" to every publisher until `until` (a later ban replaces it; a past
  // time lifts it). Bans are kept in memory only.
  void Ban(std::string_view key, absl::Time until);
  size_t size() const;

 private:
  const OnDuplicate policy_;
  const std::function<void(const Publisher&)> evict_;
  mutable internal::Mutex mu_;
  absl::flat_hash_map<std::string, Publisher> owners_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, absl::Time> bans_ ABSL_GUARDED_BY(mu_);
};

// The PublishRegistry one connection's session uses: claims in the StreamRegistry in
// the connection's name.
class ConnectionNames : public rtmp::PublishRegistry {
 public:
  ConnectionNames(StreamRegistry* registry, const Publisher& publisher)
      : registry_(registry), publisher_(publisher) {}
  absl::Status Claim(rtmp::StreamName name) override;
  void Release(rtmp::StreamName name) override;

 private:
  StreamRegistry* const registry_;
  const Publisher publisher_;
};

// "app/name": the key streams are routed by, in the registry and the ring's directory.
std::string StreamKey(rtmp::StreamName name);

}  // namespace uringest::engine

#endif  // URINGEST_ENGINE_STREAM_REGISTRY_H_
