// TradeWatchlistRepository, MarketScoresCacheRepository and ScoreHistoryRepository against a real
// PostgreSQL (storage-api.md 2.15; fixes for D11, D20, D25, D27, D28, D33).
#include <gtest/gtest.h>

#include <cmath>

#include "repos/pg_errors.h"
#include "repos/timestamp_unit.h"
#include "repos/util/clock.h"
#include "repos/watchlist_repository.h"
#include "tests/support/test_database.h"

namespace pm {
namespace {

constexpr std::int64_t kDay = 86'400;

class WatchlistRepositoryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { tdb_ = new test::TestDatabase("watchlists"); }
  static void TearDownTestSuite() { delete tdb_; }
  void SetUp() override {
    tdb_->exec("TRUNCATE trade_watchlist, market_scores_cache, score_history RESTART IDENTITY");
  }

  static TradeWatchlist item(std::string token, std::optional<double> score = 0.92,
                             std::string status = "watching") {
    TradeWatchlist w;
    w.token_id = std::move(token);
    w.market_id = "m1";
    w.condition_id = "0xabc";
    w.question = "Will X happen?";
    w.trigger_price = 0.95;
    w.trigger_size = 50;
    w.trigger_timestamp = 1'700'000'000'000;
    w.initial_score = score;
    w.current_score = score;
    w.time_to_end_hours = 720;
    w.status = std::move(status);
    return w;
  }
  static MarketScoresCache cache(std::string cid, std::optional<double> score,
                                 std::optional<std::int32_t> passes = 1) {
    MarketScoresCache c;
    c.condition_id = std::move(cid);
    c.market_id = "m";
    c.question = "q";
    c.category = "politics";
    c.best_bid = 0.4;
    c.best_ask = 0.42;
    c.spread_pct = 5.0;
    c.liquidity = 1000;
    c.volume = 2000;
    c.end_date = "2026-12-31";
    c.time_to_end_hours = 100;
    c.model_score = score;
    c.passes_filters = passes;
    c.filter_rejections = "[]";
    c.is_weather = 0;
    c.is_crypto = 0;
    c.is_politics = 1;
    c.is_sports = 0;
    return c;
  }
  static ScoreHistory history(std::optional<std::string> token, std::optional<std::int64_t> scored_at,
                              double score = 0.9) {
    ScoreHistory h;
    h.token_id = std::move(token);
    h.score = score;
    h.time_to_end_hours = 48;
    h.scored_at = scored_at;
    return h;
  }
  template <class M>
  static std::vector<std::string> tokens(const std::vector<M>& rows) {
    std::vector<std::string> out;
    for (const auto& r : rows) out.push_back(r.token_id);
    return out;
  }
  static std::vector<std::string> conditions(const std::vector<MarketScoresCache>& rows) {
    std::vector<std::string> out;
    for (const auto& r : rows) out.push_back(r.condition_id);
    return out;
  }
  static std::vector<std::int32_t> ids(const std::vector<ScoreHistory>& rows) {
    std::vector<std::int32_t> out;
    for (const auto& r : rows) out.push_back(r.id);
    return out;
  }
  static test::TestDatabase* tdb_;
};
test::TestDatabase* WatchlistRepositoryTest::tdb_ = nullptr;

// ---- Trade watchlist ----

TEST_F(WatchlistRepositoryTest, StatusTextAndTransitions) {
  using S = WatchlistStatus;
  EXPECT_EQ(to_string(S::Watching), "watching");
  EXPECT_EQ(to_string(S::Promoted), "promoted");
  EXPECT_EQ(to_string(S::Expired), "expired");
  EXPECT_EQ(to_string(S::Traded), "traded");
  EXPECT_EQ(parse_watchlist_status("traded"), S::Traded);
  EXPECT_FALSE(parse_watchlist_status("WATCHING"));
  const S all[] = {S::Watching, S::Promoted, S::Expired, S::Traded};
  int allowed = 0;
  for (S from : all)
    for (S to : all) allowed += can_transition(from, to) ? 1 : 0;
  EXPECT_EQ(allowed, 5);
  EXPECT_TRUE(can_transition(S::Watching, S::Traded));
  EXPECT_FALSE(can_transition(S::Promoted, S::Watching));
}

TEST_F(WatchlistRepositoryTest, CreateStampsEpochSeconds) {
  TradeWatchlistRepository repo(tdb_->db());
  const std::int64_t before = now_epoch_s();
  auto row = repo.create(item("t"));
  const std::int64_t after = now_epoch_s();
  ASSERT_TRUE(row.created_at);
  EXPECT_GE(*row.created_at, before);
  EXPECT_LE(*row.created_at, after);
  EXPECT_GE(*row.updated_at, before);
  EXPECT_LE(*row.updated_at, after);
  EXPECT_EQ(row.status, "watching");
  EXPECT_NEAR(*row.trigger_price, 0.95, 1e-6);
  EXPECT_EQ(row.trigger_timestamp, 1'700'000'000'000);
  EXPECT_FALSE(row.last_scored_at);
  auto given = item("g");
  given.created_at = 1'600'000'000;
  EXPECT_EQ(repo.create(given).created_at, 1'600'000'000);
}

// D33: the original treated a created_at of 0 as missing and stamped now. Only nullopt is
// missing: 0 is stored as given (and a row stored so can be upserted again).
TEST_F(WatchlistRepositoryTest, CreateKeepsAZeroCreatedAt) {
  TradeWatchlistRepository repo(tdb_->db());
  auto w = item("zero");
  w.created_at = 0;
  EXPECT_EQ(repo.create(w).created_at, 0);
  EXPECT_EQ(repo.create(w).created_at, 0);
}

// The text of the TimestampUnitError `fn` throws, or "" (with a failure) when it throws none.
template <class Fn>
std::string unit_error_of(Fn&& fn) {
  try {
    fn();
  } catch (const TimestampUnitError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no TimestampUnitError";
  return "";
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// last_scored_at and created_at are epoch seconds (schema.md). create() stored them in another
// unit [the rows inserted]: a created_at in
// ms reads as the year 50000. Each is refused now (TimestampUnitError, a RefusedValueError,
// naming the column, the token and the value) before any SQL, as every other time column is.
TEST_F(WatchlistRepositoryTest, CreateRefusesTimesOfTheWrongUnit) {
  TradeWatchlistRepository repo(tdb_->db());
  const std::int64_t now_s = now_epoch_s();
  auto scored_in_ms = item("a");
  scored_in_ms.last_scored_at = now_s * 1000;
  const std::string scored = unit_error_of([&] { repo.create(scored_in_ms); });
  EXPECT_TRUE(has(scored, "trade_watchlist.last_scored_at of token 'a'")) << scored;
  EXPECT_TRUE(has(scored, std::to_string(now_s * 1000))) << scored;
  EXPECT_TRUE(has(scored, "looks like epoch milliseconds")) << scored;
  EXPECT_TRUE(has(scored, "is seconds (s)")) << scored;

  auto created_in_ms = item("b");
  created_in_ms.created_at = now_s * 1000;
  const std::string created = unit_error_of([&] { repo.create(created_in_ms); });
  EXPECT_TRUE(has(created, "trade_watchlist.created_at of token 'b'")) << created;
  EXPECT_TRUE(has(created, std::to_string(now_s * 1000))) << created;

  auto far_ahead = item("d");
  far_ahead.last_scored_at = now_s + 2 * kDay;
  EXPECT_TRUE(has(unit_error_of([&] { repo.create(far_ahead); }), "h ahead of now"));
  auto in_us = item("e");
  in_us.created_at = now_s * 1'000'000;
  EXPECT_THROW(repo.create(in_us), TimestampUnitError);
  EXPECT_EQ(repo.count(), 0);  // nothing written

  auto in_seconds = item("ok");
  in_seconds.last_scored_at = now_s;
  in_seconds.created_at = now_s - kDay;
  const auto row = repo.create(in_seconds);
  EXPECT_EQ(row.last_scored_at, now_s);
  EXPECT_EQ(row.created_at, now_s - kDay);
  EXPECT_EQ(row.trigger_timestamp, 1'700'000'000'000);
}

TEST_F(WatchlistRepositoryTest, UpsertKeepsInitialScoreAndCreatedAt) {
  TradeWatchlistRepository repo(tdb_->db());
  auto first = item("t", 0.91);
  first.created_at = 1'600'000'000;
  repo.create(first);
  auto second = item("t", 0.96, "promoted");
  second.created_at = 1'700'000'000;
  second.question.reset();
  second.last_scored_at = 1'650'000'000;
  auto row = repo.create(second);
  EXPECT_NEAR(*row.initial_score, 0.91, 1e-6);  // first value kept
  EXPECT_EQ(row.created_at, 1'600'000'000);     // first value kept
  EXPECT_NEAR(*row.current_score, 0.96, 1e-6);
  EXPECT_EQ(row.status, "promoted");
  EXPECT_FALSE(row.question);  // overwritten with NULL
  EXPECT_EQ(row.last_scored_at, 1'650'000'000);
  EXPECT_EQ(repo.count(), 1);
}

TEST_F(WatchlistRepositoryTest, CreateValidatesStatus) {
  TradeWatchlistRepository repo(tdb_->db());
  EXPECT_THROW(repo.create(item("t", 0.9, "active")), std::invalid_argument);
  auto w = item("t");
  w.status.reset();
  EXPECT_THROW(repo.create(w), std::invalid_argument);
  EXPECT_EQ(repo.count(), 0);
}

// D28: the original listed entries with no score first.
TEST_F(WatchlistRepositoryTest, GetWatchingBestScoreFirstNullsLast) {
  TradeWatchlistRepository repo(tdb_->db());
  repo.create(item("no_score", std::nullopt));
  repo.create(item("low", 0.90));
  repo.create(item("high_b", 0.95));
  repo.create(item("high_a", 0.95));
  repo.create(item("done", 0.99, "traded"));
  EXPECT_EQ(tokens(repo.get_watching()), (std::vector<std::string>{"high_a", "high_b", "low", "no_score"}));
}

// A NaN score sorted above every score (PostgreSQL orders NaN first in DESC): such a token led
// get_watching() and such a market get_passing(). Non-finite scores are refused; nothing changes.
TEST_F(WatchlistRepositoryTest, NonFiniteScoresAreRefusedAndTheOrderStands) {
  TradeWatchlistRepository watchlist(tdb_->db());
  watchlist.create(item("good", 0.95));
  EXPECT_THROW(watchlist.create(item("nan", std::nan(""))), RefusedValueError);
  EXPECT_THROW(watchlist.update_score("good", std::nan(""), 1), RefusedValueError);
  EXPECT_EQ(tokens(watchlist.get_watching()), (std::vector<std::string>{"good"}));
  EXPECT_NEAR(*watchlist.get_watching().at(0).current_score, 0.95, 1e-6);
  MarketScoresCacheRepository scores(tdb_->db());
  EXPECT_THROW(scores.upsert(cache("0xnan", std::nan(""))), RefusedValueError);
  EXPECT_EQ(scores.count(), 0);
}

TEST_F(WatchlistRepositoryTest, GetByStatusNewestUpdateFirst) {
  tdb_->exec(R"(INSERT INTO trade_watchlist (token_id, status, updated_at) VALUES
                ('null_upd', 'expired', NULL), ('old', 'expired', 100), ('new_b', 'expired', 200),
                ('new_a', 'expired', 200), ('w', 'watching', 300))");
  TradeWatchlistRepository repo(tdb_->db());
  EXPECT_EQ(tokens(repo.get_by_status(WatchlistStatus::Expired)),
            (std::vector<std::string>{"new_a", "new_b", "old", "null_upd"}));
  EXPECT_TRUE(repo.get_by_status(WatchlistStatus::Promoted).empty());
}

TEST_F(WatchlistRepositoryTest, UpdateScore) {
  TradeWatchlistRepository repo(tdb_->db());
  auto created = repo.create(item("t", 0.92));
  const std::int64_t before = now_epoch_s();
  auto row = repo.update_score("t", 0.97, 24.5);
  ASSERT_TRUE(row);
  EXPECT_NEAR(*row->current_score, 0.97, 1e-6);
  EXPECT_NEAR(*row->initial_score, 0.92, 1e-6);
  EXPECT_NEAR(*row->time_to_end_hours, 24.5, 1e-6);
  ASSERT_TRUE(row->last_scored_at);
  EXPECT_GE(*row->last_scored_at, before);
  EXPECT_EQ(row->last_scored_at, row->updated_at);
  EXPECT_EQ(row->created_at, created.created_at);
  EXPECT_FALSE(repo.update_score("missing", 0.5, 1));
}

TEST_F(WatchlistRepositoryTest, GuardedStatusChanges) {
  TradeWatchlistRepository repo(tdb_->db());
  repo.create(item("p"));
  auto promoted = repo.promote("p");
  ASSERT_TRUE(promoted);
  EXPECT_EQ(promoted->status, "promoted");
  EXPECT_FALSE(repo.promote("p"));
  auto traded = repo.mark_traded("p");
  ASSERT_TRUE(traded);
  EXPECT_EQ(traded->status, "traded");
  EXPECT_FALSE(repo.mark_expired("p"));
  EXPECT_FALSE(repo.promote("p"));
  EXPECT_EQ(repo.get_by_id("p")->status, "traded");

  repo.create(item("e"));
  ASSERT_TRUE(repo.mark_expired("e"));
  EXPECT_FALSE(repo.promote("e"));
  EXPECT_FALSE(repo.mark_traded("e"));
  EXPECT_EQ(repo.get_by_id("e")->status, "expired");

  repo.create(item("direct"));
  EXPECT_TRUE(repo.mark_traded("direct"));  // watching -> traded
  repo.create(item("pe"));
  repo.promote("pe");
  EXPECT_TRUE(repo.mark_expired("pe"));  // promoted -> expired

  EXPECT_FALSE(repo.promote("missing"));
  EXPECT_FALSE(repo.mark_traded("missing"));
  EXPECT_FALSE(repo.mark_expired("missing"));

  // An upsert is a new watch: it may bring an expired entry back.
  EXPECT_EQ(repo.create(item("e")).status, "watching");
  EXPECT_TRUE(repo.promote("e"));
}

TEST_F(WatchlistRepositoryTest, WatchlistBaseOperations) {
  TradeWatchlistRepository repo(tdb_->db());
  EXPECT_FALSE(repo.get_by_id("t"));
  repo.create(item("t"));
  EXPECT_TRUE(repo.exists("t"));
  EXPECT_EQ(repo.count(), 1);
  EXPECT_TRUE(repo.remove("t"));
  EXPECT_FALSE(repo.remove("t"));
}

// ---- Market score cache ----

TEST_F(WatchlistRepositoryTest, ScoreCacheUpsertOverwritesAndStampsNow) {
  MarketScoresCacheRepository repo(tdb_->db());
  auto input = cache("c1", 0.8);
  input.updated_at = "2000-01-01T00:00:00Z";  // ignored
  auto row = repo.upsert(input);
  ASSERT_TRUE(row.updated_at);
  EXPECT_EQ(row.updated_at->size(), 27u);
  EXPECT_NE(row.updated_at, "2000-01-01T00:00:00Z");
  EXPECT_NEAR(*row.spread_pct, 5.0, 1e-6);
  EXPECT_EQ(row.filter_rejections, "[]");
  EXPECT_EQ(row.is_politics, 1);
  auto changed = cache("c1", std::nullopt, 0);
  changed.category.reset();
  changed.is_politics.reset();
  auto over = repo.upsert(changed);
  EXPECT_FALSE(over.model_score);
  EXPECT_EQ(over.passes_filters, 0);
  EXPECT_FALSE(over.category);
  EXPECT_FALSE(over.is_politics);
  EXPECT_GE(*over.updated_at, *row.updated_at);
  EXPECT_EQ(repo.get_by_condition("c1")->passes_filters, 0);
  EXPECT_FALSE(repo.get_by_condition("none"));
}

TEST_F(WatchlistRepositoryTest, GetPassingBestFirstNullsLastWithLimit) {
  MarketScoresCacheRepository repo(tdb_->db());
  repo.upsert(cache("null_score", std::nullopt));
  repo.upsert(cache("low", 0.5));
  repo.upsert(cache("high_b", 0.9));
  repo.upsert(cache("high_a", 0.9));
  repo.upsert(cache("failing", 0.99, 0));
  repo.upsert(cache("unknown", 0.99, std::nullopt));
  EXPECT_EQ(conditions(repo.get_passing()), (std::vector<std::string>{"high_a", "high_b", "low", "null_score"}));
  EXPECT_EQ(conditions(repo.get_passing(2)), (std::vector<std::string>{"high_a", "high_b"}));
  EXPECT_THROW(repo.get_passing(-1), std::invalid_argument);
}

// D27: no flags no longer means "get_passing()".
TEST_F(WatchlistRepositoryTest, CategoryFlagsAreExplicit) {
  MarketScoresCacheRepository repo(tdb_->db());
  auto weather = cache("weather", 0.7, 0);
  weather.is_weather = 1;
  weather.is_politics = 0;
  repo.upsert(weather);
  auto crypto = cache("crypto", 0.8, 1);
  crypto.is_crypto = 1;
  crypto.is_politics = 0;
  repo.upsert(crypto);
  repo.upsert(cache("politics", 0.9, 1));
  auto unflagged = cache("unflagged", 0.6, 1);
  unflagged.is_weather.reset();
  unflagged.is_crypto.reset();
  unflagged.is_politics.reset();
  unflagged.is_sports.reset();
  repo.upsert(unflagged);

  EXPECT_EQ(conditions(repo.get_by_category_flags({})),
            (std::vector<std::string>{"politics", "crypto", "weather", "unflagged"}));
  CategoryFlagFilter f;
  f.passing_only = true;
  EXPECT_EQ(conditions(repo.get_by_category_flags(f)), (std::vector<std::string>{"politics", "crypto", "unflagged"}));
  f = {};
  f.is_weather = true;
  EXPECT_EQ(conditions(repo.get_by_category_flags(f)), (std::vector<std::string>{"weather"}));
  f.passing_only = true;
  EXPECT_TRUE(repo.get_by_category_flags(f).empty());
  f = {};
  f.is_politics = false;  // = 0; a NULL flag matches neither true nor false
  EXPECT_EQ(conditions(repo.get_by_category_flags(f)), (std::vector<std::string>{"crypto", "weather"}));
  f.is_crypto = false;
  EXPECT_EQ(conditions(repo.get_by_category_flags(f)), (std::vector<std::string>{"weather"}));
  f = {};
  f.is_sports = false;
  f.limit = 2;
  EXPECT_EQ(conditions(repo.get_by_category_flags(f)), (std::vector<std::string>{"politics", "crypto"}));
  f.limit = -1;
  EXPECT_THROW(repo.get_by_category_flags(f), std::invalid_argument);
}

TEST_F(WatchlistRepositoryTest, ScoreCacheBaseOperations) {
  MarketScoresCacheRepository repo(tdb_->db());
  repo.upsert(cache("c", 0.5));
  EXPECT_TRUE(repo.exists("c"));
  EXPECT_EQ(repo.count(), 1);
  EXPECT_TRUE(repo.remove("c"));
  EXPECT_FALSE(repo.get_by_id("c"));
}

// ---- Score history ----

TEST_F(WatchlistRepositoryTest, ScoreHistoryCreate) {
  ScoreHistoryRepository repo(tdb_->db());
  auto input = history("t", 1'700'000'000, 0.123456789);
  input.id = 77;
  auto a = repo.create(input);
  auto b = repo.create(input);
  EXPECT_GT(a.id, 0);
  EXPECT_NE(a.id, b.id);
  EXPECT_EQ(a.token_id, "t");
  EXPECT_NEAR(*a.score, 0.123456789, 1e-7);
  EXPECT_NE(*a.score, 0.123456789);  // float4
  EXPECT_EQ(a.scored_at, 1'700'000'000);
  auto empty = repo.create(ScoreHistory{});  // every column is nullable
  EXPECT_FALSE(empty.token_id);
  EXPECT_FALSE(empty.score);
  EXPECT_FALSE(empty.scored_at);
  EXPECT_EQ(repo.count(), 3);
}

TEST_F(WatchlistRepositoryTest, ScoreHistoryListsNewestFirst) {
  ScoreHistoryRepository repo(tdb_->db());
  auto null_at = repo.create(history("t", std::nullopt));
  auto old = repo.create(history("t", 100));
  auto tie1 = repo.create(history("t", 200));
  auto tie2 = repo.create(history("t", 200));
  auto other = repo.create(history("u", 300));
  EXPECT_EQ(ids(repo.get_by_token("t")), (std::vector<std::int32_t>{tie2.id, tie1.id, old.id, null_at.id}));
  EXPECT_EQ(ids(repo.get_by_token("t", 2)), (std::vector<std::int32_t>{tie2.id, tie1.id}));
  EXPECT_TRUE(repo.get_by_token("none").empty());
  EXPECT_EQ(ids(repo.get_recent(200)), (std::vector<std::int32_t>{other.id, tie2.id, tie1.id}));
  EXPECT_EQ(ids(repo.get_recent(301)), std::vector<std::int32_t>{});
}

// scored_at is epoch seconds. create() stored one in milliseconds [the row inserted]: cleanup_old
// never deleted it and get_recent(since_s) returned it for ever. It is refused now, before any SQL,
// naming the column and the value; so is a get_recent since in milliseconds, which returned nothing.
TEST_F(WatchlistRepositoryTest, ScoreHistoryRefusesAScoredAtThatIsNotEpochSeconds) {
  ScoreHistoryRepository repo(tdb_->db());
  const std::int64_t now_s = now_epoch_s();
  const std::string in_ms = unit_error_of([&] { repo.create(history("t", now_s * 1000)); });
  EXPECT_TRUE(has(in_ms, "score_history.scored_at of token 't'")) << in_ms;
  EXPECT_TRUE(has(in_ms, std::to_string(now_s * 1000) + " looks like epoch milliseconds")) << in_ms;
  EXPECT_TRUE(has(in_ms, "is seconds (s)")) << in_ms;
  EXPECT_TRUE(has(unit_error_of([&] { repo.create(history(std::nullopt, now_s * 1000)); }), "score_history.scored_at "));
  EXPECT_THROW(repo.create(history("t", now_s + 2 * kDay)), TimestampUnitError);
  EXPECT_THROW(repo.create(history("t", 0)), TimestampUnitError);
  EXPECT_EQ(repo.count(), 0);  // nothing written

  const auto row = repo.create(history("t", now_s));
  EXPECT_EQ(row.scored_at, now_s);
  const std::string since = unit_error_of([&] { repo.get_recent((now_s - 60) * 1000); });
  EXPECT_TRUE(has(since, "get_recent since_timestamp")) << since;
  EXPECT_EQ(ids(repo.get_recent(now_s - 60)), std::vector<std::int32_t>{row.id});
  EXPECT_EQ(ids(repo.get_recent(0)), std::vector<std::int32_t>{row.id});
}

TEST_F(WatchlistRepositoryTest, ScoreHistoryCleanupUsesEpochSeconds) {
  ScoreHistoryRepository repo(tdb_->db());
  const std::int64_t now = now_epoch_s();
  auto old = repo.create(history("t", now - 31 * kDay));
  auto recent = repo.create(history("t", now - 29 * kDay));
  auto future = repo.create(history("t", now + kDay));
  auto null_at = repo.create(history("t", std::nullopt));
  EXPECT_EQ(repo.cleanup_old(), 1);
  EXPECT_FALSE(repo.exists(old.id));
  EXPECT_TRUE(repo.exists(recent.id));
  EXPECT_EQ(repo.cleanup_old(30), 0);
  EXPECT_EQ(repo.cleanup_old(0), 1);  // everything before now
  EXPECT_FALSE(repo.exists(recent.id));
  EXPECT_TRUE(repo.exists(future.id));
  EXPECT_TRUE(repo.exists(null_at.id));
  EXPECT_THROW(repo.cleanup_old(-1), std::invalid_argument);
  EXPECT_TRUE(repo.remove(future.id));
  EXPECT_EQ(repo.count(), 1);
  EXPECT_EQ(repo.get_by_id(null_at.id)->id, null_at.id);
}

}  // namespace
}  // namespace pm
