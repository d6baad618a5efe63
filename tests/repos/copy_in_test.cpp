// CopyIn (repos/copy_in.h) against a real PostgreSQL: a COPY abandoned before complete(), as when
// an exception leaves TradeRepository's autocommit route between two blocks, stores none of the
// rows already sent, and the transaction stays usable.
#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include <stdexcept>

#include "repos/copy_in.h"
#include "tests/support/test_database.h"

namespace pm {
namespace {

class CopyInTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { tdb_ = new test::TestDatabase("copy_in"); }
  static void TearDownTestSuite() { delete tdb_; }
  void SetUp() override { tdb_->exec("TRUNCATE polymarket_trades"); }

  // Two blocks of rows of condition `cid` into polymarket_trades (condition_id, trade_id), then
  // complete() or, with `abandon`, an exception before it.
  static void copy_two_blocks(pqxx::transaction_base& tx, const std::string& cid, bool abandon) {
    CopyIn copy(tx, "polymarket_trades", {"condition_id", "trade_id"});
    copy.write_rows(cid + "\t1\n" + cid + "\t2");
    copy.write_rows(cid + "\t3");
    if (abandon) throw std::runtime_error("failed between blocks");
    copy.complete();
  }
  static test::TestDatabase* tdb_;
};
test::TestDatabase* CopyInTest::tdb_ = nullptr;

// libpqxx 6.4's tablewriter ends a COPY successfully when destroyed: in autocommit the two blocks
// sent were committed.
TEST_F(CopyInTest, AnAbandonedCopyInAutocommitStoresNothing) {
  pqxx::connection c(tdb_->url());
  pqxx::nontransaction tx(c);
  EXPECT_THROW(copy_two_blocks(tx, "abandoned", true), std::runtime_error);
  EXPECT_EQ(tdb_->count("polymarket_trades"), 0);
  // The same transaction carries on: no error was left pending in it, and a COPY completes.
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM polymarket_trades")[0].as<int>(), 0);
  copy_two_blocks(tx, "completed", false);
  EXPECT_EQ(tdb_->count("SELECT count(*) FROM polymarket_trades WHERE condition_id = 'completed'"), 3);
}

// In a transaction, the abandoned COPY fails as a statement: the transaction is aborted and
// nothing of it is stored.
TEST_F(CopyInTest, AnAbandonedCopyInATransactionAbortsIt) {
  tdb_->exec("INSERT INTO polymarket_trades (condition_id, trade_id) VALUES ('before', '0')");
  pqxx::connection c(tdb_->url());
  {
    pqxx::work tx(c);
    tx.exec("INSERT INTO polymarket_trades (condition_id, trade_id) VALUES ('in_tx', '0')");
    EXPECT_THROW(copy_two_blocks(tx, "abandoned", true), std::runtime_error);
    try {
      tx.exec("SELECT 1");
      FAIL() << "the transaction went on after an abandoned COPY";
    } catch (const pqxx::sql_error& e) {
      EXPECT_EQ(e.sqlstate(), "25P02") << e.what();  // in_failed_sql_transaction
    }
  }
  EXPECT_EQ(tdb_->count("polymarket_trades"), 1);  // only the row from before
  pqxx::nontransaction after(c);                   // the connection is usable again
  EXPECT_EQ(after.exec1("SELECT count(*) FROM polymarket_trades")[0].as<int>(), 1);
}

}  // namespace
}  // namespace pm
