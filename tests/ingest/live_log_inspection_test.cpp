// `pm-ingestctl wal-verify` and `status --wal-dir` read a log a daemon is appending to (README:
// "safe while the daemon runs"). A daemon that rewrites its state file, or removes an applied
// segment, while the log is read must not make a healthy log look damaged: the printed advice
// (move the directory away, reset the checkpoint) is harmful on a live log.
// In process: a real log in a temporary directory that holds its lock, as the daemon does.
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "daemon/log_health.h"
#include "daemon/log_inspection.h"
#include "ingest/events/event_codec.h"
#include "ingest/log/wal.h"
#include "ingest/log/wal_corruption.h"
#include "ingest/log/wal_directory.h"
#include "ingest/log/wal_state.h"
#include "tests/support/daemon_harness.h"
#include "tests/support/forwarding_log_fs.h"
#include "tests/support/refusing_open_fs.h"

namespace pm::test {
namespace {

std::string trade_payload(int i) {
  Event e;
  e.received_ms = 1'700'000'000'000 + i;
  TradeEvent t;
  t.condition_id = "cond";
  t.trade_id = "trade-" + std::to_string(i);
  t.price = 0.25;
  t.size = 10;
  t.side = "BUY";
  t.timestamp_ms = e.received_ms;
  e.body = t;
  std::string out;
  encode_event(e, out);
  return out;
}

// Runs `action` once, just before the `nth` open of `path` (what the daemon did meanwhile), or
// just after it when `after_the_open`.
class ActsBeforeAnOpen : public wal::ForwardingLogFs {
 public:
  ActsBeforeAnOpen(std::string path, int nth, std::function<void()> action, bool after_the_open = false)
      : ForwardingLogFs(wal::posix_log_fs()), path_(std::move(path)), nth_(nth), action_(std::move(action)), after_(after_the_open) {}
  std::error_code open(const std::string& path, wal::OpenMode mode, std::unique_ptr<wal::LogFile>& out) override {
    const bool now = path == path_ && ++opens_ == nth_;
    if (now && !after_) action_();
    const std::error_code ec = ForwardingLogFs::open(path, mode, out);
    if (now && after_) action_();
    return ec;
  }
  bool acted() const { return opens_ >= nth_; }

 private:
  const std::string path_;
  const int nth_;
  const std::function<void()> action_;
  const bool after_;
  int opens_ = 0;
};

class LiveLogInspection : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = make_temp_dir("pm_live_inspection") + "/wal";
    wal::Options o;
    o.dir = dir_;
    o.segment_bytes = 4096;
    o.on_fatal = [](const std::string& m) { FAIL() << m; };
    log_ = wal::WriteAheadLog::open(o);
    append(0, 150);  // several segments
    ASSERT_GE(log_->durable().segment, 3u);
    ASSERT_TRUE(log_->persist_applied());  // the state's ceiling: everything so far
  }
  void TearDown() override {
    log_.reset();
    std::filesystem::remove_all(std::filesystem::path(dir_).parent_path());
  }
  void append(int first, int count) {
    std::vector<std::string> payloads;
    for (int i = first; i < first + count; ++i) payloads.push_back(trade_payload(i));
    std::vector<wal::Appended> out;
    for (const std::string& p : payloads) ASSERT_EQ(log_->append(std::vector<std::string>{p}, out), wal::AppendStatus::Ok);
  }

  std::string dir_;
  std::unique_ptr<wal::WriteAheadLog> log_;
};

// The daemon syncs more groups and raises its state's ceiling while the newest segment is being
// scanned: read after the scan, that ceiling was past the end the scan found, and the verdict was
// "records were lost".
TEST_F(LiveLogInspection, AStateFileRaisedWhileTheLogIsReadIsNotLostRecords) {
  const std::uint64_t before = log_->durable().lsn;
  ActsBeforeAnOpen fs(wal::path_in(dir_, wal::kStateFileName), 1, [&] {
    append(1000, 5);
    ASSERT_TRUE(log_->persist_applied());
  });
  const ctl::LogVerdict v = ctl::verify_log(dir_, {}, fs);
  ASSERT_TRUE(fs.acted());
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_GE(v.records, before);
}

// The daemon removes an applied segment between the listing and the read of it: tried again, the
// log reads from its new oldest segment.
TEST_F(LiveLogInspection, AnAppliedSegmentRemovedWhileTheLogIsReadIsReadAgainNotDamage) {
  const std::string oldest = wal::segment_path(dir_, log_->oldest().segment);
  // Open 1: the listing's header read; open 2: the reader's.
  ActsBeforeAnOpen fs(oldest, 2, [&] { std::filesystem::remove(oldest); });
  const ctl::LogVerdict v = ctl::verify_log(dir_, {}, fs);
  ASSERT_TRUE(fs.acted());
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_GT(v.records, 0u);
}

