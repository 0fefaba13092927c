#include "consumer/recorder.h"

#include <fnmatch.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "consumer/flv_file.h"
#include "consumer/flv_tags.h"
#include "consumer/stream_tap.h"
#include "media/amf0.h"
#include "media/script_data.h"
#include "ringbuf/clock.h"

extern char** environ;

namespace uringest::consumer {
namespace {

using ringbuf::RecordMeta;
using ringbuf::RecordType;

constexpr absl::Duration kPollTimeout = absl::Milliseconds(100);
constexpr absl::Duration kFirstRetry = absl::Seconds(1);
constexpr absl::Duration kLastRetry = absl::Seconds(30);

// A name's part as a file name: no '/', no leading '.'.
std::string Safe(std::string_view part) {
  std::string out(part.empty() ? "_" : part);
  std::replace(out.begin(), out.end(), '/', '_');
  if (out[0] == '.') out[0] = '_';
  return out;
}

std::string LocalTime(absl::Time t, const std::string& format) {
  const time_t seconds = absl::ToTimeT(t);
  tm local;
  localtime_r(&seconds, &local);
  char out[256];
  const size_t n = strftime(out, sizeof(out), format.c_str(), &local);
  return std::string(out, n);
}

std::string Seconds(int64_t ms) { return absl::StrFormat("%.3f s", ms / 1000.0); }

// A configuration kept for the start of the next file, as the shaper made it.
struct Config {
  RecordMeta meta;
  std::vector<uint8_t> body;
};

// The recorder's own onMetaData properties, which let a later run say what it missed.
constexpr char kStreamKey[] = "uringest.stream";            // "app/name"
constexpr char kPublishTimeKey[] = "uringest.publishtime";  // ms since 1970 the publish began
constexpr char kStartTimeKey[] = "uringest.starttime";      // stream time (ms) of file time 0

// A publish: a stream's name and when it began (ms since 1970).
using Publish = std::pair<std::string, double>;

// One stream being recorded.
struct Recording {
  std::string name;
  double publish_ms = 0;          // when the publish began
  bool video = false;             // the stream has (or announced) video
  bool video_frames = false;      // a video frame has come: files start at video keyframes
  std::vector<uint8_t> metadata;  // the latest onMetaData
  std::vector<Config> configs;    // the latest of each (type, track, packet type)
  FlvTagShaper shaper;
  std::unique_ptr<FlvFile> file;
  int64_t file_first_dts = 0;
  int64_t last_dts = 0;  // of the last frame read
  uint64_t pending_loss = 0;
  // While files can't be written: when to try again, and what was not recorded.
  bool failing = false;
  absl::Time retry_at = absl::InfinitePast();
  absl::Duration backoff = kFirstRetry;
  uint64_t unrecorded = 0;
  int64_t unrecorded_from = 0;
};

class Recorder : public TapHandler {
 public:
  Recorder(const RecordOptions& options, RecordSummary* summary)
      : options_(options), summary_(summary) {}
  ~Recorder() override { FinishAll(); }

  void OnStreamStart(const ringbuf::StreamInfo& info, bool joined) override;
  void OnFrame(uint32_t id, const RecordMeta& meta, std::span<const uint8_t> payload,
               bool from_directory) override;
  void OnLoss(uint32_t id, uint64_t count) override;
  void OnStreamEnd(uint32_t id, bool clean) override;
  void OnEvicted(uint32_t shard) override;
  void OnLossless(uint32_t shard) override;

  void FinishAll();
  // Finishes the .part files a recorder that died left under the folder, and remembers
  // where each stopped, to say what was missed when the publish is recorded again.
  void RecoverLeftovers();
  // Logs the hooks that have exited with an error.
  void ReapHooks();
  void Log(const std::string& line) const {
    if (options_.log) options_.log(line);
  }

