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
// - run_once(lease, fn) is the one routine every transaction goes through (transaction() above,
//   attempt(), the ingest writer's lanes): fn(tx) returns std::optional<T>; a value commits, nullopt
//   rolls back; whatever fn or COMMIT throws comes back classified as a TxResult (tx_result.h),
//   never as an exception, and a broken or in-doubt connection is discarded, not pooled.
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <variant>
#include <vector>

#include <pqxx/pqxx>

#include "repos/util/backoff.h"
#include "repos/database_config.h"
#include "repos/pg_errors.h"
#include "repos/tx_result.h"

namespace pm {

class Database;

// The transaction type every transaction body here receives.
using Transaction = pqxx::work;

// T, for a body that returns std::optional<T> (run_once, Database::attempt).
template <class Fn>
using TxValue = typename std::invoke_result_t<Fn&, Transaction&>::value_type;

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

// The transaction type every transaction body here receives.
using Transaction = pqxx::work;

// T, for a body that returns std::optional<T> (run_once, Database::attempt).
template <class Fn>
using TxValue = typename std::invoke_result_t<Fn&, Transaction&>::value_type;
  Lease(Database* db, std::unique_ptr<pqxx::connection> c) : db_(db), connection_(std::move(c)) {}
  Database* db_;
  std::unique_ptr<pqxx::connection> connection_;
  bool discard_ = false;
};

// Runs fn once on `lease` (see the contract above). The caller's thread; never throws what fn throws.
template <class Fn>
TxResult<TxValue<Fn>> run_once(Lease& lease, Fn& fn);

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
  auto transaction(Fn&& fn) -> std::invoke_result_t<Fn&, Transaction&>;

  // One attempt, no retry: leases a connection and runs run_once(lease, fn). A connection that
  // cannot be had is a failed result too (Retry), never an exception. Any thread.
  template <class Fn>
  TxResult<TxValue<Fn>> attempt(Fn&& fn);

  // True when the server answers SELECT 1 within config().health_check_timeout (1 s by default),
  // on a probe connection of its own (server_probe.h), not a pooled one: a refused port is false
  // at once, a down or black-holed server false at the bound; never retries, never throws. Any
  // thread. (The original returned False at once when not connected, else ran SELECT 1.)
  bool health_check() noexcept;
  // The original's ensure_healthy (true if health_check passes, otherwise reconnect and check
  // again): drops the idle pooled connections the server has closed (later leases open new ones),
  // then health_check(), and once more if that failed. Any failure: false. At most twice
  // health_check_timeout; never throws. Any thread.
  bool ensure_healthy() noexcept;

  const DatabaseConfig& config() const { return config_; }
  PoolStats stats() const;

 private:
  friend class Lease;
  std::unique_ptr<pqxx::connection> open_connection();
  void give_back(std::unique_ptr<pqxx::connection> connection, bool discard);
  void drop_closed_idle();

  const DatabaseConfig config_;
  const std::string connect_string_;
  mutable std::mutex mu_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
  int open_ = 0;
};

template <class Fn>
TxResult<TxValue<Fn>> run_once(Lease& lease, Fn& fn) {
  using Value = TxValue<Fn>;
  bool committing = false;
  try {
    Transaction tx(lease.connection());
    std::optional<Value> value = fn(tx);
    if (!value) {
      tx.abort();
      return TxResult<Value>::rolled_back();
    }
    committing = true;
    tx.commit();
    return TxResult<Value>::applied_with(std::move(*value));
  } catch (const std::exception& error) {  // rolled back by the Transaction's destructor, or in doubt
    TxFailure failure = failure_of(error, committing);
    if (failure.kind == PgErrorKind::Connection || failure.kind == PgErrorKind::InDoubt) lease.discard();
    return failed_result<Value>(std::move(failure));
  }
}

template <class Fn>
TxResult<TxValue<Fn>> Database::attempt(Fn&& fn) {
  std::optional<Lease> lease;
  try {
    lease.emplace(this->lease());
  } catch (const std::exception& error) {  // ConnectionError, PoolTimeout
    return failed_result<TxValue<Fn>>(failure_of(error));
  }
  return run_once(*lease, fn);
}

template <class Fn>
auto Database::transaction(Fn&& fn) -> std::invoke_result_t<Fn&, Transaction&> {
  using Result = std::invoke_result_t<Fn&, Transaction&>;
  using Stored = std::conditional_t<std::is_void_v<Result>, std::monostate, Result>;
  auto body = [&](Transaction& tx) -> std::optional<Stored> {
    if constexpr (std::is_void_v<Result>) {
      fn(tx);
      return Stored{};
    } else {
      return std::optional<Stored>(std::in_place, fn(tx));
    }
  };
  Backoff backoff(config_.retry_initial_delay, config_.retry_max_delay, config_.retry_multiplier);
  for (int attempt = 1;; ++attempt) {
    Lease lease = this->lease();
    TxResult<Stored> result = run_once(lease, body);
    if (result.applied()) {
      if constexpr (std::is_void_v<Result>) return;
      else return std::move(*result.value);
    }
    // Only a connection failure before COMMIT is retried: fn's work was rolled back with it.
    const bool retry = result.status == TxStatus::Retry && result.failure.kind == PgErrorKind::Connection &&
                       attempt < config_.retry_max_attempts;
    if (!retry) std::rethrow_exception(result.failure.exception);
    std::this_thread::sleep_for(backoff.next());
  }
}

}  // namespace pm
