#pragma once
// PoolState: the part of a Database that its leases share (internal to repos/database.cpp).
// Held by a shared_ptr that the Database and every Lease keep, so a Lease that outlives its
// Database returns its connection to memory that is still alive (and is then dropped, because the
// Database's destructor closed the pool).
//
// - `open` counts the connections that exist (idle, leased, being opened), of every generation,
//   so max_connections holds across close() and reopening.
// - `generation` is bumped by close(); a lease taken under an older generation is dropped when it
//   is returned, never pooled.
// - `connected` is Database::is_connected(): a connection was had since the last close().
// Every member is guarded by `mu`; give_back() takes it.
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <pqxx/connection>

namespace pm::detail {

struct PoolState {
  std::mutex mu;
  std::condition_variable available;
  std::vector<std::unique_ptr<pqxx::connection>> idle;
  int open = 0;
  int waiting = 0;  // lease() calls in available.wait_until
  std::uint64_t generation = 0;
  bool connected = false;
  // The SQL that resets a session before it is pooled again (Lease::reset_session). Set once by
  // the Database's constructor, before any lease; read without `mu`.
  std::string session_reset_sql;

  // Pools `connection` when it is healthy, not discarded and of the current generation; otherwise
  // drops it (closed outside the lock). Wakes one waiter either way. Any thread; never throws.
  void give_back(std::unique_ptr<pqxx::connection> connection, std::uint64_t of_generation, bool discard) noexcept;

  // Takes the idle connections for which `dead` is true out of the pool (`open` no longer counts
  // them) and returns them, so the caller closes them outside the lock. Caller holds `mu`.
  std::vector<std::unique_ptr<pqxx::connection>> take_idle_locked(const std::function<bool(pqxx::connection&)>& dead);
  // Takes every idle connection (as above) and bumps the generation. Caller holds `mu`.
  std::vector<std::unique_ptr<pqxx::connection>> close_locked();
};

}  // namespace pm::detail
