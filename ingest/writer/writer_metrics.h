#pragma once
// WriterMetrics: everything the writer reports to Prometheus, apart from the writer itself.
//
// Contract:
// - batch_committed(), committed_unseen(), database_up(), database_error() and replay_done() record
//   what the writer thread just did (batch_committed observes each event's freshness: arrival to
//   commit, and the part of it before its batch's transaction began); publish() tells the sampler
//   where the writer is. Writer thread only. pm_ingest_applied_events_total counts each LSN
//   once: events applied again after PostgreSQL lost their commits (a crash with async commits)
//   are not counted twice (their rows, dedup hits and freshness are: that work was done again).
// - A sampler thread of its own (start()/stop()) refreshes the gauges every 250 ms: unapplied
//   events and bytes, queue depth, batches in flight, log disk use, the age of the newest applied
//   event, and the lag of the oldest unapplied event, which it reads from the log (once per applied
//   position, not per sample). So the writer thread never reads the log for a gauge. When that read
//   fails while the applied position stays put (a segment the system refuses to open), the lag is
//   at least the time since the first sample that saw that event durable: the gauge shows that
//   lower bound, growing, never a value from before (0 when it was caught up). A read that fails because
//   the applied position moved meanwhile (its segment removed) leaves the gauge for the next sample.
// - wal_read_error(): the writer failed to read events back from its log (it retries); counted in
//   pm_ingest_wal_read_errors_total. Writer thread only.
// - The sampler also raises the log's state ceiling (WriteAheadLog::refresh_ceiling, at most one
//   small state-file write a second): it is the one writer-side thread that runs whatever the writer
//   does (idle, PostgreSQL down, a batch failing), and `pm-ingestctl replay` beside the daemon
//   reads the log up to that ceiling. Not the main thread: that one feeds the systemd watchdog.
// - stop() (also the destructor) joins the sampler; call it before the log or queue go away.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <thread>

#include "ingest/writer/batch_applier.h"
#include "ingest/writer/batch_phases.h"
#include "ingest/events/event_queue.h"
#include "ingest/log/wal.h"
#include "metrics/ingest_metrics.h"
#include "repos/pg_errors.h"

namespace pm {

class WriterMetrics {
 public:
  WriterMetrics(IngestMetrics& metrics, wal::WriteAheadLog& log, EventQueue& queue);
  ~WriterMetrics();
  WriterMetrics(const WriterMetrics&) = delete;
  WriterMetrics& operator=(const WriterMetrics&) = delete;

  void start();
  void stop();  // idempotent

  // `committed_at`: when the commit returned; each event's freshness is measured up to it.
  void batch_committed(std::span<const QueuedEvent> events, const BatchCounts& counts, double seconds,
                       const BatchPhases& phases, std::chrono::system_clock::time_point committed_at);
  // Events of batches whose COMMIT outcome was lost and that the checkpoint showed committed: counted
  // as applied, and `dead_lettered` of them as dead-lettered; each of those counts as a row written
  // to pm_dead_letters too (whether a letter of its key was there before is not known here). Their other rows,
  // duplicates and freshness are unknown and not counted.
  // The events are those after lsn `from` up to `to`.
  void committed_unseen(std::uint64_t from, std::uint64_t to, std::uint64_t dead_lettered);
  void database_up(bool up);
  void database_error(PgErrorKind kind);
  void wal_read_error();
  void replay_done(bool done);
  void publish(const wal::Position& applied, std::size_t batches_in_flight);

 private:
  void observe_since_arrival(prometheus::Histogram& histogram, std::span<const QueuedEvent> events, double until_ms);
  void run_sampler();
  void sample();
  void sample_lag(const wal::Position& applied, const wal::Position& durable, double now_s);
  void lag_unknown(const wal::Position& applied, double now_s);  // REQUIRES: unapplied_since_ set

  IngestMetrics& metrics_;
  prometheus::Histogram &phase_begin_, &phase_trades_, &phase_durable_, &phase_turn_, &phase_finish_, &phase_commit_;
  wal::WriteAheadLog& log_;
  EventQueue& queue_;
  std::uint64_t counted_to_lsn_ = 0;  // applied_events counts events after this LSN only (writer thread)
  std::uint64_t count_applied(std::uint64_t from, std::uint64_t to);

  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;         // guarded by mu_
  wal::Position applied_;         // guarded by mu_
  std::size_t in_flight_ = 0;     // guarded by mu_
  std::uint64_t stale_host_answers_counted_ = 0;  // the sampler thread's
  std::thread sampler_;

  // Sampler thread only: the received time of the record after `lag_at_`, once read.
  std::optional<std::uint64_t> lag_at_;
  std::int64_t oldest_unapplied_received_ms_ = 0;
  // Sampler thread only: since when (Unix s) the event after the applied position could not be read,
  // and the durable LSN then (the events up to it were durable at that time).
  // Sampler thread only: the first sample (its time, its durable LSN) since which the applied
  // position has stayed below that durable LSN; reset when caught up.
  struct DurableSince {
    double since_s = 0;
    std::uint64_t durable_lsn = 0;
  };
  std::optional<DurableSince> unapplied_since_;
};

}  // namespace pm
