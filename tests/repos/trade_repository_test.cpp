// TradeRepository and TradeWatermarkRepository against a real PostgreSQL (storage-api.md T13-T21
// and the fixes for D1, D5, D10, D11; issue 16: unit checks on write, the G1 cut-off inside retries).
#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <limits>

#include "repos/util/clock.h"
#include "repos/copy_in.h"
#include "repos/pg_errors.h"
#include "repos/trade_repository.h"
#include "tests/support/process.h"
#include "tests/support/test_database.h"

#include <thread>

namespace pm {
namespace {

// A trade time in epoch milliseconds (the default unit): small offsets from it stay of that size.
constexpr std::int64_t T0 = 1'700'000'000'000;

class TradeRepositoryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { tdb_ = new test::TestDatabase("trades"); }
  static void TearDownTestSuite() { delete tdb_; }
  void SetUp() override { tdb_->exec("TRUNCATE polymarket_trades, trade_watermarks"); }

  static PolymarketTrade sample(std::string trade_id = "trade_001", std::int64_t ts = now_epoch_ms(),
                                std::string cid = "0xabc123") {
    PolymarketTrade t;
    t.condition_id = std::move(cid);
    t.trade_id = std::move(trade_id);
    t.token_id = "0xtoken123";
    t.price = 0.75;
    t.size = 100;
    t.side = "BUY";
    t.timestamp = ts;
    t.outcome = "Yes";
    t.outcome_index = 0;
    return t;
  }
  static test::TestDatabase* tdb_;
};
test::TestDatabase* TradeRepositoryTest::tdb_ = nullptr;

TEST_F(TradeRepositoryTest, CreateReturnsTheInsertedRow) {
  TradeRepository repo(tdb_->db());
  auto result = repo.create(sample());
  EXPECT_TRUE(result.inserted);
  EXPECT_EQ(result.row.condition_id, "0xabc123");
  EXPECT_EQ(result.row.trade_id, "trade_001");
  EXPECT_NEAR(*result.row.price, 0.75, 1e-6);
  EXPECT_FALSE(result.row.raw_json.has_value());
}

TEST_F(TradeRepositoryTest, DuplicateCreateReportsTheStoredRowNotTheInput) {
  TradeRepository repo(tdb_->db());
  repo.create(sample());
  auto changed = sample();
  changed.price = 0.5;
  auto result = repo.create(changed);
  EXPECT_FALSE(result.inserted);
  EXPECT_NEAR(*result.row.price, 0.75, 1e-6);  // what is stored, not what was sent
  EXPECT_EQ(repo.count(), 1);
}

TEST_F(TradeRepositoryTest, GetByConditionNewestFirstWithLimit) {
  TradeRepository repo(tdb_->db());
  repo.create(sample("trade_001", T0 + 1000));
  repo.create(sample("trade_002", T0 + 3000));
  repo.create(sample("trade_003", T0 + 2000));
  repo.create(sample("other", T0 + 5000, "0xother"));
  auto all = repo.get_by_condition("0xabc123");
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].trade_id, "trade_002");
  EXPECT_EQ(all[2].trade_id, "trade_001");
  EXPECT_EQ(repo.get_by_condition("0xabc123", 1).size(), 1u);
  EXPECT_TRUE(repo.get_by_condition("0xnone").empty());
}

TEST_F(TradeRepositoryTest, CreateManyCountsOnlyRealInserts) {
  TradeRepository repo(tdb_->db());
  std::vector<PolymarketTrade> batch;
  for (int i = 0; i < 5; ++i) batch.push_back(sample("bulk_" + std::to_string(i), T0 + 1000 + i, "0xbulk"));
  EXPECT_EQ(repo.create_many(batch), 5u);
  EXPECT_EQ(repo.get_by_condition("0xbulk").size(), 5u);
  // Three already stored, two new, one repeated inside the batch itself.
  std::vector<PolymarketTrade> mixed(batch.begin(), batch.begin() + 3);
  mixed.push_back(sample("bulk_new1", T0 + 2000, "0xbulk"));
  mixed.push_back(sample("bulk_new2", T0 + 2001, "0xbulk"));
  mixed.push_back(sample("bulk_new2", T0 + 2002, "0xbulk"));
  EXPECT_EQ(repo.create_many(mixed), 2u);
  EXPECT_EQ(repo.count(), 7);
  EXPECT_EQ(repo.get("0xbulk", "bulk_new2")->timestamp, T0 + 2001);  // the first of equal keys wins
  EXPECT_EQ(repo.create_many({}), 0u);
}

// A key stored by a concurrent transaction after the bulk insert looked for existing keys: the
// direct COPY fails on the primary key, and the batch is applied through the staging path.
TEST_F(TradeRepositoryTest, BulkInsertSurvivesAConcurrentWriterOfTheSameKey) {
  TradeRepository repo(tdb_->db());
  pqxx::connection other(tdb_->url());
  pqxx::work racing(other);
  racing.exec("INSERT INTO polymarket_trades (condition_id, trade_id) VALUES ('race', 'k1')");
  TradeBatchResult result;
  std::thread writer([&] { result = repo.ingest_batch({sample("k0", T0 + 1, "race"), sample("k1", T0 + 5, "race"), sample("k2", T0 + 3, "race")}); });
  // The bulk COPY waits for the racing transaction's uncommitted key.
  ASSERT_TRUE(test::wait_until([&] {
    return tdb_->count("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()") == 1;
  }, std::chrono::seconds(20)));
  racing.commit();
  writer.join();
  EXPECT_EQ(result.inserted, 2u);
  EXPECT_EQ(result.watermarks_advanced, 1u);
  EXPECT_EQ(TradeWatermarkRepository(tdb_->db()).get_timestamp("race"), T0 + 3);  // from the rows stored here only
  EXPECT_EQ(tdb_->count("SELECT count(*) FROM polymarket_trades WHERE condition_id = 'race'"), 3);
  EXPECT_FALSE(repo.get("race", "k1")->timestamp);  // the racing writer's row, not ours
}

