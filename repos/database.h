#pragma once
// Database: a pool of libpqxx connections with RAII leases and retried transactions.
//
// Contract:
// - Thread-safe: any thread may lease connections and run transactions concurrently.
// - Nothing connects in the constructor; initialize() opens `min_connections` eagerly (and throws
//   if the server is unreachable after the configured attempts), otherwise connections open on
//   first use. Opening retries with exponential backoff and jitter. Host names are looked up within
//   connect_timeout, a name's last good answer used when the name servers do not answer
//   (addressed_connection_string.h).
// - lease() hands out an idle connection (most recently used first) or opens a new one while fewer
//   than `max_connections` exist; otherwise it waits up to `acquire_timeout` and throws
//   PoolTimeout. An idle connection is handed out without a look at it: one the server ended
//   fails its first statement (the ingest writer relies on that to notice a crash-restart).
//   A lease returns its connection when destroyed; a broken connection is dropped, never the
//   whole pool (fix for D15).
// - Session state is reset before a connection goes back to the pool, as the original's asyncpg
//   pool did on release (storage-api.md 1.3): session advisory locks released, cursors closed,
//   LISTENs ended, the role and session authorization reset, every SET undone (RESET ALL) and the
//   pool's own settings (statement_timeout, UTC, client_min_messages, DateStyle ISO,
//   extra_float_digits 3) set again, in one round trip; a connection the reset fails on is
//   dropped. So a body that ran SET, SET ROLE or took pg_advisory_lock() leaves nothing to the next
//   borrower (TEMP tables stay, as with asyncpg).
// - Every session, new or reset, has those settings whatever the server's, the database's or the
//   role's defaults (or libpq's PGDATESTYLE/PGOPTIONS) say: the readers depend on DateStyle ISO
//   (the tiered repositories' TIMESTAMP columns) and on REALs sent with the digits that name them
//   exactly (a threshold read back and looked up again); the server's defaults were kept, and
//   under DateStyle 'SQL, DMY' a candle read threw "unreadable timestamp".
//   This applies to lease(), transaction() and execute/fetch; the repositories (whose own SQL
//   sets nothing; the trade COPY's staging TEMP table is kept on purpose) and attempt() (the
//   ingest writer's lanes) skip it.
// - transaction(fn) runs fn(pqxx::work&) and commits when fn returns; when fn throws, the
//   transaction rolls back and the exception propagates unchanged. A connection-level failure
//   before COMMIT was sent is retried (fn runs again on a fresh connection, so fn must not have
//   side effects outside the transaction); a failure during COMMIT is in doubt and is never retried
//   (pqxx::in_doubt_error propagates). No other error is retried (fix for D13/D14). Before each
//   retry the idle pooled connections the server has closed are dropped (drop_closed_idle), so
//   the dead sessions a server restart leaves in the pool do not use up the attempts one by one.
// - The body can run twice (or up to retry_max_attempts times): when the connection is lost
//   before COMMIT was sent, the first run's database work is rolled back, but anything fn did
//   outside the transaction (a message sent, a counter bumped, a file written) is not. The
//   original never retried a transaction. Opt out per call with transaction(fn, TxOptions{.retry =
//   false}), or for every transaction() of a Database with DatabaseConfig::retry_transactions =
//   false; the connection failure then propagates after the first run.
// - execute/fetch/fetchrow/fetchval (storage-api.md 1.8): one parameterised statement ($1, $2,
//   ... bound as untyped text, never pasted into the SQL) on its own pooled connection, in its own
//   one-statement transaction, so it commits alone exactly like the original's autocommit
//   statement, with transaction()'s retry rules (a connection lost before COMMIT: re-run; lost
//   during COMMIT: pqxx::in_doubt_error; nothing else retried). The statement is re-run on a
//   retry whatever retry_transactions says (it has no client-side side effects to repeat). A
//   statement that refuses a transaction block (VACUUM, CREATE DATABASE, CREATE INDEX
//   CONCURRENTLY) needs a Lease and a pqxx::nontransaction instead. Any thread.
// - Lifetime (issue 16): a Database and its leases share the pool's state (PoolState, held by
//   shared_ptr), so a Lease may outlive its Database: its connection stays usable and is closed,
//   not pooled, when the Lease is destroyed. close() drops the idle connections at once; a lease
//   taken before close() is dropped when returned, never pooled. close() does not end the
//   Database: a later lease() (or initialize(), or any call that leases) reopens, as the original's
//   connection() reconnected after close(). is_connected() is true from a successful initialize()
//   or lease() until close() (the original: "a pool exists and is not closed"); it does not probe
//   the server (health_check() does). The destructor closes. No call may run on a Database while
//   or after it is destroyed; only Leases may outlive it.
// - run_once(lease, fn) is the one routine every transaction goes through (transaction() above,
//   attempt(), the ingest writer's lanes): fn(tx) returns std::optional<T>; a value commits, nullopt
//   rolls back; whatever fn or COMMIT throws comes back classified as a TxResult (tx_result.h),
//   never as an exception, and a broken or in-doubt connection is discarded, not pooled.
//   A value is not committed when the transaction already failed on the server: fn caught a
//   statement's error and returned anyway (without rolling back to a savepoint). libpqxx 6.4 ends
//   its transaction itself when a statement sent through exec() fails (commit() then throws
//   pqxx::usage_error), but not after exec_params(), a prepared statement or the raw connection
//   (the repositories' routes): the server answered COMMIT with ROLLBACK and no error, and commit()
//   returned as if it had committed. run_once checks the session (PQTRANS_INERROR) before COMMIT
//   and rolls back instead, failing Fatal (pqxx::sql_error, SQLSTATE 25P02, naming the error fn
//   caught; transaction() throws it): the body's bug, which running it again would repeat; not
//   Retry, even when the error caught was transient, nor DataError, which would have the ingest
//   writer dead-letter events whose data is not at fault. (It was Applied, and transaction()
//   returned, with nothing stored.)
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <variant>
#include <vector>

