#include "ingest/writer/commit_order.h"

#include <algorithm>

namespace pm {

bool CommitOrder::await_turn(std::uint64_t seq) {
  std::unique_lock lock(mu_);
  wait_for_turn(lock, [&] { return next_ >= seq || failed_before(seq); });
  return !broken_ && !failed_before(seq);
}

void CommitOrder::done(std::uint64_t seq, bool committed) {
  {
    std::unique_lock lock(mu_);
    // A batch that failed before its turn still waits for it, so outcomes are recorded in order.
    wait_for_turn(lock, [&] { return next_ >= seq; });
    if (!committed) broken_ = true;
    next_ = seq + 1;
    started_.erase(seq);
  }
  turn_.notify_all();
}

void CommitOrder::reset(std::uint64_t first) {
  {
    std::lock_guard lock(mu_);
    next_ = first;
    broken_ = false;
    started_.clear();
    first_failed_ = UINT64_MAX;
  }
  turn_.notify_all();
}

void CommitOrder::started(std::uint64_t seq) {
  {
    std::lock_guard lock(mu_);
    started_.insert(seq);
  }
  turn_.notify_all();
}

bool CommitOrder::predecessor_running(std::uint64_t seq) {
  std::unique_lock lock(mu_);
  wait_for_turn(lock, [&] { return next_ >= seq || started_.count(seq - 1) > 0 || failed_before(seq); });
  return next_ < seq && !failed_before(seq);
}

std::size_t CommitOrder::waiting() {
  std::lock_guard lock(mu_);
  return waiting_;
}

void CommitOrder::failed(std::uint64_t seq) {
  {
    std::lock_guard lock(mu_);
    first_failed_ = std::min(first_failed_, seq);
  }
  turn_.notify_all();
}

}  // namespace pm
