#include "consumer/stat_table.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "media/codec_names.h"
#include "media/media_tag.h"
#include "ringbuf/ring_format.h"

namespace uringest::consumer {
namespace {

constexpr double kNsPerSecond = 1e9;

const ringbuf::StreamInfo* FindById(const StatSample& sample, uint32_t stream_id) {
  for (const ringbuf::StreamInfo& s : sample.streams) {
    if (s.stream_id == stream_id) return &s;
  }
  return nullptr;
}

StreamRow MakeRow(const ringbuf::StreamInfo& s, const ringbuf::StreamInfo* before,
                  const StatSample& current, double interval_s) {
  StreamRow row{.name = s.name,
                .publisher = s.publisher,
                .shard = s.shard,
                .stream_id = s.stream_id,
                .video_codec = media::VideoCodecName(s.codec.video_codec),
                .audio_codec = media::AudioCodecName(s.codec.audio_codec),
                .width = s.codec.width,
                .height = s.codec.height,
                .fps = s.codec.frame_rate_milli / 1000.0,
                .frames = s.frames,
                .bytes = s.bytes,
                .drops = s.drops,
                .begin_time_s = double(s.begin_time_ns) / kNsPerSecond};
  if (before != nullptr && interval_s > 0 && s.bytes >= before->bytes) {
    row.bitrate_kbps = double(s.bytes - before->bytes) * 8 / 1000 / interval_s;
  }
  if (current.wall_ns > s.begin_time_ns) {
    row.duration_s = double(current.wall_ns - s.begin_time_ns) / kNsPerSecond;
  }
  for (const ringbuf::ConfigPacket& t : s.configs) {
    if (t.track_id == 0 || (t.flags & ringbuf::kFlagSequenceHeader) == 0) continue;
    const bool video = t.type == ringbuf::RecordType::kVideo;
    const uint32_t codec =
        video ? media::ParseVideoTag(t.body).codec : media::ParseAudioTag(t.body).codec;
    row.tracks.push_back(
        {.video = video,
         .track_id = t.track_id,
         .codec = video ? media::VideoCodecName(codec) : media::AudioCodecName(codec)});
  }
  return row;
}

// Appends the UTF-8 sequence at s[*i] (advancing *i past it), or U+FFFD if it is not one.
void AppendUtf8(std::string_view s, size_t* i, std::string* out) {
  const auto lead = uint8_t(s[*i]);
  const size_t length = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 0;
  bool valid = length > 0 && lead <= 0xF4 && *i + length <= s.size();
  for (size_t k = 1; valid && k < length; ++k) valid = (uint8_t(s[*i + k]) & 0xC0) == 0x80;
  // Overlong forms and surrogates are not valid UTF-8 either.
  if (valid && length == 2) valid = lead >= 0xC2;
  if (valid && length == 3) {
    const auto second = uint8_t(s[*i + 1]);
    valid = !(lead == 0xE0 && second < 0xA0) && !(lead == 0xED && second >= 0xA0);
  }
  if (valid && length == 4) {
    const auto second = uint8_t(s[*i + 1]);
    valid = !(lead == 0xF0 && second < 0x90) && !(lead == 0xF4 && second >= 0x90);
  }
  if (!valid) {
    out->append("\\ufffd");
    *i += 1;
    return;
  }
  out->append(s.substr(*i, length));
  *i += length;
}

std::string JsonNumber(double v) {
  if (!std::isfinite(v)) return "null";
  return absl::StrFormat("%.3f", v);
}

}  // namespace

std::string RenderStreamJson(const StreamRow& r) {
  return absl::StrCat("{\"name\":", JsonString(r.name), ",\"publisher\":", JsonString(r.publisher),
                      ",\"shard\":", r.shard, ",\"stream_id\":", r.stream_id,
                      ",\"video_codec\":", JsonString(r.video_codec),
                      ",\"audio_codec\":", JsonString(r.audio_codec), ",\"width\":", r.width,
                      ",\"height\":", r.height, ",\"fps\":", JsonNumber(r.fps),
                      ",\"bitrate_kbps\":", r.bitrate_kbps ? JsonNumber(*r.bitrate_kbps) : "null",
                      ",\"frames\":", r.frames, ",\"bytes\":", r.bytes, ",\"drops\":", r.drops,
                      ",\"duration_s\":", JsonNumber(r.duration_s), ",\"tracks\":[",
                      absl::StrJoin(r.tracks, ",",
                                    [](std::string* out, const TrackRow& t) {
                                      absl::StrAppend(
                                          out, "{\"type\":", t.video ? "\"video\"" : "\"audio\"",
                                          ",\"track_id\":", t.track_id,
                                          ",\"codec\":", JsonString(t.codec), "}");
                                    }),
                      "]}");
}

namespace {

std::string JsonRing(const RingSample& r) {
  std::vector<std::string> readers;
  for (const ReaderSample& reader : r.readers) {
    readers.push_back(absl::StrCat("{\"slot\":", reader.slot, ",\"pid\":", reader.pid,
                                   ",\"state\":", reader.evicted ? "\"evicted\"" : "\"active\"",
                                   ",\"lag_bytes\":", reader.lag_bytes, "}"));
  }
  return absl::StrCat("{\"shard\":", r.shard, ",\"capacity\":", r.capacity, ",\"tail\":", r.tail,
                      ",\"records\":", r.records, ",\"lossless_waits\":", r.lossless_waits,
                      ",\"lossless_evictions\":", r.lossless_evictions, ",\"readers\":[",
                      absl::StrJoin(readers, ","), "]}");
}

std::string OrDash(const std::string& s) { return s.empty() ? "-" : s; }

// Track 0's codecs, then how many more tracks there are: "HEVC+Opus +2 tracks".
std::string Codecs(const StreamRow& r) {
  std::string codecs = r.video_codec.empty()   ? (r.audio_codec.empty() ? "-" : r.audio_codec)
                       : r.audio_codec.empty() ? r.video_codec
                                               : absl::StrCat(r.video_codec, "+", r.audio_codec);
  if (!r.tracks.empty()) {
    absl::StrAppend(&codecs, " +", r.tracks.size(), r.tracks.size() == 1 ? " track" : " tracks");
  }
  return codecs;
}

std::string Resolution(const StreamRow& r) {
  return r.width == 0 || r.height == 0 ? "-" : absl::StrCat(r.width, "x", r.height);
}

// Columns sized to their widest cell; text left-aligned, numbers right-aligned.
std::string TextStreams(const StatTable& t) {
  constexpr bool kLeft[] = {true, true, false, true, true, false, false, false, false, false};
  constexpr size_t kColumns = std::size(kLeft);
  std::vector<std::vector<std::string>> rows = {{"STREAM", "PUBLISHER", "SHARD", "CODEC", "SIZE",
                                                 "FPS", "KBIT/S", "FRAMES", "BYTES", "DROPS"}};
  for (const StreamRow& r : t.streams) {
    rows.push_back({r.name, OrDash(r.publisher), absl::StrCat(r.shard), Codecs(r), Resolution(r),
                    r.fps > 0 ? absl::StrFormat("%.2f", r.fps) : "-",
                    r.bitrate_kbps ? absl::StrFormat("%.0f", *r.bitrate_kbps) : "-",
                    absl::StrCat(r.frames), HumanBytes(r.bytes), absl::StrCat(r.drops)});
  }
  size_t width[kColumns] = {};
  for (const auto& row : rows) {
    for (size_t c = 0; c < kColumns; ++c) width[c] = std::max(width[c], row[c].size());
  }
  std::string out;
  for (const auto& row : rows) {
    for (size_t c = 0; c < kColumns; ++c) {
      const std::string pad(width[c] - row[c].size(), ' ');
      absl::StrAppend(&out, c == 0 ? "" : "  ", kLeft[c] ? "" : pad, row[c],
                      kLeft[c] && c + 1 < kColumns ? pad : "");
    }
    out += '\n';
  }
  return out;
}

std::string TextReaders(const StatTable& t) {
  std::string out;
  for (const RingSample& ring : t.rings) {
    for (const ReaderSample& r : ring.readers) {
      if (out.empty()) {
        out = absl::StrFormat("\n%-8s  %5s  %4s  %7s  %-7s  %s\n", "READER", "SHARD", "SLOT", "PID",
                              "STATE", "LAG");
      }
      absl::StrAppendFormat(&out, "%-8s  %5u  %4u  %7d  %-7s  %s\n", "lossless", r.shard, r.slot,
                            r.pid, r.evicted ? "evicted" : "active", HumanBytes(r.lag_bytes));
    }
  }
  return out;
}

}  // namespace

StatTable BuildStatTable(const StatSample* previous, const StatSample& current) {
  StatTable table{.ring = current.ring,
                  .epoch = current.epoch,
                  .server_pid = current.server_pid,
                  .shard_count = current.shard_count,
                  .server_state = current.server_state,
                  .rings = current.rings};
  if (current.wall_ns > current.start_time_ns) {
    table.uptime_s = double(current.wall_ns - current.start_time_ns) / kNsPerSecond;
  }
  // A sample of another server start says nothing about this one's rates.
  if (previous != nullptr && previous->epoch == current.epoch &&
      current.taken_ns > previous->taken_ns) {
    table.interval_s = double(current.taken_ns - previous->taken_ns) / kNsPerSecond;
  } else {
    previous = nullptr;
  }
  for (const ringbuf::StreamInfo& s : current.streams) {
    const ringbuf::StreamInfo* before = previous ? FindById(*previous, s.stream_id) : nullptr;
    table.streams.push_back(MakeRow(s, before, current, table.interval_s));
  }
  return table;
}

std::string JsonString(std::string_view s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    const auto c = uint8_t(s[i]);
    if (c >= 0x80) {
      AppendUtf8(s, &i, &out);
      continue;
    }
    ++i;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          absl::StrAppendFormat(&out, "\\u%04x", c);
        } else {
          out += char(c);
        }
    }
  }
  out += '"';
  return out;
}