 private:
  absl::Status Tag(Recording* r, const RecordMeta& meta, std::span<uint8_t> body, bool config);
  void KeepConfig(Recording* r, const RecordMeta& meta, std::span<const uint8_t> body);
  bool StartsFile(const Recording& r, const RecordMeta& meta) const;
  bool SegmentDue(const Recording& r, const RecordMeta& meta) const;
  void OpenFile(Recording* r, const RecordMeta& first);
  // False (and the recording failing) if the write failed.
  bool Write(Recording* r, const RecordMeta& meta, std::span<const uint8_t> body, bool config);
  void Failed(Recording* r, const absl::Status& status);
  void Finish(Recording* r);
  void RunHook(const std::string& path, const std::string& stream);

  const RecordOptions& options_;
  RecordSummary* summary_;
  absl::flat_hash_map<uint32_t, Recording> streams_;
  // Publishes a file recovered from a dead recorder belongs to: the stream time of its
  // last frame, and the file.
  std::map<Publish, std::pair<int64_t, std::string>> recovered_;
  std::vector<uint8_t> body_;           // the frame in hand, which the shaper may change
  std::map<pid_t, std::string> hooks_;  // --on-segment-complete processes not reaped, by file
};

void Recorder::OnStreamStart(const ringbuf::StreamInfo& info, bool joined) {
  Recording& r = streams_[info.stream_id];
  r.name = info.name;
  r.publish_ms = double(info.begin_time_ns / 1'000'000);
  r.video = info.codec.video_codec != 0 || info.FindConfig(RecordType::kVideo) != nullptr;
  Log(absl::StrCat(info.name, ": recording", joined ? " from its latest keyframe" : "",
                   " (publisher ", info.publisher, ")"));
}

void Recorder::OnFrame(uint32_t id, const RecordMeta& meta, std::span<const uint8_t> payload,
                       bool from_directory) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  Recording& r = it->second;
  if (r.pending_loss > 0) {
    Log(absl::StrCat(r.name, ": lost ", r.pending_loss, " frames between ", Seconds(r.last_dts),
                     " and ", Seconds(meta.dts), " (stream time)",
                     r.file ? absl::StrCat(": a gap in ", r.file->part_path()) : ""));
    r.pending_loss = 0;
  }
  if (meta.type == RecordType::kData) {
    if (media::IsOnMetaData(payload)) {
      r.metadata.assign(payload.begin(), payload.end());
      r.video |= media::ParseOnMetaData(payload).video_codec != 0;
      if (r.file == nullptr || r.file->frames() == 0) return;  // the file's own is newer
    }
    if (r.file != nullptr) Write(&r, meta, payload, /*config=*/false);
    return;
  }
  body_.assign(payload.begin(), payload.end());
  (void)r.shaper.Shape(meta, body_,
                       [&](const RecordMeta& tag, std::span<uint8_t> tag_body, bool config) {
                         return Tag(&r, tag, tag_body, config);
                       });
}

absl::Status Recorder::Tag(Recording* r, const RecordMeta& meta, std::span<uint8_t> body,
                           bool config) {
  if (config) {
    KeepConfig(r, meta, body);
    // A new configuration in mid-file goes into the file; the first ones went in with
    // its start.
    if (r->file != nullptr && r->file->frames() > 0) Write(r, meta, body, /*config=*/true);
    return absl::OkStatus();
  }
  r->video |= meta.type == RecordType::kVideo;
  const bool starts_file = StartsFile(*r, meta);
  r->video_frames |= meta.type == RecordType::kVideo;
  if (r->file != nullptr && starts_file && SegmentDue(*r, meta)) Finish(r);
  if (r->file == nullptr && starts_file) OpenFile(r, meta);  // a file starts at a keyframe
  const bool written = r->file != nullptr && Write(r, meta, body, /*config=*/false);
  if (!written && r->failing) {
    if (r->unrecorded++ == 0) r->unrecorded_from = meta.dts;
    ++summary_->not_recorded;
  }
  r->last_dts = meta.dts;
  return absl::OkStatus();
}

void Recorder::KeepConfig(Recording* r, const RecordMeta& meta, std::span<const uint8_t> body) {
  r->video |= meta.type == RecordType::kVideo;
  for (Config& c : r->configs) {
    if (c.meta.type == meta.type && c.meta.track_id == meta.track_id &&
        c.meta.packet_type == meta.packet_type) {
      c = Config{meta, {body.begin(), body.end()}};
      return;
    }
  }
  r->configs.push_back(Config{meta, {body.begin(), body.end()}});
}

// A file begins with a video keyframe (a picture: not an end of sequence, packet type 2
// in both the AVC and the Enhanced RTMP layout), or with an audio frame until the
// stream's first video frame (a stream without video, or the audio a publisher sends
// before its first keyframe).
bool Recorder::StartsFile(const Recording& r, const RecordMeta& meta) const {
  if (meta.type == RecordType::kVideo) {
    return (meta.flags & ringbuf::kFlagKeyframe) != 0 && meta.packet_type != 2;
  }
  return meta.type == RecordType::kAudio && !r.video_frames;
}

bool Recorder::SegmentDue(const Recording& r, const RecordMeta& meta) const {
  const bool long_enough =
      options_.segment > absl::ZeroDuration() &&
      meta.dts - r.file_first_dts >= absl::ToInt64Milliseconds(options_.segment);
  const bool big_enough = options_.max_size > 0 && r.file->bytes() >= options_.max_size;
  return long_enough || big_enough;
}

void Recorder::OpenFile(Recording* r, const RecordMeta& first) {
  const absl::Time now = absl::Now();
  if (r->failing && now < r->retry_at) return;
  const std::string path =
      absl::StrCat(options_.dir, "/", SegmentName(options_.name_template, r->name, now));
  const FlvTracks tracks{
      .audio = first.type == RecordType::kAudio ||
               std::any_of(r->configs.begin(), r->configs.end(),
                           [](const Config& c) { return c.meta.type == RecordType::kAudio; }) ||
               media::ParseOnMetaData(r->metadata).audio_codec != 0,
      .video = r->video};
  const media::amf0::Value::Property own[] = {
      {kStreamKey, media::amf0::Value::String(r->name)},
      {kPublishTimeKey, media::amf0::Value::Number(r->publish_ms)},
      {kStartTimeKey, media::amf0::Value::Number(double(first.dts))}};
  absl::StatusOr<std::unique_ptr<FlvFile>> file = FlvFile::Create(path, tracks, r->metadata, own);
  if (!file.ok()) return Failed(r, file.status());
  r->file = *std::move(file);
  r->file_first_dts = first.dts;
  if (r->failing) {
    Log(absl::StrCat(r->name, ": recording again in ", r->file->part_path(),
                     "; not recorded: ", r->unrecorded, " frames from ",
                     Seconds(r->unrecorded_from), " to ", Seconds(r->last_dts), " (stream time)"));
    r->failing = false;
    r->backoff = kFirstRetry;
    r->unrecorded = 0;
  } else {
    Log(absl::StrCat(r->name, ": writing ", r->file->part_path(), " from stream time ",
                     Seconds(first.dts)));
  }
  if (auto it = recovered_.find(Publish(r->name, r->publish_ms)); it != recovered_.end()) {
    Log(absl::StrCat(r->name,
                     ": not recorded while no recorder ran: the frames after stream "
                     "time ",
                     Seconds(it->second.first), " and before ", Seconds(first.dts),
                     " (the file before: ", it->second.second, ")"));
    recovered_.erase(it);
  }
  for (const Config& c : r->configs) {
    if (!Write(r, c.meta, c.body, /*config=*/true)) return;
  }
}

bool Recorder::Write(Recording* r, const RecordMeta& meta, std::span<const uint8_t> body,
                     bool config) {
  if (absl::Status s = r->file->Write(meta.type, meta.dts, body, config); !s.ok()) {
    Failed(r, s);
    return false;
  }
  if (!config && meta.type != RecordType::kData) ++summary_->frames;
  return true;
}

void Recorder::Failed(Recording* r, const absl::Status& status) {
  Log(absl::StrCat(r->name, r->failing ? ": still can't record: " : ": recording stopped: ",
                   status.message(), "; trying again in ", absl::FormatDuration(r->backoff)));
  if (r->file != nullptr) Finish(r);
  r->failing = true;
  r->retry_at = absl::Now() + r->backoff;
  r->backoff = std::min(r->backoff * 2, kLastRetry);
}

void Recorder::Finish(Recording* r) {
  std::unique_ptr<FlvFile> file = std::move(r->file);
  absl::StatusOr<std::string> path = file->Finish();
  if (!path.ok()) {
    Log(absl::StrCat(r->name, ": can't finish ", file->part_path(), ": ", path.status().message()));
    return;
  }
  ++summary_->files;
  Log(absl::StrCat(r->name, ": finished ", *path, " (", Seconds(file->duration_ms()), ", ",
                   file->bytes(), " bytes, ", file->frames(), " frames)"));
  RunHook(*path, r->name);
}

void Recorder::RunHook(const std::string& path, const std::string& stream) {
  if (options_.on_segment_complete.empty()) return;
  const std::string script = absl::StrCat(options_.on_segment_complete, " \"$1\" \"$2\"");
  const char* argv[] = {"sh",         "-c",           script.c_str(), "uringest-record",
                        path.c_str(), stream.c_str(), nullptr};
  pid_t pid;
  if (int e = posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ);
      e != 0) {
    Log(absl::StrCat("can't run --on-segment-complete for ", path, ": ", strerror(e)));
    return;
  }
  hooks_[pid] = path;
}

