// Issue 17: PostgreSQL failover under load loses no acknowledged event. A primary and an
// asynchronous standby (streaming through a physical slot) on this machine; the daemon follows a
// multi-host URL with target_session_attrs=read-write. Each round, at a random moment:
//   - lagging standby: the standby is stopped hard while the daemon keeps committing, so the
//     primary holds commits the standby lacks (the hard case of asynchronous replication); it is
//     started again only after the primary died, and has what it had flushed. (Stopping only its
//     WAL receiver with SIGSTOP was not enough: the WAL waiting in its socket buffer was still
//     received at SIGCONT, so the standby often lagged by nothing.) In one round the daemon is
//     also restarted while segments wait for the standby;
//   - or a COMMIT in flight: the primary is told to wait for a synchronous standby that does not
//     exist, so the daemon's next COMMIT hangs after its commit record is written;
// then the primary is stopped hard (pg_ctl stop -m immediate) and the standby promoted. The
// daemon must re-read its checkpoint on the new primary and apply again what it lacks, exactly
// once: every acked trade, first trigger and watermark, each once.
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <random>
#include <thread>

#include "tests/e2e/e2e_util.h"
#include "tests/e2e/load_driver.h"
#include "tests/e2e/migrate.h"
#include "tests/support/daemon_harness.h"
#include "tests/support/http_client.h"
#include "tests/support/pg_cluster.h"
#include "tests/support/private_network.h"
#include "tests/support/release_held_commits.h"
#include "tests/support/producer.h"

namespace pm::test {
namespace {

using namespace std::chrono_literals;

enum class Fault { LaggingStandby, LaggingStandbyAndRestart, CommitInFlight };

// Whether the daemon logged, after `from` bytes of its output, a batch or query given up on a lost
// connection or a COMMIT in doubt.
bool writer_lost_its_connection_since(const DaemonHarness& d, std::size_t from) {
  const std::string out = d.output();
  return out.find("failed (connection)", from) != std::string::npos || out.find("failed (in_doubt)", from) != std::string::npos;
}

std::string multi_host_url(const PgCluster& a, const PgCluster& b) {
  return "postgresql://postgres@127.0.0.1:" + std::to_string(a.port()) + ",127.0.0.1:" + std::to_string(b.port()) +
         "/postgres?target_session_attrs=read-write";
}

// A primary with a running standby, migrated.
struct Pair {
  Pair() {
    primary.start();
    migrate(primary.url());
    standby = PgCluster::standby_of(primary, "standby1");
    standby->start();
  }
  PgCluster primary;
  std::unique_ptr<PgCluster> standby;
};

// A migrated server of the test's own (`setup_sql` run on it next) and a daemon on it whose batches
// commit synchronously on one writer connection: once start_holding_commits() returned true, every
// batch's COMMIT waits (PgCluster::hold_commits) until the test ends its session or releases it.
struct HeldCommitServer {
  explicit HeldCommitServer(const std::string& setup_sql = "")
      : daemon(migrated_url(server, setup_sql), {"--synchronous-commit", "on", "--writer-connections", "1"}) {}

  // Starts the daemon; false when it did not reach the database within 30 s.
  bool start_holding_commits() {
    daemon.start();
    if (!wait_until([&] { return daemon.metric("pm_ingest_database_up") == 1; }, 30s)) return false;
    server.hold_commits();
    return true;
  }

  PgCluster server;
  DaemonHarness daemon;