TEST_F(TradeRepositoryTest, CreateManyStoresAwkwardTextExactly) {
  TradeRepository repo(tdb_->db());
  auto t = sample("tab\there \"quoted\" back\\slash {brace,comma}");
  t.raw_json = "{\"a\":\"line\\nbreak\", \"b\":\"back\\\\slash\"}\n\tand\rmore\\N";
  t.token_id.reset();
  t.price.reset();
  EXPECT_EQ(repo.create_many({t}), 1u);
  EXPECT_EQ(repo.create_many({t}), 0u);  // the same awkward key again: nothing new
  auto stored = repo.get("0xabc123", t.trade_id);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->raw_json, t.raw_json);
  EXPECT_FALSE(stored->token_id);
  EXPECT_FALSE(stored->price);
}

// The word-at-a-time scan must find a special byte wherever it sits in an 8-byte word, and near
// the end of a string too; compared with a byte-by-byte escaper.
TEST(CopyText, EscapesEverySpecialByteAtEveryPosition) {
  auto reference = [](std::string_view v) {
    std::string out;
    for (char c : v) {
      if (c == '\\') out += "\\\\";
      else if (c == '\t') out += "\\t";
      else if (c == '\n') out += "\\n";
      else if (c == '\r') out += "\\r";
      else out += c;
    }
    return out;
  };
  for (char special : {'\\', '\t', '\n', '\r'}) {
    for (std::size_t len = 0; len <= 40; ++len) {
      for (std::size_t at = 0; at < len; ++at) {
        std::string v(len, 'x');
        for (std::size_t i = 0; i < len; ++i) v[i] = static_cast<char>(0x80 | (i * 37));  // high bytes too
        v[at] = special;
        if (at + 9 < len) v[at + 9] = '\\';
        std::string out = "prefix";
        append_copy_text(out, v);
        EXPECT_EQ(out, "prefix" + reference(v)) << "length " << len << ", special at " << at;
      }
    }
  }
  std::string plain;
  append_copy_text(plain, "no specials at all in this long line of text");
  EXPECT_EQ(plain, "no specials at all in this long line of text");
}

// The bulk path sends REAL columns in binary: each value must be the float the server would have
// made of the double's shortest decimal text (what the text path sent), edge values included.
TEST_F(TradeRepositoryTest, BulkRealsAreStoredAsTheServerRoundsTheirText) {
  const std::vector<double> values = {0.5, 0.537, 0.1, 1.0 / 3, 123456.789, 0.999, 3.4028234663852886e38,
                                      1.17549435e-38, 1e-40, 1.4e-45, 0.0, -0.0, 5000.01};
  std::vector<PolymarketTrade> trades;
  for (std::size_t i = 0; i < values.size(); ++i) {
    auto t = sample("real" + std::to_string(i));
    t.price = values[i];
    t.size = values[values.size() - 1 - i];
    trades.push_back(t);
  }
  ASSERT_EQ(TradeRepository(tdb_->db()).create_many(trades), values.size());
  pqxx::connection c(tdb_->url());
  pqxx::nontransaction tx(c);
  for (std::size_t i = 0; i < values.size(); ++i) {
    auto text = [](double d) {
      char buf[40];
      return std::string(buf, std::to_chars(buf, buf + sizeof buf, d).ptr);
    };
    const auto row = tx.exec_params1(
        "SELECT price = $1::real AND size = $2::real, price::text, size::text FROM polymarket_trades WHERE trade_id = $3",
        text(values[i]), text(values[values.size() - 1 - i]), "real" + std::to_string(i));
    EXPECT_TRUE(row[0].as<bool>()) << values[i] << " stored as " << row[1].c_str() << " / " << row[2].c_str();
  }
}

TEST_F(TradeRepositoryTest, BulkRealOutOfRangeIsADataErrorAndNothingIsStored) {
  auto good = sample("fine");
  auto bad = sample("too_big");
  bad.size = 1e39;
  TradeRepository repo(tdb_->db());
  try {
    repo.create_many({good, bad});
    FAIL() << "1e39 was accepted as a REAL";
  } catch (const pqxx::sql_error& e) {
    EXPECT_EQ(e.sqlstate(), "22003") << e.what();
    EXPECT_NE(std::string(e.what()).find("out of range for type real"), std::string::npos) << e.what();
  }
  EXPECT_EQ(repo.count(), 0);
  EXPECT_EQ(repo.create_many({good}), 1u);  // the pool's connections are fine afterwards
}

TEST_F(TradeRepositoryTest, CreateManyIsAllOrNothing) {
  TradeRepository repo(tdb_->db());
  auto good = sample("good");
  auto bad = sample("bad");
  bad.size = 1e39;  // beyond float4: the server refuses it
  EXPECT_THROW(repo.create_many({good, bad}), pqxx::sql_error);
  EXPECT_EQ(repo.count(), 0);
}

TEST_F(TradeRepositoryTest, IngestBatchAdvancesWatermarksToNewestInserted) {
  TradeRepository repo(tdb_->db());
  TradeWatermarkRepository marks(tdb_->db());
  auto r = repo.ingest_batch({sample("a", T0 + 5000, "c1"), sample("b", T0 + 7000, "c1"), sample("c", T0 + 100, "c2")});
  EXPECT_EQ(r.inserted, 3u);
  EXPECT_EQ(r.watermarks_advanced, 2u);
  EXPECT_EQ(marks.get_timestamp("c1"), T0 + 7000);
  EXPECT_EQ(marks.get_timestamp("c2"), T0 + 100);
  // An older trade later never moves the watermark back.
  repo.ingest_batch({sample("d", T0 + 6000, "c1")});
  EXPECT_EQ(marks.get_timestamp("c1"), T0 + 7000);
}

// advance_watermarks' `written_at_ms` holds one arrival time per row of `rows` (or none), indexed by
// row: one per selected row was read past its end [an updated_at from whatever memory followed,
// and the watermark written], and so was `rows` for an index of `which` beyond it. Both are refused
// before any SQL, as watermark_statement refused the first already.
TEST_F(TradeRepositoryTest, AdvanceWatermarksRefusesArrivalTimesThatAreNotOnePerRow) {
  TradeRepository repo(tdb_->db());
  const std::vector<PolymarketTrade> trades{sample("a", T0 + 1, "c1"), sample("b", T0 + 2, "c2"), sample("c", T0 + 3, "c3")};
  std::vector<TradeRow> rows;  // views of `trades`
  for (const PolymarketTrade& t : trades) rows.push_back(trade_row_of(t));
  const std::vector<std::size_t> which{0, 2};
  const std::vector<std::int64_t> one_per_selected_row{T0 + 10, T0 + 30};
  EXPECT_THROW(repo.advance_watermarks(rows, which, one_per_selected_row), std::invalid_argument);
  const std::vector<std::size_t> beyond_rows{0, 3};
  EXPECT_THROW(repo.advance_watermarks(rows, beyond_rows), std::invalid_argument);
  EXPECT_EQ(tdb_->count("trade_watermarks"), 0);
  // One per row (or none) is what it takes.
  const std::vector<std::int64_t> one_per_row{T0 + 10, T0 + 20, T0 + 30};
  EXPECT_EQ(repo.advance_watermarks(rows, which, one_per_row), 2u);
  EXPECT_EQ(tdb_->count("SELECT count(*) FROM trade_watermarks WHERE condition_id = 'c3' AND updated_at = '" +
                        format_iso_ms(T0 + 30) + "'"),
            1);
}

