// StreamWatchlistRepository, ResolutionRepository and TokenMetaRepository against a real
// PostgreSQL (storage-api.md 2.14; fixes for D8/D12, D20, D28).
#include <gtest/gtest.h>

#include <cmath>

#include "repos/market_repository.h"
#include "repos/pg_errors.h"
#include "tests/repos/legacy_times.h"
#include "tests/support/test_database.h"

namespace pm {
namespace {

class MarketRepositoryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { tdb_ = new test::TestDatabase("markets"); }
  static void TearDownTestSuite() { delete tdb_; }
  void SetUp() override { tdb_->exec("TRUNCATE stream_watchlist, polymarket_resolutions, polymarket_token_meta"); }

  static StreamWatchlist item(std::string market, std::optional<std::string> category = "politics",
                              std::optional<double> volume = 1000.0,
                              std::string generated_at = "2026-01-02T00:00:00Z") {
    StreamWatchlist w;
    w.market_id = std::move(market);
    w.question = "Will X happen?";
    w.slug = "will-x-happen";
    w.category = std::move(category);
    w.best_bid = 0.45;
    w.best_ask = 0.47;
    w.liquidity = 5000;
    w.volume = volume;
    w.end_date = "2026-12-31";
    w.generated_at = std::move(generated_at);
    w.condition_id = "0xabc";
    return w;
  }
  static std::vector<std::string> markets(const std::vector<StreamWatchlist>& rows) {
    std::vector<std::string> out;
    for (const auto& r : rows) out.push_back(r.market_id);
    return out;
  }
  static PolymarketResolution resolution(std::string cid, std::optional<std::string> resolved_at) {
    PolymarketResolution r;
    r.condition_id = std::move(cid);
    r.winning_outcome_index = 1;
    r.winning_outcome = "No";
    r.resolved_at = std::move(resolved_at);
    return r;
  }
  static PolymarketTokenMeta meta(std::string token, std::optional<std::int32_t> outcome_index,
                                  std::optional<std::string> cid = "0xabc") {
    PolymarketTokenMeta m;
    m.token_id = std::move(token);
    m.condition_id = std::move(cid);
    m.market_id = "m1";
    m.outcome_index = outcome_index;
    m.outcome = outcome_index == 0 ? "Yes" : "No";
    m.question = "Will X happen?";
    m.fetched_at = "2026-01-02T00:00:00Z";
    return m;
  }
  static test::TestDatabase* tdb_;
};
test::TestDatabase* MarketRepositoryTest::tdb_ = nullptr;

// ---- Stream watchlist ----

TEST_F(MarketRepositoryTest, WatchlistUpsertInsertsAndOverwritesEverything) {
  StreamWatchlistRepository repo(tdb_->db());
  auto row = repo.upsert(item("m1", "politics", 1000.0, "2026-01-02 00:00:00"));
  EXPECT_EQ(row.generated_at, "2026-01-02T00:00:00.000000Z");
  EXPECT_NEAR(*row.best_bid, 0.45, 1e-6);
  EXPECT_NEAR(*row.liquidity, 5000, 1e-3);
  EXPECT_EQ(row.end_date, "2026-12-31");  // free form, as given
  auto changed = item("m1", std::nullopt, std::nullopt, "2026-01-03T00:00:00Z");
  changed.question = "Changed?";
  changed.best_bid.reset();
  changed.end_date.reset();
  changed.condition_id.reset();
  auto over = repo.upsert(changed);
  EXPECT_EQ(over.question, "Changed?");
  EXPECT_FALSE(over.category);  // NULLs overwrite too
  EXPECT_FALSE(over.volume);
  EXPECT_FALSE(over.best_bid);
  EXPECT_FALSE(over.end_date);
  EXPECT_FALSE(over.condition_id);
  EXPECT_EQ(over.generated_at, "2026-01-03T00:00:00.000000Z");
  EXPECT_EQ(repo.count(), 1);
  EXPECT_THROW(repo.upsert(item("m2", "x", 1.0, "today")), std::invalid_argument);
  EXPECT_EQ(repo.upsert(item("m3", "x", 1.0, "")).generated_at.size(), 27u);
}

TEST_F(MarketRepositoryTest, WatchlistUpsertRefusesNonFiniteNumbers) {
  StreamWatchlistRepository repo(tdb_->db());
  auto w = item("m1");
  w.volume = std::nan("");
  EXPECT_THROW(repo.upsert(w), RefusedValueError);
  EXPECT_EQ(repo.count(), 0);
}

TEST_F(MarketRepositoryTest, WatchlistGetAllNewestFirstWithTieBreak) {
  StreamWatchlistRepository repo(tdb_->db());
  EXPECT_TRUE(repo.get_all().empty());
  repo.upsert(item("b", "x", 1.0, "2026-01-02T00:00:00Z"));
  repo.upsert(item("a", "x", 1.0, "2026-01-02T00:00:00Z"));
  repo.upsert(item("c", "x", 1.0, "2026-01-03T00:00:00Z"));
  EXPECT_EQ(markets(repo.get_all()), (std::vector<std::string>{"c", "a", "b"}));
}

// D8: rows of other writers hold other ISO-8601 shapes; get_all orders them by time.
TEST_F(MarketRepositoryTest, WatchlistGetAllOrdersOtherWritersTextTimesByTime) {
  int n = 0;
  test::insert_legacy_rows([&n](const std::string& at) {
    tdb_->exec("INSERT INTO stream_watchlist (market_id, question, slug, generated_at) VALUES ('legacy-" +
               std::to_string(++n) + "', 'q', 's', '" + at + "')");
  });
  const auto generated = [](const StreamWatchlist& w) { return w.generated_at; };
  EXPECT_EQ(test::texts_of(StreamWatchlistRepository(tdb_->db()).get_all(), generated), test::legacy_newest_first());
}

// D28: the original listed markets with an unknown volume first.
TEST_F(MarketRepositoryTest, WatchlistByCategoryPutsNullVolumesLast) {
  StreamWatchlistRepository repo(tdb_->db());
  repo.upsert(item("null_vol", "sports", std::nullopt));
  repo.upsert(item("small", "sports", 10.0));
  repo.upsert(item("big_b", "sports", 500.0));
  repo.upsert(item("big_a", "sports", 500.0));
  repo.upsert(item("other", "politics", 9999.0));
  repo.upsert(item("no_cat", std::nullopt, 9999.0));
  EXPECT_EQ(markets(repo.get_by_category("sports")),
            (std::vector<std::string>{"big_a", "big_b", "small", "null_vol"}));
  EXPECT_TRUE(repo.get_by_category("weather").empty());
}

TEST_F(MarketRepositoryTest, WatchlistClearCountsRows) {
  StreamWatchlistRepository repo(tdb_->db());
  EXPECT_EQ(repo.clear(), 0);
  repo.upsert(item("a"));
  repo.upsert(item("b"));
  EXPECT_EQ(repo.clear(), 2);
  EXPECT_EQ(repo.count(), 0);
}

TEST_F(MarketRepositoryTest, WatchlistBaseOperations) {
  StreamWatchlistRepository repo(tdb_->db());
  EXPECT_FALSE(repo.get_by_id("m1"));
  repo.upsert(item("m1"));
  EXPECT_EQ(repo.get_by_id("m1")->slug, "will-x-happen");
  EXPECT_TRUE(repo.exists("m1"));
  EXPECT_TRUE(repo.remove("m1"));
  EXPECT_FALSE(repo.remove("m1"));
}

// ---- Resolutions ----

TEST_F(MarketRepositoryTest, ResolutionUpsertAndLookup) {
  ResolutionRepository repo(tdb_->db());
  EXPECT_FALSE(repo.get_by_condition("c1"));
  EXPECT_FALSE(repo.is_resolved("c1"));
  auto row = repo.upsert(resolution("c1", "2026-01-02T10:00:00+00:00"));
  EXPECT_EQ(row.resolved_at, "2026-01-02T10:00:00.000000Z");
  EXPECT_EQ(row.winning_outcome_index, 1);
  EXPECT_EQ(row.winning_outcome, "No");
  PolymarketResolution cleared;
  cleared.condition_id = "c1";
  auto over = repo.upsert(cleared);  // overwrite with NULLs
  EXPECT_FALSE(over.winning_outcome_index);
  EXPECT_FALSE(over.winning_outcome);
  EXPECT_FALSE(over.resolved_at);
  EXPECT_TRUE(repo.is_resolved("c1"));  // a row exists, even with NULL outcome fields
  EXPECT_EQ(repo.count(), 1);
  EXPECT_THROW(repo.upsert(resolution("c2", "resolved")), std::invalid_argument);
  EXPECT_TRUE(repo.remove("c1"));
  EXPECT_FALSE(repo.is_resolved("c1"));
}

TEST_F(MarketRepositoryTest, ResolutionGetRecent) {
  ResolutionRepository repo(tdb_->db());
  repo.upsert(resolution("b", "2026-01-02T00:00:00Z"));
  repo.upsert(resolution("a", "2026-01-02T00:00:00Z"));
  repo.upsert(resolution("c", "2026-01-05T00:00:00Z"));
  repo.upsert(resolution("unresolved", std::nullopt));
  auto recent = repo.get_recent();
  ASSERT_EQ(recent.size(), 3u);
  EXPECT_EQ(recent[0].condition_id, "c");
  EXPECT_EQ(recent[1].condition_id, "a");
  EXPECT_EQ(recent[2].condition_id, "b");
  ASSERT_EQ(repo.get_recent(1).size(), 1u);
  EXPECT_EQ(repo.get_recent(1)[0].condition_id, "c");
  EXPECT_THROW(repo.get_recent(-1), std::invalid_argument);
}

TEST_F(MarketRepositoryTest, ResolutionGetRecentOrdersOtherWritersTextTimesByTime) {
  int n = 0;
  test::insert_legacy_rows([&n](const std::string& at) {
    tdb_->exec("INSERT INTO polymarket_resolutions (condition_id, resolved_at) VALUES ('legacy-" +
               std::to_string(++n) + "', '" + at + "')");
  });
  tdb_->exec("INSERT INTO polymarket_resolutions (condition_id, resolved_at) VALUES ('unresolved', NULL)");
  ResolutionRepository repo(tdb_->db());
  const auto resolved = [](const PolymarketResolution& r) { return r.resolved_at.value_or("NULL"); };
  EXPECT_EQ(test::texts_of(repo.get_recent(), resolved), test::legacy_newest_first());
  EXPECT_EQ(test::texts_of(repo.get_recent(1), resolved),
            std::vector<std::string>{test::kLegacyTimesOldestFirst.back()});
}

// ---- Token metadata ----

TEST_F(MarketRepositoryTest, TokenMetaUpsertAndLookup) {
  TokenMetaRepository repo(tdb_->db());
  EXPECT_FALSE(repo.get_by_token("t0"));
  auto row = repo.upsert(meta("t0", 0));
  EXPECT_EQ(row.fetched_at, "2026-01-02T00:00:00.000000Z");
  EXPECT_EQ(row.outcome, "Yes");
  auto changed = meta("t0", 1, "0xdef");
  changed.fetched_at.reset();
  changed.question.reset();
  auto over = repo.upsert(changed);
  EXPECT_EQ(over.condition_id, "0xdef");
  EXPECT_EQ(over.outcome_index, 1);
  EXPECT_FALSE(over.fetched_at);
  EXPECT_FALSE(over.question);
  EXPECT_EQ(repo.get_by_token("t0")->market_id, "m1");
  auto bad = meta("t1", 0);
  bad.fetched_at = "yesterday";
  EXPECT_THROW(repo.upsert(bad), std::invalid_argument);
  EXPECT_EQ(repo.count(), 1);
}

TEST_F(MarketRepositoryTest, TokenMetaByConditionOrdersOutcomeIndexNullsLast) {
  TokenMetaRepository repo(tdb_->db());
  repo.upsert(meta("t_null", std::nullopt));
  repo.upsert(meta("t1", 1));
  repo.upsert(meta("t0b", 0));
  repo.upsert(meta("t0a", 0));
  repo.upsert(meta("other", 0, "0xother"));
  auto rows = repo.get_by_condition("0xabc");
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].token_id, "t0a");
  EXPECT_EQ(rows[1].token_id, "t0b");
  EXPECT_EQ(rows[2].token_id, "t1");
  EXPECT_EQ(rows[3].token_id, "t_null");
  EXPECT_TRUE(repo.get_by_condition("0xnone").empty());
}

TEST_F(MarketRepositoryTest, TokenMetaConditionId) {
  TokenMetaRepository repo(tdb_->db());
  repo.upsert(meta("with", 0, "0xabc"));
  repo.upsert(meta("without", 0, std::nullopt));
  EXPECT_EQ(repo.get_condition_id("with"), "0xabc");
  EXPECT_FALSE(repo.get_condition_id("without"));  // NULL value
  EXPECT_FALSE(repo.get_condition_id("missing"));  // no row
  EXPECT_TRUE(repo.exists("without"));
  EXPECT_TRUE(repo.remove("without"));
  EXPECT_FALSE(repo.exists("without"));
}

}  // namespace
}  // namespace pm
