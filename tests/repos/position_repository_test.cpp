// PositionRepository, ExitEventRepository and DailyPnlRepository against a real PostgreSQL
// (storage-api.md 2.9-2.11, the original tests T38-T47, and the fixes for D18, D21, D22, D25, D26,
// D28, D30, D32: float4 results are compared with a tolerance).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <barrier>
#include <cmath>
#include <limits>
#include <thread>

#include "repos/util/clock.h"
#include "repos/pg_errors.h"
#include "repos/position_repository.h"
#include "tests/repos/legacy_times.h"
#include "tests/support/test_database.h"

namespace pm {
namespace {

constexpr double kTol = 1e-4;

class PositionRepositoryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { tdb_ = new test::TestDatabase("positions"); }
  static void TearDownTestSuite() { delete tdb_; }
  void SetUp() override { tdb_->exec("TRUNCATE positions, exit_events, daily_pnl RESTART IDENTITY"); }

  // The original fixture's sample position.
  static Position sample(std::string token = "0xtoken123", double cost = 75.0, std::string at = now_iso()) {
    Position p;
    p.token_id = std::move(token);
    p.condition_id = "0xabc123";
    p.outcome = "Yes";
    p.outcome_index = 0;
    p.side = "BUY";
    p.size = 100;
    p.entry_price = 0.75;
    p.entry_cost = cost;
    p.status = "open";
    p.entry_timestamp = at;
    p.created_at = at;
    return p;
  }
  static ExitEvent exit_event(std::int32_t position_id, std::string type = "take_profit",
                              std::string created_at = "2026-01-02T00:00:00Z") {
    ExitEvent e;
    e.position_id = std::to_string(position_id);
    e.token_id = "0xtoken123";
    e.condition_id = "0xabc123";
    e.exit_type = std::move(type);
    e.entry_price = 0.75;
    e.exit_price = 0.9;
    e.size = 100;
    e.gross_pnl = 15;
    e.net_pnl = 14.5;
    e.hours_held = 12.5;
    e.created_at = std::move(created_at);
    return e;
  }
  template <class M>
  static std::vector<std::int32_t> ids(const std::vector<M>& rows) {
    std::vector<std::int32_t> out;
    for (const auto& r : rows) out.push_back(r.id);
    return out;
  }
  static std::string xmin_of_day(const std::string& date) {
    pqxx::connection c(tdb_->url());
    pqxx::nontransaction tx(c);
    return tx.exec_params1("SELECT xmin::text FROM daily_pnl WHERE date = $1", date)[0].as<std::string>();
  }
  static test::TestDatabase* tdb_;
};
test::TestDatabase* PositionRepositoryTest::tdb_ = nullptr;

// A NaN entry_cost was stored, and one such open position made get_total_exposure() NaN: every
// `exposure + cost > limit` check of the bot was then false. Non-finite values are refused in
// every writer of positions, exit events and the daily P&L, naming the column; nothing changes.
TEST_F(PositionRepositoryTest, NonFiniteMoneyIsRefusedAndTheExposureStaysANumber) {
  PositionRepository positions(tdb_->db());
  const Position open = positions.create(sample("0xtok", 75.0));
  const auto refused = [](const auto& write, const std::string& column) {
    try {
      write();
      ADD_FAILURE() << column << ": a non-finite value was stored";
    } catch (const RefusedValueError& e) {
      EXPECT_NE(std::string(e.what()).find(column), std::string::npos) << e.what();
    }
  };
  const double nan = std::nan("");
  const double inf = std::numeric_limits<double>::infinity();
  refused([&] { positions.create(sample("0xnan", nan)); }, "positions.entry_cost");
  refused([&] { Position p = sample("0xinf"); p.size = inf; positions.create(p); }, "positions.size");
  refused([&] { Position p = sample("0xcur"); p.current_price = -inf; positions.create(p); }, "positions.current_price");
  refused([&] { positions.update_price(open.id, nan); }, "positions.current_price");
  refused([&] { positions.close(open.id, inf); }, "positions.current_price");
  refused([&] { positions.close(open.id, 0.9, std::nullopt, nan); }, "positions.realized_pnl");
  refused([&] { positions.resolve(open.id, "Yes", nan); }, "positions.current_value");
  ExitEventRepository exits(tdb_->db());
  refused([&] { ExitEvent e = exit_event(open.id); e.net_pnl = nan; exits.create(e); }, "exit_events.net_pnl");
  DailyPnlRepository days(tdb_->db());
  refused([&] { days.update("2026-01-02", nan, 0, 1, 1, 0); }, "daily_pnl.realized_pnl");

  EXPECT_NEAR(positions.get_total_exposure(), 75.0, kTol);
  ASSERT_EQ(positions.get_open().size(), 1u);
  EXPECT_FALSE(positions.get_open().at(0).current_price.has_value());
  EXPECT_EQ(exits.count(), 0);
}

// ---- The original tests ----

TEST_F(PositionRepositoryTest, T38_CreateAssignsAnId) {
  PositionRepository repo(tdb_->db());
  auto p = repo.create(sample());
  EXPECT_GT(p.id, 0);
  EXPECT_EQ(p.token_id, "0xtoken123");
  EXPECT_NEAR(p.entry_price, 0.75, kTol);
  EXPECT_EQ(p.status, "open");
}

TEST_F(PositionRepositoryTest, T39_GetOpen) {
  PositionRepository repo(tdb_->db());
  repo.create(sample());
  auto open = repo.get_open();
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].status, "open");
}