 private:
  static std::string migrated_url(PgCluster& server, const std::string& setup_sql) {
    server.start();
    migrate(server.url());
    if (!setup_sql.empty()) server.query(setup_sql);
    return server.url();
  }
};

// One failover under load; returns after the checks.
void failover_round(std::mt19937& rng, Fault fault, int round) {
  SCOPED_TRACE("round " + std::to_string(round) +
               (fault == Fault::CommitInFlight ? " (COMMIT in flight)"
                : fault == Fault::LaggingStandby ? " (lagging standby)" : " (lagging standby, daemon restarted)"));
  Pair pair;
  PgCluster& primary = pair.primary;
  std::unique_ptr<PgCluster>& standby = pair.standby;
  ASSERT_TRUE(wait_until([&] { return primary.query("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'") == "1"; }, 30s));

  // A COMMIT in flight waits for the synchronous standby: only a commit that waits for its flush does.
  DaemonHarness d(multi_host_url(primary, *standby), {"--wal-segment-bytes", "64K", "--batch-max-delay-ms", "5", "--synchronous-commit",
                                                      fault == Fault::CommitInFlight ? "on" : "off"});
  d.start();
  LoadDriver load({d.socket()}, LoadOptions{4, static_cast<std::uint32_t>(rng()), true});
  ASSERT_TRUE(wait_until([&] { return load.acked_count() > 1500; }, 60s)) << d.output();

  if (fault != Fault::CommitInFlight) {
    standby->crash();
    // Commits the standby lacks, in segments the daemon has applied: it must keep them.
    const std::size_t at_stop = load.acked_count();
    ASSERT_TRUE(wait_until([&] { return load.acked_count() > at_stop + 1500; }, 60s)) << d.output();
    EXPECT_TRUE(wait_until([&] { return d.metric("pm_ingest_wal_segments_awaiting_replication") > 0; }, 20s)) << "segments kept";
    if (fault == Fault::LaggingStandbyAndRestart) {
      // A restart's recovery must not delete what the standby still lacks.
      EXPECT_EQ(d.stop(), 0);
      d.start();
      EXPECT_TRUE(wait_until([&] { return d.metric("pm_ingest_wal_segments_awaiting_replication") > 0; }, 20s))
          << "segments kept after the restart";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 300)(rng)));  // a random moment
  } else {
    primary.hold_commits();
    ASSERT_TRUE(primary.wait_for_held_commit(30s)) << "no COMMIT of the daemon waited for the synchronous standby";
  }
  const std::size_t acked_before_failover = load.acked_count();
  const double in_doubt_before = d.metric("pm_ingest_database_errors_total{kind=\"in_doubt\"}");
  primary.crash();
  if (fault != Fault::CommitInFlight) standby->start();  // it cannot reach the primary any more
  standby->promote();

  // The daemon follows by itself: acks never stopped (the log takes them), and the new primary
  // gets everything, including what it lacked.
  ASSERT_TRUE(wait_until([&] { return load.acked_count() > acked_before_failover + 500; }, 60s)) << d.output();
  load.stop();
  const std::string url = standby->url();
  // Every record the daemon appended applied on the new primary (not the sampled unapplied gauge,
  // whose 0 can predate the last chunks), then the checks.
  ASSERT_TRUE(wait_until_log_applied(url, d, 60s)) << d.output();
  expect_exactly_what_was_acked(url, load);
  expect_each_record_applied_once(url);
  expect_triggers_and_watermarks_consistent(url, load);
  if (fault == Fault::CommitInFlight) {
    EXPECT_GT(d.metric("pm_ingest_database_errors_total{kind=\"in_doubt\"}"), in_doubt_before) << "a COMMIT was cut off";
  }
  EXPECT_EQ(d.stop(), 0);
  std::printf("[ figures ] round %d: %zu trades acked (%zu before the failover), %zu first triggers acked\n", round,
              load.acked_count(), acked_before_failover, load.triggers_acked().size());
}

TEST(Failover, PromotedAsynchronousStandbyGetsEveryAckedEventExactlyOnce) {
  if (::access("/usr/lib/postgresql/15/bin/pg_basebackup", X_OK) != 0)
    GTEST_SKIP() << "pg_basebackup missing: scripts/setup.sh installs postgresql-15";
  const std::uint32_t seed = static_cast<std::uint32_t>(std::random_device{}());
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const int rounds = std::getenv("PM_FAILOVER_ROUNDS") != nullptr ? std::atoi(std::getenv("PM_FAILOVER_ROUNDS")) : 5;
  for (int round = 0; round < rounds && !HasFatalFailure(); ++round)
    failover_round(rng, round == 2 ? Fault::CommitInFlight : round == 1 ? Fault::LaggingStandbyAndRestart : Fault::LaggingStandby, round);
}


bool database_reachable(const DaemonHarness& d) {
  const HttpResponse r = http_request(d.metrics_port(), "GET", "/readyz");
  return r.body.find("\"database_reachable\":{\"ok\":true") != std::string::npos;
}

TEST(Failover, AnIdleDaemonNoticesTheLostPrimaryAndFollowsThePromotedStandby) {
  Pair pair;
  DaemonHarness d(multi_host_url(pair.primary, *pair.standby));
  d.start();
  ASSERT_TRUE(wait_until([&] { return database_reachable(d); }, 30s)) << d.output();
  pair.primary.crash();
  // Nothing is sent: only the daemon's own look at the server can notice (every second).
  EXPECT_TRUE(wait_until([&] { return !database_reachable(d); }, 10s)) << d.output();
  pair.standby->promote();
  EXPECT_TRUE(wait_until([&] { return database_reachable(d); }, 30s)) << d.output();
  Producer p(d.socket());
  ASSERT_TRUE(p.send({trade_line("c", "after_promotion")}));
  ASSERT_TRUE(p.wait_ack(1, 10s));
  EXPECT_TRUE(wait_until([&] { return query_count(pair.standby->url(), "SELECT count(*) FROM polymarket_trades") == 1; }, 60s));
}

