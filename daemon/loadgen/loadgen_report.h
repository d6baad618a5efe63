#pragma once
// RunSummary: what pm-loadgen prints at the end of a run, as text or as one JSON object.
//
// Contract: every figure is taken from LoadStats after the connections finished; throughput is
// acked events per second between the first line sent and the last ack read; latencies are in
// milliseconds. The JSON keys are part of the interface (the benchmark and the tests read them):
//   events, written, acked, gave_up, rejected, busy, resent, reconnects, unacked, seconds, throughput_eps,
//   target_rate (0 = unlimited), connections, behind_schedule_max_ms,
//   ack_latency_ms {p50, p90, p99, p999, max, mean, count} (from each line's first write),
//   ack_from_due_ms {the same keys} (from each line's due time: see loadgen_connection.h),
//   errors_by_reason {reason: n},
//   end_to_end {seconds, rows_per_s} (with --wait-applied), verify {...} (with --verify),
//   visible_ms {p50, p90, p99, p999, max, mean, count, probes_per_s, sent, acked, rejected, missing,
//   polls, poll_period_ms, poll_round_trip_ms, probe_ack_p50, probe_ack_p99, condition_id,
//   from_due {p50, p90, p99, p999, max, mean, count}} (with --visibility-probes; count = acked
//   probes seen, the samples of the percentiles; from_due times them from their due time).
#include <map>
#include <optional>
#include <string>

#include "daemon/loadgen/loadgen_connection.h"
#include "daemon/loadgen/loadgen_probe.h"
#include "daemon/loadgen/loadgen_verify.h"

namespace pm::loadgen {

struct RunSummary {
  std::uint64_t events = 0;
  std::uint64_t written = 0, acked = 0, rejected = 0, busy = 0, resent = 0, reconnects = 0, unacked = 0;
  int gave_up = 0;  // connections that gave up (daemon unreachable, or no ack for --give-up-after)
  double seconds = 0;
  double throughput_eps = 0;
  double target_rate = 0;
  int connections = 0;
  double behind_schedule_max_ms = 0;
  LatencyHistogram::Snapshot latency;           // from the first write
  LatencyHistogram::Snapshot latency_from_due;  // from the due time
  std::map<std::string, std::uint64_t> errors_by_reason;
  std::optional<double> end_to_end_seconds;
  std::optional<std::size_t> end_to_end_rows;
  std::optional<VerifyReport> verify;
  std::optional<ProbeReport> visibility;
};

std::string format_text(const RunSummary& s);
std::string format_json(const RunSummary& s);
// The totals a progress line shows, summed over the connections.
struct ProgressCounts {
  std::uint64_t written = 0, acked = 0, rejected = 0, unacked = 0, reconnects = 0;
};

// One progress line: elapsed seconds, totals, the last interval's rate and latency percentiles.
std::string format_progress(double elapsed_s, const ProgressCounts& totals, std::uint64_t interval_acked,
                            double interval_s, const LatencyHistogram::Snapshot& interval);

}  // namespace pm::loadgen
