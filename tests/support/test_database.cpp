#include "tests/support/test_database.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>

#include <pqxx/nontransaction>

#include "repos/migrator.h"

namespace pm::test {

std::string admin_url() {
  const char* env = std::getenv("DATABASE_URL");
  return env != nullptr && *env != '\0' ? env : kDefaultDatabaseUrl;
}

std::string url_with_database(const std::string& url, const std::string& database) {
  const auto scheme = url.find("://");
  const auto slash = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  const auto query = url.find('?');
  std::string base = slash == std::string::npos ? url.substr(0, query) : url.substr(0, slash);
  return base + "/" + database + (query == std::string::npos ? "" : url.substr(query));
}

namespace {
std::atomic<int> counter{0};

void admin_exec(const std::string& sql) {
  pqxx::connection c(admin_url());
  pqxx::nontransaction tx(c);
  tx.exec(sql);
}
}  // namespace

TestDatabase::TestDatabase(const std::string& prefix, bool migrate)
    : name_("pmt_" + prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++)),
      url_(url_with_database(admin_url(), name_)) {
  admin_exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  admin_exec("CREATE DATABASE " + name_);
  if (migrate) {
    Migrator(db()).migrate();
  }
}

TestDatabase::~TestDatabase() {
  db_.reset();
  try {
    admin_exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  } catch (...) {
  }
}

DatabaseConfig TestDatabase::config() const {
  DatabaseConfig config;
  config.url = url_;
  config.min_connections = 0;
  config.max_connections = 8;
  config.reconnect_max_attempts = 3;
  config.reconnect_initial_delay = std::chrono::milliseconds(100);
  return config;
}

Database& TestDatabase::db() {
  if (!db_) db_ = std::make_unique<Database>(config());
  return *db_;
}

void TestDatabase::exec(const std::string& sql) {
  pqxx::connection c(url_);
  pqxx::nontransaction tx(c);
  tx.exec(sql);
}

void TestDatabase::refuse_at_commit(const std::string& trade_id) {
  exec(R"(CREATE OR REPLACE FUNCTION test_refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN
            IF NEW.trade_id = TG_ARGV[0] THEN RAISE EXCEPTION 'refused at commit' USING ERRCODE = 'check_violation'; END IF;
            RETURN NULL;
          END $$)");
  pqxx::connection c(url_);
  pqxx::nontransaction tx(c);
  tx.exec0("CREATE CONSTRAINT TRIGGER test_refuse_at_commit AFTER INSERT ON polymarket_trades "
           "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_refuse_at_commit(" + tx.quote(trade_id) + ")");
}

void TestDatabase::drop_refusal_at_commit() { exec("DROP TRIGGER IF EXISTS test_refuse_at_commit ON polymarket_trades"); }

bool TestDatabase::terminate_backend(int pid) {
  pqxx::connection c(url_);
  pqxx::nontransaction tx(c);
  return tx.exec_params1("SELECT pg_terminate_backend($1, 10000)", pid)[0].as<bool>();
}

int backend_pid(Lease& lease) { return pqxx::nontransaction(lease.connection()).exec1("SELECT pg_backend_pid()")[0].as<int>(); }

long long TestDatabase::count(const std::string& table_or_query) {
  pqxx::connection c(url_);
  pqxx::nontransaction tx(c);
  const bool is_query = table_or_query.find(' ') != std::string::npos;
  return tx.exec1(is_query ? table_or_query : "SELECT count(*) FROM " + table_or_query)[0].as<long long>();
}

}  // namespace pm::test
