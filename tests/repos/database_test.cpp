#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <thread>

#include <pqxx/nontransaction>

#include "repos/database.h"
#include "repos/deferred_begin_transaction.h"
#include "tests/support/black_hole.h"
#include "tests/support/process.h"
#include "tests/support/test_database.h"

namespace pm {
namespace {

class DatabaseTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { tdb_ = new test::TestDatabase("database"); }
  static void TearDownTestSuite() { delete tdb_; }
  void SetUp() override { tdb_->exec("DROP TABLE IF EXISTS t; CREATE TABLE t (v int)"); }
  // Ends backend `pid` (pg_terminate_backend) and waits until it is gone; false if it stays.
  static bool end_session(int pid) {
    tdb_->exec("SELECT pg_terminate_backend(" + std::to_string(pid) + ")");
    return test::wait_until([&] {
      return tdb_->count("SELECT count(*) FROM pg_stat_activity WHERE pid = " + std::to_string(pid)) == 0;
    }, std::chrono::seconds(20));
  }
  static test::TestDatabase* tdb_;
};
test::TestDatabase* DatabaseTest::tdb_ = nullptr;

// A port nothing listens on, picked once (a fixed one could be a daemon's or a cluster's that a
// parallel test took from the ephemeral range).
const std::string& refused() {
  static const std::string port = std::to_string(test::refused_port());
  return port;
}

DatabaseConfig unreachable_config() {
  DatabaseConfig config;
  config.url = "postgresql://predict:topsecret@127.0.0.1:" + refused() + "/predict";
  config.reconnect_max_attempts = 1;
  config.connect_timeout = std::chrono::milliseconds(1000);
  return config;
}

TEST_F(DatabaseTest, InitializeOpensMinConnections) {
  auto config = tdb_->config();
  config.min_connections = 3;
  Database db(config);
  EXPECT_EQ(db.stats().open, 0);  // nothing connects before initialize
  db.initialize();
  EXPECT_EQ(db.stats().open, 3);
  EXPECT_EQ(db.stats().idle, 3);
}

TEST_F(DatabaseTest, HealthCheckAndSimpleQuery) {
  Database db(tdb_->config());
  EXPECT_TRUE(db.health_check());
  Lease lease = db.lease();
  pqxx::nontransaction tx(lease.connection());
  EXPECT_EQ(tx.exec1("SELECT 42")[0].as<int>(), 42);
}

TEST_F(DatabaseTest, TransactionCommitsWhenTheBodyReturns) {
  Database db(tdb_->config());
  const int returned = db.transaction([](pqxx::work& tx) {
    tx.exec("INSERT INTO t VALUES (1)");
    return 7;
  });
  EXPECT_EQ(returned, 7);
  EXPECT_EQ(tdb_->count("t"), 1);
}

TEST_F(DatabaseTest, TransactionRollsBackAndRethrowsUnchanged) {
  Database db(tdb_->config());
  struct BodyError : std::runtime_error {
    using std::runtime_error::runtime_error;
  };
  EXPECT_THROW(db.transaction([](pqxx::work& tx) {
    tx.exec("INSERT INTO t VALUES (1)");
    throw BodyError("boom");
  }),
               BodyError);
  EXPECT_EQ(tdb_->count("t"), 0);
}

TEST_F(DatabaseTest, SqlErrorsAreNotRetried) {
  Database db(tdb_->config());
  int calls = 0;
  EXPECT_THROW(db.transaction([&](pqxx::work& tx) {
    ++calls;
    tx.exec("INSERT INTO t VALUES (1)");
    tx.exec("SELECT 1/0");
  }),
               pqxx::sql_error);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(tdb_->count("t"), 0);
}

TEST_F(DatabaseTest, BrokenConnectionBeforeCommitIsRetriedOnAFreshOne) {
  auto config = tdb_->config();
  config.retry_initial_delay = std::chrono::milliseconds(1);
  Database db(config);
  int backend_pid = 0;
  {
    Lease lease = db.lease();
    pqxx::nontransaction tx(lease.connection());
    backend_pid = tx.exec1("SELECT pg_backend_pid()")[0].as<int>();
  }
  // The pooled connection dies while idle (a server restart or a network cut looks the same).
  ASSERT_TRUE(tdb_->terminate_backend(backend_pid));  // gone before the transaction below begins
  int calls = 0;
  db.transaction([&](pqxx::work& tx) {
    ++calls;
    tx.exec("INSERT INTO t VALUES (1)");
  });
  EXPECT_GE(calls, 1);  // the first attempt dies at BEGIN or inside the body
  EXPECT_LE(calls, 2);
  EXPECT_EQ(tdb_->count("t"), 1);  // committed once, not twice
  EXPECT_EQ(tdb_->count("SELECT count(*) FROM pg_stat_activity WHERE pid = " + std::to_string(backend_pid)), 0);
}

TEST_F(DatabaseTest, UnreachableServerRaisesWithoutLeakingThePassword) {
  Database db(unreachable_config());
  try {
    db.lease();
    FAIL() << "expected ConnectionError";
  } catch (const ConnectionError& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.find("topsecret"), std::string::npos) << message;
    EXPECT_NE(message.find(refused()), std::string::npos) << message;
  }
  EXPECT_THROW(db.transaction([](pqxx::work&) {}), ConnectionError);
  EXPECT_FALSE(db.health_check());
  EXPECT_EQ(db.stats().open, 0);
}

