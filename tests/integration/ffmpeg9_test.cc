// Enhanced RTMP as a current encoder sends it: the ffmpeg of Debian sid (9.0 when this was
// written; tests/sid_ffmpeg.sh keeps it in a chroot) publishes HEVC, AV1, VP9, Opus, FLAC
// and a multitrack stream (two HEVC renditions, two AAC tracks) to the real uringestd,
// paced (-re) and unpaced. The real uringest-cat writes each stream twice: live (--wait,
// started before the publish) and as a late joiner (started mid-stream). For each:
//  - uringest-cat exits 0 and reports no loss;
//  - the same ffmpeg reads the live file back with every packet of every stream equal to
//    the source's: stream, pts, dts, size, flags and MD5 of the data;
//  - the late joiner's file holds the source's packets from a keyframe on, the same but
//    for one time offset, after the configuration packets it was given first;
//  - uringest-stat --json, while the stream publishes, names its codecs and tracks.
// The publisher reads the source from a pipe that the test holds after 60% of the file,
// so that the late joiner joins mid-stream however fast the publish is.
// Skipped, with the reason, where the chroot is not there (no network when it was built).

#include <signal.h>

#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "ringbuf/reader.h"
#include "tests/integration/ingest_harness.h"
#include "tests/integration/process.h"
#include "tests/integration/sid_ffmpeg.h"