#include <pqxx/pqxx>

#include "repos/command_result.h"
#include "repos/util/backoff.h"
#include "repos/database_config.h"
#include "repos/pg_errors.h"
#include "repos/raw_connection.h"
#include "repos/tx_result.h"

namespace pm {

class Database;
namespace detail {
struct PoolState;
}

// The transaction type every transaction body here receives.
using Transaction = pqxx::work;

// T, for a body that returns std::optional<T> when given a Tx& (run_once, Database::attempt).
template <class Fn, class Tx = Transaction>
using TxValue = typename std::invoke_result_t<Fn&, Tx&>::value_type;

// A leased connection. Move-only; returns the connection to the pool on destruction (or drops it:
// discarded, broken, or leased before the pool's last close()). May outlive its Database. One
// thread at a time.
class Lease {
 public:
  Lease(Lease&& other) noexcept;
  Lease& operator=(Lease&&) = delete;
  Lease(const Lease&) = delete;
  ~Lease();

  pqxx::connection& connection() { return *connection_; }
  // Drop the connection instead of returning it (it is broken or in an unknown state).
  void discard() { discard_ = true; }
  // Reset the session's state before the connection goes back to the pool (see the contract).
  void reset_session_on_return() { reset_session_ = true; }

 private:
  friend class Database;
  Lease(std::shared_ptr<detail::PoolState> pool, std::uint64_t generation, std::unique_ptr<pqxx::connection> c)
      : pool_(std::move(pool)), generation_(generation), connection_(std::move(c)) {}
  std::shared_ptr<detail::PoolState> pool_;  // keeps the pool's state alive; null once moved from
  std::uint64_t generation_ = 0;             // the pool generation this connection belongs to
  std::unique_ptr<pqxx::connection> connection_;
  bool discard_ = false;
  bool reset_session_ = false;
  void reset_session() noexcept;  // on failure the connection is discarded
};

// Runs fn once on `lease`, in a transaction of type Tx made on its connection (Transaction, or e.g.
// DeferredBeginTransaction; fn must accept it), as the contract above says. The caller's thread;
// never throws what fn throws.
template <class Tx = Transaction, class Fn>
TxResult<TxValue<Fn, Tx>> run_once(Lease& lease, Fn& fn);

// Per-call options of Database::transaction.
struct TxOptions {
  // Re-run the body after a connection lost before COMMIT (see the contract above: the body may
  // then run more than once). nullopt: DatabaseConfig::retry_transactions decides.
  std::optional<bool> retry;
  // Reset the session's state before the connection goes back to the pool (see the contract
  // above): one round trip. Only for a body known to leave the session as it found it.
  bool reset_session = true;
};

// For a body whose SQL sets nothing in the session (the repositories, the daemon's own queries):
// retried as configured, and pooled again without the reset round trip.
inline constexpr TxOptions kKeepSession{.retry = std::nullopt, .reset_session = false};

struct PoolStats {
  int open = 0;  // connections that exist (idle + leased + being opened)
  int idle = 0;
  int waiting = 0;  // lease() calls waiting for a connection to come back
};

class Database {
 public:
  explicit Database(DatabaseConfig config);  // validates the config; does not connect
  ~Database();                                // close(); outstanding Leases stay valid
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Opens min_connections now. Throws ConnectionError when the server cannot be reached.
  void initialize();
  // Drops idle connections at once; leased ones are dropped when returned, never pooled again.
  // is_connected() becomes false. A later lease() reopens (the original reconnected too).
  void close();
  // True from a successful initialize() or lease() until close(); no server round trip.
  bool is_connected() const;

