// ring_format.h: the shared-memory layout of the frame ring and the stream directory,
// shared by every writer and reader in ringbuf/. ringbuf/FORMAT.md describes the same
// layout in prose for readers written in other languages; the two change together, and
// kFormatVersion changes with any incompatible edit.
//
// Every struct here is a plain, standard-layout image of bytes in shared memory (little
// endian, naturally aligned). Fields that more than one process touches concurrently are
// accessed only through std::atomic_ref (see internal/shared_access.h); the comment on
// each field says who writes it and with which ordering.

#ifndef URINGEST_RINGBUF_RING_FORMAT_H_
#define URINGEST_RINGBUF_RING_FORMAT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace uringest::ringbuf {

inline constexpr uint32_t kFormatVersion = 6;
inline constexpr uint64_t kRingMagic = 0x474E4952'474E5255;       // bytes "URNGRING"
inline constexpr uint64_t kDirectoryMagic = 0x00524944'474E5255;  // bytes "URNGDIR\0"
inline constexpr size_t kCacheLine = 64;

// ---- Shared-memory objects (FORMAT.md, "Objects") ----
inline constexpr char kShmDir[] = "/dev/shm";
inline constexpr char kLockSuffix[] = ".lock";      // flock()ed by the live server
inline constexpr char kDirectorySuffix[] = ".dir";  // DirectoryHeader, StreamEntry[], StreamBody[]
inline constexpr char kRingSuffix[] = ".ring.";     // + decimal shard: RingHeader + data
// Ring path + this: the ring's readers page, mapped over RingHeader's second page
// (FORMAT.md, "Permissions"). Absent for rings on hugetlbfs.
inline constexpr char kReadersSuffix[] = ".readers";
inline constexpr size_t kMaxNameLength = 200;
inline constexpr uint32_t kMaxShards = 256;

// ---- Records (FORMAT.md, "Records") ----
enum class RecordType : uint8_t {
  kPadding = 0,  // fills the ring up to its end; skip record_length bytes
  kAudio = 8,    // the values of the FLV tag types
  kVideo = 9,
  kData = 18,
  kStreamBegin = 32,  // payload: the stream name "app/name"
  kStreamEnd = 33,    // payload: empty
};

// RecordHeader::flags bits.
inline constexpr uint8_t kFlagKeyframe = 1 << 0;        // a point a decoder can start at
inline constexpr uint8_t kFlagSequenceHeader = 1 << 1;  // AVC/HEVC/AAC config, SequenceStart
inline constexpr uint8_t kFlagDiscontinuity = 1 << 2;   // the producer dropped frames before
// Enhanced RTMP: the body has an ExHeader (video bit 7 / SoundFormat 9); `codec` is a FourCC.
inline constexpr uint8_t kFlagExHeader = 1 << 3;
// A Multitrack message of kind ManyTracks or ManyTracksManyCodecs, which may hold several
// tracks: the body is one record as sent; `track_id` and `codec` are its first track's.
inline constexpr uint8_t kFlagMultitrack = 1 << 4;
// A video command frame (FrameType 5): no picture.
inline constexpr uint8_t kFlagCommand = 1 << 5;

// RecordHeader::packet_type values of video records with kFlagExHeader that carry no
// picture (Enhanced RTMP VideoPacketType).
inline constexpr uint8_t kVideoPacketSequenceEnd = 2;
inline constexpr uint8_t kVideoPacketMetadata = 4;  // colorInfo

// Whether a video record with these flags and packet type can be used without the
// pictures before it: a keyframe, or a record that holds no picture (a sequence header,
// a command frame, an Enhanced RTMP SequenceEnd or Metadata packet). A reader that
// starts mid-GOP, or lost frames, passes over the others until the next keyframe.
constexpr bool StandsAlone(uint8_t flags, uint8_t packet_type) {
  if ((flags & (kFlagKeyframe | kFlagSequenceHeader | kFlagCommand)) != 0) return true;
  return (flags & kFlagExHeader) != 0 &&
         (packet_type == kVideoPacketMetadata || packet_type == kVideoPacketSequenceEnd);
}

