// CommitOrder on its own, then BatchApplier's two steps and WriterLanes against a real PostgreSQL:
// overlapping batches store each trade once, never wait on each other, commit in log order, and
// a failed batch rolls back the ones behind it.
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "ingest/events/event_json.h"
#include "ingest/writer/batch_applier.h"
#include "ingest/writer/commit_order.h"
#include "ingest/writer/writer_lanes.h"
#include "repos/pg_errors.h"
#include "repos/util/clock.h"
#include "tests/support/process.h"
#include "tests/support/test_database.h"

namespace pm {
namespace {

using namespace std::chrono_literals;

TEST(CommitOrder, ABatchWaitsForTheOneBeforeIt) {
  CommitOrder order(1);
  auto second = std::async(std::launch::async, [&] { return order.await_turn(2); });
  EXPECT_TRUE(test::wait_until([&] { return order.waiting() == 1; }, 30s)) << "batch 2 did not wait for batch 1";
  EXPECT_EQ(second.wait_for(0ms), std::future_status::timeout);
  EXPECT_TRUE(order.await_turn(1));
  order.done(1, true);
  EXPECT_TRUE(second.get());
}

TEST(CommitOrder, AFailureMakesEveryLaterBatchGiveUpUntilReset) {
  CommitOrder order(1);
  EXPECT_TRUE(order.await_turn(1));
  order.done(1, true);
  order.done(2, false);  // failed before its turn came to commit
  EXPECT_FALSE(order.await_turn(3));
  order.done(3, false);
  EXPECT_FALSE(order.await_turn(4));
  order.done(4, false);
  order.reset(5);
  EXPECT_TRUE(order.await_turn(5));
}

TEST(CommitOrder, AnOutcomeIsRecordedOnlyAfterThePreviousOne) {
  CommitOrder order(1);
  auto second_failed = std::async(std::launch::async, [&] { order.done(2, false); });
  EXPECT_TRUE(test::wait_until([&] { return order.waiting() == 1; }, 30s)) << "batch 2's outcome did not wait for batch 1's";
  EXPECT_EQ(second_failed.wait_for(0ms), std::future_status::timeout);
  // Batch 1 still commits: batch 2's failure is behind it.
  EXPECT_TRUE(order.await_turn(1));
  order.done(1, true);
  second_failed.get();
  EXPECT_FALSE(order.await_turn(3));
}

// Events for batches: trades of condition "c" with the given ids, numbered from `first_lsn`.
std::vector<QueuedEvent> trades(std::uint64_t first_lsn, const std::vector<std::string>& ids, std::int64_t ts_ms = 1'700'000'000'000) {
  std::vector<QueuedEvent> out;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    QueuedEvent q;
    q.lsn = first_lsn + i;
    q.end = wal::Position{1, q.lsn * 100, q.lsn * 100, q.lsn};
    TradeEvent t;
    t.condition_id = "c";
    t.trade_id = ids[i];
    t.price = 0.5;
    t.size = 10;
    t.side = "BUY";
    t.timestamp_ms = ts_ms + static_cast<std::int64_t>(q.lsn);
    t.raw_json = "{}";
    q.event.received_ms = ts_ms;
    q.event.body = t;
    out.push_back(std::move(q));
  }
  return out;
}

// A trigger event of condition "c" at `threshold` for `token`, at `lsn`.
QueuedEvent trigger_event(std::uint64_t lsn, const std::string& token, double threshold) {
  QueuedEvent q;
  q.lsn = lsn;
  q.end = wal::Position{1, lsn * 100, lsn * 100, lsn};
  TriggerEvent g;
  g.token_id = token;
  g.condition_id = "c";
  g.threshold = threshold;
  g.trigger_timestamp_ms = 1'700'000'000'000 + static_cast<std::int64_t>(lsn);
  q.event.received_ms = g.trigger_timestamp_ms;
  q.event.body = g;
  return q;
}

class WriterLanesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { tdb_ = new test::TestDatabase("lanes"); }
  static void TearDownTestSuite() { delete tdb_; }
  void SetUp() override {
    tdb_->exec("TRUNCATE polymarket_trades, trade_watermarks, polymarket_first_triggers, trigger_watermarks, pm_ingest_checkpoints, "
               "pm_dead_letters");
    tdb_->exec("ALTER TABLE polymarket_trades DROP CONSTRAINT IF EXISTS test_no_poison");
    tdb_->drop_refusal_at_commit();
  }
  long long count(const std::string& sql) { return tdb_->count(sql); }
  // A dead letter of instance 'lanes' stored before the test's batches, under `log_id`.
  static void store_dead_letter(const std::string& log_id, std::int64_t lsn, const std::string& payload) {
    tdb_->db().transaction([&](pqxx::work& tx) {
      tx.exec_params("INSERT INTO pm_dead_letters (instance_id, log_id, lsn, event_type, payload, error, created_at) "
                     "VALUES ('lanes', $1, $2, 'trade', $3, 'stored before', '2026-01-01T00:00:00.000000Z')",
                     log_id, lsn, pqxx::binarystring(payload));
    });
  }
  static TxFailure check_violation() {
    TxFailure refusal;
    refusal.kind = PgErrorKind::Data;
    refusal.sqlstate = "23514";
    refusal.message = "new row violates check constraint";
    return refusal;
  }
  static test::TestDatabase* tdb_;
  const BatchApplier applier_{"lanes", "00ff", TimestampUnit::Milliseconds};
};
test::TestDatabase* WriterLanesTest::tdb_ = nullptr;

