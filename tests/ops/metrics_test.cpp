// /metrics, /healthz and /readyz of the real pm-ingestd, and promtool's lint of a live scrape.
#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cmath>

#include "tests/e2e/e2e_util.h"
#include "tests/ops/ops_util.h"
#include "tests/support/black_hole.h"
#include "tests/support/daemon_harness.h"
#include "tests/support/producer.h"
#include "tests/support/test_database.h"

namespace pm::test {
namespace {

using namespace std::chrono_literals;

class OpsMetrics : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { tdb_ = new TestDatabase("ops_metrics"); }
  static void TearDownTestSuite() { delete tdb_; }
  void SetUp() override {
    tdb_->exec("TRUNCATE polymarket_trades, polymarket_first_triggers, trade_watermarks, trigger_watermarks, "
               "pm_ingest_checkpoints, pm_dead_letters");
  }
  static TestDatabase* tdb_;
};
TestDatabase* OpsMetrics::tdb_ = nullptr;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST_F(OpsMetrics, HealthzAndReadyzAnswerNextToMetrics) {
  DaemonHarness d(tdb_->url());
  d.start();
  const int port = d.metrics_port();

  const HttpResponse health = http_request(port, "GET", "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, "{\"status\":\"alive\"}\n");
  EXPECT_EQ(health.header("Content-Type"), "application/json");

  HttpResponse ready;
  ASSERT_TRUE(wait_until([&] { return (ready = http_request(port, "GET", "/readyz")).status == 200; }, 20s))
      << ready.status << " " << ready.body;
  for (const char* check : {"log_replayed", "socket_open", "database_reachable", "backlog_under_budget", "writer_running"})
    EXPECT_TRUE(contains(ready.body, std::string("\"") + check + "\":{\"ok\":true")) << check << " in " << ready.body;
  EXPECT_TRUE(contains(ready.body, "\"status\":\"ready\"")) << ready.body;
  EXPECT_TRUE(contains(ready.body, "\"failing\":[]")) << ready.body;

  const HttpResponse metrics = http_request(port, "GET", "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_EQ(metrics.header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(std::stoul(metrics.header("Content-Length")), metrics.body.size());
  EXPECT_TRUE(contains(metrics.body, "pm_ingest_build_info{version=\"")) << metrics.body.substr(0, 500);
  // The main loop publishes readiness as gauges too.
  EXPECT_TRUE(wait_until([&] { return d.metric("pm_ingest_ready") == 1; }, 10s)) << d.metrics();
  EXPECT_EQ(d.metric("pm_ingest_readiness_check{check=\"database_reachable\"}"), 1);

  EXPECT_EQ(http_request(port, "GET", "/nothing-here").status, 404);
  EXPECT_EQ(http_request(port, "POST", "/metrics").status, 405);
  const HttpResponse head = http_request(port, "HEAD", "/healthz");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.body, "");
  EXPECT_EQ(d.stop(), 0);
}

TEST_F(OpsMetrics, ReadyzNamesTheFailingChecksWhilePostgresIsDown) {
  DaemonHarness d(unreachable_database_url());
  d.start();
  const int port = d.metrics_port();
  EXPECT_EQ(http_request(port, "GET", "/healthz").status, 200) << "alive even without a database";
  {
    Producer p(d.socket());  // and still acks into the log
    ASSERT_TRUE(p.send({trade_line("c", "down1")}));
    ASSERT_TRUE(p.wait_ack(1, 10s));
  }
  const HttpResponse ready = http_request(port, "GET", "/readyz");
  EXPECT_EQ(ready.status, 503);
  EXPECT_TRUE(contains(ready.body, "\"status\":\"not_ready\"")) << ready.body;
  EXPECT_TRUE(contains(ready.body, "\"failing\":[\"log_replayed\",\"database_reachable\"]")) << ready.body;
  EXPECT_TRUE(contains(ready.body, "\"socket_open\":{\"ok\":true")) << ready.body;
  EXPECT_TRUE(contains(ready.body, "\"backlog_under_budget\":{\"ok\":true")) << ready.body;
  EXPECT_TRUE(wait_until([&] { return d.metric("pm_ingest_readiness_check{check=\"database_reachable\"}") == 0; }, 10s));
  EXPECT_EQ(d.metric("pm_ingest_ready"), 0);
  EXPECT_EQ(d.metric("pm_ingest_database_up"), 0);
  // Nothing applied since the start: unknown, not "applied just now" (it read 0).
  EXPECT_TRUE(std::isnan(d.metric("pm_ingest_newest_applied_event_age_seconds"))) << d.metrics();
  EXPECT_TRUE(std::isnan(d.metric("pm_ingest_newest_applied_event_timestamp_seconds"))) << d.metrics();

  // The database comes back (the same daemon, pointed at a reachable one after a restart).
  EXPECT_EQ(d.stop(), 0);
  d.database_url() = tdb_->url();
  d.start();  // its metrics port may have moved (DaemonHarness::start)
  EXPECT_TRUE(wait_until([&] { return http_request(d.metrics_port(), "GET", "/readyz").status == 200; }, 20s))
      << http_request(d.metrics_port(), "GET", "/readyz").body;
  EXPECT_EQ(tdb_->count("polymarket_trades"), 1);
  EXPECT_TRUE(wait_until([&] { return d.metric("pm_ingest_newest_applied_event_age_seconds") >= 0; }, 10s)) << d.metrics();
  EXPECT_GT(d.metric("pm_ingest_newest_applied_event_timestamp_seconds"), 1.6e9) << d.metrics();
}

// A daemon whose socket file was removed, or replaced by another socket, goes on accepting on a
// socket no producer can reach any more. It said "ready" (socket_open ok), and at its stop it
// removed whatever file was at the path then: another daemon's socket.
TEST_F(OpsMetrics, ReadyzFailsOnceTheSocketFileIsRemovedOrReplacedAndTheStopLeavesAReplacementAlone) {
  DaemonHarness d(tdb_->url());
  d.start();
  const int port = d.metrics_port();
  ASSERT_TRUE(wait_until([&] { return http_request(port, "GET", "/readyz").status == 200; }, 20s));
  const std::size_t output_before = d.output().size();

  ASSERT_EQ(::unlink(d.socket().c_str()), 0);
  HttpResponse ready;
  ASSERT_TRUE(wait_until([&] { return (ready = http_request(port, "GET", "/readyz")).status == 503; }, 10s)) << ready.body;
  EXPECT_TRUE(contains(ready.body, "\"failing\":[\"socket_open\"]")) << ready.body;
  EXPECT_TRUE(contains(ready.body, d.socket() + " was removed or replaced")) << ready.body;
  EXPECT_TRUE(wait_until([&] { return d.metric("pm_ingest_readiness_check{check=\"socket_open\"}") == 0; }, 10s));
  EXPECT_TRUE(wait_until([&] { return d.logged_since(output_before, "not ready: " + d.socket() + " was removed"); }, 10s))
      << d.output().substr(output_before);

  // Another socket at the path: still not this daemon's, and its stop must not remove it.
  const int other = listen_at(d.socket());
  ASSERT_GE(other, 0) << std::strerror(errno);
  ready = http_request(port, "GET", "/readyz");
  EXPECT_EQ(ready.status, 503) << ready.body;
  EXPECT_EQ(d.stop(), 0);
  struct stat st {};
  EXPECT_EQ(::stat(d.socket().c_str(), &st), 0) << "the stop removed another socket's file";
  EXPECT_TRUE(contains(d.output(), "no longer leads to this daemon's socket (removed or replaced); not removing it"));
  ::close(other);
}

// "N of M log bytes used" from the readiness detail.
std::uint64_t budget_used_from(const std::string& readyz) {
  const auto key = readyz.find("\"backlog_under_budget\"");
  const auto detail = readyz.find("\"detail\":\"", key);
  return std::stoull(readyz.substr(detail + 10));
}

TEST_F(OpsMetrics, ReadyzFailsFromNinetyPercentOfTheBudgetAndOnAStalledWriter) {
  // The writer blocks on a table lock held by this test: it stays connected while acked events
  // pile up in the log, and its loop stops going round. Budget 8 KiB: not ready from 7,372 bytes.
  DaemonHarness d(tdb_->url(), {"--wal-max-bytes", "8K", "--writer-stall-timeout", "1"});
  d.start();
  const int port = d.metrics_port();
  ASSERT_TRUE(wait_until([&] { return http_request(port, "GET", "/readyz").status == 200; }, 20s));

  // The log is read from here on: a writer late by a second under load before the lock printed
  // the stall (and running-again) lines already.
  const std::size_t output_before = d.output().size();
  auto locker = std::make_unique<pqxx::connection>(tdb_->url());
  auto lock = std::make_unique<pqxx::work>(*locker);
  lock->exec0("LOCK TABLE polymarket_trades IN ACCESS EXCLUSIVE MODE");
  Producer p(d.socket());
  const std::uint64_t limit = 8192 / 10 * 9;
  int sent = 0;
  std::uint64_t unapplied = 0;
  HttpResponse ready;
  while (unapplied < limit) {
    ASSERT_LT(sent, 100) << "the backlog never reached 90% of the budget: " << ready.body;
    ASSERT_TRUE(p.send({trade_line("c", "budget" + std::to_string(sent))}));
    ++sent;
    std::vector<Reply> seen;
    ASSERT_TRUE(p.wait_ack(static_cast<std::uint64_t>(sent), 10s, &seen));
    for (const auto& r : seen) ASSERT_TRUE(r.is_ack) << "line " << r.line << " got " << r.error << " below 90%";
    ready = http_request(port, "GET", "/readyz");
    unapplied = budget_used_from(ready.body);
    EXPECT_EQ(contains(ready.body, "\"backlog_under_budget\":{\"ok\":true"), unapplied < limit) << ready.body;
  }
  EXPECT_EQ(ready.status, 503) << ready.body;
  EXPECT_TRUE(contains(ready.body, "\"database_reachable\":{\"ok\":true")) << ready.body;
  ASSERT_TRUE(wait_until(
      [&] {
        ready = http_request(port, "GET", "/readyz");
        return contains(ready.body, "\"failing\":[\"backlog_under_budget\",\"writer_running\"]");
      },
      20s))
      << ready.body;
  EXPECT_TRUE(wait_until([&] { return d.logged_since(output_before, "the writer thread has not gone round its loop"); }, 10s)) << d.output();
  EXPECT_GE(d.metric("pm_ingest_writer_heartbeat_age_seconds"), 1.0);

  lock->abort();
  lock.reset();
  EXPECT_TRUE(wait_until([&] { return http_request(port, "GET", "/readyz").status == 200; }, 20s))
      << http_request(port, "GET", "/readyz").body;
  EXPECT_TRUE(wait_until([&] { return tdb_->count("polymarket_trades") == sent; }, 20s));
  EXPECT_TRUE(wait_until([&] { return d.logged_since(output_before, "the writer thread is running again"); }, 10s)) << d.output();
}

// A line answered `busy` is sent again by its producer: the received and stale counters (and the
// Polymarket message counters) count its events once, when they are taken, not at every attempt.
TEST_F(OpsMetrics, ALineAnsweredBusyIsCountedOnceWhenItIsTaken) {
  DaemonHarness d(tdb_->url(), {"--wal-max-bytes", "8K"});
  d.start();
  auto locker = std::make_unique<pqxx::connection>(tdb_->url());
  auto lock = std::make_unique<pqxx::work>(*locker);
  lock->exec0("LOCK TABLE polymarket_trades IN ACCESS EXCLUSIVE MODE");  // nothing is applied: the budget fills
  Producer p(d.socket());
  std::uint64_t sent = 0;
  int taken = 0, busy = 0;
  const auto send = [&](int i) {
    ASSERT_TRUE(p.send({trade_line("c", "stale" + std::to_string(i), 1'600'000'000)}));  // stale on arrival (G1)
    std::vector<Reply> replies;
    ASSERT_TRUE(p.wait_ack(++sent, 10s, &replies));
    const bool refused = std::any_of(replies.begin(), replies.end(), [](const Reply& r) { return r.error == "busy"; });
    (refused ? busy : taken) += 1;
  };
  // Line "stale<taken>" each time: a refused one is the next one sent again.
  for (int attempt = 0; busy < 3 && attempt < 200; ++attempt) send(taken);
  ASSERT_EQ(busy, 3) << "the 8K budget never filled";
  EXPECT_EQ(d.metric("pm_ingest_events_received_total{type=\"trade\"}"), taken);
  EXPECT_EQ(d.metric("pm_ingest_stale_events_total{type=\"trade\"}"), taken);
  lock->abort();
  lock.reset();
  ASSERT_TRUE(wait_until([&] { return tdb_->count("polymarket_trades") == taken; }, 20s));
  // The refused line, sent until it is taken (the writer may not have freed the budget yet when
  // the rows are visible): however many attempts, it counts once.
  const int before = taken;
  EXPECT_TRUE(wait_until([&] {
    send(taken);
    return taken > before;
  }, 20s));
  EXPECT_EQ(taken, before + 1);
  EXPECT_EQ(d.metric("pm_ingest_events_received_total{type=\"trade\"}"), taken);
  EXPECT_EQ(d.metric("pm_ingest_stale_events_total{type=\"trade\"}"), taken);
}

// With fewer standbys than --min-standbys the replication lag cannot be known: the gauge says NaN
// (it kept its last value, 0 here, which read as "the standbys are up to date").
TEST_F(OpsMetrics, TheReplicationLagIsNaNWhileItCannotBeKnown) {
  DaemonHarness d(tdb_->url(), {"--min-standbys", "1"});
  d.start();
  Producer p(d.socket());
  ASSERT_TRUE(p.send({trade_line("c", "lag")}));
  ASSERT_TRUE(p.wait_ack(1, 10s));
  ASSERT_TRUE(wait_until([&] { return contains(d.output(), "fewer than --min-standbys 1"); }, 30s)) << d.output();
  // The warning comes just before the gauge is set.
  EXPECT_TRUE(wait_until([&] { return std::isnan(d.metric("pm_ingest_replication_lag_bytes")); }, 30s)) << d.metrics();
}

TEST_F(OpsMetrics, AMetricsAddressThatCannotBeServedStopsTheStartWithTheReason) {
  DaemonHarness first(tdb_->url());
  first.start();
  const std::string busy = "127.0.0.1:" + std::to_string(first.metrics_port());
  for (const auto& [listen, reason] : std::vector<std::pair<std::string, std::string>>{
           {busy, "cannot listen on " + busy}, {"[::1]:9464", "no IPv6"}, {"nonsense", "must be host:port"}}) {
    const CommandResult r = run_command("DATABASE_URL=" + shell_quote(tdb_->url()) + " " + PM_INGESTD_BIN +
                                        " --socket " + first.dir() + "/second.sock --wal-dir " + first.dir() +
                                        "/second_wal --metrics-listen " + shell_quote(listen));
    EXPECT_EQ(r.exit_code, 1) << listen << ": " << r.output;
    EXPECT_TRUE(contains(r.output, reason)) << listen << ": " << r.output;
    // What parsing can tell is refused before the log's recovery (under systemd each restart
    // recovered the log again before failing the same way).
    if (listen != busy) {
      EXPECT_FALSE(contains(r.output, " recovered: ")) << listen << ": " << r.output;
    }
  }
  EXPECT_EQ(http_request(first.metrics_port(), "GET", "/healthz").status, 200) << "the first daemon keeps its port";
}

// A scrape with every labelled series populated: trades, triggers (G2 both ways), duplicates,
// rejects, stale events; then promtool's linter over it.
TEST_F(OpsMetrics, LiveScrapePassesPromtoolAndHoldsEverySeriesTheIssueLists) {
  if (!executable("/usr/bin/promtool")) GTEST_SKIP() << "promtool missing: apt-get install prometheus (scripts/setup.sh)";
  DaemonHarness d(tdb_->url());
  d.start();
  {
    Producer p(d.socket());
    const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    ASSERT_TRUE(p.send({trade_line("c1", "a", now_s), trade_line("c1", "a", now_s), trade_line("c1", "old", 1'600'000'000),
                        trigger_line("tokA", "c1", "0.9"), trigger_line("tokA", "c1", "0.9"), trigger_line("tokB", "c1", "0.9"),
                        "not json", R"({"type":"trade"})"}));
    ASSERT_TRUE(p.wait_ack(8, 10s));
  }
  ASSERT_TRUE(wait_until([&] { return d.metric("pm_ingest_applied_events_total") == 6; }, 20s)) << d.metrics();
  ASSERT_TRUE(wait_until([&] { return d.metric("pm_ingest_ready") == 1; }, 10s));
  const std::string scrape = d.metrics();

  const CommandResult lint = run_command("/usr/bin/promtool check metrics", scrape);
  EXPECT_EQ(lint.exit_code, 0) << lint.output;
  EXPECT_EQ(lint.output, "") << "promtool found problems";

  // The issue's list, series by series.
  for (const char* series : {
           "pm_ingest_events_received_total{type=\"trade\"} 3",
           "pm_ingest_events_received_total{type=\"trigger\"} 3",
           "pm_ingest_events_rejected_total{reason=\"parse\"} 1",
           "pm_ingest_events_rejected_total{reason=\"schema\"} 1",
           "pm_ingest_dedup_hits_total{kind=\"trade\"} 1",
           "pm_ingest_dedup_hits_total{kind=\"trigger_same_token\"} 1",
           "pm_ingest_dedup_hits_total{kind=\"trigger_other_token\"} 1",
           "pm_ingest_rows_written_total{table=\"polymarket_trades\"} 2",
           "pm_ingest_rows_written_total{table=\"polymarket_first_triggers\"} 1",
           "pm_ingest_stale_events_total{type=\"trade\"} 1",
           "pm_ingest_database_up 1",
           "pm_ingest_dead_lettered_events_total 0",
           "pm_ingest_producers_connected 0",
           "pm_ingest_connections_refused_total{reason=\"peer_credentials\"} 0",
           "pm_ingest_ready 1",
       })
    EXPECT_TRUE(contains(scrape, std::string("\n") + series + "\n")) << series;
  for (const char* family : {
           "pm_ingest_wal_appended_bytes_total counter", "pm_ingest_wal_fsync_duration_seconds histogram",
           "pm_ingest_wal_unapplied_bytes gauge", "pm_ingest_wal_unapplied_events gauge", "pm_ingest_wal_budget_used_bytes gauge", "pm_ingest_queue_events gauge",
           "pm_ingest_writer_batches_in_flight gauge", "pm_ingest_writer_connections gauge",
           "pm_ingest_batch_events histogram", "pm_ingest_batch_commit_duration_seconds histogram",
           "pm_ingest_batch_phase_duration_seconds histogram",
           "pm_ingest_lag_oldest_unapplied_seconds gauge", "pm_ingest_newest_applied_event_age_seconds gauge",
           "pm_ingest_newest_applied_event_timestamp_seconds gauge", "pm_ingest_database_errors_total counter",
           "pm_ingest_database_stale_host_answers_total counter",
           "pm_ingest_build_info gauge", "pm_ingest_writer_heartbeat_age_seconds gauge", "pm_ingest_wal_budget_bytes gauge",
           "pm_ingest_readiness_check gauge", "pm_ingest_watchdog_pings_total counter", "pm_ingest_start_time_seconds gauge",
           "pm_ingest_event_visible_seconds histogram", "pm_ingest_event_visible_alert_threshold_seconds gauge",
           "pm_ingest_event_waiting_seconds histogram",
           "pm_ingest_hellos_total counter", "pm_ingest_polymarket_messages_total counter"})
    EXPECT_TRUE(contains(scrape, std::string("# TYPE ") + family + "\n")) << family;
  EXPECT_GT(d.metric("pm_ingest_wal_fsync_duration_seconds_count"), 0);
  EXPECT_GT(d.metric("pm_ingest_batch_commit_duration_seconds_count"), 0);
  // Every committed batch is split into its phases, and the phases add up to its whole time.
  const double batches = metric_value(scrape, "pm_ingest_batch_commit_duration_seconds_count");
  double phase_seconds = 0;
  for (const char* phase : {"begin", "trades", "finish", "durable", "turn", "commit"}) {
    const std::string labels = std::string("{phase=\"") + phase + "\"}";
    EXPECT_EQ(metric_value(scrape, "pm_ingest_batch_phase_duration_seconds_count" + labels), batches) << phase;
    phase_seconds += metric_value(scrape, "pm_ingest_batch_phase_duration_seconds_sum" + labels);
  }
  EXPECT_NEAR(phase_seconds, metric_value(scrape, "pm_ingest_batch_commit_duration_seconds_sum"), 1e-6);
  EXPECT_EQ(d.metric("pm_ingest_wal_budget_bytes"), 4294967296.0);
  EXPECT_EQ(d.metric("pm_ingest_writer_connections"), 2.0);  // the default
  // Freshness is observed once per applied event (issue 15), and the alert bound is the default.
  EXPECT_EQ(d.metric("pm_ingest_event_visible_seconds_count"), d.metric("pm_ingest_applied_events_total"));
  // Each event's wait before its batch began is part of its time to visible: per event, never more.
  EXPECT_EQ(metric_value(scrape, "pm_ingest_event_waiting_seconds_count"),
            metric_value(scrape, "pm_ingest_event_visible_seconds_count"));
  EXPECT_LE(metric_value(scrape, "pm_ingest_event_waiting_seconds_sum"),
            metric_value(scrape, "pm_ingest_event_visible_seconds_sum"));
  EXPECT_EQ(d.metric("pm_ingest_event_visible_alert_threshold_seconds"), 1.0);
}

}  // namespace
}  // namespace pm::test