TEST_F(PositionRepositoryTest, T40_GetOpenByToken) {
  PositionRepository repo(tdb_->db());
  auto p = repo.create(sample());
  auto found = repo.get_open_by_token("0xtoken123");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->id, p.id);
}

TEST_F(PositionRepositoryTest, T41_UpdatePrice) {
  PositionRepository repo(tdb_->db());
  auto p = repo.create(sample());
  auto updated = repo.update_price(p.id, 0.85);
  ASSERT_TRUE(updated);
  EXPECT_NEAR(*updated->current_price, 0.85, kTol);
  EXPECT_NEAR(*updated->current_value, 85.0, kTol);
  EXPECT_NEAR(*updated->unrealized_pnl, 10.0, kTol);
  EXPECT_TRUE(updated->updated_at);
}

TEST_F(PositionRepositoryTest, T42_Close) {
  PositionRepository repo(tdb_->db());
  auto p = repo.create(sample());
  auto closed = repo.close(p.id, 0.90, "exit_123");
  ASSERT_TRUE(closed);
  EXPECT_EQ(closed->status, "closed");
  EXPECT_EQ(closed->exit_order_id, "exit_123");
  EXPECT_EQ(closed->exit_status, "filled");
  EXPECT_EQ(closed->exit_pending, false);
  ASSERT_TRUE(closed->exit_timestamp);
  EXPECT_EQ(closed->exit_timestamp, closed->updated_at);
  EXPECT_NEAR(*closed->realized_pnl, 15.0, kTol);
  EXPECT_NEAR(*closed->unrealized_pnl, 0.0, kTol);
  EXPECT_NEAR(*closed->current_value, 90.0, kTol);
}

TEST_F(PositionRepositoryTest, T43_Resolve) {
  PositionRepository repo(tdb_->db());
  auto p = repo.create(sample());
  auto resolved = repo.resolve(p.id, "won", 100.0);
  ASSERT_TRUE(resolved);
  EXPECT_EQ(resolved->status, "resolved");
  EXPECT_EQ(resolved->resolution, "won");
  EXPECT_NEAR(*resolved->realized_pnl, 25.0, kTol);
  EXPECT_NEAR(*resolved->current_value, 100.0, kTol);
  EXPECT_NEAR(*resolved->unrealized_pnl, 0.0, kTol);
  EXPECT_EQ(resolved->exit_status, "resolved");
  EXPECT_FALSE(resolved->exit_order_id);
  EXPECT_TRUE(resolved->resolved_at);
  EXPECT_FALSE(resolved->current_price);   // untouched
  EXPECT_FALSE(resolved->exit_timestamp);  // untouched
}

TEST_F(PositionRepositoryTest, T44_TotalExposure) {
  PositionRepository repo(tdb_->db());
  EXPECT_EQ(repo.get_total_exposure(), 0.0);
  repo.create(sample("tok_a", 75.0));
  repo.create(sample("tok_b", 50.0));
  EXPECT_NEAR(repo.get_total_exposure(), 125.0, kTol);
  auto closed = repo.create(sample("tok_c", 1000.0));
  repo.close(closed.id, 0.5);
  EXPECT_NEAR(repo.get_total_exposure(), 125.0, kTol);  // only open positions count
}

