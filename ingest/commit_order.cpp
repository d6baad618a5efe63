#include "ingest/commit_order.h"

namespace pm {

bool CommitOrder::await_turn(std::uint64_t seq) {
  std::unique_lock lock(mu_);
  turn_.wait(lock, [&] { return next_ >= seq; });
  return !broken_;
}

void CommitOrder::done(std::uint64_t seq, bool committed) {
  {
    std::unique_lock lock(mu_);
    // A batch that failed before its turn still waits for it, so outcomes are recorded in order.
    turn_.wait(lock, [&] { return next_ >= seq; });
    if (!committed) broken_ = true;
    next_ = seq + 1;
  }
  turn_.notify_all();
}

void CommitOrder::reset(std::uint64_t first) {
  {
    std::lock_guard lock(mu_);
    next_ = first;
    broken_ = false;
  }
  turn_.notify_all();
}

}  // namespace pm
