#include "engine/access_control.h"

#include <utility>

namespace uringest::engine {

absl::StatusOr<std::unique_ptr<AccessControl>> AccessControl::Create(const AccessOptions& options) {
  auto access = std::unique_ptr<AccessControl>(new AccessControl(options));
  if (!options.auth_file.empty()) {
    absl::StatusOr<size_t> rules = access->Reload();
    if (!rules.ok()) return rules.status();
  }
  if (!options.hook.url.empty() || !options.hook.done_url.empty()) {
    absl::StatusOr<std::unique_ptr<PublishHook>> hook = PublishHook::Create(options.hook);
    if (!hook.ok()) return hook.status();
    access->hook_ = *std::move(hook);
  }
  return access;
}

absl::StatusOr<size_t> AccessControl::Reload() {
  if (options_.auth_file.empty()) return 0;
  absl::StatusOr<AuthFile> file = AuthFile::Load(options_.auth_file);
  if (!file.ok()) return file.status();
  const size_t rules = file->rule_count();
  auto snapshot = std::make_shared<const AuthFile>(*std::move(file));
  internal::MutexLock lock(&mu_);
  auth_file_ = std::move(snapshot);
  return rules;
}

std::shared_ptr<const AuthFile> AccessControl::auth_file() const {
  internal::MutexLock lock(&mu_);
  return auth_file_;
}

rtmp::PublishVerdict ConnectionAuthorizer::Authorize(const rtmp::PublishRequest& request) {
  if (std::shared_ptr<const AuthFile> file = access_->auth_file(); file != nullptr) {
    const AuthFile::Result result =
        file->Check(StreamKey({.app = request.app, .name = request.name}), request.key);
    if (result != AuthFile::Result::kAllowed) {
      return rtmp::PublishVerdict::Deny(std::string(AuthResultText(result)));
    }
  }
  PublishHook* hook = access_->hook();
  if (hook == nullptr || !hook->asks()) return rtmp::PublishVerdict::Allow();
  hook->Post({.app = std::string(request.app),
              .name = std::string(request.name),
              .key = std::string(request.key),
              .addr = addr_,
              .port = port_},
             [poster = poster_, self = self_, stream_id = request.stream_id,
              ticket = request.ticket](PublishHook::Answer answer) {
               (*poster)(self.shard, Approval{.connection = self.connection,
                                              .stream_id = stream_id,
                                              .ticket = ticket,
                                              .allowed = answer.allowed,
                                              .reason = std::move(answer.reason)});
             });
  return rtmp::PublishVerdict::Pending();
}

}  // namespace uringest::engine
