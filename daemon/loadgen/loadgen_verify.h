#pragma once
// Verification of a pm-loadgen run in PostgreSQL (--verify, --wait-applied).
//
// Contract:
// - What is expected comes from the source's keys and statuses after the run: a trade key
//   (condition_id, trade_id) is "acked" when any line carrying it was acked, "rejected" when every
//   line carrying it was refused, "in doubt" when a line was sent but neither acked nor refused
//   (the run gave up on it); triggers likewise per (condition_id, threshold as REAL).
// - Only rows of the conditions this run used are looked at, so a shared table with other
//   producers' conditions does not produce false "extra" rows.
// - Trades: every acked key must be stored exactly once (missing: 0 rows; duplicated: more than
//   one); a stored key this run did not send, or only sent in lines that were refused, is extra.
//   In-doubt keys may be stored or not.
// - Triggers (G2): every acked (condition_id, threshold) has exactly one row in
//   polymarket_first_triggers, from a token that sent a trigger for it; a pair with more than one
//   row breaks G2; a row for a pair this run never sent (or only sent refused) is extra.
// - verify() re-reads until nothing is missing or `timeout` passes (the writer may still be
//   applying what was acked); extra and duplicated rows fail at once. It never writes.
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "daemon/loadgen/loadgen_source.h"

namespace pm::loadgen {

struct VerifyReport {
  bool ok = false;
  std::size_t trades_acked = 0;       // distinct acked trade keys
  std::size_t trades_in_doubt = 0;
  std::size_t trades_stored = 0;      // rows of this run's conditions
  std::size_t trades_missing = 0;
  std::size_t trades_duplicated = 0;
  std::size_t trades_extra = 0;
  std::size_t trigger_pairs_acked = 0;
  std::size_t trigger_rows = 0;
  std::size_t trigger_pairs_missing = 0;
  std::size_t trigger_g2_violations = 0;
  std::size_t trigger_wrong_token = 0;
  std::size_t trigger_extra = 0;
  double seconds = 0;                 // spent verifying, waits included
  std::vector<std::string> problems;  // one line each, at most `max_listed` per kind
};

VerifyReport verify(const EventSource& source, const std::string& database_url, std::chrono::milliseconds timeout,
                    std::size_t max_listed = 20);

// Waits until PostgreSQL shows as many rows of this run's conditions as there are distinct acked
// trade keys and acked trigger pairs. Cheap first: it polls every `poll` for the trades among
// `hints` (event indexes, e.g. the last acked of each connection) by primary key, so that the
// measurement does not load the server it measures; then it counts all rows once, and if some are
// still missing counts again every max(poll, 100 ms). seen_ns: the steady-clock time at which
// the query that first saw them started (0 on timeout); rows: how many rows that is.
struct AppliedWait {
  std::int64_t seen_ns = 0;
  std::size_t rows = 0;
};
AppliedWait wait_applied(const EventSource& source, const std::vector<std::uint64_t>& hints,
                         const std::string& database_url, std::chrono::milliseconds timeout, std::chrono::milliseconds poll);

}  // namespace pm::loadgen
