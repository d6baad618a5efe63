#include "repos/pool_state.h"

#include <utility>

namespace pm::detail {

void PoolState::give_back(std::unique_ptr<pqxx::connection> connection, std::uint64_t of_generation,
                          bool discard) noexcept {
  {
    std::lock_guard lock(mu);
    if (discard || of_generation != generation || !connection->is_open()) {
      --open;
    } else {
      idle.push_back(std::move(connection));
    }
  }
  available.notify_one();
  // A dropped connection closes here, outside the lock.
}

std::vector<std::unique_ptr<pqxx::connection>> PoolState::take_idle_locked(
    const std::function<bool(pqxx::connection&)>& dead) {
  std::vector<std::unique_ptr<pqxx::connection>> dropped;
  auto alive = idle.begin();
  for (auto& c : idle) {
    if (dead(*c)) dropped.push_back(std::move(c));
    else *alive++ = std::move(c);
  }
  idle.erase(alive, idle.end());
  open -= static_cast<int>(dropped.size());
  return dropped;
}

std::vector<std::unique_ptr<pqxx::connection>> PoolState::close_locked() {
  std::vector<std::unique_ptr<pqxx::connection>> dropped = take_idle_locked([](pqxx::connection&) { return true; });
  ++generation;
  connected = false;
  return dropped;
}

}  // namespace pm::detail
