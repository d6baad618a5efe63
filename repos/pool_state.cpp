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

std::vector<std::unique_ptr<pqxx::connection>> PoolState::close_locked() {
  std::vector<std::unique_ptr<pqxx::connection>> dropped;
  dropped.swap(idle);
  open -= static_cast<int>(dropped.size());
  ++generation;
  connected = false;
  return dropped;
}

}  // namespace pm::detail
