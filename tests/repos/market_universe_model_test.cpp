// MarketUniverse's computed fields days_to_end and market_age_days (storage-api.md 3.7, issue
// 16): against a fixed "now", independent of the host's TZ, and on rows read back from
// PostgreSQL (consistent with query()'s server-side day filters).
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

#include "repos/market_universe_repository.h"
#include "repos/util/clock.h"
#include "tests/support/test_database.h"

namespace pm {
namespace {

SystemTime at(const char* iso) {
  auto t = parse_iso(iso);
  if (!t) throw std::invalid_argument(iso);
  return *t;
}

MarketUniverse with_times(std::optional<std::string> end_date, std::optional<std::string> created_at) {
  MarketUniverse m;
  m.condition_id = "cid";
  m.question = "q";
  m.end_date = std::move(end_date);
  m.created_at = std::move(created_at);
  return m;
}

const SystemTime kNow = at("2026-01-01T00:00:00Z");

TEST(MarketUniverseModel, DaysToEndIsFractionalAndNeverNegative) {
  EXPECT_DOUBLE_EQ(*with_times("2026-01-11T12:00:00Z", std::nullopt).days_to_end(kNow), 10.5);
  EXPECT_DOUBLE_EQ(*with_times("2026-01-01T06:00:00Z", std::nullopt).days_to_end(kNow), 0.25);
  EXPECT_DOUBLE_EQ(*with_times("2025-12-25T00:00:00Z", std::nullopt).days_to_end(kNow), 0.0) << "ended: 0";
  EXPECT_FALSE(with_times(std::nullopt, std::nullopt).days_to_end(kNow).has_value());
}

TEST(MarketUniverseModel, MarketAgeIsFractionalAndNotClamped) {
  EXPECT_DOUBLE_EQ(*with_times(std::nullopt, "2025-12-31T00:00:00Z").market_age_days(kNow), 1.0);
  EXPECT_DOUBLE_EQ(*with_times(std::nullopt, "2025-12-01T18:00:00Z").market_age_days(kNow), 30.25);
  EXPECT_DOUBLE_EQ(*with_times(std::nullopt, "2026-01-01T12:00:00Z").market_age_days(kNow), -0.5)
      << "a creation time in the future gives a negative age, as in the original";
  EXPECT_FALSE(with_times(std::nullopt, std::nullopt).market_age_days(kNow).has_value());
}

TEST(MarketUniverseModel, AnOffsetInTheTextIsHonoured) {
  // 02:00 at +02:00 is midnight UTC: one day after kNow (the original dropped the offset: 1.083).
  EXPECT_DOUBLE_EQ(*with_times("2026-01-02T02:00:00+02:00", std::nullopt).days_to_end(kNow), 1.0);
  // No zone means UTC; a space instead of T is accepted.
  EXPECT_DOUBLE_EQ(*with_times(std::nullopt, "2025-12-31 00:00:00").market_age_days(kNow), 1.0);
}

TEST(MarketUniverseModel, TheHostTimeZoneDoesNotMatter) {
  const char* old = std::getenv("TZ");
  const std::optional<std::string> saved = old ? std::optional<std::string>(old) : std::nullopt;
  setenv("TZ", "America/New_York", 1);
  tzset();
  const auto m = with_times("2026-01-11T12:00:00Z", "2025-12-31T00:00:00Z");
  const double to_end = *m.days_to_end(kNow);
  const double age = *m.market_age_days(kNow);
  if (saved) setenv("TZ", saved->c_str(), 1);
  else unsetenv("TZ");
  tzset();
  EXPECT_DOUBLE_EQ(to_end, 10.5);
  EXPECT_DOUBLE_EQ(age, 1.0);
}

TEST(MarketUniverseModel, UnreadableTextThrowsNamingTheField) {
  try {
    (void)with_times("next tuesday", std::nullopt).days_to_end(kNow);
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("end_date"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)with_times(std::nullopt, "").market_age_days(kNow), std::invalid_argument);
}

TEST(MarketUniverseModel, TheDefaultNowIsTheSystemClock) {
  const auto now = std::chrono::system_clock::now();
  const auto m = with_times(format_iso(now + std::chrono::hours(48)), format_iso(now - std::chrono::hours(12)));
  EXPECT_NEAR(*m.days_to_end(), 2.0, 0.01);
  EXPECT_NEAR(*m.market_age_days(), 0.5, 0.01);
}

class MarketUniverseModelDbTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { tdb_ = new test::TestDatabase("universe_model"); }
  static void TearDownTestSuite() { delete tdb_; }
  void SetUp() override { tdb_->exec("TRUNCATE market_universe"); }
  static test::TestDatabase* tdb_;
};
test::TestDatabase* MarketUniverseModelDbTest::tdb_ = nullptr;

TEST_F(MarketUniverseModelDbTest, ARowReadBackComputesTheSameDays) {
  MarketUniverseRepository repo(tdb_->db());
  repo.upsert(with_times("2026-01-11T12:00:00+00:00", "2025-12-01T18:00:00Z"));
  const auto stored = repo.get_by_condition_id("cid");
  ASSERT_TRUE(stored.has_value());
  EXPECT_DOUBLE_EQ(*stored->days_to_end(kNow), 10.5);
  EXPECT_DOUBLE_EQ(*stored->market_age_days(kNow), 30.25);
}

TEST_F(MarketUniverseModelDbTest, TheClientSideDaysAgreeWithQuerysServerSideFilters) {
  MarketUniverseRepository repo(tdb_->db());
  const auto now = std::chrono::system_clock::now();
  repo.upsert(with_times(format_iso(now + std::chrono::hours(24 * 10)), format_iso(now - std::chrono::hours(24 * 3))));
  const auto m = repo.get_by_condition_id("cid");
  ASSERT_TRUE(m.has_value());
  const double to_end = *m->days_to_end();
  const double age = *m->market_age_days();
  EXPECT_NEAR(to_end, 10.0, 0.01);
  EXPECT_NEAR(age, 3.0, 0.01);
  MarketQuery q;
  q.min_days_to_end = to_end - 0.01;
  q.max_days_to_end = to_end + 0.01;
  q.min_market_age_days = age - 0.01;
  q.max_market_age_days = age + 0.01;
  EXPECT_EQ(repo.query(q).size(), 1u);
  q.min_days_to_end = to_end + 0.01;
  q.max_days_to_end = std::nullopt;
  EXPECT_TRUE(repo.query(q).empty());
}

}  // namespace
}  // namespace pm