// D6: a SUM over REAL adds in float4; 1,000 open positions of 75.37 came to 75369.945. The total
// is added in float8: 75370 within a cent.
TEST_F(PositionRepositoryTest, TotalExposureOfManyPositionsDoesNotDriftInFloat4) {
  tdb_->db().transaction([](pqxx::work& tx) {
    PositionRepository positions(tx);
    for (int i = 0; i < 1000; ++i) positions.create(sample("tok_" + std::to_string(i), 75.37));
  });
  EXPECT_NEAR(PositionRepository(tdb_->db()).get_total_exposure(), 75370.0, 0.01);
}

TEST_F(PositionRepositoryTest, T45_CreateExitEvent) {
  PositionRepository positions(tdb_->db());
  ExitEventRepository events(tdb_->db());
  auto p = positions.create(sample());
  auto e = events.create(exit_event(p.id, "take_profit"));
  EXPECT_GT(e.id, 0);
  EXPECT_EQ(e.exit_type, "take_profit");
  EXPECT_EQ(e.status, "pending");
  EXPECT_EQ(e.position_id, std::to_string(p.id));
}

TEST_F(PositionRepositoryTest, T46_GetPendingExitEvents) {
  PositionRepository positions(tdb_->db());
  ExitEventRepository events(tdb_->db());
  auto p = positions.create(sample());
  events.create(exit_event(p.id, "stop_loss"));
  auto pending = events.get_pending();
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].exit_type, "stop_loss");
}

TEST_F(PositionRepositoryTest, T47_MarkExitEventExecuted) {
  PositionRepository positions(tdb_->db());
  ExitEventRepository events(tdb_->db());
  auto e = events.create(exit_event(positions.create(sample()).id));
  auto executed = events.mark_executed(e.id);
  ASSERT_TRUE(executed);
  EXPECT_EQ(executed->status, "executed");
  ASSERT_TRUE(executed->executed_at);
  EXPECT_EQ(executed->executed_at->size(), 27u);
}

// ---- Positions beyond the original tests ----

TEST_F(PositionRepositoryTest, EnumTexts) {
  EXPECT_EQ(to_string(PositionStatus::Open), "open");
  EXPECT_EQ(to_string(PositionStatus::Closed), "closed");
  EXPECT_EQ(to_string(PositionStatus::Resolved), "resolved");
  EXPECT_EQ(to_string(PositionSide::Buy), "BUY");
  EXPECT_EQ(to_string(PositionSide::Sell), "SELL");
  EXPECT_EQ(parse_position_side("SELL"), PositionSide::Sell);
  EXPECT_FALSE(parse_position_side("buy"));
  EXPECT_EQ(parse_position_status("resolved"), PositionStatus::Resolved);
  EXPECT_EQ(to_string(ExitType::StopLoss), "stop_loss");
  EXPECT_EQ(to_string(ExitType::TakeProfit), "take_profit");
  EXPECT_EQ(to_string(ExitType::Manual), "manual");
  EXPECT_EQ(to_string(ExitType::Resolution), "resolution");
  EXPECT_EQ(parse_exit_type("manual"), ExitType::Manual);
  EXPECT_FALSE(parse_exit_type("stoploss"));
  EXPECT_EQ(to_string(ExitEventStatus::Failed), "failed");
  EXPECT_EQ(parse_exit_event_status("executed"), ExitEventStatus::Executed);
}

TEST_F(PositionRepositoryTest, CreateWritesOnlyTheOriginalsColumns) {
  PositionRepository repo(tdb_->db());
  auto input = sample("tok", 75.0, "2026-01-02 03:04:05");
  input.resolution = "won";
  input.exit_order_id = "x";
  input.exit_pending = true;
  input.exit_status = "filled";
  input.exit_timestamp = "2026-01-03T00:00:00Z";
  input.resolved_at = "2026-01-03T00:00:00Z";
  input.updated_at = "2026-01-03T00:00:00Z";
  input.entry_order_id = "entry_1";
  input.market_id = "m1";
  input.description = "d";
  auto p = repo.create(input);
  EXPECT_EQ(p.entry_timestamp, "2026-01-02T03:04:05.000000Z");
  EXPECT_EQ(p.created_at, "2026-01-02T03:04:05.000000Z");
  EXPECT_EQ(p.entry_order_id, "entry_1");
  EXPECT_EQ(p.market_id, "m1");
  EXPECT_EQ(p.side, "BUY");
  EXPECT_NEAR(p.size, 100, kTol);
  EXPECT_NEAR(p.entry_cost, 75, kTol);
  EXPECT_NEAR(*p.realized_pnl, 0.0, kTol);
  EXPECT_FALSE(p.resolution);
  EXPECT_FALSE(p.exit_order_id);
  EXPECT_EQ(p.exit_pending, false);  // DB default
  EXPECT_FALSE(p.exit_status);
  EXPECT_FALSE(p.exit_timestamp);
  EXPECT_FALSE(p.resolved_at);
  EXPECT_FALSE(p.updated_at);
  EXPECT_FALSE(p.current_price);
  EXPECT_FALSE(p.unrealized_pnl);
}

