#include "ingest/writer/writer_metrics.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "ingest/events/event_codec.h"
#include "ingest/log/wal_reader.h"
#include "repos/host_lookup.h"
#include "repos/util/clock.h"
#include "repos/util/thread_name.h"

namespace pm {

WriterMetrics::WriterMetrics(IngestMetrics& metrics, wal::WriteAheadLog& log, EventQueue& queue)
    : metrics_(metrics),
      phase_begin_(metrics.batch_phase_seconds("begin")),
      phase_trades_(metrics.batch_phase_seconds("trades")),
      phase_durable_(metrics.batch_phase_seconds("durable")),
      phase_turn_(metrics.batch_phase_seconds("turn")),
      phase_finish_(metrics.batch_phase_seconds("finish")),
      phase_commit_(metrics.batch_phase_seconds("commit")),
      log_(log),
      queue_(queue) {
  for (const PgErrorKind kind : kPgErrorKinds) metrics.database_errors(to_string(kind));  // each series from 0
}

WriterMetrics::~WriterMetrics() { stop(); }

void WriterMetrics::start() {
  {
    std::lock_guard lock(mu_);
    stopping_ = false;
  }
  if (!sampler_.joinable()) sampler_ = std::thread([this] { run_sampler(); });
}

void WriterMetrics::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (sampler_.joinable()) sampler_.join();
}

void WriterMetrics::batch_committed(std::span<const QueuedEvent> events, const BatchCounts& c, double seconds,
                                    const BatchPhases& phases, std::chrono::system_clock::time_point committed_at) {
  const double committed_ms = std::chrono::duration<double, std::milli>(committed_at.time_since_epoch()).count();
  observe_since_arrival(metrics_.event_visible_seconds, events, committed_ms);
  observe_since_arrival(metrics_.event_waiting_seconds, events, committed_ms - seconds * 1000.0);
  metrics_.batch_events.Observe(static_cast<double>(events.size()));
  metrics_.batch_commit_seconds.Observe(seconds);
  phase_begin_.Observe(phases.begin);
  phase_trades_.Observe(phases.trades);
  phase_durable_.Observe(phases.durable);
  phase_turn_.Observe(phases.turn);
  phase_finish_.Observe(phases.finish);
  phase_commit_.Observe(phases.commit);
  metrics_.rows_written("polymarket_trades").Increment(static_cast<double>(c.trades_inserted));
  metrics_.rows_written("polymarket_first_triggers").Increment(static_cast<double>(c.triggers_recorded));
  metrics_.rows_written("trade_watermarks").Increment(static_cast<double>(c.trade_watermarks));
  metrics_.rows_written("trigger_watermarks").Increment(static_cast<double>(c.trigger_watermarks));
  metrics_.rows_written("pm_dead_letters").Increment(static_cast<double>(c.dead_letter_rows));
  metrics_.dedup_trade.Increment(static_cast<double>(c.trades - c.trades_inserted));
  metrics_.dedup_trigger_same_token.Increment(static_cast<double>(c.triggers_same_token));
  metrics_.dedup_trigger_other_token.Increment(static_cast<double>(c.triggers_other_token));
  metrics_.dead_lettered.Increment(static_cast<double>(c.dead_lettered));
  if (c.newest_event_ms > 0) {
    const double newest = static_cast<double>(c.newest_event_ms) / 1000.0;
    // An event time beyond the parser's future limit (a log written before it) never moves the
    // freshness metrics: one outlier would hold them for years.
    const double limit = static_cast<double>(now_epoch_ms() + kMaxFutureMs) / 1000.0;
    const double current = metrics_.newest_applied_event_timestamp_seconds.Value();  // NaN: none yet
    if ((std::isnan(current) || newest > current) && newest <= limit)
      metrics_.newest_applied_event_timestamp_seconds.Set(newest);
  }
  // Last: once a scrape has shown these events as applied, the next one shows their rows,
  // duplicates and dead letters too (tests wait for this count, then read those).
  if (!events.empty()) metrics_.applied_events.Increment(static_cast<double>(count_applied(events.front().lsn - 1, events.back().lsn)));
}

// The events after `from` up to `to` not counted before, and moves the count's mark to `to`.
std::uint64_t WriterMetrics::count_applied(std::uint64_t from, std::uint64_t to) {
  const std::uint64_t fresh = to > counted_to_lsn_ ? to - std::max(from, counted_to_lsn_) : 0;
  counted_to_lsn_ = std::max(counted_to_lsn_, to);
  return fresh;
}

void WriterMetrics::committed_unseen(std::uint64_t from, std::uint64_t to, std::uint64_t dead_lettered) {
  metrics_.rows_written("pm_dead_letters").Increment(static_cast<double>(dead_lettered));
  metrics_.dead_lettered.Increment(static_cast<double>(dead_lettered));
  metrics_.applied_events.Increment(static_cast<double>(count_applied(from, to)));  // last, as above
}