// Records start at positions that are multiples of kRecordAlignment. A record never
// wraps: when one doesn't fit before the end of the data region, a padding record fills
// the rest. The padding header only uses the first kPaddingHeaderSize bytes, so the
// smallest gap (kRecordAlignment) always holds one.
inline constexpr uint32_t kRecordAlignment = 16;
inline constexpr uint32_t kPaddingHeaderSize = 8 + 4 + 1 + 1 + 2;

// In memory, everything here but position, record_length and payload_length is a
// RecordMeta (record_meta.h); ToRecordHeader() and ToRecordMeta() copy between the two.
struct RecordHeader {
  uint64_t position;        // this record's ring position; stored last, with release
  uint32_t record_length;   // header + payload + alignment padding (multiple of 16)
  uint8_t type;             // RecordType
  uint8_t flags;            // kFlag* bits
  uint8_t track_id;         // Enhanced RTMP track id (multitrack); 0 otherwise
  uint8_t packet_type;      // Enhanced RTMP packet type, else the AVC/AAC packet type byte
  uint32_t stream_id;       // StreamEntry::stream_id of the stream it belongs to
  uint32_t payload_length;  // bytes of payload right after this header
  uint64_t sequence;        // per stream: 1, 2, 3, ... with no gaps at the producer
  int64_t dts;              // decode time, milliseconds (RTMP time, unwrapped)
  int64_t pts;              // presentation time, milliseconds
  uint64_t ingest_time_ns;  // CLOCK_REALTIME when the server received the frame
  uint32_t codec;           // audio/video: FLV CodecID / SoundFormat, or the FourCC
  // Enhanced RTMP ModEx TimestampOffsetNano (0..999999): nanoseconds after dts and pts.
  uint32_t time_offset_ns;
};
inline constexpr uint32_t kRecordHeaderSize = 8 + 4 + 1 + 1 + 1 + 1 + 4 + 4 + 8 + 8 + 8 + 8 + 4 + 4;
static_assert(sizeof(RecordHeader) == kRecordHeaderSize);
static_assert(kRecordHeaderSize % 8 == 0, "payloads start 8-aligned");
static_assert(kPaddingHeaderSize <= kRecordAlignment);

constexpr uint64_t AlignRecord(uint64_t n) {
  return (n + kRecordAlignment - 1) & ~uint64_t{kRecordAlignment - 1};
}

// ---- Ring object: RingHeader, then `capacity` data bytes at `header_size` ----
// The header's first page is the producer's; its second page (kRingReadersOffset) holds
// everything readers write, and comes from the readers object when there is one, so
// that the ring itself can be mapped read-only by its consumers.
inline constexpr size_t kRingReadersOffset = 4096;
inline constexpr size_t kRingReadersSize = 4096;
inline constexpr size_t kRingHeaderSize = kRingReadersOffset + kRingReadersSize;
inline constexpr uint32_t kLosslessSlots = 32;
inline constexpr uint64_t kMinRingCapacity = 64 * 1024;
inline constexpr uint64_t kMaxRingCapacity = uint64_t{1} << 40;

enum class RingState : uint32_t { kInitializing = 0, kLive = 1, kClosed = 2 };
enum class LosslessState : uint32_t { kFree = 0, kActive = 1, kEvicted = 2 };

// One lossless reader's claim: the producer won't move tail_intent past
// position + capacity while the slot is active, for at most the lossless timeout.
struct alignas(kCacheLine) LosslessSlot {
  uint64_t position;   // reader: the oldest position it still needs (release)
  uint32_t state;      // LosslessState; reader claims/frees, producer evicts (CAS)
  int32_t pid;         // reader's process id (the producer evicts a dead owner at once)
  uint64_t evictions;  // producer: times this slot was evicted
};
static_assert(sizeof(LosslessSlot) == kCacheLine);

