#include "ingest/writer/batch_writer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <string>
#include <utility>

#include "ingest/log/wal_corruption.h"
#include "ingest/log/wal_newer_format.h"
#include "ingest/log/wal_reader.h"
#include "ingest/writer/apply_refusal.h"
#include "ingest/writer/ingest_checkpoint_repository.h"
#include "repos/database_config.h"
#include "repos/migrator.h"
#include "repos/util/thread_name.h"

namespace pm {

namespace {

using Clock = std::chrono::steady_clock;

// The retention settings, told how the lanes commit and whose checkpoint they advance (one setting
// each, not two that could disagree).
RetentionConfig retention_for(const WriterConfig& config) {
  RetentionConfig retention = config.retention;
  retention.batch_commits = config.synchronous_commit;
  retention.instance_id = config.instance_id;
  return retention;
}

}  // namespace

BatchWriter::BatchWriter(WriterConfig config, Database& db, wal::WriteAheadLog& log, EventQueue& queue,
                         IngestMetrics& metrics, std::shared_ptr<spdlog::logger> logger,
                         std::function<void(const std::string&)> on_fatal)
    : config_(std::move(config)),
      db_(db),
      log_(log),
      queue_(queue),
      logger_(std::move(logger)),
      on_fatal_(std::move(on_fatal)),
      applier_(config_.instance_id, wal::log_id_hex(log.log_id()), config_.trade_timestamp_unit),
      retention_(retention_for(config_), db, log, metrics, logger_),
      metrics_(metrics, log, queue),
      collector_(queue, log, metrics, config_.batch_max_events, config_.batch_max_bytes, config_.batch_max_delay, stopping_),
      pacing_(config_.retry_initial_delay, config_.retry_max_delay) {
  // Segments are removed only once applied, so everything before the oldest one is applied; the
  // log's state file may know a later applied position (the backlog counts from there).
  applied_ = log_.applied_at_open();
  dispatched_ = applied_;
  applied_log_offset_ = applied_.log_offset;
  applied_lsn_ = applied_.lsn;
  metrics_.publish(applied_, 0);
}

BatchWriter::~BatchWriter() { stop(); }

void BatchWriter::start() {
  replay_target_lsn_ = log_.durable().lsn;
  metrics_.database_up(false);
  metrics_.replay_done(false);
  lanes_ = std::make_unique<WriterLanes>(db_, applier_, std::max<std::size_t>(1, config_.writer_connections),
                                         [this] { queue_.wake_consumer(); }, lane_lock_class(config_.instance_id),
                                         config_.synchronous_commit,
                                         [this](std::uint64_t lsn) { return log_.wait_durable(lsn); });
  metrics_.start();
  thread_ = std::thread([this] { run(); });
}

void BatchWriter::stop() {
  stopping_ = true;
  {
    std::lock_guard lock(sleep_mu_);
  }
  sleep_cv_.notify_all();
  queue_.wake_consumer();
  if (thread_.joinable()) thread_.join();
  metrics_.stop();
}

void BatchWriter::sleep_for(std::chrono::milliseconds d) {
  std::unique_lock lock(sleep_mu_);
  sleep_cv_.wait_for(lock, d, [this] { return stopping_.load(); });
}

void BatchWriter::fatal(const std::string& message) {
  logger_->critical("{}", message);
  fatal_ = true;
  stopping_ = true;
  if (on_fatal_) on_fatal_(message);
}

// What the log cannot give (damage, or a halted log) ends the writer: what is in flight lands or
// rolls back first.
void BatchWriter::stop_fatally(const std::exception& e) {
  finish_in_flight();
  fatal(e.what());
}

void BatchWriter::run() {
  name_this_thread("pm-writer");
  while (!stopping_) {
    beat();
    std::optional<TxFailure> failure;
    try {
      failure = step();
    } catch (const wal::WalCorruption& e) {
      if (!e.unreadable()) return stop_fatally(e);
      failure = failure_of(e);  // a segment the system refused (no descriptor left, a permission): retried
    } catch (const LogHalted& e) {  // only an embedder sees this: the daemon exits when its log halts
      return stop_fatally(e);
    } catch (const wal::WalNewerFormat& e) {  // a segment this build cannot read: never PostgreSQL's failure to retry
      return stop_fatally(e);
    } catch (const std::exception& e) {  // the checkpoint read or a retention query, not a batch
      failure = failure_of(e);
    }
    if (failure) back_off(*failure);
  }
  finish_in_flight();
  if (fatal_) return;
  confirm_before_exit();
  log_.persist_applied();  // the next start counts its backlog from here
}

// Segments applied by commits PostgreSQL has not flushed yet (or standbys not confirmed) stay held
// across the restart, their bytes counted as unapplied; one flush now releases the first kind.
void BatchWriter::confirm_before_exit() noexcept {
  if (!ready_ || retention_.awaiting() == 0) return;
  try {
    retention_.flush_and_check();
  } catch (const std::exception& e) {
    logger_->warn("could not confirm the last applied segments before exit ({}); they stay in the log", redact_url(e.what()));
  }
}

// Alive = going round the loop, and no batch in flight for longer than one round would take.
void BatchWriter::beat() {
  Clock::time_point beat = Clock::now();
  beat = std::min(beat, lanes_->oldest_submitted().value_or(beat));
  heartbeat_ = beat.time_since_epoch().count();
}

// One round: (re)connect if needed, then send the next batch or record what the lanes finished.
// The retry pacing hears of each reconnect here, and of each commit in committed() (retry_pacing.h).
std::optional<TxFailure> BatchWriter::step() {
  if (!ready_) {
    if (!load_checkpoint()) return std::nullopt;  // fatal: stopping
    ready_ = true;
    // Connected is not up while what failed after the last connect (a batch the server keeps
    // refusing: a revoked permission) has not succeeded since: the gauge would flap at every
    // retry, and an alert on it held for a minute would never fire.
    if (!failed_since_connect_) mark_database_up();
    pacing_.reconnected();
  }
  std::vector<QueuedEvent> batch = collector_.next(dispatched_, [this] { return lanes_->next_lane_free(); });
  std::optional<TxFailure> failure;
  if (batch.empty()) {
    failure = settle(lanes_->take_finished(false));  // woken by a lane: record what landed
  } else {
    failure = dispatch(std::move(batch));
  }
  metrics_.publish(applied_, lanes_->in_flight());
  if (!failure) look_at_server();
  return failure;
}

DuplicateProbe BatchWriter::probe() const {
  // Look stored trades up first only while duplicates are being seen; otherwise COPY first.
  return duplicates_seen_ ? DuplicateProbe::First : DuplicateProbe::OnConflict;
}

// Where the stored checkpoint must be when `events` advance it (IngestCheckpoint::follows): the
// writer's batches continue the log from the checkpoint it loaded, each where the one before ended,
// so it is the lsn before their first event; 0 (no row) for the first events read when there was
// no checkpoint. Found elsewhere, the batch fails and the checkpoint is read again: a PostgreSQL
// restart that hid from the sessions took back batches that had committed (LogRetention's guard
// alone came too late: the next batch advanced the checkpoint over the lost ones).
std::int64_t BatchWriter::checkpoint_before(std::span<const QueuedEvent> events) const {
  const std::uint64_t before = events.front().lsn - 1;
  return resumed_without_row_ == before ? 0 : static_cast<std::int64_t>(before);
}

std::optional<TxFailure> BatchWriter::dispatch(std::vector<QueuedEvent> batch) {
  dispatched_ = batch.back().end;
  const std::int64_t follows = checkpoint_before(batch);
  lanes_->submit(std::move(batch), probe(), follows);
  return settle(lanes_->take_finished(false));
}

// Records finished batches in order. At the first that did not commit, everything still in flight
// rolls back behind it; a refused value is then isolated, any other failure is returned.
std::optional<TxFailure> BatchWriter::settle(std::vector<FinishedBatch> finished) {
  std::size_t i = 0;
  try {
    i = record_landed(finished);
  } catch (...) {
    // Recording the committed ones failed (the retention's query, say). A batch among these that
    // did not commit broke the lanes' sequence: with nothing else in flight finish_in_flight()
    // does not restart them, and the next batch would roll back behind that old failure.
    const bool all_applied = std::all_of(finished.begin(), finished.end(), [](const FinishedBatch& f) { return f.result.applied(); });
    if (!all_applied && lanes_->in_flight() == 0) lanes_->restart();
    throw;
  }
  if (i == finished.size()) return std::nullopt;
  std::vector<FinishedBatch> rest = lanes_->take_finished(true);
  lanes_->restart();
  finished.insert(finished.end(), std::make_move_iterator(rest.begin()), std::make_move_iterator(rest.end()));
  const TxResult<BatchCounts>& first = finished[i].result;
  if (first.status == TxStatus::RolledBack)  // cannot happen: a rollback follows a failure
    return TxFailure{PgErrorKind::Other, "", "a batch rolled back behind no failure", nullptr};
  if (first.status != TxStatus::DataError) return first.failure;
  // A refused value: apply this batch and the ones behind it one at a time, which isolates the
  // event and dead-letters it. (A data error in a later batch behind another kind of failure is
  // met again after the checkpoint is reloaded.)
  for (std::size_t j = i; j < finished.size(); ++j)
    if (auto failure = isolate(finished[j].batch->events, j == i ? &first.failure : nullptr)) return failure;
  return std::nullopt;
}

std::size_t BatchWriter::record_landed(std::span<const FinishedBatch> finished) {
  std::size_t landed = 0;
  while (landed < finished.size() && finished[landed].result.applied()) ++landed;
  committed(finished.first(landed));
  return landed;
}

// Applies `events` alone; on a refused value, halves it until the one event is found, so its
// batch-mates still land, and stores that event in pm_dead_letters. `refused`: the server already
// refused these events as one batch (with this error), so they are split at once. Nothing else is
// in flight.
std::optional<TxFailure> BatchWriter::isolate(std::span<const QueuedEvent> events, const TxFailure* refused) {
  beat();  // a long isolation is progress too: the writer is alive
  std::optional<FinishedBatch> done;
  if (refused == nullptr) {
    done = run_alone(std::vector<QueuedEvent>(events.begin(), events.end()));
    if (done->result.applied()) {
      committed(*done);
      return std::nullopt;
    }
    if (done->result.status != TxStatus::DataError) return done->result.failure;
    refused = &done->result.failure;
  }
  metrics_.database_error(PgErrorKind::Data);
  if (events.size() > 1) {
    const std::size_t half = events.size() / 2;
    if (auto failure = isolate(events.first(half), nullptr)) return failure;
    return isolate(events.subspan(half), nullptr);
  }
  const TxFailure& refusal = *refused;
  lanes_->submit_dead_letter(events[0], refusal, checkpoint_before(events));
  FinishedBatch letter = take_alone();
  if (!letter.result.applied()) {
    // Nothing may be skipped: the event stays in the log, and this is tried again after a backoff
    // (unless the checkpoint shows that a store whose reply was lost did commit).
    const bool in_doubt = letter.result.status == TxStatus::InDoubt;
    if (in_doubt) dead_letter_in_doubt_ = events[0].lsn;
    const TxFailure& why = letter.result.failure;
    logger_->error("event lsn {} ({}) refused by PostgreSQL [{}]: {}; storing it in pm_dead_letters {} [{}]: {}",
                   events[0].lsn, to_string(events[0].event.type()), refusal.sqlstate, refusal.message,
                   in_doubt ? "lost its COMMIT reply (the checkpoint will tell)" : "failed", why.sqlstate, why.message);
    return why;
  }
  logger_->error("event lsn {} ({}) refused by PostgreSQL [{}]: {}; stored in pm_dead_letters", events[0].lsn,
                 to_string(events[0].event.type()), refusal.sqlstate, refusal.message);
  committed(letter);
  return std::nullopt;
}

// One batch through the lanes with nothing else in flight; its outcome.
FinishedBatch BatchWriter::run_alone(std::vector<QueuedEvent> events) {
  const std::int64_t follows = checkpoint_before(events);
  lanes_->submit(std::move(events), probe(), follows);
  return take_alone();
}

// The outcome of the one batch in flight; the lanes start a new sequence if it did not commit.
FinishedBatch BatchWriter::take_alone() {
  std::vector<FinishedBatch> done = lanes_->take_finished(true);
  if (!done.at(0).result.applied()) lanes_->restart();
  return std::move(done[0]);
}

void BatchWriter::finish_in_flight() noexcept {
  if (lanes_->in_flight() == 0) return;
  // Whatever committed is recorded; what did not stays in the log for the next attempt.
  try {
    record_landed(lanes_->take_finished(true));
  } catch (const std::exception& e) {
    logger_->warn("recording the batches that committed failed: {}; the checkpoint in PostgreSQL stays right", redact_url(e.what()));
  }
  lanes_->restart();
}

void BatchWriter::back_off(const TxFailure& failure) {
  finish_in_flight();
  // A (re)connect that failed, or a failure after one: the pacing tells them apart.
  const std::chrono::milliseconds wait = pacing_.after_failure(!ready_);
  if (failure_is<LogNotDurable>(failure)) {
    // The log has stopped (its fdatasync failed) and the daemon stops on that; PostgreSQL is fine.
    logger_->error("a batch rolled back, nothing of it committed or acked: {}", failure.message);
    start_over(wait);
    return;
  }
  if (failure_is<wal::WalCorruption>(failure)) {  // a segment the system refused to open (unreadable()): not PostgreSQL's
    metrics_.wal_read_error();
    logger_->error("cannot read events back from the log: {}; they stay in it, retrying in {} ms", failure.message, wait.count());
    start_over(wait);
    return;
  }
  // A batch or check that failed after the (re)connect, the server's error or a lost session alike:
  // up again only once a batch commits or an idle check passes. A lost session was taken as
  // answered by the reconnect after it, so a batch whose session was lost every time (a backend
  // the OOM killer ends) made the gauge read 1 from each reconnect to the next loss.
  if (ready_) failed_since_connect_ = true;
  database_up_ = false;
  metrics_.database_up(false);  // before the error is counted: a scrape that sees the count sees this
  metrics_.database_error(failure.kind);
  const bool missing_table = failure.sqlstate == "42P01";
  logger_->warn("PostgreSQL operation failed ({}): {}{}; events stay in the log, retrying in {} ms",
                to_string(failure.kind), failure.message,
                missing_table ? " (has `pm-ingestctl migrate` been run on this database?)" : "", wait.count());
  // Whatever happened to the batch (rolled back, or committed with an unknown outcome), the stored
  // checkpoint says where to continue, on whichever server is primary by then.
  start_over(wait);
}

// After a failure, with nothing in flight: the checkpoint is read again after `wait`, and the
// events in hand are dropped (they are read again from the log).
void BatchWriter::start_over(std::chrono::milliseconds wait) {
  ready_ = false;
  collector_.reset();
  metrics_.publish(applied_, 0);
  heartbeat_ = (Clock::now() + wait).time_since_epoch().count();  // alive until the wait ends
  sleep_for(wait);
}

void BatchWriter::look_at_server() {
  // Idle: nothing else would notice a primary that is gone or has become a standby.
  const bool idle = Clock::now() - last_contact_ >= config_.idle_check_interval;
  retention_.check(idle);
  if (!idle) return;
  last_contact_ = Clock::now();
  // A failed check is up again once the server answers one; a failing batch only once it commits.
  if (lanes_->in_flight() == 0) mark_database_up();
}

void BatchWriter::mark_database_up() {
  failed_since_connect_ = false;
  database_up_ = true;
  metrics_.database_up(true);
}

bool BatchWriter::load_checkpoint() {
  db_.drop_closed_idle();  // sessions the server ended (a restart) would each fail a batch
  retention_.forget();     // what it waits for may be gone with the old primary
  retention_.check(true);  // throws NotAPrimary on a standby: nothing is read or written there
  last_contact_ = Clock::now();
  // A database an older pm-ingestctl migrated lacks what this writer writes (the checkpoint's
  // record columns, seed/07_checkpoint_record.sql): every batch would fail. Throws; the writer retries.
  Migrator(db_).require_applied();
  if (const std::optional<std::string> refusal = apply_refusal(db_, config_.trade_timestamp_unit)) {
    fatal(*refusal);
    return false;
  }
  const std::optional<IngestCheckpoint> checkpoint = IngestCheckpointRepository(db_).get(config_.instance_id);
  const auto start = start_position(checkpoint);
  if (!start) return false;
  resumed_without_row_ = checkpoint ? std::nullopt : std::optional<std::uint64_t>(start->lsn);
  open_lane_connections();
  resume_from(*start);
  return true;
}

// Each lane's connection opens now, not under the first batch that needs it, with events queued
// behind it: a new backend's start and authentication, and then its first statement on the trade
// tables (its catalog caches: 7-8 ms here against 1 ms for the next). One more for this thread's
// own queries (the retention's look at the server, at each new segment and periodically): without
// it, such a query holding one while the lanes hold the rest made a lane open a connection under
// a batch (~30 ms here, right after a new log's first segment roll). One connection of the pool
// stays for others (health checks), so this seldom waits for one.
void BatchWriter::open_lane_connections() {
  const std::size_t allowed = static_cast<std::size_t>(std::max(db_.config().max_connections - 1, 1));
  std::vector<Lease> leases;
  for (std::size_t i = 0; i < std::min(config_.writer_connections + 1, allowed); ++i) leases.push_back(db_.lease());
}

// Where this instance resumes: after its checkpoint, if that fits the log; else fatal (nullopt).
std::optional<wal::Position> BatchWriter::start_position(const std::optional<IngestCheckpoint>& checkpoint) {
  const wal::Position durable = log_.durable();
  // Below a hole a crash left among the applied segments kept for the archive, nothing can be read
  // in order: what the log holds starts after it.
  const wal::Position oldest = log_.readable_oldest();
  const std::string log_id = wal::log_id_hex(log_.log_id());
  const std::string instance = "the checkpoint of instance '" + config_.instance_id + "'";
  if (!checkpoint) {
    if (oldest.lsn > 0)
      logger_->warn("no checkpoint for instance '{}': applying the log from its oldest record (lsn {}){}", config_.instance_id,
                    oldest.lsn + 1,
                    oldest.segment == log_.oldest().segment
                        ? ""
                        : "; the applied segments kept below it, before a hole a crash left among them, are not applied again");
    return oldest;
  }
  if (checkpoint->log_id != log_id) {
    fatal(instance + " belongs to log " + checkpoint->log_id + " but " + log_.dir() + " holds log " + log_id +
          "; start with the log directory that instance used, or, if that log was fully applied and is gone, "
          "clear the checkpoint with `pm-ingestctl checkpoint-reset --instance-id " + config_.instance_id + "`");
    return std::nullopt;
  }
  if (static_cast<std::uint64_t>(checkpoint->lsn) > durable.lsn) {
    fatal(instance + " is at lsn " + std::to_string(checkpoint->lsn) + " but the log in " + log_.dir() +
          " ends at lsn " + std::to_string(durable.lsn) + "; the log lost records");
    return std::nullopt;
  }
  if (static_cast<std::uint64_t>(checkpoint->segment) < oldest.segment) {
    fatal(instance + " points into segment " + std::to_string(checkpoint->segment) + " but the oldest segment in " +
          log_.dir() + " it can read on from is " + std::to_string(oldest.segment) + "; unapplied segments were removed");
    return std::nullopt;
  }
  const wal::Position position{static_cast<std::uint64_t>(checkpoint->segment),
                               static_cast<std::uint64_t>(checkpoint->segment_offset),
                               static_cast<std::uint64_t>(checkpoint->log_offset),
                               static_cast<std::uint64_t>(checkpoint->lsn)};
  if (!holds_checkpoint_record(*checkpoint, position, instance)) return std::nullopt;
  return position;
}

// A log that lost records the checkpoint covers, and gave their LSNs to new events, holds another
// record where the checkpoint's last one was: those events must not be skipped as applied.
bool BatchWriter::holds_checkpoint_record(const IngestCheckpoint& checkpoint, const wal::Position& position,
                                          const std::string& instance) {
  if (!checkpoint.record || position.lsn == 0) return true;  // nothing to compare
  const CheckpointRecord& record = *checkpoint.record;
  const std::string mismatch =
      wal::record_mismatch(log_.dir(), log_.log_id(), position, record.bytes, record.payload_crc, log_.fs());
  if (mismatch.empty()) return true;
  fatal(instance + " names record " + std::to_string(position.lsn) + " (" + std::to_string(record.bytes) +
        " bytes, ending at offset " + std::to_string(position.offset) + " of segment " + std::to_string(position.segment) +
        "), but the log in " + log_.dir() + " does not hold it (" + mismatch +
        "): the log lost records that were applied, and new events took their LSNs; applying would skip them. "
        "Nothing is applied; keep the directory for inspection (`pm-ingestctl wal-verify`)");
  return false;
}

void BatchWriter::resume_from(const wal::Position& start) {
  count_committed_unseen(start);
  dispatched_ = start;
  // Segments wholly below the checkpoint are applied: nothing will read them again once the
  // standbys have them. The state file forgets a later applied position at once: a failover may
  // have taken the checkpoint back, and recovery deletes below what the state file records.
  set_applied(start);
  log_.persist_applied();
  collector_.reset();
  metrics_.publish(applied_, 0);
  const wal::Position durable = log_.durable();
  logger_->info("writer connected; instance '{}' resumes after lsn {} ({} events to replay)", config_.instance_id,
                start.lsn, durable.lsn - std::min(durable.lsn, start.lsn));
  reached_replay_target();
}

// Batches handed to PostgreSQL whose outcome the writer never saw (a COMMIT cut off: InDoubt) and
// that the checkpoint shows committed: their events are counted as applied now. Events the checkpoint
// does not cover are applied again later and counted then; at the first connect nothing is in flight.
// A dead letter whose store lost its reply counts as dead-lettered too when the checkpoint covers it;
// otherwise its event is refused and stored again later, and counted then.
void BatchWriter::count_committed_unseen(const wal::Position& start) {
  const std::optional<std::uint64_t> letter = std::exchange(dead_letter_in_doubt_, std::nullopt);
  const std::uint64_t committed_to = std::min(start.lsn, dispatched_.lsn);
  if (committed_to <= applied_.lsn) return;
  const std::uint64_t events = committed_to - applied_.lsn;
  const bool letter_stored = letter && *letter > applied_.lsn && *letter <= committed_to;
  pacing_.committed();  // a batch did commit: the next failure waits the initial delay again
  metrics_.committed_unseen(applied_.lsn, committed_to, letter_stored ? 1 : 0);
  logger_->info("the checkpoint shows that {} events (lsn {} to {}) committed in batches whose outcome was lost{}",
                events, applied_.lsn + 1, committed_to,
                letter_stored ? ", among them the dead letter of lsn " + std::to_string(*letter) : std::string());
}

void BatchWriter::committed(std::span<const FinishedBatch> batches) {
  if (batches.empty()) return;
  for (const FinishedBatch& batch : batches) {
    const BatchCounts& counts = *batch.result.value;
    duplicates_seen_ = counts.trades_inserted < counts.trades;
    metrics_.batch_committed(batch.batch->events, counts, batch.seconds, batch.phases, batch.outcome_at);
  }
  last_contact_ = Clock::now();
  pacing_.committed();  // before the retention's query in set_applied, which may throw
  set_applied(batches.back().batch->events.back().end);
  mark_database_up();
  if (reached_replay_target()) logger_->info("replay done: the log is applied up to lsn {}", applied_.lsn);
}

void BatchWriter::set_applied(const wal::Position& position) {
  applied_ = position;
  applied_log_offset_ = position.log_offset;  // the backlog budget frees these bytes at once
  applied_lsn_ = position.lsn;
  retention_.applied(position);  // before the log notes it: it may hold what the state file records
  log_.note_applied(position);
}

// True once, when the applied position first reaches what was durable at start().
bool BatchWriter::reached_replay_target() {
  if (replay_done_ || applied_.lsn < replay_target_lsn_) return false;
  replay_done_ = true;
  metrics_.replay_done(true);
  return true;
}

}  // namespace pm
