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
// `--on-publish-done URL` shares the thread and its timeout: Notify() posts, when a
// publish ends, for every reason,
//
//   call=publish_done&app=live&name=cam1&addr=203.0.113.7&port=51234&reason=idle_timeout
//       &duration_s=61.250&bytes=7340032&frames=3660
//
// with no answer to wait for. A notification that fails (no answer, or a 5xx) is tried
// again 3 times, 1, 2 and 4 s later; at most kMaxNotifications wait at once (a hook
// down for minutes under a publish storm can't take the server's memory). One given up
// is logged with its stream and reason, and counted.
//
// Thread safety: Post() and Notify() are thread-safe. The destructor stops the thread:
// on-publish requests still in flight are dropped without an answer (their connections
// are going away with the server); notifications get up to one timeout to be delivered,
// each tried once more (a shutdown ends every publish, and each is told).

#ifndef URINGEST_ENGINE_PUBLISH_HOOK_H_
#define URINGEST_ENGINE_PUBLISH_HOOK_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/internal/mutex.h"

namespace uringest::engine {

struct HookMetrics;

struct PublishHookOptions {
  std::string url;                            // --on-publish; "": publishes are not asked about
  std::string done_url;                       // --on-publish-done; "": ends are not told
  absl::Duration timeout = absl::Seconds(5);  // per request, connecting included
  // Where calls and their latency are counted; nullptr: not counted.
  HookMetrics* metrics = nullptr;
  HookMetrics* done_metrics = nullptr;
  std::atomic<uint64_t>* done_dropped = nullptr;  // notifications given up
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
  // A publish that ended: the fields of the on-publish-done POST.
  struct PublishDone {
    std::string app;
    std::string name;
    std::string addr;
    uint16_t port = 0;
    std::string_view reason;  // a static string: "unpublish", "idle_timeout", ...
    double duration_s = 0;
    uint64_t bytes = 0;
    uint64_t frames = 0;
  };
  static constexpr size_t kMaxNotifications = 10000;
  static constexpr int kNotifyRetries = 3;

  static absl::StatusOr<std::unique_ptr<PublishHook>> Create(const PublishHookOptions& options);
  PublishHook(const PublishHook&) = delete;
  PublishHook& operator=(const PublishHook&) = delete;
  ~PublishHook();

  // Queues the request; `done` runs once, on the hook's thread, with the answer.
  // REQUIRES: options.url is set.
  void Post(Request&& request, Callback&& done);
  // Queues an on-publish-done notification (nothing without options.done_url).
  void Notify(PublishDone&& done);
  bool asks() const { return !options_.url.empty(); }
  bool tells() const { return !options_.done_url.empty(); }

 private:
  struct Job;
  explicit PublishHook(const PublishHookOptions& options, void* multi);

  void ThreadMain();
  // Waits for the hook's sockets, a wakeup, or the next retry.
  void Poll();
  void StartQueued();
  bool StartTransfer(Job& job);
  void FinishDone();
  void Finished(std::unique_ptr<Job> job, int result, long status);
  void RetryOrGiveUp(std::unique_ptr<Job> job, const std::string& why);
  void Drop(const Job& job, const std::string& why);
  // Notifications still to be sent (queued, waiting to retry or in flight).
  bool NotificationsLeft();
  std::unique_ptr<Job> TakeInFlight(Job* job);

  const PublishHookOptions options_;
  void* const multi_;  // CURLM*, used by the hook's thread only (and wakeup)
  std::thread thread_;
  std::vector<std::unique_ptr<Job>> in_flight_;  // the hook's thread only
  std::vector<std::unique_ptr<Job>> retrying_;   // the hook's thread only

  internal::Mutex mu_;
  std::vector<std::unique_ptr<Job>> queued_ ABSL_GUARDED_BY(mu_);
  size_t notifications_ ABSL_GUARDED_BY(mu_) = 0;  // queued, retrying or in flight
  uint64_t overflowed_ ABSL_GUARDED_BY(mu_) = 0;   // dropped because of kMaxNotifications
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace uringest::engine

#endif  // URINGEST_ENGINE_PUBLISH_HOOK_H_
