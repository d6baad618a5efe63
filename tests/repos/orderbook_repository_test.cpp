// OrderbookRepository against a real PostgreSQL (storage-api.md 2.16).
#include <chrono>
#include <stdexcept>

#include <gtest/gtest.h>

#include "repos/util/clock.h"
#include "repos/orderbook_repository.h"
#include "tests/support/test_database.h"

namespace pm {
namespace {

std::string iso_ago(std::chrono::seconds age) { return format_iso(std::chrono::system_clock::now() - age); }

class OrderbookRepositoryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { tdb_ = new test::TestDatabase("orderbooks"); }
  static void TearDownTestSuite() { delete tdb_; }
  void SetUp() override { tdb_->exec("TRUNCATE orderbook_snapshots"); }

  static OrderbookSnapshot snapshot(std::string at, std::string token = "tok") {
    OrderbookSnapshot s;
    s.condition_id = "0xc";
    s.token_id = std::move(token);
    s.snapshot_at = std::move(at);
    s.best_bid = 0.45;
    s.best_ask = 0.47;
    s.spread = 0.02;
    s.mid_price = 0.46;
    s.bids = R"([{"price":0.45,"size":100},{"price":0.44,"size":50}])";
    s.asks = R"([{"price":0.47,"size":80}])";
    s.bid_depth_5pct = 150;
    s.ask_depth_5pct = 80;
    return s;
  }
  static test::TestDatabase* tdb_;
};
test::TestDatabase* OrderbookRepositoryTest::tdb_ = nullptr;

TEST_F(OrderbookRepositoryTest, SaveRoundTripsAndDuplicatesAreLeftAlone) {
  OrderbookRepository repo(tdb_->db());
  EXPECT_FALSE(repo.get_latest("0xc", "tok"));
  EXPECT_TRUE(repo.save(snapshot("2026-01-01 10:00:00")));
  auto stored = repo.get_latest("0xc", "tok");
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->snapshot_at, "2026-01-01T10:00:00.000000Z");
  EXPECT_NEAR(*stored->best_bid, 0.45, 1e-6);
  EXPECT_NEAR(*stored->mid_price, 0.46, 1e-6);
  EXPECT_NEAR(*stored->bid_depth_5pct, 150, 1e-4);
  ASSERT_TRUE(stored->bids);
  EXPECT_EQ(*stored->bids, R"([{"size": 100, "price": 0.45}, {"size": 50, "price": 0.44}])");
  EXPECT_EQ(*stored->asks, R"([{"size": 80, "price": 0.47}])");
  // Same key: DO NOTHING, the first snapshot stays.
  auto changed = snapshot("2026-01-01T10:00:00Z");
  changed.best_bid = 0.1;
  EXPECT_FALSE(repo.save(changed));
  EXPECT_NEAR(*repo.get_latest("0xc", "tok")->best_bid, 0.45, 1e-6);
  EXPECT_EQ(tdb_->count("orderbook_snapshots"), 1);
}

TEST_F(OrderbookRepositoryTest, EmptyListsAndNullsAreStoredAsNull) {
  OrderbookRepository repo(tdb_->db());
  auto s = snapshot("2026-01-01T10:00:00Z");
  s.bids = "[ ]";
  s.asks.reset();
  s.best_bid.reset();
  s.spread.reset();
  s.ask_depth_5pct.reset();
  ASSERT_TRUE(repo.save(s));
  EXPECT_EQ(tdb_->count("SELECT count(*) FROM orderbook_snapshots WHERE bids IS NULL AND asks IS NULL"), 1);
  auto stored = repo.get_latest("0xc", "tok");
  ASSERT_TRUE(stored);
  EXPECT_FALSE(stored->bids);
  EXPECT_FALSE(stored->asks);
  EXPECT_FALSE(stored->best_bid);
  EXPECT_FALSE(stored->spread);
  EXPECT_FALSE(stored->ask_depth_5pct);
  EXPECT_TRUE(stored->best_ask);
}

TEST_F(OrderbookRepositoryTest, InvalidJsonOrTimeStoresNothing) {
  OrderbookRepository repo(tdb_->db());
  auto bad = snapshot("2026-01-01T10:00:00Z");
  bad.bids = "[{price: 0.4}";
  EXPECT_ANY_THROW(repo.save(bad));
  EXPECT_THROW(repo.save(snapshot("not a time")), std::invalid_argument);
  EXPECT_EQ(tdb_->count("orderbook_snapshots"), 0);
}

TEST_F(OrderbookRepositoryTest, LatestIsPerTokenAndNewest) {
  OrderbookRepository repo(tdb_->db());
  repo.save(snapshot("2026-01-01T10:00:00Z"));
  repo.save(snapshot("2026-01-01T12:00:00Z"));
  repo.save(snapshot("2026-01-01T11:00:00Z"));
  repo.save(snapshot("2026-01-01T13:00:00Z", "other"));
  EXPECT_EQ(repo.get_latest("0xc", "tok")->snapshot_at, "2026-01-01T12:00:00.000000Z");
  EXPECT_EQ(repo.get_latest("0xc", "other")->snapshot_at, "2026-01-01T13:00:00.000000Z");
  EXPECT_FALSE(repo.get_latest("0xd", "tok"));
}

TEST_F(OrderbookRepositoryTest, HistoryWindowNewestFirst) {
  OrderbookRepository repo(tdb_->db());
  using std::chrono::hours;
  using std::chrono::minutes;
  EXPECT_TRUE(repo.get_history("0xc", "tok").empty());
  repo.save(snapshot(iso_ago(hours(30))));
  repo.save(snapshot(iso_ago(hours(5))));
  repo.save(snapshot(iso_ago(minutes(10))));
  repo.save(snapshot(iso_ago(hours(2))));
  repo.save(snapshot(iso_ago(minutes(5)), "other"));
  auto day = repo.get_history("0xc", "tok");
  ASSERT_EQ(day.size(), 3u);
  EXPECT_GT(day[0].snapshot_at, day[1].snapshot_at);
  EXPECT_GT(day[1].snapshot_at, day[2].snapshot_at);
  EXPECT_EQ(repo.get_history("0xc", "tok", 3).size(), 2u);
  EXPECT_EQ(repo.get_history("0xc", "tok", 48).size(), 4u);
  EXPECT_THROW(repo.get_history("0xc", "tok", -1), std::invalid_argument);
}

TEST_F(OrderbookRepositoryTest, CleanupDeletesOlderThanSevenDays) {
  OrderbookRepository repo(tdb_->db());
  using std::chrono::hours;
  repo.save(snapshot(iso_ago(hours(24 * 8))));
  repo.save(snapshot(iso_ago(hours(24 * 8)), "other"));
  repo.save(snapshot(iso_ago(hours(24 * 6))));
  EXPECT_EQ(repo.cleanup_old_snapshots(), 2);
  EXPECT_EQ(tdb_->count("orderbook_snapshots"), 1);
  EXPECT_EQ(repo.cleanup_old_snapshots(), 0);
}

TEST_F(OrderbookRepositoryTest, CallerTransactionRollsBack) {
  try {
    tdb_->db().transaction([&](pqxx::work& tx) {
      OrderbookRepository repo(tx);
      EXPECT_TRUE(repo.save(snapshot("2026-01-01T10:00:00Z")));
      EXPECT_TRUE(repo.get_latest("0xc", "tok"));
      throw std::runtime_error("abort");
    });
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(tdb_->count("orderbook_snapshots"), 0);
}

}  // namespace
}  // namespace pm