// A dump that already printed events is not read again (it would print them twice): it says
// what happened and to run it again.
TEST_F(LiveLogInspection, ADumpCutByARemovedSegmentSaysToRunItAgain) {
  const std::uint64_t second = log_->oldest().segment + 1;
  const std::string path = wal::segment_path(dir_, second);
  ActsBeforeAnOpen fs(path, 1, [&] { std::filesystem::remove(path); });
  std::uint64_t printed = 0;
  const ctl::LogVerdict v = ctl::verify_log(dir_, [&](const wal::Record&, const Event&) { return ++printed > 0; }, fs);
  ASSERT_TRUE(fs.acted());
  EXPECT_FALSE(v.ok);
  EXPECT_TRUE(v.cut_by_a_removal) << "wal-dump exits 1 without the advice to move the log away";
  EXPECT_GT(printed, 0u);
  EXPECT_NE(v.problem.find("a daemon holds this log and may have removed an applied segment while it was read: run the command again"),
            std::string::npos)
      << v.problem;
}

// A dump from a later LSN printed nothing before the removal cut the read: it is read again, as a
// verification is, instead of ending "run the command again" (the events below --from-lsn counted
// as printed).
TEST_F(LiveLogInspection, ADumpFromALaterLsnCutByARemovalBeforeItPrintedIsReadAgain) {
  // The daemon removes the two oldest (applied) segments as the read reaches the second.
  const std::string first = wal::segment_path(dir_, log_->oldest().segment);
  const std::string path = wal::segment_path(dir_, log_->oldest().segment + 1);
  ActsBeforeAnOpen fs(path, 1, [&] {
    std::filesystem::remove(first);
    std::filesystem::remove(path);
  });
  const std::uint64_t from = log_->durable().lsn;
  std::vector<std::uint64_t> printed;
  const ctl::LogVerdict v = ctl::verify_log(
      dir_,
      [&](const wal::Record& r, const Event&) {
        printed.push_back(r.lsn);
        return true;
      },
      fs, from);
  ASSERT_TRUE(fs.acted());
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(printed, std::vector<std::uint64_t>{from});
}

// Damage in a segment of a running log is damage, not a removal: the dump that printed the events
// before it still ends with the damage advice (exit 2), never "run the command again" (exit 1),
// which every run would say again.
TEST_F(LiveLogInspection, DamageInARunningLogIsNotTakenForARemoval) {
  const std::string path = wal::segment_path(dir_, log_->oldest().segment + 1);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(std::filesystem::file_size(path) / 2));
    f.put('\x5a').put('\xa5');
  }
  std::uint64_t printed = 0;
  const ctl::LogVerdict v = ctl::verify_log(dir_, [&](const wal::Record&, const Event&) { return ++printed > 0; });
  EXPECT_FALSE(v.ok);
  EXPECT_GT(printed, 0u);
  EXPECT_FALSE(v.cut_by_a_removal) << v.problem;
}

// `status` reads the checkpoints, then the whole log (minutes, for a large backlog). A daemon that
// applied, checkpointed and removed segments meanwhile left the checkpoint read first behind the
// log's oldest record: "DAMAGED: unapplied records were removed", with the advice to move the log
// away, for a healthy log. A checkpoint behind the log is judged on the checkpoints read after it.
TEST_F(LiveLogInspection, StatusJudgesACheckpointBehindTheLogOnTheCheckpointsReadAfterIt) {
  const std::string id = wal::log_id_hex(log_->log_id());
  const std::vector<ctl::StoredCheckpoint> read_first{{"default", id, 5}};  // in the first segment
  // Meanwhile the daemon applied everything, checkpointed, and removed the first segment.
  const wal::Position applied = log_->durable();
  log_->note_applied(applied);
  ASSERT_TRUE(log_->persist_applied());
  const std::uint64_t second = log_->oldest().segment + 1;
  log_->remove_segments_before(second);
  ASSERT_EQ(log_->oldest().segment, second);
  const std::vector<ctl::StoredCheckpoint> read_after{{"default", id, applied.lsn}};

  std::ostringstream healthy;
  EXPECT_EQ(ctl::report_log_health(dir_, read_first, [&] { return read_after; }, "", healthy), 0) << healthy.str();
  EXPECT_NE(healthy.str().find("log health      ok"), std::string::npos) << healthy.str();

  // Still behind once the log was read: the daemon will refuse it.
  std::ostringstream damaged;
  EXPECT_EQ(ctl::report_log_health(dir_, read_first, [&] { return read_first; }, "", damaged), 2) << damaged.str();
  EXPECT_NE(damaged.str().find("unapplied records were removed"), std::string::npos) << damaged.str();
  // Past the log's end when read first: damage whenever it was read.
  const std::vector<ctl::StoredCheckpoint> past_end{{"default", id, applied.lsn + 1}};
  std::ostringstream lost;
  EXPECT_EQ(ctl::report_log_health(dir_, past_end, [&] { return read_after; }, "", lost), 2) << lost.str();
  EXPECT_NE(lost.str().find("records were lost"), std::string::npos) << lost.str();
}

