// PaperTradeRepository and LiveOrderRepository against a real PostgreSQL (storage-api.md 2.7, 2.8;
// fixes for D21, D23, D25, D28 and the canonical text times of D8/D12).
#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <cmath>
#include <thread>

#include "repos/util/clock.h"
#include "repos/order_repository.h"
#include "repos/pg_errors.h"
#include "repos/timestamp_unit.h"
#include "tests/repos/legacy_times.h"
#include "tests/support/test_database.h"

namespace pm {
namespace {

class OrderRepositoryTest : public ::testing::Test {
 protected:
  // Candidates 1..10 exist: paper trades and live orders must name one (D30).
  static void SetUpTestSuite() {
    tdb_ = new test::TestDatabase("orders");
    tdb_->exec("INSERT INTO polymarket_candidates (id, token_id, condition_id, threshold, trigger_timestamp, status, created_at) "
               "SELECT g, '0xtoken123', '0xabc123', 0.95, 1700000000000, 'pending', '2026-01-02T03:04:05.000000Z' "
               "FROM generate_series(1, 10) AS g");
  }
  static void TearDownTestSuite() { delete tdb_; }
  void SetUp() override { tdb_->exec("TRUNCATE paper_trades, live_orders RESTART IDENTITY"); }

  static PaperTrade paper(std::int32_t candidate_id = 1, std::string decision = "BUY",
                          std::string created_at = "2026-01-02T03:04:05Z") {
    PaperTrade t;
    t.candidate_id = candidate_id;
    t.token_id = "0xtoken123";
    t.condition_id = "0xabc123";
    t.threshold = 0.95;
    t.trigger_timestamp = 1'700'000'000'000;
    t.candidate_price = 0.95;
    t.fill_price = 0.96;
    t.size = 20;
    t.model_score = 0.87;
    t.model_version = "v1";
    t.decision = std::move(decision);
    t.reason = "score above threshold";
    t.created_at = std::move(created_at);
    t.description = "desc";
    t.outcome = "Yes";
    t.outcome_index = 0;
    return t;
  }
  static LiveOrder order(std::optional<std::string> order_id = "ord_1", std::string status = "submitted",
                         std::string submitted_at = "2026-01-02T03:04:05Z", std::string token = "0xtoken123") {
    LiveOrder o;
    o.order_id = std::move(order_id);
    o.candidate_id = 7;
    o.token_id = std::move(token);
    o.condition_id = "0xabc123";
    o.threshold = 0.95;
    o.order_price = 0.95;
    o.order_size = 20;
    o.status = std::move(status);
    o.submitted_at = std::move(submitted_at);
    return o;
  }
  template <class M>
  static std::vector<std::int32_t> ids(const std::vector<M>& rows) {
    std::vector<std::int32_t> out;
    for (const auto& r : rows) out.push_back(r.id);
    return out;
  }
  static test::TestDatabase* tdb_;
};
test::TestDatabase* OrderRepositoryTest::tdb_ = nullptr;

// D30: candidate_id has no foreign key in the schema; the repositories check it, atomically.
TEST_F(OrderRepositoryTest, PaperTradesAndLiveOrdersMustNameAnExistingCandidate) {
  PaperTradeRepository papers(tdb_->db());
  LiveOrderRepository orders(tdb_->db());
  auto message_of = [](auto&& call) {
    try {
      call();
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no exception");
  };
  EXPECT_EQ(message_of([&] { papers.create(paper(4242)); }), "paper_trades.candidate_id: no candidate with id 4242");
  EXPECT_EQ(message_of([&] { papers.create(paper(0)); }), "paper_trades.candidate_id: 0 is not a candidate id");
  EXPECT_EQ(message_of([&] { papers.create(paper(-3)); }), "paper_trades.candidate_id: -3 is not a candidate id");
  auto orphan = order("ord_orphan");
  orphan.candidate_id = 4242;
  EXPECT_EQ(message_of([&] { orders.create(orphan); }), "live_orders.candidate_id: no candidate with id 4242");
  orphan.candidate_id = 0;
  EXPECT_EQ(message_of([&] { orders.create(orphan); }), "live_orders.candidate_id: 0 is not a candidate id");
  EXPECT_EQ(tdb_->count("paper_trades"), 0);
  EXPECT_EQ(tdb_->count("live_orders"), 0);
  EXPECT_EQ(papers.create(paper(10)).candidate_id, 10);
  EXPECT_EQ(orders.create(order("ord_ok")).candidate_id, 7);
}

// Non-finite prices and sizes are refused (a NaN fill size compared above every size), naming the
// column; nothing is written.
TEST_F(OrderRepositoryTest, NonFinitePricesAndSizesAreRefused) {
  PaperTradeRepository paper_trades(tdb_->db());
  auto t = paper();
  t.fill_price = std::nan("");
  EXPECT_THROW(paper_trades.create(t), RefusedValueError);
  EXPECT_EQ(paper_trades.count(), 0);
  LiveOrderRepository orders(tdb_->db());
  auto o = order("0xorder-nan");
  o.order_size = INFINITY;
  EXPECT_THROW(orders.create(o), RefusedValueError);
  orders.create(order("0xorder-ok"));
  try {
    orders.update_status("0xorder-ok", LiveOrderStatus::Partial, 0.5, std::nan(""));
    ADD_FAILURE() << "a NaN fill size was stored";
  } catch (const RefusedValueError& e) {
    EXPECT_NE(std::string(e.what()).find("live_orders.fill_size"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(orders.get_by_order_id("0xorder-ok")->fill_size.has_value());
}

// fill_size is the order's cumulative fill: a stale poll reporting partial(5) after the websocket
// reported partial(12) lowered it to 5, and the bot under-counted what it held (and could buy
// again). A smaller report keeps the stored size and its price; a larger one replaces both.
TEST_F(OrderRepositoryTest, AStaleSmallerFillReportDoesNotShrinkTheFill) {
  LiveOrderRepository orders(tdb_->db());
  orders.create(order("0xfills"));
  ASSERT_TRUE(orders.update_status("0xfills", LiveOrderStatus::Partial, 0.50, 12));
  const auto stale = orders.update_status("0xfills", LiveOrderStatus::Partial, 0.40, 5);
  ASSERT_TRUE(stale);
  EXPECT_NEAR(*stale->fill_size, 12, 1e-6);
  EXPECT_NEAR(*stale->fill_price, 0.50, 1e-6);
  const auto more = orders.update_status("0xfills", LiveOrderStatus::Filled, 0.52, 20);
  ASSERT_TRUE(more);
  EXPECT_NEAR(*more->fill_size, 20, 1e-6);
  EXPECT_NEAR(*more->fill_price, 0.52, 1e-6);
  EXPECT_EQ(more->status, "filled");
}

TEST_F(OrderRepositoryTest, PaperTradeCreateRoundTrips) {
  PaperTradeRepository repo(tdb_->db());
  auto input = paper();
  input.id = 555;
  auto a = repo.create(input);
  auto b = repo.create(input);  // no conflict clause
  EXPECT_GT(a.id, 0);
  EXPECT_NE(a.id, b.id);
  EXPECT_EQ(a.candidate_id, 1);
  EXPECT_EQ(a.token_id, "0xtoken123");
  EXPECT_NEAR(a.threshold, 0.95, 1e-6);
  EXPECT_EQ(a.trigger_timestamp, 1'700'000'000'000);
  EXPECT_NEAR(*a.candidate_price, 0.95, 1e-6);
  EXPECT_NEAR(*a.fill_price, 0.96, 1e-6);
  EXPECT_NEAR(*a.size, 20.0, 1e-6);
  EXPECT_EQ(a.decision, "BUY");
  EXPECT_EQ(a.reason, "score above threshold");
  EXPECT_EQ(a.created_at, "2026-01-02T03:04:05.000000Z");
  EXPECT_EQ(a.description, "desc");
  EXPECT_EQ(repo.count(), 2);
}

// A paper trade's trigger_timestamp is epoch ms (schema.md) when given: create() stored one in
// seconds, or of microsecond size, or days ahead [the row inserted]. Refused now
// (TimestampUnitError) before any SQL; none at all is still fine.
TEST_F(OrderRepositoryTest, PaperTradeRefusesATriggerTimestampThatIsNotEpochMilliseconds) {
  PaperTradeRepository repo(tdb_->db());
  for (const std::int64_t ts : {std::int64_t{1'700'000'000}, std::int64_t{1'700'000'000'000'000},
                                now_epoch_ms() + 2 * 86'400'000}) {
    PaperTrade t = paper();
    t.trigger_timestamp = ts;
    EXPECT_THROW(repo.create(t), TimestampUnitError) << ts;
  }
  EXPECT_EQ(tdb_->count("paper_trades"), 0);
  PaperTrade none = paper();
  none.trigger_timestamp.reset();
  EXPECT_FALSE(repo.create(none).trigger_timestamp);
  EXPECT_EQ(repo.create(paper()).trigger_timestamp, 1'700'000'000'000);
}

TEST_F(OrderRepositoryTest, PaperTradeNullsAndValidation) {
  PaperTradeRepository repo(tdb_->db());
  PaperTrade t;
  t.candidate_id = 3;
  t.token_id = "t";
  t.threshold = 0.9;
  t.decision = "SKIP";
  auto row = repo.create(t);
  EXPECT_FALSE(row.trigger_timestamp);
  EXPECT_FALSE(row.condition_id);
  EXPECT_FALSE(row.candidate_price);
  EXPECT_FALSE(row.fill_price);
  EXPECT_FALSE(row.size);
  EXPECT_FALSE(row.reason);
  EXPECT_FALSE(row.outcome_index);
  EXPECT_EQ(row.created_at.size(), 27u);
  t.decision = "";
  EXPECT_THROW(repo.create(t), std::invalid_argument);
  t.decision = "SKIP";
  t.created_at = "02/01/2026";
  EXPECT_THROW(repo.create(t), std::invalid_argument);
  EXPECT_EQ(repo.count(), 1);
}

TEST_F(OrderRepositoryTest, PaperTradeGetByCandidateIsTheNewest) {
  PaperTradeRepository repo(tdb_->db());
  EXPECT_FALSE(repo.get_by_candidate(1));
  repo.create(paper(1, "SKIP"));
  auto newest = repo.create(paper(1, "BUY"));
  repo.create(paper(2));
  for (int i = 0; i < 3; ++i) {  // deterministic, every time (D21)
    auto found = repo.get_by_candidate(1);
    ASSERT_TRUE(found);
    EXPECT_EQ(found->id, newest.id);
  }
}

TEST_F(OrderRepositoryTest, PaperTradeListsNewestFirstWithTieBreakAndLimit) {
  PaperTradeRepository repo(tdb_->db());
  auto a = repo.create(paper(1, "BUY", "2026-01-02T00:00:01Z"));
  auto b = repo.create(paper(2, "SKIP", "2026-01-02T00:00:03Z"));
  auto c = repo.create(paper(3, "BUY", "2026-01-02T00:00:01Z"));
  EXPECT_EQ(ids(repo.get_recent()), (std::vector<std::int32_t>{b.id, c.id, a.id}));
  EXPECT_EQ(ids(repo.get_recent(2)), (std::vector<std::int32_t>{b.id, c.id}));
  EXPECT_EQ(ids(repo.get_by_decision("BUY")), (std::vector<std::int32_t>{c.id, a.id}));
  EXPECT_EQ(ids(repo.get_by_decision("BUY", 1)), (std::vector<std::int32_t>{c.id}));
  EXPECT_TRUE(repo.get_by_decision("buy").empty());
  EXPECT_THROW(repo.get_recent(-5), std::invalid_argument);
}

// D8: rows of other writers hold other ISO-8601 shapes; the lists order them by time.
TEST_F(OrderRepositoryTest, PaperTradeListsOrderOtherWritersTextTimesByTime) {
  test::insert_legacy_rows([](const std::string& at) {
    tdb_->exec("INSERT INTO paper_trades (candidate_id, token_id, threshold, decision, created_at) "
               "VALUES (1, '0xtoken123', 0.95, 'BUY', '" + at + "')");
  });
  PaperTradeRepository repo(tdb_->db());
  const auto created = [](const PaperTrade& t) { return t.created_at; };
  EXPECT_EQ(test::texts_of(repo.get_recent(), created), test::legacy_newest_first());
  EXPECT_EQ(test::texts_of(repo.get_recent(1), created),
            std::vector<std::string>{test::kLegacyTimesOldestFirst.back()});
  EXPECT_EQ(test::texts_of(repo.get_by_decision("BUY"), created), test::legacy_newest_first());
}

TEST_F(OrderRepositoryTest, PaperTradeBaseOperations) {
  PaperTradeRepository repo(tdb_->db());
  auto t = repo.create(paper());
  EXPECT_EQ(repo.get_by_id(t.id)->decision, "BUY");
  EXPECT_FALSE(repo.get_by_id(t.id + 1));
  EXPECT_TRUE(repo.exists(t.id));
  EXPECT_TRUE(repo.remove(t.id));
  EXPECT_FALSE(repo.remove(t.id));
  EXPECT_EQ(repo.count(), 0);
}

TEST_F(OrderRepositoryTest, LiveOrderStatusText) {
  EXPECT_EQ(to_string(LiveOrderStatus::Submitted), "submitted");
  EXPECT_EQ(to_string(LiveOrderStatus::Partial), "partial");
  EXPECT_EQ(to_string(LiveOrderStatus::Filled), "filled");
  EXPECT_EQ(to_string(LiveOrderStatus::Cancelled), "cancelled");
  EXPECT_EQ(to_string(LiveOrderStatus::Rejected), "rejected");
  EXPECT_EQ(parse_live_order_status("partial"), LiveOrderStatus::Partial);
  EXPECT_FALSE(parse_live_order_status("canceled"));
}

TEST_F(OrderRepositoryTest, LiveOrderCreateIgnoresFillFields) {
  LiveOrderRepository repo(tdb_->db());
  auto input = order();
  input.fill_price = 0.5;
  input.fill_size = 3;
  input.filled_at = "2026-01-01T00:00:00Z";
  input.updated_at = "2026-01-01T00:00:00Z";
  auto row = repo.create(input);
  EXPECT_GT(row.id, 0);
  EXPECT_EQ(row.order_id, "ord_1");
  EXPECT_EQ(row.candidate_id, 7);
  EXPECT_NEAR(row.threshold, 0.95, 1e-6);
  EXPECT_NEAR(*row.order_price, 0.95, 1e-6);
  EXPECT_NEAR(*row.order_size, 20, 1e-6);
  EXPECT_EQ(row.status, "submitted");
  EXPECT_EQ(row.submitted_at, "2026-01-02T03:04:05.000000Z");
  EXPECT_FALSE(row.fill_price);
  EXPECT_FALSE(row.fill_size);
  EXPECT_FALSE(row.filled_at);
  EXPECT_FALSE(row.updated_at);
  EXPECT_FALSE(row.reason);
}

TEST_F(OrderRepositoryTest, LiveOrderCreateConflictsAndValidation) {
  LiveOrderRepository repo(tdb_->db());
  repo.create(order("dup"));
  EXPECT_THROW(repo.create(order("dup")), pqxx::unique_violation);
  // A NULL order_id is not a key: any number of them.
  repo.create(order(std::nullopt));
  repo.create(order(std::nullopt));
  EXPECT_THROW(repo.create(order("x", "open")), std::invalid_argument);
  EXPECT_THROW(repo.create(order("x", "submitted", "soon")), std::invalid_argument);
  EXPECT_EQ(repo.count(), 3);
  auto now_row = repo.create(order("now", "submitted", ""));
  EXPECT_TRUE(parse_iso(now_row.submitted_at));
  EXPECT_EQ(now_row.submitted_at.size(), 27u);
}

TEST_F(OrderRepositoryTest, LiveOrderLookupsAndOrdering) {
  LiveOrderRepository repo(tdb_->db());
  EXPECT_FALSE(repo.get_by_order_id("missing"));
  auto a = repo.create(order("a", "submitted", "2026-01-02T00:00:01Z"));
  auto b = repo.create(order("b", "partial", "2026-01-02T00:00:05Z"));
  auto c = repo.create(order("c", "submitted", "2026-01-02T00:00:01Z"));
  auto d = repo.create(order("d", "filled", "2026-01-02T00:00:09Z"));
  auto e = repo.create(order("e", "cancelled", "2026-01-02T00:00:09Z", "other"));
  EXPECT_EQ(repo.get_by_order_id("b")->id, b.id);
  EXPECT_EQ(ids(repo.get_active()), (std::vector<std::int32_t>{b.id, c.id, a.id}));
  EXPECT_EQ(ids(repo.get_by_status(LiveOrderStatus::Submitted)), (std::vector<std::int32_t>{c.id, a.id}));
  EXPECT_EQ(ids(repo.get_by_status(LiveOrderStatus::Submitted, 1)), (std::vector<std::int32_t>{c.id}));
  EXPECT_TRUE(repo.get_by_status(LiveOrderStatus::Rejected).empty());
  EXPECT_EQ(ids(repo.get_by_token("0xtoken123")), (std::vector<std::int32_t>{d.id, b.id, c.id, a.id}));
  EXPECT_EQ(ids(repo.get_by_token("other")), (std::vector<std::int32_t>{e.id}));
}

TEST_F(OrderRepositoryTest, LiveOrderListsOrderOtherWritersTextTimesByTime) {
  int n = 0;
  test::insert_legacy_rows([&n](const std::string& at) {
    tdb_->exec("INSERT INTO live_orders (order_id, candidate_id, token_id, threshold, status, submitted_at) "
               "VALUES ('legacy-" + std::to_string(++n) + "', 7, '0xtoken123', 0.95, 'submitted', '" + at + "')");
  });
  LiveOrderRepository repo(tdb_->db());
  const auto submitted = [](const LiveOrder& o) { return o.submitted_at; };
  EXPECT_EQ(test::texts_of(repo.get_active(), submitted), test::legacy_newest_first());
  EXPECT_EQ(test::texts_of(repo.get_by_status(LiveOrderStatus::Submitted), submitted), test::legacy_newest_first());
  EXPECT_EQ(test::texts_of(repo.get_by_token("0xtoken123"), submitted), test::legacy_newest_first());
}

TEST_F(OrderRepositoryTest, MarkFilledRecordsTheFill) {
  LiveOrderRepository repo(tdb_->db());
  repo.create(order());
  auto filled = repo.mark_filled("ord_1", 0.951, 19.5);
  ASSERT_TRUE(filled);
  EXPECT_EQ(filled->status, "filled");
  EXPECT_NEAR(*filled->fill_price, 0.951, 1e-6);
  EXPECT_NEAR(*filled->fill_size, 19.5, 1e-6);
  ASSERT_TRUE(filled->filled_at);
  ASSERT_TRUE(filled->updated_at);
  EXPECT_EQ(*filled->filled_at, *filled->updated_at);
  EXPECT_EQ(filled->filled_at->size(), 27u);
  EXPECT_FALSE(repo.mark_filled("missing", 0.9, 1));
}

// D23: the original accepted filled -> cancelled and kept the old fill data.
TEST_F(OrderRepositoryTest, FinalStatesCannotBeLeft) {
  LiveOrderRepository repo(tdb_->db());
  repo.create(order("f"));
  auto filled = repo.mark_filled("f", 0.95, 20);
  EXPECT_FALSE(repo.mark_cancelled("f", "too late"));
  EXPECT_FALSE(repo.mark_rejected("f", "nope"));
  EXPECT_FALSE(repo.mark_filled("f", 0.5, 1));
  EXPECT_FALSE(repo.update_status("f", LiveOrderStatus::Partial, 0.1, 1));
  EXPECT_FALSE(repo.update_status("f", LiveOrderStatus::Submitted));
  auto stored = repo.get_by_order_id("f");
  EXPECT_EQ(stored->status, "filled");
  EXPECT_NEAR(*stored->fill_price, 0.95, 1e-6);
  EXPECT_FALSE(stored->reason);
  EXPECT_EQ(stored->updated_at, filled->updated_at);

  repo.create(order("c"));
  auto cancelled = repo.mark_cancelled("c", "user");
  ASSERT_TRUE(cancelled);
  EXPECT_EQ(cancelled->reason, "user");
  EXPECT_FALSE(cancelled->filled_at);
  EXPECT_FALSE(repo.mark_cancelled("c", "again"));
  EXPECT_FALSE(repo.mark_rejected("c", "nope"));
  EXPECT_FALSE(repo.update_status("c", LiveOrderStatus::Submitted));

  repo.create(order("r"));
  auto rejected = repo.mark_rejected("r", "insufficient balance");
  ASSERT_TRUE(rejected);
  EXPECT_EQ(rejected->status, "rejected");
  EXPECT_EQ(rejected->reason, "insufficient balance");
  EXPECT_FALSE(repo.mark_cancelled("r"));
  EXPECT_FALSE(repo.mark_filled("r", 0.9, 1));
  EXPECT_FALSE(repo.update_status("r", LiveOrderStatus::Partial, 0.9, 1));
}

// A fill the exchange made before a cancel took effect, reported after the cancel was recorded:
// it was refused as leaving a final state, so the bot held a position its orders said it did not
// have. A late partial fill is stored on the order, which stays cancelled (nothing rests); a late
// full fill makes it filled.
TEST_F(OrderRepositoryTest, AFillReportedAfterTheCancelIsKept) {
  LiveOrderRepository repo(tdb_->db());
  repo.create(order("p"));
  ASSERT_TRUE(repo.mark_cancelled("p", "user"));
  auto late_partial = repo.update_status("p", LiveOrderStatus::Partial, 0.94, 7);
  ASSERT_TRUE(late_partial) << "the late partial fill was refused";
  EXPECT_EQ(late_partial->status, "cancelled");
  EXPECT_NEAR(*late_partial->fill_price, 0.94, 1e-6);
  EXPECT_NEAR(*late_partial->fill_size, 7, 1e-6);
  EXPECT_EQ(late_partial->reason, "user");
  EXPECT_FALSE(late_partial->filled_at);
  EXPECT_TRUE(repo.get_active().empty());

  repo.create(order("f"));
  ASSERT_TRUE(repo.mark_cancelled("f", "user"));
  auto late_fill = repo.mark_filled("f", 0.95, 20);
  ASSERT_TRUE(late_fill) << "the late fill was refused";
  EXPECT_EQ(late_fill->status, "filled");
  EXPECT_FALSE(late_fill->reason) << "the reason of a cancel that did not take";
  EXPECT_NEAR(*late_fill->fill_size, 20, 1e-6);
  EXPECT_TRUE(late_fill->filled_at);
  EXPECT_FALSE(repo.mark_cancelled("f", "again"));  // filled stays final
}

TEST_F(OrderRepositoryTest, PartialFillsThenFilled) {
  LiveOrderRepository repo(tdb_->db());
  repo.create(order());
  EXPECT_FALSE(repo.update_status("ord_1", LiveOrderStatus::Submitted));  // no self-transition
  auto p1 = repo.update_status("ord_1", LiveOrderStatus::Partial, 0.95, 5, "first fill");
  ASSERT_TRUE(p1);
  EXPECT_EQ(p1->status, "partial");
  EXPECT_FALSE(p1->filled_at);
  auto p2 = repo.update_status("ord_1", LiveOrderStatus::Partial, std::nullopt, 12);
  ASSERT_TRUE(p2);
  EXPECT_NEAR(*p2->fill_price, 0.95, 1e-6);  // kept (COALESCE)
  EXPECT_NEAR(*p2->fill_size, 12, 1e-6);
  EXPECT_EQ(p2->reason, "first fill");
  EXPECT_EQ(repo.get_active().size(), 1u);
  auto done = repo.mark_filled("ord_1", 0.952, 20);
  ASSERT_TRUE(done);
  EXPECT_TRUE(done->filled_at);
  EXPECT_TRUE(repo.get_active().empty());
  EXPECT_FALSE(repo.update_status("ord_1", LiveOrderStatus::Partial, 0.9, 1));
}

TEST_F(OrderRepositoryTest, PartialCanBeCancelledButNotRejected) {
  LiveOrderRepository repo(tdb_->db());
  repo.create(order());
  repo.update_status("ord_1", LiveOrderStatus::Partial, 0.95, 5);
  EXPECT_FALSE(repo.mark_rejected("ord_1", "late reject"));
  auto cancelled = repo.mark_cancelled("ord_1");
  ASSERT_TRUE(cancelled);
  EXPECT_NEAR(*cancelled->fill_size, 5, 1e-6);  // the partial fill is kept
}

TEST_F(OrderRepositoryTest, LiveOrderTransitionTable) {
  using S = LiveOrderStatus;
  const S all[] = {S::Submitted, S::Partial, S::Filled, S::Cancelled, S::Rejected};
  int allowed = 0;
  for (S from : all)
    for (S to : all) allowed += can_transition(from, to) ? 1 : 0;
  EXPECT_EQ(allowed, 9);
  EXPECT_TRUE(can_transition(S::Submitted, S::Rejected));
  EXPECT_FALSE(can_transition(S::Partial, S::Rejected));
  EXPECT_FALSE(can_transition(S::Filled, S::Cancelled));
  EXPECT_TRUE(can_transition(S::Cancelled, S::Filled));
  EXPECT_FALSE(can_transition(S::Rejected, S::Filled));
}

// A fill and a cancel racing: whichever comes first, the fill is kept and the order ends filled
// (a cancel after the fill is refused; a fill after the cancel is a late fill report).
TEST_F(OrderRepositoryTest, RacingFillAndCancelEndFilled) {
  LiveOrderRepository repo(tdb_->db());
  for (int round = 0; round < 5; ++round) {
    const std::string id = "race_" + std::to_string(round);
    repo.create(order(id));
    std::atomic<int> wins{0};
    std::barrier start(2);
    std::thread filler([&] {
      start.arrive_and_wait();
      if (repo.mark_filled(id, 0.95, 20)) ++wins;
    });
    std::thread canceller([&] {
      start.arrive_and_wait();
      if (repo.mark_cancelled(id, "race")) ++wins;
    });
    filler.join();
    canceller.join();
    EXPECT_GE(wins.load(), 1);
    auto stored = repo.get_by_order_id(id);
    EXPECT_EQ(stored->status, "filled");
    EXPECT_FALSE(stored->reason);
    ASSERT_TRUE(stored->fill_price);
    EXPECT_NEAR(*stored->fill_price, 0.95, 1e-6);
    EXPECT_TRUE(stored->filled_at);
  }
}

TEST_F(OrderRepositoryTest, LiveOrderBaseOperations) {
  LiveOrderRepository repo(tdb_->db());
  auto o = repo.create(order());
  EXPECT_EQ(repo.get_by_id(o.id)->order_id, "ord_1");
  EXPECT_TRUE(repo.exists(o.id));
  EXPECT_FALSE(repo.exists(o.id + 100));
  EXPECT_EQ(repo.count(), 1);
  EXPECT_TRUE(repo.remove(o.id));
  EXPECT_FALSE(repo.get_by_order_id("ord_1"));
}

}  // namespace
}  // namespace pm
