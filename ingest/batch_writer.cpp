#include "ingest/batch_writer.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "ingest/event_codec.h"
#include "ingest/protocol.h"
#include "repos/backoff.h"
#include "repos/clock.h"
#include "repos/ingest_checkpoint_repository.h"
#include "repos/pg_errors.h"

namespace pm {

namespace {

using Clock = std::chrono::steady_clock;

std::string first_line(const std::string& text) {
  std::string out = text.substr(0, text.find('\n'));
  return out;
}

// The log's state file could not be written before a batch was sent (wal.h raise_ceiling).
class LogStateNotWritten : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The advisory lock class of this instance's batches (WriterLanes): stable across restarts.
std::int32_t lock_class_of(const std::string& instance_id) {
  std::uint32_t h = 2166136261u;  // FNV-1a
  for (const unsigned char c : instance_id) h = (h ^ c) * 16777619u;
  return static_cast<std::int32_t>(h & 0x7fffffff);
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

BatchWriter::BatchWriter(WriterConfig config, Database& db, wal::WriteAheadLog& log, EventQueue& queue,
                         IngestMetrics& metrics, std::shared_ptr<spdlog::logger> logger,
                         std::function<void(const std::string&)> on_fatal)
    : config_(std::move(config)),
      db_(db),
      log_(log),
      queue_(queue),
      metrics_(metrics),
      logger_(std::move(logger)),
      on_fatal_(std::move(on_fatal)),
      applier_(config_.instance_id, wal::log_id_hex(log.log_id()), config_.trade_timestamp_unit),
      retention_(config_.retention, db, log, metrics, logger_) {
  // Segments are removed only once applied, so everything before the oldest one is applied; the
  // log's state file may know a later applied position (the backlog counts from there).
  applied_ = log_.applied_at_open();
  dispatched_ = applied_;
  applied_log_offset_ = applied_.log_offset;
  applied_lsn_ = applied_.lsn;
}

BatchWriter::~BatchWriter() { stop(); }

void BatchWriter::start() {
  replay_target_lsn_ = log_.durable().lsn;
  metrics_.database_up.Set(0);
  metrics_.replay_done.Set(0);
  if (config_.writer_connections > 1)
    lanes_ = std::make_unique<WriterLanes>(db_, applier_, config_.writer_connections, [this] { queue_.wake(); },
                                           lock_class_of(config_.instance_id));
  thread_ = std::thread([this] { run(); });
}

void BatchWriter::stop() {
  stopping_ = true;
  {
    std::lock_guard lock(sleep_mu_);
  }
  sleep_cv_.notify_all();
  queue_.wake();
  if (thread_.joinable()) thread_.join();
}

void BatchWriter::sleep_for(std::chrono::milliseconds d) {
  std::unique_lock lock(sleep_mu_);
  sleep_cv_.wait_for(lock, d, [this] { return stopping_.load(); });
}

void BatchWriter::fatal(const std::string& message) {
  logger_->critical("{}", message);
  stopping_ = true;
  if (on_fatal_) on_fatal_(message);
}

void BatchWriter::run() {
  Backoff backoff(config_.retry_initial_delay, config_.retry_max_delay, 2.0);
  while (!stopping_) {
    // Alive = going round this loop, and no batch in flight for longer than one round would take.
    Clock::time_point beat = Clock::now();
    if (lanes_) beat = std::min(beat, lanes_->oldest_submitted().value_or(beat));
    heartbeat_ = beat.time_since_epoch().count();
    try {
      if (!ready_) {
        if (!load_checkpoint()) return;
        ready_ = true;
        database_up_ = true;
        metrics_.database_up.Set(1);
        backoff.reset();
      }
      std::vector<QueuedEvent> batch = collect();
      if (!batch.empty()) {
        dispatch(std::move(batch));
        backoff.reset();
      } else if (lanes_) {
        settle(lanes_->take_finished(false));  // woken by a lane: record what landed
      }
      look_at_server();
      update_gauges();
    } catch (const wal::WalCorruption& e) {
      finish_in_flight();
      fatal(e.what());
      return;
    } catch (const LogStateNotWritten& e) {
      finish_in_flight();
      logger_->warn("{}; the batch waits, retrying with backoff", e.what());
      ready_ = false;
      pending_.clear();
      pending_head_ = 0;
      reader_.reset();
      sleep_for(backoff.next());
    } catch (const std::exception& e) {
      finish_in_flight();
      const PgErrorKind kind = classify_exception(e);
      metrics_.database_errors(to_string(kind)).Increment();
      if (database_up_.exchange(false) || !ready_) {
        const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e);
        const bool missing_table = sql != nullptr && sql->sqlstate() == "42P01";
        logger_->warn("PostgreSQL operation failed ({}): {}{}; events stay in the log, retrying with backoff",
                      to_string(kind), redact_url(first_line(e.what())),
                      missing_table ? " (has `pm-ingestctl migrate` been run on this database?)" : "");
      }
      metrics_.database_up.Set(0);
      // Whatever happened to the batch (rolled back, or committed with an unknown outcome), the
      // stored checkpoint says where to continue, on whichever server is primary by then.
      ready_ = false;
      retention_.forget();
      pending_.clear();
      pending_head_ = 0;
      reader_.reset();
      update_gauges();
      sleep_for(backoff.next());
    }
  }
  finish_in_flight();
  log_.persist_applied();  // the next start counts its backlog from here
}

void BatchWriter::dispatch(std::vector<QueuedEvent> batch) {
  // No checkpoint may pass the log's ceiling: a log that later ends below it lost applied records.
  if (!log_.raise_ceiling(batch.back().end))
    throw LogStateNotWritten("cannot write the log's state file before sending a batch to PostgreSQL");
  dispatched_ = batch.back().end;
  if (!lanes_) {
    apply(batch);
    return;
  }
  // Look stored trades up first only while duplicates are being seen; otherwise COPY first.
  lanes_->submit(std::move(batch), duplicates_seen_ ? DuplicateProbe::First : DuplicateProbe::OnConflict);
  settle(lanes_->take_finished(false));
}

void BatchWriter::settle(std::vector<FinishedBatch> finished) {
  for (std::size_t i = 0; i < finished.size(); ++i) {
    if (finished[i].counts) {  // committed
      const BatchCounts& c = *finished[i].counts;
      duplicates_seen_ = c.trades_inserted < c.trades;
      committed(finished[i].batch->events, c, finished[i].seconds);
      continue;
    }
    // The first batch that did not commit: the rest of what is in flight rolls back behind it.
    const std::exception_ptr error = finished[i].error;
    std::vector<FinishedBatch> rest = lanes_->take_finished(true);
    lanes_->restart();
    finished.insert(finished.end(), std::make_move_iterator(rest.begin()), std::make_move_iterator(rest.end()));
    if (!error) throw std::logic_error("a batch rolled back behind no failure");  // reloads the checkpoint
    try {
      std::rethrow_exception(error);
    } catch (const pqxx::sql_error& e) {
      if (classify_exception(e) != PgErrorKind::Data) throw;
      // A refused value: apply this batch and the ones behind it one at a time, which isolates
      // the event and dead-letters it. (A data error in a later batch behind another kind of
      // failure is met again after the checkpoint is reloaded.)
    }
    for (std::size_t j = i; j < finished.size(); ++j) apply(finished[j].batch->events);
    return;
  }
}

void BatchWriter::finish_in_flight() noexcept {
  if (!lanes_ || lanes_->in_flight() == 0) return;
  // Whatever committed is recorded; what did not stays in the log for the next attempt.
  try {
    for (FinishedBatch& f : lanes_->take_finished(true)) {
      if (!f.counts) break;
      committed(f.batch->events, *f.counts, f.seconds);
    }
  } catch (const std::exception& e) {
    logger_->warn("recording the batches that committed failed: {}; the checkpoint in PostgreSQL stays right", e.what());
  }
  lanes_->restart();
}

void BatchWriter::look_at_server() {
  // Idle: nothing else would notice a primary that is gone or has become a standby.
  const bool idle = Clock::now() - last_contact_ >= config_.idle_check_interval;
  retention_.check(idle);
  if (idle) last_contact_ = Clock::now();
}

bool BatchWriter::load_checkpoint() {
  retention_.forget();
  retention_.check(true);  // throws NotAPrimary on a standby: nothing is read or written there
  last_contact_ = Clock::now();
  const auto checkpoint = IngestCheckpointRepository(db_).get(config_.instance_id);
  const wal::Position durable = log_.durable();
  const wal::Position oldest = log_.oldest();
  const std::string log_id = wal::log_id_hex(log_.log_id());
  wal::Position start = oldest;
  if (!checkpoint) {
    if (oldest.lsn > 0)
      logger_->warn("no checkpoint for instance '{}': applying the log from its oldest record (lsn {})",
                    config_.instance_id, oldest.lsn + 1);
  } else if (checkpoint->log_id != log_id) {
    fatal("the checkpoint of instance '" + config_.instance_id + "' belongs to log " + checkpoint->log_id +
          " but " + log_.dir() + " holds log " + log_id +
          "; start with the log directory that instance used, or, if that log was fully applied and is gone, "
          "clear the checkpoint with `pm-ingestctl checkpoint-reset --instance-id " + config_.instance_id + "`");
    return false;
  } else if (static_cast<std::uint64_t>(checkpoint->lsn) > durable.lsn) {
    fatal("the checkpoint of instance '" + config_.instance_id + "' is at lsn " + std::to_string(checkpoint->lsn) +
          " but the log in " + log_.dir() + " ends at lsn " + std::to_string(durable.lsn) + "; the log lost records");
    return false;
  } else if (static_cast<std::uint64_t>(checkpoint->segment) < oldest.segment) {
    fatal("the checkpoint of instance '" + config_.instance_id + "' points into segment " +
          std::to_string(checkpoint->segment) + " but the oldest segment in " + log_.dir() + " is " +
          std::to_string(oldest.segment) + "; unapplied segments were removed");
    return false;
  } else {
    start = wal::Position{static_cast<std::uint64_t>(checkpoint->segment),
                          static_cast<std::uint64_t>(checkpoint->segment_offset),
                          static_cast<std::uint64_t>(checkpoint->log_offset),
                          static_cast<std::uint64_t>(checkpoint->lsn)};
  }
  applied_ = start;
  dispatched_ = start;
  applied_log_offset_ = start.log_offset;
  applied_lsn_ = start.lsn;
  // Segments wholly below the checkpoint are applied: nothing will read them again once the
  // standbys have them. The state file forgets a later applied position at once: a failover may
  // have taken the checkpoint back, and recovery deletes below what the state file records.
  retention_.applied(start);
  log_.note_applied(start);
  log_.persist_applied();
  pending_.clear();
  pending_head_ = 0;
  reader_.reset();
  logger_->info("writer connected; instance '{}' resumes after lsn {} ({} events to replay)", config_.instance_id,
                start.lsn, durable.lsn - std::min(durable.lsn, start.lsn));
  if (!replay_done_ && applied_.lsn >= replay_target_lsn_) {
    replay_done_ = true;
    metrics_.replay_done.Set(1);
  }
  return true;
}

std::vector<QueuedEvent> BatchWriter::collect() {
  const std::size_t max = config_.batch_max_events;
  std::vector<QueuedEvent> batch;
  batch.reserve(std::min(max, std::max<std::size_t>(pending_.size() - pending_head_, 1024)));
  std::uint64_t next = dispatched_.lsn + 1;
  // Takes queued events while they continue the log without a gap; false at a gap.
  auto take_consecutive = [&] {
    while (pending_head_ < pending_.size() && batch.size() < max) {
      QueuedEvent& q = pending_[pending_head_];
      if (q.lsn < next) {  // applied already, or a wake-up sentinel
        ++pending_head_;
        continue;
      }
      if (q.lsn > next) return false;
      batch.push_back(std::move(q));
      ++pending_head_;
      ++next;
    }
    return true;
  };
  auto refill = [&](std::chrono::microseconds timeout) {
    if (pending_head_ < pending_.size()) return;
    pending_.clear();
    pending_head_ = 0;
    queue_.pop(pending_, max, timeout);
  };

  refill(std::chrono::microseconds(0));
  const bool contiguous = take_consecutive();
  if (batch.empty()) {
    if (log_.durable().lsn >= next && (!contiguous || pending_head_ >= pending_.size())) {
      // The next event is durable but not in hand (replay, queue overflow, or a retry).
      read_from_log(batch);
      return batch;
    }
    refill(std::chrono::milliseconds(100));
    take_consecutive();
    if (batch.empty()) return batch;
  }
  const auto deadline = Clock::now() + config_.batch_max_delay;
  while (batch.size() < max && !stopping_) {
    const auto now = Clock::now();
    if (now >= deadline) break;
    refill(std::chrono::duration_cast<std::chrono::microseconds>(deadline - now));
    if (pending_head_ >= pending_.size()) break;
    if (!take_consecutive()) break;
  }
  return batch;
}

bool BatchWriter::read_from_log(std::vector<QueuedEvent>& batch) {
  if (!reader_ || reader_->position().lsn != dispatched_.lsn)
    reader_ = std::make_unique<wal::WalReader>(log_.dir(), log_.log_id(), dispatched_, log_.fs());
  const wal::Position limit = log_.durable();
  while (batch.size() < config_.batch_max_events) {
    auto record = reader_->next(limit);
    if (!record) break;
    std::string error;
    auto event = decode_event(record->payload, &error);
    if (!event)
      throw wal::WalCorruption(log_.dir() + "/" + wal::segment_file_name(record->start.segment), record->start.offset,
                               "record " + std::to_string(record->lsn) + " does not decode: " + error);
    batch.push_back(QueuedEvent{record->lsn, record->end, std::move(*event)});
  }
  metrics_.log_catchup_events.Increment(static_cast<double>(batch.size()));
  return !batch.empty();
}

void BatchWriter::apply(std::span<const QueuedEvent> events) {
  const auto t0 = Clock::now();
  try {
    // Look stored trades up first only while duplicates are being seen; otherwise COPY first.
    const DuplicateProbe probe = duplicates_seen_ ? DuplicateProbe::First : DuplicateProbe::OnConflict;
    const BatchCounts counts = db_.transaction([&](pqxx::work& tx) { return applier_.apply(tx, events, probe); });
    duplicates_seen_ = counts.trades_inserted < counts.trades;
    committed(events, counts, seconds_since(t0));
  } catch (const pqxx::sql_error& e) {
    if (classify_exception(e) != PgErrorKind::Data) throw;
    metrics_.database_errors("data").Increment();
    if (events.size() > 1) {
      // One event is refused; find it by halving, so its batch-mates still land.
      const std::size_t half = events.size() / 2;
      apply(events.first(half));
      apply(events.subspan(half));
      return;
    }
    const std::string error = first_line(e.what());
    logger_->error("event lsn {} ({}) refused by PostgreSQL [{}]: {}; stored in pm_dead_letters", events[0].lsn,
                   to_string(events[0].event.type()), e.sqlstate(), error);
    const BatchCounts counts = db_.transaction(
        [&](pqxx::work& tx) { return applier_.dead_letter(tx, events[0], error, e.sqlstate()); });
    committed(events, counts, seconds_since(t0));
  }
}

void BatchWriter::committed(std::span<const QueuedEvent> events, const BatchCounts& c, double seconds) {
  applied_ = events.back().end;
  applied_log_offset_ = applied_.log_offset;  // the backlog budget frees these bytes at once
  applied_lsn_ = applied_.lsn;
  retention_.applied(applied_);  // before the log notes it: it may hold what the state file records
  log_.note_applied(applied_);
  database_up_ = true;
  metrics_.database_up.Set(1);
  metrics_.batch_events.Observe(static_cast<double>(events.size()));
  metrics_.batch_commit_seconds.Observe(seconds);
  metrics_.applied_events.Increment(static_cast<double>(events.size()));
  metrics_.rows_written("polymarket_trades").Increment(static_cast<double>(c.trades_inserted));
  metrics_.rows_written("polymarket_first_triggers").Increment(static_cast<double>(c.triggers_recorded));
  metrics_.rows_written("trade_watermarks").Increment(static_cast<double>(c.trade_watermarks));
  metrics_.rows_written("trigger_watermarks").Increment(static_cast<double>(c.trigger_watermarks));
  metrics_.rows_written("pm_dead_letters").Increment(static_cast<double>(c.dead_lettered));
  metrics_.dedup_trade.Increment(static_cast<double>(c.trades - c.trades_inserted));
  metrics_.dedup_trigger_same_token.Increment(static_cast<double>(c.triggers_same_token));
  metrics_.dedup_trigger_other_token.Increment(static_cast<double>(c.triggers_other_token));
  metrics_.dead_lettered.Increment(static_cast<double>(c.dead_lettered));
  if (c.newest_event_ms > 0) {
    const double newest = static_cast<double>(c.newest_event_ms) / 1000.0;
    // An event time beyond the parser's future limit (a log written before it) never moves the
    // freshness metrics: one outlier would hold them for years.
    const double limit = static_cast<double>(now_epoch_ms() + kMaxFutureMs) / 1000.0;
    if (newest > metrics_.newest_applied_event_timestamp_seconds.Value() && newest <= limit)
      metrics_.newest_applied_event_timestamp_seconds.Set(newest);
  }
  last_contact_ = Clock::now();
  if (!replay_done_ && applied_.lsn >= replay_target_lsn_) {
    replay_done_ = true;
    metrics_.replay_done.Set(1);
    logger_->info("replay done: the log is applied up to lsn {}", applied_.lsn);
  }
}

void BatchWriter::update_gauges() {
  // At most a few times a second: the lag gauge reads a record from the log.
  const auto now = Clock::now();
  if (now - last_gauges_ < std::chrono::milliseconds(250)) return;
  last_gauges_ = now;
  const wal::Position durable = log_.durable();
  const std::uint64_t unapplied_events = durable.lsn > applied_.lsn ? durable.lsn - applied_.lsn : 0;
  metrics_.wal_unapplied_events.Set(static_cast<double>(unapplied_events));
  metrics_.wal_unapplied_bytes.Set(
      static_cast<double>(durable.log_offset > applied_.log_offset ? durable.log_offset - applied_.log_offset : 0));
  metrics_.queue_events.Set(static_cast<double>(queue_.size()));
  metrics_.writer_batches_in_flight.Set(lanes_ ? static_cast<double>(lanes_->in_flight()) : 0.0);
  const wal::WalStats stats = log_.stats();
  metrics_.wal_disk_bytes.Set(static_cast<double>(stats.disk_bytes));
  metrics_.wal_segments.Set(static_cast<double>(stats.segments));
  const double now_s = static_cast<double>(now_epoch_ms()) / 1000.0;
  const double newest = metrics_.newest_applied_event_timestamp_seconds.Value();
  if (newest > 0) metrics_.newest_applied_event_age_seconds.Set(now_s - newest);
  if (unapplied_events == 0) {
    metrics_.lag_oldest_unapplied_seconds.Set(0);
    return;
  }
  // The oldest unapplied event is the record right after the applied position.
  try {
    wal::WalReader peek(log_.dir(), log_.log_id(), applied_, log_.fs());
    if (auto record = peek.next(durable)) {
      if (auto event = decode_event(record->payload))
        metrics_.lag_oldest_unapplied_seconds.Set(std::max(0.0, now_s - static_cast<double>(event->received_ms) / 1000.0));
    }
  } catch (const std::exception&) {
    // The writer's own read reports corruption; a gauge does not.
  }
}

}  // namespace pm
