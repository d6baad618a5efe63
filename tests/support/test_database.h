#pragma once
// TestDatabase: an isolated, migrated PostgreSQL database for one test suite, created on the
// server named by DATABASE_URL (default: the private cluster of scripts/pg.sh) and dropped at the
// end. Suites never see each other's rows, so ctest may run them in parallel.
#include <memory>
#include <string>

#include "repos/database.h"

namespace pm::test {

// The admin URL tests start from (DATABASE_URL or the private cluster's default).
std::string admin_url();

// `url` with its database name replaced.
std::string url_with_database(const std::string& url, const std::string& database);

// The server process id of the session behind `lease` (SELECT pg_backend_pid()).
int backend_pid(Lease& lease);

class TestDatabase {
 public:
  // Creates database `pmt_<prefix>_<pid>_<n>`; migrates it unless `migrate` is false.
  explicit TestDatabase(const std::string& prefix, bool migrate = true);
  ~TestDatabase();

  const std::string& url() const { return url_; }
  const std::string& name() const { return name_; }
  // A pool on this database (created on first use).
  Database& db();
  // A config pointing at this database, for tests that build their own pool.
  DatabaseConfig config() const;
  // Runs one SQL statement on a fresh connection (DDL, cleanup, assertions).
  void exec(const std::string& sql);
  long long count(const std::string& table_or_query);
  // A deferred constraint trigger that refuses (check_violation) any polymarket_trades row with
  // this trade_id, at COMMIT rather than at the INSERT; drop it with drop_refusal_at_commit().
  void refuse_at_commit(const std::string& trade_id);
  void drop_refusal_at_commit();
  // Ends the server session `pid` (pg_terminate_backend, waiting up to 10 s for it to go): what a
  // crashed backend or a cut connection looks like to the client. True when it was ended.
  bool terminate_backend(int pid);

 private:
  std::string name_, url_;
  std::unique_ptr<Database> db_;
};

}  // namespace pm::test