  // A connection whose session is reset when the lease returns it (see the contract above).
  Lease lease();

  template <class Fn>
  auto transaction(Fn&& fn) -> std::invoke_result_t<Fn&, Transaction&>;
  // The same, with per-call options (TxOptions::retry overrides DatabaseConfig::retry_transactions).
  template <class Fn>
  auto transaction(Fn&& fn, TxOptions options) -> std::invoke_result_t<Fn&, Transaction&>;

  // One statement in its own transaction (see the contract above); $n parameters bound from args.
  // The affected-row count (storage-api.md 1.8 `execute`; see command_result.h).
  template <class... Args>
  CommandResult execute(const std::string& sql, const Args&... args);
  // Every row (possibly none). pqxx::result owns its data: valid after the connection is gone.
  template <class... Args>
  pqxx::result fetch(const std::string& sql, const Args&... args);
  // The first row, or nullopt when there is none.
  template <class... Args>
  std::optional<pqxx::row> fetchrow(const std::string& sql, const Args&... args);
  // The first column of the first row as T; nullopt when there is no row or the value is NULL (the
  // original returned None for both). Throws pqxx::conversion_error when it is not a T.
  template <class T, class... Args>
  std::optional<T> fetchval(const std::string& sql, const Args&... args);

  // One attempt, no retry: leases a connection and runs run_once<Tx>(lease, fn). A connection that
  // cannot be had is a failed result too (Retry), never an exception. Any thread.
  template <class Tx = Transaction, class Fn>
  TxResult<TxValue<Fn, Tx>> attempt(Fn&& fn);

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

  // Drops the idle pooled connections the server has closed: their sessions were terminated, or
  // the server stopped or restarted (each sent its end, so its socket is readable). Later leases
  // open new ones. No round trip. Any thread.
  void drop_closed_idle();

  const DatabaseConfig& config() const { return config_; }
  PoolStats stats() const;

 private:
  std::unique_ptr<pqxx::connection> open_connection();
  Lease pooled_lease();  // lease() without the session reset
  bool retries(const TxOptions& options) const { return options.retry.value_or(config_.retry_transactions); }

