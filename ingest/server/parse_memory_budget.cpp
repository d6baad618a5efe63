#include "ingest/server/parse_memory_budget.h"

#include <algorithm>

#include "ingest/server/parser_buffers.h"

namespace pm {

ParseMemoryBudget::Lease ParseMemoryBudget::take(std::size_t line_bytes) {
  if (line_bytes <= kKeptParserCapacity) return Lease(nullptr, 0);
  const std::size_t share = std::min(capacity_, line_bytes * kParserBytesPerLineByte);
  std::unique_lock lock(mu_);
  const std::uint64_t ticket = next_ticket_++;  // in arrival order: a large share is not passed for ever
  freed_.wait(lock, [&] { return ticket == serving_ && capacity_ - in_use_ >= share; });
  ++serving_;
  in_use_ += share;
  lock.unlock();
  freed_.notify_all();  // the next ticket may fit too
  return Lease(this, share);
}

std::size_t ParseMemoryBudget::waiting() const {
  std::lock_guard lock(mu_);
  return static_cast<std::size_t>(next_ticket_ - serving_);
}

std::size_t ParseMemoryBudget::in_use() const {
  std::lock_guard lock(mu_);
  return in_use_;
}

void ParseMemoryBudget::give_back(std::size_t bytes) {
  {
    std::lock_guard lock(mu_);
    in_use_ -= bytes;
  }
  freed_.notify_all();
}

ParseMemoryBudget& ParseMemoryBudget::process() {
  static ParseMemoryBudget budget(256u << 20);
  return budget;
}

}  // namespace pm
