#include "relay/relay.h"

#include <fnmatch.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "consumer/stream_tap.h"
#include "relay/push_status.h"
#include "ringbuf/clock.h"

namespace uringest::relay {
namespace {

constexpr absl::Duration kPollTimeout = absl::Milliseconds(100);
// The least time between two hand-overs of frames from the tap thread: the latency the
// relay adds at most, for wake-ups (and sends) per batch instead of per frame.
constexpr absl::Duration kBatchWindow = absl::Milliseconds(10);
constexpr uint64_t kTickNs = 100'000'000;
constexpr uint64_t kStatusNs = 1'000'000'000;
// How long the destinations of an ended stream stay in the status file (closed).
constexpr uint64_t kKeepFinishedNs = 60'000'000'000;
// Frames handed over by the tap thread and not yet taken by the relay's thread: past
// this the tap thread waits (and, reading lossily, may be lapped: that is counted).
constexpr size_t kInboxLimit = 64 << 20;
// A new stream's destinations connect at its first audio or video frame, so that the
// connect can announce its Enhanced RTMP codecs, or after this long without one.
constexpr uint64_t kMediaWaitNs = 1'000'000'000;

// What the tap thread hands over. Streams are numbered by the relay (`serial`), as a
// server that restarts reuses stream ids.
struct Event {
  enum class Kind : uint8_t { kStart, kFrame, kLoss, kEnd, kServerGone, kFailed };
  Kind kind = Kind::kFrame;
  uint64_t serial = 0;
  FramePtr frame;
  ringbuf::RecordMeta meta;
  std::string text;  // kStart: the stream's name; kFailed: why
  uint64_t count = 0;
  bool flag = false;  // kStart: joined; kEnd: clean
};

// The hand-over between the two threads: the tap thread appends, the relay's thread
// takes everything at once and is woken through an eventfd.
class Inbox {
 public:
  Inbox() : eventfd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}
  ~Inbox() { close(eventfd_); }
  int fd() const { return eventfd_; }

  void Put(Event event) {
    std::vector<Event> one;
    one.push_back(std::move(event));
    PutAll(&one);
  }
  // Hands over all of *events (left empty), waking the relay's thread once.
  void PutAll(std::vector<Event>* events) {
    if (events->empty()) return;
    bool wake = false;
    {
      std::lock_guard lock(mu_);
      for (Event& e : *events) {
        if (e.frame) bytes_ += e.frame->body.size();
      }
      wake = events_.empty();
      if (wake) {
        events_.swap(*events);
      } else {
        events_.insert(events_.end(), std::make_move_iterator(events->begin()),
                       std::make_move_iterator(events->end()));
      }
    }
    events->clear();
    if (wake) {
      const uint64_t one = 1;
      (void)!write(eventfd_, &one, sizeof(one));
    }
  }
  std::vector<Event> Take() {
    uint64_t count;
    (void)!read(eventfd_, &count, sizeof(count));
    std::vector<Event> out;
    {
      std::lock_guard lock(mu_);
      out.swap(events_);
      bytes_ = 0;
    }
    room_.notify_all();
    return out;
  }
  // The tap thread: waits while the relay is behind (or holds the ring), up to `most`.
  void WaitForRoom(absl::Duration most) {
    std::unique_lock lock(mu_);
    room_.wait_for(lock, absl::ToChronoNanoseconds(most),
                   [&] { return bytes_ < kInboxLimit && !hold_; });
  }
  void SetHold(bool hold) {
    {
      std::lock_guard lock(mu_);
      hold_ = hold;
    }
    if (!hold) room_.notify_all();
  }
  bool busy() {
    std::lock_guard lock(mu_);
    return bytes_ >= kInboxLimit || hold_;
  }