TEST_F(PositionRepositoryTest, CreateDefaultsBothTimesToOneInstant) {
  PositionRepository repo(tdb_->db());
  auto input = sample("tok", 75.0, "");
  input.realized_pnl.reset();  // NULL, not the model default
  auto p = repo.create(input);
  EXPECT_EQ(p.entry_timestamp, p.created_at);
  EXPECT_EQ(p.created_at.size(), 27u);
  EXPECT_FALSE(p.realized_pnl);
}

TEST_F(PositionRepositoryTest, CreateConflictsAndValidation) {
  PositionRepository repo(tdb_->db());
  repo.create(sample("tok", 75.0, "2026-01-02T00:00:00Z"));
  // Same token and entry_timestamp, written in another format: still the same instant.
  EXPECT_THROW(repo.create(sample("tok", 75.0, "2026-01-02T00:00:00+00:00")), pqxx::unique_violation);
  repo.create(sample("tok", 75.0, "2026-01-02T00:00:01Z"));
  auto bad = sample();
  bad.status = "OPEN";
  EXPECT_THROW(repo.create(bad), std::invalid_argument);
  bad = sample();
  bad.side = "buy";
  EXPECT_THROW(repo.create(bad), std::invalid_argument);
  bad = sample();
  bad.entry_timestamp = "now";
  EXPECT_THROW(repo.create(bad), std::invalid_argument);
  EXPECT_EQ(repo.count(), 2);
}

// D22: the original re-closed closed positions and revived their unrealized P&L.
TEST_F(PositionRepositoryTest, OnlyOpenPositionsChange) {
  PositionRepository repo(tdb_->db());
  auto p = repo.create(sample());
  auto closed = repo.close(p.id, 0.90, "exit_123");
  ASSERT_TRUE(closed);
  EXPECT_FALSE(repo.close(p.id, 0.10, "again", -50.0));
  EXPECT_FALSE(repo.update_price(p.id, 0.99));
  EXPECT_FALSE(repo.resolve(p.id, "lost", 0.0));
  auto stored = repo.get_by_id(p.id);
  EXPECT_EQ(stored->status, "closed");
  EXPECT_NEAR(*stored->realized_pnl, 15.0, kTol);
  EXPECT_NEAR(*stored->unrealized_pnl, 0.0, kTol);
  EXPECT_NEAR(*stored->current_price, 0.90, kTol);
  EXPECT_EQ(stored->exit_order_id, "exit_123");
  EXPECT_EQ(stored->updated_at, closed->updated_at);

  auto r = repo.create(sample("tok_r"));
  ASSERT_TRUE(repo.resolve(r.id, "won", 100.0));
  EXPECT_FALSE(repo.close(r.id, 0.5));
  EXPECT_FALSE(repo.resolve(r.id, "lost", 0.0));
  EXPECT_EQ(repo.get_by_id(r.id)->resolution, "won");

  EXPECT_FALSE(repo.update_price(424242, 0.5));
  EXPECT_FALSE(repo.close(424242, 0.5));
  EXPECT_FALSE(repo.resolve(424242, "won", 1.0));
}

TEST_F(PositionRepositoryTest, CloseWithoutOrderIdAndWithGivenPnl) {
  PositionRepository repo(tdb_->db());
  auto p = repo.create(sample());
  auto closed = repo.close(p.id, 0.80, std::nullopt, 3.25);
  ASSERT_TRUE(closed);
  EXPECT_FALSE(closed->exit_order_id);
  EXPECT_FALSE(closed->exit_status);
  EXPECT_NEAR(*closed->realized_pnl, 3.25, kTol);  // the given value wins over size*price-cost
  EXPECT_NEAR(*closed->current_value, 80.0, kTol);
}

