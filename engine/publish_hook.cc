#include "engine/publish_hook.h"

#include <curl/curl.h>
#include <pthread.h>

#include <algorithm>
#include <cstdlib>
#include <iterator>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "engine/server_metrics.h"
#include "spdlog/spdlog.h"

namespace uringest::engine {
namespace {

constexpr int kPollTimeoutMs = 1000;
// Requests at once; more wait in the queue (a publish storm must not open thousands of
// connections to the hook). A queued request's timeout starts when it is sent.
constexpr size_t kMaxInFlight = 256;

CURLM* Multi(void* multi) { return static_cast<CURLM*>(multi); }

// The hook's answer body is not read: only its status counts.
size_t DiscardBody(char* /*data*/, size_t size, size_t count, void* /*user*/) {
  return size * count;
}

std::string Escape(CURL* easy, const std::string& s) {
  char* escaped = curl_easy_escape(easy, s.data(), static_cast<int>(s.size()));
  std::string out = escaped != nullptr ? escaped : "";
  curl_free(escaped);
  return out;
}

// The POST bodies (publish_hook.h), each value percent-encoded.
std::string FormBody(CURL* easy, const PublishHook::Request& r) {
  return absl::StrCat("call=publish&app=", Escape(easy, r.app), "&name=", Escape(easy, r.name),
                      "&key=", Escape(easy, r.key), "&addr=", Escape(easy, r.addr),
                      "&port=", r.port);
}

std::string DoneBody(CURL* easy, const PublishHook::PublishDone& d) {
  return absl::StrCat("call=publish_done&app=", Escape(easy, d.app), "&name=", Escape(easy, d.name),
                      "&addr=", Escape(easy, d.addr), "&port=", d.port,
                      "&reason=", std::string(d.reason),
                      "&duration_s=", absl::StrFormat("%.3f", d.duration_s), "&bytes=", d.bytes,
                      "&frames=", d.frames);
}

}  // namespace

struct PublishHook::Job {
  bool notify = false;  // on-publish-done: no answer, retried
  Request request;      // on-publish
  Callback done;
  PublishDone ended;  // on-publish-done
  int attempts = 0;
  absl::Time retry_at;
  absl::Time started;
  CURL* easy = nullptr;
  std::string body;

  ~Job() {
    if (easy != nullptr) curl_easy_cleanup(easy);
  }
  std::string Describe() const {
    return absl::StrCat(ended.app, "/", ended.name, " (", std::string(ended.reason), ")");
  }
};

absl::StatusOr<std::unique_ptr<PublishHook>> PublishHook::Create(
    const PublishHookOptions& options) {
  for (const auto& [flag, url] :
       {std::pair<const char*, const std::string&>{"--on-publish", options.url},
        {"--on-publish-done", options.done_url}}) {
    if (!url.empty() && url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, " wants an http:// or https:// URL, not '", url, "'"));
    }
  }
  if (options.url.empty() && options.done_url.empty()) {
    return absl::InvalidArgumentError("a hook needs --on-publish or --on-publish-done");
  }
  // Not thread-safe in older libcurls: done here, on the main thread, before any other.
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    return absl::InternalError("curl_global_init failed");
  }
  CURLM* multi = curl_multi_init();
  if (multi == nullptr) return absl::InternalError("curl_multi_init failed");
  auto hook = std::unique_ptr<PublishHook>(new PublishHook(options, multi));
  hook->thread_ = std::thread([h = hook.get()] { h->ThreadMain(); });
  return hook;
}

PublishHook::PublishHook(const PublishHookOptions& options, void* multi)
    : options_(options), multi_(multi) {}

PublishHook::~PublishHook() {
  {
    internal::MutexLock lock(&mu_);
    stop_ = true;
  }
  curl_multi_wakeup(Multi(multi_));
  if (thread_.joinable()) thread_.join();
  curl_multi_cleanup(Multi(multi_));
}

void PublishHook::Post(Request&& request, Callback&& done) {
  auto job = std::make_unique<Job>();
  job->request = std::move(request);
  job->done = std::move(done);
  {
    internal::MutexLock lock(&mu_);
    queued_.push_back(std::move(job));
  }
  curl_multi_wakeup(Multi(multi_));
}

