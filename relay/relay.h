// relay.h: uringest-push as a library. Follows every stream of a server whose name a
// push rule matches (StreamTap, one thread reading the rings) and publishes each to every
// destination its rules give (Upstream, all on one epoll thread, however many streams
// and destinations there are). Frames are copied out of the ring once and shared by the
// destinations' queues.
//
//   std::atomic<bool> stop{false};   // set by SIGINT/SIGTERM
//   RelayOptions options{.ring = "uringest", .rules = rules, .stop = &stop};
//   absl::Status s = RunRelay(options);   // after a stop: every upstream unpublished
//
// The server may go away and come back: the streams' destinations are unpublished when
// it goes, and the relay waits for the next server. Reading the ring is lossy by
// default: a destination that falls behind skips to a keyframe (max_lag) and the others
// go on; a relay whose thread falls a whole ring behind loses frames, says so, and its
// destinations resume at a keyframe. With `upstream.lossless`, a destination more than
// max_lag behind holds the ring instead (its reader is lossless, within the server's
// bounded lossless wait).
//
// Thread safety: RunRelay() runs on the calling thread and starts one more.

#ifndef URINGEST_RELAY_RELAY_H_
#define URINGEST_RELAY_RELAY_H_

#include <atomic>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "relay/push_rules.h"
#include "relay/upstream.h"
#include "ringbuf/reader.h"

namespace uringest::relay {

struct RelayOptions {
  std::string ring = "uringest";
  std::vector<PushRule> rules;
  UpstreamOptions upstream;
  // Rewritten every second with each destination's state (push_status.h); "" for none.
  std::string status_file;
  ringbuf::ReaderOptions reader;
  // One line per event, without a newline; called on the relay's threads, one at a time.
  std::function<void(std::string_view)> log;
  // Set from another thread or a signal handler: RunRelay() unpublishes and returns.
  const std::atomic<bool>* stop = nullptr;
  // Set (SIGHUP) to load the rules again with `load_rules`: streams being pushed lose the
  // destinations no rule gives any more (unpublished) and gain the new ones (from their
  // latest keyframe); streams that begin from then on follow the new rules. Rules that
  // fail to load are logged and the old ones stay. A stream that was publishing, and
  // matched no rule, when the rules changed is not looked at again until it publishes
  // anew. RunRelay() clears the flag.
  std::atomic<bool>* reload = nullptr;
  std::function<absl::StatusOr<std::vector<PushRule>>()> load_rules;
};

// Relays until *options.stop. Returns OK after a stop, or an error that waiting can't
// cure (the ring can't be read).
absl::Status RunRelay(const RelayOptions& options);

}  // namespace uringest::relay

#endif  // URINGEST_RELAY_RELAY_H_