TEST_F(PositionRepositoryTest, ConcurrentClosesHaveOneWinner) {
  PositionRepository repo(tdb_->db());
  auto p = repo.create(sample());
  std::atomic<int> wins{0};
  std::barrier start(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      if (repo.close(p.id, 0.5 + 0.1 * i, "exit_" + std::to_string(i))) ++wins;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(wins.load(), 1);
  auto stored = repo.get_by_id(p.id);
  const int winner = std::stoi(stored->exit_order_id->substr(5));
  EXPECT_NEAR(*stored->current_price, 0.5 + 0.1 * winner, kTol);  // fields of one call only
}

// D21: with several open positions on one token the answer is the newest, every time.
TEST_F(PositionRepositoryTest, GetOpenByTokenIsDeterministic) {
  PositionRepository repo(tdb_->db());
  EXPECT_FALSE(repo.get_open_by_token("tok"));
  repo.create(sample("tok", 75.0, "2026-01-02T00:00:00Z"));
  auto newer = repo.create(sample("tok", 75.0, "2026-01-01T00:00:00Z"));  // inserted later
  auto closed = repo.create(sample("tok", 75.0, "2026-01-03T00:00:00Z"));
  repo.close(closed.id, 0.5);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(repo.get_open_by_token("tok")->id, newer.id);
  EXPECT_FALSE(repo.get_open_by_token("other"));
}

TEST_F(PositionRepositoryTest, ListsOrderNewestFirstWithTieBreak) {
  PositionRepository repo(tdb_->db());
  auto a = repo.create(sample("a", 1, "2026-01-02T00:00:01Z"));
  auto b = repo.create(sample("b", 1, "2026-01-02T00:00:01Z"));
  auto c = repo.create(sample("a", 1, "2026-01-02T00:00:05Z"));
  auto d = repo.create(sample("d", 1, "2026-01-02T00:00:09Z"));
  repo.close(d.id, 0.5);
  EXPECT_EQ(ids(repo.get_open()), (std::vector<std::int32_t>{c.id, b.id, a.id}));
  EXPECT_EQ(ids(repo.get_by_status(PositionStatus::Open, 2)), (std::vector<std::int32_t>{c.id, b.id}));
  EXPECT_EQ(ids(repo.get_by_status(PositionStatus::Closed)), (std::vector<std::int32_t>{d.id}));
  EXPECT_TRUE(repo.get_by_status(PositionStatus::Resolved).empty());
  EXPECT_EQ(ids(repo.get_by_token("a")), (std::vector<std::int32_t>{c.id, a.id}));
  EXPECT_TRUE(repo.get_by_token("zzz").empty());
  EXPECT_THROW(repo.get_by_status(PositionStatus::Open, -1), std::invalid_argument);
}

// D8: rows of other writers hold other ISO-8601 shapes; the lists order them by time.
TEST_F(PositionRepositoryTest, ListsOrderOtherWritersTextTimesByTime) {
  test::insert_legacy_rows([](const std::string& at) {
    tdb_->exec("INSERT INTO positions (token_id, size, entry_price, entry_cost, status, entry_timestamp, created_at) "
               "VALUES ('legacy', 1, 0.5, 0.5, 'open', '" + at + "', '" + at + "')");
  });
  PositionRepository repo(tdb_->db());
  const auto created = [](const Position& p) { return p.created_at; };
  EXPECT_EQ(test::texts_of(repo.get_open(), created), test::legacy_newest_first());
  EXPECT_EQ(test::texts_of(repo.get_by_status(PositionStatus::Open), created), test::legacy_newest_first());
  EXPECT_EQ(test::texts_of(repo.get_by_status(PositionStatus::Open, 2), created),
            (std::vector<std::string>{test::kLegacyTimesOldestFirst[5], test::kLegacyTimesOldestFirst[4]}));
  EXPECT_EQ(test::texts_of(repo.get_by_token("legacy"), created), test::legacy_newest_first());
}

TEST_F(PositionRepositoryTest, PositionBaseOperations) {
  PositionRepository repo(tdb_->db());
  auto p = repo.create(sample());
  EXPECT_EQ(repo.count(), 1);
  EXPECT_TRUE(repo.exists(p.id));
  EXPECT_EQ(repo.get_by_id(p.id)->token_id, "0xtoken123");
  EXPECT_TRUE(repo.remove(p.id));
  EXPECT_FALSE(repo.remove(p.id));
  EXPECT_FALSE(repo.get_by_id(p.id));
  EXPECT_EQ(repo.count(), 0);
}

// ---- Exit events ----

TEST_F(PositionRepositoryTest, ExitEventCreateValidates) {
  PositionRepository positions(tdb_->db());
  ExitEventRepository events(tdb_->db());
  auto p = positions.create(sample());
  auto input = exit_event(p.id, "manual");
  input.executed_at = "2026-01-01T00:00:00Z";  // ignored
  input.exit_order_id = "ex_1";
  auto e = events.create(input);
  EXPECT_FALSE(e.executed_at);
  EXPECT_EQ(e.exit_order_id, "ex_1");
  EXPECT_NEAR(e.net_pnl, 14.5, kTol);
  EXPECT_NEAR(e.hours_held, 12.5, kTol);
  EXPECT_EQ(e.created_at, "2026-01-02T00:00:00.000000Z");

  EXPECT_THROW(events.create(exit_event(p.id, "take-profit")), std::invalid_argument);
  auto bad = exit_event(p.id);
  bad.status = "done";
  EXPECT_THROW(events.create(bad), std::invalid_argument);
  bad = exit_event(p.id);
  bad.position_id = "abc";
  EXPECT_THROW(events.create(bad), std::invalid_argument);
  bad.position_id = "-1";
  EXPECT_THROW(events.create(bad), std::invalid_argument);
  EXPECT_THROW(events.create(exit_event(p.id + 1000)), std::invalid_argument);  // no such position (D30)
  EXPECT_EQ(events.count(), 1);
}

TEST_F(PositionRepositoryTest, ExitEventListsAndOrdering) {
  PositionRepository positions(tdb_->db());
  ExitEventRepository events(tdb_->db());
  auto p1 = positions.create(sample("a"));
  auto p2 = positions.create(sample("b"));
  auto a = events.create(exit_event(p1.id, "stop_loss", "2026-01-02T00:00:05Z"));
  auto b = events.create(exit_event(p1.id, "take_profit", "2026-01-02T00:00:01Z"));
  auto c = events.create(exit_event(p1.id, "manual", "2026-01-02T00:00:01Z"));
  auto d = events.create(exit_event(p2.id, "resolution", "2026-01-02T00:00:00Z"));
  events.mark_failed(d.id, "no liquidity");
  EXPECT_EQ(ids(events.get_pending()), (std::vector<std::int32_t>{b.id, c.id, a.id}));
  EXPECT_EQ(ids(events.get_by_position(p1.id)), (std::vector<std::int32_t>{a.id, c.id, b.id}));
  EXPECT_EQ(ids(events.get_by_position(std::to_string(p2.id))), (std::vector<std::int32_t>{d.id}));
  EXPECT_TRUE(events.get_by_position(999).empty());
  // The text an event was created with finds it: create() stores "007" as "7", and looking for
  // "007" found nothing (an exit monitor would see no pending exit and place another).
  auto padded = exit_event(p2.id);
  padded.position_id = "00" + std::to_string(p2.id);
  const auto e = events.create(padded);
  EXPECT_EQ(ids(events.get_by_position(padded.position_id)), (std::vector<std::int32_t>{e.id, d.id}));
  // A row another writer stored with its own text is found by that text too.
  tdb_->exec("INSERT INTO exit_events (position_id, token_id, exit_type, entry_price, exit_price, size, gross_pnl, "
             "net_pnl, hours_held, status, created_at) VALUES ('0" + std::to_string(p1.id) +
             "', 't', 'manual', 0.5, 0.6, 1, 0, 0, 1, 'pending', '2026-01-01T00:00:00.000000Z')");
  EXPECT_EQ(events.get_by_position("0" + std::to_string(p1.id)).size(), 4u);
}

TEST_F(PositionRepositoryTest, ExitEventListsOrderOtherWritersTextTimesByTime) {
  test::insert_legacy_rows([](const std::string& at) {
    tdb_->exec("INSERT INTO exit_events (position_id, token_id, exit_type, entry_price, exit_price, size, "
               "gross_pnl, net_pnl, hours_held, status, created_at) "
               "VALUES ('1', '0xtoken123', 'manual', 0.5, 0.6, 1, 0.1, 0.1, 1, 'pending', '" + at + "')");
  });
  ExitEventRepository events(tdb_->db());
  const auto created = [](const ExitEvent& e) { return e.created_at; };
  EXPECT_EQ(test::texts_of(events.get_pending(), created), test::legacy_oldest_first());
  EXPECT_EQ(test::texts_of(events.get_by_position("1"), created), test::legacy_newest_first());
}

TEST_F(PositionRepositoryTest, ExitEventTransitionsOnlyFromPending) {
  PositionRepository positions(tdb_->db());
  ExitEventRepository events(tdb_->db());
  auto p = positions.create(sample());
  auto e1 = events.create(exit_event(p.id));
  auto failed = events.mark_failed(e1.id, "order rejected");
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->status, "failed");
  EXPECT_EQ(failed->reason, "order rejected");
  EXPECT_FALSE(failed->executed_at);
  EXPECT_FALSE(events.mark_executed(e1.id));
  EXPECT_FALSE(events.mark_failed(e1.id, "again"));
  EXPECT_EQ(events.get_by_id(e1.id)->reason, "order rejected");

  auto e2 = events.create(exit_event(p.id));
  auto executed = events.mark_executed(e2.id);
  ASSERT_TRUE(executed);
  EXPECT_FALSE(events.mark_failed(e2.id, "late"));
  EXPECT_FALSE(events.mark_executed(e2.id));
  EXPECT_EQ(events.get_by_id(e2.id)->executed_at, executed->executed_at);

  EXPECT_FALSE(events.mark_executed(424242));
  EXPECT_FALSE(events.mark_failed(424242, "x"));
  EXPECT_TRUE(events.remove(e2.id));
  EXPECT_FALSE(events.exists(e2.id));
  EXPECT_EQ(events.count(), 1);
}

