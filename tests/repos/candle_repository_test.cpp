// CandleRepository against a real PostgreSQL (storage-api.md 2.16; fixes for D10 and D31).
#include <chrono>
#include <cmath>
#include <stdexcept>

#include <gtest/gtest.h>

#include "repos/candle_repository.h"
#include "repos/pg_errors.h"
#include "repos/util/clock.h"
#include "tests/support/test_database.h"

namespace pm {
namespace {

// 2026-01-01T00:00:00Z
constexpr std::int64_t kDay0 = 1767225600;

std::string iso_at(std::int64_t epoch_s) { return format_iso(SystemTime(std::chrono::seconds(epoch_s))); }
std::string iso_ago(std::chrono::seconds age) { return format_iso(std::chrono::system_clock::now() - age); }

class CandleRepositoryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { tdb_ = new test::TestDatabase("candles"); }
  static void TearDownTestSuite() { delete tdb_; }
  void SetUp() override { tdb_->exec("TRUNCATE price_candles, polymarket_trades"); }

  static PriceCandle candle(std::string bucket_start, double open = 0.5, double high = 0.6, double low = 0.4,
                            double close = 0.55, double volume = 100, std::int32_t trades = 10,
                            std::string resolution = "5m", std::string token = "tok") {
    PriceCandle c;
    c.condition_id = "0xc";
    c.token_id = std::move(token);
    c.resolution = std::move(resolution);
    c.bucket_start = std::move(bucket_start);
    c.open_price = open;
    c.high_price = high;
    c.low_price = low;
    c.close_price = close;
    c.volume = volume;
    c.trade_count = trades;
    c.vwap = 0.52;
    return c;
  }
  // A trade at epoch second `at`, stored in `unit`.
  static void trade(const std::string& id, std::int64_t at, const std::string& price, const std::string& size,
                    TimestampUnit unit = TimestampUnit::Milliseconds, const std::string& token = "tok") {
    const std::int64_t ts = unit == TimestampUnit::Milliseconds ? at * 1000 : at;
    tdb_->exec("INSERT INTO polymarket_trades (condition_id, trade_id, token_id, price, size, \"timestamp\") "
               "VALUES ('0xc', '" + id + "', '" + token + "', " + price + ", " + size + ", " +
               std::to_string(ts) + ")");
  }
  // Trades of two 5m buckets from kDay0, a NULL price and a NULL size (skipped), another token.
  static void seed_trades(TimestampUnit unit) {
    trade("t1", kDay0 + 10, "0.50", "10", unit);
    trade("t2", kDay0 + 20, "0.70", "20", unit);
    trade("t3", kDay0 + 20, "0.40", "10", unit);  // same timestamp as t2: trade_id orders them
    trade("t4", kDay0 + 100, "0.60", "0", unit);
    trade("t5", kDay0 + 400, "0.30", "5", unit);  // second bucket
    trade("tn1", kDay0 + 30, "NULL", "5", unit);
    trade("tn2", kDay0 + 30, "0.99", "NULL", unit);
    trade("other", kDay0 + 30, "0.10", "5", unit, "other-token");
    trade("old", kDay0 - 10, "0.90", "5", unit);  // before since: not aggregated
  }
  static void expect_seeded_candles(const std::vector<PriceCandle>& candles) {
    ASSERT_EQ(candles.size(), 2u);
    const auto& late = candles[0];
    EXPECT_EQ(late.bucket_start, iso_at(kDay0 + 300));
    EXPECT_NEAR(late.open_price, 0.30, 1e-6);
    EXPECT_NEAR(late.close_price, 0.30, 1e-6);
    EXPECT_EQ(late.trade_count, 1);
    EXPECT_NEAR(late.volume, 1.5, 1e-5);
    const auto& first = candles[1];
    EXPECT_EQ(first.bucket_start, iso_at(kDay0));
    EXPECT_NEAR(first.open_price, 0.50, 1e-6);
    EXPECT_NEAR(first.close_price, 0.60, 1e-6);
    EXPECT_NEAR(first.high_price, 0.70, 1e-6);
    EXPECT_NEAR(first.low_price, 0.40, 1e-6);
    EXPECT_EQ(first.trade_count, 4);
    EXPECT_NEAR(first.volume, 5 + 14 + 4 + 0, 1e-4);
    ASSERT_TRUE(first.vwap);
    EXPECT_NEAR(*first.vwap, 23.0 / 40.0, 1e-5);
  }
  static test::TestDatabase* tdb_;
};
test::TestDatabase* CandleRepositoryTest::tdb_ = nullptr;

// A NaN price or volume made the bucket's high, volume and VWAP NaN for every later merge.
TEST_F(CandleRepositoryTest, ANonFinitePriceOrVolumeIsRefused) {
  CandleRepository repo(tdb_->db());
  EXPECT_THROW(repo.upsert(candle("2026-01-02T00:00:00Z", 0.5, std::nan(""))), RefusedValueError);
  EXPECT_THROW(repo.upsert(candle("2026-01-02T00:00:00Z", 0.5, 0.6, 0.4, 0.55, INFINITY)), RefusedValueError);
  PriceCandle c = candle("2026-01-02T00:00:00Z");
  c.vwap = std::nan("");
  EXPECT_THROW(repo.upsert(c), RefusedValueError);
  EXPECT_EQ(repo.count(), 0);
}

TEST_F(CandleRepositoryTest, IntervalsAndInvalidResolutions) {
  EXPECT_EQ(candle_interval_seconds("5m"), 300);
  EXPECT_EQ(candle_interval_seconds("1h"), 3600);
  EXPECT_EQ(candle_interval_seconds("1d"), 86400);
  EXPECT_THROW(candle_interval_seconds("15m"), std::invalid_argument);
  CandleRepository repo(tdb_->db());
  EXPECT_THROW(repo.upsert(candle(iso_at(kDay0), 0.5, 0.6, 0.4, 0.55, 1, 1, "1w")), std::invalid_argument);
  EXPECT_THROW(repo.aggregate_from_trades("0xc", "tok", "2h"), std::invalid_argument);
  EXPECT_THROW(repo.get_candles("0xc", "tok", "", iso_at(kDay0)), std::invalid_argument);
  EXPECT_THROW(repo.get_latest_candle("0xc", "tok", "1m"), std::invalid_argument);
  EXPECT_THROW(repo.upsert(candle("yesterday")), std::invalid_argument);
  EXPECT_EQ(tdb_->count("price_candles"), 0);
}

TEST_F(CandleRepositoryTest, UpsertInsertsAndMergesWithoutDoubleCounting) {
  CandleRepository repo(tdb_->db());
  auto stored = repo.upsert(candle("2026-01-01 00:05:00"));
  EXPECT_EQ(stored.bucket_start, "2026-01-01T00:05:00.000000Z");
  EXPECT_NEAR(stored.volume, 100, 1e-4);
  EXPECT_EQ(stored.trade_count, 10);
  // The same candle again: unchanged (the original added volume and trade_count).
  auto again = repo.upsert(candle("2026-01-01T00:05:00Z"));
  EXPECT_NEAR(again.volume, 100, 1e-4);
  EXPECT_EQ(again.trade_count, 10);
  EXPECT_EQ(tdb_->count("price_candles"), 1);
  // A later state of the bucket: high max, low min, close/volume/count/vwap replaced, open kept.
  auto next = candle("2026-01-01T00:05:00Z", 0.9, 0.58, 0.3, 0.35, 150, 14);
  next.vwap.reset();
  auto merged = repo.upsert(next);
  EXPECT_NEAR(merged.open_price, 0.5, 1e-6);
  EXPECT_NEAR(merged.high_price, 0.6, 1e-6);
  EXPECT_NEAR(merged.low_price, 0.3, 1e-6);
  EXPECT_NEAR(merged.close_price, 0.35, 1e-6);
  EXPECT_NEAR(merged.volume, 150, 1e-4);
  EXPECT_EQ(merged.trade_count, 14);
  EXPECT_FALSE(merged.vwap);
  // Another resolution or token of the same bucket is a different candle.
  repo.upsert(candle("2026-01-01T00:05:00Z", 0.5, 0.6, 0.4, 0.55, 1, 1, "1h"));
  repo.upsert(candle("2026-01-01T00:05:00Z", 0.5, 0.6, 0.4, 0.55, 1, 1, "5m", "tok2"));
  EXPECT_EQ(tdb_->count("price_candles"), 3);
}

TEST_F(CandleRepositoryTest, GetCandlesRangeNewestFirstAndLimit) {
  CandleRepository repo(tdb_->db());
  EXPECT_TRUE(repo.get_candles("0xc", "tok", "5m", iso_at(kDay0)).empty());
  for (int i = 0; i < 5; ++i) repo.upsert(candle(iso_at(kDay0 + 300 * i)));
  repo.upsert(candle(iso_at(kDay0 + 600), 0.5, 0.6, 0.4, 0.55, 1, 1, "1h"));
  repo.upsert(candle(iso_at(kDay0 + 600), 0.5, 0.6, 0.4, 0.55, 1, 1, "5m", "tok2"));
  auto all = repo.get_candles("0xc", "tok", "5m", iso_at(kDay0));
  ASSERT_EQ(all.size(), 5u);
  EXPECT_EQ(all.front().bucket_start, iso_at(kDay0 + 1200));
  EXPECT_EQ(all.back().bucket_start, iso_at(kDay0));
  auto range = repo.get_candles("0xc", "tok", "5m", iso_at(kDay0 + 300), iso_at(kDay0 + 900));
  ASSERT_EQ(range.size(), 3u);  // both ends inclusive
  EXPECT_EQ(range[0].bucket_start, iso_at(kDay0 + 900));
  EXPECT_EQ(range[2].bucket_start, iso_at(kDay0 + 300));
  auto limited = repo.get_candles("0xc", "tok", "5m", iso_at(kDay0), std::nullopt, 2);
  ASSERT_EQ(limited.size(), 2u);
  EXPECT_EQ(limited[1].bucket_start, iso_at(kDay0 + 900));
  // The default end is now: a future bucket is left out.
  repo.upsert(candle(iso_ago(std::chrono::seconds(-7200))));
  EXPECT_EQ(repo.get_candles("0xc", "tok", "5m", iso_at(kDay0)).size(), 5u);
  EXPECT_THROW(repo.get_candles("0xc", "tok", "5m", iso_at(kDay0), std::nullopt, -1), std::invalid_argument);
}

TEST_F(CandleRepositoryTest, LatestCandle) {
  CandleRepository repo(tdb_->db());
  EXPECT_FALSE(repo.get_latest_candle("0xc", "tok", "5m"));
  repo.upsert(candle(iso_at(kDay0 + 300)));
  repo.upsert(candle(iso_at(kDay0 + 900)));
  repo.upsert(candle(iso_at(kDay0 + 600)));
  repo.upsert(candle(iso_at(kDay0 + 3600), 0.5, 0.6, 0.4, 0.55, 1, 1, "1h"));
  auto latest = repo.get_latest_candle("0xc", "tok", "5m");
  ASSERT_TRUE(latest);
  EXPECT_EQ(latest->bucket_start, iso_at(kDay0 + 900));
  EXPECT_FALSE(repo.get_latest_candle("0xc", "tok", "1d"));
}

TEST_F(CandleRepositoryTest, AggregateFromMillisecondTrades) {
  seed_trades(TimestampUnit::Milliseconds);
  CandleRepository repo(tdb_->db());  // TestDatabase config: production unit, ms
  ASSERT_EQ(repo.unit(), TimestampUnit::Milliseconds);
  EXPECT_EQ(repo.aggregate_from_trades("0xc", "tok", "5m", iso_at(kDay0)), 2);
  expect_seeded_candles(repo.get_candles("0xc", "tok", "5m", iso_at(kDay0 - 86400), iso_at(kDay0 + 86400)));
  // Rebuilding again replaces rather than adds.
  EXPECT_EQ(repo.aggregate_from_trades("0xc", "tok", "5m", iso_at(kDay0)), 2);
  expect_seeded_candles(repo.get_candles("0xc", "tok", "5m", iso_at(kDay0 - 86400), iso_at(kDay0 + 86400)));
  // One hour and one day buckets hold all five trades.
  EXPECT_EQ(repo.aggregate_from_trades("0xc", "tok", "1h", iso_at(kDay0)), 1);
  auto hour = repo.get_latest_candle("0xc", "tok", "1h");
  ASSERT_TRUE(hour);
  EXPECT_EQ(hour->bucket_start, iso_at(kDay0));
  EXPECT_EQ(hour->trade_count, 5);
  EXPECT_NEAR(hour->close_price, 0.30, 1e-6);
  // No trades for a token: nothing inserted.
  EXPECT_EQ(repo.aggregate_from_trades("0xc", "missing", "5m", iso_at(kDay0)), 0);
}

// D6: volume and vwap were summed in float4. 1,000 trades of size 75.37 at 0.37 in one bucket:
// float4 addition gave volume 27886.754 and vwap 0.36999834; added in float8 and rounded to the
// REAL column once, volume is 27886.9 and vwap 0.37 (to float4 precision).
TEST_F(CandleRepositoryTest, AggregateSumsManyTradesWithoutFloat4Drift) {
  tdb_->exec("INSERT INTO polymarket_trades (condition_id, trade_id, token_id, price, size, \"timestamp\") "
             "SELECT '0xc', 'm' || i, 'tok', 0.37, 75.37, " + std::to_string(kDay0 * 1000) + " + i "
             "FROM generate_series(1, 1000) AS i");
  CandleRepository repo(tdb_->db());
  ASSERT_EQ(repo.aggregate_from_trades("0xc", "tok", "1h", iso_at(kDay0)), 1);
  const auto candle = repo.get_latest_candle("0xc", "tok", "1h");
  ASSERT_TRUE(candle);
  EXPECT_EQ(candle->trade_count, 1000);
  EXPECT_NEAR(candle->volume, 1000 * 75.37 * 0.37, 0.01);
  ASSERT_TRUE(candle->vwap);
  EXPECT_NEAR(*candle->vwap, 0.37, 1e-7);
}

TEST_F(CandleRepositoryTest, AggregateFromSecondTradesThroughConfigAndCallerTransaction) {
  seed_trades(TimestampUnit::Seconds);
  auto config = tdb_->config();
  config.trade_timestamp_unit = TimestampUnit::Seconds;
  Database seconds_db(config);
  CandleRepository repo(seconds_db);
  EXPECT_EQ(repo.aggregate_from_trades("0xc", "tok", "5m", iso_at(kDay0)), 2);
  expect_seeded_candles(repo.get_candles("0xc", "tok", "5m", iso_at(kDay0 - 86400), iso_at(kDay0 + 86400)));
  // Read as milliseconds, the same values fall in 1970 (the original's ms assumption): the
  // rebuild from kDay0 found no trade and removed the candles from kDay0 on. It refuses now,
  // saying the rows are seconds, and the candles stay.
  CandleRepository ms_repo(tdb_->db());
  try {
    ms_repo.aggregate_from_trades("0xc", "tok", "5m", iso_at(kDay0));
    ADD_FAILURE() << "a milliseconds rebuild read seconds rows";
  } catch (const TimestampUnitError& e) {
    EXPECT_NE(std::string(e.what()).find("holds epoch seconds (s)"), std::string::npos) << e.what();
  }
  EXPECT_EQ(tdb_->count("price_candles"), 2);
  tdb_->exec("DELETE FROM price_candles");
  tdb_->db().transaction([&](pqxx::work& tx) {
    CandleRepository in_tx(tx, TimestampUnit::Seconds);
    EXPECT_EQ(in_tx.aggregate_from_trades("0xc", "tok", "5m", iso_at(kDay0)), 2);
    expect_seeded_candles(in_tx.get_candles("0xc", "tok", "5m", iso_at(kDay0 - 86400), iso_at(kDay0 + 86400)));
  });
  EXPECT_EQ(tdb_->count("price_candles"), 2);
}

TEST_F(CandleRepositoryTest, AggregateRoundsSinceDownToItsBucketAndKeepsOlderCandles) {
  seed_trades(TimestampUnit::Milliseconds);
  CandleRepository repo(tdb_->db());
  repo.upsert(candle(iso_at(kDay0 - 300), 0.9, 0.9, 0.9, 0.9, 42, 1));  // before the rebuilt range
  repo.upsert(candle(iso_at(kDay0 + 600), 0.9, 0.9, 0.9, 0.9, 42, 1));  // in range, no trades now
  // since inside the first bucket: that bucket is rebuilt whole, from all four of its trades.
  EXPECT_EQ(repo.aggregate_from_trades("0xc", "tok", "5m", iso_at(kDay0 + 150)), 2);
  auto candles = repo.get_candles("0xc", "tok", "5m", iso_at(kDay0 - 86400), iso_at(kDay0 + 86400));
  ASSERT_EQ(candles.size(), 3u);
  EXPECT_EQ(candles[2].bucket_start, iso_at(kDay0 - 300));
  EXPECT_NEAR(candles[2].volume, 42, 1e-4);
  std::vector<PriceCandle> rebuilt(candles.begin(), candles.begin() + 2);
  expect_seeded_candles(rebuilt);
}

TEST_F(CandleRepositoryTest, AggregateIsOneTransactionAFailureKeepsTheOldCandles) {
  CandleRepository repo(tdb_->db());
  repo.upsert(candle(iso_at(kDay0), 0.9, 0.9, 0.9, 0.9, 42, 1));
  // size * price overflows float4: the INSERT fails after the DELETE has run.
  trade("huge", kDay0 + 5, "3e38", "10");
  EXPECT_ANY_THROW(repo.aggregate_from_trades("0xc", "tok", "5m", iso_at(kDay0)));
  auto kept = repo.get_latest_candle("0xc", "tok", "5m");
  ASSERT_TRUE(kept);
  EXPECT_NEAR(kept->volume, 42, 1e-4);
}

TEST_F(CandleRepositoryTest, AggregateDefaultSinceIsTheLastDay) {
  const std::int64_t now_s = now_epoch_s();
  trade("recent", now_s - 3600, "0.5", "2");
  trade("stale", now_s - 3 * 86400, "0.5", "2");
  CandleRepository repo(tdb_->db());
  repo.upsert(candle(iso_at(now_s - 3 * 86400 - (now_s - 3 * 86400) % 300)));  // outside the default window
  EXPECT_EQ(repo.aggregate_from_trades("0xc", "tok", "5m"), 1);
  EXPECT_EQ(tdb_->count("price_candles"), 2);
}

TEST_F(CandleRepositoryTest, AggregateAllResolutions) {
  seed_trades(TimestampUnit::Milliseconds);
  CandleRepository repo(tdb_->db());
  auto counts = repo.aggregate_all_resolutions("0xc", "tok", iso_at(kDay0));
  ASSERT_EQ(counts.size(), 3u);
  EXPECT_EQ(counts["5m"], 2);
  EXPECT_EQ(counts["1h"], 1);
  EXPECT_EQ(counts["1d"], 1);
  EXPECT_EQ(tdb_->count("price_candles"), 4);
}

TEST_F(CandleRepositoryTest, CleanupKeepsRecentAndDailyCandles) {
  CandleRepository repo(tdb_->db());
  using std::chrono::hours;
  repo.upsert(candle(iso_ago(hours(24 * 8)), 0.5, 0.6, 0.4, 0.55, 1, 1, "5m"));   // deleted
  repo.upsert(candle(iso_ago(hours(24 * 6)), 0.5, 0.6, 0.4, 0.55, 1, 1, "5m"));   // kept
  repo.upsert(candle(iso_ago(hours(24 * 91)), 0.5, 0.6, 0.4, 0.55, 1, 1, "1h"));  // deleted
  repo.upsert(candle(iso_ago(hours(24 * 89)), 0.5, 0.6, 0.4, 0.55, 1, 1, "1h"));  // kept
  repo.upsert(candle(iso_ago(hours(24 * 400)), 0.5, 0.6, 0.4, 0.55, 1, 1, "1d"));  // kept
  EXPECT_EQ(repo.cleanup_old_candles(), 2);
  EXPECT_EQ(tdb_->count("price_candles"), 3);
  EXPECT_EQ(repo.cleanup_old_candles(), 0);
}

TEST_F(CandleRepositoryTest, SessionTimeZoneDoesNotShiftBuckets) {
  seed_trades(TimestampUnit::Milliseconds);
  tdb_->db().transaction([&](pqxx::work& tx) {
    tx.exec("SET LOCAL TimeZone = 'America/New_York'");
    CandleRepository repo(tx, TimestampUnit::Milliseconds);
    EXPECT_EQ(repo.aggregate_from_trades("0xc", "tok", "5m", "2025-12-31T19:00:00-05:00"), 2);  // = kDay0
    expect_seeded_candles(repo.get_candles("0xc", "tok", "5m", iso_at(kDay0 - 86400), iso_at(kDay0 + 86400)));
    EXPECT_EQ(repo.aggregate_from_trades("0xc", "tok", "1d", iso_at(kDay0)), 1);
    EXPECT_EQ(repo.get_latest_candle("0xc", "tok", "1d")->bucket_start, iso_at(kDay0));
  });
}

}  // namespace
}  // namespace pm
