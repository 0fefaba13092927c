// directory_probe.h: one look at ring NAME's directory header, for a consumer waiting for
// a server (Reader::WaitForServer). It maps the header's page for the moment of the look,
// never the stream table, so it costs a few system calls: cheap enough to repeat every
// 100 ms for as long as a consumer waits.
//
//   std::optional<FileId> gone;  // a file whose server is known dead: not looked at again
//   absl::StatusOr<DirectoryLook> look = LookAtDirectory("live", absl::Milliseconds(500), gone);
//   if (look.ok() && look->sight == ServerSight::kGone) gone = look->file;
//
// Thread safety: a free function; any thread.

#ifndef URINGEST_RINGBUF_INTERNAL_DIRECTORY_PROBE_H_
#define URINGEST_RINGBUF_INTERNAL_DIRECTORY_PROBE_H_

#include <sys/types.h>

#include <optional>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace uringest::ringbuf::internal {

// The file a path named when it was looked at: a new server creates a new one.
struct FileId {
  dev_t dev = 0;
  ino_t ino = 0;
  bool operator==(const FileId&) const = default;
};

enum class ServerSight {
  // No directory, one still being created, or one whose server holds the ring's lock
  // but has not stamped a heartbeat lately (hung, or a new server about to replace it).
  kNotYet,
  // Live: a fresh heartbeat (within dead_after), and its server holds the lock.
  kLive,
  // Closed by a clean shutdown, or left by a server that died (the lock is free). This
  // file never comes back to life.
  kGone,
};

struct DirectoryLook {
  ServerSight sight = ServerSight::kNotYet;
  FileId file;  // valid unless there was no file
};

// Looks at /dev/shm/NAME.dir. A file equal to `known_gone` is reported kGone without
// being mapped. Errors other than a missing file (EACCES: not in the ring's group) are
// returned.
absl::StatusOr<DirectoryLook> LookAtDirectory(std::string_view name, absl::Duration dead_after,
                                              const std::optional<FileId>& known_gone);

}  // namespace uringest::ringbuf::internal

#endif  // URINGEST_RINGBUF_INTERNAL_DIRECTORY_PROBE_H_