 private:
  const int eventfd_;
  std::mutex mu_;
  std::condition_variable room_;
  std::vector<Event> events_;
  size_t bytes_ = 0;
  bool hold_ = false;
};

// The rules in force, read by both threads, replaced by a reload.
class RuleSet {
 public:
  explicit RuleSet(std::vector<PushRule> rules)
      : rules_(std::make_shared<const std::vector<PushRule>>(std::move(rules))) {}
  std::shared_ptr<const std::vector<PushRule>> Get() const {
    std::lock_guard lock(mu_);
    return rules_;
  }
  void Set(std::vector<PushRule> rules) {
    auto next = std::make_shared<const std::vector<PushRule>>(std::move(rules));
    std::lock_guard lock(mu_);
    rules_ = std::move(next);
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const std::vector<PushRule>> rules_;
};

// The tap thread's side: StreamTap's calls become events.
class TapSide : public consumer::TapHandler {
 public:
  TapSide(const RelayOptions& options, const RuleSet* rules, Inbox* inbox)
      : options_(options), rules_(rules), inbox_(inbox) {}

  void Run();

  void OnStreamStart(const ringbuf::StreamInfo& info, bool joined) override {
    const uint64_t serial = ++serials_;
    serials_by_id_[info.stream_id] = serial;
    batch_.push_back(
        {.kind = Event::Kind::kStart, .serial = serial, .text = info.name, .flag = joined});
  }
  void OnFrame(uint32_t id, const ringbuf::RecordMeta& meta, std::span<const uint8_t> payload,
               bool) override {
    auto it = serials_by_id_.find(id);
    if (it == serials_by_id_.end()) return;
    batch_.push_back({.kind = Event::Kind::kFrame,
                      .serial = it->second,
                      .frame = MakeFrame(meta, payload, ringbuf::MonotonicNs()),
                      .meta = meta});
  }
  void OnLoss(uint32_t id, uint64_t count) override {
    auto it = serials_by_id_.find(id);
    if (it != serials_by_id_.end()) {
      batch_.push_back({.kind = Event::Kind::kLoss, .serial = it->second, .count = count});
    }
  }
  void OnStreamEnd(uint32_t id, bool clean) override {
    auto it = serials_by_id_.find(id);
    if (it == serials_by_id_.end()) return;
    batch_.push_back({.kind = Event::Kind::kEnd, .serial = it->second, .flag = clean});
    serials_by_id_.erase(it);
  }
  void OnEvicted(uint32_t shard) override {
    Log(absl::StrCat("shard ", shard,
                     ": evicted from the ring's lossless wait (a destination held it too "
                     "long); reading lossily until caught up"));
  }
  void OnLossless(uint32_t shard) override {
    Log(absl::StrCat("shard ", shard, ": caught up, lossless again"));
  }

 private:
  bool stopped() const { return options_.stop != nullptr && options_.stop->load(); }
  void Log(const std::string& line) const {
    if (options_.log) options_.log(line);
  }
  bool Accepts(std::string_view name) const {
    const std::string text(name);
    for (const PushRule& rule : *rules_->Get()) {
      if (fnmatch(rule.pattern.c_str(), text.c_str(), 0) == 0) return true;
    }
    return false;
  }

