#include "loadgen/load_run.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <memory>

#include "absl/strings/str_format.h"
#include "loadgen/media_source.h"
#include "loadgen/proc_stats.h"
#include "loadgen/report.h"
#include "loadgen/stamp.h"
#include "loadgen/verifier.h"
#include "ringbuf/clock.h"

namespace uringest::loadgen {
namespace {

uint32_t RandomRun() {
  uint32_t run = 0;
  const int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    [[maybe_unused]] ssize_t n = read(fd, &run, sizeof(run));
    close(fd);
  }
  return run ? run : uint32_t(ringbuf::MonotonicNs());
}

// Sums the CPU time and RSS of every pid.
std::optional<ProcSample> SampleServer(const std::vector<int>& pids) {
  if (pids.empty()) return std::nullopt;
  ProcSample total;
  for (int pid : pids) {
    std::optional<ProcSample> s = SampleProcess(pid);
    if (!s) return std::nullopt;
    total.cpu_seconds += s->cpu_seconds;
    total.rss_bytes += s->rss_bytes;
  }
  return total;
}

// One line: connections up, live, Mbit/s and frames/s over the last second, loss.
class Progress {
 public:
  Progress(const Fleet& fleet, const Verifier* verifier, uint32_t publishers)
      : fleet_(fleet),
        verifier_(verifier),
        publishers_(publishers),
        last_ns_(ringbuf::MonotonicNs()) {}

  std::string Line() {
    const FleetCounters& c = fleet_.counters();
    const uint64_t now = ringbuf::MonotonicNs();
    const uint64_t bytes = c.bytes_sent.load(std::memory_order_relaxed);
    const uint64_t frames = c.frames_sent.load(std::memory_order_relaxed);
    const double dt = double(now - last_ns_) / 1e9;
    std::string line = absl::StrFormat("conns %u/%u live %u failed %u", c.connected.load(),
                                       publishers_, c.live.load(), c.failed.load());
    if (const uint32_t n = c.reconnecting.load(); n > 0) {
      absl::StrAppendFormat(&line, " reconnecting %u", n);
    }
    if (const uint64_t n = c.reconnects.load(); n > 0) {
      absl::StrAppendFormat(&line, " (reconnects %u)", n);
    }
    absl::StrAppendFormat(&line, " | %.1f Mbit/s %.0f frames/s",
                          double(bytes - bytes_) * 8 / dt / 1e6, double(frames - frames_) / dt);
    if (verifier_ != nullptr) {
      absl::StrAppendFormat(&line, " | delivered %u lost %d", verifier_->delivered(),
                            verifier_->live_lost());
      if (const uint32_t down = verifier_->rings_down(); down > 0) {
        absl::StrAppendFormat(&line, " (rings down %u/%u)", down, verifier_->ring_names().size());
      }
    }
    last_ns_ = now, bytes_ = bytes, frames_ = frames;
    return line;
  }

 private:
  const Fleet& fleet_;
  const Verifier* verifier_;
  uint32_t publishers_;
  uint64_t last_ns_;
  uint64_t bytes_ = 0;
  uint64_t frames_ = 0;
};

// Waits (bounded) until the verifier saw every frame sent, nothing new for a while, or
// the server's end. After a publisher failed it gives the verifier time to tell whether
// the server died (the heartbeat's dead_after and a look), even if every frame came.
void AwaitDelivery(const Verifier& verifier, uint64_t sent, bool failures) {
  constexpr absl::Duration kQuiet = absl::Seconds(2);
  constexpr absl::Duration kDeathNotice = absl::Milliseconds(800);
  const absl::Time start = absl::Now();
  uint64_t last = verifier.delivered();
  absl::Time last_change = start;
  while (absl::Now() - last_change < kQuiet &&
         verifier.server_exit() == ringbuf::ServerExit::kNone) {
    if (verifier.delivered() >= sent && (!failures || absl::Now() - start >= kDeathNotice)) return;
    absl::SleepFor(absl::Milliseconds(10));
    if (verifier.delivered() != last) last = verifier.delivered(), last_change = absl::Now();
  }
}

void FillStreams(const Fleet& fleet, const Verifier* verifier, LoadReport* report) {
  for (uint32_t i = 0; i < fleet.results().size(); ++i) {
    const PublisherResult& r = fleet.results()[i];
    StreamReport s{.name = r.name,
                   .went_live = r.went_live,
                   .failed = r.failed,
                   .error = r.error,
                   .sent = r.frames,
                   .bytes = r.bytes,
                   .reconnect_requests = r.reconnect_requests,
                   .reconnects = r.reconnects,
                   .skipped = r.skipped,
                   .last_break = r.last_break};
    report->reconnect_requests += r.reconnect_requests;
    report->reconnects += r.reconnects;
    report->skipped += r.skipped;
    report->went_live += r.went_live;
    report->failed += r.failed;
    report->sent += r.frames;
    report->bytes += r.bytes;
    report->max_backlog = std::max(report->max_backlog, r.backlog_at_end);
    report->max_queued = std::max(report->max_queued, r.peak_queued);
    if (verifier != nullptr) {
      const PublisherTally& t = verifier->tally(i);
      s.delivered = t.delivered;
      s.lost = r.frames > t.delivered ? r.frames - t.delivered : 0;
      s.duplicated = t.duplicated;
      s.out_of_order = t.out_of_order;
      s.latency = t.latency;
      s.delivered_by_ring = t.delivered_by_ring;
      report->latency.Merge(t.latency);
      report->ingest_latency.Merge(t.ingest);
      report->delivered += s.delivered;
      report->lost += s.lost;
      report->duplicated += s.duplicated;
      report->out_of_order += s.out_of_order;
    }
    report->streams.push_back(std::move(s));
  }
}

}  // namespace

