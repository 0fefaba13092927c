#include "consumer/flv_file.h"

#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "media/amf0.h"
#include "media/amf0_decoder.h"
#include "tests/rtmp_testing.h"

namespace uringest::consumer {
namespace {

namespace fs = std::filesystem;
using ringbuf::RecordType;
using testing::FlvTag;

std::vector<uint8_t> ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

bool IsConfig(const FlvTag& tag) {
  return (tag.type == 8 || tag.type == 9) && tag.body.size() > 1 && tag.body[1] == 0;
}

// The onMetaData ECMA array of a file's first tag.
media::amf0::Value Metadata(const std::vector<FlvTag>& tags) {
  EXPECT_EQ(tags.at(0).type, 18);
  absl::StatusOr<std::vector<media::amf0::Value>> values = media::amf0::DecodeAll(tags[0].body);
  EXPECT_TRUE(values.ok()) << values.status();
  EXPECT_EQ(values->size(), 2u);
  EXPECT_EQ(values->at(0), media::amf0::Value::String("onMetaData"));
  return values->at(1);
}

class FlvFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / absl::StrCat("flv-file-test-", getpid());
    fs::remove_all(dir_);
    source_ = testing::ParseFlvTags(testing::ReadTestData("source_testsrc.flv"));
    ASSERT_EQ(source_.at(0).type, 18);  // onMetaData first
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes the source's tags after its onMetaData until one fails; how many went.
  size_t WriteSource(FlvFile* file, absl::Status* error = nullptr) {
    size_t written = 0;
    for (size_t i = 1; i < source_.size(); ++i) {
      const FlvTag& tag = source_[i];
      absl::Status s = file->Write(RecordType(tag.type), tag.timestamp, tag.body, IsConfig(tag));
      if (!s.ok()) {
        if (error != nullptr) *error = s;
        break;
      }
      ++written;
    }
    return written;
  }

  fs::path dir_;
  std::vector<FlvTag> source_;
};

TEST_F(FlvFileTest, AFinishedFileHasTheSourcesTagsAndATrueDurationAndSize) {
  const std::string path = (dir_ / "live" / "cam" / "first.flv").string();
  auto file = FlvFile::Create(path, {.video = true}, source_[0].body);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_TRUE(fs::exists(path + ".part"));
  EXPECT_FALSE(fs::exists(path));
  ASSERT_EQ(WriteSource(file->get()), source_.size() - 1);
  EXPECT_EQ((*file)->frames(), source_.size() - 2);  // all but the sequence header
  absl::StatusOr<std::string> done = (*file)->Finish();
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(*done, path);
  EXPECT_FALSE(fs::exists(path + ".part"));

  const std::vector<uint8_t> bytes = ReadFile(path);
  const std::vector<FlvTag> tags = testing::ParseFlvTags(bytes);
  ASSERT_EQ(tags.size(), source_.size());
  for (size_t i = 1; i < tags.size(); ++i) {
    EXPECT_EQ(tags[i].type, source_[i].type) << i;
    EXPECT_EQ(tags[i].timestamp, source_[i].timestamp) << i;
    EXPECT_EQ(tags[i].body, source_[i].body) << i;
  }
  const media::amf0::Value meta = Metadata(tags);
  EXPECT_DOUBLE_EQ(meta.FindNumber("duration", -1), source_.back().timestamp / 1000.0);
  EXPECT_EQ(meta.FindNumber("filesize", -1), double(bytes.size()));
  EXPECT_EQ(meta.properties().at(0).first, "duration");
  // The publisher's own properties are kept.
  EXPECT_EQ(meta.FindNumber("width", -1), Metadata(source_).FindNumber("width", -2));
  EXPECT_EQ(meta.FindNumber("framerate", -1), Metadata(source_).FindNumber("framerate", -2));
}

TEST_F(FlvFileTest, NothingIsOverwritten) {
  const std::string path = (dir_ / "same.flv").string();
  auto first = FlvFile::Create(path, {.video = true}, {});
  auto second = FlvFile::Create(path, {.video = true}, {});  // first is still .part
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ((*second)->path(), (dir_ / "same-1.flv").string());
  ASSERT_TRUE((*first)->Finish().ok());
  ASSERT_TRUE((*second)->Finish().ok());
  auto third = FlvFile::Create(path, {.video = true}, {});
  ASSERT_TRUE(third.ok());
  EXPECT_EQ((*third)->path(), (dir_ / "same-2.flv").string());
  // Without a publisher's onMetaData the file still has duration and filesize.
  ASSERT_TRUE((*third)->Finish().ok());
  const media::amf0::Value meta = Metadata(testing::ParseFlvTags(ReadFile((*third)->path())));
  EXPECT_EQ(meta.FindNumber("duration", -1), 0);
  EXPECT_EQ(meta.FindNumber("filesize", -1), double(fs::file_size((*third)->path())));
}

// A file size limit (RLIMIT_FSIZE) makes writes fail as a full disk does.
TEST_F(FlvFileTest, AFailedWriteLeavesAWholeFileOfTheTagsBeforeIt) {
  const std::string path = (dir_ / "full.flv").string();
  auto file = FlvFile::Create(path, {.video = true}, source_[0].body);
  ASSERT_TRUE(file.ok()) << file.status();
  struct sigaction ignore = {}, old = {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGXFSZ, &ignore, &old), 0);
  rlimit limit, saved;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  limit = {.rlim_cur = 20000, .rlim_max = saved.rlim_max};
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limit), 0);
  absl::Status error;
  const size_t written = WriteSource(file->get(), &error);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &saved), 0);
  sigaction(SIGXFSZ, &old, nullptr);

  ASSERT_LT(written, source_.size() - 1);
  EXPECT_NE(error.message().find(path + ".part"), std::string::npos) << error;
  EXPECT_NE(error.message().find("File too large"), std::string::npos) << error;
  EXPECT_TRUE((*file)->failed());
  EXPECT_FALSE((*file)->Write(RecordType::kVideo, 5000, source_[3].body, false).ok());
  absl::StatusOr<std::string> done = (*file)->Finish();
  ASSERT_TRUE(done.ok()) << done.status();

  const std::vector<uint8_t> bytes = ReadFile(path);
  EXPECT_LE(bytes.size(), 20000u);
  const std::vector<FlvTag> tags = testing::ParseFlvTags(bytes);  // aborts on a torn tag
  ASSERT_EQ(tags.size(), written + 1);
  for (size_t i = 1; i < tags.size(); ++i) EXPECT_EQ(tags[i].body, source_[i].body) << i;
  const media::amf0::Value meta = Metadata(tags);
  EXPECT_EQ(meta.FindNumber("filesize", -1), double(bytes.size()));
  EXPECT_DOUBLE_EQ(meta.FindNumber("duration", -1), tags.back().timestamp / 1000.0);
}

