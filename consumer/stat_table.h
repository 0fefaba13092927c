// stat_table.h: what uringest-stat shows: one row per publishing stream (publisher,
// shard, codecs, resolution, fps, bitrate, counters) and the ring's lossless readers with
// their lag, rendered as a plain-text table or as one JSON document. Pure data and
// formatting: samples come from StatSampler, so tests build them by hand.
//
//   StatTable table = BuildStatTable(&previous, current);  // bitrate from the two
//   std::fputs(RenderStatText(table).c_str(), stdout);
//   std::fputs(RenderStatJson(table).c_str(), stdout);
//
// Bitrate is measured: payload bytes the server wrote for the stream between the two
// samples, over the time between them. Without a previous sample (or for a stream that
// began since) it is unknown. fps and resolution are what the publisher announced in
// onMetaData. The codecs are track 0's; an Enhanced RTMP stream's other tracks (those with
// a sequence header in the directory) are listed in `tracks`.

#ifndef URINGEST_CONSUMER_STAT_TABLE_H_
#define URINGEST_CONSUMER_STAT_TABLE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "consumer/stat_sampler.h"

namespace uringest::consumer {

// An Enhanced RTMP track other than 0.
struct TrackRow {
  bool video = true;
  uint8_t track_id = 0;
  std::string codec;  // "AV1"
};

struct StreamRow {
  std::string name;
  std::string publisher;
  uint32_t shard = 0;
  uint32_t stream_id = 0;
  std::string video_codec;  // "H.264"; "" if unknown
  std::string audio_codec;  // "AAC"; "" if unknown
  uint32_t width = 0;       // 0 if unknown
  uint32_t height = 0;
  double fps = 0;                      // 0 if unknown
  std::optional<double> bitrate_kbps;  // measured; see the file comment
  uint64_t frames = 0;                 // records written: audio, video and data
  uint64_t bytes = 0;
  uint64_t drops = 0;
  double duration_s = 0;         // since the stream began
  double begin_time_s = 0;       // when it began: seconds since the Unix epoch
  std::vector<TrackRow> tracks;  // Enhanced RTMP tracks other than 0
};

struct StatTable {
  std::string ring;
  uint64_t epoch = 0;
  int32_t server_pid = 0;
  uint32_t shard_count = 0;
  std::string server_state;
  double uptime_s = 0;
  double interval_s = 0;  // between the two samples; 0 with one
  std::vector<StreamRow> streams;
  std::vector<RingSample> rings;
};

StatTable BuildStatTable(const StatSample* previous, const StatSample& current);

// A fixed-width table, ending in a newline.
std::string RenderStatText(const StatTable& table);
// One JSON object (RFC 8259) on one line, ending in a newline. The epoch is a hex
// string: as a number it would exceed what JSON readers hold exactly (2^53).
std::string RenderStatJson(const StatTable& table);

// One stream's object of RenderStatJson's "streams" (no newline).
std::string RenderStreamJson(const StreamRow& row);

// `s` as a JSON string literal, quotes included: ", \ and control characters escaped;
// bytes that are not valid UTF-8 become U+FFFD, so the document stays valid.
std::string JsonString(std::string_view s);

// "1.5 KiB", "23.4 MiB": binary units with one decimal; bytes below 1 KiB as "512 B".
std::string HumanBytes(uint64_t bytes);

}  // namespace uringest::consumer

#endif  // URINGEST_CONSUMER_STAT_TABLE_H_
