// Polymarket's own payloads end to end: each fixture of tests/fixtures/polymarket/ sent after its
// hello to the real daemon, and the rows it leaves in PostgreSQL checked field by field (units,
// duplicates, raw_json as received); array lines all or nothing, busy for a whole line.
#include <gtest/gtest.h>

#include <fstream>
#include <optional>

#include <simdjson.h>

#include "tests/e2e/e2e_util.h"
#include "tests/support/daemon_harness.h"
#include "tests/support/producer.h"
#include "tests/support/test_database.h"

namespace pm::test {
namespace {

using namespace std::chrono_literals;

const std::string kCond = "0xdd22472e552920b8438158ea7238bfadfa4f736aa4cee91a6b86c39ead110917";
const std::string kYes = "71321045679252212594626385532706912750332728571942532289631379312455583992563";
const std::string kNo = "52114319501245915516055106046884209969926127482827954674443846427813813222426";

std::vector<std::string> fixture_lines(const std::string& name) {
  std::ifstream in(std::string(PM_FIXTURES_DIR) + "/polymarket/" + name + ".ndjson");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  EXPECT_FALSE(lines.empty()) << name;
  return lines;
}

// The text of element `element` of an array line (or of the whole line for -1) as received:
// found with simdjson's On Demand API, independently of the daemon's own scan (its raw_json()
// runs on to the next token: the whitespace after the element is cut off here).
std::string element_text(const std::string& line, int element) {
  if (element < 0) return line;
  simdjson::ondemand::parser parser;
  simdjson::padded_string padded(line);
  simdjson::ondemand::document doc = parser.iterate(padded);
  int i = 0;
  for (auto value : doc.get_array()) {
    if (i++ != element) continue;
    std::string text(simdjson::ondemand::object(value.get_object()).raw_json().value());
    return text.erase(text.find_last_not_of(" \t\r\n") + 1);
  }
  ADD_FAILURE() << "no element " << element << " in " << line;
  return "";
}

struct ExpectedTrade {
  std::string trade_id;
  std::string token_id;
  double price;
  double size;
  std::string side;
  long long timestamp_ms;
  std::optional<std::string> outcome;
  std::optional<int> outcome_index;
  int line;     // 0-based in the fixture
  int element;  // in that array line; -1: the line is the object
};

std::vector<ExpectedTrade> expected_clob_ws_market() {
  const std::string tx_a = "0xa4c123b1612dd272d1371c17149d439536b3216fdaeeb975729fae923d5a4fd1";
  const std::string tx_b = "0x2aabfe228f219e9cb0eb53f16947ccf25ec84d8dbc74254770f58904dba41ecc";
  const std::string tx_c = "0xcc3fc1626e53a13043b026c48bbf33feff9243a8f506b40928b5b7a767c76fb0";
  // Ids computed outside the daemon (FNV-1a 64 of token|side|price|size|timestamp_ms).
  return {
      {tx_a + ":7a07080cb73ff712", kYes, 0.48, 219.21, "BUY", 1'750'428'146'322, {}, {}, 1, -1},
      {tx_b + ":8c82e3d4b768bf3a", kYes, 0.52, 10, "SELL", 1'750'428'150'001, {}, {}, 2, 2},
      {tx_b + ":0839deb1b345de12", kYes, 0.52, 25, "SELL", 1'750'428'150'001, {}, {}, 2, 3},
      {tx_c + ":b62ad36665c69fd4", kNo, 0.5, 100, "BUY", 1'750'428'170'500, {}, {}, 6, 0},
  };
}

std::vector<ExpectedTrade> expected_data_api_trades() {
  const std::string tx_d = "0x08f86bebb2737f6a6f0fb23c6f5da2cec255404e4fb440034d6608697a8d41be";
  const std::string tx_e = "0xd440e50454f31af3176813e02ea68ef786e4d3cea27d26934b484e73cf575dca";
  const std::string tx_f = "0xd6ba2b0aee0ca923732881584d8c4fa2815d2802827283e0ad84173581569969";
  // Two makers of one transaction (same token, price, size and time; their proxyWallet differs).
  return {
      {tx_d + ":e05f14d5ce4f52d0", kYes, 0.62, 100, "BUY", 1'750'428'200'000, "Yes", 0, 0, 0},
      {tx_d + ":4bfc9f67c9888c75", kYes, 0.62, 100, "BUY", 1'750'428'200'000, "Yes", 0, 0, 1},
      {tx_e + ":0aac56e519b8703f", kNo, 0.38, 12.5, "SELL", 1'750'428'210'000, "No", 1, 0, 2},
      {tx_f + ":2c9c25d2dac40f67", kYes, 0.999, 7, "SELL", 1'750'428'220'000, "Yes", 0, 3, 1},
  };
}

std::vector<ExpectedTrade> expected_clob_rest_trades() {
  return {
      {"28c4d2eb-bbea-40e7-a9f0-b2fdb56b2c2e", kYes, 0.57, 50, "BUY", 1'750'428'300'000, "Yes", {}, 0, 0},
      {"7a1e9f55-1c3b-4b7e-8f0e-0d9b6c2a4e11", kYes, 0.57, 20, "BUY", 1'750'428'300'000, "Yes", {}, 0, 1},
      {"e0b2c4d6-8f9a-4b1c-9d2e-3f4a5b6c7d8e", kNo, 0.4, 5.25, "SELL", 1'750'428'400'000, "No", {}, 3, -1},
  };
}

class PolymarketPayloadsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { tdb_ = new TestDatabase("e2e_pm"); }
  static void TearDownTestSuite() { delete tdb_; }
  void SetUp() override { tdb_->exec("TRUNCATE polymarket_trades, trade_watermarks, pm_ingest_checkpoints, pm_dead_letters"); }
  long long count(const std::string& sql) { return query_count(tdb_->url(), sql); }