// A batch is sent in primary-key order (index locality); the order changes nothing else: the
// first of equal keys still wins (also when the duplicate comes last, far from the first), and
// the indices returned are ascending input positions. Binary COPY in a transaction, text COPY
// outside one.
void expect_key_order_changes_only_the_order(TradeRepository& repo, test::TestDatabase& tdb,
                                             PolymarketTrade (*make)(std::string, std::int64_t, std::string)) {
  std::vector<PolymarketTrade> input;
  for (int i = 39; i >= 0; --i) input.push_back(make("t" + std::to_string(100 + i), T0 + 1000 + i, "c" + std::to_string(i % 7)));
  input.push_back(make(input[3].trade_id, T0 + 5, input[3].condition_id));  // a later duplicate of row 3
  std::vector<TradeRow> rows;
  for (const auto& t : input) rows.push_back(trade_row_of(t));
  std::vector<std::size_t> expected(40);
  for (std::size_t i = 0; i < expected.size(); ++i) expected[i] = i;
  EXPECT_EQ(repo.insert_rows(rows), expected);
  EXPECT_EQ(tdb.count("SELECT count(*) FROM polymarket_trades WHERE trade_id = '" + input[3].trade_id + "' AND \"timestamp\" = " +
                      std::to_string(*input[3].timestamp)),
            1);  // row 3's values, not the duplicate's
  EXPECT_EQ(tdb.count(R"(SELECT count(*) FROM (
      SELECT row_number() OVER (ORDER BY ctid) AS physical,
             row_number() OVER (ORDER BY condition_id COLLATE "C", trade_id COLLATE "C") AS by_key
      FROM polymarket_trades) t WHERE physical <> by_key)"), 0);
  EXPECT_EQ(tdb.count("polymarket_trades"), 40);
}

TEST_F(TradeRepositoryTest, BulkRowsAreCopiedInKeyOrderAndTheFirstOfEqualKeysStillWins) {
  TradeRepository repo(tdb_->db());
  expect_key_order_changes_only_the_order(repo, *tdb_, &TradeRepositoryTest::sample);
}

TEST_F(TradeRepositoryTest, TextCopyOutsideATransactionIsInKeyOrderToo) {
  pqxx::connection c(tdb_->url());
  pqxx::nontransaction tx(c);
  TradeRepository repo(tx, TimestampUnit::Milliseconds);
  expect_key_order_changes_only_the_order(repo, *tdb_, &TradeRepositoryTest::sample);
}

// Copy-first mode: the primary key refuses the COPY, the stored keys are looked up, the rest lands.
TEST_F(TradeRepositoryTest, IngestBatchCopyFirstFallsBackToALookUpOnDuplicates) {
  TradeRepository repo(tdb_->db());
  repo.create(sample("already", T0 + 100, "cf"));
  auto r = repo.ingest_batch({sample("new1", T0 + 300, "cf"), sample("already", T0 + 999, "cf"), sample("new2", T0 + 200, "cf")},
                             DuplicateProbe::OnConflict);
  EXPECT_EQ(r.inserted, 2u);
  EXPECT_EQ(tdb_->count("SELECT count(*) FROM polymarket_trades WHERE condition_id = 'cf'"), 3);
  EXPECT_EQ(repo.get("cf", "already")->timestamp, T0 + 100);
  EXPECT_EQ(TradeWatermarkRepository(tdb_->db()).get_timestamp("cf"), T0 + 300);  // from inserted rows only
  EXPECT_EQ(repo.ingest_batch({sample("new3", T0 + 50, "cf")}, DuplicateProbe::OnConflict).inserted, 1u);
  EXPECT_EQ(TradeWatermarkRepository(tdb_->db()).get_timestamp("cf"), T0 + 300);  // never backwards
}

TEST_F(TradeRepositoryTest, LatestTimestamp) {
  TradeRepository repo(tdb_->db());
  EXPECT_FALSE(repo.get_latest_timestamp("0xabc123"));
  repo.create(sample("a", T0 + 1234));
  EXPECT_EQ(repo.get_latest_timestamp("0xabc123"), T0 + 1234);
}

// get_latest_timestamp is storage-api.md 2.1's SELECT MAX(timestamp): it reports a row far in the
// future (another writer's) as stored, where get_recent (G1) leaves that row out. This pins the
// documented difference (trade_repository.h); it is no change of behaviour.
TEST_F(TradeRepositoryTest, LatestTimestampIsTheLargestStoredEvenFarAheadWhereGetRecentBoundsIt) {
  const std::int64_t now = now_epoch_ms();
  const std::int64_t far_ahead = now + 2 * kMaxFutureMs;
  tdb_->exec("INSERT INTO polymarket_trades (condition_id, trade_id, \"timestamp\") VALUES ('0xabc123', 'ahead', " +
             std::to_string(far_ahead) + ")");
  TradeRepository repo(tdb_->db());
  repo.create(sample("now", now));
  EXPECT_EQ(repo.get_latest_timestamp("0xabc123"), far_ahead);
  const auto recent = repo.get_recent_at("0xabc123", 300, now);
  ASSERT_EQ(recent.size(), 1u);
  EXPECT_EQ(recent[0].trade_id, "now");
}

TEST_F(TradeRepositoryTest, ExistsAndRemove) {
  TradeRepository repo(tdb_->db());
  repo.create(sample());
  EXPECT_TRUE(repo.exists("0xabc123", "trade_001"));
  EXPECT_TRUE(repo.remove("0xabc123", "trade_001"));
  EXPECT_FALSE(repo.remove("0xabc123", "trade_001"));
  EXPECT_FALSE(repo.exists("0xabc123", "trade_001"));
}