TEST_F(WriterLanesTest, TheNextBatchCopiesWhileThePreviousIsOpenWithoutWaitingOnIt) {
  const auto first = trades(1, {"a", "b"});
  const auto second = trades(3, {"b", "c"});
  const auto first_rows = applier_.trade_rows(first);
  const auto second_rows = applier_.trade_rows(second);
  TradeKeySet first_keys;
  for (const auto& row : first_rows) first_keys.insert(row);
  const TradeKeySet* in_flight[] = {&first_keys};
  pqxx::connection c1(tdb_->url()), c2(tdb_->url());
  pqxx::work tx1(c1);
  const TradeStage stage1 = applier_.insert_trades(tx1, first_rows, DuplicateProbe::OnConflict);
  pqxx::work tx2(c2);
  tx2.exec("SET LOCAL statement_timeout = '5s'");  // a wait on tx1's row "b" would time out here
  const TradeStage stage2 = applier_.insert_trades(tx2, second_rows, DuplicateProbe::OnConflict, in_flight);
  EXPECT_EQ(stage2.trades, 2u);
  ASSERT_EQ(stage2.inserted.size(), 1u);
  EXPECT_EQ(second_rows[stage2.inserted[0]].trade_id, "c");
  applier_.finish(tx1, first, first_rows, stage1);
  tx1.commit();
  const BatchCounts counts2 = applier_.finish(tx2, second, second_rows, stage2);
  tx2.commit();
  EXPECT_EQ(counts2.trades_inserted, 1u);
  EXPECT_EQ(count("SELECT count(*) FROM polymarket_trades"), 3);
  EXPECT_EQ(count("SELECT count(*) FROM pm_ingest_checkpoints WHERE instance_id = 'lanes' AND lsn = 4"), 1);
  EXPECT_EQ(count("SELECT last_timestamp FROM trade_watermarks WHERE condition_id = 'c'"), 1'700'000'000'004);
}

