/* uringest_ring.h: the C API of the frame ring's consumer side, for readers written in
 * other languages (through their C FFI). It wraps ringbuf/reader.h one to one; a reader
 * that can't link C can instead follow ringbuf/FORMAT.md.
 *
 *   uringest_ring_reader* r;
 *   if (uringest_ring_open("live", &r) != 0) return 1;
 *   uringest_ring_follow(r, "live/cam1", URINGEST_RING_FROM_LATEST_KEYFRAME, 0);
 *   uringest_ring_frame f;
 *   while (uringest_ring_next(r, &f, 1000) != URINGEST_RING_SERVER_GONE) {
 *     ... use f.payload[0 .. f.payload_length) ...
 *     if (!uringest_ring_check(r)) ... the payload was overwritten while in use ...
 *   }
 *   uringest_ring_close(r);
 *
 * Errors are negative errno values (-EACCES: the process is not in the ring's group,
 * uringestd --ring-group). The ring and its directory are mapped read-only; only the
 * rings' small readers pages are written (FORMAT.md, "Permissions"). A reader handle is
 * used by one thread at a time.
 *
 * Installed, it is <uringest_ring.h> of liburingest-ring.so (pkg-config uringest-ring):
 *
 *   cc consumer.c $(pkg-config --cflags --libs uringest-ring)
 */

#ifndef URINGEST_RINGBUF_URINGEST_RING_H_
#define URINGEST_RINGBUF_URINGEST_RING_H_

#include <stddef.h>
#include <stdint.h>

/* The functions below are the only symbols liburingest-ring.so exports: its objects are
 * compiled with -fvisibility=hidden, and ringbuf/uringest_ring.map names them too. */
#if defined(__GNUC__)
#define URINGEST_RING_API __attribute__((visibility("default")))
#else
#define URINGEST_RING_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef struct uringest_ring_reader uringest_ring_reader;

/* Where uringest_ring_follow starts. */
enum {
  URINGEST_RING_FROM_LATEST_KEYFRAME = 0,
  URINGEST_RING_FROM_NOW = 1,
  URINGEST_RING_FROM_OLDEST = 2,
};

/* What uringest_ring_next returns. */
enum {
  URINGEST_RING_TIMEOUT = 0,
  URINGEST_RING_FRAME = 1,
  URINGEST_RING_STREAM_ENDED = 2,
  URINGEST_RING_EVICTED = 3, /* a lossless reader became lossy */
  URINGEST_RING_SERVER_GONE = 4,
};

/* What uringest_ring_wait_stream returns (or URINGEST_RING_TIMEOUT); the last two are
 * also what uringest_ring_server_exit returns once the server is gone. */
enum {
  URINGEST_RING_STREAM_READY = 5,     /* the stream is publishing: follow it */
  URINGEST_RING_SERVER_DIED = 6,      /* killed, crashed or hung, or replaced by a new server
                                       * without first shutting down cleanly */
  URINGEST_RING_SERVER_SHUT_DOWN = 7, /* shut down cleanly (and may have restarted since) */
};

/* What uringest_ring_server_state returns. */
enum {
  URINGEST_RING_SERVER_ALIVE = 0,
  URINGEST_RING_SERVER_DEAD = 1,
  URINGEST_RING_SERVER_RESTARTED = 2,
  URINGEST_RING_SERVER_CLOSED = 3,
};

/* Record types and flags: the values of ringbuf/FORMAT.md. */
enum {
  URINGEST_RING_AUDIO = 8,
  URINGEST_RING_VIDEO = 9,
  URINGEST_RING_DATA = 18,
  URINGEST_RING_STREAM_BEGIN = 32,
  URINGEST_RING_STREAM_END = 33,
  URINGEST_RING_FLAG_KEYFRAME = 1,
  URINGEST_RING_FLAG_SEQUENCE_HEADER = 2,
  URINGEST_RING_FLAG_DISCONTINUITY = 4,
  URINGEST_RING_FLAG_EX_HEADER = 8,   /* Enhanced RTMP body: codec is a FourCC */
  URINGEST_RING_FLAG_MULTITRACK = 16, /* several tracks in one body; track_id: the first */
  URINGEST_RING_FLAG_COMMAND = 32,    /* video command frame */
};

typedef struct {
  uint32_t stream_id;
  uint32_t shard;
  uint32_t publishing; /* 1 while publishing, 0 once ended */
  char name[257];      /* "app/name", NUL-terminated */
  char publisher[65];  /* "ip:port", NUL-terminated */
  uint64_t frames;
  uint64_t bytes;
  uint64_t drops;
  uint32_t video_codec;
  uint32_t audio_codec;
  uint32_t width;
  uint32_t height;
  uint32_t frame_rate_milli;
  uint32_t audio_sample_rate;
} uringest_ring_stream_info;

