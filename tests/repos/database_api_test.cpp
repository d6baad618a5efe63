// Database, issue 16: the original's query helpers (execute/fetch/fetchrow/fetchval),
// is_connected, the close() and lifetime contract of leases, and the opt-out from re-running a
// transaction body after a lost connection. Real PostgreSQL; connections are killed with
// pg_terminate_backend from another connection.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <pqxx/nontransaction>

#include "repos/database.h"
#include "tests/support/pg_cluster.h"
#include "tests/support/process.h"
#include "tests/support/black_hole.h"
#include "tests/support/test_database.h"

namespace pm {
namespace {

class DatabaseApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { tdb_ = new test::TestDatabase("dbapi", /*migrate=*/false); }
  static void TearDownTestSuite() { delete tdb_; }
  void SetUp() override { tdb_->exec("DROP TABLE IF EXISTS t; CREATE TABLE t (v int, s text)"); }

  static DatabaseConfig fast_retry_config() {
    auto config = tdb_->config();
    config.retry_initial_delay = std::chrono::milliseconds(1);
    return config;
  }
  static int backend_pid(Lease& lease) {
    pqxx::nontransaction tx(lease.connection());
    return tx.exec1("SELECT pg_backend_pid()")[0].as<int>();
  }
  // Kills `pid` from another connection and waits (up to 5 s, server side) until it has exited.
  static void kill_backend(int pid) {
    tdb_->exec("SELECT pg_terminate_backend(" + std::to_string(pid) + ", 5000)");
  }
  // Waits until the server no longer has a backend `pid` (a client closed its socket; the
  // backend exits asynchronously). False after 10 s.
  static bool backend_gone(int pid) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    const std::string query = "SELECT count(*) FROM pg_stat_activity WHERE pid = " + std::to_string(pid);
    while (std::chrono::steady_clock::now() < deadline) {
      if (tdb_->count(query) == 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }
  static test::TestDatabase* tdb_;
};
test::TestDatabase* DatabaseApiTest::tdb_ = nullptr;

// --- execute / fetch / fetchrow / fetchval ---------------------------------------------------

TEST_F(DatabaseApiTest, ExecuteReturnsTheAffectedRowCount) {
  Database db(tdb_->config());
  EXPECT_EQ(db.execute("INSERT INTO t (v) VALUES ($1), ($2), ($3)", 1, 2, 3).affected_rows, 3);
  EXPECT_EQ(db.execute("UPDATE t SET v = v + $1 WHERE v >= $2", 10, 2).affected_rows, 2);
  EXPECT_EQ(db.execute("DELETE FROM t WHERE v = $1", 99).affected_rows, 0);
  EXPECT_EQ(db.execute("DELETE FROM t WHERE v = $1", 1).affected_rows, 1);
  EXPECT_EQ(db.execute("CREATE TABLE IF NOT EXISTS u (x int)").affected_rows, 0);
  EXPECT_EQ(tdb_->count("t"), 2);
}

TEST_F(DatabaseApiTest, EachHelperCommitsOnItsOwn) {
  Database db(tdb_->config());
  db.execute("INSERT INTO t (v) VALUES ($1)", 7);
  // Visible at once from another session: the statement committed when execute returned.
  EXPECT_EQ(tdb_->count("SELECT count(*) FROM t WHERE v = 7"), 1);
  EXPECT_EQ(db.stats().idle, db.stats().open) << "the connection went back to the pool";
}

TEST_F(DatabaseApiTest, ParametersAreBoundNeverPastedIntoTheSql) {
  Database db(tdb_->config());
  const std::string hostile = "x'); DROP TABLE t; --";
  db.execute("INSERT INTO t (v, s) VALUES ($1, $2)", 1, hostile);
  EXPECT_EQ(db.fetchval<std::string>("SELECT s FROM t WHERE v = $1", 1), hostile);
  EXPECT_EQ(tdb_->count("t"), 1);
  // A NULL parameter is a NULL value.
  db.execute("INSERT INTO t (v, s) VALUES ($1, $2)", 2, std::optional<std::string>());
  EXPECT_EQ(tdb_->count("SELECT count(*) FROM t WHERE v = 2 AND s IS NULL"), 1);
}

TEST_F(DatabaseApiTest, FetchReturnsEveryRowAndFetchrowTheFirstOrNothing) {
  Database db(tdb_->config());
  db.execute("INSERT INTO t (v, s) VALUES (1, 'a'), (2, 'b'), (3, 'c')");
  const pqxx::result rows = db.fetch("SELECT v, s FROM t WHERE v >= $1 ORDER BY v", 2);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0]["v"].as<int>(), 2);
  EXPECT_EQ(rows[1]["s"].as<std::string>(), "c");
  EXPECT_TRUE(db.fetch("SELECT v FROM t WHERE v > $1", 100).empty());

