// `pm-ingestctl archive verify` beside a running daemon: the daemon's archive retention deletes the
// oldest files while verify, which lists the directory first and then reads every file (hours, on a
// large archive), is between the two. Such a file was "UNREADABLE: No such file or directory",
// counted as damage: ARCHIVE DAMAGED, exit 2, for an archive with nothing wrong in it.
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "daemon/archive_commands.h"
#include "ingest/archive/archive_format.h"
#include "ingest/archive/archive_writer.h"
#include "ingest/events/event_codec.h"
#include "ingest/log/wal.h"
#include "tests/support/daemon_harness.h"
#include "tests/support/forwarding_log_fs.h"
#include "tests/support/trade_event.h"

namespace pm::test {
namespace {

// Removes one file just before its first open, as retention would between the listing and the read.
class RemovesBeforeOpenFs : public wal::ForwardingLogFs {
 public:
  explicit RemovesBeforeOpenFs(std::string path) : ForwardingLogFs(wal::posix_log_fs()), path_(std::move(path)) {}
  std::error_code open(const std::string& path, wal::OpenMode mode, std::unique_ptr<wal::LogFile>& out) override {
    if (path == path_ && !removed_) {
      removed_ = true;
      std::filesystem::remove(path);
    }
    return ForwardingLogFs::open(path, mode, out);
  }

 private:
  const std::string path_;
  bool removed_ = false;
};

// An archive of segments 1..4 of a log of small segments, in `dir`/archive.
std::string make_archive(const std::string& dir) {
  const std::string wal_dir = dir + "/wal", archive_dir = dir + "/archive";
  wal::Options options;
  options.dir = wal_dir;
  options.segment_bytes = 4096;
  options.on_fatal = [](const std::string& m) { ADD_FAILURE() << "fatal: " << m; };
  auto log = wal::WriteAheadLog::open(options);
  for (int group = 0; log->durable().segment < 5; ++group) {
    std::vector<std::string> payloads;
    for (int i = 0; i < 10; ++i) encode_event(trade_event("verify", "t" + std::to_string(group * 10 + i)), payloads.emplace_back());
    std::vector<wal::Appended> appended;
    EXPECT_EQ(log->append(payloads, appended), wal::AppendStatus::Ok);
  }
  std::filesystem::create_directories(archive_dir);
  for (std::uint64_t segment = 1; segment <= 4; ++segment) archive::archive_segment(wal::posix_log_fs(), wal_dir, segment, archive_dir);
  return archive_dir;
}

// verify's output and exit code, reading through `fs`.
std::pair<std::string, int> verify(const std::string& archive_dir, wal::LogFs& fs) {
  ::testing::internal::CaptureStdout();
  const int code = ctl::run_archive_verify(archive_dir, fs);
  return {::testing::internal::GetCapturedStdout(), code};
}

TEST(ArchiveVerify, AnOldestFileRetentionRemovedAfterTheListingIsNotDamage) {
  const std::string dir = make_temp_dir("pm_archive_verify");
  const std::string archive_dir = make_archive(dir);
  RemovesBeforeOpenFs oldest_goes(archive_dir + "/" + archive::archive_file_name(1));
  const auto [out, code] = verify(archive_dir, oldest_goes);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find(archive::archive_file_name(1) + " removed since the listing"), std::string::npos) << out;
  EXPECT_EQ(out.find("DAMAGED"), std::string::npos) << out;
  EXPECT_NE(out.find("archive ok: 3 archived segments"), std::string::npos) << out;
  std::filesystem::remove_all(dir);
}

// Removes the archive files of `segments` when the file of segment `when_opened` is first opened:
// retention beside a running daemon deleting files while verify is between them.
class RemovesWhenOpenedFs : public wal::ForwardingLogFs {
 public:
  RemovesWhenOpenedFs(std::string dir, std::uint64_t when_opened, std::vector<std::uint64_t> segments)
      : ForwardingLogFs(wal::posix_log_fs()), dir_(std::move(dir)), when_opened_(when_opened), segments_(std::move(segments)) {}
  std::error_code open(const std::string& path, wal::OpenMode mode, std::unique_ptr<wal::LogFile>& out) override {
    if (path == dir_ + "/" + archive::archive_file_name(when_opened_) && !removed_) {
      removed_ = true;
      for (const std::uint64_t s : segments_) std::filesystem::remove(dir_ + "/" + archive::archive_file_name(s));
    }
    return ForwardingLogFs::open(path, mode, out);
  }

 private:
  const std::string dir_;
  const std::uint64_t when_opened_;
  const std::vector<std::uint64_t> segments_;
  bool removed_ = false;
};

// File 1 read, then 1 and 2 removed: file 3 was judged against file 1, "segments 2..2 are
// missing", ARCHIVE DAMAGED, exit 2, for a healthy archive whose oldest end was trimmed.
TEST(ArchiveVerify, TheTwoOldestFilesRetentionRemovedWhileVerifyRanAreNotAGap) {
  const std::string dir = make_temp_dir("pm_archive_verify_two");
  const std::string archive_dir = make_archive(dir);
  RemovesWhenOpenedFs two_oldest_go(archive_dir, 2, {1, 2});
  const auto [out, code] = verify(archive_dir, two_oldest_go);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find(archive::archive_file_name(2) + " removed since the listing"), std::string::npos) << out;
  EXPECT_NE(out.find("every file listed before it is gone too"), std::string::npos) << out;
  EXPECT_EQ(out.find("CHAIN BROKEN"), std::string::npos) << out;
  EXPECT_EQ(out.find("DAMAGED"), std::string::npos) << out;
  EXPECT_NE(out.find("archive ok: 3 archived segments"), std::string::npos) << out;
  std::filesystem::remove_all(dir);
}

// Files 2 and 3 removed while verify is between them, file 1 still there: not the oldest end
// trimmed but a gap (judged from the file read just before alone, it was called a front trim).
TEST(ArchiveVerify, TwoFilesRemovedFromTheMiddleWhileVerifyRanAreAGap) {
  const std::string dir = make_temp_dir("pm_archive_verify_two_middle");
  const std::string archive_dir = make_archive(dir);
  RemovesWhenOpenedFs two_middle_go(archive_dir, 3, {2, 3});
  const auto [out, code] = verify(archive_dir, two_middle_go);
  EXPECT_EQ(code, 2) << out;
  EXPECT_EQ(out.find("every file listed before it is gone too"), std::string::npos) << out;
  EXPECT_NE(out.find("CHAIN BROKEN"), std::string::npos) << out;
  std::filesystem::remove_all(dir);
}

// A file gone from the middle is not retention's: the chain between its neighbours is broken.
TEST(ArchiveVerify, AFileRemovedFromTheMiddleAfterTheListingStillBreaksTheChain) {
  const std::string dir = make_temp_dir("pm_archive_verify_middle");
  const std::string archive_dir = make_archive(dir);
  RemovesBeforeOpenFs middle_goes(archive_dir + "/" + archive::archive_file_name(2));
  const auto [out, code] = verify(archive_dir, middle_goes);
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("CHAIN BROKEN"), std::string::npos) << out;
  EXPECT_NE(out.find("ARCHIVE DAMAGED"), std::string::npos) << out;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace pm::test
