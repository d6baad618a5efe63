#include "ingest/server/kept_buffers.h"

#include <malloc.h>

#include <atomic>
#include <chrono>
#include <cstdint>

namespace pm {

namespace {
constexpr std::size_t kGiveBackBytes = 1 << 20;
// malloc_trim walks (and locks) every arena: at most once per interval in the whole process, so a
// producer that sends large lines all the time does not make every connection wait on it.
constexpr std::chrono::seconds kGiveBackInterval{10};
thread_local std::size_t released_bytes = 0;
std::atomic<std::int64_t> last_give_back{0};  // steady clock, nanoseconds since its epoch
}  // namespace

void note_released(std::size_t bytes) { released_bytes += bytes; }

void give_back_released_memory() {
  if (released_bytes < kGiveBackBytes) return;
  const std::int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
  std::int64_t last = last_give_back.load(std::memory_order_relaxed);
  if (now - last < std::chrono::nanoseconds(kGiveBackInterval).count()) return;
  if (!last_give_back.compare_exchange_strong(last, now, std::memory_order_relaxed)) return;  // another thread does it
  released_bytes = 0;
  ::malloc_trim(0);
}

}  // namespace pm
