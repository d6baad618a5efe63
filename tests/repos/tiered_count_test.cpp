// count() on the tiered-data repositories (storage-api.md 2.0: the original's BaseRepository gave
// every repository a count; issue 16). Real PostgreSQL.
#include <gtest/gtest.h>

#include "repos/candle_repository.h"
#include "repos/market_universe_repository.h"
#include "repos/orderbook_repository.h"
#include "tests/support/test_database.h"

namespace pm {
namespace {

class TieredCountTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { tdb_ = new test::TestDatabase("tiered_count"); }
  static void TearDownTestSuite() { delete tdb_; }
  void SetUp() override { tdb_->exec("TRUNCATE price_candles, orderbook_snapshots, market_universe"); }
  static test::TestDatabase* tdb_;
};
test::TestDatabase* TieredCountTest::tdb_ = nullptr;

TEST_F(TieredCountTest, CandlesAreCountedPerStoredKey) {
  CandleRepository repo(tdb_->db());
  EXPECT_EQ(repo.count(), 0);
  PriceCandle c;
  c.condition_id = "cid";
  c.token_id = "tok";
  c.resolution = "1h";
  c.bucket_start = "2026-01-01T00:00:00Z";
  c.open_price = c.high_price = c.low_price = c.close_price = 0.5;
  repo.upsert(c);
  repo.upsert(c);  // the same key: merged, not a second row
  c.bucket_start = "2026-01-01T01:00:00Z";
  repo.upsert(c);
  EXPECT_EQ(repo.count(), 2);
}

TEST_F(TieredCountTest, OrderbookSnapshotsAreCounted) {
  OrderbookRepository repo(tdb_->db());
  EXPECT_EQ(repo.count(), 0);
  OrderbookSnapshot s;
  s.condition_id = "cid";
  s.token_id = "tok";
  s.snapshot_at = "2026-01-01T00:00:00Z";
  EXPECT_TRUE(repo.save(s));
  EXPECT_FALSE(repo.save(s));
  s.snapshot_at = "2026-01-01T00:01:00Z";
  EXPECT_TRUE(repo.save(s));
  EXPECT_EQ(repo.count(), 2);
}

TEST_F(TieredCountTest, MarketsAreCountedResolvedIncluded) {
  MarketUniverseRepository repo(tdb_->db());
  EXPECT_EQ(repo.count(), 0);
  MarketUniverse m;
  m.condition_id = "a";
  m.question = "q";
  repo.upsert(m);
  m.condition_id = "b";
  m.is_resolved = true;
  repo.upsert(m);
  EXPECT_EQ(repo.count(), 2);
}

}  // namespace
}  // namespace pm