  // Sends the hello and every line of `lines`; expects them all acked without an error reply.
  void send_all(DaemonHarness& d, const std::string& format, const std::vector<std::string>& lines) {
    Producer p(d.socket());
    std::vector<std::string> all{R"({"hello":{"format":")" + format + R"("}})"};
    all.insert(all.end(), lines.begin(), lines.end());
    ASSERT_TRUE(p.send(all));
    std::vector<Reply> seen;
    ASSERT_TRUE(p.wait_ack(all.size(), 20s, &seen));
    for (const auto& r : seen) EXPECT_TRUE(r.is_ack) << r.error << " line " << r.line << ": " << r.detail;
  }

  void expect_rows(const std::vector<std::string>& lines, const std::vector<ExpectedTrade>& expected) {
    EXPECT_EQ(count("SELECT count(*) FROM polymarket_trades"), static_cast<long long>(expected.size()));
    pqxx::connection c(tdb_->url());
    pqxx::nontransaction tx(c);
    for (const auto& e : expected) {
      SCOPED_TRACE(e.trade_id);
      auto rows = tx.exec_params("SELECT condition_id, token_id, price, size, side, \"timestamp\", raw_json, outcome, "
                                 "outcome_index FROM polymarket_trades WHERE trade_id = $1", e.trade_id);
      ASSERT_EQ(rows.size(), 1u);
      const auto row = rows[0];
      EXPECT_EQ(row[0].as<std::string>(), kCond);
      EXPECT_EQ(row[1].as<std::string>(), e.token_id);
      EXPECT_NEAR(row[2].as<double>(), e.price, 1e-6);
      EXPECT_NEAR(row[3].as<double>(), e.size, e.size * 1e-6);
      EXPECT_EQ(row[4].as<std::string>(), e.side);
      EXPECT_EQ(row[5].as<long long>(), e.timestamp_ms);  // milliseconds, the table's default unit
      EXPECT_EQ(row[6].as<std::string>(), element_text(lines.at(e.line), e.element));
      EXPECT_EQ(row[7].is_null() ? std::nullopt : std::optional(row[7].as<std::string>()), e.outcome);
      EXPECT_EQ(row[8].is_null() ? std::nullopt : std::optional(row[8].as<int>()), e.outcome_index);
    }
  }

