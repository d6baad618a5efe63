// TradeApprovalRepository and ApprovalAlertRepository against a real PostgreSQL (storage-api.md
// 2.12, 2.13; fixes for D7, D8, D9, D20, D24, D25, D28).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include <atomic>
#include <barrier>
#include <chrono>
#include <thread>

#include <pqxx/pqxx>

#include "repos/approval_repository.h"
#include "repos/pg_errors.h"
#include "repos/util/clock.h"
#include "tests/repos/legacy_times.h"
#include "tests/support/process.h"
#include "tests/support/test_database.h"

namespace pm {
namespace {

using std::chrono::hours;
using std::chrono::system_clock;

// A time relative to now in the canonical format, or in the form a legacy writer used
// (`YYYY-MM-DD HH:MM:SS`, which sorts before any canonical text of the same day).
std::string iso_in(system_clock::duration offset) { return format_iso(system_clock::now() + offset); }
std::string legacy_in(system_clock::duration offset) {
  std::string s = iso_in(offset).substr(0, 19);
  s[10] = ' ';
  return s;
}

class ApprovalRepositoryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { tdb_ = new test::TestDatabase("approvals"); }
  static void TearDownTestSuite() { delete tdb_; }
  void SetUp() override { tdb_->exec("TRUNCATE trade_approvals, approval_alerts"); }

