#include "repos/database.h"

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include <poll.h>

#include <pqxx/nontransaction>

#include "repos/connection_string.h"
#include "repos/server_probe.h"

namespace pm {

Lease::Lease(Lease&& other) noexcept
    : db_(other.db_), connection_(std::move(other.connection_)), discard_(other.discard_) {
  other.db_ = nullptr;
}

Lease::~Lease() {
  if (db_ != nullptr && connection_) db_->give_back(std::move(connection_), discard_);
}

Database::Database(DatabaseConfig config)
    : config_((config.validate(), std::move(config))),
      connect_string_(connection_string(config_)) {}

Database::~Database() { close(); }

void Database::initialize() {
  std::vector<Lease> opened;
  for (int i = 0; i < config_.min_connections; ++i) opened.push_back(lease());
}

void Database::close() {
  std::vector<std::unique_ptr<pqxx::connection>> dropped;
  {
    std::lock_guard lock(mu_);
    dropped.swap(idle_);
    open_ -= static_cast<int>(dropped.size());
  }
  available_.notify_all();
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
  std::unique_lock lock(mu_);
  const auto deadline = std::chrono::steady_clock::now() + config_.acquire_timeout;
  for (;;) {
    if (!idle_.empty()) {
      auto connection = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(connection));
    }
    if (open_ < config_.max_connections) {
      ++open_;
      lock.unlock();
      try {
        return Lease(this, open_connection());
      } catch (...) {
        lock.lock();
        --open_;
        available_.notify_one();
        throw;
      }
    }
    if (available_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
        open_ >= config_.max_connections) {
      throw PoolTimeout("no database connection free after " +
                        std::to_string(config_.acquire_timeout.count()) + " ms (all " +
                        std::to_string(config_.max_connections) + " in use)");
    }
  }
}

void Database::give_back(std::unique_ptr<pqxx::connection> connection, bool discard) {
  {
    std::lock_guard lock(mu_);
    if (discard || !connection->is_open()) {
      --open_;
    } else {
      idle_.push_back(std::move(connection));
      connection = nullptr;
    }
  }
  available_.notify_one();
  // A dropped connection closes here, outside the lock.
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
    std::lock_guard lock(mu_);
    auto alive = idle_.begin();
    for (auto& c : idle_) {
      if (closed_by_server(*c)) dropped.push_back(std::move(c));
      else *alive++ = std::move(c);
    }
    idle_.erase(alive, idle_.end());
    open_ -= static_cast<int>(dropped.size());
  }
  available_.notify_all();
  // The dropped connections close here, outside the lock.
}

PoolStats Database::stats() const {
  std::lock_guard lock(mu_);
  return PoolStats{open_, static_cast<int>(idle_.size())};
}

}  // namespace pm