  const std::optional<pqxx::row> first = db.fetchrow("SELECT v, s FROM t ORDER BY v DESC");
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ((*first)["v"].as<int>(), 3);
  EXPECT_EQ((*first)["s"].as<std::string>(), "c");
  EXPECT_FALSE(db.fetchrow("SELECT v FROM t WHERE v = $1", 42).has_value());
}

TEST_F(DatabaseApiTest, FetchvalIsTheFirstColumnOrNothingForNoRowAndForNull) {
  Database db(tdb_->config());
  EXPECT_EQ(db.fetchval<int>("SELECT 1"), 1);  // the original's T5
  EXPECT_EQ(db.fetchval<long long>("SELECT $1::bigint * 2, 'ignored'", 21), 42);
  EXPECT_FALSE(db.fetchval<int>("SELECT v FROM t").has_value());  // no row
  EXPECT_FALSE(db.fetchval<int>("SELECT NULL::int").has_value());  // NULL
  EXPECT_THROW(db.fetchval<int>("SELECT 'not a number'"), pqxx::conversion_error);
}

TEST_F(DatabaseApiTest, ASqlErrorInAHelperIsThrownAndNotRetried) {
  Database db(fast_retry_config());
  db.execute("CREATE SEQUENCE IF NOT EXISTS attempts");
  // nextval is not rolled back, so the sequence counts how often the statement ran.
  EXPECT_THROW(db.execute("SELECT nextval('attempts') / 0"), pqxx::sql_error);
  EXPECT_EQ(db.fetchval<long long>("SELECT last_value FROM attempts"), 1);
}

TEST_F(DatabaseApiTest, HelpersRerunTheirStatementOnAStalePooledConnection) {
  auto config = fast_retry_config();
  config.retry_transactions = false;  // concerns transaction() bodies only, not the helpers
  Database db(config);
  int pid = 0;
  {
    Lease lease = db.lease();
    pid = backend_pid(lease);
  }
  kill_backend(pid);  // the idle pooled connection is dead; the pool does not know yet
  EXPECT_EQ(db.execute("INSERT INTO t (v) VALUES ($1)", 5).affected_rows, 1);
  EXPECT_EQ(tdb_->count("t"), 1);  // once
  EXPECT_NE(db.fetchval<int>("SELECT pg_backend_pid()"), pid);
}

// After a server restart every idle pooled connection is dead. Handed out newest first, unlooked
// at, they used up all retry_max_attempts runs (one each) and the call failed although the server
// was back: the first broken connection must rid the pool of the others.
TEST_F(DatabaseApiTest, ARetryDoesNotSpendItsAttemptsOnMoreDeadPooledConnections) {
  auto config = fast_retry_config();
  ASSERT_EQ(config.retry_max_attempts, 3);
  Database db(config);
  std::vector<int> pids;
  {
    std::vector<Lease> leases;
    for (int i = 0; i < config.retry_max_attempts; ++i) leases.push_back(db.lease());
    for (Lease& lease : leases) pids.push_back(backend_pid(lease));
  }
  ASSERT_EQ(db.stats().idle, config.retry_max_attempts);
  for (const int pid : pids) kill_backend(pid);  // as a restart does, to every pooled session
  EXPECT_NO_THROW(db.execute("INSERT INTO t (v) VALUES ($1)", 7));
  EXPECT_EQ(tdb_->count("SELECT count(*) FROM t WHERE v = 7"), 1);
  EXPECT_EQ(db.stats().idle, 1) << "the dead ones are gone, the new one pooled";
}

// --- session state between borrowers (storage-api.md 1.3: asyncpg resets it on release) ------

