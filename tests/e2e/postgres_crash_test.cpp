// Issue 15 (--synchronous-commit off, the daemon's default): a batch's COMMIT returns before
// PostgreSQL flushes its WAL, so its rows are visible sooner. A PostgreSQL crash then loses
// batches whose rows readers already saw. The daemon's log must still hold them and the writer
// must apply them again, exactly once, whether the daemon lives through the crash (it reconnects)
// or dies with it (a power cut of the whole machine: its restart must not delete them either).
//
// The crash is made to lose them for certain: PostgreSQL's WAL writer is stopped (SIGSTOP) so the
// async commits stay in WAL buffers (16 MB, more than the test writes; the background writer and
// autovacuum, which could flush WAL, are off), then killed (SIGKILL): the postmaster treats that as
// a crash, terminates every session and recovers from the WAL on disk, without the buffers.
#include <gtest/gtest.h>

#include <signal.h>

#include <filesystem>
#include <string>

#include "tests/e2e/e2e_util.h"
#include "tests/e2e/load_driver.h"
#include "tests/e2e/migrate.h"
#include "tests/support/daemon_harness.h"
#include "tests/support/pg_cluster.h"

namespace pm::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* kNoBackgroundFlush =
    "wal_buffers = 16MB\n"
    "wal_writer_delay = 10s\n"
    "bgwriter_lru_maxpages = 0\n"
    "autovacuum = off\n"
    "checkpoint_timeout = 1h\n"
    "max_wal_size = 1GB\n"
    "restart_after_crash = on\n";

class PostgresCrash : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster.configure(kNoBackgroundFlush);
    cluster.start();
    migrate(cluster.url());
  }

  // The WAL writer's pid, or 0 while the server does not answer.
  int walwriter_pid() {
    try {
      return std::stoi(cluster.query("SELECT pid FROM pg_stat_activity WHERE backend_type = 'walwriter'"));
    } catch (const std::exception&) {
      return 0;
    }
  }
  long long trades() { return query_count(cluster.url(), "SELECT count(*) FROM polymarket_trades"); }

  // Load until `events` are acked and applied (rows visible), with the WAL writer stopped; the
  // segments that hold them must be kept, since PostgreSQL has not flushed their commits.
  void ingest_unflushed(DaemonHarness& daemon, LoadDriver& load, std::size_t events) {
    ASSERT_NO_FATAL_FAILURE(ingest_until_visible(daemon, load, events));
    EXPECT_GT(segment_files(daemon.wal_dir()), 2u) << "applied segments whose commits PostgreSQL has not flushed are kept";
  }

  // Load until more than `events` are acked, then stop it and wait until every acked trade is visible.
  void ingest_until_visible(DaemonHarness& daemon, LoadDriver& load, std::size_t events) {
    ASSERT_TRUE(wait_until([&] { return load.acked_count() > events; }, 60s)) << daemon.output();
    load.stop();
    const auto acked = static_cast<long long>(load.acked_count());
    ASSERT_TRUE(wait_until([&] { return trades() == acked; }, 60s)) << "every acked trade is visible before the crash";
  }

  // Stops PostgreSQL's WAL writer (SIGSTOP): async commits stay in its WAL buffers. Its pid, 0 if
  // none was found (never signalled: kill(0) would hit this test's own process group).
  int stop_walwriter() {
    const int pid = walwriter_pid();
    EXPECT_GT(pid, 0) << "no WAL writer in pg_stat_activity";
    if (pid > 0) {
      EXPECT_EQ(::kill(pid, SIGSTOP), 0);
    }
    return pid;
  }

  // Kills the stopped WAL writer: PostgreSQL restarts after recovering what was flushed (a new WAL
  // writer shows that it did).
  void crash_postgres(int walwriter) {
    ASSERT_GT(walwriter, 0);
    ASSERT_EQ(::kill(walwriter, SIGKILL), 0);
    ASSERT_TRUE(wait_until([&] { return walwriter_pid() != 0 && walwriter_pid() != walwriter; }, 60s))
        << "PostgreSQL did not come back after the crash";
  }

  void expect_every_acked_event_once(LoadDriver& load) {
    expect_exactly_what_was_acked(cluster.url(), load);
    expect_each_record_applied_once(cluster.url());
    expect_triggers_and_watermarks_consistent(cluster.url(), load);
  }

  static std::size_t segment_files(const std::string& dir) {
    std::size_t n = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) n += entry.path().extension() == ".wal";
    return n;
  }

  PgCluster cluster;
};

