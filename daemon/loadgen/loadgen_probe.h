#pragma once
// VisibilityProbe: pm-loadgen's --visibility-probes N, freshness as a user sees it: the time from
// a line being written into the daemon's socket to its row being visible to another PostgreSQL
// session.
//
// Contract:
// - connect() opens the poller's PostgreSQL session (before the caller starts its clock: the
//   set-up, seconds under a sanitizer, is not part of a run's --duration). start() then runs two
//   threads. The sender: one more pipelined connection to the daemon (a
//   ProducerConnection, so reconnects and busy replies are handled as for the load), sending
//   `rate` probe trades per second, paced, from EventSource::probes(condition_id); it stamps each
//   probe's first write (steady clock). The poller: its own PostgreSQL connection, looping
//   `SELECT trade_id FROM polymarket_trades WHERE condition_id = $1 AND trade_id >= $2 ORDER BY
//   trade_id` (a range scan of the primary key; $2 = the lowest probe not yet seen, so a probe
//   committed out of order by another writer lane is not skipped), with `poll_pause` between two
//   polls, while a probe handed to the sender is not seen yet (idle otherwise, so that the
//   measurement loads PostgreSQL only while there is something to see). The pause grows with the
//   wait: `poll_fraction` of how long the oldest unseen probe has waited since its first write
//   (0 before), never less than `poll_pause` (next_poll_pause). A probe's visible time is the
//   start of the first poll that returned it.
// - Visible latency = visible time - first write, clamped at 0; also reported from the probe's
//   due time (its place in the sender's schedule: a sender that woke late, starved of CPU, or
//   waited for its window counts; the pacer's grain, up to a millisecond, does too). Its precision
//   is one poll period
//   (poll_period_ms in the report: the mean time between the starts of two consecutive polls),
//   and at any moment at most poll_pause or poll_fraction of the latency being measured,
//   whichever is larger, plus one round trip. So a wait of 100 ms costs ~100 polls, not ~250, and
//   the poller's own load on the machine (its backend and its thread, ~9 % of two cores at a
//   fixed 0.2 ms under a load that keeps probes waiting) stays small beside what it measures.
// - finish() (or the deadline given to start()) ends the sending; finish() waits for the
//   sender to have every probe acked (or give up), then for the poller to have seen every acked
//   probe or `timeout` to pass, and reports. Refused probes are not waited for; acked probes not
//   seen in time are `missing`.
// - The probes go to the table the daemon writes; nothing else reads or deletes them.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "daemon/loadgen/loadgen_connection.h"
#include "daemon/loadgen/loadgen_histogram.h"
#include "daemon/loadgen/loadgen_source.h"

namespace pm::loadgen {

struct ProbeConfig {
  std::string socket_path;
  std::string database_url;
  std::string condition_id;                        // e.g. "pm-visibility-probe-<nonce>"
  double rate = 10;                                // probes per second (> 0)
  std::chrono::microseconds poll_pause{200};       // between two polls, at least
  double poll_fraction = 0.03;                     // of the oldest unseen probe's wait (0: fixed pause)
  std::chrono::milliseconds give_up_after{30000};  // the sender's, as for the load's connections
  std::chrono::milliseconds timeout{60000};        // after the sending ended, to see every acked probe
};

struct ProbeReport {
  std::string condition_id;
  double rate = 0;
  std::uint64_t sent = 0, acked = 0, rejected = 0, seen = 0, missing = 0;
  LatencyHistogram::Snapshot visible;  // first write to visible, acked probes seen
  LatencyHistogram::Snapshot visible_from_due;  // due time to visible, the same probes
  LatencyHistogram::Snapshot ack;      // the probes' own ack latency
  std::uint64_t polls = 0;
  double poll_period_ms = 0;           // mean time between the starts of two consecutive polls
  double poll_fraction = 0;            // the config's
  double poll_round_trip_ms = 0;       // mean duration of one poll
};

// The pause before the next poll: `fraction` of how long the oldest unseen probe has waited so
// far, at least `floor`.
inline std::chrono::nanoseconds next_poll_pause(std::chrono::nanoseconds waited, std::chrono::microseconds floor,
                                                double fraction) {
  const auto relative = std::chrono::nanoseconds(std::llround(static_cast<double>(waited.count()) * fraction));
  return std::max<std::chrono::nanoseconds>(floor, relative);
}

// A fresh probe condition_id: "pm-visibility-probe-" and a nonce (pid and wall-clock time).
std::string new_probe_condition();

class VisibilityProbe {
 public:
  explicit VisibilityProbe(ProbeConfig config);
  ~VisibilityProbe();  // stops and joins whatever still runs
  // Connects the poller to PostgreSQL; throws on failure.
  void connect();
  // Starts both threads (after connect()).
  void start(std::optional<std::chrono::steady_clock::time_point> deadline);
  // Ends the sending (if the deadline did not), waits as the contract says and reports; rethrows
  // the poller's database error, if any.
  ProbeReport finish();

 private:
  void send_loop();
  void poll_loop();
  void poll_once();               // one query; throws on a database error
  std::uint64_t low_watermark();  // the lowest probe neither seen nor refused
  std::chrono::nanoseconds pause_while_waiting();  // next_poll_pause for the oldest unseen probe
  bool all_acked_seen();
  ProbeReport report() const;

  struct Db;  // the poller's connection (loadgen_probe.cpp)

  ProbeConfig config_;
  std::unique_ptr<EventSource> source_;
  LoadStats stats_;
  std::unique_ptr<ProducerConnection> connection_;
  std::unique_ptr<Db> db_;
  mutable std::mutex sent_mu_;            // guards sent_ns_, due_ns_: the client's I/O thread writes, the poller reads
  std::vector<std::int64_t> sent_ns_;     // by probe index: its first write (steady_ns), 0 before
  std::vector<std::int64_t> due_ns_;      // by probe index: its due time (steady_ns), set with sent_ns_
  std::vector<std::int64_t> visible_ns_;  // by probe index; the poller's until it is joined
  std::uint64_t low_ = 0;
  std::uint64_t polls_ = 0;
  std::int64_t poll_busy_ns_ = 0;
  std::int64_t prev_poll_ns_ = 0;  // start of the last poll, 0 after an idle turn
  std::int64_t poll_gaps_ns_ = 0;  // sum of the times between the starts of two consecutive polls
  std::uint64_t poll_gaps_ = 0;
  std::atomic<bool> sending_done_{false};
  std::atomic<bool> stop_polling_{false};
  std::atomic<std::int64_t> sending_done_ns_{0};
  std::thread sender_, poller_;
};

}  // namespace pm::loadgen
