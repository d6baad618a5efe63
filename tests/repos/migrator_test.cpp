#include <algorithm>
#include <thread>

#include <gtest/gtest.h>

#include "repos/g2_index.h"
#include "repos/migrator.h"
#include "tests/support/process.h"
#include "tests/support/test_database.h"

namespace pm {
namespace {

std::vector<std::string> names(const std::vector<Migration>& ms) {
  std::vector<std::string> out;
  for (const auto& m : ms) out.push_back(m.name);
  return out;
}

TEST(Migrator, BundlesTheSeedFilesInOrder) {
  const auto& ms = bundled_migrations();
  ASSERT_GE(ms.size(), 4u);
  EXPECT_EQ(ms.front().name, "01_schema.sql");
  auto sorted = names(ms);
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, names(ms));
}

// pending() only reads: the daemon's writer asks it at every connect, and a CREATE TABLE IF NOT
// EXISTS there raced an operator's `migrate` (duplicate key in pg_type).
TEST(Migrator, PendingCreatesNothingInADatabaseNeverMigrated) {
  test::TestDatabase tdb("migrate_pending", /*migrate=*/false);
  EXPECT_EQ(Migrator(tdb.db()).pending().size(), bundled_migrations().size());
  EXPECT_EQ(tdb.count("SELECT count(*) FROM pg_class WHERE relname = 'pm_schema_migrations'"), 0);
}

TEST(Migrator, EmptyDatabaseGetsEverythingThenNothingTwice) {
  test::TestDatabase tdb("migrate_empty", /*migrate=*/false);
  Migrator migrator(tdb.db());
  EXPECT_EQ(migrator.pending().size(), bundled_migrations().size());
  auto first = migrator.migrate();
  EXPECT_EQ(first.applied, names(bundled_migrations()));
  EXPECT_TRUE(first.skipped.empty());
  auto second = migrator.migrate();
  EXPECT_TRUE(second.applied.empty());
  EXPECT_EQ(second.skipped.size(), bundled_migrations().size());
  EXPECT_TRUE(migrator.pending().empty());
  EXPECT_EQ(tdb.count("pm_schema_migrations"), static_cast<long long>(bundled_migrations().size()));
}

TEST(Migrator, CreatesEveryProductionTableAndTheG2Keys) {
  test::TestDatabase tdb("migrate_tables");
  const char* tables[] = {"approval_alerts", "candidate_watermarks", "daily_pnl", "dashboard_actions",
                          "exit_events", "live_orders", "market_blocks", "market_scores_cache",
                          "paper_trades", "polymarket_candidates", "polymarket_first_triggers",
                          "polymarket_resolutions", "polymarket_token_meta", "polymarket_trades",
                          "positions", "score_history", "stream_watchlist", "trade_approvals",
                          "trade_watchlist", "trade_watermarks", "trigger_watermarks"};
  for (const char* t : tables) EXPECT_EQ(tdb.count(t), 0) << t;
  EXPECT_EQ(tdb.count("SELECT count(*) FROM pg_indexes WHERE indexname IN "
                      "('idx_triggers_condition_threshold_unique', 'polymarket_first_triggers_pkey', "
                      "'idx_triggers_condition', 'idx_triggers_threshold', 'idx_triggers_token_threshold')"),
            5);
  EXPECT_EQ(tdb.count("SELECT count(*) FROM information_schema.columns WHERE table_name = "
                      "'polymarket_first_triggers' AND column_name = 'condition_id' AND is_nullable = 'NO' "
                      "AND column_default = '''''::text'"),
            1);
}

TEST(Migrator, ProductionShapedDatabaseKeepsEveryRow) {
  test::TestDatabase tdb("migrate_prod", /*migrate=*/false);
  // The production tables exist already, created by the original seed in another column order,
  // with rows and an extra column of a later migration; there is no bookkeeping table.
  tdb.exec(R"(CREATE TABLE polymarket_trades (
      trade_id TEXT NOT NULL, condition_id TEXT NOT NULL, "timestamp" BIGINT, price REAL, size REAL,
      side TEXT, token_id TEXT, raw_json TEXT, outcome_index INTEGER, outcome TEXT,
      PRIMARY KEY (condition_id, trade_id));
    INSERT INTO polymarket_trades (trade_id, condition_id, "timestamp", price) VALUES
      ('t1', 'c1', 1700000000000, 0.5), ('t2', 'c1', 1700000001000, 0.6);
    CREATE TABLE positions (id SERIAL PRIMARY KEY, token_id TEXT NOT NULL, size REAL NOT NULL,
      entry_price REAL NOT NULL, entry_cost REAL NOT NULL, entry_timestamp TEXT NOT NULL,
      created_at TEXT NOT NULL, condition_id TEXT, market_id TEXT, outcome TEXT, outcome_index INTEGER,
      side TEXT NOT NULL DEFAULT 'BUY', current_price REAL, current_value REAL, unrealized_pnl REAL,
      realized_pnl REAL DEFAULT 0, status TEXT NOT NULL DEFAULT 'open', resolution TEXT,
      entry_order_id TEXT, exit_order_id TEXT, exit_pending BOOLEAN DEFAULT false, exit_status TEXT,
      exit_timestamp TEXT, resolved_at TEXT, description TEXT, updated_at TEXT, imported_at TEXT,
      UNIQUE (token_id, entry_timestamp));
    INSERT INTO positions (token_id, size, entry_price, entry_cost, entry_timestamp, created_at, imported_at)
      VALUES ('tok', 100, 0.75, 75, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z', 'x');)");
  auto report = Migrator(tdb.db()).migrate();
  EXPECT_EQ(report.applied.size(), bundled_migrations().size());
  EXPECT_EQ(tdb.count("polymarket_trades"), 2);
  EXPECT_EQ(tdb.count("positions"), 1);
  EXPECT_EQ(tdb.count("SELECT count(*) FROM positions WHERE imported_at = 'x'"), 1);
  EXPECT_EQ(tdb.count("SELECT count(*) FROM pg_indexes WHERE indexname = 'idx_trades_condition_timestamp'"), 1);
}

// 08 on a database whose pm_dead_letters has rows under the old key (instance_id, lsn): they are
// kept, with log_id ''; the key becomes (instance_id, log_id, lsn), so the same instance and lsn of
// another log is a row of its own; and the file run again changes nothing.
TEST(Migrator, TheDeadLettersLogIdFileKeepsRowsReKeysTheTableAndRunsAgain) {
  test::TestDatabase tdb("migrate_dead_letters", /*migrate=*/false);
  const std::string name = "08_dead_letters_log_id.sql";
  std::vector<Migration> before;
  for (const auto& m : bundled_migrations())
    if (m.name < name) before.push_back(m);
  const auto m08 = std::find_if(bundled_migrations().begin(), bundled_migrations().end(),
                                [&](const Migration& m) { return m.name == name; });
  ASSERT_NE(m08, bundled_migrations().end());
  Migrator migrator(tdb.db());
  migrator.migrate(before);
  const std::string insert = "INSERT INTO pm_dead_letters (instance_id, lsn, event_type, payload, error, created_at) "
                             "VALUES ('default', 500, 'trade', 'x', 'refused', '2026-01-01T00:00:00.000000Z')";
  tdb.exec(insert);
  EXPECT_EQ(migrator.migrate().applied, std::vector<std::string>{name});
  tdb.exec(m08->sql);  // a second run, as by hand
  EXPECT_EQ(tdb.count("SELECT count(*) FROM pm_dead_letters WHERE log_id = '' AND lsn = 500"), 1);
  EXPECT_EQ(tdb.count("SELECT count(*) FROM pg_constraint WHERE conrelid = 'pm_dead_letters'::regclass AND contype = 'u'"), 1);
  EXPECT_EQ(tdb.count("SELECT count(*) FROM pg_constraint WHERE conname = 'pm_dead_letters_instance_log_lsn_key' "
                      "AND pg_get_constraintdef(oid) = 'UNIQUE (instance_id, log_id, lsn)'"),
            1);
  const std::string other_log = "INSERT INTO pm_dead_letters (instance_id, log_id, lsn, event_type, payload, error, created_at) "
                                "VALUES ('default', '0123456789abcdef0123456789abcdef', 500, 'trade', 'y', 'refused', 'now')";
  tdb.exec(other_log);
  EXPECT_EQ(tdb.count("pm_dead_letters"), 2);
  EXPECT_THROW(tdb.exec(other_log), pqxx::unique_violation);
  EXPECT_THROW(tdb.exec(insert), pqxx::unique_violation);
}

TEST(Migrator, FailingFileRollsBackAndIsNamed) {
  test::TestDatabase tdb("migrate_fail", /*migrate=*/false);
  std::vector<Migration> ms = {
      {"01_ok.sql", "CREATE TABLE ok_table (v int)"},
      {"02_bad.sql", "CREATE TABLE half_done (v int); SELECT * FROM no_such_table"},
      {"03_later.sql", "CREATE TABLE later_table (v int)"}};
  Migrator migrator(tdb.db());
  try {
    migrator.migrate(ms);
    FAIL() << "expected MigrationError";
  } catch (const MigrationError& e) {
    EXPECT_EQ(e.migration(), "02_bad.sql");
    EXPECT_NE(std::string(e.what()).find("no_such_table"), std::string::npos) << e.what();
  }
  EXPECT_EQ(tdb.count("SELECT count(*) FROM pg_tables WHERE tablename = 'ok_table'"), 1);
  EXPECT_EQ(tdb.count("SELECT count(*) FROM pg_tables WHERE tablename = 'half_done'"), 0);
  EXPECT_EQ(tdb.count("SELECT count(*) FROM pg_tables WHERE tablename = 'later_table'"), 0);
  EXPECT_EQ(migrator.pending(ms), (std::vector<std::string>{"02_bad.sql", "03_later.sql"}));
}

// A migration may index or rewrite a production-sized table: the pool's statement_timeout (60 s
// by default) cut it off, and every retry failed the same way.
TEST(Migrator, NoMigrationRunsUnderThePoolsStatementTimeout) {
  test::TestDatabase tdb("migrate_timeout", /*migrate=*/false);
  auto config = tdb.config();
  config.statement_timeout = std::chrono::milliseconds(100);
  Database db(config);
  Migrator migrator(db);
  const auto report = migrator.migrate({{"01_slow.sql", "SELECT pg_sleep(0.3)"},
                                        {"02_slow_outside.sql", std::string(kOutsideATransaction) + "\nSELECT pg_sleep(0.3)"}});
  EXPECT_EQ(report.applied.size(), 2u);
  // The pool's timeout is back on the session afterwards.
  EXPECT_THROW(db.transaction([](pqxx::work& tx) { tx.exec("SELECT pg_sleep(0.3)"); }), pqxx::sql_error);
}

// An index on a production-sized table is built CONCURRENTLY (writers go on meanwhile), which
// PostgreSQL refuses inside a transaction block: a file marked so runs outside one. A build cut
// short leaves the index invalid, which IF NOT EXISTS would take for done: it is built again.
TEST(Migrator, AFileMarkedSoRunsOutsideATransactionAndAnInvalidIndexItNamesIsBuiltAgain) {
  test::TestDatabase tdb("migrate_outside", /*migrate=*/false);
  tdb.exec("CREATE TABLE t (a int); INSERT INTO t SELECT g % 10 FROM generate_series(1, 1000) g");
  // What a cut-short build leaves: a unique index that failed on the duplicates, invalid.
  EXPECT_THROW(tdb.exec("CREATE UNIQUE INDEX CONCURRENTLY t_a ON t (a)"), pqxx::sql_error);
  const std::string valid = "SELECT count(*) FROM pg_index WHERE indexrelid = 't_a'::regclass AND indisvalid";
  ASSERT_EQ(tdb.count(valid), 0);
  Migrator migrator(tdb.db());
  const std::vector<Migration> ms = {
      {"01_index.sql", std::string(kOutsideATransaction) + "\n-- the index\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_a ON t (a);"}};
  EXPECT_EQ(migrator.migrate(ms).applied.size(), 1u);
  EXPECT_EQ(tdb.count(valid), 1) << "the invalid index was taken for built";
  EXPECT_EQ(tdb.count("SELECT count(*) FROM pg_index WHERE indexrelid = 't_a'::regclass AND NOT indisunique"), 1);
  EXPECT_TRUE(migrator.pending(ms).empty());
  EXPECT_EQ(migrator.migrate(ms).skipped.size(), 1u);
}

// A migration that must wait for a table lock (a long transaction of a writer on the table) waits
// at most a few seconds: every writer of the table queues behind its wait. It waited for ever once
// the statement timeout was lifted for migrations.
TEST(Migrator, AMigrationWaitingForATableLockGivesUpAndSaysWhy) {
  test::TestDatabase tdb("migrate_lock", /*migrate=*/false);
  tdb.exec("CREATE TABLE t (a int)");
  pqxx::connection writer(tdb.url());
  pqxx::work open_insert(writer);
  open_insert.exec("INSERT INTO t VALUES (1)");  // uncommitted: its lock conflicts with CREATE INDEX
  auto config = tdb.config();
  config.statement_timeout = std::chrono::minutes(10);  // not what ends the wait
  Database db(config);
  try {
    Migrator(db).migrate({{"01_index.sql", "CREATE INDEX IF NOT EXISTS t_a ON t (a)"}});
    ADD_FAILURE() << "the migration took the lock the open transaction holds";
  } catch (const MigrationError& e) {
    EXPECT_EQ(e.migration(), "01_index.sql");
    EXPECT_NE(std::string(e.what()).find("lock"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("run migrate again"), std::string::npos) << e.what();
  }
  open_insert.abort();
}

// Two migrators at once: the second waits for the first's lock. Blocked in pg_advisory_lock() it
// held a snapshot, which the first's CREATE INDEX CONCURRENTLY waits out while the first holds the
// lock the second waits for: a deadlock, one of them aborted (the build, after minutes of work).
TEST(Migrator, ASecondMigratorWaitingForTheLockHoldsNoSnapshotAnIndexBuildWouldWaitFor) {
  test::TestDatabase tdb("migrate_two", /*migrate=*/false);
  tdb.exec("CREATE TABLE t (a int); INSERT INTO t SELECT generate_series(1, 100)");
  // The first migrator: this session, holding the migrators' lock.
  pqxx::connection first(tdb.url());
  pqxx::nontransaction(first).exec("SELECT pg_advisory_lock(" + std::to_string(kMigrationLockKey) + ")");
  Database db(tdb.config());
  std::string second_error;
  std::thread second([&] {
    try {
      Migrator(db).migrate({{"01_noop.sql", "SELECT 1"}});
    } catch (const std::exception& e) {
      second_error = e.what();
    }
  });
  // The second migrator has asked for the lock.
  const std::string asked = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> " +
                            std::to_string(first.backendpid()) + " AND pid <> pg_backend_pid() AND query LIKE '%advisory_lock(%'";
  EXPECT_TRUE(test::wait_until([&] { return tdb.count(asked) >= 1; }, std::chrono::seconds(30)));
  std::string build_error;
  try {
    pqxx::nontransaction(first).exec("CREATE INDEX CONCURRENTLY t_a ON t (a)");
  } catch (const pqxx::sql_error& e) {
    build_error = e.what();
  }
  pqxx::nontransaction(first).exec("SELECT pg_advisory_unlock_all()");
  second.join();
  EXPECT_EQ(build_error, "") << "the index build waited on the second migrator";
  EXPECT_EQ(second_error, "");
  EXPECT_EQ(tdb.count("SELECT count(*) FROM pg_index WHERE indexrelid = 't_a'::regclass AND indisvalid"), 1);
}

TEST(Migrator, ChangedTextOfAnAppliedFileIsAnError) {
  test::TestDatabase tdb("migrate_changed", /*migrate=*/false);
  Migrator migrator(tdb.db());
  migrator.migrate({{"01_a.sql", "CREATE TABLE a (v int)"}});
  EXPECT_THROW(migrator.migrate({{"01_a.sql", "CREATE TABLE a (v bigint)"}}), MigrationError);
}

constexpr const char* kTriggersTableDdl = R"(CREATE TABLE polymarket_first_triggers (
    token_id TEXT NOT NULL, condition_id TEXT NOT NULL DEFAULT '', threshold REAL NOT NULL,
    trigger_timestamp BIGINT NOT NULL, price REAL, size REAL, created_at TEXT NOT NULL, model_score REAL,
    model_version TEXT, outcome TEXT, outcome_index INTEGER, PRIMARY KEY (token_id, condition_id, threshold)))";

// Issue 16 risk 2: 01_schema.sql's CREATE UNIQUE INDEX IF NOT EXISTS skips an older index of the
// same name, unique or not. migrate must refuse rather than leave G2 silently broken.
TEST(Migrator, RefusesANonUniqueIndexInPlaceOfTheG2UniqueIndex) {
  test::TestDatabase tdb("migrate_g2", /*migrate=*/false);
  tdb.exec(std::string(kTriggersTableDdl) +
           "; CREATE INDEX idx_triggers_condition_threshold_unique ON polymarket_first_triggers (condition_id, threshold)");
  Migrator migrator(tdb.db());
  try {
    migrator.migrate();
    FAIL() << "migrate accepted a non-unique index";
  } catch (const SchemaError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("polymarket_first_triggers has no valid unique index on exactly (condition_id, threshold)"),
              std::string::npos) << what;
    EXPECT_NE(what.find("found instead: CREATE INDEX idx_triggers_condition_threshold_unique"), std::string::npos) << what;
    EXPECT_NE(what.find("Fix: DROP INDEX"), std::string::npos) << what;
  }
  // Fixed as the message says: migrate passes (and applies nothing more).
  tdb.exec("DROP INDEX idx_triggers_condition_threshold_unique; CREATE UNIQUE INDEX idx_triggers_condition_threshold_unique "
           "ON polymarket_first_triggers (condition_id, threshold)");
  EXPECT_TRUE(migrator.migrate().applied.empty());
}

