// pm-ingestd end to end: the real binary, a real Unix socket, real PostgreSQL.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "ingest/archive/segment_archiver.h"
#include "ingest/log/log_fs.h"
#include "ingest/log/wal_directory.h"
#include "ingest/server/unix_socket.h"
#include "repos/pg_errors.h"
#include "tests/e2e/e2e_util.h"
#include "tests/support/daemon_harness.h"
#include "tests/support/producer.h"
#include "tests/support/test_database.h"

namespace pm::test {
namespace {

using namespace std::chrono_literals;

class DaemonTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { tdb_ = new TestDatabase("e2e"); }
  static void TearDownTestSuite() { delete tdb_; }
  void SetUp() override {
    tdb_->exec("TRUNCATE polymarket_trades, polymarket_first_triggers, trade_watermarks, trigger_watermarks, "
               "pm_ingest_checkpoints, pm_dead_letters");
  }
  long long count(const std::string& sql) { return query_count(tdb_->url(), sql); }
  bool wait_count(const std::string& sql, long long expected, std::chrono::milliseconds timeout = 20s) {
    return wait_until([&] { return count(sql) == expected; }, timeout);
  }
  static TestDatabase* tdb_;
};
TestDatabase* DaemonTest::tdb_ = nullptr;

// Runs `statements` on `db`, each on its own, when the scope ends, however the test ends (the
// database is shared by the suite). A failing one fails the test: a throw from a destructor would
// end the whole binary.
class SqlAtExit {
 public:
  SqlAtExit(TestDatabase& db, std::vector<std::string> statements) : db_(db), statements_(std::move(statements)) {}
  SqlAtExit(const SqlAtExit&) = delete;
  SqlAtExit& operator=(const SqlAtExit&) = delete;
  ~SqlAtExit() {
    for (const std::string& sql : statements_) {
      try {
        db_.exec(sql);
      } catch (const std::exception& e) {
        ADD_FAILURE() << "clean-up `" << sql << "` failed: " << e.what();
      }
    }
  }

