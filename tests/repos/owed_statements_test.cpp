// OwedStatements and exec_together against a real PostgreSQL: several statements in one round
// trip, each one's affected rows, the first failure thrown with its SQLSTATE and nothing run after
// it; the ingest writer's shape of a batch (its lock owed, the COPY under a savepoint, the
// watermarks in one query), counted in round trips on the wire (libpq's protocol trace); and
// DeferredBeginTransaction, whose BEGIN is owed too.
#include <gtest/gtest.h>

#include <cstdio>
#include <deque>
#include <string>
#include <vector>

#include <libpq-fe.h>
#include <pqxx/pqxx>

#include "repos/deferred_begin_transaction.h"
#include "repos/owed_statements.h"
#include "repos/util/clock.h"
#include "repos/raw_connection.h"
#include "repos/trade_repository.h"
#include "tests/support/test_database.h"

namespace pm {
namespace {

constexpr std::int64_t T0 = 1'700'000'000'000;

// Counts the times a client waited for the server on one connection: each ReadyForQuery (a query
// or a COMMIT done) and each CopyInResponse (the server ready for COPY data) in libpq's trace.
class RoundTrips {
 public:
  explicit RoundTrips(pqxx::dbtransaction& tx) : conn_(raw_connection(tx)), file_(std::tmpfile()) {
    PQtrace(conn_, file_);
  }
  ~RoundTrips() {
    if (file_ != nullptr) std::fclose(file_);
  }
  int stop() {
    PQuntrace(conn_);
    std::rewind(file_);
    int waits = 0;
    char line[4096];
    while (std::fgets(line, sizeof line, file_) != nullptr) {
      const std::string l(line);
      if (l.find("\tB\t") == std::string::npos) continue;
      if (l.find("\tReadyForQuery") != std::string::npos || l.find("\tCopyInResponse") != std::string::npos) ++waits;
    }
    return waits;
  }

