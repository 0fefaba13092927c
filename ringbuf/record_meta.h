// record_meta.h: the one in-memory description of a record's metadata: everything a
// RecordHeader (ring_format.h) says about its frame, but not the fields that lay records
// out in the ring (position, record_length, payload_length). The engine fills one per
// frame, StreamWriter adds the stream id and sequence number, Producer lays it out, and
// Reader hands it back with each Frame. RecordHeader stays a layout: ToRecordHeader and
// ToRecordMeta are the only places that copy one into the other, field by field.
//
//   RecordMeta meta{.type = RecordType::kVideo, .flags = kFlagKeyframe, .dts = 40, .pts = 80};
//   RecordHeader header = ToRecordHeader(meta);  // then the layout fields
//   assert(ToRecordMeta(header) == meta);
//
// A new field goes into RecordMeta, RecordHeader (and FORMAT.md), and both functions.

#ifndef URINGEST_RINGBUF_RECORD_META_H_
#define URINGEST_RINGBUF_RECORD_META_H_

#include <cstdint>

#include "ringbuf/ring_format.h"

namespace uringest::ringbuf {

struct RecordMeta {
  RecordType type = RecordType::kVideo;
  uint8_t flags = 0;            // kFlag* bits
  uint32_t stream_id = 0;       // StreamEntry::stream_id
  uint64_t sequence = 0;        // per stream: 1, 2, 3, ...
  int64_t dts = 0;              // ms
  int64_t pts = 0;              // ms: dts + composition time offset
  uint64_t ingest_time_ns = 0;  // CLOCK_REALTIME when the server received the frame
  uint32_t codec = 0;           // FLV codec id or Enhanced RTMP FourCC
  uint8_t track_id = 0;         // Enhanced RTMP track id (0: the default track)
  uint8_t packet_type = 0;      // Enhanced RTMP packet type, else the AVC/AAC one
  uint32_t time_offset_ns = 0;  // Enhanced RTMP ModEx TimestampOffsetNano: ns after dts/pts

  friend bool operator==(const RecordMeta&, const RecordMeta&) = default;
};

// The header of a record with `meta`; its layout fields (position, record_length,
// payload_length) are 0, for the producer to fill in.
constexpr RecordHeader ToRecordHeader(const RecordMeta& meta) {
  return RecordHeader{.position = 0,
                      .record_length = 0,
                      .type = static_cast<uint8_t>(meta.type),
                      .flags = meta.flags,
                      .track_id = meta.track_id,
                      .packet_type = meta.packet_type,
                      .stream_id = meta.stream_id,
                      .payload_length = 0,
                      .sequence = meta.sequence,
                      .dts = meta.dts,
                      .pts = meta.pts,
                      .ingest_time_ns = meta.ingest_time_ns,
                      .codec = meta.codec,
                      .time_offset_ns = meta.time_offset_ns};
}

// What `header` says about its frame.
constexpr RecordMeta ToRecordMeta(const RecordHeader& header) {
  return RecordMeta{.type = static_cast<RecordType>(header.type),
                    .flags = header.flags,
                    .stream_id = header.stream_id,
                    .sequence = header.sequence,
                    .dts = header.dts,
                    .pts = header.pts,
                    .ingest_time_ns = header.ingest_time_ns,
                    .codec = header.codec,
                    .track_id = header.track_id,
                    .packet_type = header.packet_type,
                    .time_offset_ns = header.time_offset_ns};
}

}  // namespace uringest::ringbuf

#endif  // URINGEST_RINGBUF_RECORD_META_H_