// G1 in milliseconds (the production unit): a trade older than the limit is never returned.
TEST_F(TradeRepositoryTest, GetRecentHonoursMilliseconds) {
  TradeRepository repo(tdb_->db());
  ASSERT_EQ(repo.unit(), TimestampUnit::Milliseconds);
  const std::int64_t now = 1'700'000'000'000;
  repo.create(sample("old", now - 600'000));
  repo.create(sample("edge_old", now - 300'001));
  repo.create(sample("edge_ok", now - 300'000));
  repo.create(sample("recent", now - 60'000));
  auto recent = repo.get_recent_at("0xabc123", 300, now);
  ASSERT_EQ(recent.size(), 2u);
  EXPECT_EQ(recent[0].trade_id, "recent");
  EXPECT_EQ(recent[1].trade_id, "edge_ok");
}

// The original defect: seconds-based cut-off against millisecond rows let every trade through.
TEST_F(TradeRepositoryTest, GetRecentWithTheRealClockDropsStaleTrades) {
  TradeRepository repo(tdb_->db());
  repo.create(sample("stale", now_epoch_ms() - 600'000));
  repo.create(sample("fresh", now_epoch_ms() - 60'000));
  auto recent = repo.get_recent("0xabc123");
  ASSERT_EQ(recent.size(), 1u);
  EXPECT_EQ(recent[0].trade_id, "fresh");
}

// G1 in seconds, for databases that store seconds.
TEST_F(TradeRepositoryTest, GetRecentHonoursSeconds) {
  auto config = tdb_->config();
  config.trade_timestamp_unit = TimestampUnit::Seconds;
  Database db(config);
  TradeRepository repo(db);
  const std::int64_t now_ms = 1'700'000'000'500;
  const std::int64_t now_s = now_ms / 1000;
  repo.create(sample("old", now_s - 600));
  repo.create(sample("edge_old", now_s - 300));  // 300.5 s old at now_ms: too old
  repo.create(sample("edge_ok", now_s - 299));
  repo.create(sample("recent", now_s - 60));
  auto recent = repo.get_recent_at("0xabc123", 300, now_ms);
  ASSERT_EQ(recent.size(), 2u);
  EXPECT_EQ(recent[0].trade_id, "recent");
  EXPECT_EQ(recent[1].trade_id, "edge_ok");
}

// A reader set to the other unit than the rows were written in returned [] for every condition,
// for ever (G1 then says "nothing recent" about a live market), or every old trade as recent.
// It says what is wrong instead; a condition with no trades agrees with either unit.
TEST_F(TradeRepositoryTest, GetRecentRefusesAConditionStoredInTheOtherUnit) {
  TradeRepository ms_repo(tdb_->db());
  ms_repo.create(sample("fresh", now_epoch_ms() - 60'000));
  auto config = tdb_->config();
  config.trade_timestamp_unit = TimestampUnit::Seconds;
  Database seconds_db(config);
  TradeRepository seconds_repo(seconds_db);
  try {
    seconds_repo.get_recent("0xabc123");
    ADD_FAILURE() << "a seconds reader read milliseconds rows";
  } catch (const TimestampUnitError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("polymarket_trades of condition '0xabc123' holds epoch milliseconds (ms)"), std::string::npos) << what;
    EXPECT_NE(what.find("set it to ms"), std::string::npos) << what;
  }
  EXPECT_TRUE(seconds_repo.get_recent("no_trades_here").empty());
  EXPECT_TRUE(seconds_repo.get_recent("").empty());  // an empty key is a key, not "no parameter"

  const std::int64_t now_s = now_epoch_ms() / 1000;
  auto seconds_trade = sample("in_seconds", now_s - 60);
  seconds_trade.condition_id = "0xseconds";
  seconds_repo.create(seconds_trade);
  EXPECT_EQ(seconds_repo.get_recent("0xseconds").size(), 1u);
  EXPECT_THROW(ms_repo.get_recent("0xseconds"), TimestampUnitError);
  EXPECT_EQ(ms_repo.get_recent("0xabc123").size(), 1u);

  // With trade watermarks in milliseconds, the table is milliseconds: a condition holding another
  // writer's second-sized rows is read as before (nothing of it is recent), not refused; a seconds
  // reader is still refused, and the message says the watermarks agree.
  TradeWatermarkRepository(tdb_->db()).update("0xabc123", now_epoch_ms() - 60'000);
  EXPECT_TRUE(ms_repo.get_recent("0xseconds").empty());
  try {
    seconds_repo.get_recent("0xabc123");
    ADD_FAILURE() << "a seconds reader read milliseconds rows";
  } catch (const TimestampUnitError& e) {
    EXPECT_NE(std::string(e.what()).find("; trade_watermarks agrees (its newest is "), std::string::npos) << e.what();
  }
}

// DatabaseConfig::from_env reads the daemon's unit variable, so a bot that shares the daemon's
// environment file reads in the unit the daemon writes in; another value is refused by name.
TEST(DatabaseConfigFromEnv, ReadsTheDaemonsTradeTimestampUnit) {
  ::unsetenv(DatabaseConfig::kTradeTimestampUnitVariable);
  EXPECT_EQ(DatabaseConfig::from_env().trade_timestamp_unit, TimestampUnit::Milliseconds);
  ::setenv(DatabaseConfig::kTradeTimestampUnitVariable, "s", 1);
  EXPECT_EQ(DatabaseConfig::from_env().trade_timestamp_unit, TimestampUnit::Seconds);
  ::setenv(DatabaseConfig::kTradeTimestampUnitVariable, "minutes", 1);
  try {
    DatabaseConfig::from_env();
    ADD_FAILURE() << "an unknown unit was taken";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("PM_INGESTD_TRADE_TIMESTAMP_UNIT must be ms or s ('minutes' given)"),
              std::string::npos) << e.what();
  }
  ::unsetenv(DatabaseConfig::kTradeTimestampUnitVariable);
}

TEST_F(TradeRepositoryTest, RepositoriesJoinACallersTransaction) {
  try {
    tdb_->db().transaction([](pqxx::work& tx) {
      TradeRepository trades(tx, TimestampUnit::Milliseconds);
      TradeWatermarkRepository marks(tx, TimestampUnit::Milliseconds);
      trades.create(sample("in_tx", T0 + 10));
      marks.update("0xabc123", T0 + 10);
      EXPECT_EQ(trades.count(), 1);  // visible inside the transaction
      throw std::runtime_error("abort");
    });
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(tdb_->count("polymarket_trades"), 0);
  EXPECT_EQ(tdb_->count("trade_watermarks"), 0);
  tdb_->db().transaction([](pqxx::work& tx) {
    TradeRepository(tx, TimestampUnit::Milliseconds).create(sample("in_tx", T0 + 10));
    TradeWatermarkRepository(tx, TimestampUnit::Milliseconds).update("0xabc123", T0 + 10);
  });
  EXPECT_EQ(tdb_->count("polymarket_trades"), 1);
  EXPECT_EQ(tdb_->count("trade_watermarks"), 1);
}

TEST_F(TradeRepositoryTest, WatermarkPattern) {
  TradeRepository trades(tdb_->db());
  TradeWatermarkRepository marks(tdb_->db());
  EXPECT_EQ(marks.get_timestamp("0xabc123"), 0);
  EXPECT_FALSE(marks.get("0xabc123"));
  const std::int64_t now = now_epoch_ms();
  trades.create_many({sample("w1", now), sample("w2", now + 1), sample("w3", now + 2)});
  auto wm = marks.update("0xabc123", now + 2);
  EXPECT_EQ(wm.condition_id, "0xabc123");
  EXPECT_EQ(wm.last_timestamp, now + 2);
  EXPECT_EQ(wm.updated_at.size(), 27u);
  EXPECT_EQ(marks.get_timestamp("0xabc123"), now + 2);
  trades.create(sample("w4", now + 100));
  EXPECT_GT(*trades.get_latest_timestamp("0xabc123"), marks.get_timestamp("0xabc123"));
}

TEST_F(TradeRepositoryTest, WatermarkNeverMovesBackwards) {
  TradeWatermarkRepository marks(tdb_->db());
  marks.update("c", T0 + 2000);
  auto first = marks.get("c");
  auto wm = marks.update("c", T0 + 1000);
  EXPECT_EQ(wm.last_timestamp, T0 + 2000);
  EXPECT_GE(wm.updated_at, first->updated_at);
  EXPECT_EQ(marks.update("c", T0 + 3000).last_timestamp, T0 + 3000);
}

TEST_F(TradeRepositoryTest, ConcurrentWatermarkUpdatesKeepTheMaximum) {
  TradeWatermarkRepository marks(tdb_->db());
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 30; ++i) marks.update("race", T0 + (i * 7 + t * 13) % 100);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(marks.get_timestamp("race"), T0 + 99);
}

}  // namespace
}  // namespace pm

namespace pm {
namespace {

// The message of the TimestampUnitError `call` throws, or "no exception".
template <class Call>
std::string unit_error_of(Call&& call) {
  try {
    call();
  } catch (const TimestampUnitError& e) {
    return e.what();
  }
  return "no exception";
}

// Issue 16 risk 1 / D10: every write refuses a timestamp whose size does not fit the unit, before
// any SQL, naming the trade, the value and the unit.
TEST_F(TradeRepositoryTest, WritesRefuseTimestampsOfTheWrongSizeForTheUnit) {
  TradeRepository repo(tdb_->db());
  ASSERT_EQ(repo.unit(), TimestampUnit::Milliseconds);
  const std::int64_t seconds = 1'700'000'000;
  const auto in_seconds = sample("in_seconds", seconds);
  const std::string expected =
      "polymarket_trades.timestamp of trade (0xabc123, in_seconds) 1700000000 looks like epoch seconds but the "
      "configured trade_timestamp_unit is milliseconds (ms)";
  EXPECT_EQ(unit_error_of([&] { repo.create(in_seconds); }), expected);
  EXPECT_EQ(unit_error_of([&] { repo.create_many({sample("fine", T0), in_seconds}); }), expected);
  EXPECT_EQ(unit_error_of([&] { repo.ingest_batch({sample("fine", T0), in_seconds}); }), expected);
  const std::vector<TradeRow> rows{trade_row_of(in_seconds)};
  EXPECT_EQ(unit_error_of([&] { repo.insert_rows(rows); }), expected);
  EXPECT_NE(unit_error_of([&] { repo.create(sample("zero", 0)); }).find("0 must be > 0"), std::string::npos);
  EXPECT_NE(unit_error_of([&] { repo.create(sample("negative", -T0)); }).find("must be > 0"), std::string::npos);
  TradeWatermarkRepository marks(tdb_->db());
  EXPECT_NE(unit_error_of([&] { marks.update("0xabc123", seconds); }).find("last_timestamp 1700000000 looks like epoch seconds"),
            std::string::npos);
  EXPECT_EQ(repo.count(), 0);  // nothing of any refused call was written
  EXPECT_EQ(tdb_->count("trade_watermarks"), 0);

  auto no_time = sample("no_time");
  no_time.timestamp.reset();
  EXPECT_TRUE(repo.create(no_time).inserted);  // NULL is allowed

  // A seconds table refuses milliseconds (they would always be "recent": the G1 bug).
  auto config = tdb_->config();
  config.trade_timestamp_unit = TimestampUnit::Seconds;
  Database db(config);
  TradeRepository in_s(db);
  EXPECT_EQ(unit_error_of([&] { in_s.create(sample("in_ms", T0)); }),
            "polymarket_trades.timestamp of trade (0xabc123, in_ms) 1700000000000 looks like epoch milliseconds but "
            "the configured trade_timestamp_unit is seconds (s)");
  EXPECT_EQ(unit_error_of([&] { in_s.ingest_batch({sample("in_ms", T0)}); }).empty(), false);
  EXPECT_TRUE(in_s.create(sample("in_s", seconds)).inserted);
  // In a caller's transaction too (the unit is the one given).
  pqxx::connection c(tdb_->url());
  pqxx::work tx(c);
  EXPECT_NE(unit_error_of([&] { TradeRepository(tx, TimestampUnit::Milliseconds).create_many({in_seconds}); }),
            "no exception");
}

// A microsecond or nanosecond value is of millisecond size to the one-threshold rule: stored as the
// year ~55,000 it was returned by get_recent for ever, and a watermark moved to it hid every later
// trade (G1). Every write refuses it, naming the value and the unit it looks like.
TEST_F(TradeRepositoryTest, WritesRefuseMicrosecondAndNanosecondTimestamps) {
  TradeRepository repo(tdb_->db());
  ASSERT_EQ(repo.unit(), TimestampUnit::Milliseconds);
  const std::int64_t now_ms = now_epoch_ms();
  const std::int64_t now_us = now_ms * 1000;
  const auto in_us = sample("in_us", now_us);
  const std::string expected = "polymarket_trades.timestamp of trade (0xabc123, in_us) " + std::to_string(now_us) +
                               " looks like epoch microseconds but the configured trade_timestamp_unit is milliseconds (ms)";
  EXPECT_EQ(unit_error_of([&] { repo.create(in_us); }), expected);
  EXPECT_EQ(unit_error_of([&] { repo.create_many({sample("fine", now_ms), in_us}); }), expected);
  EXPECT_EQ(unit_error_of([&] { repo.ingest_batch({sample("fine", now_ms), in_us}); }), expected);
  const std::vector<TradeRow> rows{trade_row_of(in_us)};
  EXPECT_EQ(unit_error_of([&] { repo.insert_rows(rows); }), expected);
  EXPECT_NE(unit_error_of([&] { repo.create(sample("in_ns", now_ms * 1'000'000)); }).find("looks like epoch nanoseconds"),
            std::string::npos);
  EXPECT_EQ(repo.count(), 0);  // nothing of any refused call was written
  EXPECT_EQ(tdb_->count("trade_watermarks"), 0);

  TradeWatermarkRepository marks(tdb_->db());
  marks.update("c", now_ms);
  EXPECT_NE(unit_error_of([&] { marks.update("c", now_us); })
                .find("trade watermark of c: last_timestamp " + std::to_string(now_us) + " looks like epoch microseconds"),
            std::string::npos);
  EXPECT_EQ(marks.get_timestamp("c"), now_ms);  // unchanged: later trades still count as new
}

// The number after "the newest accepted is " in a far-future refusal, or -1.
std::int64_t bound_in(const std::string& message) {
  const std::string marker = "the newest accepted is ";
  const auto at = message.find(marker);
  return at == std::string::npos ? -1 : std::stoll(message.substr(at + marker.size()));
}

// G1 had no upper bound: a value the size of milliseconds (up to the year 5138) was stored, and a
// watermark moved to the far future made every later trade of its condition look processed, for
// ever. Every write refuses a timestamp more than a day after now (the daemon's rule for an event
// time after its arrival), naming the value and the newest accepted, before any SQL.
TEST_F(TradeRepositoryTest, WritesRefuseTimestampsMoreThanADayAhead) {
  TradeRepository repo(tdb_->db());
  TradeWatermarkRepository marks(tdb_->db());
  const std::int64_t now = now_epoch_ms();
  // A minute either side of the bound: the clock moves on between here and the check.
  const std::int64_t too_far = now + kMaxFutureMs + 60'000;
  const std::int64_t within = now + kMaxFutureMs - 60'000;
  const auto ahead = sample("ahead", too_far);
  const std::string expected = "polymarket_trades.timestamp of trade (0xabc123, ahead) " + std::to_string(too_far) +
                               " is more than 24 h ahead of now: the newest accepted is ";
  const std::vector<TradeRow> rows{trade_row_of(ahead)};
  const std::size_t first = 0;
  pqxx::connection c(tdb_->url());
  pqxx::nontransaction autocommit(c);
  for (const std::string& message : {
           unit_error_of([&] { repo.create(ahead); }),
           unit_error_of([&] { repo.create_many({sample("fine", now), ahead}); }),
           unit_error_of([&] { repo.ingest_batch({sample("fine", now), ahead}); }),
           unit_error_of([&] { repo.insert_rows(rows); }),
           unit_error_of([&] { TradeRepository(autocommit, TimestampUnit::Milliseconds).create_many({ahead}); }),
           unit_error_of([&] { repo.advance_watermarks(rows, std::span(&first, 1)); }),
       }) {
    ASSERT_EQ(message.substr(0, expected.size()), expected) << message;
    EXPECT_GE(bound_in(message), now + kMaxFutureMs);
    EXPECT_LT(bound_in(message), too_far);
    EXPECT_EQ(message.substr(message.find(" (epoch")), " (epoch ms)");
  }
  EXPECT_EQ(repo.count(), 0);  // nothing of any refused call was written
  EXPECT_EQ(tdb_->count("trade_watermarks"), 0);

  EXPECT_TRUE(repo.create(sample("within", within)).inserted);
  marks.update("c", within);
  const std::string refused = unit_error_of([&] { marks.update("c", too_far); });
  EXPECT_EQ(refused.substr(0, refused.find(" the newest")),
            "trade watermark of c: last_timestamp " + std::to_string(too_far) + " is more than 24 h ahead of now:");
  EXPECT_EQ(marks.get_timestamp("c"), within);  // later trades still count as new

  // In seconds, the bound is in seconds, rounded down.
  auto config = tdb_->config();
  config.trade_timestamp_unit = TimestampUnit::Seconds;
  Database db(config);
  TradeRepository in_s(db);
  const std::string in_s_refused = unit_error_of([&] { in_s.create(sample("ahead_s", too_far / 1000)); });
  EXPECT_NE(in_s_refused.find(" is more than 24 h ahead of now"), std::string::npos) << in_s_refused;
  EXPECT_GE(bound_in(in_s_refused), (now + kMaxFutureMs) / 1000) << in_s_refused;
  EXPECT_LT(bound_in(in_s_refused), too_far / 1000) << in_s_refused;
  EXPECT_EQ(in_s_refused.substr(in_s_refused.find(" (epoch")), " (epoch s)");
  EXPECT_TRUE(in_s.create(sample("within_s", within / 1000)).inserted);
}

// The message of the RefusedValueError `call` throws, or "no exception"; a refusal must be a data
// error (classify_exception), which the ingest writer dead-letters instead of retrying its batch.
template <class Call>
std::string refusal_of(Call&& call) {
  try {
    call();
  } catch (const RefusedValueError& e) {
    EXPECT_EQ(classify_exception(e), PgErrorKind::Data) << e.what();
    return e.what();
  }
  return "no exception";
}

// The primary key (condition_id, trade_id) takes '': create(), create_many() and the bulk paths
// stored a trade with an empty condition_id or trade_id [inserted], and a later trade lacking the
// same column was dropped as its "duplicate". Every trade write refuses it now, before any SQL
// (RefusedValueError naming the empty column), as the triggers refuse an empty key (require_key),
// on every route: the Database, a caller's nontransaction, and the ingest writer's (a caller's
// transaction, owed statements, FutureBound::CheckedOnArrival). A batch with one writes nothing.
TEST_F(TradeRepositoryTest, WritesRefuseAnEmptyConditionIdOrTradeId) {
  TradeRepository repo(tdb_->db());
  pqxx::connection autocommit_connection(tdb_->url());
  pqxx::nontransaction autocommit(autocommit_connection);
  pqxx::connection writer_connection(tdb_->url());
  pqxx::work writer_tx(writer_connection);
  const TradeRepository writer(writer_tx, TimestampUnit::Milliseconds, FutureBound::CheckedOnArrival);
  const auto no_condition = sample("t1", T0, "");
  const auto no_trade_id = sample("", T0, "0xabc123");
  const std::pair<PolymarketTrade, std::string> cases[] = {
      {no_condition, "polymarket_trades.condition_id of trade 't1' is empty"},
      {no_trade_id, "polymarket_trades.trade_id of a trade of condition '0xabc123' is empty"},
  };
  const PolymarketTrade fine = sample("fine", T0);  // the rows below view its strings
  for (const auto& [trade, expected] : cases) {
    const std::vector<TradeRow> rows{trade_row_of(fine), trade_row_of(trade)};
    OwedStatements owed;
    for (const std::string& message : {
             refusal_of([&] { repo.create(trade); }),
             refusal_of([&] { repo.create_many({sample("fine", T0), trade}); }),
             refusal_of([&] { repo.ingest_batch({sample("fine", T0), trade}); }),
             refusal_of([&] { repo.ingest_batch({sample("fine", T0), trade}, DuplicateProbe::OnConflict); }),
             refusal_of([&] { repo.insert_rows(rows); }),
             refusal_of([&] { TradeRepository(autocommit, TimestampUnit::Milliseconds).create_many({trade}); }),
             refusal_of([&] { writer.insert_rows(rows, DuplicateProbe::OnConflict, owed); }),
         })
      EXPECT_EQ(message.substr(0, expected.size()), expected) << message;
  }
  writer_tx.commit();
  EXPECT_EQ(repo.count(), 0);  // nothing of any refused call was written
  EXPECT_EQ(tdb_->count("trade_watermarks"), 0);
  EXPECT_TRUE(repo.create(sample("t1", T0, "0xabc123")).inserted);
}

// A NaN or infinite price or size was stored (the binary COPY passed them through): a NaN price
// made every candle of its bucket NaN. Every trade write refuses them, naming the column.
TEST_F(TradeRepositoryTest, WritesRefuseANonFinitePriceOrSize) {
  TradeRepository repo(tdb_->db());
  auto nan_price = sample("nan-price", T0);
  nan_price.price = std::nan("");
  auto inf_size = sample("inf-size", T0);
  inf_size.size = std::numeric_limits<double>::infinity();
  for (const auto& [trade, column] : {std::pair{nan_price, "polymarket_trades.price"}, {inf_size, "polymarket_trades.size"}}) {
    for (const std::string& message : {refusal_of([&] { repo.create(trade); }),
                                       refusal_of([&] { repo.create_many({sample("fine", T0), trade}); }),
                                       refusal_of([&] { repo.ingest_batch({sample("fine", T0), trade}); })})
      EXPECT_NE(message.find(column), std::string::npos) << message;
  }
  EXPECT_EQ(repo.count(), 0);
}

// G1's upper bound on read: a trade another writer stored more than a day ahead of now is never
// "recent" (it was, for as long as its timestamp stayed in the future).
TEST_F(TradeRepositoryTest, GetRecentLeavesOutTradesMoreThanADayAhead) {
  const std::int64_t now = 1'700'000'000'500;
  const auto store = [&](const char* trade_id, std::int64_t ts) {
    tdb_->exec("INSERT INTO polymarket_trades (condition_id, trade_id, \"timestamp\") VALUES ('f', '" +
               std::string(trade_id) + "', " + std::to_string(ts) + ")");
  };
  store("recent", now - 60'000);
  store("edge_ok", now + kMaxFutureMs);
  store("edge_far", now + kMaxFutureMs + 1);
  store("year_5000", 95'617'584'000'000);
  TradeRepository repo(tdb_->db());
  auto recent = repo.get_recent_at("f", 300, now);
  ASSERT_EQ(recent.size(), 2u);
  EXPECT_EQ(recent[0].trade_id, "edge_ok");
  EXPECT_EQ(recent[1].trade_id, "recent");

  // In seconds: the bound is 1,700,086,400 s (1,700,086,400.5 rounded down).
  tdb_->exec("TRUNCATE polymarket_trades");
  store("recent", now / 1000 - 60);
  store("edge_ok", 1'700'086'400);
  store("edge_far", 1'700'086'401);
  auto config = tdb_->config();
  config.trade_timestamp_unit = TimestampUnit::Seconds;
  Database db(config);
  auto recent_s = TradeRepository(db).get_recent_at("f", 300, now);
  ASSERT_EQ(recent_s.size(), 2u);
  EXPECT_EQ(recent_s[0].trade_id, "edge_ok");
  EXPECT_EQ(recent_s[1].trade_id, "recent");
}

// The one bound every writer and G1 reader uses: kMaxFutureMs after now, in the unit.
TEST(TimestampUnit, TheFutureBoundIsADayAfterNowInTheUnit) {
  const std::int64_t now = 1'700'000'000'500;
  EXPECT_EQ(future_bound(now, TimestampUnit::Milliseconds), 1'700'086'400'500);
  EXPECT_EQ(future_bound(now, TimestampUnit::Seconds), 1'700'086'400);  // rounded down
  EXPECT_EQ(future_bound(std::numeric_limits<std::int64_t>::max() - 5, TimestampUnit::Milliseconds),
            std::numeric_limits<std::int64_t>::max());  // saturates, never wraps into the past
  const std::int64_t newest = future_bound(now, TimestampUnit::Milliseconds);
  EXPECT_NO_THROW(require_timestamp(newest, TimestampUnit::Milliseconds, newest, "x"));
  EXPECT_EQ(unit_error_of([&] { require_timestamp(newest + 1, TimestampUnit::Milliseconds, newest, "x"); }),
            "x 1700086400501 is more than 24 h ahead of now: the newest accepted is 1700086400500 (epoch ms)");
  // The size rule comes first: a microsecond value is named as such, not as far ahead.
  EXPECT_NE(unit_error_of([&] { require_timestamp(now * 1000, TimestampUnit::Milliseconds, newest, "x"); })
                .find("looks like epoch microseconds"),
            std::string::npos);
  EXPECT_TRUE(acceptable_timestamp(newest, TimestampUnit::Milliseconds, newest));
  EXPECT_FALSE(acceptable_timestamp(newest + 1, TimestampUnit::Milliseconds, newest));
}

// The edges of the size rule: milliseconds from 10^11 (1973) up to, not including, 10^14 (5138).
TEST(TimestampUnit, AMillisecondValueOfMicrosecondSizeIsRefused) {
  constexpr std::int64_t year_5138_in_ms = 100'000'000'000'000;  // 10^14
  EXPECT_NO_THROW(require_timestamp_unit(year_5138_in_ms - 1, TimestampUnit::Milliseconds, "x"));
  EXPECT_EQ(unit_error_of([&] { require_timestamp_unit(year_5138_in_ms, TimestampUnit::Milliseconds, "x"); }),
            "x 100000000000000 looks like epoch microseconds but the configured trade_timestamp_unit is "
            "milliseconds (ms)");
  EXPECT_EQ(unit_error_of([&] { require_timestamp_unit(year_5138_in_ms * 1000, TimestampUnit::Milliseconds, "x"); }),
            "x 100000000000000000 looks like epoch nanoseconds but the configured trade_timestamp_unit is "
            "milliseconds (ms)");
  EXPECT_THROW(require_timestamp_unit(year_5138_in_ms, TimestampUnit::Seconds, "x"), TimestampUnitError);
}

// The ingest writer relies on this: a refused unit is a data error (dead-lettered), not fatal.
TEST(TimestampUnit, AWrongSizeIsADataError) {
  try {
    require_timestamp_unit(5, TimestampUnit::Milliseconds, "x");
    FAIL();
  } catch (const std::exception& e) {
    EXPECT_EQ(classify_exception(e), PgErrorKind::Data);
  }
  EXPECT_NO_THROW(require_timestamp_unit(kMillisecondsThreshold, TimestampUnit::Milliseconds, "x"));
  EXPECT_NO_THROW(require_timestamp_unit(kMillisecondsThreshold - 1, TimestampUnit::Seconds, "x"));
  EXPECT_THROW(require_timestamp_unit(kMillisecondsThreshold, TimestampUnit::Seconds, "x"), TimestampUnitError);
}

// Issue 16 risk 1: the G1 cut-off is computed inside the transaction, so a body that is re-run
// after its connection was lost reads the clock again. The first reading (trade recent) kills the
// pooled backend; the retried body's reading (ten minutes later: trade stale) must be the one used.
TEST_F(TradeRepositoryTest, GetRecentRecomputesTheCutoffWhenTheTransactionIsRetried) {
  auto config = tdb_->config();
  config.min_connections = 0;
  config.max_connections = 1;  // one pooled backend: the one the body runs on
  config.retry_initial_delay = std::chrono::milliseconds(0);
  Database db(config);
  TradeRepository repo(db);
  const std::int64_t now = now_epoch_ms();
  repo.create(sample("recent_at_first", now - 60'000));
  const int backend = db.transaction([](pqxx::work& tx) { return tx.exec1("SELECT pg_backend_pid()")[0].as<int>(); });
  std::vector<std::int64_t> readings;
  const EpochMsClock clock = [&] {
    if (readings.empty()) {
      pqxx::connection admin(tdb_->url());
      pqxx::nontransaction kill(admin);
      EXPECT_TRUE(kill.exec_params1("SELECT pg_terminate_backend($1, 10000)", backend)[0].as<bool>());
      readings.push_back(now);
    } else {
      readings.push_back(now + 600'000);
    }
    return readings.back();
  };
  const auto recent = repo.get_recent("0xabc123", 300, clock);
  ASSERT_EQ(readings.size(), 2u) << "the retried body did not read the clock again";
  EXPECT_TRUE(recent.empty()) << "the first attempt's cut-off was used after the retry";
  EXPECT_EQ(repo.get_recent("0xabc123", 300, [&] { return now; }).size(), 1u);  // and it is recent at `now`
}

// D11: with a non-UTC TZ the epochs and text times written and compared are still UTC.
class TzGuard {
 public:
  explicit TzGuard(const char* tz) {
    if (const char* old = std::getenv("TZ")) old_ = old;
    setenv("TZ", tz, 1);
    tzset();
  }
  ~TzGuard() {
    if (old_) setenv("TZ", old_->c_str(), 1);
    else unsetenv("TZ");
    tzset();
  }

 private:
  std::optional<std::string> old_;
};

TEST_F(TradeRepositoryTest, TimesStayUtcUnderANonUtcTimeZone) {
  const TzGuard tz("America/New_York");
  ASSERT_NE(timezone, 0) << "TZ did not take effect";  // New York is 5 hours from UTC
  pqxx::connection c(tdb_->url());
  pqxx::nontransaction tx(c);
  const auto server_ms = [&] { return tx.exec1("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint")[0].as<std::int64_t>(); };
  EXPECT_LT(std::llabs(now_epoch_ms() - server_ms()), 5'000);  // not shifted by 4 or 5 hours
  EXPECT_LT(std::llabs(now_epoch_s() * 1000 - server_ms()), 5'000);
  // The text time written is UTC: the server reads it back as the same instant.
  const std::string written = now_iso();
  EXPECT_EQ(written.back(), 'Z');
  const auto server_of_text = tx.exec_params1(
      "SELECT (extract(epoch FROM $1::timestamptz) * 1000)::bigint", written)[0].as<std::int64_t>();
  EXPECT_LT(std::llabs(server_of_text - server_ms()), 5'000);
  // G1 with the real clock: a minute-old trade is recent, a ten-minute-old one is not.
  TradeRepository repo(tdb_->db());
  repo.create(sample("tz_stale", server_ms() - 600'000));
  repo.create(sample("tz_fresh", server_ms() - 60'000));
  const auto recent = repo.get_recent("0xabc123");
  ASSERT_EQ(recent.size(), 1u);
  EXPECT_EQ(recent[0].trade_id, "tz_fresh");
}

}  // namespace
}  // namespace pm