// A '/' in the password ends libpq's look for userinfo: it reads "predict:top" as host and port
// and no password at all, and says 'invalid integer value "top" for connection option "port"'.
TEST_F(DatabaseTest, APasswordHoldingASlashIsNotShownInTheConnectionError) {
  DatabaseConfig config = unreachable_config();
  config.url = "postgresql://predict:top/secret@127.0.0.1:1/predict";
  Database db(config);
  try {
    db.lease();
    FAIL() << "expected ConnectionError";
  } catch (const ConnectionError& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.find("top"), std::string::npos) << message;
    EXPECT_EQ(message.find("secret"), std::string::npos) << message;
    EXPECT_NE(message.find("127.0.0.1"), std::string::npos) << message;
  }
}

// libpq refuses a password with a '%' not followed by two hex digits and quotes it bare in its
// error ("invalid percent-encoded token: \"50%zzS3cret\""), with no URL or "password=" around it.
// Other quoting characters a pattern stopped at before: ' in a URL, & in key = value form.
TEST_F(DatabaseTest, APasswordLibpqCannotDecodeOrThatHoldsQuotesIsNotShownInTheConnectionError) {
  for (const std::string& url : {"postgresql://predict:50%zzS3cret@127.0.0.1:" + refused() + "/predict",
                                 "postgresql://predict:pw@127.0.0.1:" + refused() + "/predict?sslkey=/k&sslpassword=S3cret",
                                 "host=127.0.0.1 port=" + refused() + " sslpassword=S3cret user=predict",
                                 "postgresql://predict:it's%zzS3cret@127.0.0.1:" + refused() + "/predict",
                                 "host=127.0.0.1 port=" + refused() + " password=a&S3cret%zz user=predict"}) {
    DatabaseConfig config = unreachable_config();
    config.url = url;
    Database db(config);
    try {
      db.lease();
      ADD_FAILURE() << "expected ConnectionError for " << url;
    } catch (const ConnectionError& e) {
      const std::string message = e.what();
      EXPECT_EQ(message.find("S3cret"), std::string::npos) << message;
      EXPECT_NE(message.find("127.0.0.1"), std::string::npos) << message;
    }
  }
}

TEST_F(DatabaseTest, ExhaustedPoolTimesOut) {
  auto config = tdb_->config();
  config.max_connections = 2;
  config.acquire_timeout = std::chrono::milliseconds(200);
  Database db(config);
  Lease a = db.lease();
  Lease b = db.lease();
  EXPECT_THROW(db.lease(), PoolTimeout);
  EXPECT_EQ(db.stats().open, 2);
}

