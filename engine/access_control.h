// access_control.h: who may publish, server-wide: the keys of `--auth-file` (reloaded
// on SIGHUP) and the `--on-publish` HTTP hook. Each connection asks through its own
// ConnectionAuthorizer, the rtmp::PublishAuthorizer its Session holds. When both are
// configured a publish needs both: the file is checked first, on the shard's thread (in
// memory, a few microseconds), then the hook is asked off the shard's thread, and its
// answer comes back to the shard as an Approval through its inbox.
//
//   absl::StatusOr<std::unique_ptr<AccessControl>> access = AccessControl::Create(
//       {.auth_file = "/etc/uringest/keys", .hook = {.url = "http://127.0.0.1/auth"}});
//   // main thread, on SIGHUP:
//   if (absl::Status s = (*access)->Reload(); !s.ok()) log(s);  // the old keys stay
//   // per connection, on its shard:
//   ConnectionAuthorizer auth(access->get(), &poster, {.shard = 0, .connection = 7}, ip, port);
//
// Thread safety: AccessControl is thread-safe (the loaded file is an immutable snapshot
// swapped under a lock). A ConnectionAuthorizer belongs to its connection's shard
// thread; the Approval it posts arrives on that thread's inbox.

#ifndef URINGEST_ENGINE_ACCESS_CONTROL_H_
#define URINGEST_ENGINE_ACCESS_CONTROL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "engine/auth_file.h"
#include "engine/internal/mutex.h"
#include "engine/publish_hook.h"
#include "engine/rtmp/publish_authorizer.h"
#include "engine/stream_registry.h"

namespace uringest::engine {

struct AccessOptions {
  std::string auth_file;    // "": no key file
  PublishHookOptions hook;  // url "": no hook
};

// A late answer for one publish, addressed to its connection.
struct Approval {
  uint64_t connection = 0;  // the connection's serial
  uint32_t stream_id = 0;
  uint64_t ticket = 0;
  bool allowed = false;
  std::string reason;
};

// Delivers an Approval to shard `shard` (its inbox); called on the hook's thread.
using ApprovalPoster = std::function<void(uint32_t shard, Approval&&)>;

class AccessControl {
 public:
  // Loads the auth file (an error if it can't be read or parsed) and starts the hook's
  // thread.
  static absl::StatusOr<std::unique_ptr<AccessControl>> Create(const AccessOptions& options);
  AccessControl(const AccessControl&) = delete;
  AccessControl& operator=(const AccessControl&) = delete;

  // Re-reads the auth file (SIGHUP). On failure the rules loaded before stay in force.
  // Returns the number of rules now loaded.
  absl::StatusOr<size_t> Reload();

  bool enabled() const {
    return !options_.auth_file.empty() || (hook_ != nullptr && hook_->asks());
  }
  const AccessOptions& options() const { return options_; }
  // The rules in force (nullptr without --auth-file); the snapshot stays valid however
  // often the file is reloaded meanwhile.
  std::shared_ptr<const AuthFile> auth_file() const;
  // The hook's client: on-publish requests, on-publish-done notifications, or both;
  // nullptr with neither.
  PublishHook* hook() const { return hook_.get(); }

 private:
  explicit AccessControl(const AccessOptions& options) : options_(options) {}

  const AccessOptions options_;
  std::unique_ptr<PublishHook> hook_;
  mutable internal::Mutex mu_;
  std::shared_ptr<const AuthFile> auth_file_ ABSL_GUARDED_BY(mu_);
};

class ConnectionAuthorizer : public rtmp::PublishAuthorizer {
 public:
  // `access` and `poster` must outlive it. `addr` and `port`: the publisher's address.
  ConnectionAuthorizer(const AccessControl* access, const ApprovalPoster* poster,
                       const Publisher& self, std::string addr, uint16_t port)
      : access_(access), poster_(poster), self_(self), addr_(std::move(addr)), port_(port) {}

  rtmp::PublishVerdict Authorize(const rtmp::PublishRequest& request) override;

  // The publisher's address, learnt later (a PROXY protocol header).
  void set_address(std::string addr, uint16_t port) {
    addr_ = std::move(addr);
    port_ = port;
  }

 private:
  const AccessControl* const access_;
  const ApprovalPoster* const poster_;
  const Publisher self_;
  std::string addr_;
  uint16_t port_;
};

}  // namespace uringest::engine

#endif  // URINGEST_ENGINE_ACCESS_CONTROL_H_
