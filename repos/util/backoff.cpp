#include "repos/util/backoff.h"

#include <algorithm>

namespace pm {

Backoff::Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, double multiplier)
    : initial_(initial),
      max_(max),
      multiplier_(multiplier),
      current_ms_(static_cast<double>(initial.count())),
      rng_(std::random_device{}()) {}

std::chrono::milliseconds Backoff::next() {
  const double base = std::min(current_ms_, static_cast<double>(max_.count()));
  current_ms_ = std::min(current_ms_ * multiplier_, static_cast<double>(max_.count()));
  std::uniform_real_distribution<double> jitter(base / 2.0, base);
  return std::chrono::milliseconds(static_cast<long long>(base > 0 ? jitter(rng_) : 0.0));
}

void Backoff::reset() { current_ms_ = static_cast<double>(initial_.count()); }

}  // namespace pm