TEST_F(DatabaseTest, WaiterGetsTheConnectionWhenReleased) {
  auto config = tdb_->config();
  config.max_connections = 1;
  Database db(config);
  std::optional<Lease> held(db.lease());
  std::atomic<int> got_backend{0};
  std::thread waiter([&] {
    Lease l = db.lease();
    got_backend = pqxx::nontransaction(l.connection()).exec1("SELECT pg_backend_pid()")[0].as<int>();
  });
  // Released only once the waiter waits: the wake-up of a blocked lease() is what is tested.
  ASSERT_TRUE(test::wait_until([&] { return db.stats().waiting == 1; }, std::chrono::seconds(30)));
  const int held_backend = pqxx::nontransaction(held->connection()).exec1("SELECT pg_backend_pid()")[0].as<int>();
  held.reset();
  waiter.join();
  EXPECT_EQ(got_backend.load(), held_backend) << "the waiter did not get the released connection";
  EXPECT_EQ(db.stats().open, 1);
  EXPECT_EQ(db.stats().waiting, 0);
}

TEST_F(DatabaseTest, ManyThreadsShareASmallPool) {
  auto config = tdb_->config();
  config.max_connections = 3;
  Database db(config);
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&db, i] {
      for (int k = 0; k < 25; ++k) {
        db.transaction([&](pqxx::work& tx) { tx.exec("INSERT INTO t VALUES (" + std::to_string(i) + ")"); });
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(tdb_->count("t"), 200);
  EXPECT_LE(db.stats().open, 3);
}

TEST_F(DatabaseTest, LeaseReturnsConnectionMostRecentFirst) {
  Database db(tdb_->config());
  int pid1 = 0;
  {
    Lease l = db.lease();
    pqxx::nontransaction tx(l.connection());
    pid1 = tx.exec1("SELECT pg_backend_pid()")[0].as<int>();
  }
  Lease l = db.lease();
  pqxx::nontransaction tx(l.connection());
  EXPECT_EQ(tx.exec1("SELECT pg_backend_pid()")[0].as<int>(), pid1);
}

TEST_F(DatabaseTest, StatementTimeoutApplies) {
  auto config = tdb_->config();
  config.statement_timeout = std::chrono::milliseconds(100);
  Database db(config);
  try {
    db.transaction([](pqxx::work& tx) { tx.exec("SELECT pg_sleep(2)"); });
    FAIL() << "expected a statement timeout";
  } catch (const pqxx::sql_error& e) {
    EXPECT_EQ(classify_exception(e), PgErrorKind::Timeout) << e.sqlstate();
  }
}

// Database::attempt / run_once: one attempt, its outcome as a value (issue 14: results, not
// exceptions, for the ingest writer), classified once here.
TEST_F(DatabaseTest, AnAttemptThatReturnsAValueIsAppliedAndCommitted) {
  Database db(tdb_->config());
  TxResult<int> result = db.attempt([](Transaction& tx) -> std::optional<int> {
    tx.exec("INSERT INTO t VALUES (1)");
    return 7;
  });
  ASSERT_EQ(result.status, TxStatus::Applied);
  EXPECT_EQ(result.value, 7);
  EXPECT_EQ(tdb_->count("t"), 1);
}

TEST_F(DatabaseTest, AnAttemptThatReturnsNothingIsRolledBackWithoutAFailure) {
  Database db(tdb_->config());
  TxResult<int> result = db.attempt([](Transaction& tx) -> std::optional<int> {
    tx.exec("INSERT INTO t VALUES (1)");
    return std::nullopt;
  });
  EXPECT_EQ(result.status, TxStatus::RolledBack);
  EXPECT_FALSE(result.failed());
  EXPECT_EQ(tdb_->count("t"), 0);
  EXPECT_EQ(db.stats().idle, 1);  // the connection is fine and back in the pool
}

TEST_F(DatabaseTest, ARefusedValueIsADataErrorWithItsSqlstateAndRollsBack) {
  Database db(tdb_->config());
  TxResult<int> result = db.attempt([](Transaction& tx) -> std::optional<int> {
    tx.exec("INSERT INTO t VALUES (1)");
    tx.exec("SELECT 1/0");
    return 1;
  });
  EXPECT_EQ(result.status, TxStatus::DataError);
  EXPECT_EQ(result.failure.sqlstate, "22012");
  EXPECT_EQ(result.failure.kind, PgErrorKind::Data);
  EXPECT_NE(result.failure.message.find("division by zero"), std::string::npos) << result.failure.message;
  EXPECT_EQ(result.failure.message.find('\n'), std::string::npos) << "one line only";
  EXPECT_EQ(tdb_->count("t"), 0);
}

TEST_F(DatabaseTest, AMissingTableIsFatalAndAnyOtherExceptionToo) {
  Database db(tdb_->config());
  TxResult<int> missing = db.attempt([](Transaction& tx) -> std::optional<int> {
    tx.exec("INSERT INTO no_such_table VALUES (1)");
    return 1;
  });
  EXPECT_EQ(missing.status, TxStatus::Fatal);
  EXPECT_EQ(missing.failure.sqlstate, "42P01");
  TxResult<int> thrown = db.attempt([](Transaction&) -> std::optional<int> { throw std::runtime_error("a bug"); });
  EXPECT_EQ(thrown.status, TxStatus::Fatal);
  EXPECT_EQ(thrown.failure.message, "a bug");
  EXPECT_THROW(std::rethrow_exception(thrown.failure.exception), std::runtime_error);  // the original is kept
}

TEST_F(DatabaseTest, AnUnreachableServerIsARetryResultNotAnExceptionAndHidesThePassword) {
  Database db(unreachable_config());
  TxResult<int> result = db.attempt([](Transaction&) -> std::optional<int> { return 1; });
  EXPECT_EQ(result.status, TxStatus::Retry);
  EXPECT_EQ(result.failure.kind, PgErrorKind::Connection);
  EXPECT_EQ(result.failure.message.find("topsecret"), std::string::npos) << result.failure.message;
}

TEST_F(DatabaseTest, AConnectionKilledInsideTheBodyIsRetryAndTheConnectionIsDropped) {
  Database db(tdb_->config());
  TxResult<int> result = db.attempt([&](Transaction& tx) -> std::optional<int> {
    tx.exec("INSERT INTO t VALUES (1)");
    tdb_->exec("SELECT pg_terminate_backend(" + std::to_string(tx.conn().backendpid()) + ")");
    tx.exec("SELECT 1");
    return 1;
  });
  EXPECT_EQ(result.status, TxStatus::Retry);
  EXPECT_EQ(result.failure.kind, PgErrorKind::Connection);
  EXPECT_EQ(db.stats().open, 0) << "a broken connection went back into the pool";
  EXPECT_EQ(tdb_->count("t"), 0);
}

// libpqxx 6.4 can reconnect a broken connection on its next statement ("reactivation"), opening
// the new session without the pool's settings (statement_timeout, DateStyle, keepalives). A
// review feared it did so under a DeferredBeginTransaction (the writer's lanes) whose BEGIN found
// the session ended and which then rolls back: a session opened behind the pool's back (against a
// server gone, a connect timeout per address before the failure is reported). It does not (the
// ROLLBACK fails on the broken connection); this keeps it so, on the lease's own connection.
TEST_F(DatabaseTest, AnAttemptOnASessionTheServerEndedOpensNoSessionBehindThePoolsBack) {
  Database db(tdb_->config());
  Lease lease = db.lease();
  const int ended_pid = lease.connection().backendpid();
  ASSERT_TRUE(end_session(ended_pid));
  auto body = [](DeferredBeginTransaction& tx) -> std::optional<int> {
    tx.exec("SELECT 1");
    return 1;
  };
  const TxResult<int> result = run_once<DeferredBeginTransaction>(lease, body);
  EXPECT_EQ(result.status, TxStatus::Retry) << result.failure.message;
  EXPECT_EQ(result.failure.kind, PgErrorKind::Connection);
  EXPECT_FALSE(lease.connection().is_open()) << "libpqxx opened a new session (pid " << lease.connection().backendpid()
                                             << ") under the failed attempt";
}

// A lease whose session the server ended, returned with its session reset due (Database::lease()):
// the reset's statement is libpqxx's next one on the broken connection, where libpqxx 6.4 could
// reconnect ("reactivation") to run it: a new session opened in the lease's destructor (against a
// server gone, a connect timeout per address) and pooled. It does not: the broken connection is
// dropped; this keeps it so.
TEST_F(DatabaseTest, ALeaseWhoseSessionEndedIsDroppedNotReconnectedBehindThePoolsBack) {
  Database db(tdb_->config());
  {
    Lease lease = db.lease();
    const int ended_pid = lease.connection().backendpid();
    ASSERT_TRUE(end_session(ended_pid));
    pqxx::nontransaction tx(lease.connection());
    EXPECT_THROW(tx.exec("SELECT 1"), pqxx::broken_connection);
  }
  EXPECT_EQ(db.stats().open, 0) << "the lease's destructor reconnected and pooled a new session";
}

// A real deadlock inside db.attempt() bodies: two sessions take advisory locks 1 and 2 in opposite
// orders (a latch makes both hold their first before either asks for its second), so PostgreSQL
// cancels one of them after deadlock_timeout (the server's 1 s: SET deadlock_timeout needs a
// superuser). libpqxx 6.4 throws that as pqxx::deadlock_detected, which is no pqxx::sql_error: the
// loser was Fatal with an empty sqlstate, and the ingest writer and pm-ingestctl replay stopped on
// it instead of running the batch again.
TEST_F(DatabaseTest, TheLoserOfARealDeadlockIsRetryWith40P01AndTheWinnerCommits) {
  Database db(tdb_->config());
  std::latch both_hold_their_first_lock(2);
  auto locking = [&](int first, int second) {
    return [&both_hold_their_first_lock, first, second](Transaction& tx) -> std::optional<int> {
      try {
        tx.exec("INSERT INTO t VALUES (" + std::to_string(first) + ")");
        tx.exec("SELECT pg_advisory_xact_lock(" + std::to_string(first) + ")");
      } catch (...) {
        both_hold_their_first_lock.count_down();  // the other session must not wait for ever
        throw;
      }
      both_hold_their_first_lock.arrive_and_wait();
      tx.exec("SELECT pg_advisory_xact_lock(" + std::to_string(second) + ")");
      return first;
    };
  };
  TxResult<int> one, two;
  std::thread other([&] { two = db.attempt(locking(2, 1)); });
  one = db.attempt(locking(1, 2));
  other.join();

  const bool one_won = one.applied();
  const TxResult<int>& winner = one_won ? one : two;
  const TxResult<int>& loser = one_won ? two : one;
  ASSERT_EQ(winner.status, TxStatus::Applied) << to_string(one.status) << " / " << to_string(two.status);
  EXPECT_EQ(loser.status, TxStatus::Retry) << loser.failure.message;
  EXPECT_EQ(loser.failure.kind, PgErrorKind::Transient);
  EXPECT_EQ(loser.failure.sqlstate, "40P01");
  EXPECT_NE(loser.failure.message.find("deadlock detected"), std::string::npos) << loser.failure.message;
  EXPECT_THROW(std::rethrow_exception(loser.failure.exception), pqxx::deadlock_detected);  // the original
  // Only the winner's row was stored, and the loser's connection was rolled back and pooled again.
  EXPECT_EQ(tdb_->count("SELECT count(*) FROM t WHERE v = " + std::to_string(*winner.value)), 1);
  EXPECT_EQ(tdb_->count("t"), 1);
  EXPECT_EQ(db.stats().idle, 2);
}

// A body that catches a statement's error and returns normally. libpqxx 6.4 rolls its transaction
// back itself when a statement run through exec() fails (commit() then throws usage_error), but
// not when exec_params(), a prepared statement or the raw connection fails, as in the repositories:
// the server had failed the transaction, answered COMMIT with ROLLBACK and no error, and commit()
// returned. The attempt was Applied (and transaction() returned) while nothing was stored. It is
// refused before COMMIT now: Fatal, 25P02, a message naming what happened and the error caught.
TEST_F(DatabaseTest, ABodyThatSwallowedAServerErrorIsNotReportedCommitted) {
  Database db(tdb_->config());
  auto swallowing = [](Transaction& tx) -> std::optional<int> {
    tx.exec_params("INSERT INTO t VALUES ($1)", 1);
    try {
      tx.exec_params("SELECT 1 / $1::int", 0);
    } catch (const pqxx::sql_error&) {
      // a body's bug: the transaction cannot go on after this
    }
    return 7;
  };
  TxResult<int> result = db.attempt(swallowing);
  EXPECT_EQ(result.status, TxStatus::Fatal);
  EXPECT_FALSE(result.value.has_value());
  EXPECT_EQ(result.failure.kind, PgErrorKind::Other);
  EXPECT_EQ(result.failure.sqlstate, "25P02") << result.failure.message;
  EXPECT_NE(result.failure.message.find("had already failed inside the body"), std::string::npos)
      << result.failure.message;
  EXPECT_NE(result.failure.message.find("division by zero"), std::string::npos) << result.failure.message;
  EXPECT_EQ(db.stats().idle, 1) << "the connection was rolled back and pooled again";

  // transaction() throws it (it retries only a lost connection), and stores nothing either.
  try {
    db.transaction(swallowing);
    ADD_FAILURE() << "transaction() returned though nothing was committed";
  } catch (const pqxx::sql_error& e) {
    EXPECT_EQ(e.sqlstate(), "25P02");
  }
  EXPECT_EQ(tdb_->count("t"), 0);

  // A body that rolled back to a savepoint after the error left a usable transaction: it commits,
  // on the same pooled connection.
  TxResult<int> recovered = db.attempt([](Transaction& tx) -> std::optional<int> {
    tx.exec_params("INSERT INTO t VALUES ($1)", 2);
    tx.exec("SAVEPOINT s");
    try {
      tx.exec_params("SELECT 1 / $1::int", 0);
    } catch (const pqxx::sql_error&) {
      tx.exec("ROLLBACK TO SAVEPOINT s");
    }
    return 2;
  });
  EXPECT_EQ(recovered.status, TxStatus::Applied) << recovered.failure.message;
  EXPECT_EQ(tdb_->count("SELECT count(*) FROM t WHERE v = 2"), 1);
  EXPECT_EQ(tdb_->count("t"), 1);
}

TEST(TxResults, EachErrorKindHasOneStatus) {
  EXPECT_EQ(status_of(PgErrorKind::Connection), TxStatus::Retry);
  EXPECT_EQ(status_of(PgErrorKind::Transient), TxStatus::Retry);
  EXPECT_EQ(status_of(PgErrorKind::Timeout), TxStatus::Retry);
  EXPECT_EQ(status_of(PgErrorKind::Data), TxStatus::DataError);
  EXPECT_EQ(status_of(PgErrorKind::InDoubt), TxStatus::InDoubt);
  EXPECT_EQ(status_of(PgErrorKind::Other), TxStatus::Fatal);
}

TEST(TxResults, ALostConnectionDuringCommitIsInDoubt) {
  try {
    throw pqxx::broken_connection("server closed the connection unexpectedly");
  } catch (const std::exception& e) {
    const TxFailure before_commit = failure_of(e, false);
    EXPECT_EQ(status_of(before_commit.kind), TxStatus::Retry);
    const TxFailure during_commit = failure_of(e, true);
    EXPECT_EQ(status_of(during_commit.kind), TxStatus::InDoubt);
    EXPECT_NE(during_commit.message.find("during COMMIT"), std::string::npos) << during_commit.message;
    EXPECT_THROW(std::rethrow_exception(during_commit.exception), pqxx::in_doubt_error);
  }
}

TEST(PgErrors, ClassifiesBySqlstate) {
  EXPECT_EQ(classify_sqlstate("08006"), PgErrorKind::Connection);
  EXPECT_EQ(classify_sqlstate("57P01"), PgErrorKind::Connection);
  EXPECT_EQ(classify_sqlstate("40001"), PgErrorKind::Transient);
  EXPECT_EQ(classify_sqlstate("40P01"), PgErrorKind::Transient);
  EXPECT_EQ(classify_sqlstate("22003"), PgErrorKind::Data);
  EXPECT_EQ(classify_sqlstate("23502"), PgErrorKind::Data);
  EXPECT_EQ(classify_sqlstate("42P01"), PgErrorKind::Other);
}

// libpqxx 6.4 throws SQLSTATE class 40 as pqxx::transaction_rollback and its subclasses, which
// derive from pqxx::failure, not pqxx::sql_error, and carry no SQLSTATE: the type is the code. They
// were classified Other (Fatal) with an empty sqlstate.
template <class E>
TxFailure failure_thrown(const E& error) {
  try {
    throw error;
  } catch (const std::exception& e) {
    return failure_of(e);
  }
}

TEST(PgErrors, TransactionRollbacksAreTransientWithTheirSqlstate) {
  EXPECT_EQ(sqlstate_of(pqxx::deadlock_detected("ERROR:  deadlock detected")), "40P01");
  EXPECT_EQ(sqlstate_of(pqxx::serialization_failure("ERROR:  could not serialize access")), "40001");
  EXPECT_EQ(sqlstate_of(pqxx::statement_completion_unknown("ERROR:  unknown")), "40003");
  EXPECT_EQ(sqlstate_of(pqxx::transaction_rollback("ERROR:  rolled back")), "40000");
  EXPECT_EQ(sqlstate_of(pqxx::sql_error("ERROR:  x", "SELECT", "22012")), "22012");
  EXPECT_EQ(sqlstate_of(pqxx::broken_connection("gone")), "");
  EXPECT_EQ(sqlstate_of(std::runtime_error("anything")), "");

  EXPECT_EQ(classify_exception(pqxx::deadlock_detected("d")), PgErrorKind::Transient);
  EXPECT_EQ(classify_exception(pqxx::serialization_failure("s")), PgErrorKind::Transient);
  EXPECT_EQ(classify_exception(pqxx::statement_completion_unknown("u")), PgErrorKind::Transient);
  EXPECT_EQ(classify_exception(pqxx::transaction_rollback("r")), PgErrorKind::Transient);
  EXPECT_EQ(classify_sqlstate("40000"), PgErrorKind::Transient);
  EXPECT_EQ(classify_sqlstate("40003"), PgErrorKind::Transient);

  const TxFailure deadlock = failure_thrown(pqxx::deadlock_detected("ERROR:  deadlock detected\nDETAIL: ..."));
  EXPECT_EQ(deadlock.kind, PgErrorKind::Transient);
  EXPECT_EQ(status_of(deadlock.kind), TxStatus::Retry);
  EXPECT_EQ(deadlock.sqlstate, "40P01");
  EXPECT_EQ(deadlock.message, "ERROR:  deadlock detected");
  EXPECT_THROW(std::rethrow_exception(deadlock.exception), pqxx::deadlock_detected);
  const TxFailure serialization = failure_thrown(pqxx::serialization_failure("ERROR:  could not serialize"));
  EXPECT_EQ(status_of(serialization.kind), TxStatus::Retry);
  EXPECT_EQ(serialization.sqlstate, "40001");
  EXPECT_EQ(failure_thrown(pqxx::statement_completion_unknown("u")).sqlstate, "40003");
  EXPECT_EQ(failure_thrown(pqxx::transaction_rollback("r")).sqlstate, "40000");
  // A class-40 error that reached the client as a plain sql_error (the raw-connection route of
  // throw_sql_error) keeps its own code.
  const TxFailure raw = failure_thrown(pqxx::sql_error("ERROR:  deadlock detected", "COPY", "40P01"));
  EXPECT_EQ(raw.kind, PgErrorKind::Transient);
  EXPECT_EQ(raw.sqlstate, "40P01");
}

TEST(PgErrors, ClassifiesThePoolsOwnFailures) {
  EXPECT_EQ(classify_exception(ConnectionError("cannot connect")), PgErrorKind::Connection);
  EXPECT_EQ(classify_exception(PoolTimeout("all busy")), PgErrorKind::Timeout);
  EXPECT_EQ(classify_exception(std::runtime_error("anything else")), PgErrorKind::Other);
}

}  // namespace
}  // namespace pm
