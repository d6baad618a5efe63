// The pool fixes the session settings its readers depend on, whatever the database's or the role's
// defaults (or libpq's PGDATESTYLE) say: DateStyle ISO, so the tiered repositories' TIMESTAMP
// columns read back as ISO text, and extra_float_digits 3, so a REAL reads back exactly.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include <pqxx/pqxx>

#include "repos/candle_repository.h"
#include "repos/database.h"
#include "repos/trigger_repository.h"
#include "repos/util/clock.h"
#include "tests/support/test_database.h"

namespace pm {
namespace {

std::string setting_of_new_session(const std::string& url, const std::string& name) {
  pqxx::connection c(url);
  pqxx::nontransaction tx(c);
  return tx.exec1("SHOW " + name)[0].as<std::string>();
}

// A database (created and dropped by the test) whose defaults are DateStyle 'SQL, DMY' and
// extra_float_digits 0, as a DBA may set them for psql users: TIMESTAMP columns came back as
// `10/01/2024 10:00:00` (the tiered readers threw "unreadable timestamp"), and a REAL with six
// significant digits, so a lookup by a threshold read back missed its row.
TEST(SessionSettings, ReadersWorkWhereTheDatabaseDefaultsToAnotherDateStyleAndFewerFloatDigits) {
  test::TestDatabase tdb("session_settings");
  tdb.exec("ALTER DATABASE " + tdb.name() + " SET DateStyle = 'SQL, DMY'");
  tdb.exec("ALTER DATABASE " + tdb.name() + " SET extra_float_digits = 0");
  ASSERT_EQ(setting_of_new_session(tdb.url(), "DateStyle"), "SQL, DMY");  // the premise
  ASSERT_EQ(setting_of_new_session(tdb.url(), "extra_float_digits"), "0");

  DatabaseConfig config = tdb.config();
  config.max_connections = 1;  // every call below reuses one session, reset or not
  Database db(config);

  PriceCandle c;
  c.condition_id = "0xc";
  c.token_id = "tok";
  c.resolution = "1h";
  c.bucket_start = "2024-01-10T10:00:00Z";
  c.open_price = c.high_price = c.low_price = c.close_price = 0.5;
  c.volume = 10;
  c.trade_count = 1;
  CandleRepository candles(db);
  EXPECT_EQ(candles.upsert(c).bucket_start, "2024-01-10T10:00:00.000000Z");

  constexpr double kThreshold = 0.1234567;  // a float4 whose six-digit text is another float4
  PolymarketFirstTrigger t;
  t.token_id = "tok";
  t.condition_id = "0xc";
  t.threshold = kThreshold;
  t.trigger_timestamp = 1'700'000'000'000;
  t.created_at = now_iso();
  TriggerRepository triggers(db);
  ASSERT_EQ(triggers.record_first(t), TriggerOutcome::Recorded);
  const auto stored = triggers.get_by_token("tok");
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(static_cast<float>(stored[0].threshold), static_cast<float>(kThreshold));
  EXPECT_TRUE(triggers.has_triggered("tok", "0xc", stored[0].threshold));
  EXPECT_TRUE(triggers.get_by_id(TriggerKey{"tok", "0xc", stored[0].threshold}).has_value());

  // A call that resets the session on return (RESET ALL: back to the database's defaults) sets them
  // again: the same session reads the same afterwards.
  EXPECT_EQ(db.fetchval<std::string>("SHOW DateStyle"), "ISO, MDY");
  const auto after_reset = candles.get_latest_candle("0xc", "tok", "1h");
  ASSERT_TRUE(after_reset.has_value());
  EXPECT_EQ(after_reset->bucket_start, "2024-01-10T10:00:00.000000Z");
  EXPECT_EQ(db.fetchval<std::string>("SHOW extra_float_digits"), "3");
  EXPECT_TRUE(triggers.has_triggered("tok", "0xc", triggers.get_by_token("tok").at(0).threshold));
  EXPECT_EQ(db.stats().open, 1);
}

// A database (or role) whose default isolation is repeatable read: the repositories' statements
// are written for read committed (an upsert or ON CONFLICT DO NOTHING meeting a row another writer
// committed after the transaction's snapshot waits for it and goes on there; under repeatable read
// it fails with 40001, which transaction() does not run again). The pool's sessions use read
// committed whatever the defaults.
TEST(SessionSettings, TransactionsAreReadCommittedWhereTheDatabaseDefaultsToRepeatableRead) {
  test::TestDatabase tdb("session_isolation");
  tdb.exec("CREATE TABLE counter (id int PRIMARY KEY, v int NOT NULL); INSERT INTO counter VALUES (1, 0)");
  tdb.exec("ALTER DATABASE " + tdb.name() + " SET default_transaction_isolation = 'repeatable read'");
  ASSERT_EQ(setting_of_new_session(tdb.url(), "default_transaction_isolation"), "repeatable read");  // the premise

  DatabaseConfig config = tdb.config();
  config.max_connections = 1;
  Database db(config);
  pqxx::connection other(tdb.url());
  const int v = db.transaction([&](Transaction& tx) {
    EXPECT_EQ(tx.exec1("SHOW transaction_isolation")[0].as<std::string>(), "read committed");
    tx.exec1("SELECT v FROM counter WHERE id = 1");  // the snapshot is taken here under repeatable read
    pqxx::work concurrent(other);
    concurrent.exec0("UPDATE counter SET v = v + 1 WHERE id = 1");
    concurrent.commit();
    return tx.exec1("UPDATE counter SET v = v + 10 WHERE id = 1 RETURNING v")[0].as<int>();  // 40001 under repeatable read
  });
  EXPECT_EQ(v, 11);
  // The same after a reset of the session (RESET ALL brings the database's default back).
  EXPECT_EQ(db.fetchval<std::string>("SHOW default_transaction_isolation"), "read committed");
  EXPECT_EQ(db.fetchval<std::string>("SHOW default_transaction_isolation"), "read committed");
}

}  // namespace
}  // namespace pm