// Salvage (`wal-verify --salvage`, `wal-dump --salvage`) beside a running daemon: a segment removed
// between the listing and its read is named as removed, not counted as damage (exit 2) as an
// unreadable segment was.
TEST_F(LiveLogInspection, SalvageNamesASegmentRemovedBeforeItsReadNotDamage) {
  const std::string oldest = wal::segment_path(dir_, log_->oldest().segment);
  ActsBeforeAnOpen fs(oldest, 1, [&] { std::filesystem::remove(oldest); });
  std::ostringstream out;
  const std::uint64_t damaged = ctl::salvage(dir_, true, 0, UINT64_MAX, out, nullptr, fs);
  ASSERT_TRUE(fs.acted());
  EXPECT_EQ(damaged, 0u) << out.str();
  EXPECT_EQ(out.str().find("# skipped"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("; 1 segment(s) removed while the log was read"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("\t{"), std::string::npos) << "the later segments' events are printed";
}

// A segment removed once salvage has opened it is read whole through its open handle: the second
// open (after its header was read) threw std::system_error out of the command.
TEST_F(LiveLogInspection, SalvageReadsASegmentRemovedAfterItWasOpened) {
  const std::string oldest = wal::segment_path(dir_, log_->oldest().segment);
  ActsBeforeAnOpen fs(oldest, 1, [&] { std::filesystem::remove(oldest); }, true);
  std::ostringstream out;
  const std::uint64_t damaged = ctl::salvage(dir_, true, 0, UINT64_MAX, out, nullptr, fs);
  ASSERT_TRUE(fs.acted());
  EXPECT_EQ(damaged, 0u) << out.str();
  EXPECT_NE(out.str().find("# salvage: 150 readable records, 0 damaged range(s)"), std::string::npos) << out.str();
  EXPECT_EQ(out.str().rfind("1\t{", 0), 0u) << "lsn 1, in the removed segment, is printed first";
}

// A segment the system will not let the tool open (a permission, no descriptor left) is no damage:
// the tools say it cannot be read (exit 1) instead of giving the advice to move the log away; an
// I/O error is the disk failing, and stays damage. Salvage stops on the first kind (it counted the
// segment as damaged, exit 2) and skips the second.
TEST_F(LiveLogInspection, ASegmentTheSystemRefusesIsUnreadableButAnIoErrorIsDamage) {
  const std::string second = wal::segment_path(dir_, log_->oldest().segment + 1);
  for (const int refused : {EACCES, EMFILE}) {
    test::RefusingOpenFs fs(wal::posix_log_fs(), second);
    fs.refuse(refused);
    const ctl::LogVerdict v = ctl::verify_log(dir_, {}, fs);
    EXPECT_FALSE(v.ok);
    EXPECT_TRUE(v.unreadable) << v.problem;
    EXPECT_EQ(ctl::exit_code_for(v), 1);
    EXPECT_NE(v.problem.find(std::strerror(refused)), std::string::npos) << v.problem;
    EXPECT_NE(ctl::advice_for(v, dir_).find("which says nothing about damage"), std::string::npos);
    std::ostringstream out;
    EXPECT_THROW(ctl::salvage(dir_, true, 0, UINT64_MAX, out, nullptr, fs), wal::WalCorruption) << out.str();
  }
  test::RefusingOpenFs failing_disk(wal::posix_log_fs(), second);
  failing_disk.refuse(EIO);
  const ctl::LogVerdict v = ctl::verify_log(dir_, {}, failing_disk);
  EXPECT_FALSE(v.ok);
  EXPECT_FALSE(v.unreadable) << v.problem;
  EXPECT_EQ(ctl::exit_code_for(v), 2);
  EXPECT_NE(ctl::advice_for(v, dir_).find("wal-dump --salvage"), std::string::npos);
  std::ostringstream out;
  EXPECT_GE(ctl::salvage(dir_, true, 0, UINT64_MAX, out, nullptr, failing_disk), 1u) << out.str();
  EXPECT_NE(out.str().find("\t{"), std::string::npos) << "the other segments' events are printed";
}

}  // namespace
}  // namespace pm::test
