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

#include <spdlog/logger.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "ingest/log/wal.h"
#include "ingest/writer/ingest_checkpoint_repository.h"
#include "ingest/writer/log_retention.h"
#include "metrics/ingest_metrics.h"
#include "repos/database.h"
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

// The writer learns of a crash-restart from its sessions' end (the test above). A proxy that
// hides the restart (transaction pooling) leaves only new sessions, and the restarted server's WAL
// soon passes the positions queued before the crash: the retention would take them as flushed and
// delete the segments of commits the crash lost. It reads the checkpoint row first, finds it
// behind, keeps every segment and makes the writer read the checkpoint again.
TEST_F(PostgresCrash, ARestartTheSessionsDoNotShowReleasesNoSegmentOfALostCommit) {
  const std::string dir = std::filesystem::temp_directory_path() / ("pm_retention_crash_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  wal::Options options;
  options.dir = dir;
  options.segment_bytes = 4096;
  options.on_fatal = [](const std::string& m) { ADD_FAILURE() << "log fatal: " << m; };
  auto log = wal::WriteAheadLog::open(options);
  std::vector<wal::Appended> appended;
  for (int i = 0; i < 8; ++i) {
    std::vector<std::string> payloads(10, std::string(200, 'x'));
    std::vector<wal::Appended> out;
    ASSERT_EQ(log->append(payloads, out), wal::AppendStatus::Ok);
    appended.insert(appended.end(), out.begin(), out.end());
  }
  const wal::Position applied = appended[60].end;
  ASSERT_GE(applied.segment, log->oldest().segment + 2);

  DatabaseConfig config;
  config.url = cluster.url();
  config.retry_max_attempts = 1;  // as the daemon: nothing is retried quietly
  Database db(config);
  IngestMetrics metrics;
  RetentionConfig retention_config;
  retention_config.wait_for_standbys = false;
  retention_config.batch_commits = SynchronousCommit::Off;
  LogRetention retention(retention_config, db, *log, metrics, std::make_shared<spdlog::logger>("test"));

  // A batch commits asynchronously, its checkpoint at `applied`; the WAL writer is stopped, so the
  // commit stays in PostgreSQL's WAL buffers.
  const int walwriter = stop_walwriter();
  IngestCheckpoint checkpoint;
  checkpoint.instance_id = "default";
  checkpoint.log_id = wal::log_id_hex(log->log_id());
  checkpoint.lsn = static_cast<std::int64_t>(applied.lsn);
  checkpoint.segment = static_cast<std::int64_t>(applied.segment);
  checkpoint.segment_offset = static_cast<std::int64_t>(applied.offset);
  checkpoint.log_offset = static_cast<std::int64_t>(applied.log_offset);
  checkpoint.applied_events = static_cast<std::int64_t>(applied.lsn);
  db.transaction([&](pqxx::work& tx) {
    tx.exec("SET LOCAL synchronous_commit = off");
    IngestCheckpointRepository(tx).save(checkpoint);
  });
  retention.applied(applied);
  log->note_applied(applied);
  const std::string wal_end_before_crash = cluster.query("SELECT pg_current_wal_insert_lsn()::text");
  const std::uint64_t oldest = log->oldest().segment;
  retention.check(true);
  ASSERT_EQ(retention.awaiting(), 1u) << "the commit is not flushed: its segments wait";
  ASSERT_EQ(log->oldest().segment, oldest);

  ASSERT_NO_FATAL_FAILURE(crash_postgres(walwriter));
  ASSERT_EQ(cluster.query("SELECT count(*) FROM pm_ingest_checkpoints"), "0") << "the crash lost the commit";
  db.close();  // what the proxy shows the daemon: new sessions, no error
  // The restarted server's WAL passes, and flushes, the position queued before the crash.
  ASSERT_TRUE(wait_until(
      [&] {
        cluster.query("SELECT pg_logical_emit_message(true, 'pm-test', repeat('x', 100000))");
        return cluster.query("SELECT pg_current_wal_flush_lsn() > '" + wal_end_before_crash + "'::pg_lsn") == "t";
      },
      60s));

  EXPECT_THROW(retention.check(true), PrimaryChanged);
  EXPECT_EQ(log->oldest().segment, oldest) << "no segment of the lost commit may go";
  EXPECT_EQ(retention.awaiting(), 0u) << "forgotten: the writer re-reads the checkpoint and queues again";
  log.reset();
  std::filesystem::remove_all(dir);
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
