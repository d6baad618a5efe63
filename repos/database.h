#pragma once
// Database: a pool of libpqxx connections with RAII leases and retried transactions.
//
// Contract:
// - Thread-safe: any thread may lease connections and run transactions concurrently.
// - Nothing connects in the constructor; initialize() opens `min_connections` eagerly (and throws
//   if the server is unreachable after the configured attempts), otherwise connections open on
//   first use. Opening retries with exponential backoff and jitter.
// - lease() hands out an idle connection (most recently used first) or opens a new one while fewer
//   than `max_connections` exist; otherwise it waits up to `acquire_timeout` and throws
//   PoolTimeout. A lease returns its connection when destroyed; a broken connection is dropped,
//   never the whole pool (fix for D15).
// - transaction(fn) runs fn(pqxx::work&) and commits when fn returns; when fn throws, the
//   transaction rolls back and the exception propagates unchanged. A connection-level failure
//   before COMMIT was sent is retried (fn runs again on a fresh connection, so fn must not have
//   side effects outside the transaction); a failure during COMMIT is in doubt and is never retried
//   (pqxx::in_doubt_error propagates). No other error is retried (fix for D13/D14).
#include <condition_variable>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <vector>

#include <pqxx/pqxx>

#include "repos/backoff.h"
#include "repos/database_config.h"
#include "repos/pg_errors.h"

namespace pm {

class Database;

// A leased connection. Move-only; returns the connection to the pool on destruction.
class Lease {
 public:
  Lease(Lease&& other) noexcept;
  Lease& operator=(Lease&&) = delete;
  Lease(const Lease&) = delete;
  ~Lease();

  pqxx::connection& connection() { return *connection_; }
  // Drop the connection instead of returning it (it is broken or in an unknown state).
  void discard() { discard_ = true; }

 private:
  friend class Database;
  Lease(Database* db, std::unique_ptr<pqxx::connection> c) : db_(db), connection_(std::move(c)) {}
  Database* db_;
  std::unique_ptr<pqxx::connection> connection_;
  bool discard_ = false;
};

struct PoolStats {
  int open = 0;  // connections that exist (idle + leased + being opened)
  int idle = 0;
};

class Database {
 public:
  explicit Database(DatabaseConfig config);  // validates the config; does not connect
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Opens min_connections now. Throws ConnectionError when the server cannot be reached.
  void initialize();
  // Drops idle connections; leased ones are dropped when returned. Later leases reopen.
  void close();

  Lease lease();

  template <class Fn>
  auto transaction(Fn&& fn) -> std::invoke_result_t<Fn&, pqxx::work&>;

  // SELECT 1 on a pooled connection; false on any failure (never throws).
  bool health_check() noexcept;

  const DatabaseConfig& config() const { return config_; }
  PoolStats stats() const;

 private:
  friend class Lease;
  std::unique_ptr<pqxx::connection> open_connection();
  void give_back(std::unique_ptr<pqxx::connection> connection, bool discard);

  const DatabaseConfig config_;
  const std::string connect_string_;
  mutable std::mutex mu_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
  int open_ = 0;
};

template <class Fn>
auto Database::transaction(Fn&& fn) -> std::invoke_result_t<Fn&, pqxx::work&> {
  using Result = std::invoke_result_t<Fn&, pqxx::work&>;
  Backoff backoff(config_.retry_initial_delay, config_.retry_max_delay, 2.0);
  for (int attempt = 1;; ++attempt) {
    Lease lease = this->lease();
    bool committing = false;
    try {
      pqxx::work tx(lease.connection());
      if constexpr (std::is_void_v<Result>) {
        fn(tx);
        committing = true;
        tx.commit();
        return;
      } else {
        Result result = fn(tx);
        committing = true;
        tx.commit();
        return result;
      }
    } catch (const std::exception& error) {
      const PgErrorKind kind = classify_exception(error);
      if (kind == PgErrorKind::Connection || kind == PgErrorKind::InDoubt) lease.discard();
      if (committing && kind == PgErrorKind::Connection) {
        throw pqxx::in_doubt_error(std::string("connection lost during COMMIT: ") + error.what());
      }
      if (kind != PgErrorKind::Connection || committing || attempt >= config_.retry_max_attempts)
        throw;
    }
    std::this_thread::sleep_for(backoff.next());
  }
}

}  // namespace pm
