#pragma once
// Exponential backoff with "equal jitter": delay k is uniform in [d/2, d] where d grows by
// `multiplier` from `initial` up to `max`. Jitter keeps many clients from reconnecting in lockstep.
// Not thread-safe: one Backoff per retry loop.
#include <chrono>
#include <random>

namespace pm {

class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, double multiplier);

  // The delay to sleep before the next attempt; grows the base delay.
  std::chrono::milliseconds next();
  void reset();

 private:
  std::chrono::milliseconds initial_, max_;
  double multiplier_;
  double current_ms_;
  std::minstd_rand rng_;
};

}  // namespace pm