TEST(Failover, NothingIsWrittenToAStandbyEvenWhenTheUrlNamesOnlyIt) {
  Pair pair;
  DaemonHarness d(pair.standby->url());  // no target_session_attrs: libpq takes the standby
  d.start();
  Producer p(d.socket());
  ASSERT_TRUE(p.send({trade_line("c", "while_standby")}));
  ASSERT_TRUE(p.wait_ack(1, 10s)) << "the log still takes the line";
  EXPECT_TRUE(wait_until([&] { return d.output().find("is a standby") != std::string::npos; }, 20s)) << d.output();
  EXPECT_FALSE(database_reachable(d));
  EXPECT_EQ(d.output().find("read-only"), std::string::npos) << "a write reached the standby: " << d.output();
  // Promoted (the old primary stopped first, as a failover would), the same server takes it.
  pair.primary.crash();
  pair.standby->promote();
  EXPECT_TRUE(wait_until([&] { return query_count(pair.standby->url(), "SELECT count(*) FROM polymarket_trades") == 1; }, 60s))
      << d.output() << d.metrics();
}

// A COMMIT whose reply never arrives (its session ended while the commit waited for a synchronous
// standby: committed locally, as PostgreSQL tells the ended session) is InDoubt for the daemon. The
// checkpoint read at the reconnect shows the batch committed: nothing is applied twice, and its
// events are counted as applied all the same (before, the counter missed them for good). Such a
// batch did commit, so the next failure waits the initial retry delay (100 ms, drawn from 50-100)
// again: three rounds in a row must not double the waits.
TEST(Failover, EventsOfACommitWhoseReplyWasLostAreCountedOnceTheCheckpointShowsThem) {
  HeldCommitServer held;
  ASSERT_TRUE(held.start_holding_commits()) << held.daemon.output();
  PgCluster& server = held.server;
  DaemonHarness& d = held.daemon;

  constexpr int kRounds = 3;
  constexpr int kPerRound = 100;
  Producer p(d.socket());
  for (int round = 0; round < kRounds; ++round) {
    ASSERT_TRUE(p.send(trade_lines("c_unseen", "u" + std::to_string(round) + "_", kPerRound)));
    ASSERT_TRUE(p.wait_ack(static_cast<std::uint64_t>(kPerRound * (round + 1)), 10s)) << "the log acks without PostgreSQL";
    ASSERT_TRUE(server.wait_for_held_commit(30s)) << "round " << round << ": " << d.output();
    server.end_held_commit_sessions();
    ASSERT_TRUE(wait_until([&] { return d.metric("pm_ingest_database_errors_total{kind=\"in_doubt\"}") == round + 1; }, 30s))
        << "round " << round << ": " << d.output();
  }
  server.release_commits();

  constexpr int kEvents = kRounds * kPerRound;
  ASSERT_TRUE(wait_until([&] { return query_count(server.url(), "SELECT count(*) FROM polymarket_trades") == kEvents; }, 60s))
      << d.output();
  // The gauge is sampled every 250 ms: it may still show 0 from before the last round was acked,
  // so the count itself is waited for (at least every event), then must be exactly that.
  ASSERT_TRUE(wait_until([&] {
    return d.metric("pm_ingest_applied_events_total") >= kEvents && d.metric("pm_ingest_wal_unapplied_events") == 0;
  }, 30s)) << d.metrics() << d.output();
  EXPECT_EQ(d.metric("pm_ingest_applied_events_total"), kEvents) << d.metrics() << d.output();
  EXPECT_NE(d.output().find("committed in batches whose outcome was lost"), std::string::npos) << d.output();
  const std::vector<int> waits = announced_waits(d.output(), "failed (in_doubt)");
  EXPECT_EQ(waits.size(), static_cast<std::size_t>(kRounds)) << d.output();
  for (std::size_t i = 0; i < waits.size(); ++i)
    EXPECT_LE(waits[i], 100) << "in-doubt failure " << i + 1 << " waited " << waits[i] << " ms: " << d.output();
  expect_each_record_applied_once(server.url());
  EXPECT_EQ(d.stop(), 0) << d.output();
}

