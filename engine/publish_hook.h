// publish_hook.h: `--on-publish URL`, the HTTP hook that decides whether a publish may
// go on, as nginx-rtmp's on_publish: for each publish an HTTP POST with
//
//   Content-Type: application/x-www-form-urlencoded
//   call=publish&app=live&name=cam1&key=SECRET&addr=203.0.113.7&port=51234
//
// (values percent-encoded; key is "" when the publisher gave none). A 2xx answer allows
// the publish; any other status, a failed request, or no answer within the timeout
// refuses it. One thread owns a libcurl multi handle and runs the requests side by side
// (up to 256 at once; more wait their turn), so that a slow hook holds up no shard:
// shards Post() and get the answer through the callback, which runs on the hook's thread
// and must only hand it over (a shard inbox).
//
//   absl::StatusOr<std::unique_ptr<PublishHook>> hook =
//       PublishHook::Create({.url = "http://127.0.0.1:8080/auth", .timeout = absl::Seconds(5)});
//   (*hook)->Post({.app = "live", .name = "cam1", .key = key, .addr = "10.0.0.7", .port = 5000},
//                 [](PublishHook::Answer a) { shard->PostApproval(..., a); });
//
// The key travels in the request body only: it is never logged.
//
// Thread safety: Post() is thread-safe. The destructor stops the thread; requests still
// in flight are dropped without an answer (their connections are going away with the
// server).

#ifndef URINGEST_ENGINE_PUBLISH_HOOK_H_
#define URINGEST_ENGINE_PUBLISH_HOOK_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/internal/mutex.h"

namespace uringest::engine {

struct PublishHookOptions {
  std::string url;
  absl::Duration timeout = absl::Seconds(5);  // per request, connecting included
};

class PublishHook {
 public:
  struct Request {
    std::string app;
    std::string name;
    std::string key;
    std::string addr;  // the publisher's IP
    uint16_t port = 0;
  };
  struct Answer {
    bool allowed = false;
    std::string reason;  // why not, for logs and the client: "on-publish hook answered 403"
  };
  using Callback = std::function<void(Answer)>;

  static absl::StatusOr<std::unique_ptr<PublishHook>> Create(const PublishHookOptions& options);
  PublishHook(const PublishHook&) = delete;
  PublishHook& operator=(const PublishHook&) = delete;
  ~PublishHook();

  // Queues the request; `done` runs once, on the hook's thread, with the answer.
  void Post(Request&& request, Callback&& done);

 private:
  struct Job;
  explicit PublishHook(const PublishHookOptions& options, void* multi);

  void ThreadMain();
  void StartQueued();
  void FinishDone();
  std::unique_ptr<Job> TakeInFlight(Job* job);

  const PublishHookOptions options_;
  void* const multi_;  // CURLM*, used by the hook's thread only (and wakeup)
  std::thread thread_;
  std::vector<std::unique_ptr<Job>> in_flight_;  // the hook's thread only

  internal::Mutex mu_;
  std::vector<std::unique_ptr<Job>> queued_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace uringest::engine

#endif  // URINGEST_ENGINE_PUBLISH_HOOK_H_
