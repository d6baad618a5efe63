// The base operations of storage-api.md 2.0 (get_by_id, exists, remove, count) on the
// repositories that lacked them (issue 16): TriggerRepository on its primary key (token_id,
// condition_id, threshold), TradeWatermarkRepository on condition_id, TriggerWatermarkRepository
// on its REAL threshold. Real PostgreSQL.
#include <gtest/gtest.h>

#include <stdexcept>

#include <pqxx/pqxx>

#include "repos/trade_repository.h"
#include "repos/trigger_repository.h"
#include "repos/util/clock.h"
#include "tests/support/test_database.h"

namespace pm {
namespace {

constexpr std::int64_t kT0 = 1'700'000'000'000;  // epoch ms, the default unit

class BaseOperationsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { tdb_ = new test::TestDatabase("baseops"); }
  static void TearDownTestSuite() { delete tdb_; }
  void SetUp() override {
    tdb_->exec("TRUNCATE polymarket_first_triggers, trigger_watermarks, trade_watermarks");
  }
  static PolymarketFirstTrigger trigger(std::string token, std::string cid, double threshold) {
    PolymarketFirstTrigger t;
    t.token_id = std::move(token);
    t.condition_id = std::move(cid);
    t.threshold = threshold;
    t.trigger_timestamp = 1'700'000'000'000;
    t.price = 0.95;
    t.created_at = now_iso();
    return t;
  }
  static test::TestDatabase* tdb_;
};
test::TestDatabase* BaseOperationsTest::tdb_ = nullptr;

TEST_F(BaseOperationsTest, TriggerBaseOperationsUseTheWholePrimaryKey) {
  TriggerRepository repo(tdb_->db());
  EXPECT_EQ(repo.count(), 0);
  ASSERT_TRUE(repo.create(trigger("tok-a", "cid-1", 0.95)).inserted);
  ASSERT_TRUE(repo.create(trigger("tok-a", "cid-1", 0.90)).inserted);
  ASSERT_TRUE(repo.create(trigger("tok-b", "cid-2", 0.95)).inserted);
  EXPECT_EQ(repo.count(), 3);

  const TriggerKey key{"tok-a", "cid-1", 0.95};
  const auto row = repo.get_by_id(key);
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->token_id, "tok-a");
  EXPECT_EQ(row->condition_id, "cid-1");
  EXPECT_NEAR(row->threshold, 0.95, 1e-6);  // matched as a REAL: a float8 0.95 would match nothing (D7)
  EXPECT_TRUE(repo.exists(key));

  // Any one part of the key different: no row.
  for (const TriggerKey& other : {TriggerKey{"tok-b", "cid-1", 0.95}, TriggerKey{"tok-a", "cid-2", 0.95},
                                  TriggerKey{"tok-a", "cid-1", 0.85}}) {
    EXPECT_FALSE(repo.get_by_id(other).has_value()) << other.token_id << " " << other.condition_id;
    EXPECT_FALSE(repo.exists(other));
    EXPECT_FALSE(repo.remove(other));
  }
  EXPECT_EQ(repo.count(), 3);

  EXPECT_TRUE(repo.remove(key));
  EXPECT_FALSE(repo.exists(key));
  EXPECT_FALSE(repo.get_by_id(key).has_value());
  EXPECT_FALSE(repo.remove(key)) << "nothing left to delete";
  EXPECT_EQ(repo.count(), 2);
  EXPECT_TRUE(repo.exists({"tok-a", "cid-1", 0.90})) << "only that key was deleted";
}

TEST_F(BaseOperationsTest, ARemovedTriggerFreesItsConditionForG2) {
  TriggerRepository repo(tdb_->db());
  ASSERT_EQ(repo.record_first(trigger("tok-a", "cid-1", 0.95)), TriggerOutcome::Recorded);
  EXPECT_EQ(repo.record_first(trigger("tok-b", "cid-1", 0.95)), TriggerOutcome::DuplicateOtherToken);
  ASSERT_TRUE(repo.remove({"tok-a", "cid-1", 0.95}));
  EXPECT_EQ(repo.record_first(trigger("tok-b", "cid-1", 0.95)), TriggerOutcome::Recorded);
}

TEST_F(BaseOperationsTest, TradeWatermarkBaseOperationsAreKeyedByConditionId) {
  TradeWatermarkRepository repo(tdb_->db());
  EXPECT_EQ(repo.count(), 0);
  EXPECT_FALSE(repo.exists("cid-1"));
  EXPECT_FALSE(repo.get_by_id("cid-1").has_value());
  repo.update("cid-1", kT0);
  repo.update("cid-2", kT0 + 1000);
  EXPECT_EQ(repo.count(), 2);
  ASSERT_TRUE(repo.get_by_id("cid-1").has_value());
  EXPECT_EQ(repo.get_by_id("cid-1")->last_timestamp, kT0);
  EXPECT_EQ(repo.get_by_id("cid-1")->condition_id, repo.get("cid-1")->condition_id);
  EXPECT_TRUE(repo.exists("cid-2"));
  EXPECT_FALSE(repo.exists("cid-3"));
  EXPECT_TRUE(repo.remove("cid-1"));
  EXPECT_FALSE(repo.remove("cid-1"));
  EXPECT_FALSE(repo.exists("cid-1"));
  EXPECT_EQ(repo.get_timestamp("cid-1"), 0) << "a removed watermark reads as 0 again";
  EXPECT_EQ(repo.count(), 1);
}

TEST_F(BaseOperationsTest, TriggerWatermarkBaseOperationsMatchTheThresholdAsAReal) {
  TriggerWatermarkRepository repo(tdb_->db());
  EXPECT_EQ(repo.count(), 0);
  repo.update(0.95, 1'700'000'001'000);
  repo.update(0.9, 1'700'000'002'000);
  EXPECT_EQ(repo.count(), 2);
  // 0.95 is stored as the float4 0.949999988...; a double 0.95 still finds it.
  const auto row = repo.get_by_id(0.95);
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->last_timestamp, 1'700'000'001'000);
  EXPECT_TRUE(repo.exists(0.95));
  EXPECT_TRUE(repo.exists(0.9));
  EXPECT_FALSE(repo.exists(0.85));
  EXPECT_TRUE(repo.remove(0.95));
  EXPECT_FALSE(repo.remove(0.95));
  EXPECT_FALSE(repo.get_by_id(0.95).has_value());
  EXPECT_EQ(repo.count(), 1);
}

TEST_F(BaseOperationsTest, BaseOperationsJoinACallersTransaction) {
  TriggerRepository seed(tdb_->db());
  ASSERT_TRUE(seed.create(trigger("tok-a", "cid-1", 0.95)).inserted);
  TradeWatermarkRepository(tdb_->db()).update("cid-1", kT0);
  struct Undo : std::runtime_error {
    Undo() : std::runtime_error("undo") {}
  };
  EXPECT_THROW(tdb_->db().transaction([&](Transaction& tx) {
    TriggerRepository triggers(tx);
    TradeWatermarkRepository watermarks(tx, TimestampUnit::Milliseconds);
    EXPECT_TRUE(triggers.remove({"tok-a", "cid-1", 0.95}));
    EXPECT_TRUE(watermarks.remove("cid-1"));
    EXPECT_EQ(triggers.count(), 0);
    throw Undo();  // rolled back: both rows are still there
  }),
               Undo);
  EXPECT_TRUE(seed.exists({"tok-a", "cid-1", 0.95}));
  EXPECT_TRUE(TradeWatermarkRepository(tdb_->db()).exists("cid-1"));
}

}  // namespace
}  // namespace pm