// Each event's time from its arrival to `until_ms` (Unix ms), in one histogram update per batch:
// the events' counts per bucket (event_visible_buckets) and the sum of their times.
void WriterMetrics::observe_since_arrival(prometheus::Histogram& histogram, std::span<const QueuedEvent> events,
                                          double until_ms) {
  const auto& bounds = metrics_.event_visible_buckets;
  std::vector<double> per_bucket(bounds.size() + 1, 0.0);  // the last one is +Inf
  double sum = 0;
  for (const QueuedEvent& q : events) {
    const double seconds = std::max(0.0, (until_ms - static_cast<double>(q.event.received_ms)) / 1000.0);
    sum += seconds;
    per_bucket[static_cast<std::size_t>(std::lower_bound(bounds.begin(), bounds.end(), seconds) - bounds.begin())] += 1;
  }
  histogram.ObserveMultiple(per_bucket, sum);
}

void WriterMetrics::database_up(bool up) { metrics_.database_up.Set(up ? 1 : 0); }

void WriterMetrics::database_error(PgErrorKind kind) { metrics_.database_errors(to_string(kind)).Increment(); }

void WriterMetrics::wal_read_error() { metrics_.wal_read_errors.Increment(); }

void WriterMetrics::replay_done(bool done) { metrics_.replay_done.Set(done ? 1 : 0); }

void WriterMetrics::publish(const wal::Position& applied, std::size_t batches_in_flight) {
  std::lock_guard lock(mu_);
  applied_ = applied;
  in_flight_ = batches_in_flight;
}

void WriterMetrics::run_sampler() {
  name_this_thread("pm-sampler");
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    sample();
    log_.refresh_ceiling();
    lock.lock();
    wake_.wait_for(lock, std::chrono::milliseconds(250), [&] { return stopping_; });
  }
}

void WriterMetrics::sample() {
  wal::Position applied;
  std::size_t in_flight = 0;
  {
    std::lock_guard lock(mu_);
    applied = applied_;
    in_flight = in_flight_;
  }
  const wal::Position durable = log_.durable();
  metrics_.wal_unapplied_events.Set(static_cast<double>(durable.lsn > applied.lsn ? durable.lsn - applied.lsn : 0));
  metrics_.wal_unapplied_bytes.Set(
      static_cast<double>(durable.log_offset > applied.log_offset ? durable.log_offset - applied.log_offset : 0));
  metrics_.queue_events.Set(static_cast<double>(queue_.size()));
  metrics_.writer_batches_in_flight.Set(static_cast<double>(in_flight));
  const wal::WalStats stats = log_.stats();
  metrics_.wal_disk_bytes.Set(static_cast<double>(stats.disk_bytes));
  metrics_.wal_segments.Set(static_cast<double>(stats.segments));
  const double now_s = static_cast<double>(now_epoch_ms()) / 1000.0;
  const double newest = metrics_.newest_applied_event_timestamp_seconds.Value();
  if (!std::isnan(newest)) metrics_.newest_applied_event_age_seconds.Set(now_s - newest);
  sample_lag(applied, durable, now_s);
  if (const std::uint64_t served = stale_answers_served(); served > stale_host_answers_counted_) {
    metrics_.database_stale_host_answers.Increment(static_cast<double>(served - stale_host_answers_counted_));
    stale_host_answers_counted_ = served;
  }
}

void WriterMetrics::sample_lag(const wal::Position& applied, const wal::Position& durable, double now_s) {
  if (durable.lsn <= applied.lsn) {
    unapplied_since_.reset();
    metrics_.lag_oldest_unapplied_seconds.Set(0);
    return;
  }
  // Every event up to durable.lsn is durable now: while the applied position stays below the
  // durable one first seen, the event after it has been durable at least since that sample.
  if (!unapplied_since_ || applied.lsn >= unapplied_since_->durable_lsn) unapplied_since_ = DurableSince{now_s, durable.lsn};
  // The oldest unapplied event is the record right after the applied position; read it once.
  if (lag_at_ != applied.lsn) {
    std::optional<std::int64_t> received_ms;
    try {
      wal::WalReader peek(log_.dir(), log_.log_id(), applied, log_.fs(), wal::WalReader::GroupCheck::MarkersOnly);
      auto record = peek.next(durable);
      if (auto event = record ? decode_event(record->payload) : std::nullopt) received_ms = event->received_ms;
    } catch (const std::exception&) {
      // The writer's own read reports corruption and counts refused reads; the gauge only stays honest.
    }
    if (!received_ms) return lag_unknown(applied, now_s);
    oldest_unapplied_received_ms_ = *received_ms;
    lag_at_ = applied.lsn;
  }
  metrics_.lag_oldest_unapplied_seconds.Set(
      std::max(0.0, now_s - static_cast<double>(oldest_unapplied_received_ms_) / 1000.0));
}

// The event after `applied` could not be read. A segment removed once its events were applied is
// a race, not a lag: the applied position has moved meanwhile, and the next sample reads the event
// after the new one (the gauge is left as it was until then). Otherwise that event has been durable
// at least since unapplied_since_ (the first sample that saw a durable position at or past it),
// and its age is at least the time since: the gauge shows that lower bound, growing, never a value
// from before the failure, nor 0 when the failure begins at a later applied position.
void WriterMetrics::lag_unknown(const wal::Position& applied, double now_s) {
  {
    std::lock_guard lock(mu_);
    if (applied_.lsn != applied.lsn) return;
  }
  metrics_.lag_oldest_unapplied_seconds.Set(now_s - unapplied_since_->since_s);
}

}  // namespace pm