 private:
  pg_conn* conn_;
  std::FILE* file_;
};

class OwedStatementsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { tdb_ = new test::TestDatabase("owed"); }
  static void TearDownTestSuite() { delete tdb_; }
  void SetUp() override {
    tdb_->exec("DROP TABLE IF EXISTS t; CREATE TABLE t (v int PRIMARY KEY); DROP SEQUENCE IF EXISTS s; CREATE SEQUENCE s");
    tdb_->exec("TRUNCATE polymarket_trades, trade_watermarks");
  }
  static TradeRow row(const std::string& trade_id, std::int64_t ts, const std::string& cid) {
    PolymarketTrade t;
    t.condition_id = cid;
    t.trade_id = trade_id;
    t.token_id = "0xtoken";
    t.price = 0.5;
    t.size = 10;
    t.side = "BUY";
    t.timestamp = ts;
    trades_.push_back(t);  // the row views the model's strings
    return trade_row_of(trades_.back());
  }
  static test::TestDatabase* tdb_;
  static inline std::deque<PolymarketTrade> trades_;
};
test::TestDatabase* OwedStatementsTest::tdb_ = nullptr;

TEST_F(OwedStatementsTest, StatementsRunTogetherInOrderEachWithItsAffectedRows) {
  pqxx::connection c(tdb_->url());
  pqxx::work tx(c);
  OwedStatements owed;
  RoundTrips trips(tx);
  const auto affected = exec_together(tx, owed, {"INSERT INTO t VALUES (1), (2), (3)", "UPDATE t SET v = v * 10 WHERE v >= 2",
                                                 "DELETE FROM t WHERE v = 30"});
  EXPECT_EQ(trips.stop(), 1);
  EXPECT_EQ(affected, (std::vector<std::uint64_t>{3, 2, 1}));
  tx.commit();
  EXPECT_EQ(tdb_->count("SELECT count(*) FROM t WHERE v IN (1, 20)"), 2);
  EXPECT_EQ(tdb_->count("t"), 2);
}

TEST_F(OwedStatementsTest, OwedStatementsRunFirstAndTheirFollowUpOnlyOnceTheyHaveRun) {
  pqxx::connection c(tdb_->url());
  pqxx::work tx(c);
  OwedStatements owed;
  int followed_up = 0;
  owed.add("INSERT INTO t VALUES (5)", [&] { ++followed_up; });
  owed.add("INSERT INTO t VALUES (6)");
  EXPECT_EQ(owed.size(), 2u);
  EXPECT_EQ(followed_up, 0);
  RoundTrips trips(tx);
  // The UPDATE sees both owed rows: they ran before it, in the same query.
  EXPECT_EQ(exec_together(tx, owed, {"UPDATE t SET v = v + 100"}), (std::vector<std::uint64_t>{2}));
  EXPECT_EQ(trips.stop(), 1);
  EXPECT_EQ(followed_up, 1);
  EXPECT_TRUE(owed.empty());
  EXPECT_EQ(exec_together(tx, owed, {"UPDATE t SET v = v * 2"}), (std::vector<std::uint64_t>{2}));
  EXPECT_EQ(followed_up, 1);  // once
}

TEST_F(OwedStatementsTest, FlushSendsWhatIsOwedAloneInOneRoundTrip) {
  pqxx::connection c(tdb_->url());
  pqxx::work tx(c);
  OwedStatements owed;
  bool ran = false;
  owed.add("INSERT INTO t VALUES (1)");
  owed.add("INSERT INTO t VALUES (2)", [&] { ran = true; });
  RoundTrips trips(tx);
  owed.flush(tx);
  owed.flush(tx);  // nothing owed: nothing sent
  EXPECT_EQ(trips.stop(), 1);
  EXPECT_TRUE(ran);
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM t")[0].as<int>(), 2);
}

TEST_F(OwedStatementsTest, TheFirstFailureThrowsWithItsSqlstateAndNothingAfterItRuns) {
  tdb_->exec("INSERT INTO t VALUES (1)");
  pqxx::connection c(tdb_->url());
  pqxx::work tx(c);
  OwedStatements owed;
  bool followed_up = false;
  owed.add("SELECT nextval('s')", [&] { followed_up = true; });
  try {
    exec_together(tx, owed, {"SELECT nextval('s')", "INSERT INTO t VALUES (1)", "SELECT nextval('s')"});
    FAIL() << "the duplicate key was not reported";
  } catch (const pqxx::unique_violation& e) {
    EXPECT_EQ(std::string(e.sqlstate()), "23505");
    EXPECT_NE(std::string(e.what()).find("duplicate key"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(followed_up);  // the query failed: its owed statements' follow-ups do not run
  tx.abort();
  // Sequences ignore rollbacks: two nextval ran (the owed one and the first statement), not three.
  EXPECT_EQ(tdb_->count("SELECT last_value FROM s"), 2);
  EXPECT_EQ(tdb_->count("t"), 1);
}

// The writer's batch after its BEGIN: its lock (owed) with the savepoint and the COPY start, the
// COPY's data, the watermarks with the savepoint's release in one query, COMMIT: four waits, where
// one statement per round trip took seven (lock, SAVEPOINT, COPY, its data, RELEASE, watermarks,
// COMMIT).
TEST_F(OwedStatementsTest, ABatchOfTradesTakesFourRoundTripsAfterBeginAndStoresWhatItDidBefore) {
  std::vector<TradeRow> rows{row("a", T0 + 1, "c1"), row("b", T0 + 5, "c1"), row("c", T0 + 3, "c2")};
  const std::vector<std::int64_t> arrivals{T0 + 10, T0 + 20, T0 + 30};
  pqxx::connection c(tdb_->url());
  pqxx::work tx(c);
  RoundTrips trips(tx);
  OwedStatements owed;
  bool locked = false;
  owed.add("SELECT pg_advisory_xact_lock(7, 7)", [&] { locked = true; });
  const TradeRepository trades(tx, TimestampUnit::Milliseconds);
  const std::vector<std::size_t> inserted = trades.insert_rows(rows, DuplicateProbe::OnConflict, owed);
  EXPECT_TRUE(locked);
  EXPECT_EQ(owed.size(), 1u);  // the savepoint's RELEASE
  const auto affected = exec_together(tx, owed, {trades.watermark_statement(rows, inserted, arrivals)});
  tx.commit();
  EXPECT_EQ(trips.stop(), 4);
  EXPECT_EQ(inserted, (std::vector<std::size_t>{0, 1, 2}));
  EXPECT_EQ(affected, (std::vector<std::uint64_t>{2}));
  EXPECT_EQ(tdb_->count("polymarket_trades"), 3);
  EXPECT_EQ(tdb_->count("SELECT last_timestamp FROM trade_watermarks WHERE condition_id = 'c1'"), T0 + 5);
  EXPECT_EQ(tdb_->count("SELECT count(*) FROM trade_watermarks WHERE condition_id = 'c2' AND last_timestamp = " +
                        std::to_string(T0 + 3) + " AND updated_at = '" + format_iso_ms(T0 + 30) + "'"),
            1);
}

// A key another writer stored: the COPY is refused, the savepoint undoes it, the keys are looked
// up and the rest copied; the lock owed in front of the refused COPY is still held.
TEST_F(OwedStatementsTest, ARefusedCopyIsUndoneAndTheRestStoredWithTheOwedLockKept) {
  std::vector<TradeRow> rows{row("a", T0 + 1, "c1"), row("b", T0 + 2, "c1")};
  TradeRepository(tdb_->db()).insert_rows(std::vector<TradeRow>{rows[1]});
  pqxx::connection c(tdb_->url());
  pqxx::work tx(c);
  OwedStatements owed;
  owed.add("SELECT pg_advisory_xact_lock(7, 8)");
  const TradeRepository trades(tx, TimestampUnit::Milliseconds);
  EXPECT_EQ(trades.insert_rows(rows, DuplicateProbe::OnConflict, owed), (std::vector<std::size_t>{0}));
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 7 AND objid = 8 "
                     "AND pid = pg_backend_pid()")[0].as<int>(),
            1);
  owed.flush(tx);
  tx.commit();
  EXPECT_EQ(tdb_->count("polymarket_trades"), 2);
}

// The ingest writer's lanes: BEGIN owed too, so the whole transaction, COMMIT included, takes four
// round trips, and it is one transaction (nothing visible to another session before COMMIT).
TEST_F(OwedStatementsTest, ABatchInADeferredBeginTransactionTakesFourRoundTripsInAll) {
  std::vector<TradeRow> rows{row("a", T0 + 1, "c1"), row("b", T0 + 5, "c1")};
  pqxx::connection c(tdb_->url());
  DeferredBeginTransaction tx(c);
  RoundTrips trips(tx);
  OwedStatements owed;
  DeferredBeginTransaction::owe_begin(owed);
  owed.add("SELECT pg_advisory_xact_lock(7, 9)");
  const TradeRepository trades(tx, TimestampUnit::Milliseconds);
  const std::vector<std::size_t> inserted = trades.insert_rows(rows, DuplicateProbe::OnConflict, owed);
  const std::vector<std::int64_t> arrivals{T0 + 10, T0 + 20};
  exec_together(tx, owed, {trades.watermark_statement(rows, inserted, arrivals)});
  EXPECT_EQ(tdb_->count("polymarket_trades"), 0) << "the statements did not run inside one transaction";
  tx.commit();
  EXPECT_EQ(trips.stop(), 4);
  EXPECT_EQ(tdb_->count("polymarket_trades"), 2);
  EXPECT_EQ(tdb_->count("SELECT last_timestamp FROM trade_watermarks WHERE condition_id = 'c1'"), T0 + 5);
}

TEST_F(OwedStatementsTest, ADeferredBeginTransactionSendsNothingUntilItsFirstStatement) {
  pqxx::connection c(tdb_->url());
  {
    DeferredBeginTransaction tx(c);
    RoundTrips trips(tx);
    EXPECT_EQ(PQtransactionStatus(raw_connection(tx)), PQTRANS_IDLE);
    tx.abort();  // nothing began: no ROLLBACK either
    EXPECT_EQ(trips.stop(), 0);
  }
  DeferredBeginTransaction tx(c);
  OwedStatements owed;
  DeferredBeginTransaction::owe_begin(owed);
  exec_together(tx, owed, {"INSERT INTO t VALUES (1)"});
  EXPECT_EQ(PQtransactionStatus(raw_connection(tx)), PQTRANS_INTRANS);
  tx.abort();
  EXPECT_EQ(tdb_->count("t"), 0) << "the owed BEGIN's transaction was not rolled back";
}

// exec() before the owed BEGIN was sent still runs inside the transaction (its own BEGIN first).
TEST_F(OwedStatementsTest, ADeferredBeginTransactionBeginsBeforeAnExecThatCameFirst) {
  pqxx::connection c(tdb_->url());
  DeferredBeginTransaction tx(c);
  tx.exec("INSERT INTO t VALUES (1)");
  EXPECT_EQ(PQtransactionStatus(raw_connection(tx)), PQTRANS_INTRANS);
  EXPECT_EQ(tdb_->count("t"), 0);
  tx.abort();
  EXPECT_EQ(tdb_->count("t"), 0);
}

// exec_params bypasses that check: a statement with parameters sent before the owed BEGIN commits
// on its own, and the transaction then refuses to claim it by a COMMIT.
TEST_F(OwedStatementsTest, ADeferredBeginTransactionThatNeverBeganRefusesToCommit) {
  pqxx::connection c(tdb_->url());
  DeferredBeginTransaction tx(c);
  tx.exec_params("INSERT INTO t VALUES ($1)", 2);
  EXPECT_THROW(tx.commit(), std::logic_error);
  EXPECT_EQ(tdb_->count("t"), 1);
}

TEST_F(OwedStatementsTest, TheOwedRouteNeedsACallersTransaction) {
  OwedStatements owed;
  std::vector<TradeRow> rows{row("a", T0 + 1, "c1")};
  EXPECT_THROW(TradeRepository(tdb_->db()).insert_rows(rows, DuplicateProbe::First, owed), std::logic_error);
}

}  // namespace
}  // namespace pm
