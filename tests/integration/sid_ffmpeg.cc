#include "tests/integration/sid_ffmpeg.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "tests/integration/ingest_harness.h"
#include "tests/integration/process.h"

namespace uringest::testing {
namespace {

namespace fs = std::filesystem;

constexpr char kDefaultRoot[] = "/var/cache/uringest/ffmpeg-sid";
constexpr char kReadyStamp[] = "/.uringest-ready";  // tests/sid_ffmpeg.sh writes it last

std::atomic<int> next_dir{0};

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

// "stream_index=0|pts=80|dts=0|size=8892|flags=K__|data_hash=MD5:fc0b..." -> Packet.
Packet ParsePacket(absl::string_view line) {
  Packet p;
  for (absl::string_view field : absl::StrSplit(line, '|')) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(field, '=');
    if (kv.first == "stream_index") {
      (void)absl::SimpleAtoi(kv.second, &p.stream);
    } else if (kv.first == "pts") {
      p.pts = std::string(kv.second);
    } else if (kv.first == "dts") {
      p.dts = std::string(kv.second);
    } else if (kv.first == "size") {
      (void)absl::SimpleAtoi(kv.second, &p.size);
    } else if (kv.first == "flags") {
      p.flags = std::string(kv.second);
    } else if (kv.first == "data_hash") {
      p.md5 = std::string(kv.second);
    }
  }
  return p;
}

}  // namespace

std::string ToString(const Packet& p) {
  return absl::StrCat("stream ", p.stream, " pts ", p.pts, " dts ", p.dts, " size ", p.size, " ",
                      p.flags, " ", p.md5);
}

absl::StatusOr<SidFfmpeg> SidFfmpeg::Find() {
  if (std::string why = Env("URINGEST_FFMPEG9_SKIP"); !why.empty()) {
    return absl::UnavailableError(why);
  }
  std::string root = Env("URINGEST_FFMPEG9_ROOT");
  if (root.empty()) root = kDefaultRoot;
  std::string version = ReadFile(root + kReadyStamp);
  if (version.empty()) {
    return absl::UnavailableError(
        absl::StrCat("sid ffmpeg unavailable: no chroot at ", root,
                     " (tests/sid_ffmpeg.sh builds it; ./uringest.sh test runs that)"));
  }
  if (geteuid() != 0) {
    return absl::UnavailableError("sid ffmpeg unavailable: entering its chroot needs root");
  }
  return SidFfmpeg(std::move(root), std::string(absl::StripTrailingAsciiWhitespace(version)));
}

std::vector<std::string> SidFfmpeg::Command(std::string_view tool,
                                            std::vector<std::string> args) const {
  std::vector<std::string> command = {"/usr/sbin/chroot", root_, "/usr/bin/" + std::string(tool)};
  command.insert(command.end(), std::make_move_iterator(args.begin()),
                 std::make_move_iterator(args.end()));
  return command;
}

std::string SidFfmpeg::Probe(std::vector<std::string> args) const {
  ChrootDir out(*this);
  args.insert(args.begin(), {"-v", "error"});
  const int code = RunCommand(Command("ffprobe", std::move(args)), kProcessTimeout,
                              out.Outside("probe.txt"), out.Outside("probe.err"));
  EXPECT_EQ(code, 0) << "ffprobe: " << ReadFile(out.Outside("probe.err"));
  return code == 0 ? ReadFile(out.Outside("probe.txt")) : "";
}

std::vector<Packet> SidFfmpeg::Packets(const std::string& path) const {
  std::vector<Packet> packets;
  const std::string text =
      Probe({"-show_entries", "packet=stream_index,pts,dts,size,flags,data_hash", "-show_data_hash",
             "md5", "-of", "compact=p=0", path});
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    packets.push_back(ParsePacket(line));
  }
  return packets;
}

std::vector<std::string> SidFfmpeg::Streams(const std::string& path) const {
  const std::string text =
      Probe({"-show_entries", "stream=index,codec_name", "-of", "csv=p=0:s=\\:", path});
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

ChrootDir::ChrootDir(const SidFfmpeg& sid)
    : root_(sid.root()), inside_(absl::StrCat("/tmp/uringest-it-", getpid(), "-", next_dir++)) {
  fs::create_directories(root_ + inside_);
}

ChrootDir::~ChrootDir() {
  std::error_code ignored;
  if (!::testing::Test::HasFailure()) fs::remove_all(root_ + inside_, ignored);
}

std::string ChrootDir::Inside(std::string_view file) const {
  return absl::StrCat(inside_, "/", std::string(file));
}

std::string ChrootDir::Outside(std::string_view file) const { return root_ + Inside(file); }

}  // namespace uringest::testing