std::string HumanBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  double v = double(bytes) / 1024;
  size_t unit = 0;
  while (v >= 1024 && unit + 1 < std::size(kUnits)) {
    v /= 1024;
    ++unit;
  }
  return absl::StrFormat("%.1f %s", v, kUnits[unit]);
}

std::string RenderStatJson(const StatTable& t) {
  std::vector<std::string> streams, rings;
  for (const StreamRow& r : t.streams) streams.push_back(RenderStreamJson(r));
  for (const RingSample& r : t.rings) rings.push_back(JsonRing(r));
  return absl::StrCat(
      "{\"ring\":", JsonString(t.ring), ",\"epoch\":\"", absl::Hex(t.epoch, absl::kZeroPad16), "\"",
      ",\"server_pid\":", t.server_pid, ",\"server_state\":", JsonString(t.server_state),
      ",\"shards\":", t.shard_count, ",\"uptime_s\":", JsonNumber(t.uptime_s),
      ",\"interval_s\":", JsonNumber(t.interval_s), ",\"streams\":[", absl::StrJoin(streams, ","),
      "],\"rings\":[", absl::StrJoin(rings, ","), "]}\n");
}

std::string RenderStatText(const StatTable& t) {
  uint64_t total_bytes = 0;
  for (const StreamRow& r : t.streams) total_bytes += r.bytes;
  std::string out = absl::StrFormat(
      "ring '%s'  server pid %d (%s)  %u shards  up %.0f s  %zu stream%s publishing, %s\n\n",
      t.ring, t.server_pid, t.server_state, t.shard_count, t.uptime_s, t.streams.size(),
      t.streams.size() == 1 ? "" : "s", HumanBytes(total_bytes));
  if (t.streams.empty()) {
    out += "(no stream is publishing)\n";
  } else {
    out += TextStreams(t);
  }
  out += TextReaders(t);
  return out;
}

}  // namespace uringest::consumer