// D18: closing a position, recording its exit and the day's P&L commit or roll back together.
TEST_F(PositionRepositoryTest, CloseExitAndPnlAreOneTransaction) {
  auto p = PositionRepository(tdb_->db()).create(sample());
  auto close_all = [&](bool fail) {
    tdb_->db().transaction([&](pqxx::work& tx) {
      PositionRepository positions(tx);
      ExitEventRepository events(tx);
      DailyPnlRepository pnl(tx);
      auto closed = positions.close(p.id, 0.9, "exit_1");
      auto e = events.create(exit_event(p.id));
      events.mark_executed(e.id);
      pnl.update("2026-01-02", *closed->realized_pnl, 0, 1, 1, 0);
      if (fail) throw std::runtime_error("abort");
    });
  };
  EXPECT_THROW(close_all(true), std::runtime_error);
  EXPECT_EQ(PositionRepository(tdb_->db()).get_by_id(p.id)->status, "open");
  EXPECT_EQ(tdb_->count("exit_events"), 0);
  EXPECT_EQ(tdb_->count("daily_pnl"), 0);
  close_all(false);
  EXPECT_EQ(PositionRepository(tdb_->db()).get_by_id(p.id)->status, "closed");
  EXPECT_EQ(tdb_->count("SELECT count(*) FROM exit_events WHERE status = 'executed'"), 1);
  EXPECT_NEAR(DailyPnlRepository(tdb_->db()).get_total_realized(), 15.0, kTol);
}