  const RelayOptions& options_;
  const RuleSet* const rules_;
  Inbox* const inbox_;
  uint64_t serials_ = 0;
  std::map<uint32_t, uint64_t> serials_by_id_;
  std::vector<Event> batch_;  // what the tap gave since the last hand-over
};

void TapSide::Run() {
  const consumer::TapOptions tap_options{
      .accept = [this](std::string_view name) { return Accepts(name); },
      .lossless = options_.upstream.lossless};
  while (!stopped()) {
    absl::StatusOr<std::unique_ptr<ringbuf::Reader>> reader =
        ringbuf::Reader::WaitForServer(options_.ring, {.stop = options_.stop}, options_.reader);
    if (absl::IsCancelled(reader.status())) break;
    if (!reader.ok()) {
      inbox_->Put({.kind = Event::Kind::kFailed, .text = std::string(reader.status().message())});
      return;
    }
    absl::StatusOr<std::unique_ptr<consumer::StreamTap>> tap =
        consumer::StreamTap::Open(options_.ring, *std::move(reader), tap_options, this);
    if (!tap.ok()) {
      inbox_->Put({.kind = Event::Kind::kFailed, .text = std::string(tap.status().message())});
      return;
    }
    Log(absl::StrCat("pushing the streams of ring ", options_.ring, " that ", rules_->Get()->size(),
                     " rule(s) match"));
    absl::Time handed_over = absl::InfinitePast();
    for (;;) {
      inbox_->WaitForRoom(kPollTimeout);
      if (stopped()) break;
      if (inbox_->busy()) continue;  // lossless: the ring waits for the destinations
      // While frames come, they are handed over at most every kBatchWindow, so that a
      // busy relay takes (and sends) many frames per wake-up, not one.
      const absl::Time next = handed_over + kBatchWindow;
      if (absl::Now() < next) absl::SleepFor(next - absl::Now());
      const consumer::TapResult result = (*tap)->Poll(kPollTimeout);
      if (!batch_.empty()) handed_over = absl::Now();
      inbox_->PutAll(&batch_);
      if (result != consumer::TapResult::kOk) break;
    }
    if (stopped()) break;
    Log((*tap)->server_exit() == ringbuf::ServerExit::kDied
            ? "the server died; waiting for the next one"
            : "the server shut down; waiting for the next one");
    inbox_->Put({.kind = Event::Kind::kServerGone});
  }
}

// The relay's thread: streams, their destinations, the epoll loop.
class Relay {
 public:
  explicit Relay(const RelayOptions& options)
      : options_(options), epoll_fd_(epoll_create1(EPOLL_CLOEXEC)), rules_(options.rules) {
    env_ = {.epoll_fd = epoll_fd_,
            .options = &options_.upstream,
            .log = options_.log,
            .resolve =
                [this](Upstream* up, const std::string& host, uint16_t port) {
                  const uint64_t id = ++questions_;
                  resolving_[id] = up;
                  resolver_.Ask(id, host, port);
                  return id;
                },
            .forget = [this](uint64_t id) { resolving_.erase(id); }};
  }
  ~Relay() { close(epoll_fd_); }

  absl::Status Run();

 private:
  struct Stream {
    std::string name;
    StreamStart start;
    std::vector<std::unique_ptr<Upstream>> upstreams;
    uint64_t began_ns = 0;
    bool connected = false;  // its upstreams were started
    bool ended = false;
  };

  void Handle(Event& event, uint64_t now);
  void ConnectAll(Stream* s, uint64_t now);
  void AddUpstream(Stream* s, const std::string& url, uint64_t now);
  void EndStream(Stream* s, uint64_t now);
  void Reload(uint64_t now);
  void Tick(uint64_t now);
  void WriteStatus(uint64_t now);
  void Log(const std::string& line) const {
    if (options_.log) options_.log(line);
  }