// The daemon checked each event against its own arrival (at most 24 h after it); the library's
// writers check timestamps against the clock. Applied with the clock stepped back (or replayed on a
// host whose clock is behind), events whose arrival is ahead of the applying clock were refused as
// "more than a day ahead" and dead-lettered: the rows the writer writes must depend on the events only.
TEST_F(WriterLanesTest, EventsThatArrivedAheadOfTheApplyingClockAreAppliedNotRefused) {
  const std::int64_t arrived = now_epoch_ms() + 2 * 24 * 3600 * 1000LL;  // as the clock then said
  auto batch = trades(1, {"ahead"}, arrived);
  QueuedEvent trigger;
  trigger.lsn = 2;
  trigger.end = wal::Position{1, 200, 200, 2};
  TriggerEvent g;
  g.token_id = "tok";
  g.condition_id = "c";
  g.threshold = 0.9;
  g.trigger_timestamp_ms = arrived;
  trigger.event.received_ms = arrived;
  trigger.event.body = g;
  batch.push_back(trigger);
  pqxx::connection c(tdb_->url());
  pqxx::work tx(c);
  const BatchCounts counts = applier_.apply(tx, batch, DuplicateProbe::OnConflict);
  tx.commit();
  EXPECT_EQ(counts.trades_inserted, 1u);
  EXPECT_EQ(counts.triggers_recorded, 1u);
  EXPECT_EQ(count("SELECT count(*) FROM polymarket_trades WHERE trade_id = 'ahead'"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM polymarket_first_triggers WHERE token_id = 'tok'"), 1);
  EXPECT_EQ(count("SELECT last_timestamp FROM trigger_watermarks"), arrived);
}

TEST_F(WriterLanesTest, ATradeWatermarkRecordsTheArrivalOfTheFirstRowWithTheNewestTimestamp) {
  // Condition x: a (ts 5), b (9), e (9, later); condition y: c (9), d (7). Each arrives 1 s after
  // the one before, so each updated_at names the row it came from: b's for x, c's for y.
  auto batch = trades(1, {"a", "b", "c", "d", "e"});
  const std::int64_t ts[] = {5, 9, 9, 7, 9};
  const char* condition[] = {"x", "x", "y", "y", "x"};
  const std::int64_t arrival = 1'800'000'000'000;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    auto& t = std::get<TradeEvent>(batch[i].event.body);
    t.condition_id = condition[i];
    t.timestamp_ms = 1'700'000'000'000 + ts[i];
    batch[i].event.received_ms = arrival + 1000 * static_cast<std::int64_t>(i);
  }
  const auto rows = applier_.trade_rows(batch);
  pqxx::connection c(tdb_->url());
  pqxx::work tx(c);
  const TradeStage stage = applier_.insert_trades(tx, rows, DuplicateProbe::OnConflict);
  const BatchCounts counts = applier_.finish(tx, batch, rows, stage);
  tx.commit();
  EXPECT_EQ(counts.trade_watermarks, 2u);
  pqxx::nontransaction read(c);
  const auto marks = read.exec("SELECT condition_id, last_timestamp, updated_at FROM trade_watermarks ORDER BY condition_id");
  ASSERT_EQ(marks.size(), 2u);
  EXPECT_EQ(marks[0][0].as<std::string>(), "x");
  EXPECT_EQ(marks[0][1].as<std::int64_t>(), 1'700'000'000'009);
  EXPECT_EQ(marks[0][2].as<std::string>(), format_iso_ms(arrival + 1000));  // b
  EXPECT_EQ(marks[1][0].as<std::string>(), "y");
  EXPECT_EQ(marks[1][1].as<std::int64_t>(), 1'700'000'000'009);
  EXPECT_EQ(marks[1][2].as<std::string>(), format_iso_ms(arrival + 2000));  // c
}

TEST_F(WriterLanesTest, WithoutTheInFlightKeysTheSecondBatchWouldWaitOnTheFirst) {
  // The control for the test above: the shared key really is a lock wait when not left out.
  const auto first = trades(1, {"a", "b"});
  const auto second = trades(3, {"b", "c"});
  pqxx::connection c1(tdb_->url()), c2(tdb_->url());
  pqxx::work tx1(c1);
  applier_.insert_trades(tx1, applier_.trade_rows(first), DuplicateProbe::OnConflict);
  pqxx::work tx2(c2);
  const int second_backend = c2.backendpid();
  std::thread second_batch([&] { applier_.insert_trades(tx2, applier_.trade_rows(second), DuplicateProbe::OnConflict); });
  // Seen waiting on a lock by the server itself (a timeout could also be a slow machine).
  const bool waited = test::wait_until(
      [&] {
        return tdb_->count("SELECT count(*) FROM pg_stat_activity WHERE pid = " + std::to_string(second_backend) +
                           " AND wait_event_type = 'Lock'") == 1;
      },
      std::chrono::seconds(30));
  tx1.abort();  // lets the second batch go on
  second_batch.join();
  tx2.abort();
  EXPECT_TRUE(waited) << "the second batch did not wait on the first";
}

TEST_F(WriterLanesTest, OverlappingBatchesStoreEachTradeOnceAndCommitInOrder) {
  WriterLanes lanes(tdb_->db(), applier_, 3);
  // Each batch repeats keys of the one or two before it, and one already stored.
  tdb_->exec("INSERT INTO polymarket_trades (condition_id, trade_id) VALUES ('c', 'stored')");
  std::uint64_t lsn = 1;
  std::size_t events = 0;
  for (int b = 0; b < 12; ++b) {
    std::vector<std::string> ids;
    for (int i = 0; i < 50; ++i) ids.push_back("t" + std::to_string(b * 40 + i));  // 10 shared with the next
    ids.push_back("t" + std::to_string(std::max(0, b - 2) * 40));                  // and one of two batches back
    ids.push_back("stored");
    auto batch = trades(lsn, ids);
    lsn += batch.size();
    events += batch.size();
    lanes.submit(std::move(batch), b % 2 ? DuplicateProbe::First : DuplicateProbe::OnConflict);
  }
  const auto finished = lanes.take_finished(true);
  ASSERT_EQ(finished.size(), 12u);
  std::size_t inserted = 0, seen = 0;
  for (const auto& f : finished) {
    ASSERT_TRUE(f.result.applied()) << to_string(f.result.status) << ": " << f.result.failure.message;
    inserted += f.result.value->trades_inserted;
    seen += f.result.value->trades;
  }
  EXPECT_EQ(seen, events);
  EXPECT_EQ(inserted, 11u * 40 + 50);
  EXPECT_EQ(count("SELECT count(*) FROM polymarket_trades"), 11 * 40 + 50 + 1);
  EXPECT_EQ(count("SELECT lsn FROM pm_ingest_checkpoints WHERE instance_id = 'lanes'"), static_cast<long long>(lsn - 1));
  EXPECT_EQ(lanes.in_flight(), 0u);
}

TEST_F(WriterLanesTest, AFailedBatchRollsBackTheOnesBehindItAndTheOnesBeforeItCommit) {
  tdb_->exec("ALTER TABLE polymarket_trades ADD CONSTRAINT test_no_poison CHECK (trade_id <> 'poison')");
  WriterLanes lanes(tdb_->db(), applier_, 2);
  lanes.submit(trades(1, {"a1", "a2"}), DuplicateProbe::OnConflict);
  lanes.submit(trades(3, {"b1", "poison"}), DuplicateProbe::OnConflict);
  lanes.submit(trades(5, {"c1", "c2"}), DuplicateProbe::OnConflict);
  auto finished = lanes.take_finished(true);
  ASSERT_EQ(finished.size(), 3u);
  EXPECT_TRUE(finished[0].result.applied());
  EXPECT_EQ(finished[1].result.status, TxStatus::DataError);
  EXPECT_EQ(finished[1].result.failure.sqlstate, "23514");
  EXPECT_FALSE(finished[1].result.value.has_value());
  EXPECT_FALSE(finished[2].result.applied());
  EXPECT_FALSE(finished[2].result.value.has_value());
  EXPECT_EQ(count("SELECT count(*) FROM polymarket_trades"), 2);
  EXPECT_EQ(count("SELECT lsn FROM pm_ingest_checkpoints WHERE instance_id = 'lanes'"), 2);
  // After restart() the lanes carry on from a fresh sequence.
  lanes.restart();
  lanes.submit(trades(3, {"b1"}), DuplicateProbe::OnConflict);
  finished = lanes.take_finished(true);
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_TRUE(finished[0].result.applied());
  EXPECT_EQ(count("SELECT lsn FROM pm_ingest_checkpoints WHERE instance_id = 'lanes'"), 3);
}

// While the batch before is still running, a batch waits for it inside PostgreSQL (its shared turn
// lock, where the deadlock detector sees the wait), and that wait travels in the same round trip as
// its finishing statements: PostgreSQL runs the checkpoint's statement once the wait is over.
TEST_F(WriterLanesTest, ABatchWaitsForTheOneBeforeInsidePostgresInTheRoundTripOfItsFinish) {
  tdb_->exec("INSERT INTO trade_watermarks (condition_id, last_timestamp, updated_at) VALUES ('c', 0, 'x')");
  pqxx::connection blocker(tdb_->url());
  pqxx::work hold(blocker);
  hold.exec("SELECT 1 FROM trade_watermarks WHERE condition_id = 'c' FOR UPDATE");  // batch 1's finish waits on it
  WriterLanes lanes(tdb_->db(), applier_, 2);
  lanes.submit(trades(1, {"a1", "a2"}), DuplicateProbe::OnConflict);
  lanes.submit(trades(3, {"b1", "b2"}), DuplicateProbe::OnConflict);
  // This database's sessions only: a daemon or test of another ctest job waits the same way on the
  // shared server.
  const auto waiting_for_the_batch_before = [&] {
    return count("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' "
                 "AND wait_event = 'advisory' AND query LIKE '%pg_advisory_xact_lock_shared%' "
                 "AND query LIKE '%pm_ingest_checkpoints%'");
  };
  EXPECT_TRUE(test::wait_until([&] { return waiting_for_the_batch_before() == 1; }, 20s))
      << "no batch waits on its turn lock in the query that saves its checkpoint";
  EXPECT_EQ(count("SELECT count(*) FROM polymarket_trades"), 0);
  hold.abort();
  const auto finished = lanes.take_finished(true);
  ASSERT_EQ(finished.size(), 2u);
  for (const auto& f : finished) ASSERT_TRUE(f.result.applied()) << f.result.failure.message;
  EXPECT_EQ(count("SELECT count(*) FROM polymarket_trades"), 4);
  EXPECT_EQ(count("SELECT lsn FROM pm_ingest_checkpoints WHERE instance_id = 'lanes'"), 4);
  EXPECT_EQ(count("SELECT applied_events FROM pm_ingest_checkpoints WHERE instance_id = 'lanes'"), 4);
}

// G2 across lanes: the first trigger of a (condition, threshold) is the one of the earlier batch,
// even when that batch is held up (its COPY waits on another session's uncommitted row of the same
// trade key) while the next batch, with the other token's trigger, is ready to finish: that one
// waits for it inside PostgreSQL (its turn lock), so the result is the serial one. Without the
// wait, the later batch claimed the threshold first (and the earlier one then waited on that
// claim while the later waited for the earlier's commit).
TEST_F(WriterLanesTest, TheFirstTriggerIsTheEarlierBatchsWhileThatBatchIsHeldUp) {
  pqxx::connection blocker(tdb_->url());
  pqxx::work hold(blocker);
  hold.exec("INSERT INTO polymarket_trades (condition_id, trade_id) VALUES ('c', 'held')");
  WriterLanes lanes(tdb_->db(), applier_, 2);
  auto earlier = trades(1, {"held"});
  earlier.push_back(trigger_event(2, "token-A", 0.9));
  lanes.submit(std::move(earlier), DuplicateProbe::OnConflict);
  lanes.submit({trigger_event(3, "token-B", 0.9)}, DuplicateProbe::OnConflict);
  const auto later_waits_for_its_turn = [&] {
    return count("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' "
                 "AND wait_event = 'advisory' AND query LIKE '%pg_advisory_xact_lock_shared%'");
  };
  EXPECT_TRUE(test::wait_until([&] { return later_waits_for_its_turn() == 1; }, 20s))
      << "the later batch did not wait for the earlier one in PostgreSQL";
  EXPECT_EQ(count("SELECT count(*) FROM polymarket_first_triggers"), 0);
  hold.abort();
  const auto finished = lanes.take_finished(true);
  ASSERT_EQ(finished.size(), 2u);
  for (const auto& f : finished) ASSERT_TRUE(f.result.applied()) << f.result.failure.message;
  EXPECT_EQ(count("SELECT count(*) FROM polymarket_first_triggers WHERE condition_id = 'c' AND token_id = 'token-A'"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM polymarket_first_triggers"), 1);
  EXPECT_EQ(finished[1].result.value->triggers_other_token, 1u);
  EXPECT_EQ(count("SELECT lsn FROM pm_ingest_checkpoints WHERE instance_id = 'lanes'"), 3);
}

// A batch whose COMMIT fails (here a deferred constraint trigger, checked at COMMIT) did not
// commit: it must come back as failed, never with counts, and the batches behind it roll back.
TEST_F(WriterLanesTest, ABatchWhoseCommitFailsIsAFailureNotACommit) {
  tdb_->refuse_at_commit("late");
  WriterLanes lanes(tdb_->db(), applier_, 2);
  lanes.submit(trades(1, {"a1", "a2"}), DuplicateProbe::OnConflict);
  lanes.submit(trades(3, {"b1", "late"}), DuplicateProbe::OnConflict);
  lanes.submit(trades(5, {"c1", "c2"}), DuplicateProbe::OnConflict);
  const auto finished = lanes.take_finished(true);
  ASSERT_EQ(finished.size(), 3u);
  EXPECT_TRUE(finished[0].result.applied());
  EXPECT_FALSE(finished[1].result.applied()) << "a batch whose COMMIT failed was reported as committed";
  EXPECT_TRUE(finished[1].result.failed());
  EXPECT_FALSE(finished[2].result.applied());
  EXPECT_EQ(count("SELECT count(*) FROM polymarket_trades"), 2);
  EXPECT_EQ(count("SELECT lsn FROM pm_ingest_checkpoints WHERE instance_id = 'lanes'"), 2);
}

// One lane is the single-connection writer (issue 14: one apply route): batches one after the
// other, each committed before the next starts.
TEST_F(WriterLanesTest, OneLaneAppliesBatchesOneAfterTheOther) {
  WriterLanes lanes(tdb_->db(), applier_, 1);
  lanes.submit(trades(1, {"a1", "a2"}), DuplicateProbe::OnConflict);
  lanes.submit(trades(3, {"a2", "b1"}), DuplicateProbe::First);
  lanes.submit(trades(5, {"c1"}), DuplicateProbe::OnConflict);
  const auto finished = lanes.take_finished(true);
  ASSERT_EQ(finished.size(), 3u);
  for (const auto& f : finished) ASSERT_TRUE(f.result.applied()) << f.result.failure.message;
  EXPECT_EQ(finished[1].result.value->trades_inserted, 1u);  // a2 was stored by the first batch
  EXPECT_EQ(count("SELECT count(*) FROM polymarket_trades"), 4);
  EXPECT_EQ(count("SELECT lsn FROM pm_ingest_checkpoints WHERE instance_id = 'lanes'"), 5);
}

// Poison isolation ends in a dead-letter batch through the same lanes: the event goes to
// pm_dead_letters with the server's error, the checkpoint moves past it, no trade is stored.
TEST_F(WriterLanesTest, ADeadLetterBatchStoresTheEventWithItsErrorAndMovesTheCheckpoint) {
  WriterLanes lanes(tdb_->db(), applier_, 2);
  lanes.submit(trades(1, {"a1"}), DuplicateProbe::OnConflict);
  TxFailure refusal;
  refusal.kind = PgErrorKind::Data;
  refusal.sqlstate = "23514";
  refusal.message = "new row violates check constraint";
  lanes.submit_dead_letter(trades(2, {"poison"}).front(), refusal);
  const auto finished = lanes.take_finished(true);
  ASSERT_EQ(finished.size(), 2u);
  ASSERT_TRUE(finished[1].result.applied()) << finished[1].result.failure.message;
  EXPECT_EQ(finished[1].result.value->dead_lettered, 1u);
  EXPECT_EQ(count("SELECT count(*) FROM pm_dead_letters WHERE instance_id = 'lanes' AND lsn = 2 AND sqlstate = '23514'"
                  " AND error = 'new row violates check constraint'"),
            1);
  EXPECT_EQ(count("SELECT count(*) FROM polymarket_trades WHERE trade_id = 'poison'"), 0);
  EXPECT_EQ(count("SELECT lsn FROM pm_ingest_checkpoints WHERE instance_id = 'lanes'"), 2);
}

// A dead letter is keyed by (instance, log id, lsn). One of another log at the same lsn (a log
// before a checkpoint reset, or a row written before log ids were: '') does not hide the new
// one; a row of the same key (a store replayed after its COMMIT reply was lost, or another
// rendering of the same record) is kept once and the checkpoint moves.
TEST_F(WriterLanesTest, ADeadLetterIsKeyedByItsLogAndARowOfTheSameKeyIsKept) {
  WriterLanes lanes(tdb_->db(), applier_, 1);
  const QueuedEvent first = trades(1, {"poison-1"}).front();
  const QueuedEvent second = trades(2, {"poison-2"}).front();
  const QueuedEvent third = trades(3, {"poison-3"}).front();
  store_dead_letter("", 1, "an event of a log before");
  store_dead_letter("00aa", 1, "an event of another log");
  store_dead_letter("00ff", 2, event_to_json(second.event));
  store_dead_letter("00ff", 3, "another event under this key");
  lanes.submit_dead_letter(first, check_violation());
  lanes.submit_dead_letter(second, check_violation());
  const auto finished = lanes.take_finished(true);
  ASSERT_EQ(finished.size(), 2u);
  for (const auto& f : finished) ASSERT_TRUE(f.result.applied()) << f.result.failure.message;
  // Both events are dead-lettered; only the first stored a row (pm_ingest_rows_written_total
  // counted the kept one too).
  EXPECT_EQ(finished[0].result.value->dead_lettered, 1u);
  EXPECT_EQ(finished[0].result.value->dead_letter_rows, 1u);
  EXPECT_EQ(finished[1].result.value->dead_lettered, 1u);
  EXPECT_EQ(finished[1].result.value->dead_letter_rows, 0u);
  EXPECT_EQ(count("SELECT count(*) FROM pm_dead_letters WHERE instance_id = 'lanes' AND log_id = '00ff' AND lsn = 1 AND "
                  "convert_from(payload, 'UTF8') LIKE '%\"poison-1\"%' AND sqlstate = '23514'"),
            1);
  EXPECT_EQ(count("SELECT count(*) FROM pm_dead_letters WHERE lsn = 1"), 3);
  EXPECT_EQ(count("SELECT count(*) FROM pm_dead_letters WHERE lsn = 2 AND error = 'stored before'"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM pm_dead_letters WHERE lsn = 2"), 1);
  EXPECT_EQ(count("SELECT lsn FROM pm_ingest_checkpoints WHERE instance_id = 'lanes'"), 2);
  // One log's lsn names one record: a row of its key is that record's letter, whatever its payload
  // says (another version's rendering; a replay's skipped range, stored with none). It is kept, and
  // the checkpoint moves (a check that failed the batch on another payload stalled the writer).
  lanes.submit_dead_letter(third, check_violation());
  const auto kept = lanes.take_finished(true);
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_TRUE(kept[0].result.applied()) << kept[0].result.failure.message;
  EXPECT_EQ(count("SELECT lsn FROM pm_ingest_checkpoints WHERE instance_id = 'lanes'"), 3);
  EXPECT_EQ(count("SELECT count(*) FROM pm_dead_letters WHERE lsn = 3"), 1);
}

}  // namespace
}  // namespace pm
