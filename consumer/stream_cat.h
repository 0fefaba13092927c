// stream_cat.h: uringest-cat as a library: follows one stream of a server's frame ring and
// writes it as an FLV file to a ByteSink, until the publisher ends it.
//
//   FdSink out(STDOUT_FILENO);
//   CatOptions options{.ring = "uringest", .stream = "live/test", .wait = true};
//   CatSummary summary;
//   absl::Status done = CatStream(options, &out, &summary);
//   // OK: the publisher ended the stream and every frame from the start point was written
//   // (or, waiting, summary.server_shut_down: the server shut down cleanly first).
//
// What is written: the FLV header, onMetaData, the sequence headers, then frames from the
// start point (FlvWriter decides timestamps). The header's audio/video flags need to know
// which tracks the stream has, so the header is written when the first audio or video
// frame is in hand: by then the server has filled the directory's codec fields from
// onMetaData (publishers send it first), and the frame itself counts too.
//
// Enhanced RTMP. Bodies are written as sent, with three changes that make the file one
// that ffmpeg's FLV reader (8.0 and later; tested with 9.0) reads whole: a message with several
// tracks (ManyTracks, ManyTracksManyCodecs) becomes one tag per track, each the single-track (track
// 0) or OneTrack message that would carry that track alone (without the ModEx prefixes the message
// may have had); a video Metadata packet (colorInfo) gets frame type 5, as ffmpeg's own FLV muxer
// writes it; and MPEG2TSSequenceStart packets are left out (said once through `log`), since FLV
// readers take them for frames.
//
// Where it starts. With `wait`, a stream that begins after CatStream() was called is
// written from its first frame (the ring's oldest record on). Otherwise `start` picks:
// the latest keyframe still in the ring (a late joiner gets the GOP in progress), or the
// next frame written ("now": audio at once, video from its next keyframe; packets without
// a picture, such as colorInfo, at once too). Either way the directory's onMetaData and
// configuration packets come first, in the order the publisher sent them. The ring's own
// copy of one of those, met before that track's first frame, is the one it stood in for
// and is not written again; everything else is written as sent, repeats included.
//
// Waiting (`wait`). A server that is not there yet, or whose objects are stale (left by
// a server that died before), is waited for; so is the stream. Both waits sleep
// (ringbuf::Reader::WaitForServer, WaitForStream). Once a live server was seen, its
// death (heartbeat older than `reader.dead_after` and its lock free, which a crash frees
// at once; or a new server in its place) ends the wait with Unavailable within about a
// second; a clean shutdown ends it with OK and summary->server_shut_down, nothing
// written. `wait_timeout` bounds both waits together (DeadlineExceeded).
//
// Errors. Lost frames (the producer overwrote them before they were copied) don't stop
// the output: each loss is reported through `log`, the video resumes at the next
// keyframe, and the result is DataLoss once the stream ends. A server that shuts down,
// restarts, or dies before the stream ends yields Unavailable within about a second (a
// server shutting down cleanly ends its streams first, so a followed stream ends OK);
// one that still holds its lock but stopped its heartbeat is given `reader.hung_after`.
// A write error (EPIPE from `| ffplay -`) is returned at once.
//
// Thread safety: CatStream() may run on several threads at once, each with its own sink.

#ifndef URINGEST_CONSUMER_STREAM_CAT_H_
#define URINGEST_CONSUMER_STREAM_CAT_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "consumer/flv_writer.h"
#include "ringbuf/reader.h"

namespace uringest::consumer {

enum class CatStart {
  kKeyframe,  // the latest keyframe still in the ring
  kNow,       // the next frame written
};

struct CatOptions {
  std::string ring = "uringest";
  std::string stream;  // "app/name"
  // Wait for a live server and for the stream to start publishing (else a stream that is
  // not publishing is an error). See "Waiting" above.
  bool wait = false;
  absl::Duration wait_timeout = absl::InfiniteDuration();
  CatStart start = CatStart::kKeyframe;
  // Hold the producer back rather than lose frames (a bounded wait; see ring FORMAT.md,
  // "Lossless readers"); the ring shows this reader's lag to uringest-stat.
  bool lossless = false;
  // When the server counts as dead (heartbeat age, and how long a hung one that still
  // holds its lock is given).
  ringbuf::ReaderOptions reader;
  // Progress and loss messages, one line each without a newline; may be empty.
  std::function<void(std::string_view)> log;
  // Set from another thread (or a signal handler) to stop early; the result is Cancelled.
  const std::atomic<bool>* stop = nullptr;
};

struct CatSummary {
  uint64_t frames = 0;  // audio, video and data tags written
  uint64_t bytes = 0;   // FLV bytes written
  uint64_t lost = 0;    // frames lost (the follower's count)
  // The server shut down cleanly while CatStream() waited for the stream (status OK).
  bool server_shut_down = false;
};

// Runs until the stream ends, an error, or *options.stop. `summary` (optional) is filled
// in either way.
[[nodiscard]] absl::Status CatStream(const CatOptions& options, ByteSink* sink,
                                     CatSummary* summary = nullptr);

}  // namespace uringest::consumer

#endif  // URINGEST_CONSUMER_STREAM_CAT_H_