namespace uringest::testing {
namespace {

namespace fs = std::filesystem;

// 3 s at 25 fps with a keyframe every second, so that a late joiner starts at a keyframe
// of the second or third GOP.
constexpr char kVideo[] = "testsrc=size=320x240:rate=25";
constexpr char kSmallVideo[] = "testsrc=size=160x120:rate=25";
constexpr char kTone[] = "sine=frequency=440:sample_rate=48000";
constexpr char kOtherTone[] = "sine=frequency=880:sample_rate=44100";
constexpr int kSeconds = 3;
// The share of the source the publisher gets before the late joiner starts, and how far
// into the stream (ms) the ring must be by then.
constexpr double kFirstPart = 0.6;
constexpr int64_t kJoinAfterMs = 1200;

struct Track {
  std::string type;  // "video", "audio"
  int id;
  std::string codec;  // as uringest-stat names it
};

struct Case {
  std::string name;
  std::vector<std::string> encode;  // ffmpeg's inputs and codecs
  std::string video_codec;          // uringest-stat's names for track 0
  std::string audio_codec;
  std::vector<Track> tracks;  // the tracks beyond track 0
};

void PrintTo(const Case& c, std::ostream* out) { *out << c.name; }

std::vector<std::string> Lavfi(std::vector<std::string> sources) {
  std::vector<std::string> args;
  for (std::string& s : sources) args.insert(args.end(), {"-f", "lavfi", "-i", std::move(s)});
  return args;
}

std::vector<std::string> Join(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// x265 without its thread pools: it can't read the CPU topology in the chroot.
const std::vector<std::string> kHevc = {"-c:v",         "libx265",
                                        "-preset",      "ultrafast",
                                        "-x265-params", "log-level=error:keyint=25:pools=none"};

const std::vector<Case>& Cases() {
  static const std::vector<Case> cases = {
      {"HevcAac", Join(Join(Lavfi({kVideo, kTone}), kHevc), {"-c:a", "aac"}), "HEVC", "AAC", {}},
      {"HevcOpus",
       Join(Join(Lavfi({kVideo, kTone}), kHevc), {"-c:a", "libopus"}),
       "HEVC",
       "Opus",
       {}},
      {"Av1Aac",
       Join(Lavfi({kVideo, kTone}), {"-c:v", "libsvtav1", "-preset", "12", "-g", "25",
                                     "-svtav1-params", "lp=1", "-c:a", "aac"}),
       "AV1",
       "AAC",
       {}},
      {"Vp9",
       Join(Lavfi({kVideo}),
            {"-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-g", "25"}),
       "VP9",
       "",
       {}},
      {"Flac", Join(Lavfi({kTone}), {"-c:a", "flac"}), "", "FLAC", {}},
      // Two HEVC renditions and two AAC tracks in one FLV: ffmpeg sends track 0 as a
      // single-track message and track 1 as OneTrack Multitrack ones.
      {"Multitrack",
       Join(Join(Lavfi({kVideo, kSmallVideo, kTone, kOtherTone}),
                 {"-map", "0", "-map", "1", "-map", "2", "-map", "3"}),
            Join(kHevc, {"-c:a", "aac"})),
       "HEVC",
       "AAC",
       {{"video", 1, "HEVC"}, {"audio", 1, "AAC"}}},
  };
  return cases;
}

// The case's source, made once for every test process into the chroot's /var/tmp: the
// encoder's output, copied once more into FLV written to a pipe, which is what a publisher
// of it sends, tag for tag (an encoder's FLV may end with configuration packets that a
// copy doesn't repeat, such as FLAC's final STREAMINFO). Returns its path inside the
// chroot, or "" (a failure is recorded).
std::string Source(const SidFfmpeg& sid, const Case& c) {
  const std::string inside = absl::StrCat("/var/tmp/uringest-sources/", c.name, ".flv");
  const std::string outside = sid.root() + inside;
  if (fs::exists(outside)) return inside;
  fs::create_directories(fs::path(outside).parent_path());
  const std::string encoded = absl::StrCat(inside, ".", getpid(), ".encoded.flv");
  const std::string partial = absl::StrCat(outside, ".", getpid());
  const std::vector<std::string> quiet = {"-hide_banner", "-loglevel", "error", "-nostdin", "-y"};
  const std::vector<std::vector<std::string>> steps = {
      Join(Join(quiet, c.encode), {"-t", absl::StrCat(kSeconds), "-f", "flv", encoded}),
      Join(quiet, {"-i", encoded, "-map", "0", "-c", "copy", "-f", "flv", "pipe:1"})};
  for (const std::vector<std::string>& step : steps) {
    const int code =
        RunCommand(sid.Command("ffmpeg", step), kProcessTimeout, partial, partial + ".log");
    EXPECT_EQ(code, 0) << c.name << ": " << ReadFile(partial + ".log");
    if (code != 0) return "";
  }
  fs::rename(partial, outside);  // whole or not at all, for the other test processes
  fs::remove(partial + ".log");
  fs::remove(sid.root() + encoded);
  return inside;
}

// What uringest-stat says of the stream in its JSON: its object, from its name to the
// end of its track list.
std::string StatOfStream(const std::string& json, const std::string& name) {
  const size_t begin = json.find(absl::StrCat("{\"name\":\"", name, "\""));
  if (begin == std::string::npos) return "";
  const size_t end = json.find("]}", begin);
  return json.substr(begin, end == std::string::npos ? std::string::npos : end + 2 - begin);
}

std::string TracksJson(const std::vector<Track>& tracks) {
  std::vector<std::string> items;
  for (const Track& t : tracks) {
    items.push_back(absl::StrCat("{\"type\":\"", t.type, "\",\"track_id\":", t.id, ",\"codec\":\"",
                                 t.codec, "\"}"));
  }
  return absl::StrCat("\"tracks\":[", absl::StrJoin(items, ","), "]}");
}

std::vector<std::vector<Packet>> ByStream(const std::vector<Packet>& packets) {
  std::vector<std::vector<Packet>> streams;
  for (const Packet& p : packets) {
    if (p.stream < 0) continue;
    if (size_t(p.stream) >= streams.size()) streams.resize(p.stream + 1);
    streams[p.stream].push_back(p);
  }
  return streams;
}

size_t LeadingEmpty(const std::vector<Packet>& packets) {
  size_t n = 0;
  while (n < packets.size() && packets[n].empty()) ++n;
  return n;
}

// A late joiner's packets of one stream: the configuration packets' empty packets that
// the source starts with too, then the source's last packets, each the same but for
// `*offset` ms earlier (the same for every stream: set by the first one compared).
void ExpectSuffix(const std::vector<Packet>& source, const std::vector<Packet>& late,
                  std::optional<int64_t>* offset) {
  const size_t empty = LeadingEmpty(late);
  EXPECT_EQ(empty, LeadingEmpty(source)) << "empty packets before the first frame";
  const size_t n = late.size() - empty;
  ASSERT_LE(n + empty, source.size());
  ASSERT_LT(n, source.size() - LeadingEmpty(source)) << "the late joiner started at the start";
  for (size_t i = 0; i < n; ++i) {
    const Packet& want = source[source.size() - n + i];
    Packet got = late[empty + i];
    SCOPED_TRACE(absl::StrCat("packet ", i, " from the end ", n - i, ": ", ToString(got)));
    if (!want.empty()) {
      int64_t dts, pts;
      ASSERT_TRUE(absl::SimpleAtoi(got.dts, &dts) && absl::SimpleAtoi(got.pts, &pts));
      if (!offset->has_value()) *offset = std::stoll(want.dts) - dts;
      got.dts = absl::StrCat(dts + **offset);
      got.pts = absl::StrCat(pts + **offset);
    }
    ASSERT_EQ(got, want) << "want " << ToString(want);
  }
}

class Ffmpeg9Test : public ::testing::TestWithParam<std::tuple<Case, bool>> {
 protected:
  static void SetUpTestSuite() { signal(SIGPIPE, SIG_IGN); }  // a publisher that died

  const Case& test_case() const { return std::get<0>(GetParam()); }
  bool paced() const { return std::get<1>(GetParam()); }

  Process StartPublisher(const SidFfmpeg& sid, const std::string& url) {
    std::vector<std::string> args = {"-hide_banner", "-loglevel", "error"};
    if (paced()) args.push_back("-re");
    args = Join(args, {"-analyzeduration", "1M", "-f", "flv", "-i", "pipe:0", "-map", "0", "-c",
                       "copy", "-f", "flv", url});
    return Process::Spawn(sid.Command("ffmpeg", args),
                          {.stdin_pipe = true, .stderr_path = scratch_.Path("publisher.log")});
  }

  // Waits until the ring holds `name` past kJoinAfterMs.
  bool AwaitMidStream(const std::string& ring, const std::string& name) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    auto reader = ringbuf::Reader::Open(ring);
    if (!reader.ok()) return false;
    while (absl::Now() < deadline) {
      std::optional<ringbuf::StreamInfo> info = (*reader)->FindStream(name);
      if (info && info->last_dts >= kJoinAfterMs && info->latest_keyframe) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  }

  // Waits until uringest-cat's log says it follows the stream.
  bool AwaitFollowing(const std::string& log) {
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (ReadFile(log).find("following") == std::string::npos) {
      if (absl::Now() >= deadline) return false;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return true;
  }

  void ExpectStat(const std::string& ring, const std::string& name) {
    const std::string json = scratch_.Path("stat.json");
    ASSERT_EQ(RunCommand({ToolPath("uringest-stat"), "--ring", ring, "--json", "--interval", "0"},
                         kProcessTimeout, json),
              0);
    const std::string stat = StatOfStream(ReadFile(json), name);
    const Case& c = test_case();
    EXPECT_NE(stat.find(absl::StrCat("\"video_codec\":\"", c.video_codec, "\"")), std::string::npos)
        << stat;
    EXPECT_NE(stat.find(absl::StrCat("\"audio_codec\":\"", c.audio_codec, "\"")), std::string::npos)
        << stat;
    EXPECT_NE(stat.find(TracksJson(c.tracks)), std::string::npos) << stat;
  }

  void ExpectCatDone(Process& cat, const std::string& log) {
    EXPECT_EQ(cat.Wait(kProcessTimeout), 0) << ReadFile(log);
    EXPECT_EQ(ReadFile(log).find("lost"), std::string::npos) << ReadFile(log);
  }

  ScratchDir scratch_;
};

TEST_P(Ffmpeg9Test, EveryPacketComesOutLiveAndForALateJoiner) {
  REQUIRE_SID_FFMPEG(sid);
  const std::string source = Source(*sid, test_case());
  ASSERT_FALSE(source.empty());
  ChrootDir files(*sid);
  std::unique_ptr<IngestServer> server = IngestServer::Start(1, scratch_);
  ASSERT_NE(server, nullptr);
  const std::string name = "live/" + test_case().name;
  const std::string live_log = scratch_.Path("live.log"), late_log = scratch_.Path("late.log");
  Process live = StartCat(server->ring(), name, files.Outside("live.flv"), live_log);
  ASSERT_TRUE(AwaitDirectoryMapped(live.pid(), server->ring()));

  const std::string bytes = ReadFile(sid->root() + source);
  const size_t first = size_t(bytes.size() * kFirstPart);
  auto part = [&](size_t from, size_t to) {
    return std::span(reinterpret_cast<const uint8_t*>(bytes.data()) + from, to - from);
  };
  Process publisher = StartPublisher(*sid, server->Url(name));
  ASSERT_TRUE(publisher.WriteStdin(part(0, first)));
  ASSERT_TRUE(AwaitMidStream(server->ring(), name)) << ReadFile(scratch_.Path("publisher.log"));
  ExpectStat(server->ring(), name);
  Process late = Process::Spawn(
      {ToolPath("uringest-cat"), "--ring", server->ring(), name, "-o", files.Outside("late.flv")},
      {.stderr_path = late_log});
  ASSERT_TRUE(AwaitFollowing(late_log)) << ReadFile(late_log);
  ASSERT_TRUE(publisher.WriteStdin(part(first, bytes.size())));
  publisher.CloseStdin();
  EXPECT_EQ(publisher.Wait(kProcessTimeout), 0) << ReadFile(scratch_.Path("publisher.log"));
  ExpectCatDone(live, live_log);
  ExpectCatDone(late, late_log);

  EXPECT_EQ(sid->Streams(files.Inside("live.flv")), sid->Streams(source));
  const std::vector<Packet> want = sid->Packets(source);
  ASSERT_FALSE(want.empty());
  EXPECT_EQ(sid->Packets(files.Inside("live.flv")), want);  // gtest prints the first diff
  const std::vector<std::vector<Packet>> source_streams = ByStream(want);
  const std::vector<std::vector<Packet>> late_streams =
      ByStream(sid->Packets(files.Inside("late.flv")));
  ASSERT_EQ(late_streams.size(), source_streams.size());
  std::optional<int64_t> offset;
  for (size_t s = 0; s < late_streams.size(); ++s) {
    SCOPED_TRACE(absl::StrCat("late joiner, stream ", s));
    ExpectSuffix(source_streams[s], late_streams[s], &offset);
  }
}

std::string CaseName(const ::testing::TestParamInfo<std::tuple<Case, bool>>& info) {
  return absl::StrCat(std::get<0>(info.param).name, std::get<1>(info.param) ? "Paced" : "Unpaced");
}

INSTANTIATE_TEST_SUITE_P(Codecs, Ffmpeg9Test,
                         ::testing::Combine(::testing::ValuesIn(Cases()), ::testing::Bool()),
                         CaseName);

}  // namespace
}  // namespace uringest::testing