// What counts as the G2 index: unique, valid, immediate, no predicate or expression, exactly the
// two columns in either order; a unique constraint does too.
TEST(Migrator, G2IndexCheckAcceptsOnlyAUsableUniqueIndexOnExactlyTheTwoColumns) {
  test::TestDatabase tdb("g2_index", /*migrate=*/false);
  auto state_with = [&](const std::string& index_ddl) {
    tdb.exec("DROP TABLE IF EXISTS polymarket_first_triggers; " + std::string(kTriggersTableDdl) +
             (index_ddl.empty() ? "" : "; " + index_ddl));
    pqxx::connection c(tdb.url());
    pqxx::read_transaction tx(c);
    return check_g2_index(tx).state;
  };
  const std::string on = " ON polymarket_first_triggers ";
  EXPECT_EQ(state_with("CREATE UNIQUE INDEX g2" + on + "(condition_id, threshold)"), G2IndexState::Present);
  EXPECT_EQ(state_with("CREATE UNIQUE INDEX g2" + on + "(threshold, condition_id)"), G2IndexState::Present);
  EXPECT_EQ(state_with("ALTER TABLE polymarket_first_triggers ADD CONSTRAINT g2 UNIQUE (condition_id, threshold)"),
            G2IndexState::Present);
  EXPECT_EQ(state_with(""), G2IndexState::Missing);
  EXPECT_EQ(state_with("CREATE INDEX g2" + on + "(condition_id, threshold)"), G2IndexState::Missing);
  EXPECT_EQ(state_with("CREATE UNIQUE INDEX g2" + on + "(condition_id, threshold) WHERE threshold > 0.5"),
            G2IndexState::Missing);
  EXPECT_EQ(state_with("CREATE UNIQUE INDEX g2" + on + "(condition_id, threshold, token_id)"), G2IndexState::Missing);
  EXPECT_EQ(state_with("CREATE UNIQUE INDEX g2" + on + "(condition_id, threshold) INCLUDE (token_id)"),
            G2IndexState::Missing);
  EXPECT_EQ(state_with("CREATE UNIQUE INDEX g2" + on + "(lower(condition_id), threshold)"), G2IndexState::Missing);
  EXPECT_EQ(state_with("ALTER TABLE polymarket_first_triggers ADD CONSTRAINT g2 UNIQUE (condition_id, threshold) "
                       "DEFERRABLE"),
            G2IndexState::Missing);
  // A CREATE UNIQUE INDEX CONCURRENTLY that failed on duplicates leaves an INVALID unique index.
  state_with("INSERT INTO polymarket_first_triggers (token_id, condition_id, threshold, trigger_timestamp, created_at) "
             "VALUES ('a', 'c', 0.5, 1, 'x'), ('b', 'c', 0.5, 1, 'x')");
  EXPECT_THROW(tdb.exec("CREATE UNIQUE INDEX CONCURRENTLY g2" + on + "(condition_id, threshold)"), pqxx::unique_violation);
  {
    pqxx::connection c(tdb.url());
    pqxx::read_transaction tx(c);
    const G2IndexCheck invalid = check_g2_index(tx);
    EXPECT_EQ(invalid.state, G2IndexState::Missing);
    EXPECT_NE(invalid.problem.find("(INVALID)"), std::string::npos) << invalid.problem;
  }
  tdb.exec("DROP TABLE polymarket_first_triggers");
  pqxx::connection c(tdb.url());
  pqxx::read_transaction tx(c);
  EXPECT_EQ(check_g2_index(tx).state, G2IndexState::TableMissing);
}

}  // namespace
}  // namespace pm
