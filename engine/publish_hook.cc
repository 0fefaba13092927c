#include "engine/publish_hook.h"

#include <curl/curl.h>
#include <pthread.h>

#include <algorithm>
#include <cstdlib>
#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"

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

// The POST body (publish_hook.h), each value percent-encoded.
std::string FormBody(CURL* easy, const PublishHook::Request& r) {
  return absl::StrCat("call=publish&app=", Escape(easy, r.app), "&name=", Escape(easy, r.name),
                      "&key=", Escape(easy, r.key), "&addr=", Escape(easy, r.addr),
                      "&port=", r.port);
}

}  // namespace

struct PublishHook::Job {
  Request request;
  Callback done;
  CURL* easy = nullptr;
  std::string body;

  ~Job() {
    if (easy != nullptr) curl_easy_cleanup(easy);
  }
};

absl::StatusOr<std::unique_ptr<PublishHook>> PublishHook::Create(
    const PublishHookOptions& options) {
  if (options.url.rfind("http://", 0) != 0 && options.url.rfind("https://", 0) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--on-publish wants an http:// or https:// URL, not '", options.url, "'"));
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

void PublishHook::ThreadMain() {
  pthread_setname_np(pthread_self(), "on-publish");
  for (;;) {
    {
      internal::MutexLock lock(&mu_);
      if (stop_) break;
    }
    int running = 0;
    curl_multi_perform(Multi(multi_), &running);
    FinishDone();
    // After FinishDone(), which makes room. A new transfer sets libcurl's timeout to 0,
    // so the poll returns at once to drive it.
    StartQueued();
    curl_multi_poll(Multi(multi_), nullptr, 0, kPollTimeoutMs, nullptr);
  }
  // Whatever is still in flight is dropped (see the header).
  for (std::unique_ptr<Job>& job : in_flight_) curl_multi_remove_handle(Multi(multi_), job->easy);
  in_flight_.clear();
}

// Turns queued jobs into transfers on the multi handle. A job's easy handle points back
// to it (CURLOPT_PRIVATE); in_flight_ owns it until FinishDone().
void PublishHook::StartQueued() {
  std::vector<std::unique_ptr<Job>> jobs;
  {
    internal::MutexLock lock(&mu_);
    const size_t room = kMaxInFlight - std::min(kMaxInFlight, in_flight_.size());
    const size_t n = std::min(room, queued_.size());
    jobs.assign(std::make_move_iterator(queued_.begin()),
                std::make_move_iterator(queued_.begin() + ptrdiff_t(n)));
    queued_.erase(queued_.begin(), queued_.begin() + ptrdiff_t(n));
  }
  for (std::unique_ptr<Job>& job : jobs) {
    CURL* easy = curl_easy_init();
    if (easy == nullptr) {
      job->done({.allowed = false, .reason = "on-publish hook: out of memory"});
      continue;
    }
    job->easy = easy;
    job->body = FormBody(easy, job->request);
    curl_easy_setopt(easy, CURLOPT_URL, options_.url.c_str());
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, job->body.c_str());
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, static_cast<long>(job->body.size()));
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS,
                     static_cast<long>(absl::ToInt64Milliseconds(options_.timeout)));
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);  // no SIGALRM: a threaded program
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, DiscardBody);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "uringestd");
    curl_easy_setopt(easy, CURLOPT_PRIVATE, job.get());
    if (curl_multi_add_handle(Multi(multi_), easy) != CURLM_OK) {
      job->done({.allowed = false, .reason = "on-publish hook: can't start the request"});
      continue;
    }
    in_flight_.push_back(std::move(job));
  }
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
    Answer answer;
    if (result == CURLE_OPERATION_TIMEDOUT) {
      answer.reason = absl::StrCat("on-publish hook did not answer within ",
                                   absl::FormatDuration(options_.timeout));
    } else if (result != CURLE_OK) {
      answer.reason = absl::StrCat("on-publish hook failed: ", curl_easy_strerror(result));
    } else {
      long status = 0;
      curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
      answer.allowed = status >= 200 && status < 300;
      if (!answer.allowed) answer.reason = absl::StrCat("on-publish hook answered ", status);
    }
    job->done(std::move(answer));
  }
}

}  // namespace uringest::engine