  static TradeApproval approval(std::string token = "tok", std::optional<std::string> expires_at = std::nullopt,
                                std::string approved_at = "2026-01-02T00:00:00Z") {
    TradeApproval a;
    a.token_id = std::move(token);
    a.condition_id = "0xabc123";
    a.approved_at = std::move(approved_at);
    a.expires_at = std::move(expires_at);
    a.max_price = 0.95;
    return a;
  }
  static ApprovalAlert alert(std::string token = "tok", std::string alerted_at = "2026-01-02T00:00:00Z") {
    ApprovalAlert a;
    a.token_id = std::move(token);
    a.condition_id = "0xabc123";
    a.question = "Will it rain?";
    a.price = 0.95;
    a.model_score = 0.91;
    a.alerted_at = std::move(alerted_at);
    return a;
  }
  static void insert_raw_approval(const std::string& token, const std::string& expires_at,
                                  const std::string& status = "pending") {
    tdb_->exec("INSERT INTO trade_approvals (token_id, approved_at, expires_at, status) VALUES ('" + token +
               "', '2026-01-01T00:00:00Z', '" + expires_at + "', '" + status + "')");
  }
  static std::string status_of(const std::string& token) {
    return *TradeApprovalRepository(tdb_->db()).get_by_token(token)->status;
  }
  static test::TestDatabase* tdb_;
};
test::TestDatabase* ApprovalRepositoryTest::tdb_ = nullptr;

TEST_F(ApprovalRepositoryTest, StatusText) {
  EXPECT_EQ(to_string(ApprovalStatus::Pending), "pending");
  EXPECT_EQ(to_string(ApprovalStatus::Executed), "executed");
  EXPECT_EQ(to_string(ApprovalStatus::Expired), "expired");
  EXPECT_EQ(parse_approval_status("expired"), ApprovalStatus::Expired);
  EXPECT_FALSE(parse_approval_status("approved"));
}

TEST_F(ApprovalRepositoryTest, CreateRoundTripsWithModelDefaults) {
  TradeApprovalRepository repo(tdb_->db());
  TradeApproval a;
  a.token_id = "tok";
  a.approved_at = "2026-01-02 10:00:00";
  a.expires_at = "2026-01-02T12:00:00+01:00";
  auto row = repo.create(a);
  EXPECT_EQ(row.token_id, "tok");
  EXPECT_FALSE(row.condition_id);
  EXPECT_EQ(row.approved_at, "2026-01-02T10:00:00.000000Z");
  EXPECT_EQ(row.expires_at, "2026-01-02T11:00:00.000000Z");
  EXPECT_EQ(row.approved_by, "telegram");
  EXPECT_NEAR(*row.max_price, 0.98, 1e-6);
  EXPECT_EQ(row.status, "pending");
  EXPECT_FALSE(row.executed_at);
  EXPECT_EQ(repo.get_by_token("tok")->approved_at, row.approved_at);
  EXPECT_FALSE(repo.get_by_token("none"));
}

TEST_F(ApprovalRepositoryTest, CreateValidates) {
  TradeApprovalRepository repo(tdb_->db());
  auto a = approval();
  a.status = "approved";
  EXPECT_THROW(repo.create(a), std::invalid_argument);
  a.status.reset();
  EXPECT_THROW(repo.create(a), std::invalid_argument);
  EXPECT_THROW(repo.create(approval("tok", "tomorrow")), std::invalid_argument);
  EXPECT_THROW(repo.create(approval("tok", std::nullopt, "today")), std::invalid_argument);
  EXPECT_EQ(repo.count(), 0);
  auto now_row = repo.create(approval("tok", std::nullopt, ""));
  EXPECT_EQ(now_row.approved_at.size(), 27u);
  EXPECT_FALSE(now_row.expires_at);
}

// A NaN max_price was stored, and PostgreSQL orders NaN above every number: `max_price >= price`
// held for any price, so get_valid approved every order on the token. Non-finite values are
// refused, naming the column, and nothing is stored.
TEST_F(ApprovalRepositoryTest, ANonFiniteMaxPriceIsRefusedAndApprovesNothing) {
  TradeApprovalRepository repo(tdb_->db());
  for (const double bad : {std::nan(""), std::numeric_limits<double>::infinity()}) {
    auto a = approval();
    a.max_price = bad;
    try {
      repo.create(a);
      ADD_FAILURE() << "max_price " << bad << " was stored";
    } catch (const RefusedValueError& e) {
      EXPECT_NE(std::string(e.what()).find("trade_approvals.max_price"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(repo.count(), 0);
  EXPECT_FALSE(repo.get_valid("tok", 5.0));
}

// get_valid() then mark_executed() let two executors both see an approval valid and both trade.
// claim() gives it to exactly one of them; it refuses a price above the cap and an expired
// approval, leaving them pending.
TEST_F(ApprovalRepositoryTest, ClaimGivesAnApprovalToExactlyOneOfRacingExecutors) {
  TradeApprovalRepository repo(tdb_->db());
  for (int round = 0; round < 20; ++round) {
    repo.create(approval("race"));  // pending again: a new cycle
    std::barrier start(2);
    std::atomic<int> won{0};
    const auto executor = [&] {
      start.arrive_and_wait();
      if (const auto claimed = repo.claim("race", 0.9); claimed && claimed->status == "executed") ++won;
    };
    std::thread a(executor), b(executor);
    a.join();
    b.join();
    EXPECT_EQ(won.load(), 1) << "round " << round;
  }
  EXPECT_EQ(repo.get_by_token("race")->status, "executed");
  EXPECT_FALSE(repo.claim("race", 0.9)) << "claimed twice";
  repo.create(approval("cap"));
  EXPECT_FALSE(repo.claim("cap", 0.99));  // max_price 0.95
  EXPECT_EQ(repo.get_by_token("cap")->status, "pending");
  repo.create(approval("old", iso_in(-hours(1))));
  EXPECT_FALSE(repo.claim("old", 0.5));
  EXPECT_EQ(repo.get_by_token("old")->status, "pending");
  // Expiry by time, in the forms other writers store (as get_valid reads them); one that does not
  // parse counts as expired.
  insert_raw_approval("legacy_future", legacy_in(hours(1)));
  insert_raw_approval("legacy_past", legacy_in(-hours(1)));
  insert_raw_approval("garbled", "tomorrow");
  tdb_->exec("UPDATE trade_approvals SET max_price = 0.95 WHERE token_id IN ('legacy_future', 'legacy_past', 'garbled')");
  EXPECT_TRUE(repo.claim("legacy_future", 0.5));
  EXPECT_FALSE(repo.claim("legacy_past", 0.5));
  EXPECT_FALSE(repo.claim("garbled", 0.5));
  EXPECT_EQ(status_of("legacy_past"), "pending");
  EXPECT_EQ(status_of("garbled"), "pending");
}

// A claim that waits for the row (another session changing it: a re-approval, an operator) checks
// the expiry when it gets the row, not before its wait: the approval expired meanwhile is not
// claimed. (The first version checked it before the UPDATE; the second against now(), the time its
// statement began.) The wait is seen in pg_stat_activity; the expiry is a real second.
TEST_F(ApprovalRepositoryTest, AClaimThatWaitsForTheRowChecksTheExpiryWhenItGetsIt) {
  TradeApprovalRepository repo(tdb_->db());
  const auto expires = system_clock::now() + std::chrono::seconds(1);
  repo.create(approval("slow", format_iso(expires)));
  pqxx::connection other(tdb_->url());
  pqxx::work holding(other);
  holding.exec0("UPDATE trade_approvals SET approved_by = 'operator' WHERE token_id = 'slow'");
  std::optional<TradeApproval> claimed;
  std::thread executor([&] { claimed = repo.claim("slow", 0.5); });
  const bool waited = test::wait_until([&] {
    return tdb_->count("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE "
                       "'%UPDATE trade_approvals SET status = ''executed''%'") == 1;
  }, std::chrono::seconds(20));
  // The expiry passes while the claim waits (the server's clock, as the claim reads it).
  const bool expired = test::wait_until([&] {
    return tdb_->count("SELECT count(*) FROM trade_approvals WHERE token_id = 'slow' AND pm_text_time(expires_at) < "
                       "clock_timestamp()") == 1;
  }, std::chrono::seconds(20));
  holding.commit();
  executor.join();
  ASSERT_TRUE(waited) << "the claim never waited for the row";
  ASSERT_TRUE(expired);
  EXPECT_FALSE(claimed) << "an approval that expired while the claim waited was claimed";
  EXPECT_EQ(status_of("slow"), "pending");
}

// D24: re-approving an executed token starts a new cycle without the stale executed_at.
TEST_F(ApprovalRepositoryTest, ReapprovalClearsExecutedAt) {
  TradeApprovalRepository repo(tdb_->db());
  repo.create(approval());
  auto executed = repo.mark_executed("tok");
  ASSERT_TRUE(executed);
  ASSERT_TRUE(executed->executed_at);
  auto again = approval("tok", std::nullopt, "2026-02-01T00:00:00Z");
  again.max_price = 0.99;
  again.approved_by = "dashboard";
  auto row = repo.create(again);
  EXPECT_EQ(row.status, "pending");
  EXPECT_FALSE(row.executed_at);
  EXPECT_NEAR(*row.max_price, 0.99, 1e-6);
  EXPECT_EQ(row.approved_by, "dashboard");
  EXPECT_EQ(row.approved_at, "2026-02-01T00:00:00.000000Z");
  EXPECT_EQ(repo.count(), 1);
}

TEST_F(ApprovalRepositoryTest, GetPendingNewestFirstWithTieBreak) {
  TradeApprovalRepository repo(tdb_->db());
  repo.create(approval("b", std::nullopt, "2026-01-02T00:00:00Z"));
  repo.create(approval("a", std::nullopt, "2026-01-02T00:00:00Z"));
  repo.create(approval("c", std::nullopt, "2026-01-03T00:00:00Z"));
  repo.create(approval("d", std::nullopt, "2026-01-04T00:00:00Z"));
  repo.mark_expired("d");
  auto pending = repo.get_pending();
  ASSERT_EQ(pending.size(), 3u);
  EXPECT_EQ(pending[0].token_id, "c");
  EXPECT_EQ(pending[1].token_id, "a");
  EXPECT_EQ(pending[2].token_id, "b");
}

// D8: rows of other writers hold other ISO-8601 shapes; get_pending orders them by time.
TEST_F(ApprovalRepositoryTest, GetPendingOrdersOtherWritersTextTimesByTime) {
  int n = 0;
  test::insert_legacy_rows([&n](const std::string& at) {
    tdb_->exec("INSERT INTO trade_approvals (token_id, approved_at, status) VALUES ('legacy-" +
               std::to_string(++n) + "', '" + at + "', 'pending')");
  });
  const auto approved = [](const TradeApproval& a) { return a.approved_at; };
  EXPECT_EQ(test::texts_of(TradeApprovalRepository(tdb_->db()).get_pending(), approved), test::legacy_newest_first());
}

TEST_F(ApprovalRepositoryTest, GetValidComparesPriceAsFloat4) {
  TradeApprovalRepository repo(tdb_->db());
  repo.create(approval());  // max_price 0.95, stored as float4 0.949999988
  EXPECT_TRUE(repo.get_valid("tok", 0.95));  // a float8 0.95 would be "above" the float4 one
  EXPECT_TRUE(repo.get_valid("tok", 0.5));
  EXPECT_FALSE(repo.get_valid("tok", 0.951));
  EXPECT_FALSE(repo.get_valid("missing", 0.1));
  repo.mark_executed("tok");
  EXPECT_FALSE(repo.get_valid("tok", 0.5));
}

// D8: expiry by time, whatever ISO form the row holds.
TEST_F(ApprovalRepositoryTest, GetValidChecksExpiryByTime) {
  TradeApprovalRepository repo(tdb_->db());
  repo.create(approval("future", iso_in(hours(1))));
  repo.create(approval("past", iso_in(-hours(1))));
  repo.create(approval("never"));
  insert_raw_approval("legacy_future", legacy_in(hours(1)));  // sorts before now_iso as text
  insert_raw_approval("legacy_past", legacy_in(-hours(1)));
  insert_raw_approval("offset_future", iso_in(hours(3)).substr(0, 19) + "+00:00");
  insert_raw_approval("garbage", "soon");
  EXPECT_TRUE(repo.get_valid("future", 0.1));
  EXPECT_FALSE(repo.get_valid("past", 0.1));
  EXPECT_TRUE(repo.get_valid("never", 0.1));
  EXPECT_TRUE(repo.get_valid("legacy_future", 0.1));
  EXPECT_FALSE(repo.get_valid("legacy_past", 0.1));
  EXPECT_TRUE(repo.get_valid("offset_future", 0.1));
  EXPECT_FALSE(repo.get_valid("garbage", 0.1));  // fail closed
}

TEST_F(ApprovalRepositoryTest, TransitionsOnlyFromPending) {
  TradeApprovalRepository repo(tdb_->db());
  repo.create(approval("x"));
  auto executed = repo.mark_executed("x");
  ASSERT_TRUE(executed);
  EXPECT_EQ(executed->status, "executed");
  EXPECT_EQ(executed->executed_at->size(), 27u);
  EXPECT_FALSE(repo.mark_executed("x"));
  EXPECT_FALSE(repo.mark_expired("x"));
  EXPECT_EQ(status_of("x"), "executed");
  EXPECT_EQ(repo.get_by_token("x")->executed_at, executed->executed_at);

  repo.create(approval("y"));
  auto expired = repo.mark_expired("y");
  ASSERT_TRUE(expired);
  EXPECT_EQ(expired->status, "expired");
  EXPECT_FALSE(expired->executed_at);
  EXPECT_FALSE(repo.mark_executed("y"));
  EXPECT_EQ(status_of("y"), "expired");

  EXPECT_FALSE(repo.mark_executed("missing"));
  EXPECT_FALSE(repo.mark_expired("missing"));
}

TEST_F(ApprovalRepositoryTest, ExpireOldExpiresByTimeAndCounts) {
  TradeApprovalRepository repo(tdb_->db());
  EXPECT_EQ(repo.expire_old(), 0);
  repo.create(approval("past", iso_in(-hours(2))));
  repo.create(approval("future", iso_in(hours(2))));
  repo.create(approval("never"));
  insert_raw_approval("legacy_past", legacy_in(-hours(2)));
  insert_raw_approval("legacy_future", legacy_in(hours(2)));
  insert_raw_approval("garbage", "whenever");
  insert_raw_approval("done", legacy_in(-hours(2)), "executed");
  EXPECT_EQ(repo.expire_old(), 3);
  EXPECT_EQ(status_of("past"), "expired");
  EXPECT_EQ(status_of("legacy_past"), "expired");
  EXPECT_EQ(status_of("garbage"), "expired");
  EXPECT_EQ(status_of("future"), "pending");
  EXPECT_EQ(status_of("legacy_future"), "pending");
  EXPECT_EQ(status_of("never"), "pending");
  EXPECT_EQ(status_of("done"), "executed");
  EXPECT_EQ(repo.expire_old(), 0);
}

TEST_F(ApprovalRepositoryTest, ApprovalBaseOperations) {
  TradeApprovalRepository repo(tdb_->db());
  repo.create(approval());
  EXPECT_EQ(repo.count(), 1);
  EXPECT_TRUE(repo.exists("tok"));
  EXPECT_EQ(repo.get_by_id("tok")->token_id, "tok");
  EXPECT_TRUE(repo.remove("tok"));
  EXPECT_FALSE(repo.remove("tok"));
  EXPECT_FALSE(repo.exists("tok"));
}

// ---- Alerts ----

TEST_F(ApprovalRepositoryTest, AlertCreateRoundTrips) {
  ApprovalAlertRepository repo(tdb_->db());
  auto row = repo.create(alert("tok", "2026-01-02T05:00:00+05:00"));
  EXPECT_EQ(row.alerted_at, "2026-01-02T00:00:00.000000Z");
  EXPECT_EQ(row.question, "Will it rain?");
  EXPECT_NEAR(*row.price, 0.95, 1e-6);
  EXPECT_NEAR(*row.model_score, 0.91, 1e-6);
  EXPECT_EQ(row.approved, false);
  auto bare = alert("bare");
  bare.condition_id.reset();
  bare.question.reset();
  bare.price.reset();
  bare.model_score.reset();
  bare.approved.reset();
  auto stored = repo.create(bare);
  EXPECT_FALSE(stored.condition_id);
  EXPECT_FALSE(stored.price);
  EXPECT_EQ(stored.approved, false);  // nullopt is written as false
  EXPECT_THROW(repo.create(alert("bad", "noon")), std::invalid_argument);
}

// D24: the original's upsert reset `approved` to false.
TEST_F(ApprovalRepositoryTest, AlertUpsertOverwritesButNeverUnapproves) {
  ApprovalAlertRepository repo(tdb_->db());
  repo.create(alert());
  auto approved = repo.approve("tok");
  ASSERT_TRUE(approved);
  EXPECT_EQ(approved->approved, true);
  auto again = alert("tok", "2026-01-05T00:00:00Z");
  again.price = 0.97;
  again.question = "new question";
  auto row = repo.create(again);
  EXPECT_EQ(row.approved, true);
  EXPECT_NEAR(*row.price, 0.97, 1e-6);
  EXPECT_EQ(row.question, "new question");
  EXPECT_EQ(row.alerted_at, "2026-01-05T00:00:00.000000Z");
  EXPECT_TRUE(repo.get_pending().empty());
  auto preapproved = alert("pre");
  preapproved.approved = true;
  EXPECT_EQ(repo.create(preapproved).approved, true);
  EXPECT_FALSE(repo.approve("missing"));
}

TEST_F(ApprovalRepositoryTest, AlertPendingNewestFirstWithTieBreak) {
  ApprovalAlertRepository repo(tdb_->db());
  repo.create(alert("b", "2026-01-02T00:00:00Z"));
  repo.create(alert("a", "2026-01-02T00:00:00Z"));
  repo.create(alert("c", "2026-01-03T00:00:00Z"));
  repo.create(alert("d", "2026-01-04T00:00:00Z"));
  repo.approve("d");
  auto pending = repo.get_pending();
  ASSERT_EQ(pending.size(), 3u);
  EXPECT_EQ(pending[0].token_id, "c");
  EXPECT_EQ(pending[1].token_id, "a");
  EXPECT_EQ(pending[2].token_id, "b");
}

TEST_F(ApprovalRepositoryTest, AlertPendingOrdersOtherWritersTextTimesByTime) {
  int n = 0;
  test::insert_legacy_rows([&n](const std::string& at) {
    tdb_->exec("INSERT INTO approval_alerts (token_id, alerted_at) VALUES ('legacy-" + std::to_string(++n) +
               "', '" + at + "')");
  });
  const auto alerted = [](const ApprovalAlert& a) { return a.alerted_at; };
  EXPECT_EQ(test::texts_of(ApprovalAlertRepository(tdb_->db()).get_pending(), alerted), test::legacy_newest_first());
}

// D9: the original's delete_old failed on every call.
TEST_F(ApprovalRepositoryTest, DeleteOldUsesAClientSideCutoff) {
  ApprovalAlertRepository repo(tdb_->db());
  repo.create(alert("old", iso_in(-hours(24 * 8))));
  repo.create(alert("recent", iso_in(-hours(24 * 6))));
  tdb_->exec("INSERT INTO approval_alerts (token_id, alerted_at) VALUES ('legacy_old', '" +
             legacy_in(-hours(24 * 8)) + "'), ('legacy_recent', '" + legacy_in(-hours(24 * 6)) +
             "'), ('garbage', 'last week')");
  EXPECT_EQ(repo.delete_old(), 2);
  EXPECT_FALSE(repo.exists("old"));
  EXPECT_FALSE(repo.exists("legacy_old"));
  EXPECT_TRUE(repo.exists("recent"));
  EXPECT_TRUE(repo.exists("legacy_recent"));
  EXPECT_TRUE(repo.exists("garbage"));  // undatable rows are kept
  EXPECT_EQ(repo.delete_old(7), 0);
  EXPECT_EQ(repo.delete_old(0), 2);
  EXPECT_EQ(repo.count(), 1);
  EXPECT_THROW(repo.delete_old(-1), std::invalid_argument);
}

// days * 24 h in the clock's nanoseconds overflowed past ~292 years: the cut-off wrapped into the
// future and "keep practically everything" deleted every alert.
TEST_F(ApprovalRepositoryTest, DeleteOldWithAHugeNumberOfDaysDeletesNothing) {
  ApprovalAlertRepository repo(tdb_->db());
  repo.create(alert("now", iso_in(hours(0))));
  repo.create(alert("old", iso_in(-hours(24 * 365 * 50))));
  EXPECT_EQ(repo.delete_old(200'000), 0);
  EXPECT_EQ(repo.delete_old(std::numeric_limits<int>::max()), 0);
  EXPECT_EQ(repo.count(), 2);
}

TEST_F(ApprovalRepositoryTest, AlertBaseOperations) {
  ApprovalAlertRepository repo(tdb_->db());
  EXPECT_FALSE(repo.get_by_id("tok"));
  repo.create(alert());
  EXPECT_TRUE(repo.exists("tok"));
  EXPECT_EQ(repo.count(), 1);
  EXPECT_TRUE(repo.remove("tok"));
  EXPECT_EQ(repo.count(), 0);
}

}  // namespace
}  // namespace pm