  // Waits until the writer applied `events` events, so every row (or dedup hit) is in.
  static void wait_applied(DaemonHarness& d, double events) {
    ASSERT_TRUE(wait_until([&] { return d.metric("pm_ingest_applied_events_total") == events; }, 20s)) << d.metrics();
  }

  static TestDatabase* tdb_;
};
TestDatabase* PolymarketPayloadsTest::tdb_ = nullptr;

double series(DaemonHarness& d, const std::string& format, const std::string& type) {
  return d.metric("pm_ingest_polymarket_messages_total{event_type=\"" + type + "\",format=\"" + format + "\"}");
}

TEST_F(PolymarketPayloadsTest, ClobWsMarketFixture) {
  DaemonHarness d(tdb_->url());
  d.start();
  const auto lines = fixture_lines("clob-ws-market");
  send_all(d, "clob-ws-market", lines);
  wait_applied(d, 6);  // six last_trade_price messages, one of them sent three times
  expect_rows(lines, expected_clob_ws_market());
  EXPECT_EQ(d.metric("pm_ingest_dedup_hits_total{kind=\"trade\"}"), 2);
  EXPECT_EQ(d.metric("pm_ingest_hellos_total{format=\"clob-ws-market\"}"), 1);
  EXPECT_EQ(series(d, "clob-ws-market", "last_trade_price"), 6);
  EXPECT_EQ(series(d, "clob-ws-market", "book"), 2);
  for (const char* type : {"price_change", "best_bid_ask", "tick_size_change", "new_market", "market_resolved", "unknown"})
    EXPECT_EQ(series(d, "clob-ws-market", type), 1) << type;
}

TEST_F(PolymarketPayloadsTest, DataApiTradesFixture) {
  DaemonHarness d(tdb_->url());
  d.start();
  const auto lines = fixture_lines("data-api-trades");
  send_all(d, "data-api-trades", lines);
  wait_applied(d, 6);
  expect_rows(lines, expected_data_api_trades());
  EXPECT_EQ(d.metric("pm_ingest_dedup_hits_total{kind=\"trade\"}"), 2);
  EXPECT_EQ(series(d, "data-api-trades", "trade"), 6);
}

TEST_F(PolymarketPayloadsTest, ClobRestTradesFixture) {
  DaemonHarness d(tdb_->url());
  d.start();
  const auto lines = fixture_lines("clob-rest-trades");
  send_all(d, "clob-rest-trades", lines);
  wait_applied(d, 4);
  expect_rows(lines, expected_clob_rest_trades());
  EXPECT_EQ(d.metric("pm_ingest_dedup_hits_total{kind=\"trade\"}"), 1);
  EXPECT_EQ(series(d, "clob-rest-trades", "trade"), 4);
}

// Each fixture through the producers a bot uses, `pm-ingestctl send --format` and the Python
// client (send_text, a hello per connection), twice (the second pass resends everything: it
// stores nothing new): the same rows, field by field, as above.
struct Fixture {
  std::string format;
  std::vector<ExpectedTrade> (*expected)();
  double events;  // trade messages in the file, duplicates included
};

struct ThroughProducers : PolymarketPayloadsTest, ::testing::WithParamInterface<std::tuple<std::string, Fixture>> {
  // Sends the fixture file twice with `via`; expects success.
  static void send_twice(DaemonHarness& d, const std::string& via, const std::string& format) {
    const std::string file = std::string(PM_FIXTURES_DIR) + "/polymarket/" + format + ".ndjson";
    for (int pass = 0; pass < 2; ++pass) {
      test::Run r{};
      if (via == "pm-ingestctl send") {
        r = run_ctl({"send", "--socket", d.socket(), "--format", format, "--input", file});
      } else {
        r = run_program("/usr/bin/python3", {std::string(PM_SOURCE_DIR) + "/tests/support/send_file.py",
                                             std::string(PM_SOURCE_DIR) + "/clients/python", d.socket(), format, file});
      }
      ASSERT_EQ(r.code, 0) << via << ": " << r.output;
    }
  }
};

TEST_P(ThroughProducers, StoreEachFixtureFieldByField) {
  const auto& [via, fixture] = GetParam();
  DaemonHarness d(tdb_->url());
  d.start();
  send_twice(d, via, fixture.format);
  wait_applied(d, 2 * fixture.events);
  expect_rows(fixture_lines(fixture.format), fixture.expected());
  EXPECT_EQ(d.metric("pm_ingest_hellos_total{format=\"" + fixture.format + "\"}"), 2);
}

INSTANTIATE_TEST_SUITE_P(
    Polymarket, ThroughProducers,
    ::testing::Combine(::testing::Values("pm-ingestctl send", "python client"),
                       ::testing::Values(Fixture{"clob-ws-market", expected_clob_ws_market, 6},
                                         Fixture{"data-api-trades", expected_data_api_trades, 6},
                                         Fixture{"clob-rest-trades", expected_clob_rest_trades, 4})),
    [](const auto& info) {
      std::string name = std::get<0>(info.param) + "_" + std::get<1>(info.param).format;
      for (char& c : name)
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
      return name;
    });

std::string rest_trade(const std::string& id, const std::string& price) {
  return R"({"id":")" + id + R"(","market":"0xc","asset_id":"tok","side":"SELL","size":"3","price":")" + price +
         R"(","match_time":"1750428300","outcome":"No"})";
}