  const DatabaseConfig config_;
  const std::string connect_string_;
  // How long a new connection's host-name lookups may take: the connect_timeout libpq applies (the
  // URL's own when it sets one), or, when libpq waits without bound, a day.
  const std::chrono::steady_clock::duration lookup_time_;
  const std::shared_ptr<detail::PoolState> pool_;  // shared with every Lease
};

template <class Tx, class Fn>
TxResult<TxValue<Fn, Tx>> run_once(Lease& lease, Fn& fn) {
  using Value = TxValue<Fn, Tx>;
  bool committing = false;
  try {
    Tx tx(lease.connection());
    std::optional<Value> value = fn(tx);
    if (!value) {
      tx.abort();
      return TxResult<Value>::rolled_back();
    }
    require_transaction_not_failed(tx);  // else COMMIT would roll back without an error
    committing = true;
    tx.commit();
    return TxResult<Value>::applied_with(std::move(*value));
  } catch (const std::exception& error) {  // rolled back by the Transaction's destructor, or in doubt
    TxFailure failure = failure_of(error, committing);
    if (failure.kind == PgErrorKind::Connection || failure.kind == PgErrorKind::InDoubt) lease.discard();
    return failed_result<Value>(std::move(failure));
  }
}

template <class Tx, class Fn>
TxResult<TxValue<Fn, Tx>> Database::attempt(Fn&& fn) {
  std::optional<Lease> lease;
  try {
    lease.emplace(pooled_lease());
  } catch (const std::exception& error) {  // ConnectionError, PoolTimeout
    return failed_result<TxValue<Fn, Tx>>(failure_of(error));
  }
  return run_once<Tx>(*lease, fn);
}

template <class Fn>
auto Database::transaction(Fn&& fn) -> std::invoke_result_t<Fn&, Transaction&> {
  return transaction(std::forward<Fn>(fn), TxOptions{});
}

template <class Fn>
auto Database::transaction(Fn&& fn, TxOptions options) -> std::invoke_result_t<Fn&, Transaction&> {
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
    Lease lease = pooled_lease();
    if (options.reset_session) lease.reset_session_on_return();
    TxResult<Stored> result = run_once(lease, body);
    if (result.applied()) {
      if constexpr (std::is_void_v<Result>) return;
      else return std::move(*result.value);
    }
    // Only a connection failure before COMMIT is retried: fn's work was rolled back with it.
    const bool retry = result.status == TxStatus::Retry && result.failure.kind == PgErrorKind::Connection &&
                       retries(options) && attempt < config_.retry_max_attempts;
    if (!retry) std::rethrow_exception(result.failure.exception);
    std::this_thread::sleep_for(backoff.next());
    // A lost connection is often one of many (a server restart ends every session): the next
    // attempt must not take another dead one from the pool.
    drop_closed_idle();
  }
}

template <class... Args>
CommandResult Database::execute(const std::string& sql, const Args&... args) {
  return transaction([&](Transaction& tx) { return CommandResult::of(tx.exec_params(sql, args...)); },
                     TxOptions{.retry = true});
}

template <class... Args>
pqxx::result Database::fetch(const std::string& sql, const Args&... args) {
  return transaction([&](Transaction& tx) { return tx.exec_params(sql, args...); }, TxOptions{.retry = true});
}

template <class... Args>
std::optional<pqxx::row> Database::fetchrow(const std::string& sql, const Args&... args) {
  pqxx::result rows = fetch(sql, args...);
  if (rows.empty()) return std::nullopt;
  return rows[0];
}

template <class T, class... Args>
std::optional<T> Database::fetchval(const std::string& sql, const Args&... args) {
  std::optional<pqxx::row> row = fetchrow(sql, args...);
  if (!row || (*row)[0].is_null()) return std::nullopt;
  return (*row)[0].template as<T>();
}

}  // namespace pm
