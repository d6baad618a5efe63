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
std::atomic<bool> give_back_pending{false};   // released memory not handed back yet
std::atomic<std::int64_t> last_give_back{0};  // steady clock, nanoseconds since its epoch

// malloc_trim, unless one ran in the last kGiveBackInterval (then the next call after it does).
void give_back_when_due() {
  const std::int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
  std::int64_t last = last_give_back.load(std::memory_order_relaxed);
  if (now - last < std::chrono::nanoseconds(kGiveBackInterval).count()) return;
  if (!last_give_back.compare_exchange_strong(last, now, std::memory_order_relaxed)) return;  // another thread does it
  give_back_pending = false;  // before the trim: what is released after it is handed back next time
  ::malloc_trim(0);
}
// Marks what this thread released as owed to the system once it is at least `least` (> 0) bytes.
void give_back_released_from(std::size_t least) {
  if (released_bytes < least) return;
  released_bytes = 0;
  give_back_pending = true;
  give_back_when_due();
}

}  // namespace

void note_released(std::size_t bytes) { released_bytes += bytes; }

void give_back_released_memory() { give_back_released_from(kGiveBackBytes); }

void give_back_released_memory_now_idle() { give_back_released_from(1); }

void give_back_pending_memory() {
  if (give_back_pending) give_back_when_due();
}

}  // namespace pm
