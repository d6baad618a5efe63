#pragma once
// RetryPacing: how long the writer waits after a failure before its next attempt.
// - While no batch commits, each failure doubles the base of the wait, from `initial` up to `max`
//   (Backoff: a wait is drawn between half its base and the base), so a batch that always fails is
//   retried every max/2 to max, never in a tight loop, whether or not reconnecting works between.
// - committed(): a batch landed; the next failure waits the initial delay again.
// - The failed (re)connects of an outage do not make the waits after it longer: reconnected()
//   puts the delay back to what it was before the first of them. A failure right after PostgreSQL
//   returns waits as long as it would have before the outage, not the outage's grown delay.
// Not thread-safe: the writer thread only.
#include <chrono>
#include <optional>

#include "repos/util/backoff.h"

namespace pm {

class RetryPacing {
 public:
  RetryPacing(std::chrono::milliseconds initial, std::chrono::milliseconds max);

  // The wait after a failure; `connecting`: the (re)connect itself failed (the server unreachable,
  // or not usable yet: a standby, a missing migration).
  std::chrono::milliseconds after_failure(bool connecting);
  // A (re)connect succeeded.
  void reconnected();
  // A batch committed.
  void committed();

 private:
  Backoff backoff_;
  std::optional<Backoff> before_outage_;  // as it was before the outage's first failed connect
};

}  // namespace pm