 private:
  TestDatabase& db_;
  const std::vector<std::string> statements_;
};

const std::string kTrades = "SELECT count(*) FROM polymarket_trades";
const std::string kTriggers = "SELECT count(*) FROM polymarket_first_triggers";

TEST_F(DaemonTest, EventsInRowsOutWithErrorRepliesByLine) {
  DaemonHarness d(tdb_->url());
  d.start();
  Producer p(d.socket());
  const std::string good = trade_line("c1", "t1", 1'700'000'000, "\"0.25\"");
  ASSERT_TRUE(p.send({good, "not json", trade_line("c1", "t2"), R"({"type":"trade","condition_id":"c1"})",
                      trigger_line("tokA", "c1", "0.95"), trade_line("c1", "t3", 1'700'000'000'000)}));
  auto replies = p.wait_ack(6, 10s);
  ASSERT_TRUE(replies);
  ASSERT_EQ(replies->size(), 4u);
  EXPECT_EQ((*replies)[0].error, "parse");
  EXPECT_EQ((*replies)[0].line, 2u);
  EXPECT_EQ((*replies)[1].error, "schema");
  EXPECT_EQ((*replies)[1].line, 4u);
  EXPECT_EQ((*replies)[2].error, "timestamp_units");
  EXPECT_EQ((*replies)[2].line, 6u);
  EXPECT_TRUE((*replies)[3].is_ack);
  EXPECT_EQ((*replies)[3].ack, 6u);
  ASSERT_TRUE(wait_count(kTrades, 2));
  ASSERT_TRUE(wait_count(kTriggers, 1));
  pqxx::connection c(tdb_->url());
  pqxx::nontransaction tx(c);
  auto row = tx.exec1("SELECT price, side, \"timestamp\", raw_json, size FROM polymarket_trades WHERE trade_id = 't1'");
  EXPECT_NEAR(row[0].as<double>(), 0.25, 1e-6);
  EXPECT_EQ(row[1].as<std::string>(), "BUY");
  EXPECT_EQ(row[2].as<long long>(), 1'700'000'000'000);  // stored in ms, the default unit
  EXPECT_EQ(row[3].as<std::string>(), good);               // the received line
  EXPECT_EQ(count("SELECT count(*) FROM pm_ingest_checkpoints WHERE lsn = 3 AND applied_events = 3"), 1);
}

// --wal-preallocate (default on): the next segment's file is prepared as zeros (spare.zeros), and
// a new log's first segment, which grows with its appends, is left for it as soon as it is ready;
// off: no spare, and segments hold their records alone. Both store every event.
TEST_F(DaemonTest, TheNextSegmentIsPreparedAsZerosUnlessPreallocateIsOff) {
  for (const bool on : {true, false}) {
    SCOPED_TRACE(on ? "--wal-preallocate on" : "--wal-preallocate off");
    const std::string id = on ? "prealloc-on" : "prealloc-off";
    DaemonHarness d(tdb_->url(), {"--instance-id", id, "--wal-segment-bytes", "64K", "--wal-preallocate", on ? "on" : "off"});
    d.start();
    Producer p(d.socket());
    // ~28K of records: over a quarter of the 64K segment (the spare is asked for) and under all of it.
    const auto send_trades = [&](int from, int to) {
      std::vector<std::string> lines;
      for (int i = from; i < to; ++i) lines.push_back(trade_line(id, "t" + std::to_string(i)));
      return p.send(lines) && p.wait_ack(static_cast<std::uint64_t>(to), 10s);
    };
    ASSERT_TRUE(send_trades(0, 100));
    const std::string spare = d.wal_dir() + "/spare.zeros";
    const std::string first = d.wal_dir() + "/0000000000000001.wal";
    const std::string second = d.wal_dir() + "/0000000000000002.wal";
    if (on) {
      ASSERT_TRUE(wait_until([&] { return std::filesystem::exists(spare); }, 10s)) << "no spare was prepared";
      ASSERT_TRUE(send_trades(100, 101));  // the first group after the spare is ready starts segment 2
      ASSERT_TRUE(std::filesystem::exists(second)) << "the growing first segment was not left for the spare";
      EXPECT_EQ(std::filesystem::file_size(second), 64u << 10) << "the second segment did not start from a spare";
      EXPECT_LT(std::filesystem::file_size(first), 64u << 10);
    } else {
      ASSERT_TRUE(send_trades(100, 400));  // fills segment 1 past 64K; a later group starts segment 2
      ASSERT_TRUE(send_trades(400, 401));
      ASSERT_TRUE(std::filesystem::exists(second));
      EXPECT_FALSE(std::filesystem::exists(spare));
      EXPECT_LT(std::filesystem::file_size(second), 64u << 10);
    }
    const int sent = on ? 101 : 401;
    ASSERT_TRUE(wait_count("SELECT count(*) FROM polymarket_trades WHERE condition_id = '" + id + "'", sent));
  }
}

TEST_F(DaemonTest, AcksAreCumulativeAcrossChunksAndConnectionsStayOpen) {
  DaemonHarness d(tdb_->url());
  d.start();
  Producer p(d.socket());
  std::uint64_t sent = 0;
  for (int chunk = 0; chunk < 5; ++chunk) {
    std::vector<std::string> lines;
    for (int i = 0; i < 20; ++i) lines.push_back(trade_line("c", "ch" + std::to_string(chunk) + "_" + std::to_string(i)));
    lines.push_back("{broken");
    ASSERT_TRUE(p.send(lines));
    sent += lines.size();
    std::vector<Reply> seen;
    ASSERT_TRUE(p.wait_ack(sent, 10s, &seen));
    std::uint64_t previous_ack = 0;
    int errors = 0;
    for (const auto& r : seen) {
      if (r.is_ack) {
        EXPECT_GE(r.ack, previous_ack);
        previous_ack = r.ack;
      } else {
        ++errors;
        EXPECT_EQ(r.error, "parse");
        EXPECT_EQ(r.line, sent);
        EXPECT_LT(previous_ack, r.line) << "an error must come before the ack covering it";
      }
    }
    EXPECT_EQ(errors, 1) << "the broken line of chunk " << chunk << " was not answered with its error";
  }
  EXPECT_TRUE(wait_count(kTrades, 100));
}

TEST_F(DaemonTest, DuplicatesAreAckedCountedAndNotStored) {
  DaemonHarness d(tdb_->url());
  d.start();
  {
    Producer p(d.socket());
    ASSERT_TRUE(p.send({trade_line("c", "dup"), trade_line("c", "dup"), trade_line("c", "other")}));
    ASSERT_TRUE(p.wait_ack(3, 10s));
  }
  ASSERT_TRUE(wait_count(kTrades, 2));
  {
    Producer p(d.socket());
    ASSERT_TRUE(p.send({trade_line("c", "dup"), trade_line("c", "other")}));
    ASSERT_TRUE(p.wait_ack(2, 10s));
  }
  ASSERT_TRUE(wait_until([&] { return d.metric("pm_ingest_dedup_hits_total{kind=\"trade\"}") == 3; }, 20s))
      << d.metrics();
  EXPECT_EQ(count(kTrades), 2);
  EXPECT_EQ(d.metric("pm_ingest_rows_written_total{table=\"polymarket_trades\"}"), 2);
}

TEST_F(DaemonTest, TriggerDedupFollowsG2AcrossTokens) {
  DaemonHarness d(tdb_->url());
  d.start();
  Producer p(d.socket());
  ASSERT_TRUE(p.send({trigger_line("A", "cond", "0.95", 1'700'000'000'000), trigger_line("B", "cond", "0.95", 1'700'000'000'100),
                      trigger_line("A", "cond", "\"0.95\"", 1'700'000'000'200), trigger_line("B", "cond", "0.9", 1'700'000'000'300),
                      trigger_line("B", "cond2", "0.95", 1'700'000'000'400)}));
  ASSERT_TRUE(p.wait_ack(5, 10s));
  ASSERT_TRUE(wait_count(kTriggers, 3));
  EXPECT_EQ(count("SELECT count(*) FROM polymarket_first_triggers WHERE condition_id = 'cond' AND threshold = 0.95::real AND token_id = 'A'"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM polymarket_first_triggers WHERE condition_id = 'cond' AND threshold = 0.9::real AND token_id = 'B'"), 1);
  ASSERT_TRUE(wait_until([&] { return d.metric("pm_ingest_dedup_hits_total{kind=\"trigger_other_token\"}") == 1; }, 10s));
  EXPECT_EQ(d.metric("pm_ingest_dedup_hits_total{kind=\"trigger_same_token\"}"), 1);
  EXPECT_EQ(count("SELECT last_timestamp FROM trigger_watermarks WHERE threshold = 0.95::real"), 1'700'000'000'400);
}

// Two recorded triggers in one batch whose thresholds are one REAL to PostgreSQL but two floats
// to a C++ cast (a threshold halfway between two floats): the watermark upsert touched one row
// twice, the server refused the batch (21000, not a data error), and the writer retried it for
// ever: nothing after it was applied.
TEST_F(DaemonTest, TriggersWhoseThresholdsAreOneRealInOneBatchMoveOneWatermark) {
  pqxx::connection holder(tdb_->url());
  pqxx::work hold(holder);
  hold.exec0("LOCK TABLE pm_ingest_checkpoints IN ACCESS EXCLUSIVE MODE");  // both lines reach one batch
  DaemonHarness d(tdb_->url());
  d.start();
  Producer p(d.socket());
  ASSERT_TRUE(p.send({trigger_line("A", "half1", "0.5000000298023223876953125", 1'700'000'000'000),
                      trigger_line("B", "half2", "0.50000006", 1'700'000'000'100)}));
  ASSERT_TRUE(p.wait_ack(2, 10s));
  ASSERT_TRUE(wait_until([&] {
    return count("SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'pm_ingest_checkpoints'::regclass") > 0;
  }, 20s)) << "the writer never reached the checkpoint: " << d.output();
  hold.abort();
  ASSERT_TRUE(wait_count("SELECT count(*) FROM pm_ingest_checkpoints WHERE lsn = 2", 1, 20s)) << d.output();
  EXPECT_EQ(count(kTriggers), 2);
  EXPECT_EQ(count("SELECT count(*) FROM trigger_watermarks"), 1);
  EXPECT_EQ(count("SELECT last_timestamp FROM trigger_watermarks WHERE threshold = 0.50000006::real"), 1'700'000'000'100);
  // The batch metrics are updated after COMMIT returns, so after the row is visible: once both
  // events are in them (the sum), the count of batches is final.
  ASSERT_TRUE(wait_until([&] { return d.metric("pm_ingest_batch_events_sum") >= 2; }, 10s)) << d.metrics();
  EXPECT_EQ(d.metric("pm_ingest_batch_events_count"), 1) << "one batch of both";
}

// A second SIGTERM while the daemon stops ends it at once: with a long --shutdown-timeout and the
// batch in flight stuck behind a lock, a second signal did nothing (only kill -9 ended it). The
// acked trade is applied at the next start.
TEST_F(DaemonTest, ASecondStopSignalWhileStoppingExitsAtOnceAndTheAckedEventIsAppliedLater) {
  pqxx::connection holder(tdb_->url());
  pqxx::work hold(holder);
  hold.exec0("LOCK TABLE pm_ingest_checkpoints IN ACCESS EXCLUSIVE MODE");
  DaemonHarness d(tdb_->url(), {"--shutdown-timeout", "600"});
  d.start();
  {
    Producer p(d.socket());
    ASSERT_TRUE(p.send({trade_line("c", "held", 1'700'000'000)}));
    const auto replies = p.wait_ack(1, 10s);
    ASSERT_TRUE(replies);
    ASSERT_EQ(replies->size(), 1u);
    ASSERT_TRUE((*replies)[0].is_ack) << "refused: " << (*replies)[0].error;
  }
  ASSERT_TRUE(wait_until([&] {
    return count("SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'pm_ingest_checkpoints'::regclass") > 0;
  }, 20s)) << "the writer never reached the checkpoint: " << d.output();
  d.signal(SIGTERM);
  ASSERT_TRUE(wait_until([&] { return d.output().find("stopping: no new connections") != std::string::npos; }, 10s)) << d.output();
  d.signal(SIGTERM);
  const auto code = d.process().wait(10s);
  ASSERT_TRUE(code.has_value()) << "still stopping after a second SIGTERM: " << d.output();
  EXPECT_EQ(*code, 0) << d.output();
  EXPECT_NE(d.output().find("a second SIGTERM while stopping; exiting now"), std::string::npos) << d.output();
  hold.abort();
  EXPECT_EQ(count("SELECT count(*) FROM polymarket_trades WHERE trade_id = 'held'"), 0);
  d.start();
  EXPECT_TRUE(wait_count("SELECT count(*) FROM polymarket_trades WHERE trade_id = 'held'", 1, 30s)) << d.output();
}

TEST_F(DaemonTest, WatermarksNeverMoveBackwards) {
  DaemonHarness d(tdb_->url());
  d.start();
  Producer p(d.socket());
  ASSERT_TRUE(p.send({trade_line("wc", "new", 1'700'000'500), trigger_line("T", "wc", "0.8", 1'700'000'500'000)}));
  ASSERT_TRUE(p.wait_ack(2, 10s));
  ASSERT_TRUE(wait_count("SELECT count(*) FROM trade_watermarks WHERE last_timestamp = 1700000500000", 1));
  ASSERT_TRUE(p.send({trade_line("wc", "old", 1'700'000'100), trigger_line("U", "wc2", "0.8", 1'700'000'100'000)}));
  ASSERT_TRUE(p.wait_ack(4, 10s));
  ASSERT_TRUE(wait_count(kTrades, 2));
  ASSERT_TRUE(wait_count(kTriggers, 2));
  EXPECT_EQ(count("SELECT last_timestamp FROM trade_watermarks WHERE condition_id = 'wc'"), 1'700'000'500'000);
  EXPECT_EQ(count("SELECT last_timestamp FROM trigger_watermarks WHERE threshold = 0.8::real"), 1'700'000'500'000);
}

TEST_F(DaemonTest, ManyConcurrentProducers) {
  DaemonHarness d(tdb_->url());
  d.start();
  constexpr int kProducers = 16, kPerProducer = 500;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kProducers; ++t) {
    threads.emplace_back([&, t] {
      Producer p(d.socket());
      std::uint64_t sent = 0;
      for (int chunk = 0; chunk < 10; ++chunk) {
        std::vector<std::string> lines;
        for (int i = 0; i < kPerProducer / 10; ++i)
          lines.push_back(trade_line("cond" + std::to_string(t % 4), "p" + std::to_string(t) + "_" + std::to_string(sent + lines.size())));
        if (!p.send(lines)) ++failures;
        sent += lines.size();
        if (!p.wait_ack(sent, 20s)) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_TRUE(wait_count(kTrades, kProducers * kPerProducer, 30s));
  EXPECT_GT(d.metric("pm_ingest_wal_appended_records_total"), 0);
  // Every acked chunk waited for durability once; group commit makes the fsyncs fewer than that.
  const double waits = d.metric("pm_ingest_durable_wait_seconds_count");
  EXPECT_GE(waits, kProducers * 10);
  const double fsyncs = d.metric("pm_ingest_wal_fsync_duration_seconds_count");
  EXPECT_GT(fsyncs, 0) << "the series is missing (-1) or no group commit synced";
  EXPECT_LT(fsyncs, waits);
}

TEST_F(DaemonTest, OverLongLineIsSkippedAndTheNextLineLands) {
  DaemonHarness d(tdb_->url(), {"--max-line-bytes", "1K"});
  d.start();
  Producer p(d.socket());
  const std::string huge = trade_line("c", std::string(5000, 'x'));
  ASSERT_TRUE(p.send({huge, trade_line("c", "after")}));
  auto replies = p.wait_ack(2, 10s);
  ASSERT_TRUE(replies);
  ASSERT_EQ(replies->size(), 2u);
  EXPECT_EQ((*replies)[0].error, "too_long");
  EXPECT_EQ((*replies)[0].line, 1u);
  EXPECT_TRUE(wait_count("SELECT count(*) FROM polymarket_trades WHERE trade_id = 'after'", 1));
}

TEST_F(DaemonTest, TradeTimestampsFollowTheConfiguredUnit) {
  DaemonHarness d(tdb_->url(), {"--trade-timestamp-unit", "s"});
  d.start();
  Producer p(d.socket());
  ASSERT_TRUE(p.send({trade_line("c", "secs", 1'700'000'123),
                      R"({"type":"trade","condition_id":"c","trade_id":"ms","price":0.1,"size":1,"side":"SELL","timestamp_ms":1700000456789})"}));
  ASSERT_TRUE(p.wait_ack(2, 10s));
  ASSERT_TRUE(wait_count(kTrades, 2));
  EXPECT_EQ(count("SELECT \"timestamp\" FROM polymarket_trades WHERE trade_id = 'secs'"), 1'700'000'123);
  EXPECT_EQ(count("SELECT \"timestamp\" FROM polymarket_trades WHERE trade_id = 'ms'"), 1'700'000'456);
  // The watermark too (timestamp_ms written there would make the daemon's own unit check refuse
  // its database at the next start), and that next start runs.
  EXPECT_EQ(count("SELECT last_timestamp FROM trade_watermarks WHERE condition_id = 'c'"), 1'700'000'456);
  ASSERT_EQ(d.stop(), 0) << d.output();
  d.start();
  Producer again(d.socket());
  ASSERT_TRUE(again.send({trade_line("c", "next", 1'700'000'789)}));
  ASSERT_TRUE(again.wait_ack(1, 10s));
  EXPECT_TRUE(wait_count("SELECT count(*) FROM trade_watermarks WHERE last_timestamp = 1700000789", 1)) << d.output();
}

// A daemon set to seconds on a database whose trade watermarks are milliseconds (what production
// holds) wrote second-sized rows beside them, which every milliseconds reader takes for 1970: G1
// saw nothing new. It refuses to apply events (exit 2, naming the unit to set) and writes
// nothing; set to the database's unit, it runs.
TEST_F(DaemonTest, RefusesToApplyEventsInTheOtherUnitThanTheDatabaseHolds) {
  tdb_->exec("INSERT INTO trade_watermarks (condition_id, last_timestamp, updated_at) "
             "VALUES ('c_old', 1700000000000, '2023-11-14T22:13:20.000000Z')");
  DaemonHarness d(tdb_->url(), {"--trade-timestamp-unit", "s"});
  EXPECT_EQ(d.run_to_exit(), 2) << d.output();
  const std::string out = d.output();
  EXPECT_NE(out.find("trade_watermarks holds epoch milliseconds (ms) (its newest is 1700000000000), but "
                     "--trade-timestamp-unit is epoch seconds (s): set it to ms"),
            std::string::npos) << out;
  EXPECT_NE(out.find("refusing to apply events in the wrong unit"), std::string::npos) << out;
  EXPECT_EQ(count("SELECT count(*) FROM pm_ingest_checkpoints"), 0);

  DaemonHarness right(tdb_->url());
  right.start();
  Producer p(right.socket());
  ASSERT_TRUE(p.send({trade_line("c_old", "in_ms")}));
  ASSERT_TRUE(p.wait_ack(1, 10s));
  EXPECT_TRUE(wait_count("SELECT count(*) FROM polymarket_trades WHERE trade_id = 'in_ms'", 1));
  EXPECT_EQ(right.stop(), 0);
}

// Issue 15, adaptive batching: an idle writer sends an event at once, instead of waiting
// --batch-max-delay-ms for company (the old fixed timer would make each of these wait 60 s).
// Each event gets 15 s, far above any slowdown of a sanitizer on a loaded machine and far below
// the timer; the writer is connected before the first one is timed (its start-up is not timed).
TEST_F(DaemonTest, AnIdleWriterSendsEachEventAtOnceWhateverTheBatchDelay) {
  DaemonHarness d(tdb_->url(), {"--batch-max-delay-ms", "60000"});
  d.start();
  ASSERT_TRUE(wait_until([&] { return d.metric("pm_ingest_database_up") == 1; }, 30s)) << d.output();
  Producer p(d.socket());
  for (int i = 0; i < 3; ++i) {
    const auto sent = std::chrono::steady_clock::now();
    ASSERT_TRUE(p.send({trade_line("c", "idle" + std::to_string(i))}));
    ASSERT_TRUE(wait_count(kTrades, i + 1, 45s));
    const auto visible = std::chrono::steady_clock::now() - sent;
    EXPECT_LT(visible, 15s) << "event " << i << " waited for the batch timer";
    ASSERT_TRUE(p.wait_ack(static_cast<std::uint64_t>(i) + 1, 10s));
  }
  // Freshness is measured per event: three observations, none near the 60 s timer.
  ASSERT_TRUE(wait_until([&] { return d.metric("pm_ingest_event_visible_seconds_count") == 3; }, 10s));
  EXPECT_LT(d.metric("pm_ingest_event_visible_seconds_sum"), 3 * 15.0);
  EXPECT_EQ(d.metric("pm_ingest_event_visible_seconds_bucket{le=\"+Inf\"}"), 3);
}

TEST_F(DaemonTest, PoisonEventIsDeadLetteredAndItsBatchMatesLand) {
  tdb_->exec("ALTER TABLE polymarket_trades ADD CONSTRAINT test_no_poison CHECK (trade_id <> 'poison')");
  DaemonHarness d(tdb_->url(), {"--batch-max-delay-ms", "200"});
  d.start();
  Producer p(d.socket());
  std::vector<std::string> lines;
  for (int i = 0; i < 300; ++i) lines.push_back(i == 137 ? trade_line("c", "poison") : trade_line("c", "ok" + std::to_string(i)));
  ASSERT_TRUE(p.send(lines));
  ASSERT_TRUE(p.wait_ack(300, 10s));
  const bool landed = wait_count(kTrades, 299);
  tdb_->exec("ALTER TABLE polymarket_trades DROP CONSTRAINT test_no_poison");
  ASSERT_TRUE(landed) << d.output();
  ASSERT_TRUE(wait_count("SELECT count(*) FROM pm_dead_letters", 1));
  EXPECT_EQ(count("SELECT count(*) FROM pm_dead_letters WHERE lsn = 138 AND event_type = 'trade' AND "
                  "error LIKE '%test_no_poison%' AND sqlstate = '23514' AND convert_from(payload, 'UTF8') LIKE '%\"trade_id\":\"poison\"%'"),
            1);
  // Counted after COMMIT returns, so after the dead letter is visible.
  EXPECT_TRUE(wait_until([&] { return d.metric("pm_ingest_dead_lettered_events_total") >= 1; }, 10s)) << d.metrics();
  EXPECT_EQ(d.metric("pm_ingest_dead_lettered_events_total"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM pm_ingest_checkpoints WHERE lsn = 300 AND applied_events = 300"), 1);
}

// The same across many small batches on three writer connections: the poisoned batch fails, the
// ones in flight behind it roll back, and all of them are applied again one by one.
TEST_F(DaemonTest, PoisonEventAmongOverlappingBatchesIsDeadLetteredAndEveryOtherEventLands) {
  tdb_->exec("ALTER TABLE polymarket_trades ADD CONSTRAINT test_no_poison CHECK (trade_id <> 'poison')");
  DaemonHarness d(tdb_->url(), {"--batch-max-events", "20", "--writer-connections", "3", "--batch-max-delay-ms", "200"});
  d.start();
  Producer p(d.socket());
  std::vector<std::string> lines;
  for (int i = 0; i < 600; ++i)
    lines.push_back(i == 237 ? trade_line("c", "poison") : trade_line("c", "ok" + std::to_string(i % 550)));
  ASSERT_TRUE(p.send(lines));
  ASSERT_TRUE(p.wait_ack(600, 10s));
  const bool landed = wait_count("SELECT count(*) FROM pm_ingest_checkpoints WHERE lsn = 600", 1);
  tdb_->exec("ALTER TABLE polymarket_trades DROP CONSTRAINT test_no_poison");
  ASSERT_TRUE(landed) << d.output();
  EXPECT_EQ(count(kTrades), 549);  // ok0..ok549 but ok237, whose line was the poison
  EXPECT_EQ(count("SELECT count(*) FROM pm_ingest_checkpoints WHERE lsn = 600 AND applied_events = 600"), 1)
      << "every event counted once: none skipped, none twice";
  EXPECT_EQ(count("SELECT count(*) FROM pm_dead_letters WHERE lsn = 238 AND sqlstate = '23514'"), 1);
  EXPECT_TRUE(wait_until([&] { return d.metric("pm_ingest_dedup_hits_total{kind=\"trade\"}") == 50; }, 10s))
      << d.metric("pm_ingest_dedup_hits_total{kind=\"trade\"}");
  EXPECT_EQ(d.metric("pm_ingest_dead_lettered_events_total"), 1);
}

// Refused only at COMMIT (a deferred constraint trigger): the batch did not commit, so nothing
// of it may be skipped; the event is found, dead-lettered, and everything else lands.
TEST_F(DaemonTest, EventRefusedAtCommitIsDeadLetteredAndNothingIsSkipped) {
  tdb_->refuse_at_commit("late");
  DaemonHarness d(tdb_->url(), {"--batch-max-events", "20", "--writer-connections", "2", "--batch-max-delay-ms", "200"});
  d.start();
  Producer p(d.socket());
  std::vector<std::string> lines;
  for (int i = 0; i < 400; ++i) lines.push_back(i == 150 ? trade_line("c", "late") : trade_line("c", "in" + std::to_string(i)));
  ASSERT_TRUE(p.send(lines));
  ASSERT_TRUE(p.wait_ack(400, 10s));
  const bool landed = wait_count("SELECT count(*) FROM pm_ingest_checkpoints WHERE lsn = 400", 1);
  tdb_->drop_refusal_at_commit();
  ASSERT_TRUE(landed) << d.output();
  EXPECT_EQ(count(kTrades), 399);
  EXPECT_EQ(count("SELECT count(*) FROM pm_dead_letters WHERE lsn = 151 AND sqlstate = '23514'"), 1);
}

// A dead letter the server refuses to store: the event is never skipped (nothing after it is
// applied), the log says it was not stored, the attempts back off with growing delays (they were
// made at the first delay, 50-100 ms, forever), and once the server takes it, everything lands.
TEST_F(DaemonTest, ADeadLetterTheServerRefusesIsRetriedWithGrowingBackoffAndNothingIsSkipped) {
  const SqlAtExit drop_constraints(*tdb_, {"ALTER TABLE polymarket_trades DROP CONSTRAINT IF EXISTS test_no_poison",
                                           "ALTER TABLE pm_dead_letters DROP CONSTRAINT IF EXISTS test_no_dead_letters"});
  tdb_->exec("ALTER TABLE polymarket_trades ADD CONSTRAINT test_no_poison CHECK (trade_id <> 'poison')");
  tdb_->exec("ALTER TABLE pm_dead_letters ADD CONSTRAINT test_no_dead_letters CHECK (lsn < 0)");
  DaemonHarness d(tdb_->url());
  d.start();
  Producer p(d.socket());
  std::vector<std::string> lines;
  for (int i = 0; i < 10; ++i) lines.push_back(i == 3 ? trade_line("c", "poison") : trade_line("c", "ok" + std::to_string(i)));
  ASSERT_TRUE(p.send(lines));
  ASSERT_TRUE(p.wait_ack(10, 10s));
  // Timed by the daemon's own log times: the test seeing the first line late would shorten it.
  const auto refusals = [&] { return logged_times(d.output(), "storing it in pm_dead_letters failed"); };
  ASSERT_TRUE(wait_until([&] { return refusals().size() >= 6; }, 50s)) << d.output();
  const std::vector<double> at = refusals();
  // Five backoffs between the first and the sixth attempt: at least 50 + 100 + 200 + 400 + 800 ms
  // (each delay is drawn between half its base and the base, which doubles from 100 ms).
  EXPECT_GE(at[5] - at[0], 1.4) << d.output();
  EXPECT_EQ(d.output().find("stored in pm_dead_letters"), std::string::npos) << d.output();
  EXPECT_EQ(count(kTrades), 3);  // ok0..ok2: nothing after the refused event
  tdb_->exec("ALTER TABLE pm_dead_letters DROP CONSTRAINT test_no_dead_letters");
  ASSERT_TRUE(wait_count("SELECT count(*) FROM pm_ingest_checkpoints WHERE lsn = 10", 1)) << d.output();
  EXPECT_EQ(count(kTrades), 9);
  EXPECT_EQ(count("SELECT count(*) FROM pm_dead_letters WHERE lsn = 4 AND sqlstate = '23514'"), 1);
  EXPECT_NE(d.output().find("stored in pm_dead_letters"), std::string::npos) << d.output();
}

// A restart of PostgreSQL, or a DBA's pg_terminate_backend, ends every session the daemon's pool
// holds. The first batch (or look at the server) meets one of them and fails; the reconnect then
// drops the others, instead of each failing a batch of its own, with a growing backoff between.
TEST_F(DaemonTest, SessionsTheServerEndedCostOneFailureNotOneEach) {
  DaemonHarness d(tdb_->url());
  d.start();
  Producer p(d.socket());
  std::vector<std::string> lines = trade_lines("c", "before", 100);
  ASSERT_TRUE(p.send(lines));
  ASSERT_TRUE(p.wait_ack(100, 10s));
  ASSERT_TRUE(wait_count(kTrades, 100)) << d.output();
  // The pool holds the lanes' connections and the writer's own (3 by default), idle now. One
  // statement signals them all within microseconds (no wait per session), so the daemon cannot
  // meet the first ended one, back off and reconnect before the last is ended. It only signals,
  // though: a backend not yet scheduled to exit would still look alive to the reconnect's drop of
  // ended sessions, so the next lines go once every signalled one is gone (a pool that fails a
  // batch per ended session still fails below).
  std::string ended_pids;
  int ended = 0;
  {
    pqxx::connection admin(tdb_->url());
    pqxx::nontransaction tx(admin);
    for (const auto& row : tx.exec("SELECT pid FROM (SELECT pid, pg_terminate_backend(pid) AS signalled FROM pg_stat_activity "
                                   "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                                   "AND backend_type = 'client backend') t WHERE signalled")) {
      ended_pids += (ended++ == 0 ? "" : ",") + row[0].as<std::string>();
    }
  }
  ASSERT_GE(ended, 3) << ended_pids;
  ASSERT_TRUE(wait_count("SELECT count(*) FROM pg_stat_activity WHERE pid IN (" + ended_pids + ")", 0));
  lines = trade_lines("c", "after", 100);
  ASSERT_TRUE(p.send(lines));
  ASSERT_TRUE(p.wait_ack(200, 10s));
  ASSERT_TRUE(wait_count(kTrades, 200)) << d.output();
  double failures = 0;
  for (const PgErrorKind kind : kPgErrorKinds)
    failures += d.metric(std::string("pm_ingest_database_errors_total{kind=\"") + to_string(kind) + "\"}");
  EXPECT_EQ(failures, 1) << d.metrics() << d.output();
  EXPECT_EQ(d.stop(), 0);
}

TEST_F(DaemonTest, StartsWithoutTheDatabaseAcksIntoTheLogAndReplaysLater) {
  const std::string unreachable = unreachable_database_url();
  DaemonHarness d(unreachable);
  d.start();
  Producer p(d.socket());
  std::vector<std::string> lines = trade_lines("c", "offline", 50);
  ASSERT_TRUE(p.send(lines));
  ASSERT_TRUE(p.wait_ack(50, 10s));
  EXPECT_EQ(d.metric("pm_ingest_database_up"), 0);
  EXPECT_TRUE(wait_until([&] { return d.metric("pm_ingest_wal_unapplied_events") == 50; }, 10s)) << d.metrics();
  EXPECT_EQ(d.stop(), 0) << d.output();  // SIGTERM with the database down is still a clean stop
  // The same log, now with the database: everything acked lands.
  d.database_url() = tdb_->url();
  d.start();
  EXPECT_TRUE(wait_count(kTrades, 50));
  EXPECT_TRUE(wait_until([&] { return d.metric("pm_ingest_replay_done") == 1; }, 10s));
  EXPECT_EQ(d.stop(), 0);
}

// A batch whose BEFORE INSERT trigger runs `trigger_body` (PL/pgSQL) fails on every retry, each
// counted as pm_ingest_database_errors_total{kind=`kind`}; pm_ingest_database_up must read 0
// throughout, and 1 once the trigger is dropped and the batch commits.
void expect_database_down_while_the_batch_fails(TestDatabase& db, const std::string& trigger_body, const std::string& kind) {
  db.exec("CREATE OR REPLACE FUNCTION test_failing_batch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN " + trigger_body +
          " END $$");
  const std::string drop_trigger = "DROP TRIGGER IF EXISTS test_failing_batch ON polymarket_trades";
  const SqlAtExit drop_at_exit(db, {drop_trigger});
  db.exec("CREATE TRIGGER test_failing_batch BEFORE INSERT ON polymarket_trades "
          "FOR EACH STATEMENT EXECUTE FUNCTION test_failing_batch()");
  DaemonHarness d(db.url());
  d.start();
  ASSERT_TRUE(wait_until([&] { return d.metric("pm_ingest_database_up") == 1; }, 30s)) << d.output();
  Producer p(d.socket());
  ASSERT_TRUE(p.send(trade_lines("c", "failing", 5)));
  ASSERT_TRUE(p.wait_ack(5, 10s));
  const std::string failures = "pm_ingest_database_errors_total{kind=\"" + kind + "\"}";
  ASSERT_TRUE(wait_until([&] { return d.metric(failures) >= 1; }, 20s)) << d.metrics() << d.output();
  int polls = 0, up_seen = 0;
  ASSERT_TRUE(wait_until(
      [&] {
        ++polls;
        if (d.metric("pm_ingest_database_up") != 0) ++up_seen;
        return d.metric(failures) >= 4;
      },
      60s))
      << d.metrics() << d.output();
  EXPECT_EQ(up_seen, 0) << "pm_ingest_database_up read 1 in " << up_seen << " of " << polls
                        << " polls while the batch kept failing (" << kind << ")";
  EXPECT_EQ(query_count(db.url(), kTrades), 0);
  db.exec(drop_trigger);
  EXPECT_TRUE(wait_until([&] { return query_count(db.url(), kTrades) == 5; }, 20s)) << d.output();
  EXPECT_TRUE(wait_until([&] { return d.metric("pm_ingest_database_up") == 1; }, 10s));
  EXPECT_EQ(d.stop(), 0);
}

// A batch the server keeps refusing with an error that is not its data's (a trigger raising
// insufficient_privilege, as a revoked INSERT would): every retry reconnects first, and
// pm_ingest_database_up must stay 0 through those reconnects, or an alert on it held for a minute
// (PmIngestdDatabaseDown) never fires. It turns 1 once the batch commits.
TEST_F(DaemonTest, ABatchThatKeepsFailingKeepsTheDatabaseDownAcrossItsRetries) {
  expect_database_down_while_the_batch_fails(
      *tdb_,
      "PERFORM pg_sleep(0.3);"  // each retry's batch stays in flight a while after its reconnect
      " RAISE EXCEPTION 'permission denied (test)' USING ERRCODE = 'insufficient_privilege';",
      "other");
}

// The same when the batch's session is lost every time (a backend the OOM killer ends on each large
// COPY, a proxy resetting it): a lost session was taken as answered by the reconnect that followed,
// so the gauge read 1 from each reconnect until the batch failed again, and neither
// PmIngestdDatabaseDown nor PmIngestdNotReady, held for a minute or two, ever fired.
TEST_F(DaemonTest, ABatchWhoseSessionIsLostEveryTimeKeepsTheDatabaseDownAcrossItsRetries) {
  expect_database_down_while_the_batch_fails(
      *tdb_,
      "PERFORM pg_sleep(0.3); PERFORM pg_terminate_backend(pg_backend_pid());"
      " PERFORM pg_sleep(5); RETURN NULL;",  // the last sleep is ended by the termination
      "connection");
}

// A function test_trap.pg_current_wal_insert_lsn() ahead of pg_catalog in the database's
// search_path (ALTER DATABASE: the daemon's sessions opened after it): it raises "retention query
// refused (test)" while test_trap.armed has a row and `refuse_when` (PL/pgSQL, may use the variable
// `trade_rows`, the count of polymarket_trades) holds; otherwise it returns the real position.
// `before_raise` runs just before the raise (a sequence's setval survives the rollback).
// Owner rights only; removed at scope exit.
class RetentionQueryTrap {
 public:
  RetentionQueryTrap(TestDatabase& db, const std::string& refuse_when, const std::string& before_raise = "")
      : db_(db), remove_(db, {"ALTER DATABASE \"" + db.name() + "\" RESET search_path", "DROP SCHEMA IF EXISTS test_trap CASCADE"}) {
    db_.exec("CREATE SCHEMA test_trap; CREATE TABLE test_trap.armed (since timestamptz); "
             "CREATE SEQUENCE test_trap.refused_at_rows MINVALUE 0 START 0");
    db_.exec(R"(CREATE FUNCTION test_trap.pg_current_wal_insert_lsn() RETURNS pg_lsn LANGUAGE plpgsql AS $$
                DECLARE trade_rows bigint;
                BEGIN
                  IF EXISTS (SELECT 1 FROM test_trap.armed) THEN
                    SELECT count(*) INTO trade_rows FROM public.polymarket_trades;
                    IF )" + refuse_when + R"( THEN
                      )" + before_raise + R"(
                      RAISE EXCEPTION 'retention query refused (test)' USING ERRCODE = 'insufficient_privilege';
                    END IF;
                  END IF;
                  RETURN pg_catalog.pg_current_wal_insert_lsn();
                END $$)");
    db_.exec("ALTER DATABASE \"" + db_.name() + "\" SET search_path = test_trap, pg_catalog, public");
  }
  void arm() { db_.exec("INSERT INTO test_trap.armed VALUES (now())"); }
  void disarm() { db_.exec("DELETE FROM test_trap.armed"); }

 private:
  TestDatabase& db_;
  const SqlAtExit remove_;
};

// The log retention's query after a commit (the primary's WAL position, asked when the applied
// position enters a new segment) fails: the batches that committed must still be counted. They
// are in PostgreSQL and in its checkpoint, so they are never applied again; were their metrics
// dropped with the exception, pm_ingest_applied_events_total and rows_written would stay short
// of the rows for good. The trap fails that query once polymarket_trades has rows, while armed:
// the start-up and idle checks pass, and the first query after the events' batches began to
// commit is the one at a segment boundary (the chunks follow each other within milliseconds; an
// idle check comes only after a second without a commit).
TEST_F(DaemonTest, BatchesThatCommittedAreCountedWhenTheRetentionQueryAfterThemFails) {
  RetentionQueryTrap trap(*tdb_, "trade_rows > 0");
  trap.arm();
  DaemonHarness d(tdb_->url(), {"--wal-segment-bytes", "64K"});
  d.start();
  ASSERT_TRUE(wait_until([&] { return d.metric("pm_ingest_database_up") == 1; }, 30s)) << d.output();
  constexpr int kEvents = 800;  // ~250 KB of log: the applied position crosses segments
  Producer p(d.socket());
  for (int chunk = 0; chunk < 8; ++chunk) {  // one log write each, so the log rolls over between them
    ASSERT_TRUE(p.send(trade_lines("c" + std::to_string(chunk), "rq" + std::to_string(chunk) + "_", kEvents / 8)));
    ASSERT_TRUE(p.wait_ack(static_cast<std::uint64_t>(kEvents / 8 * (chunk + 1)), 10s));
  }
  const std::string failures = "pm_ingest_database_errors_total{kind=\"other\"}";
  ASSERT_TRUE(wait_until([&] { return d.metric(failures) >= 1; }, 20s)) << d.metrics() << d.output();
  EXPECT_NE(d.output().find("retention query refused (test)"), std::string::npos) << d.output();
  trap.disarm();
  EXPECT_TRUE(wait_count(kTrades, kEvents)) << d.output();
  EXPECT_TRUE(wait_until([&] { return d.metric("pm_ingest_applied_events_total") >= kEvents; }, 20s)) << d.metrics();
  EXPECT_EQ(d.metric("pm_ingest_applied_events_total"), kEvents) << d.metrics();
  // Updated after applied_events, in the same call after each COMMIT: waited for on its own.
  const std::string trade_rows = "pm_ingest_rows_written_total{table=\"polymarket_trades\"}";
  EXPECT_TRUE(wait_until([&] { return d.metric(trade_rows) >= kEvents; }, 20s)) << d.metrics();
  EXPECT_EQ(d.metric(trade_rows), kEvents) << d.metrics();
  EXPECT_EQ(d.stop(), 0) << d.output();
}

// A failure right after batches committed waits the initial retry delay (100 ms, drawn between 50
// and 100), however many failures came before: the batches that committed restart the pacing
// (retry_pacing.h). Before, a batch whose commit was followed by a failing retention query in the
// same round (or that committed while the writer wound down after a failure) was not heard of,
// and the waits doubled from failure to failure although every round committed. Each batch of the
// backlog (500 trades: more than a 64K segment) crosses a segment boundary, where the retention
// asks the primary for its WAL position; the trap refuses that once per new rows (the rows at
// each refusal are kept in a sequence), so every refusal follows a commit.
TEST_F(DaemonTest, AFailureRightAfterACommitWaitsTheInitialRetryDelay) {
  RetentionQueryTrap trap(*tdb_, "trade_rows > (SELECT last_value FROM test_trap.refused_at_rows)",
                          "PERFORM setval('test_trap.refused_at_rows', trade_rows);");
  trap.arm();
  // The writer waits at its first read of the checkpoint while the backlog is logged.
  pqxx::connection holder(tdb_->url());
  pqxx::work hold(holder);
  hold.exec0("LOCK TABLE pm_ingest_checkpoints IN ACCESS EXCLUSIVE MODE");
  DaemonHarness d(tdb_->url(), {"--wal-segment-bytes", "64K", "--batch-max-events", "500"});
  d.start();
  constexpr int kEvents = 6000;
  Producer p(d.socket());
  ASSERT_TRUE(p.send(trade_lines("c", "pace_", kEvents)));
  ASSERT_TRUE(p.wait_ack(kEvents, 20s));
  ASSERT_TRUE(wait_until([&] {
    return count("SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'pm_ingest_checkpoints'::regclass") > 0;
  }, 20s)) << "the writer never reached the checkpoint: " << d.output();
  hold.abort();

  EXPECT_TRUE(wait_count(kTrades, kEvents, 60s)) << d.output();
  const std::vector<int> waits = announced_waits(d.output(), "retention query refused (test)");
  ASSERT_GE(waits.size(), 2u) << d.output();  // 3-4 here; the second already waits longer without the fix
  for (std::size_t i = 0; i < waits.size(); ++i)
    EXPECT_LE(waits[i], 100) << "failure " << i + 1 << " of " << waits.size() << " waited " << waits[i] << " ms: " << d.output();
  EXPECT_EQ(d.stop(), 0) << d.output();
}

TEST_F(DaemonTest, BudgetExhaustedLinesGetBusyAndAckedOnesAreKept) {
  const std::string unreachable = unreachable_database_url();
  DaemonHarness d(unreachable, {"--wal-max-bytes", "20K"});
  d.start();
  Producer p(d.socket());
  std::set<std::string> durable, refused;
  std::uint64_t sent = 0;
  for (int chunk = 0; chunk < 20; ++chunk) {
    std::vector<std::string> lines;
    std::vector<std::string> ids;
    for (int i = 0; i < 10; ++i) {
      ids.push_back("bp" + std::to_string(chunk) + "_" + std::to_string(i));
      lines.push_back(trade_line("c", ids.back()));
    }
    ASSERT_TRUE(p.send(lines));
    std::vector<Reply> seen;
    ASSERT_TRUE(p.wait_ack(sent + lines.size(), 10s, &seen));
    std::set<std::uint64_t> busy_lines;
    for (const auto& r : seen)
      if (!r.is_ack) {
        EXPECT_EQ(r.error, "busy");
        busy_lines.insert(r.line);
      }
    for (std::size_t i = 0; i < ids.size(); ++i) (busy_lines.count(sent + i + 1) ? refused : durable).insert(ids[i]);
    sent += lines.size();
  }
  EXPECT_FALSE(refused.empty()) << "the 20K budget never filled";
  EXPECT_FALSE(durable.empty());
  EXPECT_GT(d.metric("pm_ingest_events_rejected_total{reason=\"busy\"}"), 0);
  EXPECT_EQ(d.stop(), 0);
  d.database_url() = tdb_->url();
  d.start();
  ASSERT_TRUE(wait_count(kTrades, static_cast<long long>(durable.size())));
  EXPECT_EQ(trade_ids(tdb_->url()), durable);
}

// Starts `d`, has one trade acknowledged, and stops it with SIGTERM (exit 0).
void ack_one_trade_and_stop(DaemonHarness& d) {
  d.start();
  {
    Producer p(d.socket());
    ASSERT_TRUE(p.send({trade_line("c", "before_stop")}));
    ASSERT_TRUE(p.wait_ack(1, 10s));
  }
  EXPECT_EQ(d.stop(), 0);
}

TEST_F(DaemonTest, SigtermFinishesAndExitsZero) {
  DaemonHarness d(tdb_->url());
  ack_one_trade_and_stop(d);
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_FALSE(socket_accepts(d.socket()));
  EXPECT_EQ(access(d.socket().c_str(), F_OK), -1) << "the socket file should be removed";
  d.start();
  EXPECT_TRUE(wait_count(kTrades, 1));
}

// SIGTERM during the log's recovery (systemctl stop of a daemon that restarted with a long log)
// was taken only once the daemon served: it told systemd READY=1 and accepted producers first.
TEST_F(DaemonTest, SigtermWhileStartingExitsZeroWithoutServing) {
  DaemonHarness d(tdb_->url());
  ack_one_trade_and_stop(d);
  ASSERT_FALSE(HasFatalFailure());
  const std::size_t second_run = d.output().size();
  EXPECT_EQ(d.run_to_exit_with_sigterm_pending(), 0) << d.output();
  EXPECT_TRUE(d.logged_since(second_run, "recovered")) << d.output();
  EXPECT_TRUE(d.logged_since(second_run, "stop requested while starting; exiting before serving")) << d.output();
  EXPECT_FALSE(d.logged_since(second_run, "ready: producers connect")) << d.output();
  EXPECT_EQ(access(d.socket().c_str(), F_OK), -1) << "the second run should not have made its socket";
  d.start();  // and the next start serves
  EXPECT_TRUE(wait_count(kTrades, 1));
  EXPECT_EQ(d.stop(), 0);
}

// SIGHUP (an operator's reload habit, a closed terminal), SIGUSR1 and SIGUSR2 ended the daemon at
// once by their default action (exit 129), with batches in flight, and systemd did not restart it.
// They are logged and ignored; the daemon goes on serving.
TEST_F(DaemonTest, SighupAndSigusrAreLoggedAndIgnored) {
  DaemonHarness d(tdb_->url());
  d.start();
  Producer p(d.socket());
  int acked = 0;
  for (const int sig : {SIGHUP, SIGUSR1, SIGUSR2}) {
    d.process().signal(sig);
    ASSERT_TRUE(p.send({trade_line("c", "after_signal_" + std::to_string(sig))}));
    ASSERT_TRUE(p.wait_ack(++acked, 10s)) << "signal " << sig << ": " << d.output();
  }
  EXPECT_TRUE(wait_until([&] { return d.output().find("received SIGUSR2 and ignored it") != std::string::npos; }, 10s))
      << d.output();
  EXPECT_NE(d.output().find("received SIGHUP and ignored it: pm-ingestd has no reload"), std::string::npos) << d.output();
  EXPECT_TRUE(wait_count(kTrades, 3));
  EXPECT_EQ(d.stop(), 0);
}

// With PostgreSQL down the writer's retry waits double up to 5 s: a --writer-stall-timeout below
// that called the waiting writer stalled ("has not gone round its loop", /readyz failing, the
// watchdog unfed) at every long wait, and "running again" after it. A deliberate wait is alive.
TEST_F(DaemonTest, AWriterWaitingOutARetryIsNotCalledStalled) {
  DaemonHarness d(unreachable_database_url(), {"--writer-stall-timeout", "2"});
  d.start();
  // Until a wait of 3 s or more has been waited out (a later failure announced after it).
  ASSERT_TRUE(wait_until([&] {
    const std::vector<int> waits = announced_waits(d.output(), "PostgreSQL operation failed");
    const auto long_wait = std::find_if(waits.begin(), waits.end(), [](int ms) { return ms >= 3000; });
    return long_wait != waits.end() && long_wait + 1 != waits.end();
  }, 60s)) << d.output();
  EXPECT_EQ(d.output().find("has not gone round its loop"), std::string::npos) << d.output();
  EXPECT_EQ(d.stop(), 0);
}

TEST_F(DaemonTest, StaleSocketIsReplacedLiveOneRefusedModeApplied) {
  DaemonHarness first(tdb_->url());
  {
    // A socket file left behind by a crashed daemon.
    sockaddr_un addr;
    ASSERT_TRUE(unix_socket_address(first.socket(), addr)) << first.socket();
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ::close(fd);
  }
  first.start();
  struct stat st {};
  ASSERT_EQ(::stat(first.socket().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  // A second daemon must not steal a socket that is in use.
  DaemonHarness second(tdb_->url(), {"--socket", first.socket(), "--instance-id", "second"});
  second.process().start(PM_INGESTD_BIN,
                         {"--socket", first.socket(), "--wal-dir", second.wal_dir(), "--metrics-listen",
                          "127.0.0.1:" + std::to_string(second.metrics_port()), "--instance-id", "second"},
                         {{"DATABASE_URL", tdb_->url()}}, second.dir() + "/daemon.log");
  auto code = second.process().wait(20s);
  ASSERT_TRUE(code);
  EXPECT_EQ(*code, 1);
  EXPECT_NE(second.output().find("in use"), std::string::npos) << second.output();
  EXPECT_TRUE(socket_accepts(first.socket()));
}

TEST_F(DaemonTest, PasswordNeverInPsOrLogs) {
  // The URL with its password on the command line: ps must not show the password, nor may the log.
  const std::string url = tdb_->url();
  const auto scheme = url.find("://") + 3;
  const auto at = url.find('@');
  ASSERT_NE(url.find(':', scheme), std::string::npos) << "the test database URL has no password";
  const std::string user = url.substr(scheme, url.find(':', scheme) - scheme);
  const std::string secret = ":" + url.substr(url.find(':', scheme) + 1, at - url.find(':', scheme) - 1) + "@";
  DaemonHarness d("", {"--database-url", url});
  d.start();
  Producer p(d.socket());
  ASSERT_TRUE(p.send({trade_line("c", "secret_test")}));
  ASSERT_TRUE(p.wait_ack(1, 10s));
  ASSERT_TRUE(wait_count(kTrades, 1));
  const std::string cmdline = read_file("/proc/" + std::to_string(d.process().pid()) + "/cmdline");
  // A known password is masked wherever it appears: the user too where it is the same word.
  const std::string shown_user = secret == ":" + user + "@" ? "*" : user;
  EXPECT_EQ(cmdline.find(secret), std::string::npos) << cmdline;
  EXPECT_NE(cmdline.find(shown_user + ":***"), std::string::npos) << cmdline;
  EXPECT_EQ(d.output().find(secret), std::string::npos) << d.output();
  EXPECT_NE(d.output().find(shown_user + ":***@"), std::string::npos) << d.output();
}

// The URL in the environment (the unit's EnvironmentFile=): /proc/PID/environ, which
// systemd-coredump copies into the journal on a crash (COREDUMP_ENVIRON=), shows the block the
// daemon started with; its password is masked there once the daemon has read it. The daemon still
// connects with the real one.
TEST_F(DaemonTest, PasswordNeverInTheEnvironmentBlockACrashReportCopies) {
  const std::string url = tdb_->url();
  const auto scheme = url.find("://") + 3;
  const auto at = url.find('@');
  const std::string secret = ":" + url.substr(url.find(':', scheme) + 1, at - url.find(':', scheme) - 1) + "@";
  DaemonHarness d(url);  // DATABASE_URL=url in its environment
  d.start();
  Producer p(d.socket());
  ASSERT_TRUE(p.send({trade_line("c", "env_secret")}));
  ASSERT_TRUE(p.wait_ack(1, 10s));
  ASSERT_TRUE(wait_count(kTrades, 1)) << "the daemon connected with the real password";
  const std::string environ_block = read_file("/proc/" + std::to_string(d.process().pid()) + "/environ");
  EXPECT_NE(environ_block.find("DATABASE_URL="), std::string::npos) << "the variable is kept, masked";
  EXPECT_EQ(environ_block.find(secret), std::string::npos) << "the password is in /proc/PID/environ";
}

TEST_F(DaemonTest, QueueOverflowIsReadBackFromTheLog) {
  DaemonHarness d(tdb_->url(), {"--queue-max-events", "8", "--batch-max-events", "50"});
  d.start();
  Producer p(d.socket());
  std::vector<std::string> lines;
  for (int i = 0; i < 3000; ++i) lines.push_back(trade_line("c" + std::to_string(i % 7), "q" + std::to_string(i)));
  ASSERT_TRUE(p.send(lines));
  ASSERT_TRUE(p.wait_ack(3000, 20s));
  ASSERT_TRUE(wait_count(kTrades, 3000));
  EXPECT_GT(d.metric("pm_ingest_queue_overflow_events_total"), 0);
  EXPECT_GT(d.metric("pm_ingest_log_catchup_events_total"), 0);
  const double queued = d.metric("pm_ingest_queue_events");
  EXPECT_GE(queued, 0) << "the series is missing";
  EXPECT_LE(queued, 8);
  EXPECT_EQ(count("SELECT count(*) FROM pm_ingest_checkpoints WHERE lsn = 3000 AND applied_events = 3000"), 1);
}

// Large lines: the queue and the batches are bounded in bytes too (--queue-max-bytes,
// --batch-max-bytes), not only in events; 20,000 one-megabyte events were the memory of a
// backlog. Lines of 20 KB while the writer waits at its first read of the checkpoint: the
// queue overflows by bytes, and the backlog is applied in batches of at most 4 (64K / 20K + 1).
TEST_F(DaemonTest, LargeLinesOverflowTheQueueByBytesAndAreReadBack) {
  pqxx::connection holder(tdb_->url());
  pqxx::work hold(holder);
  hold.exec0("LOCK TABLE pm_ingest_checkpoints IN ACCESS EXCLUSIVE MODE");
  DaemonHarness d(tdb_->url(), {"--queue-max-bytes", "64K", "--batch-max-bytes", "64K"});
  d.start();
  constexpr int kEvents = 150;
  std::vector<std::string> lines;
  for (const std::string& line : trade_lines("c", "big_", kEvents))
    lines.push_back(line.substr(0, line.size() - 1) + R"(,"pad":")" + std::string(20'000, 'x') + R"("})");
  Producer p(d.socket());
  ASSERT_TRUE(p.send(lines));
  ASSERT_TRUE(p.wait_ack(kEvents, 20s));
  ASSERT_TRUE(wait_until([&] {
    return count("SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'pm_ingest_checkpoints'::regclass") > 0;
  }, 20s)) << "the writer never reached the checkpoint: " << d.output();
  EXPECT_GT(d.metric("pm_ingest_queue_overflow_events_total"), 0);
  hold.abort();
  ASSERT_TRUE(wait_count(kTrades, kEvents, 60s)) << d.output();
  EXPECT_GT(d.metric("pm_ingest_log_catchup_events_total"), 0);
  // The batch metrics are updated after COMMIT returns: once every event is in them (the sum), the
  // batch count and the buckets are final; both read from one scrape.
  ASSERT_TRUE(wait_until([&] { return d.metric("pm_ingest_batch_events_sum") >= kEvents; }, 20s)) << d.metrics();
  const std::string scraped = d.metrics();
  const double batches = metric_value(scraped, "pm_ingest_batch_events_count");
  EXPECT_GE(batches, kEvents / 4.0);
  EXPECT_EQ(metric_value(scraped, R"(pm_ingest_batch_events_bucket{le="5"})"), batches) << "a batch of more than 5 events";
  EXPECT_EQ(d.stop(), 0) << d.output();
}

TEST_F(DaemonTest, AppliedSegmentsAreRemovedAndRestartResumesAfterTheCheckpoint) {
  DaemonHarness d(tdb_->url(), {"--wal-segment-bytes", "16K"});
  d.start();
  Producer p(d.socket());
  for (int chunk = 0; chunk < 20; ++chunk) {
    std::vector<std::string> lines;
    for (int i = 0; i < 20; ++i) lines.push_back(trade_line("c", "seg" + std::to_string(chunk * 20 + i)));
    ASSERT_TRUE(p.send(lines));
    ASSERT_TRUE(p.wait_ack((chunk + 1) * 20u, 10s));
  }
  ASSERT_TRUE(wait_count(kTrades, 400));
  auto segments = [&] {
    long n = 0;
    for (const auto& e : std::filesystem::directory_iterator(d.wal_dir())) n += e.path().extension() == ".wal";
    return n;
  };
  EXPECT_TRUE(wait_until([&] { return segments() <= 2; }, 10s)) << segments() << " segments left";
  EXPECT_EQ(d.stop(), 0);
  d.start();
  Producer again(d.socket());
  ASSERT_TRUE(again.send({trade_line("c", "after_restart")}));
  ASSERT_TRUE(again.wait_ack(1, 10s));
  ASSERT_TRUE(wait_count(kTrades, 401));
  EXPECT_EQ(count("SELECT count(*) FROM pm_ingest_checkpoints WHERE lsn = 401 AND applied_events = 401"), 1);
  EXPECT_EQ(d.output().find("not removing log segments"), std::string::npos) << d.output();
  EXPECT_TRUE(wait_until([&] { return segments() <= 2; }, 10s)) << segments() << " segments left after the restart";
}

// Several daemons, one database: one checkpoint each, and G2 still holds across them.
TEST_F(DaemonTest, TwoInstancesShareADatabaseAndG2HoldsAcrossThem) {
  DaemonHarness a(tdb_->url(), {"--instance-id", "alpha"});
  DaemonHarness b(tdb_->url(), {"--instance-id", "beta"});
  a.start();
  b.start();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      Producer p((t % 2 ? a : b).socket());
      std::vector<std::string> lines;
      for (int c = 0; c < 50; ++c) lines.push_back(trigger_line("tok" + std::to_string(t), "g2c" + std::to_string(c), "0.95"));
      ASSERT_TRUE(p.send(lines));
      ASSERT_TRUE(p.wait_ack(50, 20s));
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_TRUE(wait_count("SELECT count(*) FROM pm_ingest_checkpoints WHERE lsn = 100", 2));
  EXPECT_EQ(count(kTriggers), 50);  // one winner per condition, across both daemons
  EXPECT_EQ(count("SELECT count(*) FROM (SELECT condition_id FROM polymarket_first_triggers GROUP BY condition_id "
                  "HAVING count(*) > 1) x"),
            0);
  // The counters move right after the commits, not with them.
  const auto dedup = [&] {
    return a.metric("pm_ingest_dedup_hits_total{kind=\"trigger_other_token\"}") +
           b.metric("pm_ingest_dedup_hits_total{kind=\"trigger_other_token\"}");
  };
  EXPECT_TRUE(wait_until([&] { return dedup() == 150; }, 10s)) << dedup();
}

TEST(DaemonCli, HelpListsEveryOptionWithItsDefault) {
  Process help;
  const std::string out = make_temp_dir("pm_help") + "/help.txt";
  help.start(PM_INGESTD_BIN, {"--help"}, {}, out);
  ASSERT_EQ(help.wait(10s), 0);
  const std::string text = read_file(out);
  for (const char* option : {"--socket", "--wal-dir", "--database-url", "--metrics-listen", "--batch-max-events",
                             "--batch-max-delay-ms", "--wal-max-bytes", "--trade-timestamp-unit", "--instance-id",
                             "--shutdown-timeout", "--log-level", "--config", "--version", "--allow-uid",
                             "--wal-preallocate", "--synchronous-commit", "--wal-group-delay-us"})
    EXPECT_NE(text.find(option), std::string::npos) << option;
  EXPECT_NE(text.find("127.0.0.1:9464"), std::string::npos);
  EXPECT_NE(text.find("(=20000)"), std::string::npos);
  Process version;
  version.start(PM_INGESTD_BIN, {"--version"}, {}, out + ".v");
  ASSERT_EQ(version.wait(10s), 0);
  EXPECT_NE(read_file(out + ".v").find("pm-ingestd "), std::string::npos);
  Process bad;
  bad.start(PM_INGESTD_BIN, {"--trade-timestamp-unit", "us"}, {{"DATABASE_URL", "postgresql://x@localhost/x"}}, out + ".bad");
  EXPECT_EQ(bad.wait(10s), 1);
  EXPECT_NE(read_file(out + ".bad").find("--trade-timestamp-unit"), std::string::npos);
  Process bad_delay;
  bad_delay.start(PM_INGESTD_BIN, {"--wal-group-delay-us", "20000"}, {{"DATABASE_URL", "postgresql://x@localhost/x"}}, out + ".bad3");
  EXPECT_EQ(bad_delay.wait(10s), 1);
  EXPECT_NE(read_file(out + ".bad3").find("--wal-group-delay-us must be between 0 and 10000 (20000 given)"), std::string::npos)
      << read_file(out + ".bad3");
  for (const std::string option : {"--wal-preallocate", "--synchronous-commit"}) {
    Process bad_switch;
    bad_switch.start(PM_INGESTD_BIN, {option, "maybe"}, {{"DATABASE_URL", "postgresql://x@localhost/x"}}, out + ".bad2");
    EXPECT_EQ(bad_switch.wait(10s), 1) << option;
    EXPECT_NE(read_file(out + ".bad2").find(option + ": 'maybe' is neither on nor off"), std::string::npos)
        << read_file(out + ".bad2");
  }
}

TEST(DaemonCli, ConfigFileAndEnvironmentAreRead) {
  const std::string dir = make_temp_dir("pm_cfg");
  { std::ofstream(dir + "/pm.conf") << "batch-max-events = 7\nwal-dir = " << dir << "/wal-from-config\n"; }
  Process p;
  // An unknown option in the environment is an error that names it, which proves it was read.
  p.start(PM_INGESTD_BIN, {"--config", dir + "/pm.conf", "--help"}, {{"PM_INGESTD_NO_SUCH_OPTION", "1"}}, dir + "/out");
  EXPECT_EQ(p.wait(10s), 1);
  EXPECT_NE(read_file(dir + "/out").find("no-such-option"), std::string::npos) << read_file(dir + "/out");
}

}  // namespace
}  // namespace pm::test

namespace pm::test {
namespace {

// Issue 11: two daemons on one log directory would overwrite each other's acknowledged records.
TEST_F(DaemonTest, ASecondDaemonOnTheSameLogDirectoryRefusesAndTheFirstKeepsItsRecords) {
  DaemonHarness first(tdb_->url());
  first.start();
  Producer p(first.socket());
  std::vector<std::string> lines = trade_lines("c", "locked", 200);
  ASSERT_TRUE(p.send(lines));
  ASSERT_TRUE(p.wait_ack(200, 10s));
  // Its own metrics address, and the first's (a copy of the same config): it opened the metrics
  // address before the log, and exited 1, "cannot serve /metrics", which systemd restarts.
  for (const int metrics_port : {free_tcp_port(), first.metrics_port()}) {
    DaemonHarness second(tdb_->url(), {"--instance-id", "second"});
    second.process().start(PM_INGESTD_BIN,
                           {"--socket", second.socket(), "--wal-dir", first.wal_dir(), "--metrics-listen",
                            "127.0.0.1:" + std::to_string(metrics_port), "--instance-id", "second"},
                           {{"DATABASE_URL", tdb_->url()}}, second.dir() + "/daemon.log");
    const auto code = second.process().wait(20s);
    ASSERT_TRUE(code);
    EXPECT_EQ(*code, 2) << second.output();
    EXPECT_NE(second.output().find("is in use by another pm-ingestd (pid " + std::to_string(first.process().pid()) + ")"),
              std::string::npos)
        << second.output();
    EXPECT_FALSE(socket_accepts(second.socket()));
  }
  EXPECT_TRUE(wait_count(kTrades, 200));
  EXPECT_EQ(first.stop(), 0);
  auto verify = run_ctl({"wal-verify", "--wal-dir", first.wal_dir()});
  EXPECT_EQ(verify.code, 0) << verify.output;
  EXPECT_NE(verify.output.find("200 records"), std::string::npos) << verify.output;
}

// `pm-ingestctl archive store-damaged` holds the log's and the archive's locks while it runs. A
// daemon started meanwhile (a producer's connection through the socket unit, a restart) exited 2,
// "in use by another pm-ingestd (pm-ingestctl pid ...)", which systemd does not restart. It waits
// for the command instead, saying so, and starts once both locks are free. Held here with the
// owner line pm-ingestctl writes; a daemon's lock is still refused (the test above).
TEST_F(DaemonTest, AStartWaitsForAnOperatorCommandHoldingTheLogsAndTheArchivesLocks) {
  DaemonHarness d(tdb_->url());
  const std::string archive = d.dir() + "/archive";
  d.args().insert(d.args().end(), {"--archive-dir", archive});
  std::filesystem::create_directories(d.wal_dir());
  std::filesystem::create_directories(archive);
  wal::LogFs& fs = wal::posix_log_fs();
  std::unique_ptr<wal::FileLock> log_lock, archive_lock;
  const std::string owner = "pm-ingestctl pid " + std::to_string(::getpid());
  ASSERT_FALSE(fs.lock(wal::path_in(d.wal_dir(), wal::kLockFileName), owner, log_lock));
  ASSERT_FALSE(fs.lock(wal::path_in(archive, archive::kArchiveLockFileName), owner, archive_lock));
  // The command ends (releases its locks) once the daemon says it waits for it, archive's included.
  std::thread command([&] {
    const bool waited_for_log = wait_until([&] { return d.output().find("LOCK is held by " + owner) != std::string::npos; }, 20s);
    log_lock.reset();
    const bool waited_for_archive =
        wait_until([&] { return d.output().find("ARCHIVE.LOCK is held by " + owner) != std::string::npos; }, 20s);
    archive_lock.reset();
    EXPECT_TRUE(waited_for_log && waited_for_archive) << d.output();
  });
  d.start();
  command.join();
  EXPECT_TRUE(d.running()) << d.output();
  Producer p(d.socket());
  ASSERT_TRUE(p.send({trade_line("c", "after-command")}));
  ASSERT_TRUE(p.wait_ack(1, 10s));
  EXPECT_TRUE(wait_count("SELECT count(*) FROM polymarket_trades WHERE trade_id = 'after-command'", 1));
  EXPECT_EQ(d.stop(), 0);
  EXPECT_EQ(d.output().find("refusing to start"), std::string::npos) << d.output();
}

// Issue 11: a log that lost applied records, restarted while PostgreSQL is down, must not ack new
// events under LSNs the checkpoint covers (they would be skipped when the database returns).
TEST_F(DaemonTest, ALogThatLostAppliedRecordsRefusesToStartEvenWithoutTheDatabase) {
  DaemonHarness d(tdb_->url());
  d.start();
  {
    Producer p(d.socket());
    std::vector<std::string> lines = trade_lines("c", "applied", 80);
    ASSERT_TRUE(p.send(lines));
    ASSERT_TRUE(p.wait_ack(80, 10s));
  }
  ASSERT_TRUE(wait_count("SELECT count(*) FROM pm_ingest_checkpoints WHERE lsn = 80", 1));
  EXPECT_EQ(d.stop(), 0);
  std::filesystem::resize_file(d.wal_dir() + "/0000000000000001.wal", 56);  // the records are gone
  d.database_url() = unreachable_database_url();
  EXPECT_EQ(d.run_to_exit(), 2) << d.output();
  EXPECT_NE(d.output().find("new events would reuse their LSNs"), std::string::npos) << d.output();
  EXPECT_FALSE(socket_accepts(d.socket()));
  // The operator's status says so too, instead of a healthy-looking LSN range.
  auto status = run_ctl({"status", "--database-url", tdb_->url(), "--wal-dir", d.wal_dir()});
  EXPECT_EQ(status.code, 2) << status.output;
  EXPECT_NE(status.output.find("DAMAGED"), std::string::npos) << status.output;
  EXPECT_NE(status.output.find("records were lost"), std::string::npos) << status.output;
}

// Issue 11: after a restart with PostgreSQL down, applied bytes do not count against the budget.
TEST_F(DaemonTest, AppliedBytesDoNotCountAgainstTheBudgetAfterARestartWithoutTheDatabase) {
  DaemonHarness d(tdb_->url(), {"--wal-max-bytes", "40K"});
  d.start();
  for (int round = 0; round < 4; ++round) {  // 4 x ~30 KiB: more than the budget, all applied
    Producer p(d.socket());
    std::vector<std::string> lines;
    for (int i = 0; i < 100; ++i) lines.push_back(trade_line("c", "budget" + std::to_string(round) + "-" + std::to_string(i)));
    ASSERT_TRUE(p.send(lines));
    std::vector<Reply> seen;
    ASSERT_TRUE(p.wait_ack(100, 10s, &seen));
    for (const auto& r : seen) ASSERT_TRUE(r.is_ack) << "round " << round << ": " << r.error << " " << r.detail;
    ASSERT_TRUE(wait_count(kTrades, 100 * (round + 1))) << "round " << round << "\n" << d.output();
    // Rows are visible a moment before the writer has taken the commit's outcome (and freed the
    // budget): the next round waits for that, or its lines could meet a full budget. The applied
    // counter moves when the writer takes the outcome, after it freed the bytes; the unapplied-bytes
    // gauge is only sampled every 250 ms, so a stale 0 from the round before could pass for it.
    ASSERT_TRUE(wait_until([&] { return d.metric("pm_ingest_applied_events_total") >= 100.0 * (round + 1); }, 10s));
  }
  EXPECT_EQ(d.stop(), 0);
  d.database_url() = unreachable_database_url();
  d.start();
  EXPECT_EQ(d.metric("pm_ingest_database_up"), 0);
  Producer p(d.socket());
  std::vector<std::string> lines = trade_lines("c", "after", 60);
  ASSERT_TRUE(p.send(lines));
  std::vector<Reply> replies;
  ASSERT_TRUE(p.wait_ack(60, 10s, &replies)) << "lines got busy: the applied bytes still counted against the budget";
  for (const auto& r : replies) EXPECT_TRUE(r.is_ack) << r.error << " " << r.detail;
  EXPECT_EQ(d.stop(), 0);
}

}  // namespace
}  // namespace pm::test

namespace pm::test {
namespace {

// Issue 18, item 4: conninfo forms libpq accepts (spaces around '=', quoted values), and a URL
// given to the wrong option, never show their password in ps or in the error.
TEST(DaemonSecrets, ConninfoPasswordsAreMaskedInPsAndMisplacedUrlsInErrors) {
  const std::string unreachable_port = std::to_string(free_tcp_port());
  for (const std::string& conninfo : {"host=127.0.0.1 port=" + unreachable_port + " user=predict password = S3cretPW dbname=x",
                                     "host=127.0.0.1 port=" + unreachable_port + " user=predict password='S3cretPW PW4' dbname=x"}) {
    DaemonHarness d("", {"--database-url", conninfo});
    d.start();  // the database is unreachable: the daemon still runs, and ps can be read
    const std::string cmdline = read_file("/proc/" + std::to_string(d.process().pid()) + "/cmdline");
    EXPECT_EQ(cmdline.find("S3cretPW"), std::string::npos) << cmdline;
    EXPECT_EQ(cmdline.find("PW4"), std::string::npos) << cmdline;
    EXPECT_EQ(d.stop(), 0);
    EXPECT_EQ(d.output().find("S3cretPW"), std::string::npos) << d.output();
  }
  DaemonHarness wrong("", {"--wal-max-bytes", "postgresql://predict:S3cretF@localhost/predict"});
  EXPECT_EQ(wrong.run_to_exit(), 1);
  EXPECT_NE(wrong.output().find("not a byte count"), std::string::npos) << wrong.output();
  EXPECT_EQ(wrong.output().find("S3cretF"), std::string::npos) << wrong.output();
}

// Issue 16 risk 2: G2 stands on the unique index on (condition_id, threshold). A non-unique index
// of the seed's name (which CREATE UNIQUE INDEX IF NOT EXISTS leaves alone) stops the daemon with
// exit code 2 and a message saying what is wrong and how to fix it; once fixed, it runs.
TEST_F(DaemonTest, RefusesToRunWithoutTheUniqueIndexG2NeedsAndSaysHowToFixIt) {
  TestDatabase db("e2e_g2");
  db.exec("DROP INDEX idx_triggers_condition_threshold_unique; "
          "CREATE INDEX idx_triggers_condition_threshold_unique ON polymarket_first_triggers (condition_id, threshold)");
  DaemonHarness d(db.url());
  EXPECT_EQ(d.run_to_exit(), 2) << d.output();
  const std::string out = d.output();
  EXPECT_NE(out.find("polymarket_first_triggers has no valid unique index on exactly (condition_id, threshold)"),
            std::string::npos) << out;
  EXPECT_NE(out.find("refusing to apply events until it is fixed"), std::string::npos) << out;
  EXPECT_NE(out.find("CREATE UNIQUE INDEX idx_triggers_condition_threshold_unique"), std::string::npos) << out;
  EXPECT_EQ(query_count(db.url(), "SELECT count(*) FROM pm_ingest_checkpoints"), 0);  // nothing applied

  db.exec("DROP INDEX idx_triggers_condition_threshold_unique; "
          "CREATE UNIQUE INDEX idx_triggers_condition_threshold_unique ON polymarket_first_triggers (condition_id, threshold)");
  d.start();
  {
    Producer p(d.socket());
    ASSERT_TRUE(p.send({trade_line("c_g2", "after_fix")}));
    ASSERT_TRUE(p.wait_ack(1, 10s));
  }
  EXPECT_TRUE(wait_until([&] { return query_count(db.url(), "SELECT count(*) FROM polymarket_trades WHERE trade_id = 'after_fix'") == 1; },
                         20s));
  EXPECT_EQ(d.stop(), 0);
}

// Issue 16 risk 1: a trade time before 1973-03-03 in seconds is below 10^11 in milliseconds, a size
// the library refuses for a milliseconds table. It used to be acked and then dead-lettered; the
// line is refused now (range, naming the field), nothing of it is stored, the lines around it are.
// (Such an event already in a log is dead-lettered:
// PowerLossRounds.AnEventTheTableUnitRefusesInTheLogIsDeadLetteredAndTheRestApplied.)
TEST_F(DaemonTest, ATradeTimeTheTableUnitRefusesIsRefusedOnItsLineAndTheRestApplied) {
  DaemonHarness d(tdb_->url());
  d.start();
  Producer p(d.socket());
  ASSERT_TRUE(p.send({trade_line("c_unit", "before"), trade_line("c_unit", "too_early", 5), trade_line("c_unit", "after")}));
  std::vector<Reply> replies;
  ASSERT_TRUE(p.wait_ack(3, 10s, &replies));
  std::vector<Reply> errors;
  for (const Reply& r : replies)
    if (!r.is_ack) errors.push_back(r);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].line, 2u);
  EXPECT_EQ(errors[0].error, "range");
  EXPECT_NE(errors[0].detail.find("'timestamp' 5 is before 1973-03-03"), std::string::npos) << errors[0].detail;
  ASSERT_TRUE(wait_count("SELECT count(*) FROM polymarket_trades WHERE condition_id = 'c_unit'", 2));
  EXPECT_EQ(count("SELECT count(*) FROM polymarket_trades WHERE trade_id = 'too_early'"), 0);
  EXPECT_EQ(count("SELECT count(*) FROM pm_dead_letters"), 0);
  EXPECT_EQ(d.stop(), 0);
}

}  // namespace
}  // namespace pm::test