// ---- Daily P&L ----

TEST_F(PositionRepositoryTest, GetOrCreateNewDayHasTheDefaults) {
  DailyPnlRepository repo(tdb_->db());
  auto day = repo.get_or_create("2026-01-02");
  EXPECT_EQ(day.date, "2026-01-02");
  EXPECT_EQ(day.realized_pnl, 0.0);
  EXPECT_EQ(day.unrealized_pnl, 0.0);
  EXPECT_EQ(day.total_pnl, 0.0);
  EXPECT_EQ(day.num_trades, 0);
  EXPECT_EQ(day.num_wins, 0);
  EXPECT_EQ(day.num_losses, 0);
  EXPECT_FALSE(day.updated_at);
  EXPECT_EQ(repo.count(), 1);
}

// D26: reading an existing day does not write it (its row version stays the same).
TEST_F(PositionRepositoryTest, GetOrCreateExistingDayDoesNotWrite) {
  DailyPnlRepository repo(tdb_->db());
  repo.update("2026-01-02", 10.5, -2.0, 3, 2, 1);
  const std::string before = xmin_of_day("2026-01-02");
  auto day = repo.get_or_create("2026-01-02");
  EXPECT_EQ(xmin_of_day("2026-01-02"), before);
  EXPECT_NEAR(*day.realized_pnl, 10.5, kTol);
  EXPECT_EQ(day.num_trades, 3);
  EXPECT_EQ(repo.count(), 1);
}

