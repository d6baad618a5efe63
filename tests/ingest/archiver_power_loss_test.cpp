// Power loss while the daemon's archiver works (ingest/archive/segment_archiver.h): archiving a
// segment (archive file, index line), the live log's removal of it (state file, segment, directory)
// and retention, cut at every mutating file call of a run (tests/support/fault_fs.h), in every
// power-loss mode. After the reboot a second archiver, on the recovered log, finishes the job with
// nobody's help. Then every event must be readable exactly once from the archive and the live log,
// nothing may be reported lost or damaged, and retention may only have taken the oldest segments.
#include <gtest/gtest.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/ringbuffer_sink.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "ingest/archive/archive_index.h"
#include "ingest/archive/archive_writer.h"
#include "ingest/archive/segment_archiver.h"
#include "ingest/archive/segment_chain.h"
#include "ingest/events/event_codec.h"
#include "ingest/log/wal.h"
#include "ingest/log/wal_directory.h"
#include "ingest/server/log_metrics.h"
#include "metrics/ingest_metrics.h"
#include "tests/support/fault_fs.h"
#include "tests/support/forwarding_log_fs.h"
#include "tests/support/process.h"
#include "tests/support/refusing_open_fs.h"
#include "tests/support/trade_event.h"

namespace pm::archive {
namespace {

using namespace std::chrono_literals;
using test::FaultFs;
using test::PowerLossMode;

constexpr char kLogDir[] = "/log";
constexpr char kArchiveDir[] = "/arch";
constexpr int kEvents = 80;  // several segments of 2 KiB

std::string trade_payload(int i) {
  std::string out;
  encode_event(test::trade_event("cond", "trade-" + std::to_string(i)), out);
  return out;
}

// The live log and the archive together read every event from lsn 1 to `events` once, in order.
void expect_every_event_read_once(FaultFs& fs, int events) {
  SegmentChain chain = SegmentChain::discover(fs, {kLogDir, kArchiveDir});
  EXPECT_TRUE(chain.gaps().empty());
  chain.start(1, false);
  std::uint64_t expected = 1;
  while (const auto record = chain.next()) {
    ASSERT_EQ(record->lsn, expected) << "an event was skipped or read twice";
    ++expected;
  }
  EXPECT_EQ(expected - 1, static_cast<std::uint64_t>(events));
}

// Whether archive retention runs, and with what limit.
enum class Retention { None, KeepAboutTwoFiles };

struct Round {
  std::uint64_t crash_after = 0;  // 0: no crash while the archiver works (power lost once it is done)
  PowerLossMode mode = PowerLossMode::DropUnsynced;
  Retention retention = Retention::None;
  std::string describe() const {
    return "crash at mutating call " + std::to_string(crash_after) + ", " + test::to_string(mode) +
           (retention == Retention::None ? ", no retention" : ", retention");
  }
};

class ArchiverPowerLoss : public ::testing::Test {
 protected:
  // Writes the log every round starts from: kEvents events in groups of 4, all applied, all durable.
  void build_log(FaultFs& fs) {
    wal::Options o = log_options(fs, nullptr);
    auto log = wal::WriteAheadLog::open(o);
    int next = 0;
    append_groups(*log, next, [&] { return next < kEvents; });
    if (HasFatalFailure()) return;
    log->note_applied(log->durable());
    ASSERT_TRUE(log->persist_applied());
    ASSERT_GE(log->durable().segment, 4u) << "the log must span several segments";
  }

  // Appends events `next`, `next` + 1, ... in groups of 4 (a group commit each) as long as `more()`
  // says so; `next` ends as the number of the next event. A failed append fails the test.
  static void append_groups(wal::WriteAheadLog& log, int& next, const std::function<bool()>& more) {
    while (more()) {
      std::vector<std::string> payloads;
      for (int k = next; k < next + 4; ++k) payloads.push_back(trade_payload(k));
      std::vector<wal::Appended> out;
      ASSERT_EQ(log.append(payloads, out), wal::AppendStatus::Ok);
      next += 4;
    }
  }

  wal::Options log_options(FaultFs& fs, SegmentArchiver* archiver) {
    wal::Options o;
    o.dir = kLogDir;
    o.fs = &fs;
    o.segment_bytes = 2048;
    o.on_fatal = [this](const std::string& m) {
      std::lock_guard lock(mu_);
      fatals_.push_back(m);
    };
    if (archiver != nullptr)
      o.may_remove = [archiver](const wal::LogId& id, std::uint64_t segment) { return archiver->may_remove(id, segment); };
    return o;
  }

