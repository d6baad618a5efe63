#include "repos/database.h"

#include "repos/pool_state.h"

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include <poll.h>

#include <pqxx/nontransaction>

#include "repos/addressed_connection_string.h"
#include "repos/connection_string.h"
#include "repos/server_probe.h"

namespace pm {

Lease::Lease(Lease&& other) noexcept
    : pool_(std::move(other.pool_)),
      generation_(other.generation_),
      connection_(std::move(other.connection_)),
      discard_(other.discard_),
      reset_session_(other.reset_session_) {}

Lease::~Lease() {
  if (!pool_ || !connection_) return;
  if (reset_session_ && !discard_) reset_session();
  pool_->give_back(std::move(connection_), generation_, discard_);
}

void Lease::reset_session() noexcept {
  try {
    pqxx::nontransaction reset(*connection_);
    reset.exec(pool_->session_reset_sql);
  } catch (...) {  // broken, or left inside a transaction: not pooled
    discard_ = true;
  }
}

namespace {

// The pool's own settings of every session. The readers need the last two whatever the server's,
// the database's or the role's defaults (or libpq's PGDATESTYLE) say, which RESET ALL restores:
// DateStyle ISO, or the tiered repositories' TIMESTAMP columns come back as `10/01/2024 10:00:00`
// (SQL, DMY) and tiered::read_time refuses them; extra_float_digits 3, so a REAL (float4) is sent
// with the digits that name it exactly (from PostgreSQL 12 on any value above 0 gives the shortest
// exact text; 3 also before), or a threshold read back with 0 (six digits) names another float4
// and a lookup by it (`threshold = $1::real`) misses its row. Read committed, whatever the defaults:
// the repositories' upserts and ON CONFLICT DO NOTHING meeting a row committed after their snapshot
// fail with 40001 under repeatable read (libpqxx 6.4's BEGIN names no isolation level).
std::string session_settings_sql(const DatabaseConfig& config) {
  std::string sql = "SET statement_timeout = " + std::to_string(config.statement_timeout.count()) +
                    "; SET TIME ZONE 'UTC'; SET client_min_messages = warning; SET DateStyle = 'ISO, MDY'; "
                    "SET extra_float_digits = 3; SET default_transaction_isolation = 'read committed'";
  // The server's own keepalives and user timeout on this session's socket (ignored over a Unix
  // socket): a backend waiting for its client's data (a COPY cut off by a partition) is not ended
  // by statement_timeout or idle_in_transaction_session_timeout, and kept the rows it had taken,
  // which the client's retry then waited on, until the server's kernel gave up (~2 h 11 min).
  if (config.keepalives)
    sql += "; SET tcp_keepalives_idle = " + std::to_string(config.keepalives_idle.count()) +
           "; SET tcp_keepalives_interval = " + std::to_string(config.keepalives_interval.count()) +
           "; SET tcp_keepalives_count = " + std::to_string(config.keepalives_count);
  if (const auto ms = config.tcp_user_timeout.count(); ms > 0)  // PostgreSQL 12 on
    sql += "; SELECT set_config('tcp_user_timeout', '" + std::to_string(ms) +
           "', false) FROM pg_settings WHERE name = 'tcp_user_timeout'";
  // A transaction left idle this long is ended by the server; a stricter value of the server's, the
  // role's or the database's (1 ms up to ours) is kept, and 0 leaves theirs alone.
  if (const auto ms = config.idle_in_transaction_timeout.count(); ms > 0)
    sql += "; SELECT set_config('idle_in_transaction_session_timeout', '" + std::to_string(ms) +
           "', false) FROM pg_settings WHERE name = 'idle_in_transaction_session_timeout' AND setting::bigint NOT BETWEEN 1 AND " +
           std::to_string(ms);
  return sql;
}

// What asyncpg's reset on release does (advisory locks, cursors, LISTENs, every SET), then the
// pool's settings again. One simple query: one round trip. UNLISTEN is allowed on a hot standby.
// First, a session left inside a transaction block (a lease's own BEGIN) fails the reset, and is
// dropped: there now() is that transaction's start, not this query's.
std::string session_reset_sql(const DatabaseConfig& config) {
  // RESET ALL leaves the role and the session authorization: a body's SET ROLE would reach the
  // next borrower with its privileges.
  return "SELECT 1 / (now() = statement_timestamp())::int; SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; "
         "RESET SESSION AUTHORIZATION; RESET ROLE; RESET ALL; " +
         session_settings_sql(config);
}

}  // namespace

Database::Database(DatabaseConfig config)
    : config_((config.validate(), remember_passwords_of(config.url), std::move(config))),
      connect_string_(connection_string(config_)),
      lookup_time_(connect_timeout_of(connect_string_).value_or(std::chrono::hours(24))),
      pool_(std::make_shared<detail::PoolState>()) {
  pool_->session_reset_sql = session_reset_sql(config_);
}

Database::~Database() { close(); }

void Database::initialize() {
  std::vector<Lease> opened;
  for (int i = 0; i < config_.min_connections; ++i) opened.push_back(lease());
  std::lock_guard lock(pool_->mu);
  pool_->connected = true;  // with min_connections 0 too: the pool exists (storage-api.md 1.2)
}

void Database::close() {
  std::vector<std::unique_ptr<pqxx::connection>> dropped;
  {
    std::lock_guard lock(pool_->mu);
    dropped = pool_->close_locked();
  }
  pool_->available.notify_all();
  // The dropped connections close here, outside the lock.
}

bool Database::is_connected() const {
  std::lock_guard lock(pool_->mu);
  return pool_->connected;
}

std::unique_ptr<pqxx::connection> Database::open_connection() {
  Backoff backoff(config_.reconnect_initial_delay, config_.reconnect_max_delay,
                  config_.reconnect_multiplier);
  std::string last_error;
  for (int attempt = 1; attempt <= config_.reconnect_max_attempts; ++attempt) {
    try {
      // Host names looked up within connect_timeout (libpq's own lookup is not bounded, and keeps
      // no answer to fall back on when the name servers stop answering).
      const auto deadline = std::chrono::steady_clock::now() + lookup_time_;
      auto connection = std::make_unique<pqxx::connection>(with_host_addresses(connect_string_, deadline));
      pqxx::nontransaction setup(*connection);
      setup.exec(session_settings_sql(config_));
      return connection;
    } catch (const std::exception& error) {
      last_error = error.what();
      while (!last_error.empty() && (last_error.back() == '\n' || last_error.back() == ' '))
        last_error.pop_back();
    }
    if (attempt < config_.reconnect_max_attempts) std::this_thread::sleep_for(backoff.next());
  }
  throw ConnectionError("cannot connect to " + redact_url(config_.url) + " after " +
                        std::to_string(config_.reconnect_max_attempts) +
                        " attempt(s): " + redact_url(last_error));
}

Lease Database::lease() {
  Lease lease = pooled_lease();
  lease.reset_session_on_return();
  return lease;
}

Lease Database::pooled_lease() {
  detail::PoolState& pool = *pool_;
  std::unique_lock lock(pool.mu);
  const auto deadline = std::chrono::steady_clock::now() + config_.acquire_timeout;
  for (;;) {
    if (!pool.idle.empty()) {
      auto connection = std::move(pool.idle.back());
      pool.idle.pop_back();
      pool.connected = true;
      return Lease(pool_, pool.generation, std::move(connection));
    }
    if (pool.open < config_.max_connections) {
      ++pool.open;
      const std::uint64_t generation = pool.generation;
      lock.unlock();
      std::unique_ptr<pqxx::connection> connection;
      try {
        connection = open_connection();
      } catch (...) {
        lock.lock();
        --pool.open;
        pool.available.notify_one();
        throw;
      }
      lock.lock();
      if (pool.generation == generation) pool.connected = true;  // not when close() ran meanwhile
      return Lease(pool_, generation, std::move(connection));
    }
    ++pool.waiting;
    const std::cv_status waited = pool.available.wait_until(lock, deadline);
    --pool.waiting;
    if (waited == std::cv_status::timeout && pool.idle.empty() && pool.open >= config_.max_connections) {
      throw PoolTimeout("no database connection free after " +
                        std::to_string(config_.acquire_timeout.count()) + " ms (all " +
                        std::to_string(config_.max_connections) + " in use)");
    }
  }
}

bool Database::health_check() noexcept { return probe_server(connect_string_, config_.health_check_timeout); }

bool Database::ensure_healthy() noexcept {
  try {
    drop_closed_idle();
    return health_check() || health_check();
  } catch (...) {
    return false;
  }
}

namespace {

// An idle connection's socket is readable only when the server sent something unasked: the
// notice before it terminated the session, or the end of the stream. Either way it is dead.
bool closed_by_server(pqxx::connection& c) {
  const int fd = c.sock();
  if (fd < 0) return true;
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) != 0;
}

}  // namespace

void Database::drop_closed_idle() {
  std::vector<std::unique_ptr<pqxx::connection>> dropped;
  {
    std::lock_guard lock(pool_->mu);
    dropped = pool_->take_idle_locked(closed_by_server);
  }
  pool_->available.notify_all();
  // The dropped connections close here, outside the lock.
}

PoolStats Database::stats() const {
  std::lock_guard lock(pool_->mu);
  return PoolStats{pool_->open, static_cast<int>(pool_->idle.size()), pool_->waiting};
}

}  // namespace pm
