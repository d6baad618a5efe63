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
#include <optional>
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
#include "tests/support/producer.h"
#include "tests/support/test_database.h"

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
  // writer shows that it did). One read per try: right after the kill a first read can still show
  // the dead writer and a second one fail while the server recovers (0), which is no new writer.
  void crash_postgres(int walwriter) {
    ASSERT_GT(walwriter, 0);
    ASSERT_EQ(::kill(walwriter, SIGKILL), 0);
    ASSERT_TRUE(wait_until(
        [&] {
          const int now = walwriter_pid();
          return now != 0 && now != walwriter;
        },
        60s))
        << "PostgreSQL did not come back after the crash";
  }

  // Once every record `daemon` appended is applied (a trigger can be in a later batch than its
  // chunk's trades, so the stored trades alone do not say so).
  void expect_every_acked_event_once(DaemonHarness& daemon, LoadDriver& load) {
    ASSERT_TRUE(wait_until_log_applied(cluster.url(), daemon, 60s)) << daemon.output();
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

  ASSERT_NO_FATAL_FAILURE(expect_every_acked_event_once(daemon, load));
  // Each event counted applied once, though the lost batches were applied twice. Read once the
  // whole log is applied (above): read before, the checkpoint could be short of the log's end and
  // the counter pass through its value on the way.
  const long long logged = query_count(cluster.url(), "SELECT max(lsn) FROM pm_ingest_checkpoints");
  EXPECT_TRUE(wait_until([&] { return daemon.metric("pm_ingest_applied_events_total") == static_cast<double>(logged); }, 10s))
      << daemon.metric("pm_ingest_applied_events_total") << " counted for " << logged << " events";
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

// A restart of PostgreSQL its sessions do not show (a transaction-pooling proxy in front) takes
// back the last committed batches: their rows and the checkpoint go back together. Here that is
// done in one transaction while the daemon's sessions live on. The writer's next batch used to
// advance the checkpoint over the lost ones (the guard above reads the row only when a segment is
// to go, after that batch): their events were never applied again, and nothing said so. Each
// batch now advances the checkpoint only from where the batch before left it; finding it
// elsewhere, the writer reads it again and applies the lost events again.
TEST(HiddenRestart, BatchesItTookBackAreAppliedAgainNotSkippedByTheNextBatch) {
  TestDatabase tdb("hidden_restart");
  DaemonHarness daemon(tdb.url());
  daemon.start();
  Producer producer(daemon.socket());
  const auto send = [&](const std::string& prefix, int from, int to) {
    std::vector<std::string> lines;
    for (int i = from; i < to; ++i) lines.push_back(trade_line("c", prefix + std::to_string(i)));
    return producer.send(lines) && producer.wait_ack(static_cast<std::uint64_t>(to), 10s).has_value();
  };
  const auto checkpoint_lsn = [&] { return query_count(tdb.url(), "SELECT coalesce(max(lsn), 0) FROM pm_ingest_checkpoints"); };
  const auto trades_named = [&](const std::string& prefix) {
    return query_count(tdb.url(), "SELECT count(*) FROM polymarket_trades WHERE trade_id LIKE '" + prefix + "%'");
  };
  ASSERT_TRUE(send("kept", 0, 100));
  ASSERT_TRUE(wait_until([&] { return checkpoint_lsn() == 100; }, 30s));
  tdb.exec("CREATE TABLE checkpoint_before_crash AS SELECT * FROM pm_ingest_checkpoints");
  ASSERT_TRUE(send("lost", 100, 150));
  ASSERT_TRUE(wait_until([&] { return checkpoint_lsn() == 150; }, 30s));
  // The crash: what the batches after lsn 100 wrote is gone, rows and checkpoint alike.
  tdb.exec("BEGIN; DELETE FROM polymarket_trades WHERE trade_id LIKE 'lost%'; DELETE FROM pm_ingest_checkpoints; "
           "INSERT INTO pm_ingest_checkpoints SELECT * FROM checkpoint_before_crash; COMMIT");
  ASSERT_EQ(trades_named("lost"), 0);
  ASSERT_TRUE(send("after", 150, 151));
  EXPECT_TRUE(wait_until([&] { return trades_named("lost") == 50 && trades_named("after") == 1; }, 30s))
      << trades_named("lost") << " of the 50 lost trades stored again\n" << daemon.output();
  EXPECT_EQ(checkpoint_lsn(), 151);
  EXPECT_EQ(trades_named("kept"), 100);
  EXPECT_EQ(daemon.stop(), 0);
}

// The checkpoint save the test above relies on: told where the stored row must be (follows), it
// moves only from there, and a row that is missing or elsewhere is a CheckpointConflict; untold
// (pm-ingestctl replay), any older position of the same log will do.
TEST(HiddenRestart, ACheckpointAdvancesOnlyFromWhereTheBatchBeforeLeftIt) {
  TestDatabase tdb("checkpoint_follows");
  IngestCheckpointRepository repo(tdb.db());
  const auto at = [](std::int64_t lsn, std::optional<std::int64_t> follows) {
    IngestCheckpoint c;
    c.instance_id = "default";
    c.log_id = "log-a";
    c.lsn = lsn;
    c.applied_events = 1;
    c.follows = follows;
    return c;
  };
  const auto stored = [&] { return repo.get("default").value_or(IngestCheckpoint{}).lsn; };
  EXPECT_NO_THROW(repo.save(at(10, 0))) << "no row yet";
  EXPECT_THROW(repo.save(at(20, 0)), CheckpointConflict) << "a row where none was expected";
  EXPECT_THROW(repo.save(at(20, 5)), CheckpointConflict) << "a row ahead of where it was expected";
  EXPECT_EQ(stored(), 10);
  EXPECT_NO_THROW(repo.save(at(20, 10)));
  EXPECT_EQ(stored(), 20);
  tdb.exec("UPDATE pm_ingest_checkpoints SET lsn = 15");  // batches taken back
  try {
    repo.save(at(30, 20));
    ADD_FAILURE() << "advanced over lsn 16..20";
  } catch (const CheckpointConflict& e) {
    EXPECT_NE(std::string(e.what()).find("is not at lsn 20"), std::string::npos) << e.what();
  }
  EXPECT_EQ(stored(), 15);
  tdb.exec("DELETE FROM pm_ingest_checkpoints");  // the first batch taken back
  EXPECT_THROW(repo.save(at(30, 20)), CheckpointConflict);
  EXPECT_FALSE(repo.get("default").has_value()) << "no row is made up at lsn 30";
  EXPECT_NO_THROW(repo.save(at(30, std::nullopt))) << "untold: any older position, no row included";
  EXPECT_EQ(stored(), 30);
  IngestCheckpoint other_log = at(40, 30);
  other_log.log_id = "log-b";
  EXPECT_THROW(repo.save(other_log), CheckpointConflict) << "another log's checkpoint";
}

// The writer's batches run READ COMMITTED whatever the database's default isolation says. Under
// REPEATABLE READ a batch's snapshot, taken at its first statement while the batch before was
// still running, hid that batch's checkpoint row from its save, and overlapping batches failed.
TEST(HiddenRestart, ADatabaseDefaultingToRepeatableReadDoesNotFailOverlappingBatches) {
  TestDatabase tdb("repeatable_read");
  tdb.exec("ALTER DATABASE " + tdb.name() + " SET default_transaction_isolation = 'repeatable read'");
  DaemonHarness daemon(tdb.url(), {"--writer-connections", "2"});
  daemon.start();
  LoadDriver load({daemon.socket()}, LoadOptions{4, 17, true});
  ASSERT_TRUE(wait_until([&] { return load.acked_count() > 20'000; }, 60s)) << daemon.output();
  load.stop();
  ASSERT_TRUE(wait_until_log_applied(tdb.url(), daemon, 60s)) << daemon.output();
  expect_exactly_what_was_acked(tdb.url(), load);
  expect_each_record_applied_once(tdb.url());
  // No batch failed: every series of the kind is there from the start at 0 (-1 would be a missing
  // series or a failed scrape, which proves nothing).
  const std::string scraped = daemon.metrics();
  for (const char* kind : {"other", "transient"}) {
    const double failures = metric_value(scraped, std::string("pm_ingest_database_errors_total{kind=\"") + kind + "\"}");
    EXPECT_GE(failures, 0) << kind << ": the series is missing";
    EXPECT_LE(failures, 0) << kind << "\n" << daemon.output();
  }
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
  expect_every_acked_event_once(daemon, load);
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
  expect_every_acked_event_once(daemon, load);
  EXPECT_EQ(daemon.stop(), 0);
}

}  // namespace
}  // namespace pm::test