TEST_F(PolymarketPayloadsTest, AnArrayLineWithOneBadElementStoresNothingOfIt) {
  DaemonHarness d(tdb_->url());
  d.start();
  Producer p(d.socket());
  ASSERT_TRUE(p.send({R"({"hello":{"format":"clob-rest-trades"}})",
                      "[" + rest_trade("a1", "0.5") + "," + rest_trade("a2", "0.6") + "," + rest_trade("a3", "1.5") + "]",
                      rest_trade("b1", ".25")}));
  std::vector<Reply> seen;
  ASSERT_TRUE(p.wait_ack(3, 10s, &seen));
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].error, "range");
  EXPECT_EQ(seen[0].line, 2u);
  EXPECT_EQ(seen[0].detail.rfind("[2] 'price'", 0), 0u) << seen[0].detail;
  wait_applied(d, 1);
  EXPECT_EQ(trade_ids(tdb_->url()), std::set<std::string>{"b1"});
}

TEST_F(PolymarketPayloadsTest, HelloRulesOnTheWire) {
  DaemonHarness d(tdb_->url());
  d.start();
  Producer p(d.socket());
  ASSERT_TRUE(p.send({R"({"hello":{"format":"gamma-markets"}})", trade_line("c", "v1"),
                      R"({"hello":{"format":"clob-rest-trades"}})"}));
  std::vector<Reply> seen;
  ASSERT_TRUE(p.wait_ack(3, 10s, &seen));
  ASSERT_EQ(seen.size(), 4u);  // three errors, then the ack that answers them all
  EXPECT_TRUE(seen[3].is_ack);
  EXPECT_EQ(seen[0].error, "schema");
  EXPECT_EQ(seen[0].line, 1u);
  EXPECT_NE(seen[0].detail.find("known formats: pm-ingestd, clob-ws-market"), std::string::npos) << seen[0].detail;
  // After a refused hello no line of the connection is read: the v1 trade of line 2 is not stored.
  for (std::size_t i : {1u, 2u}) {
    EXPECT_EQ(seen[i].error, "schema");
    EXPECT_EQ(seen[i].line, i + 1);
    EXPECT_NE(seen[i].detail.find("line 1, a hello, was refused"), std::string::npos) << seen[i].detail;
  }
  EXPECT_EQ(d.metric("pm_ingest_events_rejected_total{reason=\"schema\"}"), 3);
  // A new connection without a hello speaks protocol v1.
  Producer v1(d.socket());
  ASSERT_TRUE(v1.send({trade_line("c", "v1")}));
  ASSERT_TRUE(v1.wait_ack(1, 10s));
  wait_applied(d, 1);
  EXPECT_EQ(trade_ids(tdb_->url()), std::set<std::string>{"v1"});
}