bool LoadReport::ok() const {
  if (went_live != publishers || failed > 0 || server_exit != ringbuf::ServerExit::kNone) {
    return false;
  }
  return !verified || (lost == 0 && duplicated == 0 && out_of_order == 0);
}

namespace {

// The stamped frames the fleet's publishers sent.
uint64_t SentFrames(const Fleet& fleet) {
  uint64_t sent = 0;
  for (const PublisherResult& r : fleet.results()) sent += r.frames;
  return sent;
}

absl::StatusOr<std::unique_ptr<MediaSource>> OpenSource(const LoadOptions& options) {
  if (options.flv.empty()) return MediaSource::Synthetic(options.bitrate_bps, options.fps);
  return MediaSource::FromFlv(options.flv);
}

// The verifier of the run, sized for the frames its publishers may send.
absl::StatusOr<std::unique_ptr<Verifier>> OpenVerifier(const LoadOptions& options,
                                                       const FleetOptions& fleet_options,
                                                       const MediaSource& source) {
  const double seconds = absl::ToDoubleSeconds(fleet_options.duration + fleet_options.ramp);
  const double fps =
      double(source.period_frames()) * 1000 / double(std::max<uint64_t>(1, source.period_ms()));
  return Verifier::Open(options.verify_rings, fleet_options.run, fleet_options.publishers,
                        uint64_t(seconds * fps * (fleet_options.pace ? 1.2 : 4)) + 64);
}

}  // namespace

absl::StatusOr<LoadReport> RunLoad(const LoadOptions& options,
                                   const std::function<void(std::string_view)>& progress) {
  absl::StatusOr<std::unique_ptr<MediaSource>> source = OpenSource(options);
  if (!source.ok()) return source.status();
  FleetOptions fleet_options = options.fleet;
  fleet_options.run = RandomRun();
  std::unique_ptr<Verifier> verifier;
  std::vector<int> pids = options.server_pids;
  // A fleet's node that ends, or a server that a reconnecting fleet outlives, costs its
  // ring only: the run goes on.
  const bool survive_exits = options.verify_rings.size() > 1 || fleet_options.reconnect;
  if (!options.verify_rings.empty()) {
    absl::StatusOr<std::unique_ptr<Verifier>> v = OpenVerifier(options, fleet_options, **source);
    if (!v.ok()) return v.status();
    verifier = *std::move(v);
    verifier->set_survive_exits(survive_exits);
    if (pids.empty()) pids = verifier->server_pids();
  }
  Fleet fleet(fleet_options, source->get());
  if (absl::Status s = fleet.Init(); !s.ok()) return s;

  LoadReport report{.target = HostPort(fleet_options.host, fleet_options.port),
                    .publishers = fleet_options.publishers,
                    .verified = verifier != nullptr,
                    .paced = fleet_options.pace};
  const std::optional<ProcSample> before = SampleServer(pids);
  const std::optional<ProcSample> self_before = SampleProcess(getpid());
  if (before) report.server.rss_start = report.server.rss_peak = before->rss_bytes;
  if (verifier) {
    verifier->set_on_server_exit(
        [&fleet](ringbuf::ServerExit exit) { fleet.Abort(ServerExitText(exit)); });
    verifier->Start();
  }
  Progress line(fleet, verifier.get(), fleet_options.publishers);
  fleet.Run([&] {
    if (options.interrupt != nullptr && options.interrupt->load() && !report.interrupted) {
      report.interrupted = true;
      fleet.RequestStop();
    }
    report.max_live = std::max(report.max_live, fleet.counters().live.load());
    if (std::optional<ProcSample> s = SampleServer(pids)) {
      report.server.rss_peak = std::max(report.server.rss_peak, s->rss_bytes);
    }
    if (progress) progress(line.Line());
  });
  report.seconds = absl::ToDoubleSeconds(fleet.sending_time());
  if (std::optional<ProcSample> self = SampleProcess(getpid()); self && self_before) {
    report.load_cpu_seconds = self->cpu_seconds - self_before->cpu_seconds;
  }
  if (verifier) {
    AwaitDelivery(*verifier, SentFrames(fleet), fleet.counters().failed.load() > 0);
    verifier->Stop();
    report.reader_laps = verifier->laps();
    report.server_exit = verifier->server_exit();
    report.rings = verifier->ring_names();
    for (size_t k = 0; k < report.rings.size(); ++k) {
      report.ring_exits.push_back(verifier->ring_exits(k));
    }
  }
  if (std::optional<ProcSample> after = SampleServer(pids); after && before) {
    report.server.sampled = true;
    report.server.cpu_seconds = after->cpu_seconds - before->cpu_seconds;
    report.server.rss_end = after->rss_bytes;
  }
  FillStreams(fleet, verifier.get(), &report);
  return report;
}

}  // namespace uringest::loadgen