typedef struct {
  uint8_t type;           /* URINGEST_RING_AUDIO, ... */
  uint8_t flags;          /* URINGEST_RING_FLAG_* */
  uint8_t from_directory; /* 1: onMetaData/sequence header replayed on join */
  uint8_t track_id;       /* Enhanced RTMP track id (0: the default track) */
  uint32_t stream_id;
  uint64_t sequence;
  int64_t dts; /* milliseconds */
  int64_t pts; /* milliseconds */
  uint64_t ingest_time_ns;
  const uint8_t* payload; /* valid until the next uringest_ring_next; check after use */
  uint32_t payload_length;
  uint64_t lost_before;    /* frames of the stream lost just before this one */
  uint32_t codec;          /* FLV codec id / SoundFormat, or the Enhanced RTMP FourCC */
  uint8_t packet_type;     /* Enhanced RTMP packet type, else the AVC/AAC packet type */
  uint32_t time_offset_ns; /* Enhanced RTMP ModEx: nanoseconds after dts and pts */
} uringest_ring_frame;

/* Opens ring `name` (the server's --ring NAME). */
URINGEST_RING_API int uringest_ring_open(const char* name, uringest_ring_reader** out);
URINGEST_RING_API void uringest_ring_close(uringest_ring_reader* reader);
/* Fills up to `capacity` entries; returns how many streams there are (may be more). */
URINGEST_RING_API int uringest_ring_list(uringest_ring_reader* reader,
                                         uringest_ring_stream_info* out, size_t capacity);
/* Follows stream `stream` ("app/name") from `from`; lossless != 0 holds the producer back
 * for a bounded time per write. */
URINGEST_RING_API int uringest_ring_follow(uringest_ring_reader* reader, const char* stream,
                                           int from, int lossless);
/* Waits up to timeout_ms for the next frame; returns URINGEST_RING_FRAME with *frame
 * filled, or another URINGEST_RING_* result, or a negative errno. */
URINGEST_RING_API int uringest_ring_next(uringest_ring_reader* reader, uringest_ring_frame* frame,
                                         int timeout_ms);
/* 1 if the last frame's payload was intact while used, 0 if it was overwritten. */
URINGEST_RING_API int uringest_ring_check(uringest_ring_reader* reader);
/* Copies the last frame's payload into buf; returns its length, -ENOSPC if capacity is
 * too small, -ESTALE if it was overwritten. */
URINGEST_RING_API int64_t uringest_ring_copy(uringest_ring_reader* reader, uint8_t* buf,
                                             size_t capacity);
URINGEST_RING_API uint64_t uringest_ring_lost(const uringest_ring_reader* reader);
URINGEST_RING_API uint64_t uringest_ring_lag(const uringest_ring_reader* reader);
URINGEST_RING_API int uringest_ring_server_state(const uringest_ring_reader* reader);
/* How many shards the server writes (its --shards): rings NAME.ring.0 .. NAME.ring.<n-1>. */
URINGEST_RING_API uint32_t uringest_ring_shard_count(const uringest_ring_reader* reader);

/* Waiting (ringbuf/reader.h, "Waiting"). A timeout_ms below 0 waits without limit; a
 * caller that must stop on a signal waits in slices (each call looks at the server at
 * once, at the cost of a system call or two). No call polls: between looks (every
 * 100 ms) they sleep.
 *
 * Like uringest_ring_open, once a live server owns ring `name` (a fresh heartbeat, and
 * it holds the ring's lock). Missing objects and stale ones that a dead server left are
 * waited for. Returns 0, -ETIMEDOUT, or another negative errno (-EACCES). */
URINGEST_RING_API int uringest_ring_wait_open(const char* name, int timeout_ms,
                                              uringest_ring_reader** out);
/* Waits until stream `stream` ("app/name") is publishing: URINGEST_RING_STREAM_READY
 * (then uringest_ring_follow it), URINGEST_RING_TIMEOUT, URINGEST_RING_SERVER_DIED or
 * URINGEST_RING_SERVER_SHUT_DOWN (within about 0.6 s of the server's end), or -EINVAL. */
URINGEST_RING_API int uringest_ring_wait_stream(uringest_ring_reader* reader, const char* stream,
                                                int timeout_ms);
/* 0 while the server is alive, else URINGEST_RING_SERVER_DIED or
 * URINGEST_RING_SERVER_SHUT_DOWN: why uringest_ring_next returned
 * URINGEST_RING_SERVER_GONE. */
URINGEST_RING_API int uringest_ring_server_exit(const uringest_ring_reader* reader);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* URINGEST_RINGBUF_URINGEST_RING_H_ */