// Only the hooks' own processes are waited for: a program that embeds the recorder may
// have children of its own.
void Recorder::ReapHooks() {
  for (auto it = hooks_.begin(); it != hooks_.end();) {
    int status = 0;
    const pid_t done = waitpid(it->first, &status, WNOHANG);
    if (done == 0) {
      ++it;
      continue;
    }
    if (done > 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
      Log(absl::StrCat("--on-segment-complete for ", it->second, " (pid ", it->first, ") ",
                       WIFEXITED(status)
                           ? absl::StrCat("exited with ", WEXITSTATUS(status))
                           : absl::StrCat("was killed by signal ", WTERMSIG(status))));
    }
    it = hooks_.erase(it);
  }
}

void Recorder::OnLoss(uint32_t id, uint64_t count) {
  auto it = streams_.find(id);
  if (it != streams_.end()) it->second.pending_loss += count;
  summary_->lost += count;
}

void Recorder::OnStreamEnd(uint32_t id, bool clean) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  Recording& r = it->second;
  if (r.pending_loss > 0) {
    Log(absl::StrCat(r.name, ": lost its last ", r.pending_loss, " frames after ",
                     Seconds(r.last_dts), " (stream time)"));
  }
  if (r.file != nullptr) Finish(&r);
  Log(absl::StrCat(r.name, clean ? ": stream ended" : ": the server went away"));
  streams_.erase(it);
}

