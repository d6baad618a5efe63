// TriggerRepository and TriggerWatermarkRepository against a real PostgreSQL (storage-api.md
// T22-T37 and the fixes for D2, D3, D4, D5, D7, D8; issue 16: outcomes independent of float text).
#include <gtest/gtest.h>

#include <cmath>

#include <atomic>
#include <barrier>
#include <random>
#include <thread>

#include <pqxx/pqxx>

#include "repos/pg_errors.h"
#include "repos/util/clock.h"
#include "repos/timestamp_unit.h"
#include "repos/trigger_repository.h"
#include "tests/support/test_database.h"

namespace pm {
namespace {

// A trigger time in epoch milliseconds (schema.md): small offsets from it stay of that size.
constexpr std::int64_t T0 = 1'700'000'000'000;

class TriggerRepositoryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { tdb_ = new test::TestDatabase("triggers"); }
  static void TearDownTestSuite() { delete tdb_; }
  void SetUp() override { tdb_->exec("TRUNCATE polymarket_first_triggers, trigger_watermarks"); }

  static PolymarketFirstTrigger sample(std::string token = "0xtoken123", std::string cid = "0xabc123",
                                       double threshold = 0.95, std::int64_t ts = T0) {
    PolymarketFirstTrigger t;
    t.token_id = std::move(token);
    t.condition_id = std::move(cid);
    t.threshold = threshold;
    t.trigger_timestamp = ts;
    t.price = 0.95;
    t.size = 50;
    t.created_at = now_iso();
    t.model_score = 0.87;
    return t;
  }
  static test::TestDatabase* tdb_;
};
test::TestDatabase* TriggerRepositoryTest::tdb_ = nullptr;

TEST_F(TriggerRepositoryTest, CreateRoundTripsWithFloat4Tolerance) {
  TriggerRepository repo(tdb_->db());
  auto r = repo.create(sample());
  EXPECT_TRUE(r.inserted);
  EXPECT_EQ(r.row.token_id, "0xtoken123");
  EXPECT_NEAR(r.row.threshold, 0.95, 0.95 * 1e-5);
  EXPECT_NEAR(*r.row.price, 0.95, 0.95 * 1e-5);
}

TEST_F(TriggerRepositoryTest, HasTriggeredNeedsAllThreeKeys) {
  TriggerRepository repo(tdb_->db());
  EXPECT_FALSE(repo.has_triggered("0xtoken123", "0xabc123", 0.95));
  repo.create(sample());
  EXPECT_TRUE(repo.has_triggered("0xtoken123", "0xabc123", 0.95));
  EXPECT_FALSE(repo.has_triggered("0xtoken123", "0xdifferent", 0.95));
  EXPECT_TRUE(repo.has_condition_triggered("0xabc123", 0.95));
  EXPECT_FALSE(repo.has_condition_triggered("0xabc123", 0.90));
}

TEST_F(TriggerRepositoryTest, ShouldTriggerFollowsG2) {
  TriggerRepository repo(tdb_->db());
  EXPECT_TRUE(repo.should_trigger("0xtoken123", "0xabc123", 0.95));
  repo.create(sample());
  EXPECT_FALSE(repo.should_trigger("0xtoken123", "0xabc123", 0.95));
  EXPECT_FALSE(repo.should_trigger("0xothertoken", "0xabc123", 0.95));  // G2
  EXPECT_TRUE(repo.should_trigger("0xtoken123", "0xabc123", 0.90));
  EXPECT_FALSE(repo.should_trigger("0xtoken123", "", 0.95));
}

TEST_F(TriggerRepositoryTest, DuplicateCreateIsReportedAndStoresNothing) {
  TriggerRepository repo(tdb_->db());
  repo.create(sample());
  auto again = repo.create(sample());
  EXPECT_FALSE(again.inserted);
  EXPECT_EQ(repo.count(), 1);
}

TEST_F(TriggerRepositoryTest, OtherTokenOnSameConditionIsANoOpNotAnError) {
  TriggerRepository repo(tdb_->db());
  repo.create(sample("0xtokenA"));
  WriteResult<PolymarketFirstTrigger> r;
  ASSERT_NO_THROW(r = repo.create(sample("0xtokenB")));  // the original raised a unique violation
  EXPECT_FALSE(r.inserted);
  EXPECT_EQ(r.row.token_id, "0xtokenA");
  EXPECT_EQ(repo.count(), 1);
}

TEST_F(TriggerRepositoryTest, RecordFirstClassifiesDuplicates) {
  TriggerRepository repo(tdb_->db());
  EXPECT_EQ(repo.record_first(sample("A")), TriggerOutcome::Recorded);
  EXPECT_EQ(repo.record_first(sample("A")), TriggerOutcome::DuplicateSameToken);
  EXPECT_EQ(repo.record_first(sample("B")), TriggerOutcome::DuplicateOtherToken);
  EXPECT_EQ(repo.record_first(sample("B", "0xabc123", 0.90)), TriggerOutcome::Recorded);
  EXPECT_EQ(repo.count(), 2);
}

// A NaN threshold broke the batch's key order: it was taken for a duplicate of another threshold
// of its condition (DuplicateOtherToken, nothing recorded) though none was stored for it.
TEST_F(TriggerRepositoryTest, AThresholdThatIsNotAFiniteNumberIsRefusedAndNothingIsRecorded) {
  TriggerRepository repo(tdb_->db());
  for (const double bad : {std::nan(""), double{INFINITY}, -double{INFINITY}}) {
    EXPECT_THROW(repo.record_first(sample("A", "c", bad)), std::invalid_argument) << bad;
    EXPECT_THROW(repo.create(sample("A", "c", bad)), std::invalid_argument) << bad;
    EXPECT_THROW(repo.record_first_many({sample("A", "c", 0.95), sample("B", "c", bad)}), std::invalid_argument) << bad;
  }
  EXPECT_EQ(repo.count(), 0);
}

// The ingest writer relies on this: a refused key is a data error, so the event is dead-lettered
// and its batch-mates applied (as a plain std::invalid_argument it was classified as fatal and the
// batch retried for ever); the message names what was wrong.
TEST_F(TriggerRepositoryTest, ARefusedKeyIsADataErrorNamingWhatWasWrong) {
  TriggerRepository repo(tdb_->db());
  const auto refusal_of = [&](const PolymarketFirstTrigger& t) {
    try {
      repo.record_first_many({sample("A", "c", 0.5), t});
    } catch (const RefusedValueError& e) {
      return std::string(to_string(classify_exception(e))) + ": " + e.what();
    }
    return std::string("no RefusedValueError");
  };
  EXPECT_EQ(refusal_of(sample("B", "")), "data: trigger for token 'B' has an empty condition_id; G2 deduplication needs it");
  EXPECT_EQ(refusal_of(sample("", "c")), "data: trigger has an empty token_id");
  EXPECT_EQ(refusal_of(sample("B", "c", std::nan(""))),
            "data: trigger for token 'B' has threshold nan; a threshold must be a finite number");
  EXPECT_EQ(refusal_of(sample("B", "c", -double{INFINITY})),
            "data: trigger for token 'B' has threshold -inf; a threshold must be a finite number");
  EXPECT_EQ(repo.count(), 0);
}

TEST_F(TriggerRepositoryTest, EmptyConditionIsRefused) {
  TriggerRepository repo(tdb_->db());
  EXPECT_THROW(repo.record_first(sample("A", "")), std::invalid_argument);
  EXPECT_THROW(repo.create(sample("A", "")), std::invalid_argument);
  EXPECT_EQ(repo.count(), 0);
}

// A trigger's price, size and model score must be finite, as its threshold; and a watermark's
// threshold. Refused before any SQL (RefusedValueError, a data error), nothing written.
TEST_F(TriggerRepositoryTest, NonFinitePricesSizesScoresAndWatermarkThresholdsAreRefused) {
  TriggerRepository repo(tdb_->db());
  auto nan_price = sample("A", "0xc");
  nan_price.price = std::nan("");
  EXPECT_THROW(repo.record_first(nan_price), RefusedValueError);
  auto inf_score = sample("A", "0xc");
  inf_score.model_score = INFINITY;
  EXPECT_THROW(repo.create(inf_score), RefusedValueError);
  EXPECT_EQ(repo.count(), 0);
  TriggerWatermarkRepository marks(tdb_->db());
  EXPECT_THROW(marks.update(std::nan(""), 1'700'000'000'000), RefusedValueError);
  EXPECT_EQ(tdb_->count("trigger_watermarks"), 0);
}

TEST_F(TriggerRepositoryTest, ManyThreadsRacingForOneConditionExactlyOneWins) {
  for (int round = 0; round < 5; ++round) {
    auto config = tdb_->config();
    config.max_connections = 12;
    Database db(config);
    TriggerRepository repo(db);
    const std::string cid = "race_" + std::to_string(round);
    constexpr int kThreads = 12;
    std::barrier start(kThreads);
    std::atomic<int> recorded{0}, same{0}, other{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        start.arrive_and_wait();
        // Two threads per token, six tokens: same-token and other-token duplicates both occur.
        switch (repo.record_first(sample("tok" + std::to_string(i / 2), cid))) {
          case TriggerOutcome::Recorded: ++recorded; break;
          case TriggerOutcome::DuplicateSameToken: ++same; break;
          case TriggerOutcome::DuplicateOtherToken: ++other; break;
        }
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(recorded.load(), 1);
    EXPECT_EQ(same.load(), 1);
    EXPECT_EQ(other.load(), kThreads - 2);
    EXPECT_EQ(tdb_->count("SELECT count(*) FROM polymarket_first_triggers WHERE condition_id = '" + cid + "'"), 1);
  }
}

TEST_F(TriggerRepositoryTest, RecordFirstManyClassifiesLikeOneByOne) {
  TriggerRepository repo(tdb_->db());
  repo.create(sample("A", "c1", 0.95));
  const auto outcomes = repo.record_first_many({sample("A", "c1", 0.95), sample("B", "c1", 0.95), sample("C", "c2", 0.9),
                                                sample("C", "c2", 0.9), sample("D", "c2", 0.9), sample("E", "c3", 0.5),
                                                sample("E", "c1", 0.9)});
  const std::vector<TriggerOutcome> expected = {
      TriggerOutcome::DuplicateSameToken, TriggerOutcome::DuplicateOtherToken, TriggerOutcome::Recorded,
      TriggerOutcome::DuplicateSameToken, TriggerOutcome::DuplicateOtherToken, TriggerOutcome::Recorded,
      TriggerOutcome::Recorded};
  EXPECT_EQ(outcomes, expected);
  EXPECT_EQ(repo.count(), 4);
  EXPECT_TRUE(repo.has_triggered("C", "c2", 0.9));
  EXPECT_FALSE(repo.has_triggered("D", "c2", 0.9));
  EXPECT_TRUE(repo.record_first_many({}).empty());
  EXPECT_THROW(repo.record_first_many({sample("X", "")}), std::invalid_argument);
}

// Random batches: the batch claim gives exactly the outcomes and rows of record_first in order.
TEST_F(TriggerRepositoryTest, RecordFirstManyMatchesSequentialClaimsOnRandomBatches) {
  TriggerRepository repo(tdb_->db());
  std::mt19937 rng(12345);
  const double thresholds[] = {0.1, 0.3, 0.7, 0.95, 1.0};
  for (int round = 0; round < 20; ++round) {
    std::vector<PolymarketFirstTrigger> seed_rows, batch;
    auto random_trigger = [&] {
      return sample("tok" + std::to_string(rng() % 4), "cond" + std::to_string(rng() % 3), thresholds[rng() % 5],
                    1'700'000'000'000 + static_cast<std::int64_t>(rng() % 1000));
    };
    for (int i = 0; i < 3; ++i) seed_rows.push_back(random_trigger());
    for (int i = 0; i < 25; ++i) batch.push_back(random_trigger());
    auto rows = [&] {
      pqxx::connection c(tdb_->url());
      pqxx::nontransaction tx(c);
      std::vector<std::string> out;
      for (const auto& r : tx.exec("SELECT token_id || '/' || condition_id || '/' || threshold || '/' || trigger_timestamp "
                                   "FROM polymarket_first_triggers ORDER BY 1"))
        out.push_back(r[0].as<std::string>());
      return out;
    };
    tdb_->exec("TRUNCATE polymarket_first_triggers");
    for (const auto& t : seed_rows) repo.record_first(t);
    std::vector<TriggerOutcome> one_by_one;
    for (const auto& t : batch) one_by_one.push_back(repo.record_first(t));
    const auto rows_one_by_one = rows();
    tdb_->exec("TRUNCATE polymarket_first_triggers");
    for (const auto& t : seed_rows) repo.record_first(t);
    EXPECT_EQ(repo.record_first_many(batch), one_by_one) << "round " << round;
    EXPECT_EQ(rows(), rows_one_by_one) << "round " << round;
  }
}

// Issue 16 risk 4: outcomes must not depend on how the session prints a float4. With
// extra_float_digits = 0 the server prints 0.1234567 as 0.123457, which a client-side strtof of
// that text would not match: a claim this batch stored was once reported as DuplicateOtherToken.
TEST_F(TriggerRepositoryTest, RecordFirstManyOutcomesDoNotDependOnTheSessionsFloatFormat) {
  pqxx::connection c(tdb_->url());
  pqxx::nontransaction(c).exec("SET extra_float_digits = 0");
  auto claim = [&](const std::vector<PolymarketFirstTrigger>& batch) {
    pqxx::work tx(c);
    auto outcomes = TriggerRepository(tx).record_first_many(batch);
    tx.commit();
    return outcomes;
  };
  ASSERT_EQ(pqxx::nontransaction(c).exec1("SELECT 0.1234567::real::text")[0].as<std::string>(), "0.123457");
  const auto first = sample("0xtokA", "0xcond", 0.1234567);
  EXPECT_EQ(claim({first, sample("0xtokB", "0xcond", 0.1234567), first}),
            (std::vector<TriggerOutcome>{TriggerOutcome::Recorded, TriggerOutcome::DuplicateOtherToken,
                                         TriggerOutcome::DuplicateSameToken}));
  // The stored claim, seen from a later batch in the same session.
  EXPECT_EQ(claim({first, sample("0xtokB", "0xcond", 0.1234567), sample("0xtokB", "0xcond", 0.1234568)}),
            (std::vector<TriggerOutcome>{TriggerOutcome::DuplicateSameToken, TriggerOutcome::DuplicateOtherToken,
                                         TriggerOutcome::Recorded}));
  EXPECT_EQ(tdb_->count("polymarket_first_triggers"), 2);
}

// D8/D12: created_at is stored as the canonical UTC text whatever ISO form the caller used.
TEST_F(TriggerRepositoryTest, CreatedAtIsStoredCanonical) {
  TriggerRepository repo(tdb_->db());
  auto t = sample("0xtokA");
  t.created_at = "2024-01-10 10:00";
  EXPECT_EQ(repo.create(t).row.created_at, "2024-01-10T10:00:00.000000Z");
  auto zoned = sample("0xtokB", "0xcond2");
  zoned.created_at = "2024-01-10T09:00:00+00:00";
  EXPECT_EQ(repo.record_first(zoned), TriggerOutcome::Recorded);
  EXPECT_EQ(repo.get_by_condition("0xcond2").at(0).created_at, "2024-01-10T09:00:00.000000Z");
  auto garbage = sample("0xtokC", "0xcond3");
  garbage.created_at = "yesterday";
  EXPECT_THROW(repo.record_first(garbage), std::invalid_argument);
  EXPECT_THROW(repo.create(garbage), std::invalid_argument);
  EXPECT_EQ(repo.count(), 2);
}

TEST_F(TriggerRepositoryTest, ListsOrderedNewestFirst) {
  TriggerRepository repo(tdb_->db());
  repo.create(sample("0xtoken123", "0xabc123", 0.95, T0 + 1000));
  repo.create(sample("0xtoken123", "0xabc123", 0.90, T0 + 2000));
  repo.create(sample("0xother", "0xdef", 0.95, T0 + 3000));
  auto by_token = repo.get_by_token("0xtoken123");
  ASSERT_EQ(by_token.size(), 2u);
  EXPECT_EQ(by_token[0].trigger_timestamp, T0 + 2000);
  EXPECT_EQ(repo.get_by_token("0xtoken123", 1).size(), 1u);
  auto by_cond = repo.get_by_condition("0xdef");
  ASSERT_EQ(by_cond.size(), 1u);
  EXPECT_EQ(by_cond[0].condition_id, "0xdef");
  EXPECT_EQ(repo.get_recent(T0 + 1500).size(), 2u);
  auto at_95 = repo.get_recent(0, 0.95);  // a REAL threshold compared with a double parameter
  ASSERT_EQ(at_95.size(), 2u);
  EXPECT_EQ(at_95[0].trigger_timestamp, T0 + 3000);
}

// get_recent's since is epoch ms, as trigger_timestamp is: a since in seconds (a caller thinking
// in the original's unit) is below every stored trigger and returned them all [no error, every
// row], one of microsecond size none. Both are refused (TimestampUnitError) before any SQL; 0 (or
// less) still means from the beginning.
TEST_F(TriggerRepositoryTest, GetRecentRefusesASinceOfAnotherUnit) {
  TriggerRepository repo(tdb_->db());
  repo.create(sample("0xold", "0xabc123", 0.95, T0 - 86'400'000));
  repo.create(sample("0xnew", "0xdef", 0.95, T0));
  EXPECT_THROW(repo.get_recent((T0 - 3'600'000) / 1000), TimestampUnitError);  // an hour ago, in seconds
  EXPECT_THROW(repo.get_recent((T0 - 3'600'000) * 1000), TimestampUnitError);  // in microseconds
  try {
    repo.get_recent(1'700'000'000, 0.95);
    ADD_FAILURE() << "a since in seconds was taken";
  } catch (const TimestampUnitError& e) {
    EXPECT_NE(std::string(e.what()).find("looks like epoch seconds"), std::string::npos) << e.what();
  }
  EXPECT_EQ(repo.get_recent(T0 - 3'600'000).size(), 1u);  // the same hour in milliseconds
  EXPECT_EQ(repo.get_recent(0).size(), 2u);
}

TEST_F(TriggerRepositoryTest, WatermarkStartsAtZeroAndNeverGoesBack) {
  TriggerWatermarkRepository marks(tdb_->db());
  EXPECT_EQ(marks.get_timestamp(0.95), 0);
  auto wm = marks.update(0.95, T0 + 5000);
  EXPECT_NEAR(wm.threshold, 0.95, 1e-6);
  EXPECT_EQ(wm.last_timestamp, T0 + 5000);
  marks.update(0.95, T0 + 1000);
  EXPECT_EQ(marks.get_timestamp(0.95), T0 + 5000);
  TriggerWatermarkRepository marks2(tdb_->db());
  marks2.update(0.90, T0 + 1000);
  marks2.update(0.90, T0 + 2000);
  EXPECT_EQ(marks2.get_timestamp(0.90), T0 + 2000);
  marks2.update(0.90, T0 + 1000);
  EXPECT_EQ(marks2.get_timestamp(0.90), T0 + 2000);
  EXPECT_EQ(tdb_->count("trigger_watermarks"), 2);  // 0.95 and 0.90 are distinct keys
}

// Thresholds that are one REAL are one watermark row: the statement touched that row twice and the
// server refused the whole advance (21000, "cannot affect row a second time").
TEST_F(TriggerRepositoryTest, AdvanceTakesThresholdsThatAreOneRealAsOneRowAtTheNewest) {
  TriggerWatermarkRepository marks(tdb_->db());
  const std::vector<TriggerWatermarkRepository::Advance> batch{
      {0.95, T0 + 10, now_iso()}, {0.9500000001, T0 + 30, now_iso()}, {0.95, T0 + 20, now_iso()},
      // Halfway between two floats: a cast rounds it to 0.5, PostgreSQL reads its text as 0.50000006.
      {0.5000000298023223876953125, T0 + 5, now_iso()}, {0.50000006, T0 + 1, now_iso()}};
  EXPECT_EQ(marks.advance(batch), 2u);
  EXPECT_EQ(tdb_->count("trigger_watermarks"), 2);
  EXPECT_EQ(marks.get_timestamp(0.95), T0 + 30);
  EXPECT_EQ(marks.get_timestamp(0.50000006), T0 + 5);
  EXPECT_FALSE(marks.get(0.5));
}

// advance() stored the caller's updated_at as given: "" in a NOT NULL time column, or a format
// that text ordering and GREATEST disagree with (D8). It is the canonical text now, empty is now,
// and what is no time is refused before anything is written.
TEST_F(TriggerRepositoryTest, AdvanceStoresUpdatedAtInTheOneFormatAndRefusesTextThatIsNoTime) {
  TriggerWatermarkRepository marks(tdb_->db());
  const std::vector<TriggerWatermarkRepository::Advance> batch{{0.95, T0 + 10, ""},
                                                                {0.90, T0 + 10, "2026-01-10 10:00:00"}};
  EXPECT_EQ(marks.advance(batch), 2u);
  const auto now_text = marks.get(0.95)->updated_at;
  EXPECT_EQ(now_text.size(), std::string("2026-01-10T10:00:00.000000Z").size()) << now_text;
  EXPECT_TRUE(parse_iso(now_text)) << now_text;
  EXPECT_EQ(marks.get(0.90)->updated_at, "2026-01-10T10:00:00.000000Z");
  const std::vector<TriggerWatermarkRepository::Advance> bad{{0.80, T0 + 10, now_iso()}, {0.85, T0 + 10, "yesterday"}};
  EXPECT_THROW(marks.advance(bad), std::invalid_argument);
  EXPECT_FALSE(marks.get(0.80)) << "a refused advance wrote part of its marks";
}

// The message of the TimestampUnitError `call` throws, or "no exception".
template <class Call>
std::string time_error_of(Call&& call) {
  try {
    call();
  } catch (const TimestampUnitError& e) {
    return e.what();
  }
  return "no exception";
}

// schema.md: trigger_timestamp is epoch milliseconds. Every trigger write refuses a value of
// another size (a seconds one is never "recent", a microsecond one always is) before any SQL, and
// nothing of a batch holding one is recorded.
TEST_F(TriggerRepositoryTest, WritesRefuseTriggerTimesThatAreNotMilliseconds) {
  TriggerRepository repo(tdb_->db());
  const auto in_seconds = sample("A", "c", 0.95, 1'700'000'000);
  const std::string expected =
      "polymarket_first_triggers.trigger_timestamp of trigger (A, c, 0.95) 1700000000 looks like epoch seconds but "
      "the unit of trigger timestamps is milliseconds (ms)";
  EXPECT_EQ(time_error_of([&] { repo.record_first(in_seconds); }), expected);
  EXPECT_EQ(time_error_of([&] { repo.record_first_many({sample("B", "d", 0.5), in_seconds}); }), expected);
  EXPECT_EQ(time_error_of([&] { repo.create(in_seconds); }), expected);
  const std::int64_t now_us = now_epoch_ms() * 1000;
  EXPECT_NE(time_error_of([&] { repo.record_first(sample("A", "c", 0.95, now_us)); }).find("looks like epoch microseconds"),
            std::string::npos);
  EXPECT_NE(time_error_of([&] { repo.create(sample("A", "c", 0.95, 0)); }).find(" 0 must be > 0"), std::string::npos);
  EXPECT_EQ(repo.count(), 0);

  TriggerWatermarkRepository marks(tdb_->db());
  marks.update(0.95, T0);
  EXPECT_EQ(time_error_of([&] { marks.update(0.95, 1'700'000'000); }),
            "trigger watermark of threshold 0.95: last_timestamp 1700000000 looks like epoch seconds but the unit of "
            "trigger timestamps is milliseconds (ms)");
  EXPECT_NE(time_error_of([&] { marks.update(0.95, now_us); }).find("looks like epoch microseconds"), std::string::npos);
  const std::vector<TriggerWatermarkRepository::Advance> batch{{0.5, T0, now_iso()}, {0.95, now_us, now_iso()}};
  EXPECT_NE(time_error_of([&] { marks.advance(batch); }).find("threshold 0.95: last_timestamp " + std::to_string(now_us)),
            std::string::npos);
  EXPECT_EQ(marks.get_timestamp(0.95), T0);  // unchanged
  EXPECT_FALSE(marks.get(0.5));              // nothing of the refused batch was written
}

// The daemon refuses an event time more than a day after its arrival; the library refuses a
// trigger time or trigger watermark more than a day after now. A watermark moved to the far
// future made every later trigger of its threshold look processed, for ever.
TEST_F(TriggerRepositoryTest, WritesRefuseTriggerTimesMoreThanADayAhead) {
  TriggerRepository repo(tdb_->db());
  TriggerWatermarkRepository marks(tdb_->db());
  const std::int64_t now = now_epoch_ms();
  // A minute either side of the bound: the clock moves on between here and the check.
  const std::int64_t too_far = now + kMaxFutureMs + 60'000;
  const std::int64_t within = now + kMaxFutureMs - 60'000;
  const std::string expected = "polymarket_first_triggers.trigger_timestamp of trigger (A, c, 0.95) " +
                               std::to_string(too_far) + " is more than 24 h ahead of now: the newest accepted is ";
  for (const std::string& message :
       {time_error_of([&] { repo.record_first(sample("A", "c", 0.95, too_far)); }),
        time_error_of([&] { repo.record_first_many({sample("B", "d", 0.5, now), sample("A", "c", 0.95, too_far)}); }),
        time_error_of([&] { repo.create(sample("A", "c", 0.95, too_far)); })}) {
    ASSERT_EQ(message.substr(0, expected.size()), expected) << message;
    const std::int64_t bound = std::stoll(message.substr(expected.size()));
    EXPECT_GE(bound, now + kMaxFutureMs);
    EXPECT_LT(bound, too_far);
    EXPECT_EQ(message.substr(message.find(" (epoch")), " (epoch ms)");
  }
  EXPECT_EQ(repo.count(), 0);
  EXPECT_EQ(repo.record_first(sample("A", "c", 0.95, within)), TriggerOutcome::Recorded);

  marks.update(0.95, within);
  EXPECT_NE(time_error_of([&] { marks.update(0.95, too_far); })
                .find("trigger watermark of threshold 0.95: last_timestamp " + std::to_string(too_far) +
                      " is more than 24 h ahead of now"),
            std::string::npos);
  const std::vector<TriggerWatermarkRepository::Advance> batch{{0.5, now, now_iso()}, {0.95, too_far, now_iso()}};
  EXPECT_NE(time_error_of([&] { marks.advance(batch); }).find("is more than 24 h ahead of now"), std::string::npos);
  EXPECT_EQ(marks.get_timestamp(0.95), within);  // later triggers still count as new
  EXPECT_FALSE(marks.get(0.5));
}

}  // namespace
}  // namespace pm