// The same for a dead letter: the store of a refused event in pm_dead_letters commits, its reply is
// lost, and the checkpoint read at the reconnect shows it. The event is not refused and stored
// again, and it counts as dead-lettered (before, as applied only: an alert on dead letters missed it).
TEST(Failover, ADeadLetterWhoseCommitReplyWasLostIsCountedOnceTheCheckpointShowsIt) {
  HeldCommitServer held("ALTER TABLE polymarket_trades ADD CONSTRAINT test_no_poison CHECK (trade_id <> 'poison')");
  ASSERT_TRUE(held.start_holding_commits()) << held.daemon.output();
  PgCluster& server = held.server;
  DaemonHarness& d = held.daemon;

  Producer p(d.socket());
  ASSERT_TRUE(p.send({trade_line("c_letter", "poison")}));
  ASSERT_TRUE(p.wait_ack(1, 10s)) << "the log acks without PostgreSQL";
  // The batch is refused (rolled back, nothing held); the dead letter's COMMIT is the one held.
  ASSERT_TRUE(server.wait_for_held_commit(30s)) << d.output();
  server.end_held_commit_sessions();
  ASSERT_TRUE(wait_until([&] { return d.metric("pm_ingest_database_errors_total{kind=\"in_doubt\"}") == 1; }, 30s))
      << d.output();
  ASSERT_TRUE(wait_until([&] { return d.metric("pm_ingest_dead_lettered_events_total") == 1; }, 30s))
      << d.metrics() << d.output();
  server.release_commits();
  ASSERT_TRUE(wait_until([&] { return d.metric("pm_ingest_wal_unapplied_events") == 0; }, 30s)) << d.metrics();

  EXPECT_EQ(d.metric("pm_ingest_applied_events_total"), 1) << d.metrics();
  EXPECT_EQ(d.metric("pm_ingest_dead_lettered_events_total"), 1) << d.metrics() << d.output();
  EXPECT_EQ(d.output().find("stored in pm_dead_letters"), std::string::npos) << "stored a second time: " << d.output();
  EXPECT_EQ(d.metric("pm_ingest_rows_written_total{table=\"pm_dead_letters\"}"), 1) << d.metrics();
  EXPECT_NE(d.output().find("storing it in pm_dead_letters lost its COMMIT reply"), std::string::npos) << d.output();
  EXPECT_NE(d.output().find("among them the dead letter of lsn 1"), std::string::npos) << d.output();
  EXPECT_EQ(server.query("SELECT count(*) FROM pm_dead_letters WHERE lsn = 1 AND sqlstate = '23514'"), "1");
  EXPECT_EQ(server.query("SELECT count(*) FROM polymarket_trades"), "0");
  EXPECT_EQ(server.query("SELECT lsn FROM pm_ingest_checkpoints"), "1");
  EXPECT_EQ(d.stop(), 0) << d.output();
}

// A batch in flight to a host that vanished (its packets held: nothing refused, nothing
// acknowledged) fails within libpq's tcp_user_timeout, 30 s by default (DatabaseConfig). TCP
// keepalives never fire while sent data waits for its acknowledgement: before, the batch (or the
// idle check's query, whichever was sent first) waited out TCP's retransmissions (~15 minutes), and
// the writer with it. Once the host is back the writer reconnects and every event lands once.
TEST(Failover, ABatchInFlightToAVanishedHostFailsWithinTheUserTimeout) {
  PrivateNetwork network;  // first: the server and the daemon run inside it
  if (!network.available()) GTEST_SKIP() << network.why();
  PgCluster server;
  server.start();
  migrate(server.url());
  DaemonHarness d(server.url(), {"--writer-connections", "1"});
  d.start();
  ASSERT_TRUE(wait_until([&] { return d.metric("pm_ingest_database_up") == 1; }, 30s)) << d.output();
  Producer p(d.socket());
  ASSERT_TRUE(p.send(trade_lines("c_vanish", "before_", 100)));
  ASSERT_TRUE(p.wait_ack(100, 10s));
  ASSERT_TRUE(wait_until([&] { return d.metric("pm_ingest_wal_unapplied_events") == 0; }, 30s)) << d.output();

  const std::size_t output_before = d.output().size();
  network.black_hole(server.port());
  const auto vanished = std::chrono::steady_clock::now();
  ASSERT_TRUE(p.send(trade_lines("c_vanish", "during_", 100)));
  ASSERT_TRUE(p.wait_ack(200, 10s)) << "the log acks without PostgreSQL";
  const bool failed = wait_until([&] { return writer_lost_its_connection_since(d, output_before); }, 90s);
  const auto waited = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - vanished);
  network.restore();
  ASSERT_TRUE(failed) << "the batch still waited on the vanished host after 90 s: " << d.output();
  EXPECT_GE(waited.count(), 25) << "failed before the user timeout: " << d.output();
  EXPECT_LT(waited.count(), 45) << d.output();

  ASSERT_TRUE(wait_until([&] { return query_count(server.url(), "SELECT count(*) FROM polymarket_trades") == 200; }, 60s))
      << d.output();
  ASSERT_TRUE(wait_until([&] { return d.metric("pm_ingest_wal_unapplied_events") == 0; }, 30s)) << d.metrics();
  expect_each_record_applied_once(server.url());
  EXPECT_EQ(d.stop(), 0) << d.output();
}