void Recorder::OnEvicted(uint32_t shard) {
  Log(absl::StrCat("shard ", shard,
                   ": fell behind past the server's lossless wait; lossy there "
                   "until caught up (each stream's loss is logged)"));
}

void Recorder::OnLossless(uint32_t shard) { Log(absl::StrCat("shard ", shard, ": lossless")); }

void Recorder::FinishAll() {
  for (auto& [id, r] : streams_) {
    if (r.file != nullptr) Finish(&r);
  }
  streams_.clear();
}

void Recorder::RecoverLeftovers() {
  std::error_code error;
  std::vector<std::string> parts;
  for (auto it = std::filesystem::recursive_directory_iterator(options_.dir, error);
       !error && it != std::filesystem::recursive_directory_iterator(); it.increment(error)) {
    const std::string path = it->path().string();
    if (it->is_regular_file(error) && path.ends_with(kPartSuffix)) parts.push_back(path);
  }
  for (const std::string& part : parts) {
    absl::StatusOr<RecoveredFile> file = FlvFile::Recover(part);
    if (!file.ok()) {
      Log(absl::StrCat("left ", part, " as it is: ", file.status().message()));
      continue;
    }
    const std::string stream(file->metadata.FindString(kStreamKey));
    Log(absl::StrCat("finished ", file->path, ", which a recorder that died left (",
                     Seconds(file->duration_ms), ", ", file->bytes, " bytes; ", file->cut,
                     " bytes of a torn last tag cut off)"));
    ++summary_->files;
    if (!stream.empty()) {
      const int64_t start = int64_t(file->metadata.FindNumber(kStartTimeKey, 0));
      recovered_[Publish(stream, file->metadata.FindNumber(kPublishTimeKey, 0))] = {
          start + file->duration_ms, file->path};
    }
    RunHook(file->path, stream);
  }
}

}  // namespace

