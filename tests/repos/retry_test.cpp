// What Database retries and what it does not (D13, D14, D15): timeouts are not retried, the
// backoff between retries grows by the configured factor with jitter, and one broken pooled
// connection costs only itself.
#include <gtest/gtest.h>

#include <set>
#include <thread>
#include <vector>

#include <pqxx/pqxx>

#include "repos/database.h"
#include "repos/util/backoff.h"
#include "tests/support/process.h"
#include "tests/support/test_database.h"

namespace pm {
namespace {

using std::chrono::milliseconds;

// D14: a statement that runs into statement_timeout is canceled (57014) and not run again; the
// original retried timeouts on Python >= 3.11 (up to 3 x 60 s).
TEST(Retry, AStatementTimeoutIsNotRetried) {
  test::TestDatabase tdb("retry_timeout");
  auto config = tdb.config();
  config.statement_timeout = milliseconds(100);
  config.retry_max_attempts = 3;
  config.retry_initial_delay = milliseconds(0);
  Database db(config);
  int runs = 0;
  try {
    db.transaction([&](pqxx::work& tx) {
      ++runs;
      tx.exec("SELECT pg_sleep(5)");
    });
    FAIL() << "pg_sleep(5) outlived a 100 ms statement_timeout";
  } catch (const pqxx::sql_error& e) {
    EXPECT_EQ(e.sqlstate(), "57014") << e.what();
    EXPECT_EQ(classify_exception(e), PgErrorKind::Timeout);
  }
  EXPECT_EQ(runs, 1);
  // A query canceled by someone else (pg_cancel_backend) is not retried either.
  runs = 0;
  pqxx::connection admin(tdb.url());
  config.statement_timeout = milliseconds(0);
  Database patient(config);
  std::thread canceller;
  EXPECT_THROW(patient.transaction([&](pqxx::work& tx) {
    ++runs;
    const int pid = tx.exec1("SELECT pg_backend_pid()")[0].as<int>();
    canceller = std::thread([&admin, pid] {
      pqxx::nontransaction a(admin);
      EXPECT_TRUE(test::wait_until([&] {
        return a.exec_params1("SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND query LIKE '%pg_sleep(30)%'",
                              pid)[0].as<int>() == 1;
      }, std::chrono::seconds(20)));
      EXPECT_TRUE(a.exec_params1("SELECT pg_cancel_backend($1)", pid)[0].as<bool>());
    });
    tx.exec("SELECT pg_sleep(30)");
  }), pqxx::sql_error);
  canceller.join();
  EXPECT_EQ(runs, 1);
}

// D14: the factor between retries is configurable (the original hard-coded 2) and validated.
TEST(Retry, TheRetryFactorIsConfigurable) {
  DatabaseConfig config;
  EXPECT_EQ(config.retry_multiplier, 2.0);
  config.retry_multiplier = 0.5;
  EXPECT_THROW(config.validate(), std::invalid_argument);
  config.retry_multiplier = 3.0;
  EXPECT_NO_THROW(config.validate());
}

// D14: jitter. Each delay is uniform in [d/2, d], d growing by the factor up to the cap.
TEST(Retry, BackoffDelaysAreJitteredWithinTheirBounds) {
  for (const double factor : {2.0, 3.0}) {
    std::vector<std::set<long long>> seen(5);
    for (int run = 0; run < 400; ++run) {
      Backoff backoff(milliseconds(100), milliseconds(1000), factor);
      double base = 100;
      for (std::size_t k = 0; k < seen.size(); ++k) {
        const long long d = backoff.next().count();
        EXPECT_GE(d, static_cast<long long>(base / 2) - 1) << "factor " << factor << " step " << k;
        EXPECT_LE(d, static_cast<long long>(base)) << "factor " << factor << " step " << k;
        seen[k].insert(d);
        base = std::min(base * factor, 1000.0);
      }
    }
    // 400 draws from a range 50+ ms wide: not one value, and spread over much of it.
    for (std::size_t k = 0; k < seen.size(); ++k) {
      EXPECT_GT(seen[k].size(), 25u) << "factor " << factor << " step " << k;
      EXPECT_GT(*seen[k].rbegin() - *seen[k].begin(), 30) << "factor " << factor << " step " << k;
    }
  }
  Backoff zero(milliseconds(0), milliseconds(0), 2.0);
  EXPECT_EQ(zero.next().count(), 0);
}

// D15: one pooled connection broken (its backend terminated) costs only that connection: the
// others keep working, the broken one is dropped, and the pool's counts say so.
TEST(Retry, OtherPooledConnectionsSurviveOneBrokenConnection) {
  test::TestDatabase tdb("retry_pool");
  auto config = tdb.config();
  config.min_connections = 0;
  config.max_connections = 4;
  Database db(config);
  std::vector<Lease> leases;
  std::vector<int> pids;
  for (int i = 0; i < 4; ++i) {
    leases.push_back(db.lease());
    pids.push_back(test::backend_pid(leases.back()));
  }
  ASSERT_TRUE(tdb.terminate_backend(pids[2]));
  auto select_pid = [](Transaction& tx) -> std::optional<int> { return tx.exec1("SELECT pg_backend_pid()")[0].as<int>(); };
  for (std::size_t i = 0; i < leases.size(); ++i) {
    const TxResult<int> r = run_once(leases[i], select_pid);
    if (i == 2) {
      EXPECT_EQ(r.status, TxStatus::Retry);
      EXPECT_EQ(r.failure.kind, PgErrorKind::Connection) << r.failure.message;
    } else {
      ASSERT_TRUE(r.applied()) << r.failure.message;
      EXPECT_EQ(*r.value, pids[i]);  // the same session, untouched
    }
  }
  EXPECT_EQ(db.stats().open, 4);
  leases.clear();
  EXPECT_EQ(db.stats().open, 3);  // only the broken one was dropped
  EXPECT_EQ(db.stats().idle, 3);
  // The survivors serve again, and the pool grows back to its maximum with a new session.
  std::set<int> serving;
  std::vector<Lease> again;
  for (int i = 0; i < 4; ++i) {
    again.push_back(db.lease());
    serving.insert(test::backend_pid(again.back()));
  }
  EXPECT_EQ(serving.size(), 4u);
  EXPECT_EQ(serving.count(pids[0]) + serving.count(pids[1]) + serving.count(pids[3]), 3u);
  EXPECT_EQ(serving.count(pids[2]), 0u);
}

}  // namespace
}  // namespace pm