  ArchiverConfig archiver_config(FaultFs& fs, Retention retention) {
    ArchiverConfig c;
    c.dir = kArchiveDir;
    c.fs = &fs;
    c.retry_initial = 1ms;
    c.retry_max = 4ms;
    if (retention == Retention::KeepAboutTwoFiles) c.max_bytes = 2 * archive_file_bytes_;
    return c;
  }

  // Whether index.ndjson lists exactly the archive files there (false while the directory cannot be read).
  static bool index_agrees_with_files(FaultFs& fs) {
    try {
      bool stale = true;
      ArchiveIndex::read(fs, kArchiveDir, {}, &stale);
      return !stale;
    } catch (const std::exception&) {
      return false;
    }
  }

  // One life of the daemon's archiver: every segment below the active one is applied and
  // released. Returns when each of them has left the live log and the archiver has brought its
  // index in line with the files (recovery alone may remove the segments a crash left archived), or
  // when the power is gone.
  // Returns the mutating calls made from the crash point's arming (after the log's recovery) on.
  std::uint64_t run_archiver(FaultFs& fs, Retention retention, IngestMetrics& metrics, std::uint64_t crash_after,
                             PowerLossMode mode) {
    SegmentArchiver archiver(archiver_config(fs, retention), metrics, quiet_);
    archiver.prepare();  // before the log's recovery, as the daemon does
    std::unique_ptr<wal::WriteAheadLog> log;
    try {
      log = wal::WriteAheadLog::open(log_options(fs, &archiver));
    } catch (const std::exception& e) {
      ADD_FAILURE() << "recovery needed an operator: " << e.what();
      return 0;
    }
    log->note_applied(log->durable());
    const std::uint64_t armed_at = fs.mutating_calls();
    if (crash_after > 0) fs.crash_after(crash_after, mode);
    archiver.start(*log);
    archiver.release_before(log->durable().segment);
    const bool settled = test::wait_until(
        [&] { return fs.crashed() || (log->oldest().segment == log->durable().segment && index_agrees_with_files(fs)); }, 10s);
    archiver.stop();
    EXPECT_TRUE(settled) << "the archiver left segments " << log->oldest().segment << ".." << log->durable().segment - 1
                         << " in the live log, or an index that disagrees with the files";
    return fs.mutating_calls() - armed_at;
  }

  std::vector<std::string> fatals() {
    std::lock_guard lock(mu_);
    return fatals_;
  }

  void run_round(const Round& round);

  // A clean life's mutating calls (the crash points); the first call also sets archive_file_bytes_.
  std::uint64_t measure_calls(Retention retention) {
    FaultFs fs(1);
    build_log(fs);
    IngestMetrics metrics;
    const std::uint64_t calls = run_archiver(fs, retention, metrics, 0, PowerLossMode::DropUnsynced);
    if (retention == Retention::None) {
      const ArchiveIndex index = ArchiveIndex::read(fs, kArchiveDir);
      EXPECT_GE(index.entries().size(), 3u);
      if (!index.entries().empty()) archive_file_bytes_ = index.entries().front().file_bytes;
    } else {
      EXPECT_GT(metrics.archive_removed_segments.Value(), 0) << "the retention limit removed nothing";
    }
    return calls;
  }