std::string SegmentName(std::string_view name_template, std::string_view stream, absl::Time start) {
  const size_t slash = stream.find('/');
  const std::string app = Safe(stream.substr(0, slash));
  const std::string name = Safe(slash == std::string_view::npos ? "" : stream.substr(slash + 1));
  std::string out;
  for (size_t i = 0; i < name_template.size();) {
    const size_t open = name_template.find('{', i);
    const size_t close = open == std::string_view::npos ? open : name_template.find('}', open);
    if (close == std::string_view::npos) {
      out.append(name_template.substr(i));
      break;
    }
    out.append(name_template.substr(i, open - i));
    const std::string_view field = name_template.substr(open + 1, close - open - 1);
    if (field == "app") {
      out += app;
    } else if (field == "name") {
      out += name;
    } else if (field == "start" || field.starts_with("start:")) {
      out += LocalTime(start, field == "start" ? "%Y%m%d-%H%M%S" : std::string(field.substr(6)));
    } else {
      out.append(name_template.substr(open, close - open + 1));  // not ours: as written
    }
    i = close + 1;
  }
  return out;
}

absl::Status RecordStreams(const RecordOptions& options, RecordSummary* summary) {
  RecordSummary local;
  Recorder recorder(options, summary != nullptr ? summary : &local);
  recorder.RecoverLeftovers();
  auto stopped = [&] { return options.stop != nullptr && options.stop->load(); };
  const TapOptions tap_options{.accept =
                                   [&](std::string_view name) {
                                     return fnmatch(options.pattern.c_str(),
                                                    std::string(name).c_str(), 0) == 0;
                                   },
                               .lossless = options.lossless};
  while (!stopped()) {
    absl::StatusOr<std::unique_ptr<ringbuf::Reader>> reader =
        ringbuf::Reader::WaitForServer(options.ring, {.stop = options.stop}, options.reader);
    if (absl::IsCancelled(reader.status())) break;
    if (!reader.ok()) return reader.status();
    absl::StatusOr<std::unique_ptr<StreamTap>> tap =
        StreamTap::Open(options.ring, *std::move(reader), tap_options, &recorder);
    if (!tap.ok()) return tap.status();
    recorder.Log(absl::StrCat("recording streams matching '", options.pattern, "' of ring ",
                              options.ring, " into ", options.dir));
    while (!stopped() && (*tap)->Poll(kPollTimeout) == TapResult::kOk) recorder.ReapHooks();
    if (!stopped()) {
      const bool died = (*tap)->server_exit() == ringbuf::ServerExit::kDied;
      recorder.Log(died ? "the server died; waiting for the next one"
                        : "the server shut down; waiting for the next one");
    }
  }
  recorder.FinishAll();
  recorder.ReapHooks();
  return absl::OkStatus();
}

}  // namespace uringest::consumer
