// MarketUniverseRepository against a real PostgreSQL (storage-api.md 2.16; fix for D31).
#include <chrono>
#include <cmath>
#include <stdexcept>

#include <gtest/gtest.h>

#include "repos/util/clock.h"
#include "repos/market_universe_repository.h"
#include "repos/pg_errors.h"
#include "tests/support/test_database.h"

namespace pm {
namespace {

using std::chrono::hours;
using std::chrono::minutes;

std::string iso_ago(std::chrono::seconds age) { return format_iso(std::chrono::system_clock::now() - age); }
std::string iso_in(std::chrono::seconds ahead) { return format_iso(std::chrono::system_clock::now() + ahead); }

std::vector<std::string> cids(const std::vector<MarketUniverse>& rows) {
  std::vector<std::string> out;
  for (const auto& r : rows) out.push_back(r.condition_id);
  return out;
}

class MarketUniverseRepositoryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { tdb_ = new test::TestDatabase("universe"); }
  static void TearDownTestSuite() { delete tdb_; }
  void SetUp() override { tdb_->exec("TRUNCATE market_universe, price_snapshots, strategy_tier_requests"); }

  static MarketUniverse market(std::string cid, double score = 0, double volume = 1000,
                               std::optional<double> price = 0.5) {
    MarketUniverse m;
    m.condition_id = std::move(cid);
    m.market_id = "m-" + m.condition_id;
    m.question = "Will " + m.condition_id + " happen?";
    m.description = "desc";
    m.category = "politics";
    m.end_date = iso_in(hours(24 * 10));
    m.created_at = iso_ago(hours(24 * 5));
    m.outcomes = {{"tok-yes", "Yes", 0}, {"tok-no", "No", 1}};
    m.price = price;
    m.best_bid = 0.49;
    m.best_ask = 0.51;
    m.spread = 0.02;
    m.volume_24h = volume;
    m.volume_total = volume * 10;
    m.liquidity = 500;
    m.trade_count_24h = 7;
    m.interestingness_score = score;
    return m;
  }
  static StrategyTierRequest request(std::string strategy, std::string cid, int tier, std::string expires_at,
                                     std::string requested_at = "") {
    StrategyTierRequest r;
    r.strategy_name = std::move(strategy);
    r.condition_id = std::move(cid);
    r.requested_tier = tier;
    r.reason = "because";
    r.requested_at = std::move(requested_at);
    r.expires_at = std::move(expires_at);
    return r;
  }
  static test::TestDatabase* tdb_;
};
test::TestDatabase* MarketUniverseRepositoryTest::tdb_ = nullptr;

TEST_F(MarketUniverseRepositoryTest, UpsertInsertsAndRoundTrips) {
  MarketUniverseRepository repo(tdb_->db());
  EXPECT_FALSE(repo.get_by_condition_id("0xa"));
  auto m = market("0xa", 33);
  m.tier = 2;
  m.pinned_tier = 3;
  m.end_date = "2027-01-01 12:00:00";
  auto stored = repo.upsert(m);
  EXPECT_EQ(stored.condition_id, "0xa");
  EXPECT_EQ(stored.market_id, "m-0xa");
  EXPECT_EQ(stored.end_date, "2027-01-01T12:00:00.000000Z");
  ASSERT_EQ(stored.outcomes.size(), 2u);
  EXPECT_EQ(stored.outcomes[0], (OutcomeToken{"tok-yes", "Yes", 0}));
  EXPECT_EQ(stored.outcomes[1], (OutcomeToken{"tok-no", "No", 1}));
  EXPECT_TRUE(stored.is_binary());
  EXPECT_NEAR(*stored.price, 0.5, 1e-6);
  EXPECT_NEAR(stored.volume_total, 10000, 1e-2);
  EXPECT_EQ(stored.trade_count_24h, 7);
  EXPECT_NEAR(stored.interestingness_score, 33, 1e-5);
  EXPECT_EQ(stored.tier, 2);
  EXPECT_EQ(stored.pinned_tier, 3);
  EXPECT_FALSE(stored.is_resolved);
  ASSERT_TRUE(stored.snapshot_at);
  ASSERT_TRUE(stored.created_in_db_at);
  // Server times are UTC: within a minute of the client's UTC clock.
  EXPECT_GT(*stored.snapshot_at, iso_ago(minutes(1)));
  EXPECT_LT(*stored.snapshot_at, iso_in(minutes(1)));
  EXPECT_GT(*stored.created_in_db_at, iso_ago(minutes(1)));
  EXPECT_FALSE(stored.tier_changed_at);
  auto read = repo.get_by_condition_id("0xa");
  ASSERT_TRUE(read);
  EXPECT_EQ(read->outcomes, stored.outcomes);
  EXPECT_EQ(read->question, stored.question);
  // Outcome names with quotes, backslashes and commas survive.
  auto odd = market("0xodd");
  odd.outcomes = {{"t\"1", "Yes, \\really\"", 3}};
  odd.outcome_count = 1;
  auto odd_stored = repo.upsert(odd);
  ASSERT_EQ(odd_stored.outcomes.size(), 1u);
  EXPECT_EQ(odd_stored.outcomes[0], (OutcomeToken{"t\"1", "Yes, \\really\"", 3}));
  EXPECT_FALSE(odd_stored.is_binary());
  // No outcomes and NULLs.
  auto bare = market("0xbare", 0, 0, std::nullopt);
  bare.outcomes.clear();
  bare.market_id.reset();
  bare.end_date.reset();
  bare.created_at.reset();
  auto bare_stored = repo.upsert(bare);
  EXPECT_TRUE(bare_stored.outcomes.empty());
  EXPECT_FALSE(bare_stored.price);
  EXPECT_FALSE(bare_stored.market_id);
  EXPECT_FALSE(bare_stored.end_date);
  EXPECT_THROW(repo.upsert([] {
                 auto b = market("0xbad");
                 b.end_date = "soon";
                 return b;
               }()),
               std::invalid_argument);
  EXPECT_FALSE(repo.get_by_condition_id("0xbad"));
}

TEST_F(MarketUniverseRepositoryTest, UpsertMergeRules) {
  MarketUniverseRepository repo(tdb_->db());
  auto first = market("0xa", 40);
  first.tier = 2;
  first.created_at = "2025-06-01T00:00:00Z";
  repo.upsert(first);
  ASSERT_TRUE(repo.promote("0xa", 3));
  ASSERT_TRUE(repo.set_pinned_tier("0xa", 3));
  const auto before = *repo.get_by_condition_id("0xa");

  MarketUniverse next = market("0xa", 99, 5, std::nullopt);
  next.market_id.reset();           // metadata: COALESCE keeps the old one
  next.description.reset();
  next.category = "sports";         // ... and takes a new one
  next.end_date.reset();
  next.created_at = "2026-01-01T00:00:00Z";  // a stored created_at is kept
  next.outcomes.clear();            // empty list keeps the old outcomes
  next.best_bid.reset();            // prices are overwritten, NULLs included
  next.tier = 1;                    // not updated
  next.pinned_tier.reset();         // not updated
  next.is_resolved = true;
  next.resolution_outcome = "Yes";
  next.winning_outcome_index = 0;
  next.resolved_at = "2026-02-01T00:00:00Z";
  auto merged = repo.upsert(next);
  EXPECT_EQ(merged.market_id, "m-0xa");
  EXPECT_EQ(merged.description, "desc");
  EXPECT_EQ(merged.category, "sports");
  EXPECT_EQ(merged.end_date, before.end_date);
  EXPECT_EQ(merged.created_at, "2025-06-01T00:00:00.000000Z");
  EXPECT_EQ(merged.outcomes.size(), 2u);
  EXPECT_FALSE(merged.price);
  EXPECT_FALSE(merged.best_bid);
  EXPECT_NEAR(merged.volume_24h, 5, 1e-6);
  EXPECT_NEAR(merged.interestingness_score, 40, 1e-5);  // never changed by an upsert
  EXPECT_EQ(merged.tier, 3);
  EXPECT_EQ(merged.pinned_tier, 3);
  EXPECT_EQ(merged.tier_changed_at, before.tier_changed_at);
  EXPECT_EQ(merged.created_in_db_at, before.created_in_db_at);
  EXPECT_TRUE(merged.is_resolved);
  EXPECT_EQ(merged.resolution_outcome, "Yes");
  EXPECT_GE(*merged.snapshot_at, *before.snapshot_at);

  // is_resolved is sticky and the resolution columns keep their values when the new ones are NULL.
  auto again = market("0xa", 0);
  again.outcomes = {{"tok-a", "A", 0}, {"tok-b", "B", 1}, {"tok-c", "C", 2}};
  again.outcome_count = 3;
  auto sticky = repo.upsert(again);
  EXPECT_TRUE(sticky.is_resolved);
  EXPECT_EQ(sticky.resolution_outcome, "Yes");
  EXPECT_EQ(sticky.winning_outcome_index, 0);
  EXPECT_EQ(sticky.resolved_at, "2026-02-01T00:00:00.000000Z");
  ASSERT_EQ(sticky.outcomes.size(), 3u);  // a non-empty list replaces
  EXPECT_EQ(sticky.outcomes[2].outcome, "C");
  EXPECT_EQ(sticky.outcome_count, 3);
  EXPECT_EQ(tdb_->count("market_universe"), 1);
}

TEST_F(MarketUniverseRepositoryTest, UpsertBatchIsAtomicAndCountsInsertsAndUpdates) {
  MarketUniverseRepository repo(tdb_->db());
  EXPECT_EQ(repo.upsert_batch({}).inserted, 0u);
  repo.upsert(market("0xa"));
  auto result = repo.upsert_batch({market("0xa"), market("0xb"), market("0xc"), market("0xb")});
  EXPECT_EQ(result.inserted, 2u);
  EXPECT_EQ(result.updated, 2u);
  EXPECT_EQ(tdb_->count("market_universe"), 3);
  // A failing row (float4 overflow in the server) rolls the whole batch back.
  auto overflow = market("0xe");
  overflow.volume_24h = 1e39;
  auto changed = market("0xa", 0, 777);
  EXPECT_ANY_THROW(repo.upsert_batch({market("0xd"), changed, overflow}));
  EXPECT_FALSE(repo.get_by_condition_id("0xd"));
  EXPECT_NEAR(repo.get_by_condition_id("0xa")->volume_24h, 1000, 1e-3);
  // A row refused in the client part way through also leaves nothing behind.
  auto bad_time = market("0xf");
  bad_time.resolved_at = "later";
  EXPECT_THROW(repo.upsert_batch({market("0xd"), bad_time}), std::invalid_argument);
  EXPECT_EQ(tdb_->count("market_universe"), 3);
}

TEST_F(MarketUniverseRepositoryTest, QueryFilters) {
  MarketUniverseRepository repo(tdb_->db());
  auto a = market("0xa", 90, 5000, 0.20);
  auto b = market("0xb", 50, 100, 0.80);
  b.category = "sports";
  b.end_date = iso_in(hours(24 * 40));
  b.created_at = iso_ago(hours(24 * 60));
  b.tier = 2;
  auto c = market("0xc", 50, 9000, 0.55);
  c.category.reset();
  c.end_date.reset();
  c.created_at.reset();
  c.outcome_count = 3;
  c.tier = 3;
  auto d = market("0xd", 10, 300, std::nullopt);
  d.category = "crypto";
  d.end_date = iso_in(hours(12));
  d.created_at = iso_ago(hours(12));
  auto resolved = market("0xr", 99, 99999, 0.5);
  resolved.is_resolved = true;
  repo.upsert_batch({a, b, c, d, resolved});
  MarketQuery q;
  EXPECT_EQ(cids(repo.query(q)), (std::vector<std::string>{"0xa", "0xc", "0xb", "0xd"}));
  q.include_resolved = true;
  EXPECT_EQ(cids(repo.query(q)).front(), "0xr");
  q = {};
  q.min_price = 0.5;
  EXPECT_EQ(cids(repo.query(q)), (std::vector<std::string>{"0xc", "0xb"}));  // NULL price never matches
  q.max_price = 0.6;
  EXPECT_EQ(cids(repo.query(q)), (std::vector<std::string>{"0xc"}));
  q = {};
  q.min_volume = 300;
  q.max_volume = 5000;
  EXPECT_EQ(cids(repo.query(q)), (std::vector<std::string>{"0xa", "0xd"}));
  q = {};
  q.categories = std::vector<std::string>{"sports", "crypto"};
  EXPECT_EQ(cids(repo.query(q)), (std::vector<std::string>{"0xb", "0xd"}));
  q = {};
  q.exclude_categories = std::vector<std::string>{"sports"};
  EXPECT_EQ(cids(repo.query(q)), (std::vector<std::string>{"0xa", "0xd"}));  // NULL category dropped
  q = {};
  q.min_interestingness = 50;
  EXPECT_EQ(cids(repo.query(q)), (std::vector<std::string>{"0xa", "0xc", "0xb"}));
  q = {};
  q.min_days_to_end = 5;
  EXPECT_EQ(cids(repo.query(q)), (std::vector<std::string>{"0xa", "0xb"}));
  q.max_days_to_end = 30;
  EXPECT_EQ(cids(repo.query(q)), (std::vector<std::string>{"0xa"}));
  q = {};
  q.max_days_to_end = 1;
  EXPECT_EQ(cids(repo.query(q)), (std::vector<std::string>{"0xd"}));
  q = {};
  q.min_market_age_days = 1;
  EXPECT_EQ(cids(repo.query(q)), (std::vector<std::string>{"0xa", "0xb"}));
  q.max_market_age_days = 30;
  EXPECT_EQ(cids(repo.query(q)), (std::vector<std::string>{"0xa"}));
  q = {};
  q.tier = 2;
  EXPECT_EQ(cids(repo.query(q)), (std::vector<std::string>{"0xb"}));
  q = {};
  q.min_tier = 2;
  EXPECT_EQ(cids(repo.query(q)), (std::vector<std::string>{"0xc", "0xb"}));
  q = {};
  q.binary_only = true;
  EXPECT_EQ(cids(repo.query(q)), (std::vector<std::string>{"0xa", "0xb", "0xd"}));
  q = {};
  q.limit = 2;
  q.offset = 1;
  EXPECT_EQ(cids(repo.query(q)), (std::vector<std::string>{"0xc", "0xb"}));
  q.limit = -1;
  EXPECT_THROW(repo.query(q), std::invalid_argument);
  q.limit = 1;
  q.offset = -1;
  EXPECT_THROW(repo.query(q), std::invalid_argument);
}

TEST_F(MarketUniverseRepositoryTest, TiersCountsAndTopByScoreWithTieBreakers) {
  MarketUniverseRepository repo(tdb_->db());
  EXPECT_TRUE(repo.get_tier_counts().empty());
  EXPECT_TRUE(repo.get_by_tier(1).empty());
  auto b = market("0xb", 10, 100);
  auto a = market("0xa", 10, 100);  // same score and volume as 0xb: condition_id decides
  auto c = market("0xc", 10, 200);
  auto d = market("0xd", 30, 1);
  d.tier = 2;
  auto r = market("0xr", 50, 1);
  r.is_resolved = true;
  repo.upsert_batch({b, a, c, d, r});
  EXPECT_EQ(cids(repo.get_by_tier(1)), (std::vector<std::string>{"0xc", "0xa", "0xb"}));  // 0xr resolved
  EXPECT_EQ(cids(repo.get_by_tier(1, 2)), (std::vector<std::string>{"0xc", "0xa"}));
  EXPECT_EQ(cids(repo.get_by_tier(2)), (std::vector<std::string>{"0xd"}));
  EXPECT_TRUE(repo.get_by_tier(3).empty());
  auto counts = repo.get_tier_counts();
  EXPECT_EQ(counts.size(), 2u);
  EXPECT_EQ(counts[1], 3);
  EXPECT_EQ(counts[2], 1);
  EXPECT_EQ(cids(repo.get_top_by_score()), (std::vector<std::string>{"0xr", "0xd", "0xc", "0xa", "0xb"}));
  EXPECT_EQ(cids(repo.get_top_by_score(2)), (std::vector<std::string>{"0xr", "0xd"}));
  EXPECT_THROW(repo.get_top_by_score(-1), std::invalid_argument);
}

TEST_F(MarketUniverseRepositoryTest, PromoteDemoteAndPinnedTier) {
  MarketUniverseRepository repo(tdb_->db());
  EXPECT_FALSE(repo.promote("0xmissing", 2));
  EXPECT_FALSE(repo.demote("0xmissing", 1));
  EXPECT_FALSE(repo.set_pinned_tier("0xmissing", 2));
  repo.upsert(market("0xa"));
  EXPECT_FALSE(repo.promote("0xa", 1));  // not below
  EXPECT_FALSE(repo.get_by_condition_id("0xa")->tier_changed_at);
  EXPECT_TRUE(repo.promote("0xa", 3, "strategy signal"));
  auto promoted = *repo.get_by_condition_id("0xa");
  EXPECT_EQ(promoted.tier, 3);
  ASSERT_TRUE(promoted.tier_changed_at);
  EXPECT_GT(*promoted.tier_changed_at, iso_ago(minutes(1)));
  EXPECT_FALSE(repo.promote("0xa", 2));  // promote never lowers
  EXPECT_FALSE(repo.demote("0xa", 3));   // not above
  EXPECT_FALSE(repo.demote("0xa", 4));
  EXPECT_TRUE(repo.set_pinned_tier("0xa", 2));
  EXPECT_FALSE(repo.demote("0xa", 1));   // pinned at 2 > 1
  EXPECT_EQ(repo.get_by_condition_id("0xa")->tier, 3);
  EXPECT_TRUE(repo.demote("0xa", 2));    // pinned 2 <= 2
  EXPECT_EQ(repo.get_by_condition_id("0xa")->tier, 2);
  EXPECT_TRUE(repo.set_pinned_tier("0xa", std::nullopt));
  EXPECT_FALSE(repo.get_by_condition_id("0xa")->pinned_tier);
  EXPECT_TRUE(repo.demote("0xa", 1));
  EXPECT_EQ(repo.get_by_condition_id("0xa")->tier, 1);
}

TEST_F(MarketUniverseRepositoryTest, InterestingnessScoresAndBelowThresholdSince) {
  MarketUniverseRepository repo(tdb_->db());
  repo.upsert_batch({market("0xa"), market("0xb"), market("0xc")});
  EXPECT_EQ(repo.update_interestingness_scores({}), 0);
  EXPECT_EQ(repo.update_interestingness_scores({{"0xa", 10.5}, {"0xb", 20}, {"0xmissing", 5}}), 2);
  auto a = *repo.get_by_condition_id("0xa");
  auto b = *repo.get_by_condition_id("0xb");
  EXPECT_NEAR(a.interestingness_score, 10.5, 1e-5);
  ASSERT_TRUE(a.score_below_threshold_since);
  EXPECT_GT(*a.score_below_threshold_since, iso_ago(minutes(1)));
  EXPECT_FALSE(b.score_below_threshold_since);  // 20 is not below 20
  EXPECT_FALSE(repo.get_by_condition_id("0xc")->score_below_threshold_since);
  // Still below: the first time is kept.
  tdb_->exec("UPDATE market_universe SET score_below_threshold_since = '2026-01-01 00:00:00' WHERE condition_id = '0xa'");
  EXPECT_EQ(repo.update_interestingness_scores({{"0xa", 3}}), 1);
  EXPECT_EQ(repo.get_by_condition_id("0xa")->score_below_threshold_since, "2026-01-01T00:00:00.000000Z");
  // Back above: cleared.
  EXPECT_EQ(repo.update_interestingness_scores({{"0xa", 25}}), 1);
  EXPECT_FALSE(repo.get_by_condition_id("0xa")->score_below_threshold_since);
  // An upsert neither changes the score nor the marker.
  repo.upsert(market("0xa", 1));
  EXPECT_NEAR(repo.get_by_condition_id("0xa")->interestingness_score, 25, 1e-5);
  // A NaN score sorted above every market in query() and get_top_by_score(): refused, and none of
  // the call's scores is written.
  EXPECT_THROW(repo.update_interestingness_scores({{"0xb", 7}, {"0xa", std::nan("")}}), RefusedValueError);
  EXPECT_NEAR(repo.get_by_condition_id("0xa")->interestingness_score, 25, 1e-5);
  EXPECT_NEAR(repo.get_by_condition_id("0xb")->interestingness_score, 20, 1e-5);
}

TEST_F(MarketUniverseRepositoryTest, StrategySignal) {
  MarketUniverseRepository repo(tdb_->db());
  EXPECT_FALSE(repo.record_strategy_signal("0xa"));
  repo.upsert(market("0xa"));
  EXPECT_FALSE(repo.get_by_condition_id("0xa")->last_strategy_signal_at);
  EXPECT_TRUE(repo.record_strategy_signal("0xa"));
  auto at = repo.get_by_condition_id("0xa")->last_strategy_signal_at;
  ASSERT_TRUE(at);
  EXPECT_GT(*at, iso_ago(minutes(1)));
  EXPECT_LT(*at, iso_in(minutes(1)));
}

TEST_F(MarketUniverseRepositoryTest, PriceSnapshotsAndPriceAtTime) {
  MarketUniverseRepository repo(tdb_->db());
  EXPECT_FALSE(repo.get_price_at_time("0xa", "2026-01-01T12:00:00Z"));
  EXPECT_TRUE(repo.save_price_snapshot({"0xa", "2026-01-01T10:00:00Z", 0.40, 100.0}));
  EXPECT_FALSE(repo.save_price_snapshot({"0xa", "2026-01-01 10:00:00", 0.99, 1.0}));  // DO NOTHING
  EXPECT_TRUE(repo.save_price_snapshot({"0xa", "2026-01-01T11:00:00Z", 0.45, std::nullopt}));
  EXPECT_TRUE(repo.save_price_snapshot({"0xa", "2026-01-01T11:30:00Z", std::nullopt, 5.0}));  // no price
  EXPECT_TRUE(repo.save_price_snapshot({"0xb", "2026-01-01T11:45:00Z", 0.9, 5.0}));
  EXPECT_EQ(tdb_->count("price_snapshots"), 4);
  EXPECT_FALSE(repo.get_price_at_time("0xa", "2026-01-01T09:59:59Z"));
  EXPECT_NEAR(*repo.get_price_at_time("0xa", "2026-01-01T10:00:00Z"), 0.40, 1e-6);  // at: inclusive
  EXPECT_NEAR(*repo.get_price_at_time("0xa", "2026-01-01T10:59:00Z"), 0.40, 1e-6);
  EXPECT_NEAR(*repo.get_price_at_time("0xa", "2026-01-01T12:00:00Z"), 0.45, 1e-6);  // NULL price skipped
  EXPECT_THROW(repo.get_price_at_time("0xa", "noon"), std::invalid_argument);
  EXPECT_THROW(repo.save_price_snapshot({"0xa", "", 0.1, 0.1}), std::invalid_argument);
}

TEST_F(MarketUniverseRepositoryTest, PriceChanges) {
  MarketUniverseRepository repo(tdb_->db());
  repo.upsert_batch({market("0xa", 0, 1, 0.60), market("0xb", 0, 1, 0.30), market("0xn", 0, 1, std::nullopt),
                     market("0xz", 0, 1, 0.10)});
  repo.save_price_snapshot({"0xa", iso_ago(minutes(90)), 0.50, std::nullopt});   // 1h ago: 0.50
  repo.save_price_snapshot({"0xa", iso_ago(minutes(30)), 0.58, std::nullopt});   // too recent for 1h
  repo.save_price_snapshot({"0xa", iso_ago(hours(30)), 0.70, std::nullopt});     // 24h ago: 0.70
  repo.save_price_snapshot({"0xb", iso_ago(minutes(70)), 0.20, std::nullopt});   // 1h only
  repo.save_price_snapshot({"0xn", iso_ago(hours(2)), 0.20, std::nullopt});
  EXPECT_TRUE(repo.compute_price_changes({}).empty());
  auto changes = repo.compute_price_changes({"0xa", "0xb", "0xn", "0xz", "0xmissing"});
  ASSERT_EQ(changes.size(), 3u);  // NULL current price and missing rows are left out
  EXPECT_NEAR(changes["0xa"].change_1h, 0.10, 1e-6);
  EXPECT_NEAR(changes["0xa"].change_24h, -0.10, 1e-6);
  EXPECT_NEAR(changes["0xb"].change_1h, 0.10, 1e-6);
  EXPECT_EQ(changes["0xb"].change_24h, 0.0);
  EXPECT_EQ(changes["0xz"].change_1h, 0.0);
  EXPECT_EQ(changes["0xz"].change_24h, 0.0);
  EXPECT_EQ(changes.count("0xn"), 0u);
}

TEST_F(MarketUniverseRepositoryTest, TierRequests) {
  MarketUniverseRepository repo(tdb_->db());
  EXPECT_TRUE(repo.get_active_tier_requests().empty());
  auto first = repo.create_tier_request(request("momentum", "0xa", 3, iso_in(hours(1))));
  EXPECT_EQ(first.requested_tier, 3);
  EXPECT_GT(first.requested_at, iso_ago(minutes(1)));  // empty requested_at: now
  // A lower tier keeps the higher one; the rest is replaced.
  auto lower = request("momentum", "0xa", 2, iso_in(hours(5)), "2026-01-01T00:00:00Z");
  lower.reason = "second";
  auto merged = repo.create_tier_request(lower);
  EXPECT_EQ(merged.requested_tier, 3);
  EXPECT_EQ(merged.reason, "second");
  EXPECT_EQ(merged.requested_at, "2026-01-01T00:00:00.000000Z");
  EXPECT_EQ(merged.expires_at, lower.expires_at);
  EXPECT_EQ(repo.create_tier_request(request("momentum", "0xa", 4, iso_in(hours(5)))).requested_tier, 4);
  repo.create_tier_request(request("momentum", "0xb", 2, iso_in(hours(1)), "2026-01-02T00:00:00Z"));
  repo.create_tier_request(request("arb", "0xb", 2, iso_in(hours(1)), "2026-01-02T00:00:00Z"));  // tie
  repo.create_tier_request(request("arb", "0xc", 1, iso_in(hours(1))));
  repo.create_tier_request(request("arb", "0xd", 3, iso_ago(minutes(1))));  // expired
  EXPECT_EQ(tdb_->count("strategy_tier_requests"), 5);
  auto active = repo.get_active_tier_requests();
  ASSERT_EQ(active.size(), 3u);
  EXPECT_EQ(active[0].condition_id, "0xa");
  EXPECT_EQ(active[1].strategy_name, "arb");
  EXPECT_EQ(active[2].strategy_name, "momentum");
  EXPECT_EQ(repo.get_active_tier_requests(1).size(), 4u);
  EXPECT_EQ(repo.get_active_tier_requests(4).size(), 1u);
  EXPECT_EQ(repo.cleanup_expired_requests(), 1);
  EXPECT_EQ(repo.cleanup_expired_requests(), 0);
  EXPECT_EQ(tdb_->count("strategy_tier_requests"), 4);
  EXPECT_THROW(repo.create_tier_request(request("x", "0xe", 2, "")), std::invalid_argument);
}

TEST_F(MarketUniverseRepositoryTest, ResolutionsAndPositionPnl) {
  MarketUniverseRepository repo(tdb_->db());
  EXPECT_FALSE(repo.get_resolution("0xa"));
  EXPECT_FALSE(repo.get_pnl_for_position("0xa", 0, 0.4, 10));
  auto open = market("0xopen");
  auto early = market("0xearly");
  early.is_resolved = true;
  early.resolution_outcome = "Yes";
  early.winning_outcome_index = 0;
  early.resolved_at = "2026-01-01T00:00:00Z";
  auto late = market("0xlate");
  late.is_resolved = true;
  late.resolution_outcome = "No";
  late.winning_outcome_index = 1;
  late.resolved_at = "2026-03-01T00:00:00Z";
  auto unknown = market("0xunknown");  // resolved, no index or time
  unknown.is_resolved = true;
  repo.upsert_batch({open, early, late, unknown});
  EXPECT_EQ(cids(repo.get_resolved_markets()), (std::vector<std::string>{"0xlate", "0xearly", "0xunknown"}));
  EXPECT_EQ(cids(repo.get_resolved_markets("2026-02-01T00:00:00Z")), (std::vector<std::string>{"0xlate"}));
  EXPECT_EQ(cids(repo.get_resolved_markets(std::nullopt, 1)), (std::vector<std::string>{"0xlate"}));
  auto res = repo.get_resolution("0xearly");
  ASSERT_TRUE(res);
  EXPECT_TRUE(res->is_resolved);
  EXPECT_EQ(res->winning_outcome_index, 0);
  EXPECT_EQ(res->resolved_at, "2026-01-01T00:00:00.000000Z");
  auto open_res = repo.get_resolution("0xopen");
  ASSERT_TRUE(open_res);
  EXPECT_FALSE(open_res->is_resolved);
  EXPECT_TRUE(MarketUniverseRepository::check_position_won(1, 1));
  EXPECT_FALSE(MarketUniverseRepository::check_position_won(0, 1));
  EXPECT_FALSE(repo.get_pnl_for_position("0xopen", 0, 0.4, 10));
  EXPECT_FALSE(repo.get_pnl_for_position("0xunknown", 0, 0.4, 10));
  auto won = repo.get_pnl_for_position("0xearly", 0, 0.4, 10);
  ASSERT_TRUE(won);
  EXPECT_TRUE(won->won);
  EXPECT_DOUBLE_EQ(won->exit_price, 1.0);
  EXPECT_NEAR(won->pnl, 6.0, 1e-9);
  EXPECT_NEAR(won->pnl_pct, 150.0, 1e-9);
  EXPECT_EQ(won->resolution_outcome, "Yes");
  EXPECT_EQ(won->resolved_at, "2026-01-01T00:00:00.000000Z");
  auto lost = repo.get_pnl_for_position("0xearly", 1, 0.4, 10);
  ASSERT_TRUE(lost);
  EXPECT_FALSE(lost->won);
  EXPECT_DOUBLE_EQ(lost->exit_price, 0.0);
  EXPECT_NEAR(lost->pnl, -4.0, 1e-9);
  EXPECT_NEAR(lost->pnl_pct, -100.0, 1e-9);
  EXPECT_EQ(repo.get_pnl_for_position("0xlate", 1, 0, 10)->pnl_pct, 0.0);
}

TEST_F(MarketUniverseRepositoryTest, CallerTransactionCommitsOrRollsBackTogether) {
  try {
    tdb_->db().transaction([&](pqxx::work& tx) {
      MarketUniverseRepository repo(tx);
      repo.upsert(market("0xa"));
      EXPECT_TRUE(repo.promote("0xa", 2));
      throw std::runtime_error("abort");
    });
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(tdb_->count("market_universe"), 0);
  tdb_->db().transaction([&](pqxx::work& tx) {
    MarketUniverseRepository repo(tx);
    EXPECT_EQ(repo.upsert_batch({market("0xa"), market("0xb")}).inserted, 2u);
    EXPECT_TRUE(repo.promote("0xa", 2));
  });
  EXPECT_EQ(MarketUniverseRepository(tdb_->db()).get_by_condition_id("0xa")->tier, 2);
}

TEST_F(MarketUniverseRepositoryTest, SessionTimeZoneDoesNotShiftTimes) {
  tdb_->db().transaction([&](pqxx::work& tx) {
    tx.exec("SET LOCAL TimeZone = 'Pacific/Kiritimati'");  // UTC+14
    MarketUniverseRepository repo(tx);
    auto m = market("0xa");
    m.end_date = "2027-01-01T12:00:00Z";
    m.resolved_at = "2027-01-02T00:00:00+02:00";
    auto stored = repo.upsert(m);
    EXPECT_EQ(stored.end_date, "2027-01-01T12:00:00.000000Z");
    EXPECT_EQ(stored.resolved_at, "2027-01-01T22:00:00.000000Z");
    ASSERT_TRUE(stored.snapshot_at);
    EXPECT_GT(*stored.snapshot_at, iso_ago(minutes(1)));
    EXPECT_LT(*stored.snapshot_at, iso_in(minutes(1)));
    EXPECT_TRUE(repo.save_price_snapshot({"0xa", iso_ago(minutes(90)), 0.25, std::nullopt}));
    auto changes = repo.compute_price_changes({"0xa"});
    EXPECT_NEAR(changes["0xa"].change_1h, 0.25, 1e-6);  // the 90-minute-old snapshot counts as older than 1h
    auto active = repo.create_tier_request(request("s", "0xa", 2, iso_in(minutes(30))));
    EXPECT_EQ(repo.get_active_tier_requests().size(), 1u);  // expires in 30 min, not 14 h ago
    EXPECT_GT(active.requested_at, iso_ago(minutes(1)));
  });
}

}  // namespace
}  // namespace pm