struct RingHeader {
  // Line 0: written once by the producer before `state` becomes kLive.
  uint64_t magic;              // kRingMagic
  uint32_t version;            // kFormatVersion
  uint32_t header_size;        // offset of the data region in the object
  uint64_t capacity;           // data bytes: a power of two
  uint64_t epoch;              // the server start this ring belongs to (never 0)
  uint32_t shard;              // the shard that produces into this ring
  uint32_t max_record_length;  // capacity / 4: the largest record_length
  uint32_t lossless_slots;     // kLosslessSlots
  uint32_t reserved0;
  uint8_t pad0[kCacheLine - 48];
  // Line 1: the producer's positions.
  alignas(kCacheLine) uint64_t tail_intent;  // end of what the producer may be writing
  uint64_t tail;                             // end of what is committed (release)
  uint64_t latest_record;                    // position of the last committed record
  uint8_t pad1[kCacheLine - 24];
  // Line 2: producer liveness and counters.
  alignas(kCacheLine) uint64_t heartbeat_ns;  // CLOCK_MONOTONIC, at least every ~100 ms
  uint32_t state;                             // RingState
  int32_t producer_pid;
  uint64_t records;             // records committed (padding excluded)
  uint64_t bytes;               // payload bytes committed
  uint64_t lossless_waits;      // times the producer waited for a lossless reader
  uint64_t lossless_evictions;  // times a lossless reader was evicted
  uint8_t pad2[kCacheLine - 48];
  uint8_t pad_page0[kRingReadersOffset - 3 * kCacheLine];
  // The readers page. Line 64: written by readers (and the producer's wake-ups).
  alignas(kCacheLine) uint32_t futex_word;  // bumped by the producer to wake sleepers
  uint32_t waiters;                         // readers sleeping (or about to) on futex_word
  uint8_t pad3[kCacheLine - 8];
  // Line 65: which LosslessSlots are active, bit i for slot i.
  alignas(kCacheLine) uint64_t lossless_mask;
  uint8_t pad4[kCacheLine - 8];
  LosslessSlot lossless[kLosslessSlots];
};
static_assert(sizeof(RingHeader) <= kRingHeaderSize);
static_assert(offsetof(RingHeader, tail_intent) == 64);
static_assert(offsetof(RingHeader, heartbeat_ns) == 128);
static_assert(offsetof(RingHeader, futex_word) == kRingReadersOffset);
static_assert(offsetof(RingHeader, lossless_mask) == kRingReadersOffset + 64);
static_assert(offsetof(RingHeader, lossless) == kRingReadersOffset + 128);
static_assert(sizeof(RingHeader) <= kRingReadersOffset + kRingReadersSize);

// ---- Directory object: DirectoryHeader, slot_count StreamEntry, slot_count StreamBody ----
// An entry (the slot's state, counters, name and lengths) is small and packed with the
// others; its body (onMetaData and configuration packets) lies apart, page-aligned, so a
// stream costs memory only for what it holds: an idle stream touches its entry alone, and
// a body's pages only when something is written to them.
inline constexpr size_t kDirectoryHeaderSize = 4096;
inline constexpr size_t kStreamEntrySize = 576;   // 9 cache lines
inline constexpr size_t kStreamBodySize = 16384;  // metadata, then configs
inline constexpr size_t kStreamNameMax = 256;     // "app/name", not NUL-terminated
inline constexpr size_t kPublisherMax = 64;       // "203.0.113.7:51234"
inline constexpr size_t kMetadataMax = 4096;      // onMetaData (AMF0) data tag body
enum class DirectoryState : uint32_t { kInitializing = 0, kLive = 1, kClosed = 2 };
// A location byte per shard: where its ring object lives.
enum class RingLocation : uint8_t { kShm = 0, kHugetlbfs = 1 };