  const RelayOptions& options_;
  const int epoll_fd_;
  RuleSet rules_;
  Resolver resolver_;
  std::map<uint64_t, Upstream*> resolving_;  // by question
  uint64_t questions_ = 0;
  UpstreamEnv env_;
  Inbox inbox_;
  std::map<uint64_t, Stream> streams_;
  std::optional<absl::Status> failed_;
  std::vector<Upstream*> dirty_;  // sent frames since the last SendQueued()
  struct Finished {
    DestinationStatus row;
    uint64_t until_ns;  // when it leaves the status
  };
  std::deque<Finished> finished_;  // destinations of ended streams, oldest first
};

void Relay::Handle(Event& event, uint64_t now) {
  switch (event.kind) {
    case Event::Kind::kStart: {
      Stream& s = streams_[event.serial];
      s.name = event.text;
      s.began_ns = now;
      Log(absl::StrCat(s.name, ": pushing", event.flag ? " from its latest keyframe" : "", " to ",
                       Destinations(*rules_.Get(), s.name).size(), " destination(s)"));
      return;
    }
    case Event::Kind::kFailed:
      failed_ = absl::FailedPreconditionError(event.text);
      return;
    case Event::Kind::kServerGone:
      return;
    default:
      break;
  }
  auto it = streams_.find(event.serial);
  if (it == streams_.end()) return;
  Stream& s = it->second;
  if (event.kind == Event::Kind::kFrame) {
    s.start.Add(event.frame, event.meta);
    if (!s.connected && s.start.has_media()) ConnectAll(&s, now);
    for (auto& up : s.upstreams) {
      up->Send(event.frame, now);
      dirty_.push_back(up.get());
    }
  } else if (event.kind == Event::Kind::kLoss) {
    Log(absl::StrCat(s.name, ": ", event.count,
                     " frames lost before the relay read them (it fell a ring behind); "
                     "destinations go on from the next keyframe"));
    s.start.Lost();
    for (auto& up : s.upstreams) up->Lost(event.count);
  } else if (event.kind == Event::Kind::kEnd) {
    Log(absl::StrCat(s.name, event.flag ? ": stream ended" : ": the server went away"));
    EndStream(&s, now);
  }
}

void Relay::ConnectAll(Stream* s, uint64_t now) {
  s->connected = true;
  for (const std::string& url : Destinations(*rules_.Get(), s->name)) {
    AddUpstream(s, url, now);
  }
}

void Relay::AddUpstream(Stream* s, const std::string& url, uint64_t now) {
  absl::StatusOr<UpstreamUrl> target = ParseUpstreamUrl(url);
  if (!target.ok()) {
    Log(absl::StrCat(s->name, ": ", target.status().message()));
    return;
  }
  if (target->tls && options_.upstream.tls == nullptr) {
    Log(absl::StrCat(s->name, ": ", RedactedUrl(url), ": rtmps:// without TLS set up"));
    return;
  }
  s->upstreams.push_back(
      std::make_unique<Upstream>(env_, s->name, url, *std::move(target), &s->start));
  s->upstreams.back()->Connect(now);
}

void Relay::Reload(uint64_t now) {
  absl::StatusOr<std::vector<PushRule>> rules = options_.load_rules();
  if (!rules.ok()) {
    Log(absl::StrCat("rules not reloaded, the old ones stay: ", rules.status().message()));
    return;
  }
  rules_.Set(*std::move(rules));
  Log(absl::StrCat("rules reloaded: ", rules_.Get()->size(), " rule(s)"));
  for (auto& [serial, s] : streams_) {
    if (s.ended || !s.connected) continue;
    const std::vector<std::string> urls = Destinations(*rules_.Get(), s.name);
    for (auto& up : s.upstreams) {
      if (!up->closed() && std::find(urls.begin(), urls.end(), up->target_url()) == urls.end()) {
        Log(absl::StrCat(s.name, " -> ", up->url(), ": no rule gives it any more"));
        up->End(now);
      }
    }
    for (const std::string& url : urls) {
      const bool have = std::any_of(s.upstreams.begin(), s.upstreams.end(), [&](const auto& up) {
        return !up->closed() && up->state() != Upstream::State::kEnding && up->target_url() == url;
      });
      if (!have) AddUpstream(&s, url, now);
    }
  }
}

void Relay::EndStream(Stream* s, uint64_t now) {
  s->ended = true;
  for (auto& up : s->upstreams) up->End(now);
}

void Relay::Tick(uint64_t now) {
  bool hold = false;
  for (auto it = streams_.begin(); it != streams_.end();) {
    Stream& s = it->second;
    if (!s.connected && !s.ended && now - s.began_ns >= kMediaWaitNs) ConnectAll(&s, now);
    bool open = false;
    for (auto& up : s.upstreams) {
      up->Tick(now);
      open |= !up->closed();
      hold |= options_.upstream.lossless && up->over_lag(now);
    }
    // Closed destinations (of an ended stream, or that a reload took away) stay in the
    // status for a while, with their totals.
    std::erase_if(s.upstreams, [&](const std::unique_ptr<Upstream>& up) {
      if (!up->closed()) return false;
      finished_.push_back({.row = {.stream = s.name, .url = up->url(), .stats = up->stats(now)},
                           .until_ns = now + kKeepFinishedNs});
      return true;
    });
    it = s.ended && !open ? streams_.erase(it) : std::next(it);
  }
  inbox_.SetHold(hold);
}

void Relay::WriteStatus(uint64_t now) {
  while (!finished_.empty() && finished_.front().until_ns <= now) finished_.pop_front();
  if (options_.status_file.empty()) return;
  std::vector<DestinationStatus> rows;
  for (const auto& [serial, s] : streams_) {
    for (const auto& up : s.upstreams) {
      rows.push_back({.stream = s.name, .url = up->url(), .stats = up->stats(now)});
    }
  }
  for (const Finished& f : finished_) rows.push_back(f.row);
  if (absl::Status st = WriteStatusFile(options_.status_file, rows); !st.ok()) {
    Log(std::string(st.message()));
  }
}

absl::Status Relay::Run() {
  if (epoll_fd_ < 0 || inbox_.fd() < 0 || resolver_.fd() < 0) {
    return absl::InternalError("epoll/eventfd failed");
  }
  epoll_event ev{.events = EPOLLIN, .data = {.ptr = nullptr}};
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, inbox_.fd(), &ev);
  epoll_event answers{.events = EPOLLIN, .data = {.ptr = &resolver_}};
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, resolver_.fd(), &answers);
  TapSide tap(options_, &rules_, &inbox_);
  std::thread tap_thread([&] { tap.Run(); });
  uint64_t next_tick = 0, next_status = 0, stop_deadline = 0;
  bool stopping = false;
  epoll_event events[256];
  for (;;) {
    // Wake for the status file on time; every tick while there are streams.
    const uint64_t before = ringbuf::MonotonicNs();
    uint64_t wait_ns = next_status > before ? next_status - before : 0;
    if (!streams_.empty() || stopping) wait_ns = std::min(wait_ns, kTickNs);
    const int n = epoll_wait(epoll_fd_, events, 256, int((wait_ns + 999'999) / 1'000'000));
    const uint64_t now = ringbuf::MonotonicNs();
    for (int i = 0; i < n; ++i) {
      if (events[i].data.ptr == nullptr) {
        for (Event& e : inbox_.Take()) Handle(e, now);
        std::sort(dirty_.begin(), dirty_.end());
        dirty_.erase(std::unique(dirty_.begin(), dirty_.end()), dirty_.end());
        for (Upstream* up : dirty_) up->SendQueued(now);
        dirty_.clear();
      } else if (events[i].data.ptr == &resolver_) {
        for (Resolver::Answer& a : resolver_.Take()) {
          auto it = resolving_.find(a.id);
          if (it == resolving_.end()) continue;  // its upstream went away
          Upstream* up = it->second;
          resolving_.erase(it);
          up->OnResolved(std::move(a.addresses), now);
        }
      } else {
        static_cast<Upstream*>(events[i].data.ptr)->OnEvents(events[i].events, now);
      }
    }
    if (now >= next_tick) {
      Tick(now);
      next_tick = now + kTickNs;
    }
    if (now >= next_status) {
      WriteStatus(now);
      next_status = next_status + kStatusNs > now ? next_status + kStatusNs : now + kStatusNs;
    }
    if (options_.reload != nullptr && options_.reload->exchange(false) && options_.load_rules) {
      Reload(now);
    }
    const bool stop = options_.stop != nullptr && options_.stop->load();
    if ((stop || failed_) && !stopping) {
      stopping = true;
      stop_deadline = now + uint64_t(absl::ToInt64Nanoseconds(options_.upstream.timeout));
    }
    if (stopping) {
      for (auto& [serial, s] : streams_) {
        if (!s.ended) EndStream(&s, now);
      }
    }
    if (stopping && (streams_.empty() || now >= stop_deadline)) break;
  }
  inbox_.SetHold(false);
  tap_thread.join();
  WriteStatus(ringbuf::MonotonicNs());
  return failed_.value_or(absl::OkStatus());
}

}  // namespace

absl::Status RunRelay(const RelayOptions& options) {
  Relay relay(options);
  return relay.Run();
}

}  // namespace uringest::relay
