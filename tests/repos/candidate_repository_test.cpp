// CandidateRepository and CandidateWatermarkRepository against a real PostgreSQL (storage-api.md
// 2.0, 2.5, 2.6; fixes for D7, D8, D12, D19, D20, D25, D28 and the status-transition guard).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <optional>
#include <pqxx/nontransaction>
#include <thread>

#include "repos/candidate_repository.h"
#include "repos/pg_errors.h"
#include "repos/timestamp_unit.h"
#include "repos/util/clock.h"
#include "tests/repos/legacy_times.h"
#include "tests/support/test_database.h"

namespace pm {
namespace {

class CandidateRepositoryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { tdb_ = new test::TestDatabase("cands"); }
  static void TearDownTestSuite() { delete tdb_; }
  void SetUp() override { tdb_->exec("TRUNCATE polymarket_candidates, candidate_watermarks RESTART IDENTITY"); }

  static PolymarketCandidate sample(std::string token = "0xtoken123",
                                    std::string created_at = "2026-01-02T03:04:05.000000Z",
                                    std::string status = "pending") {
    PolymarketCandidate c;
    c.token_id = std::move(token);
    c.condition_id = "0xabc123";
    c.threshold = 0.95;
    c.trigger_timestamp = 1'700'000'000'000;
    c.price = 0.95;
    c.status = std::move(status);
    c.score = 0.87;
    c.created_at = std::move(created_at);
    c.model_score = 0.87;
    c.model_version = "v1";
    c.outcome = "Yes";
    c.outcome_index = 0;
    return c;
  }
  static std::vector<std::int32_t> ids(const std::vector<PolymarketCandidate>& rows) {
    std::vector<std::int32_t> out;
    for (const auto& r : rows) out.push_back(r.id);
    return out;
  }
  static test::TestDatabase* tdb_;
};
test::TestDatabase* CandidateRepositoryTest::tdb_ = nullptr;

TEST_F(CandidateRepositoryTest, StatusTextIsTheOriginals) {
  EXPECT_EQ(to_string(CandidateStatus::Pending), "pending");
  EXPECT_EQ(to_string(CandidateStatus::Approved), "approved");
  EXPECT_EQ(to_string(CandidateStatus::Rejected), "rejected");
  EXPECT_EQ(to_string(CandidateStatus::Executed), "executed");
  EXPECT_EQ(parse_candidate_status("executed"), CandidateStatus::Executed);
  EXPECT_FALSE(parse_candidate_status("Pending"));
  EXPECT_FALSE(parse_candidate_status(""));
}

TEST_F(CandidateRepositoryTest, CreateAssignsIdsAndRoundTrips) {
  CandidateRepository repo(tdb_->db());
  auto input = sample();
  input.id = 999;                 // ignored
  input.updated_at = "ignored";   // ignored
  auto a = repo.create(input);
  input.score = 0.123456789;      // float4 keeps about 7 significant digits
  auto b = repo.create(input);    // no conflict clause: a second row
  EXPECT_GT(a.id, 0);
  EXPECT_NE(a.id, b.id);
  EXPECT_NE(a.id, 999);
  EXPECT_EQ(a.token_id, "0xtoken123");
  EXPECT_EQ(a.condition_id, "0xabc123");
  EXPECT_NEAR(a.threshold, 0.95, 1e-6);
  EXPECT_EQ(a.trigger_timestamp, 1'700'000'000'000);
  EXPECT_NEAR(*a.price, 0.95, 1e-6);
  EXPECT_EQ(a.status, "pending");
  EXPECT_NEAR(*a.score, 0.87, 1e-6);
  EXPECT_NE(*b.score, 0.123456789);
  EXPECT_NEAR(*b.score, 0.123456789, 1e-7);
  EXPECT_EQ(a.created_at, "2026-01-02T03:04:05.000000Z");
  EXPECT_EQ(a.model_version, "v1");
  EXPECT_EQ(a.outcome_index, 0);
  EXPECT_FALSE(a.updated_at);
  EXPECT_EQ(repo.count(), 2);
}

// trigger_timestamp is epoch ms (schema.md), as for triggers: create() took a value in seconds,
// or one of microsecond size or days ahead, and stored it [the row inserted]. It refuses them now
// (TimestampUnitError, a RefusedValueError) before any SQL, as every trigger write does.
TEST_F(CandidateRepositoryTest, CreateRefusesANonFinitePriceOrScore) {
  CandidateRepository repo(tdb_->db());
  PolymarketCandidate c = sample();
  c.price = std::nan("");
  EXPECT_THROW(repo.create(c), RefusedValueError);
  c = sample();
  c.model_score = -std::numeric_limits<double>::infinity();
  EXPECT_THROW(repo.create(c), RefusedValueError);
  EXPECT_EQ(tdb_->count("polymarket_candidates"), 0);
}

TEST_F(CandidateRepositoryTest, CreateRefusesATriggerTimestampThatIsNotEpochMilliseconds) {
  CandidateRepository repo(tdb_->db());
  for (const std::int64_t ts : {std::int64_t{1'700'000'000}, std::int64_t{1'700'000'000'000'000}, std::int64_t{0},
                                now_epoch_ms() + 2 * 86'400'000}) {
    PolymarketCandidate c = sample();
    c.trigger_timestamp = ts;
    EXPECT_THROW(repo.create(c), TimestampUnitError) << ts;
  }
  EXPECT_EQ(tdb_->count("polymarket_candidates"), 0);
  PolymarketCandidate in_seconds = sample();
  in_seconds.trigger_timestamp = 1'700'000'000;
  try {
    repo.create(in_seconds);
    ADD_FAILURE() << "a trigger_timestamp in seconds was stored";
  } catch (const TimestampUnitError& e) {
    EXPECT_NE(std::string(e.what()).find("polymarket_candidates.trigger_timestamp"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("looks like epoch seconds"), std::string::npos) << e.what();
  }
  EXPECT_EQ(repo.create(sample()).trigger_timestamp, 1'700'000'000'000);
}

TEST_F(CandidateRepositoryTest, CreateKeepsNullColumnsNull) {
  CandidateRepository repo(tdb_->db());
  PolymarketCandidate c;
  c.token_id = "t";
  c.threshold = 0.9;
  c.trigger_timestamp = 1'700'000'000'000;
  c.status = "pending";
  auto row = repo.create(c);  // empty created_at: now
  EXPECT_FALSE(row.condition_id);
  EXPECT_FALSE(row.price);
  EXPECT_FALSE(row.score);
  EXPECT_FALSE(row.model_score);
  EXPECT_FALSE(row.model_version);
  EXPECT_FALSE(row.outcome);
  EXPECT_FALSE(row.outcome_index);
  EXPECT_EQ(row.created_at.size(), 27u);
  EXPECT_TRUE(parse_iso(row.created_at));
}

TEST_F(CandidateRepositoryTest, CreateStoresCanonicalTimeWhateverTheInputFormat) {
  CandidateRepository repo(tdb_->db());
  EXPECT_EQ(repo.create(sample("a", "2026-01-02 03:04:05")).created_at, "2026-01-02T03:04:05.000000Z");
  EXPECT_EQ(repo.create(sample("b", "2026-01-02T05:04:05+02:00")).created_at,
            "2026-01-02T03:04:05.000000Z");
  EXPECT_EQ(repo.create(sample("c", "2026-01-02T03:04:05.5")).created_at, "2026-01-02T03:04:05.500000Z");
}

TEST_F(CandidateRepositoryTest, CreateRefusesUnknownStatusAndBadTimes) {
  CandidateRepository repo(tdb_->db());
  EXPECT_THROW(repo.create(sample("t", "2026-01-02T03:04:05Z", "Pending")), std::invalid_argument);
  EXPECT_THROW(repo.create(sample("t", "2026-01-02T03:04:05Z", "")), std::invalid_argument);
  EXPECT_THROW(repo.create(sample("t", "yesterday")), std::invalid_argument);
  EXPECT_EQ(repo.count(), 0);
}

TEST_F(CandidateRepositoryTest, GetPendingIsOldestFirstWithIdTieBreakAndLimit) {
  CandidateRepository repo(tdb_->db());
  auto t1 = repo.create(sample("a", "2026-01-02T00:00:02Z"));
  auto t0a = repo.create(sample("b", "2026-01-02T00:00:01Z"));
  auto t0b = repo.create(sample("c", "2026-01-02T00:00:01Z"));  // same time: id decides
  repo.create(sample("d", "2026-01-01T00:00:00Z", "approved"));  // not pending
  EXPECT_EQ(ids(repo.get_pending()), (std::vector<std::int32_t>{t0a.id, t0b.id, t1.id}));
  EXPECT_EQ(ids(repo.get_pending(2)), (std::vector<std::int32_t>{t0a.id, t0b.id}));
  EXPECT_TRUE(repo.get_pending(0).empty());
  EXPECT_THROW(repo.get_pending(-1), std::invalid_argument);
}

TEST_F(CandidateRepositoryTest, GetByStatusIsNewestFirstWithIdTieBreakAndLimit) {
  CandidateRepository repo(tdb_->db());
  auto a = repo.create(sample("a", "2026-01-02T00:00:01Z", "approved"));
  auto b = repo.create(sample("b", "2026-01-02T00:00:01Z", "approved"));
  auto c = repo.create(sample("c", "2026-01-02T00:00:03Z", "approved"));
  repo.create(sample("d", "2026-01-02T00:00:09Z", "rejected"));
  EXPECT_EQ(ids(repo.get_by_status(CandidateStatus::Approved)), (std::vector<std::int32_t>{c.id, b.id, a.id}));
  EXPECT_EQ(ids(repo.get_by_status(CandidateStatus::Approved, 1)), (std::vector<std::int32_t>{c.id}));
  EXPECT_TRUE(repo.get_by_status(CandidateStatus::Executed).empty());
}

// D8: rows of other writers hold other ISO-8601 shapes; every list orders them by time.
TEST_F(CandidateRepositoryTest, ListsOrderOtherWritersTextTimesByTime) {
  test::insert_legacy_rows([](const std::string& at) {
    tdb_->exec("INSERT INTO polymarket_candidates (token_id, threshold, trigger_timestamp, status, created_at) "
               "VALUES ('legacy', 0.95, 1700000000000, 'pending', '" + at + "')");
  });
  CandidateRepository repo(tdb_->db());
  const auto created = [](const PolymarketCandidate& c) { return c.created_at; };
  EXPECT_EQ(test::texts_of(repo.get_pending(), created), test::legacy_oldest_first());
  EXPECT_EQ(test::texts_of(repo.get_pending(1), created),
            std::vector<std::string>{test::kLegacyTimesOldestFirst.front()});
  EXPECT_EQ(test::texts_of(repo.get_by_status(CandidateStatus::Pending), created), test::legacy_newest_first());
  EXPECT_EQ(test::texts_of(repo.get_by_token("legacy"), created), test::legacy_newest_first());
}

TEST_F(CandidateRepositoryTest, GetByTokenHasNoLimit) {
  CandidateRepository(tdb_->db()).create(sample("other"));
  tdb_->db().transaction([](pqxx::work& tx) {
    CandidateRepository repo(tx);
    for (int i = 0; i < 105; ++i)
      repo.create(sample("tok", "2026-01-02T00:00:00Z"));
  });
  CandidateRepository repo(tdb_->db());
  auto rows = repo.get_by_token("tok");
  ASSERT_EQ(rows.size(), 105u);
  EXPECT_GT(rows.front().id, rows.back().id);  // equal times: newest id first
  EXPECT_TRUE(repo.get_by_token("none").empty());
}

TEST_F(CandidateRepositoryTest, UpdateStatusSetsScoreOnlyWhenGiven) {
  CandidateRepository repo(tdb_->db());
  auto c = repo.create(sample());
  auto rescored = repo.update_status(c.id, CandidateStatus::Pending, 0.5);
  ASSERT_TRUE(rescored);
  EXPECT_NEAR(*rescored->score, 0.5, 1e-6);
  ASSERT_TRUE(rescored->updated_at);
  EXPECT_EQ(rescored->updated_at->size(), 27u);
  auto approved = repo.approve(c.id);
  ASSERT_TRUE(approved);
  EXPECT_EQ(approved->status, "approved");
  EXPECT_NEAR(*approved->score, 0.5, 1e-6);  // a nullopt score keeps the stored one
  EXPECT_GE(*approved->updated_at, *rescored->updated_at);
  EXPECT_FALSE(repo.update_status(424242, CandidateStatus::Pending));  // missing row
  EXPECT_FALSE(repo.approve(424242));
}

TEST_F(CandidateRepositoryTest, LifecycleAndRefusedTransitions) {
  CandidateRepository repo(tdb_->db());
  auto c = repo.create(sample());
  EXPECT_FALSE(repo.mark_executed(c.id));  // pending -> executed skips approval
  EXPECT_EQ(repo.get_by_id(c.id)->status, "pending");
  ASSERT_TRUE(repo.approve(c.id));
  EXPECT_FALSE(repo.approve(c.id));  // approved -> approved
  auto executed = repo.mark_executed(c.id);
  ASSERT_TRUE(executed);
  EXPECT_EQ(executed->status, "executed");
  EXPECT_FALSE(repo.reject(c.id, 0.1));  // executed is final
  auto stored = repo.get_by_id(c.id);
  EXPECT_EQ(stored->status, "executed");
  EXPECT_NEAR(*stored->score, 0.87, 1e-6);  // the refused call changed nothing

  auto r = repo.create(sample("r"));
  auto rejected = repo.reject(r.id, 0.2);
  ASSERT_TRUE(rejected);
  EXPECT_EQ(rejected->status, "rejected");
  EXPECT_NEAR(*rejected->score, 0.2, 1e-6);
  EXPECT_FALSE(repo.approve(r.id));
  EXPECT_FALSE(repo.update_status(r.id, CandidateStatus::Pending));

  auto ar = repo.create(sample("ar"));
  repo.approve(ar.id);
  EXPECT_TRUE(repo.reject(ar.id));  // approved -> rejected is allowed
}

TEST_F(CandidateRepositoryTest, TransitionTable) {
  using S = CandidateStatus;
  const S all[] = {S::Pending, S::Approved, S::Rejected, S::Executed};
  int allowed = 0;
  for (S from : all)
    for (S to : all) allowed += can_transition(from, to) ? 1 : 0;
  EXPECT_EQ(allowed, 5);
  EXPECT_TRUE(can_transition(S::Pending, S::Pending));
  EXPECT_TRUE(can_transition(S::Pending, S::Approved));
  EXPECT_TRUE(can_transition(S::Pending, S::Rejected));
  EXPECT_TRUE(can_transition(S::Approved, S::Executed));
  EXPECT_TRUE(can_transition(S::Approved, S::Rejected));
}

TEST_F(CandidateRepositoryTest, ConcurrentExecutionsExactlyOneWins) {
  CandidateRepository repo(tdb_->db());
  auto c = repo.create(sample());
  repo.approve(c.id);
  std::atomic<int> wins{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i)
    threads.emplace_back([&] {
      if (repo.mark_executed(c.id)) ++wins;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(wins.load(), 1);
}

TEST_F(CandidateRepositoryTest, BaseOperations) {
  CandidateRepository repo(tdb_->db());
  EXPECT_EQ(repo.count(), 0);
  EXPECT_FALSE(repo.get_by_id(1));
  EXPECT_FALSE(repo.exists(1));
  EXPECT_FALSE(repo.remove(1));
  auto c = repo.create(sample());
  EXPECT_EQ(repo.get_by_id(c.id)->token_id, "0xtoken123");
  EXPECT_TRUE(repo.exists(c.id));
  EXPECT_EQ(repo.count(), 1);
  EXPECT_TRUE(repo.remove(c.id));
  EXPECT_FALSE(repo.remove(c.id));
  EXPECT_FALSE(repo.exists(c.id));
  EXPECT_EQ(repo.count(), 0);
}

TEST_F(CandidateRepositoryTest, CallersTransactionRollsBackEveryRepository) {
  EXPECT_THROW(tdb_->db().transaction([](pqxx::work& tx) {
    CandidateRepository(tx).create(sample());
    CandidateWatermarkRepository(tx).update(0.95, "2026-01-02T00:00:00Z");
    throw std::runtime_error("abort");
  }),
               std::runtime_error);
  EXPECT_EQ(tdb_->count("polymarket_candidates"), 0);
  EXPECT_EQ(tdb_->count("candidate_watermarks"), 0);
}

TEST_F(CandidateRepositoryTest, WatermarkMissingRow) {
  CandidateWatermarkRepository marks(tdb_->db());
  EXPECT_FALSE(marks.get(0.95));
  EXPECT_FALSE(marks.get_last_created_at(0.95));
  EXPECT_EQ(marks.count(), 0);
}

TEST_F(CandidateRepositoryTest, WatermarkUpdateIsKeyedByFloat4Threshold) {
  CandidateWatermarkRepository marks(tdb_->db());
  auto wm = marks.update(0.95, "2026-01-02T03:04:05Z");
  EXPECT_NEAR(wm.threshold, 0.95, 1e-6);
  EXPECT_EQ(wm.last_created_at, "2026-01-02T03:04:05.000000Z");
  EXPECT_EQ(wm.updated_at.size(), 27u);
  ASSERT_TRUE(marks.get(0.95));  // a double 0.95 finds the float4 key (D7)
  EXPECT_EQ(marks.get_last_created_at(0.95), "2026-01-02T03:04:05.000000Z");
  EXPECT_FALSE(marks.get(0.9));
  EXPECT_TRUE(marks.exists(0.95));
  EXPECT_TRUE(marks.remove(0.95));
  EXPECT_FALSE(marks.get(0.95));
}

TEST_F(CandidateRepositoryTest, WatermarkNeverMovesBackInTime) {
  CandidateWatermarkRepository marks(tdb_->db());
  marks.update(0.95, "2026-01-10T09:00:00Z");
  auto first = marks.get(0.95);
  auto wm = marks.update(0.95, "2026-01-10T08:59:59.999999Z");
  EXPECT_EQ(wm.last_created_at, "2026-01-10T09:00:00.000000Z");
  EXPECT_GE(wm.updated_at, first->updated_at);  // updated_at moves even when the mark does not
  // D8: the text "2026-01-10 10:00" sorts before "2026-01-10T09:00", but it is later in time.
  EXPECT_EQ(marks.update(0.95, "2026-01-10 10:00").last_created_at, "2026-01-10T10:00:00.000000Z");
  EXPECT_EQ(marks.update(0.95, "2026-01-10T12:30:00+02:00").last_created_at,
            "2026-01-10T10:30:00.000000Z");
  EXPECT_THROW(marks.update(0.95, "not a time"), std::invalid_argument);
  EXPECT_EQ(marks.get_last_created_at(0.95), "2026-01-10T10:30:00.000000Z");
}

TEST_F(CandidateRepositoryTest, WatermarkComparesLegacyStoredTextByTime) {
  tdb_->exec("INSERT INTO candidate_watermarks VALUES (0.95, '2026-01-10T11:00:00+00:00', 'x')");
  CandidateWatermarkRepository marks(tdb_->db());
  // Text comparison would take the new value ('.' > '+'); by time the stored one is later.
  EXPECT_EQ(marks.update(0.95, "2026-01-10T11:00:00.000000Z").last_created_at, "2026-01-10T11:00:00.000000Z");
  EXPECT_EQ(marks.update(0.95, "2026-01-10T10:00:00Z").last_created_at, "2026-01-10T11:00:00.000000Z");
  tdb_->exec("UPDATE candidate_watermarks SET last_created_at = 'garbage'");
  EXPECT_EQ(marks.update(0.95, "2026-01-01T00:00:00Z").last_created_at, "2026-01-01T00:00:00.000000Z");
}

TEST_F(CandidateRepositoryTest, ConcurrentWatermarkUpdatesKeepTheLatest) {
  CandidateWatermarkRepository marks(tdb_->db());
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        const int minute = (i * 7 + t * 13) % 60;
        marks.update(0.5, "2026-01-10T10:" + std::string(minute < 10 ? "0" : "") + std::to_string(minute) + ":00Z");
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(marks.get_last_created_at(0.5), "2026-01-10T10:59:00.000000Z");
  EXPECT_EQ(marks.count(), 1);
}

// On a caller's pqxx::nontransaction every statement commits on its own: an older time leaves the
// newer one in place, and update() reports the stored (newer) one.
TEST_F(CandidateRepositoryTest, WatermarkOnAnAutocommitTargetNeverMovesBack) {
  pqxx::connection c(tdb_->url());
  pqxx::nontransaction tx(c);
  CandidateWatermarkRepository marks(tx);
  EXPECT_EQ(marks.update(0.95, "2026-01-10T11:00:00Z").last_created_at, "2026-01-10T11:00:00.000000Z");
  const auto wm = marks.update(0.95, "2026-01-10T10:00:00Z");
  EXPECT_EQ(wm.last_created_at, "2026-01-10T11:00:00.000000Z");
  EXPECT_NEAR(wm.threshold, 0.95, 1e-6);
  EXPECT_EQ(CandidateWatermarkRepository(tdb_->db()).get_last_created_at(0.95), "2026-01-10T11:00:00.000000Z");
  EXPECT_EQ(marks.update(0.95, "2026-01-10T11:00:00.000001Z").last_created_at, "2026-01-10T11:00:00.000001Z");
  tdb_->exec("UPDATE candidate_watermarks SET last_created_at = '2026-01-10T13:00:00+02:00'");  // legacy shape
  EXPECT_EQ(marks.update(0.95, "2026-01-10T10:59:00Z").last_created_at, "2026-01-10T11:00:00.000000Z");
  EXPECT_EQ(marks.count(), 1);
}

// The old update() inserted, read the row with SELECT .. FOR UPDATE, compared in C++ and wrote its
// choice with an unconditional UPDATE. On a caller's nontransaction each of those statements
// commits on its own, so the row lock ended with the SELECT: an update committed between the SELECT
// and the UPDATE was overwritten with an older time. Here that interleaving is forced: a statement
// trigger (test only) holds every UPDATE of candidate_watermarks (an INSERT .. ON CONFLICT DO
// UPDATE fires it too) until `holder` releases an advisory lock; meanwhile `holder` moves the mark
// to 11:00. The update to 10:00 must leave 11:00 and report it.
TEST_F(CandidateRepositoryTest, WatermarkOnAnAutocommitTargetKeepsANewerTimeCommittedMeanwhile) {
  constexpr int kLock = 731'642;
  tdb_->exec(R"(CREATE FUNCTION pm_test_hold_update() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN PERFORM pg_advisory_xact_lock_shared()" + std::to_string(kLock) + R"(); RETURN NULL; END $$)");
  tdb_->exec(R"(CREATE TRIGGER pm_test_hold_update BEFORE UPDATE ON candidate_watermarks
                FOR EACH STATEMENT EXECUTE FUNCTION pm_test_hold_update())");
  struct DropTrigger {
    ~DropTrigger() {
      try {
        tdb_->exec("DROP TRIGGER pm_test_hold_update ON candidate_watermarks; DROP FUNCTION pm_test_hold_update()");
      } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
      }
    }
  } drop_trigger;
  CandidateWatermarkRepository(tdb_->db()).update(0.95, "2026-01-10T09:00:00Z");

  pqxx::connection holder_connection(tdb_->url());
  pqxx::nontransaction holder(holder_connection);
  holder.exec("SELECT pg_advisory_lock(" + std::to_string(kLock) + ")");
  std::optional<CandidateWatermark> reported;
  std::string failure;
  std::thread late([&] {
    try {
      pqxx::connection c(tdb_->url());
      pqxx::nontransaction tx(c);
      reported = CandidateWatermarkRepository(tx).update(0.95, "2026-01-10T10:00:00Z");
    } catch (const std::exception& e) {
      failure = e.what();
    }
  });
  const std::string waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = " +
                              std::to_string(kLock);
  bool held = false;
  for (int i = 0; i < 1000 && !held; ++i) {
    held = tdb_->count(waiting) == 1;
    if (!held) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(held) << "the update to 10:00 never reached its UPDATE";
  if (held) CandidateWatermarkRepository(holder).update(0.95, "2026-01-10T11:00:00Z");  // passes its own lock
  holder.exec("SELECT pg_advisory_unlock(" + std::to_string(kLock) + ")");
  late.join();

  EXPECT_EQ(failure, "");
  ASSERT_TRUE(reported);
  EXPECT_EQ(reported->last_created_at, "2026-01-10T11:00:00.000000Z");
  EXPECT_EQ(CandidateWatermarkRepository(tdb_->db()).get_last_created_at(0.95), "2026-01-10T11:00:00.000000Z");
}

}  // namespace
}  // namespace pm