struct DirectoryHeader {
  // Line 0: written once before `state` becomes kLive.
  uint64_t magic;        // kDirectoryMagic
  uint32_t version;      // kFormatVersion
  uint32_t header_size;  // offset of StreamEntry 0
  uint64_t epoch;        // random, changes on each server start (never 0)
  uint32_t shard_count;  // rings NAME.ring.0 .. NAME.ring.<shard_count - 1>
  uint32_t slot_count;   // StreamEntry slots
  uint32_t entry_size;   // kStreamEntrySize
  int32_t server_pid;
  uint64_t ring_capacity;  // each ring's data bytes
  uint64_t start_time_ns;  // CLOCK_REALTIME at server start
  uint32_t body_size;      // kStreamBodySize
  uint32_t body_offset;    // offset of StreamBody 0, a multiple of 4096
  // Line 1: written by the server.
  alignas(kCacheLine) uint32_t state;  // DirectoryState
  uint32_t next_stream_id;             // atomic counter; stream ids start at 1
  uint64_t heartbeat_ns;               // CLOCK_MONOTONIC, updated by every shard
  uint32_t slot_hint;                  // where the next claim starts scanning
  uint8_t pad1[kCacheLine - 20];
  // Line 2..: ring locations. For kHugetlbfs the ring is <hugetlbfs_dir>/NAME.ring.<k>.
  alignas(kCacheLine) uint8_t ring_location[kMaxShards];
  char hugetlbfs_dir[128];  // NUL-terminated mount point, empty if unused
};
static_assert(sizeof(DirectoryHeader) <= kDirectoryHeaderSize);
static_assert(offsetof(DirectoryHeader, state) == 64);
static_assert(offsetof(DirectoryHeader, ring_location) == 128);

enum class SlotState : uint32_t {
  kFree = 0,        // never used
  kClaimed = 1,     // a shard is filling it in
  kPublishing = 2,  // the stream is live
  kEnded = 3,       // the stream ended; the slot may be reclaimed for a new stream
};

// Codec parameters the engine learns from the sequence headers and onMetaData.
struct CodecInfo {
  uint32_t video_codec;  // FLV CodecID (7 = AVC, 12 = HEVC) or Enhanced RTMP FourCC
  uint32_t audio_codec;  // FLV SoundFormat (10 = AAC) or FourCC; 0 = unknown
  uint32_t width;        // pixels; 0 = unknown
  uint32_t height;
  uint32_t frame_rate_milli;   // frames per 1000 s (29.97 fps = 29970); 0 = unknown
  uint32_t audio_sample_rate;  // Hz
  uint32_t audio_channels;
  uint32_t video_bitrate_kbps;  // as announced in onMetaData
  uint32_t audio_bitrate_kbps;
  uint32_t reserved[3];
};
static_assert(sizeof(CodecInfo) == 48);

// A configuration packet kept for late joiners, in StreamInfoImage::configs: this header,
// `length` bytes of FLV tag body, then padding to a multiple of kConfigAlignment. One is
// kept per (type, track_id, packet_type): a sequence header (legacy AVC/HEVC/AAC, or an
// Enhanced RTMP SequenceStart or MPEG2TSSequenceStart) of any track, and an audio
// MultichannelConfig or a video Metadata (colorInfo) packet.
struct ConfigHeader {
  uint8_t type;         // RecordType: kAudio or kVideo
  uint8_t track_id;     // Enhanced RTMP track id; 0 for legacy bodies
  uint8_t flags;        // the record flags it came with (kFlagSequenceHeader, kFlagExHeader)
  uint8_t packet_type;  // RecordHeader::packet_type
  uint32_t length;      // bytes of body that follow
};
static_assert(sizeof(ConfigHeader) == 8);
inline constexpr size_t kConfigAlignment = 8;
constexpr size_t ConfigRecordSize(size_t body_length) {
  return (sizeof(ConfigHeader) + body_length + kConfigAlignment - 1) & ~(kConfigAlignment - 1);
}