void PublishHook::Notify(PublishDone&& done) {
  if (!tells()) return;
  auto job = std::make_unique<Job>();
  job->notify = true;
  job->ended = std::move(done);
  {
    internal::MutexLock lock(&mu_);
    if (notifications_ >= kMaxNotifications) {
      // Once per 1000: a hook that is down under a storm of ends must not flood the log.
      if (overflowed_++ % 1000 == 0) {
        spdlog::warn("on-publish-done: {} notifications wait already; gave up {} ({} so far)",
                     kMaxNotifications, job->Describe(), overflowed_);
      }
      if (options_.done_dropped != nullptr) options_.done_dropped->fetch_add(1);
      return;
    }
    ++notifications_;
    queued_.push_back(std::move(job));
  }
  curl_multi_wakeup(Multi(multi_));
}

// After stop_, the thread stays until the notifications left are delivered or a
// timeout has passed; retries are not waited for then.
void PublishHook::ThreadMain() {
  pthread_setname_np(pthread_self(), "hooks");
  std::optional<absl::Time> stop_by;
  for (;;) {
    {
      internal::MutexLock lock(&mu_);
      if (stop_ && !stop_by.has_value()) stop_by = absl::Now() + options_.timeout;
    }
    if (stop_by.has_value()) {
      for (auto& job : retrying_) job->retry_at = absl::InfinitePast();
      if (!NotificationsLeft() || absl::Now() >= *stop_by) break;
    }
    int running = 0;
    curl_multi_perform(Multi(multi_), &running);
    FinishDone();
    // After FinishDone(), which makes room. A new transfer sets libcurl's timeout to 0,
    // so the poll returns at once to drive it.
    StartQueued();
    Poll();
  }
  // Whatever is still in flight is dropped (see the header).
  for (std::unique_ptr<Job>& job : in_flight_) {
    curl_multi_remove_handle(Multi(multi_), job->easy);
    if (job->notify) Drop(*job, "the server stopped first");
  }
  in_flight_.clear();
  for (const auto& job : retrying_) Drop(*job, "the server stopped first");
  internal::MutexLock lock(&mu_);
  for (const auto& job : queued_) {
    if (job->notify) Drop(*job, "the server stopped first");
  }
}

bool PublishHook::NotificationsLeft() {
  internal::MutexLock lock(&mu_);
  return notifications_ > 0;
}

void PublishHook::Poll() {
  absl::Duration wait = absl::Milliseconds(kPollTimeoutMs);
  const absl::Time now = absl::Now();
  for (const auto& job : retrying_) wait = std::min(wait, job->retry_at - now);
  const int ms = int(std::max<int64_t>(0, absl::ToInt64Milliseconds(wait)));
  curl_multi_poll(Multi(multi_), nullptr, 0, ms, nullptr);
}

// Turns queued jobs, and notifications due for another try, into transfers on the multi
// handle. A job's easy handle points back to it (CURLOPT_PRIVATE); in_flight_ owns it
// until FinishDone().
void PublishHook::StartQueued() {
  std::vector<std::unique_ptr<Job>> jobs;
  const absl::Time now = absl::Now();
  for (auto& job : retrying_) {
    if (in_flight_.size() + jobs.size() < kMaxInFlight && job->retry_at <= now) {
      jobs.push_back(std::move(job));
    }
  }
  std::erase(retrying_, nullptr);
  {
    internal::MutexLock lock(&mu_);
    const size_t busy = in_flight_.size() + jobs.size();
    const size_t room = kMaxInFlight - std::min(kMaxInFlight, busy);
    const size_t n = std::min(room, queued_.size());
    jobs.insert(jobs.end(), std::make_move_iterator(queued_.begin()),
                std::make_move_iterator(queued_.begin() + ptrdiff_t(n)));
    queued_.erase(queued_.begin(), queued_.begin() + ptrdiff_t(n));
  }
  for (std::unique_ptr<Job>& job : jobs) {
    if (!StartTransfer(*job)) {
      Finished(std::move(job), -1, 0);
      continue;
    }
    in_flight_.push_back(std::move(job));
  }
}