  std::shared_ptr<spdlog::logger> quiet_ =
      std::make_shared<spdlog::logger>("archiver_power_loss", std::make_shared<spdlog::sinks::null_sink_mt>());
  std::uint64_t archive_file_bytes_ = 1;  // a typical archive file's size, from the measuring run
  std::uint64_t crash_points_ = 0;
  std::mutex mu_;
  std::vector<std::string> fatals_;
  struct Tally {
    std::uint64_t rounds = 0, crashed_mid_run = 0, rounds_with_retention_removals = 0;
  } tally_;
};

void ArchiverPowerLoss::run_round(const Round& round) {
  SCOPED_TRACE(round.describe());
  FaultFs fs(round.crash_after * 7 + static_cast<std::uint64_t>(round.mode));
  build_log(fs);
  if (HasFatalFailure()) return;
  {  // The first life, until the power goes (a round whose crash point was not reached loses it after).
    IngestMetrics metrics;
    run_archiver(fs, round.retention, metrics, round.crash_after, round.mode);
    tally_.crashed_mid_run += fs.crashed();
    if (!fs.crashed()) fs.power_loss(round.mode);
  }
  fs.reboot();
  {
    std::lock_guard lock(mu_);
    fatals_.clear();  // the first life's failed syncs after the power went are expected
  }
  IngestMetrics metrics;
  run_archiver(fs, round.retention, metrics, 0, round.mode);
  EXPECT_EQ(fatals(), std::vector<std::string>{}) << "the second life hit a fatal log error";
  EXPECT_EQ(metrics.archive_errors.Value(), 0) << "the second life reported a lost or damaged archive file, or a failure";
  EXPECT_EQ(metrics.archive_damaged_files.Value(), 0);
  tally_.rounds_with_retention_removals += metrics.archive_removed_segments.Value() > 0;

  bool index_stale = false;
  std::vector<ArchiveEntry> lost;
  std::vector<std::string> damaged;
  const ArchiveIndex index = ArchiveIndex::read(
      fs, kArchiveDir, [&](const std::string& file, const std::string& problem) { damaged.push_back(file + ": " + problem); },
      &index_stale, &lost);
  EXPECT_EQ(damaged, std::vector<std::string>{});
  EXPECT_TRUE(lost.empty()) << lost.size() << " archive files reported lost, the first " << archive_file_name(lost.front().segment);
  EXPECT_FALSE(index_stale) << "the second life left an index that disagrees with the files:\n"
                            << fs.contents(std::string(kArchiveDir) + "/" + kIndexFileName) << "the files:\n"
                            << ArchiveIndex::render(index.entries());

  SegmentChain chain = SegmentChain::discover(fs, {kLogDir, kArchiveDir});
  EXPECT_TRUE(chain.gaps().empty()) << "segments " << chain.gaps().front().first << ".." << chain.gaps().front().second
                                    << " are in neither the archive nor the live log";
  ASSERT_FALSE(chain.segments().empty());
  const std::uint64_t first_lsn = chain.segments().front().first_lsn;
  if (round.retention == Retention::None) {
    EXPECT_EQ(first_lsn, 1u) << "events were lost with no retention set";
  }
  chain.start(1, false);
  std::uint64_t expected = first_lsn;
  try {
    while (const auto record = chain.next()) {
      ASSERT_EQ(record->lsn, expected) << "an event was skipped or read twice";
      ++expected;
    }
  } catch (const std::exception& e) {
    FAIL() << "reading the archive and the live log: " << e.what();
  }
  EXPECT_EQ(expected - 1, static_cast<std::uint64_t>(kEvents)) << "the newest events are gone";
  ++tally_.rounds;
}

// Every mutating call of a clean run of the archiver is a crash point, in each power-loss mode,
// without retention (every event kept) and with a limit that removes the oldest files.
TEST_F(ArchiverPowerLoss, EveryCrashPointKeepsEveryEventOnceAndReportsNoLoss) {
  for (const Retention retention : {Retention::None, Retention::KeepAboutTwoFiles}) {
    const std::uint64_t calls = measure_calls(retention);
    ASSERT_GT(calls, 20u);
    crash_points_ += calls + 1;
    for (int mode = 0; mode < test::kPowerLossModes; ++mode) {
      for (std::uint64_t k = 1; k <= calls + 1 && !HasFailure(); ++k) run_round(Round{k, static_cast<PowerLossMode>(mode), retention});
    }
  }
  std::printf("%llu rounds over %llu crash points: power lost mid-run in %llu; retention removed files in the second life of %llu\n",
              static_cast<unsigned long long>(tally_.rounds), static_cast<unsigned long long>(crash_points_),
              static_cast<unsigned long long>(tally_.crashed_mid_run),
              static_cast<unsigned long long>(tally_.rounds_with_retention_removals));
  if (!HasFailure()) {
    EXPECT_EQ(tally_.crashed_mid_run, tally_.rounds - 2 * test::kPowerLossModes) << "a crash point was not reached";
  }
}

// The archiver had archived segments 1 to 3 and the log was removing them when the power went: the
// removals of 1 and 3 were stored, that of 2 not (each name on its own before the directory fsync).
// At the restart the archive directory cannot be used (its fsync fails once): recovery may remove
// nothing and keeps 2, 4, 5, ... with the hole at 3, below the applied position. The log opens (it
// threw "segment 0000000000000003.wal is missing before it"), and the archiver, once the directory
// works, removes segment 2 (archived already), archives and removes the segments after the hole,
// never asks for the missing one and reports nothing; every event is read once from the archive
// and the live log.
class ArchiverAroundAHole : public ArchiverPowerLoss {};

TEST_F(ArchiverAroundAHole, AppliedSegmentsKeptAroundAHoleAreArchivedAndRemoved) {
  FaultFs fs(1);
  build_log(fs);
  ASSERT_FALSE(HasFatalFailure());
  int events = kEvents;
  {  // More segments (nothing may be removed meanwhile), all applied.
    wal::Options o = log_options(fs, nullptr);
    o.may_remove = [](const wal::LogId&, std::uint64_t) { return false; };
    auto log = wal::WriteAheadLog::open(o);
    append_groups(*log, events, [&] { return log->durable().segment < 7; });
    ASSERT_FALSE(HasFatalFailure());
    log->note_applied(log->durable());
    ASSERT_TRUE(log->persist_applied());
  }
  ASSERT_FALSE(fs.create_dir(kArchiveDir));
  for (std::uint64_t segment = 1; segment <= 3; ++segment) archive_segment(fs, kLogDir, segment, kArchiveDir);
  ASSERT_FALSE(fs.remove(wal::segment_path(kLogDir, 1)));
  ASSERT_FALSE(fs.remove(wal::segment_path(kLogDir, 3)));
  fs.add_fault(test::FaultRule{test::FsOp::SyncDir, 1, 1, EIO, kArchiveDir});
  IngestMetrics metrics;
  run_archiver(fs, Retention::None, metrics, 0, PowerLossMode::DropUnsynced);  // settles, or fails the test
  EXPECT_EQ(fatals(), std::vector<std::string>{});
  EXPECT_EQ(metrics.archive_errors.Value(), 0) << "the archiver reported a failure (a missing segment?)";
  std::vector<std::string> live;
  for (const std::string& name : fs.names(kLogDir))
    if (name.ends_with(".wal")) live.push_back(name);
  EXPECT_EQ(live, std::vector<std::string>{wal::segment_file_name(7)}) << "applied segments stayed in the live log";

  expect_every_event_read_once(fs, events);
}

// An applied segment the system refuses to open (a permission, no descriptor left: unreadable(),
// not damage) is no damaged segment: the archiver says it cannot archive it and retries, without
// the damage advice (wal-verify --salvage, archive store-damaged), keeps it and every later one in
// the live log meanwhile, and archives them all once it opens again. Refused at its first open
// (the scan), and then only at its second (the scan passes, the reading of its records is refused:
// the refusal comes as WalCorruption::unreadable(), which got the damage advice).
class ArchiverOnARefusedSegment : public ArchiverPowerLoss {};

TEST_F(ArchiverOnARefusedSegment, RetriesWithoutCallingItDamagedAndArchivesItOnceItOpens) {
  FaultFs fs(2);
  build_log(fs);
  ASSERT_FALSE(HasFatalFailure());
  test::RefusingOpenFs refusing(fs, wal::segment_path(kLogDir, 1));
  auto lines = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(256);
  auto logger = std::make_shared<spdlog::logger>("refused_segment", lines);
  const auto logged = [&](const std::string& text) {
    for (const std::string& line : lines->last_formatted())
      if (line.find(text) != std::string::npos) return true;
    return false;
  };
  ArchiverConfig config = archiver_config(fs, Retention::None);
  config.fs = &refusing;  // the archiver reads the live segments through its file system
  IngestMetrics metrics;
  SegmentArchiver archiver(config, metrics, logger);
  archiver.prepare();
  auto log = wal::WriteAheadLog::open(log_options(fs, &archiver));
  log->note_applied(log->durable());
  const std::uint64_t active = log->durable().segment;
  const std::string cannot_archive = "cannot archive log segment " + wal::segment_file_name(1) + ": ";
  const auto expect_retried_not_damaged = [&](const std::string& why) {
    EXPECT_TRUE(logged(cannot_archive + why)) << "no failure reported for segment 1 (" << why << ")";
    EXPECT_TRUE(logged("archiving is retried"));
    EXPECT_FALSE(logged("damaged")) << "a segment the system refused was called damaged";
    EXPECT_FALSE(logged("store-damaged")) << "the damage advice for a segment that was never read";
    EXPECT_EQ(metrics.archived_segments.Value(), 0);
    EXPECT_EQ(log->oldest().segment, 1u) << "a segment was removed from the live log unarchived";
  };

  refusing.refuse(EACCES);  // every open
  archiver.start(*log);
  archiver.release_before(active);
  // Three attempts: the first, then two retries.
  ASSERT_TRUE(test::wait_until([&] { return refusing.refused() >= 3 && metrics.archive_errors.Value() >= 3; }, 10s))
      << "refused opens: " << refusing.refused() << ", archive errors: " << metrics.archive_errors.Value();
  expect_retried_not_damaged("open " + wal::segment_path(kLogDir, 1));

  refusing.refuse(EACCES, 2);  // the second open of each attempt: the scan passes, the records' reader is refused
  const double errors = metrics.archive_errors.Value();
  const int refused_before = refusing.refused();
  ASSERT_TRUE(test::wait_until(
      [&] { return refusing.refused() >= refused_before + 3 && metrics.archive_errors.Value() >= errors + 3; }, 10s))
      << "refused opens: " << refusing.refused() << ", archive errors: " << metrics.archive_errors.Value();
  expect_retried_not_damaged("cannot read write-ahead log file " + wal::segment_path(kLogDir, 1));

  refusing.allow();
  const bool settled =
      test::wait_until([&] { return log->oldest().segment == active && index_agrees_with_files(fs); }, 10s);
  archiver.stop();
  EXPECT_TRUE(settled) << "segments " << log->oldest().segment << ".." << active - 1 << " stayed in the live log";
  EXPECT_TRUE(is_archived(fs, kArchiveDir, log->log_id(), 1));
  EXPECT_EQ(metrics.archived_segments.Value(), static_cast<double>(active - 1));
  EXPECT_EQ(fatals(), std::vector<std::string>{});
  expect_every_event_read_once(fs, kEvents);
}

// The daemon counts --wal-max-bytes from kept_from_log_offset(). While the archive directory could
// not be used, the archiver thread waited out its retry's backoff (up to 30 s by default) before it
// looked again, and segments the writer released meanwhile, still in the live log, counted against
// nothing: acks went on past the budget by what was released in that time.
class ArchiverBudget : public ArchiverPowerLoss {};

TEST_F(ArchiverBudget, SegmentsReleasedWhileTheArchiverWaitsOutARetryCountAtOnce) {
  FaultFs fs(3);
  {  // Several segments, none applied yet.
    auto log = wal::WriteAheadLog::open(log_options(fs, nullptr));
    int next = 0;
    append_groups(*log, next, [&] { return log->durable().segment < 4; });
    ASSERT_FALSE(HasFatalFailure());
  }
  fs.add_fault(test::FaultRule{test::FsOp::SyncDir, 1, UINT64_MAX, EIO, kArchiveDir});  // the directory never becomes usable
  ArchiverConfig config = archiver_config(fs, Retention::None);
  config.retry_initial = config.retry_max = std::chrono::minutes(10);
  IngestMetrics metrics;
  SegmentArchiver archiver(config, metrics, quiet_);
  archiver.prepare();
  auto log = wal::WriteAheadLog::open(log_options(fs, &archiver));
  archiver.start(*log);
  ASSERT_TRUE(test::wait_until([&] { return metrics.archive_errors.Value() >= 1; }, 10s));  // failed, now waiting
  EXPECT_EQ(archiver.kept_from_log_offset(), UINT64_MAX) << "nothing released yet";

  log->note_applied(log->durable());
  archiver.release_before(log->durable().segment);
  EXPECT_EQ(archiver.kept_from_log_offset(), log->oldest().log_offset);
  EXPECT_EQ(log->oldest().segment, 1u) << "a segment left the live log unarchived";
  archiver.stop();
}

// --archive-max-age ran only when a segment was archived: on a quiet weekend, or while PostgreSQL
// was down (nothing released), nothing past the age was removed, against the option's help. While
// idle the archiver applies the limits every retention_interval (a minute; 20 ms here): the
// archive files age past the limit (the archiver's clock moved on) and go, no segment archived.
class ArchiverIdleRetention : public ArchiverPowerLoss {};

TEST_F(ArchiverIdleRetention, FilesThatAgePastTheLimitAreRemovedWithoutANewSegment) {
  FaultFs fs(4);
  build_log(fs);
  ASSERT_FALSE(HasFatalFailure());
  std::atomic<std::int64_t> clock_ahead_ms{0};
  ArchiverConfig config = archiver_config(fs, Retention::None);
  config.max_age = std::chrono::hours(1);
  config.retention_interval = 20ms;
  config.now_ms = [&] { return now_epoch_ms() + clock_ahead_ms.load(); };
  IngestMetrics metrics;
  SegmentArchiver archiver(config, metrics, quiet_);
  archiver.prepare();
  auto log = wal::WriteAheadLog::open(log_options(fs, &archiver));
  log->note_applied(log->durable());
  const std::uint64_t active = log->durable().segment;
  archiver.start(*log);
  archiver.release_before(active);
  ASSERT_TRUE(test::wait_until([&] { return log->oldest().segment == active && index_agrees_with_files(fs); }, 10s))
      << "segments " << log->oldest().segment << ".." << active - 1 << " stayed in the live log";
  EXPECT_EQ(metrics.archive_removed_segments.Value(), 0) << "events of a moment ago are not an hour old";

  clock_ahead_ms = 2 * 3600 * 1000;  // two hours later, nothing written meanwhile
  const bool removed = test::wait_until([&] { return metrics.archive_removed_segments.Value() == static_cast<double>(active - 1); }, 10s);
  archiver.stop();
  EXPECT_TRUE(removed) << "removed " << metrics.archive_removed_segments.Value() << " of " << active - 1 << " archive files";
  EXPECT_TRUE(ArchiveIndex::read(fs, kArchiveDir).entries().empty());
  EXPECT_EQ(log->oldest().segment, active);
  EXPECT_EQ(fatals(), std::vector<std::string>{});
}

// A LogFs that refuses to remove log segments (EACCES, as a permission would) until allow().
class RefusingRemoveFs : public wal::ForwardingLogFs {
 public:
  using ForwardingLogFs::ForwardingLogFs;
  std::error_code remove(const std::string& path) override {
    if (refusing_ && path.ends_with(".wal")) {
      ++refused_;
      return wal::errno_code(EACCES);
    }
    return ForwardingLogFs::remove(path);
  }
  void allow() { refusing_ = false; }
  int refused() const { return refused_.load(); }

