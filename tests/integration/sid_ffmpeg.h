// sid_ffmpeg.h: the current ffmpeg (Debian sid's, 9.0 when this was written) for the
// Enhanced RTMP tests, in the chroot that tests/sid_ffmpeg.sh builds and checks (Debian
// 12's ffmpeg 5.1 predates Enhanced RTMP). Its ffmpeg and ffprobe run chrooted, so the
// files they read and write live in a folder inside the chroot; they reach uringestd on
// 127.0.0.1 like any other publisher. And what ffprobe says of a file's packets, to be
// compared packet for packet.
//
//   REQUIRE_SID_FFMPEG(sid);  // in a test body: skips, saying why, if there is none
//   ChrootDir dir(*sid);
//   RunCommand(sid->Command("ffmpeg", {"-i", dir.Inside("in.flv"), ...}), kProcessTimeout);
//   std::vector<Packet> packets = sid->Packets(dir.Inside("out.flv"));

#ifndef URINGEST_TESTS_INTEGRATION_SID_FFMPEG_H_
#define URINGEST_TESTS_INTEGRATION_SID_FFMPEG_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace uringest::testing {

// One packet as ffprobe reports it (-show_entries packet=...).
struct Packet {
  int stream = -1;
  std::string pts;  // a number, or "N/A"
  std::string dts;
  int64_t size = 0;
  std::string flags;  // "K__": keyframe
  std::string md5;    // of the data
  // ffmpeg's FLV reader makes an Enhanced RTMP MultichannelConfig into a packet without
  // time or data: one a file has wherever it has such a configuration packet.
  bool empty() const { return size == 0 && pts == "N/A"; }
  bool operator==(const Packet&) const = default;
};
std::string ToString(const Packet& p);
inline void PrintTo(const Packet& p, std::ostream* out) { *out << ToString(p); }

class SidFfmpeg {
 public:
  // The chroot at $URINGEST_FFMPEG9_ROOT (default /var/cache/uringest/ffmpeg-sid) if
  // tests/sid_ffmpeg.sh made it ready; else one line saying why not (from
  // $URINGEST_FFMPEG9_SKIP when ./uringest.sh test could not build it).
  static absl::StatusOr<SidFfmpeg> Find();

  const std::string& root() const { return root_; }
  const std::string& version() const { return version_; }
  // chroot ROOT /usr/bin/TOOL ARGS...
  std::vector<std::string> Command(std::string_view tool, std::vector<std::string> args) const;
  // Every packet of the file at `path` (inside the chroot), in the order read; empty if
  // ffprobe fails (a test failure is recorded).
  std::vector<Packet> Packets(const std::string& path) const;
  // "index:codec_name" for each stream of the file, in index order.
  std::vector<std::string> Streams(const std::string& path) const;

 private:
  SidFfmpeg(std::string root, std::string version)
      : root_(std::move(root)), version_(std::move(version)) {}
  std::string Probe(std::vector<std::string> args) const;

  std::string root_;
  std::string version_;
};

// In a test body: `name` is the SidFfmpeg, or the test is skipped with the reason.
#define REQUIRE_SID_FFMPEG(name)                                                                \
  absl::StatusOr<::uringest::testing::SidFfmpeg> name = ::uringest::testing::SidFfmpeg::Find(); \
  if (!name.ok()) GTEST_SKIP() << name.status().message()

// A fresh folder inside the chroot (under its /tmp), removed with its files when it goes.
class ChrootDir {
 public:
  explicit ChrootDir(const SidFfmpeg& sid);
  ~ChrootDir();
  ChrootDir(const ChrootDir&) = delete;
  ChrootDir& operator=(const ChrootDir&) = delete;
  std::string Inside(std::string_view file) const;   // the path chrooted tools see
  std::string Outside(std::string_view file) const;  // the same file, from here

 private:
  std::string root_;
  std::string inside_;
};

}  // namespace uringest::testing

#endif  // URINGEST_TESTS_INTEGRATION_SID_FFMPEG_H_
