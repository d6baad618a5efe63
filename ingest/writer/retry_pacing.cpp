#include "ingest/writer/retry_pacing.h"

#include <utility>

namespace pm {

RetryPacing::RetryPacing(std::chrono::milliseconds initial, std::chrono::milliseconds max)
    : backoff_(initial, max, 2.0) {}

std::chrono::milliseconds RetryPacing::after_failure(bool connecting) {
  if (connecting && !before_outage_) before_outage_ = backoff_;
  return backoff_.next();
}

void RetryPacing::reconnected() {
  if (before_outage_) backoff_ = *std::exchange(before_outage_, std::nullopt);
}

void RetryPacing::committed() {
  backoff_.reset();
  before_outage_.reset();
}

}  // namespace pm