 private:
  std::atomic<bool> refusing_{true};
  std::atomic<int> refused_{0};
};

// An archived segment the system will not let the log remove stays in the live log, with the later
// ones; every failed removal is counted in pm_ingest_wal_remove_errors_total (the log only warned,
// once per segment and error, and nothing was counted), and the segments go once removal works.
class ArchiverOnAnUnremovableSegment : public ArchiverPowerLoss {};

TEST_F(ArchiverOnAnUnremovableSegment, CountsEachFailedRemovalAndRemovesTheSegmentsOnceItMay) {
  FaultFs fs(4);
  build_log(fs);
  ASSERT_FALSE(HasFatalFailure());
  RefusingRemoveFs refusing(fs);
  IngestMetrics metrics;
  SegmentArchiver archiver(archiver_config(fs, Retention::None), metrics, quiet_);
  archiver.prepare();
  wal::Options options = log_options(fs, &archiver);
  options.fs = &refusing;
  count_log_metrics(options, metrics);  // as the daemon wires it
  auto log = wal::WriteAheadLog::open(options);
  log->note_applied(log->durable());
  const std::uint64_t active = log->durable().segment;
  archiver.start(*log);
  archiver.release_before(active);
  ASSERT_TRUE(test::wait_until([&] { return refusing.refused() >= 2 && metrics.wal_remove_errors.Value() >= 2; }, 10s))
      << "refused removals: " << refusing.refused() << ", counted: " << metrics.wal_remove_errors.Value();
  EXPECT_GE(metrics.archived_segments.Value(), 1);
  EXPECT_EQ(log->oldest().segment, 1u) << "a segment left the live log although its removal failed";

  refusing.allow();
  const bool settled =
      test::wait_until([&] { return log->oldest().segment == active && index_agrees_with_files(fs); }, 10s);
  archiver.stop();
  EXPECT_TRUE(settled) << "segments " << log->oldest().segment << ".." << active - 1 << " stayed in the live log";
  EXPECT_EQ(metrics.archived_segments.Value(), static_cast<double>(active - 1));
  EXPECT_EQ(fatals(), std::vector<std::string>{});
}

}  // namespace
}  // namespace pm::archive