// The seqlocked part of a StreamEntry: consistent when `seqlock` is even and unchanged
// across the copy (FORMAT.md, "Reading an entry").
struct StreamInfoImage {
  uint32_t stream_id;  // unique within an epoch, never 0
  uint32_t shard;      // the ring that carries its records
  uint32_t state;      // SlotState: kPublishing or kEnded
  uint16_t name_length;
  uint8_t publisher_length;
  uint8_t reserved0;
  uint64_t begin_time_ns;  // CLOCK_REALTIME when the stream began
  uint64_t end_time_ns;    // CLOCK_REALTIME when it ended, 0 while publishing
  CodecInfo codec;
  uint32_t configs_length;  // bytes of StreamBody::configs in use
  uint32_t config_count;    // configuration packets in StreamBody::configs
  uint32_t metadata_length;
  uint32_t reserved1;
  char name[kStreamNameMax];
  char publisher[kPublisherMax];
};

struct StreamEntry {
  // Line 0: slot control.
  uint32_t slot_state;  // SlotState; claimed by CAS from kFree or kEnded
  uint32_t seqlock;     // odd while `info` is being written
  uint8_t pad0[kCacheLine - 8];
  // Line 1: counters, each an independent atomic written by the owning shard.
  alignas(kCacheLine) uint64_t frames;  // records written (the last sequence number)
  uint64_t bytes;                       // payload bytes written
  uint64_t drops;                       // frames the producer could not write
  uint64_t latest_keyframe;             // ring position of the latest keyframe + 1; 0: none
  int64_t last_dts;                     // ms
  uint8_t pad1[kCacheLine - 40];
  // Line 2..: the seqlocked description.
  alignas(kCacheLine) StreamInfoImage info;
};
static_assert(sizeof(StreamEntry) <= kStreamEntrySize);

// A slot's body, at DirectoryHeader::body_offset + slot * kStreamBodySize. Written under
// its entry's seqlock; StreamInfoImage holds the lengths in use.
struct StreamBody {
  uint8_t metadata[kMetadataMax];  // the latest onMetaData data tag body
  // Every configuration packet kept (ConfigHeader), packed, in the order in which the
  // publisher first sent each (type, track, packet type).
  uint8_t configs[kStreamBodySize - kMetadataMax];
};
static_assert(sizeof(StreamBody) == kStreamBodySize);
inline constexpr size_t kConfigAreaSize = sizeof(StreamBody::configs);
// The offsets FORMAT.md documents.
static_assert(offsetof(StreamEntry, latest_keyframe) == 88);
static_assert(offsetof(StreamEntry, info) + offsetof(StreamInfoImage, codec) == 160);
static_assert(offsetof(StreamEntry, info) + offsetof(StreamInfoImage, configs_length) == 208);
static_assert(offsetof(StreamEntry, info) + offsetof(StreamInfoImage, config_count) == 212);
static_assert(offsetof(StreamEntry, info) + offsetof(StreamInfoImage, metadata_length) == 216);
static_assert(offsetof(StreamEntry, info) + offsetof(StreamInfoImage, name) == 224);
static_assert(offsetof(StreamEntry, info) + offsetof(StreamInfoImage, publisher) == 480);
static_assert(offsetof(StreamEntry, info) + sizeof(StreamInfoImage) == 544);
static_assert(offsetof(StreamBody, configs) == 4096);
static_assert(kConfigAreaSize % kConfigAlignment == 0);
static_assert(sizeof(StreamEntry) == kStreamEntrySize);
static_assert(offsetof(DirectoryHeader, hugetlbfs_dir) == 384);
static_assert(offsetof(DirectoryHeader, body_offset) == 60);
static_assert(offsetof(RingHeader, lossless_evictions) == 168);
static_assert(offsetof(RecordHeader, ingest_time_ns) == 48);
static_assert(offsetof(RecordHeader, track_id) == 14);
static_assert(offsetof(RecordHeader, codec) == 56);
static_assert(offsetof(StreamEntry, frames) == 64);
static_assert(offsetof(StreamEntry, info) == 128);

static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(std::atomic<uint32_t>::is_always_lock_free);

}  // namespace uringest::ringbuf

#endif  // URINGEST_RINGBUF_RING_FORMAT_H_