// A batch's COMMIT held by a synchronous standby (`--synchronous-commit on`: the COMMIT waits for
// it) while the writer's connection is cut (in doubt, invisible), which lands only after the
// writer reconnected and read the checkpoint again: the writer's next copy of those events waits
// for it, then finds the checkpoint moved past them (CheckpointConflict), reads it again and goes
// on. Every event is stored once, the checkpoint's
// applied count equals its lsn, the daemon serves on and stops cleanly.
TEST(Failover, ACommitInDoubtThatLandsAfterTheWriterReadTheCheckpointAgainIsAppliedOnce) {
  PrivateNetwork network;  // first: the server and the daemon run inside it
  if (!network.available()) GTEST_SKIP() << network.why();
  PgCluster server;
  server.start();
  migrate(server.url());
  // The cut connection is given up within seconds (the URL's settings come before the daemon's).
  DaemonHarness d(server.url() + "?keepalives_idle=1&keepalives_interval=1&keepalives_count=2&tcp_user_timeout=3000",
                  {"--writer-connections", "1", "--synchronous-commit", "on"});
  d.start();
  ASSERT_TRUE(wait_until([&] { return d.metric("pm_ingest_database_up") == 1; }, 30s)) << d.output();
  const ReleaseHeldCommits release{network, server};  // whatever fails, nothing is left waiting on the held commit
  server.hold_commits();
  Producer p(d.socket());
  ASSERT_TRUE(p.send(trade_lines("c_late", "held_", 100)));
  ASSERT_TRUE(p.wait_ack(100, 10s)) << "the log acks whatever PostgreSQL does";
  ASSERT_TRUE(server.wait_for_held_commit(30s)) << d.output();
  const std::size_t output_before = d.output().size();
  network.black_hole(server.port());
  const bool in_doubt = wait_until([&] { return writer_lost_its_connection_since(d, output_before); }, 60s);
  network.restore();
  ASSERT_TRUE(in_doubt) << "the held COMMIT was not given up: " << d.output();
  ASSERT_TRUE(wait_until([&] {
    return server.query("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'") != "0";
  }, 60s)) << "the writer's next copy of the batch did not wait for the held one: " << d.output();
  server.release_commits();

  ASSERT_TRUE(p.send(trade_lines("c_late", "after_", 100)));
  ASSERT_TRUE(p.wait_ack(200, 10s));
  ASSERT_TRUE(wait_until([&] { return query_count(server.url(), "SELECT count(*) FROM polymarket_trades") == 200; }, 60s))
      << d.output();
  ASSERT_TRUE(wait_until_log_applied(server.url(), d)) << d.output();
  expect_each_record_applied_once(server.url());
  EXPECT_TRUE(d.logged_since(output_before, "was not advanced to lsn"))
      << "the writer's copy did not meet the landed commit (the case this test is about): " << d.output();
  EXPECT_EQ(d.stop(), 0) << d.output();
}

// pm-ingestctl takes the same multi-host URL and finds the primary even when a standby is named
// first; without target_session_attrs it would land on the standby, which refuses writes.
TEST(Failover, CtlFindsThePrimaryInAMultiHostUrl) {
  Pair pair;
  const std::string standby_first = "postgresql://postgres@127.0.0.1:" + std::to_string(pair.standby->port()) +
                                    ",127.0.0.1:" + std::to_string(pair.primary.port()) + "/postgres";
  const test::Run to_primary = run_ctl({"migrate", "--database-url", standby_first + "?target_session_attrs=read-write"});
  EXPECT_EQ(to_primary.code, 0) << to_primary.output;
  const test::Run to_standby = run_ctl({"migrate", "--database-url", standby_first});
  EXPECT_NE(to_standby.code, 0) << to_standby.output;
  EXPECT_NE(to_standby.output.find("read-only"), std::string::npos) << to_standby.output;
}

}  // namespace
}  // namespace pm::test