TEST_F(PositionRepositoryTest, UpdateOverwritesAndComputesTotal) {
  DailyPnlRepository repo(tdb_->db());
  auto first = repo.update("2026-01-02", 10.0, 5.0, 4, 3, 1);
  EXPECT_NEAR(*first.total_pnl, 15.0, kTol);
  ASSERT_TRUE(first.updated_at);
  EXPECT_EQ(first.updated_at->size(), 27u);
  auto second = repo.update("2026-01-02", 1.25, -0.5, 1, 0, 1);  // overwrite, not add
  EXPECT_NEAR(*second.realized_pnl, 1.25, kTol);
  EXPECT_NEAR(*second.unrealized_pnl, -0.5, kTol);
  EXPECT_NEAR(*second.total_pnl, 0.75, kTol);
  EXPECT_EQ(second.num_trades, 1);
  EXPECT_EQ(second.num_wins, 0);
  EXPECT_EQ(second.num_losses, 1);
  EXPECT_GE(*second.updated_at, *first.updated_at);
  EXPECT_EQ(repo.count(), 1);
}

TEST_F(PositionRepositoryTest, GetRecentIsRowsNotCalendarDays) {
  DailyPnlRepository repo(tdb_->db());
  EXPECT_TRUE(repo.get_recent().empty());
  repo.update("2025-06-01", 1, 0, 1, 1, 0);
  repo.update("2026-01-02", 2, 0, 1, 1, 0);
  repo.update("2025-12-31", 3, 0, 1, 1, 0);
  auto two = repo.get_recent(2);  // 2 rows, though they are 2 days apart
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0].date, "2026-01-02");
  EXPECT_EQ(two[1].date, "2025-12-31");
  EXPECT_EQ(repo.get_recent().size(), 3u);
  EXPECT_NEAR(repo.get_total_realized(), 6.0, kTol);
}

// The same for the days' realized P&L: 1,000 days of 75.37 total 75370 within a cent.
TEST_F(PositionRepositoryTest, TotalRealizedOfManyDaysDoesNotDriftInFloat4) {
  tdb_->db().transaction([](pqxx::work& tx) {
    DailyPnlRepository days(tx);
    const auto day0 = std::chrono::sys_days(std::chrono::year(2020) / 1 / 1);
    for (int i = 0; i < 1000; ++i) {
      const std::chrono::year_month_day d(day0 + std::chrono::days(i));
      char date[32];
      std::snprintf(date, sizeof date, "%04d-%02u-%02u", static_cast<int>(d.year()), static_cast<unsigned>(d.month()),
                    static_cast<unsigned>(d.day()));
      days.update(date, 75.37, 0, 1, 1, 0);
    }
  });
  DailyPnlRepository repo(tdb_->db());
  ASSERT_EQ(repo.count(), 1000);
  EXPECT_NEAR(repo.get_total_realized(), 75370.0, 0.01);
}

TEST_F(PositionRepositoryTest, DailyPnlValidationAndBase) {
  DailyPnlRepository repo(tdb_->db());
  EXPECT_EQ(repo.get_total_realized(), 0.0);
  EXPECT_THROW(repo.get_or_create("2026-1-2"), std::invalid_argument);
  EXPECT_THROW(repo.get_or_create("2026-13-01"), std::invalid_argument);
  EXPECT_THROW(repo.get_or_create("2026-02-30"), std::invalid_argument);
  EXPECT_THROW(repo.get_or_create("2026-01-02T00:00:00Z"), std::invalid_argument);
  EXPECT_THROW(repo.get_or_create("+026-01-02"), std::invalid_argument);
  EXPECT_THROW(repo.update("02/01/2026", 0, 0, 0, 0, 0), std::invalid_argument);
  EXPECT_EQ(repo.count(), 0);
  EXPECT_FALSE(repo.get_by_id("2026-01-02"));
  repo.get_or_create("2026-01-02");
  EXPECT_TRUE(repo.exists("2026-01-02"));
  EXPECT_TRUE(repo.remove("2026-01-02"));
  EXPECT_FALSE(repo.remove("2026-01-02"));
}

TEST_F(PositionRepositoryTest, ConcurrentGetOrCreateMakesOneRow) {
  DailyPnlRepository repo(tdb_->db());
  std::barrier start(6);
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 6; ++i)
    threads.emplace_back([&] {
      start.arrive_and_wait();
      if (repo.get_or_create("2026-02-03").date == "2026-02-03") ++ok;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 6);
  EXPECT_EQ(repo.count(), 1);
}

}  // namespace
}  // namespace pm