// A line larger than the whole --wal-max-bytes is taken when nothing is unapplied: refusing it
// then would answer `busy` to it forever (the budget is checked per chunk read).
TEST_F(PolymarketPayloadsTest, ALineLargerThanTheWholeBudgetIsTakenWhenNothingIsUnapplied) {
  DaemonHarness d(tdb_->url(), {"--wal-max-bytes", "1K"});
  d.start();
  const auto lines = fixture_lines("data-api-trades");  // line 0: three trades of ~700 bytes each
  Producer p(d.socket());
  ASSERT_TRUE(p.send({R"({"hello":{"format":"data-api-trades"}})", lines[0]}));
  std::vector<Reply> seen;
  ASSERT_TRUE(p.wait_ack(2, 10s, &seen));
  for (const auto& r : seen) EXPECT_TRUE(r.is_ack) << r.error << " line " << r.line << ": " << r.detail;
  wait_applied(d, 3);
  EXPECT_EQ(count("SELECT count(*) FROM polymarket_trades"), 3);
}

// Busy is for a whole line: a line whose trades do not fit the backlog budget stores none of them.
// The database is unreachable at first, so what the log takes stays unapplied and fills the budget.
TEST_F(PolymarketPayloadsTest, BusyRefusesAWholeLine) {
  const std::string unreachable = unreachable_database_url();
  DaemonHarness d(unreachable, {"--wal-max-bytes", "2K"});
  d.start();
  const auto lines = fixture_lines("data-api-trades");  // line 0: three trades of ~700 bytes each
  Producer p(d.socket());
  // One line at a time: busy is decided per chunk read, and these must not share one.
  ASSERT_TRUE(p.send({R"({"hello":{"format":"data-api-trades"}})", lines[2]}));  // one trade: the log was empty
  std::vector<Reply> seen;
  ASSERT_TRUE(p.wait_ack(2, 10s, &seen));
  for (const auto& r : seen) EXPECT_TRUE(r.is_ack) << r.error << " line " << r.line << ": " << r.detail;
  seen.clear();
  ASSERT_TRUE(p.send({lines[0]}));  // three more trades: 4 x ~700 bytes do not fit 2K
  ASSERT_TRUE(p.wait_ack(3, 10s, &seen));
  ASSERT_EQ(seen.size(), 2u);  // the refusal, then the ack that covers the line
  EXPECT_EQ(seen[0].error, "busy");
  EXPECT_EQ(seen[0].line, 3u);
  seen.clear();
  ASSERT_TRUE(p.send({"[]"}));  // no event: acknowledged even over the budget
  ASSERT_TRUE(p.wait_ack(4, 10s, &seen));
  for (const auto& r : seen) EXPECT_TRUE(r.is_ack) << r.error << " line " << r.line << ": " << r.detail;
  EXPECT_EQ(d.stop(), 0);
  d.database_url() = tdb_->url();
  d.start();
  wait_applied(d, 1);
  EXPECT_EQ(count("SELECT count(*) FROM polymarket_trades"), 1);
  pqxx::connection c(tdb_->url());
  pqxx::nontransaction tx(c);
  EXPECT_EQ(tx.exec1("SELECT raw_json FROM polymarket_trades")[0].as<std::string>(), lines[2]);
}

}  // namespace
}  // namespace pm::test