// A body's SET, session advisory lock and open cursor ended with it: the next borrower of the same
// session found its statement_timeout and time zone, a lock nobody could take and its cursor.
TEST_F(DatabaseApiTest, WhatABodyLeftInItsSessionDoesNotReachTheNextBorrower) {
  auto config = tdb_->config();
  config.max_connections = 1;
  config.statement_timeout = std::chrono::milliseconds(45'000);
  Database db(config);
  const int pid = db.transaction([](Transaction& tx) {
    tx.exec0("SET statement_timeout = 1000");
    tx.exec0("SET TIME ZONE 'Asia/Tokyo'");
    tx.exec0("SET application_name = 'left-behind'");
    tx.exec1("SELECT pg_advisory_lock(424242)");
    tx.exec0("DECLARE left_open CURSOR WITH HOLD FOR SELECT 1");
    return tx.exec1("SELECT pg_backend_pid()")[0].as<int>();
  });
  db.transaction([&](Transaction& tx) {
    EXPECT_EQ(tx.exec1("SELECT pg_backend_pid()")[0].as<int>(), pid) << "the same pooled session";
    EXPECT_EQ(tx.exec1("SHOW statement_timeout")[0].as<std::string>(), "45s") << "the pool's own setting, again";
    EXPECT_EQ(tx.exec1("SHOW TimeZone")[0].as<std::string>(), "UTC");
    EXPECT_EQ(tx.exec1("SHOW application_name")[0].as<std::string>(), "");
    EXPECT_EQ(tx.exec1("SELECT count(*) FROM pg_cursors")[0].as<int>(), 0);
  });
  EXPECT_EQ(tdb_->count("SELECT pg_try_advisory_lock(424242)::int"), 1) << "the session lock was released";
  // execute() and a raw lease reset too.
  db.execute("SELECT set_config('application_name', 'from-execute', false)");
  {
    std::vector<Lease> leases;
    leases.push_back(db.lease());  // a moved lease keeps its reset
    pqxx::nontransaction tx(leases.back().connection());
    EXPECT_EQ(tx.exec1("SHOW application_name")[0].as<std::string>(), "");
    tx.exec0("SET application_name = 'from-lease'");
  }
  EXPECT_EQ(db.fetchval<std::string>("SHOW application_name"), std::optional<std::string>(""));
  EXPECT_EQ(db.stats().open, 1);
}

// A client that vanished inside a transaction (power loss, a partition) left it open on the server,
// with its locks, until the server's kernel gave up on the connection (~2 h): every session now
// tells the server to end a transaction left idle past idle_in_transaction_timeout, and to probe
// its client with keepalives of its own.
TEST_F(DatabaseApiTest, TheServerEndsASessionLeftIdleInsideATransaction) {
  auto config = tdb_->config();
  config.max_connections = 1;
  config.retry_transactions = false;
  config.idle_in_transaction_timeout = std::chrono::milliseconds(1'000);
  Database db(config);
  EXPECT_EQ(db.fetchval<std::string>("SHOW idle_in_transaction_session_timeout"), std::optional<std::string>("1s"));
  bool ended = false;
  EXPECT_ANY_THROW(db.transaction([&](Transaction& tx) {
    const int pid = tx.exec1("SELECT pg_backend_pid()")[0].as<int>();
    // Idle inside the transaction, as a vanished client's is: the server ends the session.
    ended = test::wait_until([&] { return tdb_->count("SELECT count(*) FROM pg_stat_activity WHERE pid = " + std::to_string(pid)) == 0; },
                             std::chrono::seconds(20));
    tx.exec0("SELECT 1");
  }));
  EXPECT_TRUE(ended) << "the session idle in its transaction was not ended";
  EXPECT_EQ(db.fetchval<int>("SELECT 1"), std::optional<int>(1)) << "a new session serves the next call";
  // A stricter setting of the database's (or the server's, or the role's) is kept; 0 leaves it.
  tdb_->exec("ALTER DATABASE " + tdb_->name() + " SET idle_in_transaction_session_timeout = 500");
  config.idle_in_transaction_timeout = std::chrono::milliseconds(1'000);
  EXPECT_EQ(Database(config).fetchval<std::string>("SHOW idle_in_transaction_session_timeout"), std::optional<std::string>("500ms"));
  config.idle_in_transaction_timeout = std::chrono::milliseconds(0);
  EXPECT_EQ(Database(config).fetchval<std::string>("SHOW idle_in_transaction_session_timeout"), std::optional<std::string>("500ms"));
  tdb_->exec("ALTER DATABASE " + tdb_->name() + " RESET idle_in_transaction_session_timeout");
}

// The server probes its side of each session's TCP connection too, with the pool's keepalive and
// user timeout settings, also after a reset: a backend left waiting for a vanished client's COPY
// data held its rows until the server's kernel gave up (~2 h 11 min), whatever the client's own
// keepalives did.
TEST_F(DatabaseApiTest, EverySessionSetsTheServersKeepalivesAndUserTimeout) {
  auto config = tdb_->config();
  if (tdb_->count("SELECT count(*) FROM (SELECT inet_server_addr() AS a) s WHERE a IS NOT NULL") == 0)
    GTEST_SKIP() << "the test database is reached over a Unix socket: the server ignores TCP settings there";
  config.max_connections = 1;
  config.keepalives_idle = std::chrono::seconds(7);
  config.keepalives_interval = std::chrono::seconds(4);
  config.keepalives_count = 2;
  config.tcp_user_timeout = std::chrono::milliseconds(25'000);
  Database db(config);
  for (int lease = 0; lease < 2; ++lease) {  // the second after the pool's RESET ALL
    EXPECT_EQ(db.fetchval<std::string>("SHOW tcp_keepalives_idle"), std::optional<std::string>("7"));
    EXPECT_EQ(db.fetchval<std::string>("SHOW tcp_keepalives_interval"), std::optional<std::string>("4"));
    EXPECT_EQ(db.fetchval<std::string>("SHOW tcp_keepalives_count"), std::optional<std::string>("2"));
    EXPECT_EQ(db.fetchval<std::string>("SHOW tcp_user_timeout"), std::optional<std::string>("25000"));
  }
  EXPECT_EQ(db.stats().open, 1);
}

// RESET ALL keeps a SET ROLE: a body's role, and its privileges, reached the next borrower.
TEST_F(DatabaseApiTest, ABodysRoleDoesNotReachTheNextBorrower) {
  test::PgCluster cluster;  // a superuser of its own, to make a role
  cluster.start();
  cluster.query("CREATE ROLE pm_reset_probe NOLOGIN");
  DatabaseConfig config;
  config.url = cluster.url();
  config.min_connections = 1;
  config.max_connections = 1;
  Database db(config);
  const std::string session_user = db.transaction([](Transaction& tx) {
    tx.exec0("SET ROLE pm_reset_probe");
    return tx.exec1("SELECT session_user")[0].as<std::string>();
  });
  EXPECT_EQ(db.fetchval<std::string>("SELECT current_user"), std::optional<std::string>(session_user));
  {
    Lease lease = db.lease();
    pqxx::nontransaction tx(lease.connection());
    tx.exec0("SET SESSION AUTHORIZATION pm_reset_probe");
  }
  EXPECT_EQ(db.fetchval<std::string>("SELECT session_user"), std::optional<std::string>(session_user));
  EXPECT_EQ(db.stats().open, 1) << "the same session, reset";
}

// A lease returned inside a transaction block of its own (its BEGIN, no COMMIT) is dropped: the
// next borrower would have run inside that transaction.
TEST_F(DatabaseApiTest, ALeaseReturnedInsideATransactionBlockIsNotPooled) {
  auto config = tdb_->config();
  config.max_connections = 1;
  Database db(config);
  int pid = 0;
  {
    Lease lease = db.lease();
    pid = backend_pid(lease);
    pqxx::nontransaction tx(lease.connection());
    tx.exec0("BEGIN");
    tx.exec0("INSERT INTO t (v) VALUES (1)");
  }
  EXPECT_TRUE(backend_gone(pid));
  db.transaction([&](Transaction& tx) {
    EXPECT_NE(tx.exec1("SELECT pg_backend_pid()")[0].as<int>(), pid) << "a new session";
    EXPECT_EQ(tx.exec1("SELECT count(*) FROM t")[0].as<int>(), 0);
  });
  EXPECT_EQ(tdb_->count("SELECT count(*) FROM t"), 0) << "the abandoned insert was never committed";
}

// --- is_connected, close() and the lifetime of leases ------------------------------------------

TEST_F(DatabaseApiTest, IsConnectedFromTheFirstConnectionUntilClose) {
  Database db(tdb_->config());
  EXPECT_FALSE(db.is_connected()) << "nothing connects in the constructor";
  db.initialize();
  EXPECT_TRUE(db.is_connected());
  db.close();
  EXPECT_FALSE(db.is_connected());
  EXPECT_EQ(db.stats().open, 0);
  EXPECT_EQ(db.fetchval<int>("SELECT 1"), 1) << "a call after close() reopens, as the original did";
  EXPECT_TRUE(db.is_connected());
}

TEST_F(DatabaseApiTest, IsConnectedStaysFalseWhenNoConnectionCanBeOpened) {
  DatabaseConfig config;
  config.url = "postgresql://predict:topsecret@127.0.0.1:" + std::to_string(test::refused_port()) + "/predict";
  config.reconnect_max_attempts = 1;
  Database db(config);
  EXPECT_THROW(db.lease(), ConnectionError);
  EXPECT_FALSE(db.is_connected());
  EXPECT_THROW(db.fetchval<int>("SELECT 1"), ConnectionError);
  EXPECT_FALSE(db.is_connected());
}

TEST_F(DatabaseApiTest, ALeaseReturnedAfterCloseIsDroppedNotPooled) {
  Database db(tdb_->config());
  std::optional<Lease> held(db.lease());
  const int pid = backend_pid(*held);
  db.close();
  EXPECT_EQ(db.stats().open, 1) << "still leased";
  held.reset();
  EXPECT_EQ(db.stats().open, 0);
  EXPECT_EQ(db.stats().idle, 0);
  EXPECT_TRUE(backend_gone(pid)) << "the connection was not closed";
  Lease fresh = db.lease();
  EXPECT_NE(backend_pid(fresh), pid);
}

TEST_F(DatabaseApiTest, ALeaseOfAClosedPoolStillCountsAgainstMaxConnections) {
  auto config = tdb_->config();
  config.max_connections = 1;
  config.acquire_timeout = std::chrono::milliseconds(100);
  Database db(config);
  std::optional<Lease> held(db.lease());
  db.close();
  EXPECT_THROW(db.lease(), PoolTimeout) << "the old lease's connection still exists";
  held.reset();  // dropped, which frees the slot
  Lease fresh = db.lease();
  EXPECT_EQ(db.stats().open, 1);
  EXPECT_TRUE(db.is_connected());
}

TEST_F(DatabaseApiTest, ALeaseMayOutliveItsDatabase) {
  auto db = std::make_unique<Database>(tdb_->config());
  std::optional<Lease> held(db->lease());
  const int pid = backend_pid(*held);
  db.reset();  // under ASan, a lease pointing into the destroyed Database fails here or below
  {
    pqxx::nontransaction tx(held->connection());
    EXPECT_EQ(tx.exec1("SELECT 1")[0].as<int>(), 1) << "the leased connection stays usable";
  }
  {
    Lease moved(std::move(*held));
    held.reset();  // the moved-from lease gives nothing back
    EXPECT_EQ(tdb_->count("SELECT count(*) FROM pg_stat_activity WHERE pid = " + std::to_string(pid)), 1);
  }
  EXPECT_TRUE(backend_gone(pid)) << "a lease returned to a destroyed Database closes its connection";
}

// --- re-running a transaction body after a lost connection, and the opt-out --------------------

// A body that, on its first run only, kills its own connection from another session and then
// uses it: the connection is lost before COMMIT.
struct KillsItsConnectionOnce {
  test::TestDatabase* tdb;
  int* runs;
  void operator()(Transaction& tx) const {
    ++*runs;
    tx.exec("INSERT INTO t (v) VALUES (1)");
    if (*runs == 1) {
      tdb->exec("SELECT pg_terminate_backend(" + std::to_string(tx.conn().backendpid()) + ", 5000)");
      tx.exec("SELECT 1");
    }
  }
};

TEST_F(DatabaseApiTest, ByDefaultTheBodyRunsAgainAfterAConnectionLostBeforeCommit) {
  Database db(fast_retry_config());
  int runs = 0;
  db.transaction(KillsItsConnectionOnce{tdb_, &runs});
  EXPECT_EQ(runs, 2) << "the body ran twice: anything it did outside the transaction happened twice";
  EXPECT_EQ(tdb_->count("t"), 1) << "the database work of the first run was rolled back";
}

TEST_F(DatabaseApiTest, APerCallOptOutRunsTheBodyOnceAndThrowsTheConnectionError) {
  Database db(fast_retry_config());
  int runs = 0;
  EXPECT_THROW(db.transaction(KillsItsConnectionOnce{tdb_, &runs}, TxOptions{.retry = false}),
               pqxx::broken_connection);
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(tdb_->count("t"), 0);
  EXPECT_EQ(db.stats().open, 0) << "the broken connection was not pooled";
  // The pool is fine afterwards.
  db.transaction([](Transaction& tx) { tx.exec("INSERT INTO t (v) VALUES (2)"); });
  EXPECT_EQ(tdb_->count("t"), 1);
}

TEST_F(DatabaseApiTest, TheConfigOptOutAppliesToEveryTransactionAndACallMayOverrideIt) {
  auto config = fast_retry_config();
  config.retry_transactions = false;
  Database db(config);
  int runs = 0;
  EXPECT_THROW(db.transaction(KillsItsConnectionOnce{tdb_, &runs}), pqxx::broken_connection);
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(tdb_->count("t"), 0);

  runs = 0;
  db.transaction(KillsItsConnectionOnce{tdb_, &runs}, TxOptions{.retry = true});
  EXPECT_EQ(runs, 2);
  EXPECT_EQ(tdb_->count("t"), 1);
}

}  // namespace
}  // namespace pm