bool PublishHook::StartTransfer(Job& job) {
  CURL* easy = job.easy != nullptr ? job.easy : curl_easy_init();
  if (easy == nullptr) return false;
  job.easy = easy;
  job.body = job.notify ? DoneBody(easy, job.ended) : FormBody(easy, job.request);
  const std::string& url = job.notify ? options_.done_url : options_.url;
  curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
  curl_easy_setopt(easy, CURLOPT_POSTFIELDS, job.body.c_str());
  curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, static_cast<long>(job.body.size()));
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(options_.timeout)));
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);  // no SIGALRM: a threaded program
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, DiscardBody);
  curl_easy_setopt(easy, CURLOPT_USERAGENT, "uringestd");
  curl_easy_setopt(easy, CURLOPT_PRIVATE, &job);
  job.started = absl::Now();
  ++job.attempts;
  return curl_multi_add_handle(Multi(multi_), easy) == CURLM_OK;
}

std::unique_ptr<PublishHook::Job> PublishHook::TakeInFlight(Job* job) {
  for (auto& owned : in_flight_) {
    if (owned.get() != job) continue;
    std::unique_ptr<Job> taken = std::move(owned);
    owned = std::move(in_flight_.back());
    in_flight_.pop_back();
    return taken;
  }
  std::abort();  // can't happen: every handle on the multi handle is in in_flight_
}

// Answers every finished transfer.
void PublishHook::FinishDone() {
  CURLMsg* msg;
  int left = 0;
  while ((msg = curl_multi_info_read(Multi(multi_), &left)) != nullptr) {
    if (msg->msg != CURLMSG_DONE) continue;
    CURL* easy = msg->easy_handle;
    const CURLcode result = msg->data.result;
    char* raw = nullptr;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &raw);
    std::unique_ptr<Job> job = TakeInFlight(reinterpret_cast<Job*>(raw));
    curl_multi_remove_handle(Multi(multi_), easy);
    long status = 0;
    if (result == CURLE_OK) curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    Finished(std::move(job), int(result), status);
  }
}

// `result`: the CURLcode, or -1 when the transfer could not be started.
void PublishHook::Finished(std::unique_ptr<Job> job, int result, long status) {
  const double seconds = absl::ToDoubleSeconds(absl::Now() - job->started);
  std::string failure;
  if (result == CURLE_OPERATION_TIMEDOUT) {
    failure = absl::StrCat("did not answer within ", absl::FormatDuration(options_.timeout));
  } else if (result == -1) {
    failure = "can't start the request";
  } else if (result != CURLE_OK) {
    failure = absl::StrCat("failed: ", curl_easy_strerror(CURLcode(result)));
  }
  if (HookMetrics* m = job->notify ? options_.done_metrics : options_.metrics;
      m != nullptr && result != -1) {
    m->Observe(seconds, status);
  }
  if (job->notify) {
    if (!failure.empty()) return RetryOrGiveUp(std::move(job), failure);
    if (status >= 500) return RetryOrGiveUp(std::move(job), absl::StrCat("answered ", status));
    if (status < 200 || status >= 300) {
      spdlog::warn("on-publish-done for {}: the hook answered {}", job->Describe(), status);
    }
    internal::MutexLock lock(&mu_);
    --notifications_;
    return;
  }
  Answer answer;
  answer.allowed = failure.empty() && status >= 200 && status < 300;
  if (!failure.empty()) {
    answer.reason = absl::StrCat("on-publish hook ", failure);
  } else if (!answer.allowed) {
    answer.reason = absl::StrCat("on-publish hook answered ", status);
  }
  job->done(std::move(answer));
}

void PublishHook::RetryOrGiveUp(std::unique_ptr<Job> job, const std::string& why) {
  if (job->attempts > kNotifyRetries) {
    Drop(*job, absl::StrCat("gave up after ", job->attempts, " tries; the last ", why));
    internal::MutexLock lock(&mu_);
    --notifications_;
    return;
  }
  job->retry_at = absl::Now() + absl::Seconds(1 << (job->attempts - 1));
  retrying_.push_back(std::move(job));
}

void PublishHook::Drop(const Job& job, const std::string& why) {
  spdlog::warn("on-publish-done for {} not delivered: {}", job.Describe(), why);
  if (options_.done_dropped != nullptr) options_.done_dropped->fetch_add(1);
}

}  // namespace uringest::engine
