#include "repos/database.h"

#include "repos/pool_state.h"

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include <pqxx/nontransaction>

namespace pm {

namespace {

// Adds libpq's connect_timeout, and TCP keepalives that find a vanished server within ~15 s, to
// a URL or key=value connection string, unless it sets them itself.
std::string with_connection_defaults(const std::string& url, std::chrono::milliseconds timeout) {
  const long secs = std::max<long>(1, static_cast<long>((timeout.count() + 999) / 1000));
  std::vector<std::pair<std::string, std::string>> defaults;
  if (url.find("connect_timeout") == std::string::npos) defaults.emplace_back("connect_timeout", std::to_string(secs));
  if (url.find("keepalives") == std::string::npos)
    defaults.insert(defaults.end(), {{"keepalives", "1"}, {"keepalives_idle", "5"}, {"keepalives_interval", "3"}, {"keepalives_count", "3"}});
  const bool is_url = url.find("://") != std::string::npos;
  std::string out = url;
  for (const auto& [key, value] : defaults) {
    if (is_url)
      out += (out.find('?') == std::string::npos ? "?" : "&") + key + "=" + value;
    else
      out += " " + key + "=" + value;
  }
  return out;
}

}  // namespace

Lease::Lease(Lease&& other) noexcept
    : pool_(std::move(other.pool_)),
      generation_(other.generation_),
      connection_(std::move(other.connection_)),
      discard_(other.discard_) {}

Lease::~Lease() {
  if (pool_ && connection_) pool_->give_back(std::move(connection_), generation_, discard_);
}

Database::Database(DatabaseConfig config)
    : config_((config.validate(), std::move(config))),
      connect_string_(with_connection_defaults(config_.url, config_.connect_timeout)),
      pool_(std::make_shared<detail::PoolState>()) {}

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
      auto connection = std::make_unique<pqxx::connection>(connect_string_);
      pqxx::nontransaction setup(*connection);
      setup.exec("SET statement_timeout = " + std::to_string(config_.statement_timeout.count()));
      setup.exec("SET TIME ZONE 'UTC'");
      setup.exec("SET client_min_messages = warning");
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
    if (pool.available.wait_until(lock, deadline) == std::cv_status::timeout && pool.idle.empty() &&
        pool.open >= config_.max_connections) {
      throw PoolTimeout("no database connection free after " +
                        std::to_string(config_.acquire_timeout.count()) + " ms (all " +
                        std::to_string(config_.max_connections) + " in use)");
    }
  }
}

bool Database::health_check() noexcept {
  try {
    Lease l = lease();
    try {
      pqxx::nontransaction tx(l.connection());
      tx.exec("SELECT 1");
      return true;
    } catch (...) {
      l.discard();
      return false;
    }
  } catch (...) {
    return false;
  }
}

PoolStats Database::stats() const {
  std::lock_guard lock(pool_->mu);
  return PoolStats{pool_->open, static_cast<int>(pool_->idle.size())};
}

}  // namespace pm