TEST_F(FlvFileTest, RecoverFinishesWhatADeadWriterLeftAndRefusesALiveOne) {
  const std::string path = (dir_ / "dead.flv").string();
  const media::amf0::Value::Property extra("uringest.stream",
                                           media::amf0::Value::String("live/cam"));
  auto file = FlvFile::Create(path, {.video = true}, source_[0].body, {&extra, 1});
  ASSERT_TRUE(file.ok()) << file.status();
  for (size_t i = 1; i < 20; ++i) {
    const FlvTag& tag = source_[i];
    ASSERT_TRUE((*file)->Write(RecordType(tag.type), tag.timestamp, tag.body, IsConfig(tag)).ok());
  }
  const std::string part = (*file)->part_path();
  EXPECT_EQ(FlvFile::Recover(part).status().code(), absl::StatusCode::kFailedPrecondition);
  file->reset();  // the writer dies: its .part stays, unfinished
  {
    std::ofstream torn(part, std::ios::binary | std::ios::app);
    torn << std::string("\x09\x00\x10\x00", 4) << std::string(16, 'x');  // a torn tag
  }
  absl::StatusOr<RecoveredFile> recovered = FlvFile::Recover(part);
  ASSERT_TRUE(recovered.ok()) << recovered.status();
  EXPECT_EQ(recovered->path, path);
  EXPECT_EQ(recovered->cut, 20u);
  EXPECT_FALSE(fs::exists(part));
  const std::vector<uint8_t> bytes = ReadFile(path);
  EXPECT_EQ(recovered->bytes, bytes.size());
  const std::vector<FlvTag> tags = testing::ParseFlvTags(bytes);
  ASSERT_EQ(tags.size(), 20u);
  EXPECT_EQ(recovered->duration_ms, source_[19].timestamp);
  const media::amf0::Value meta = Metadata(tags);
  EXPECT_DOUBLE_EQ(meta.FindNumber("duration", -1), source_[19].timestamp / 1000.0);
  EXPECT_EQ(meta.FindNumber("filesize", -1), double(bytes.size()));
  EXPECT_EQ(meta.FindString("uringest.stream"), "live/cam");
  EXPECT_EQ(recovered->metadata.FindString("uringest.stream"), "live/cam");
  // A .part file not of ours is left alone.
  const std::string other = (dir_ / "other.flv.part").string();
  std::ofstream(other, std::ios::binary) << std::string(100, 'y');
  EXPECT_FALSE(FlvFile::Recover(other).ok());
  EXPECT_TRUE(fs::exists(other));
}

// ffprobe (Debian's ffmpeg) reads a finished file without an error and takes its
// duration from it.
TEST_F(FlvFileTest, FfprobeReadsAFinishedFile) {
  if (system("command -v ffprobe >/dev/null 2>&1") != 0) GTEST_SKIP() << "ffprobe not installed";
  const std::string path = (dir_ / "probe.flv").string();
  auto file = FlvFile::Create(path, {.video = true}, source_[0].body);
  ASSERT_TRUE(file.ok()) << file.status();
  WriteSource(file->get());
  ASSERT_TRUE((*file)->Finish().ok());
  const std::string command =
      absl::StrCat("ffprobe -v error -show_entries format=duration -of csv=p=0 '", path, "' 2>&1");
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  char buffer[256];
  while (fgets(buffer, sizeof(buffer), pipe) != nullptr) out += buffer;
  EXPECT_EQ(pclose(pipe), 0) << out;
  // Only the duration: no error lines. It is within a frame of the metadata's.
  double duration = 0;
  ASSERT_EQ(sscanf(out.c_str(), "%lf", &duration), 1) << out;
  EXPECT_EQ(out.find('\n'), out.size() - 1) << out;
  EXPECT_NEAR(duration, source_.back().timestamp / 1000.0, 0.05) << out;
}

}  // namespace
}  // namespace uringest::consumer