TEST_F(PostgresCrash, BatchesLostWithUnflushedCommitsAreAppliedAgainByTheLivingDaemon) {
  DaemonHarness daemon(cluster.url(), {"--wal-segment-bytes", "64K"});
  daemon.start();
  const int walwriter = stop_walwriter();
  LoadDriver load({daemon.socket()}, LoadOptions{4, 7, true});
  ingest_unflushed(daemon, load, 3000);
  const long long visible_before = trades();

  crash_postgres(walwriter);
  const long long after_crash = trades();
  std::printf("[ figures ] %lld trades visible before the crash, %lld after it, %zu acked\n", visible_before, after_crash,
              load.acked_count());
  ASSERT_LT(after_crash, visible_before) << "the crash lost the unflushed commits (else this test proves nothing)";

  expect_every_acked_event_once(load);
  EXPECT_EQ(daemon.stop(), 0);
}

TEST_F(PostgresCrash, ADaemonKilledWithPostgresKeepsTheUnflushedBatchesInItsLog) {
  // --standby-wait off: no standby to wait for, only the primary's own flush.
  DaemonHarness daemon(cluster.url(), {"--wal-segment-bytes", "64K", "--standby-wait", "off"});
  daemon.start();
  const int walwriter = stop_walwriter();
  LoadDriver load({daemon.socket()}, LoadOptions{4, 11, true});
  ingest_unflushed(daemon, load, 3000);
  const long long visible_before = trades();

  daemon.kill9();  // the whole machine loses power: the daemon and PostgreSQL together
  crash_postgres(walwriter);
  ASSERT_LT(trades(), visible_before) << "the crash lost the unflushed commits (else this test proves nothing)";

  daemon.start();  // its recovery must not delete the segments PostgreSQL lost
  expect_every_acked_event_once(load);
  EXPECT_EQ(daemon.stop(), 0);
}

TEST_F(PostgresCrash, WithSynchronousCommitOnARoleSetToOffCannotMakeTheLogDeleteUnflushedBatches) {
  // --synchronous-commit on and --standby-wait off: a segment is deleted once its batches committed,
  // which is safe only if each COMMIT waited for the flush. The daemon's role says off; the daemon
  // raises it to local for its batches, so the crash finds every commit on disk.
  cluster.query("ALTER ROLE CURRENT_USER SET synchronous_commit = off");
  ASSERT_EQ(cluster.query("SELECT setconfig::text FROM pg_db_role_setting WHERE setrole <> 0"), "{synchronous_commit=off}");
  DaemonHarness daemon(cluster.url(), {"--wal-segment-bytes", "64K", "--standby-wait", "off", "--synchronous-commit", "on"});
  daemon.start();
  const int walwriter = stop_walwriter();
  LoadDriver load({daemon.socket()}, LoadOptions{4, 13, true});
  ASSERT_NO_FATAL_FAILURE(ingest_until_visible(daemon, load, 3000));
  const auto acked = static_cast<long long>(load.acked_count());
  // Else the log would cover a lost commit and this test would prove nothing.
  ASSERT_TRUE(wait_until([&] { return segment_files(daemon.wal_dir()) <= 2; }, 30s))
      << segment_files(daemon.wal_dir()) << " segments: applied ones are not released once committed";

  daemon.kill9();  // the whole machine loses power: the daemon and PostgreSQL together
  crash_postgres(walwriter);
  EXPECT_EQ(trades(), acked) << "a batch committed without waiting for its flush";
  daemon.start();
  expect_every_acked_event_once(load);
  EXPECT_EQ(daemon.stop(), 0);
}

}  // namespace
}  // namespace pm::test
