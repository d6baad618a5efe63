#include "ingest/replay/replay_runner.h"

#include <algorithm>
#include <stdexcept>
#include <thread>

#include "ingest/events/event_codec.h"
#include "ingest/writer/apply_refusal.h"
#include "ingest/writer/batch_applier.h"
#include "ingest/writer/ingest_checkpoint_repository.h"
#include "ingest/archive/archive_format.h"
#include "ingest/writer/writer_lanes.h"
#include "repos/migrator.h"
#include "repos/util/backoff.h"

namespace pm {

namespace {

using Clock = std::chrono::steady_clock;

Event decode_record(const wal::Record& record) {
  std::string error;
  std::optional<Event> event = decode_event(record.payload, &error);
  if (!event)
    throw ReplayError("the record at lsn " + std::to_string(record.lsn) + " (segment " +
                      wal::segment_file_name(record.start.segment) + ", offset " + std::to_string(record.start.offset) +
                      ") passes its checksum but does not decode: " + error);
  return std::move(*event);
}

// A skipped range whose row in pm_dead_letters could not be stored (record_skipped): the attempt
// ends with it as its failure, retried (a lost connection, a serialization failure) or not, as a
// batch's would be. The next pass meets the range again and stores it then.
class SkipNotRecorded : public std::runtime_error {
 public:
  SkipNotRecorded(TxStatus status, TxFailure why) : std::runtime_error(why.message), status_(status), why_(std::move(why)) {}
  TxStatus status() const { return status_; }
  const TxFailure& why() const { return why_; }

 private:
  TxStatus status_;
  TxFailure why_;
};

}  // namespace

// One pass over the chain from a start LSN into the lanes; stops at the first batch that failed.
struct ReplayRunner::Pass {
  ReplayRunner& runner;
  WriterLanes& lanes;
  Isolation isolation;  // finding a refused event
  DuplicateProbe probe = DuplicateProbe::OnConflict;
  std::optional<FinishedBatch> failure;

  // Takes the finished batches and counts the applied ones; false once one failed.
  bool collect(bool wait) {
    for (FinishedBatch& f : lanes.take_finished(wait)) {
      if (f.result.applied()) {
        count(*f.batch, *f.result.value);
        runner.forget_doubt();
        continue;
      }
      if (f.result.status == TxStatus::InDoubt) runner.in_doubt_.push_back(f.batch);
      if (f.result.failed() && !failure) failure = std::move(f);
    }
    runner.report();
    return !failure;
  }

  void count(const LaneBatch& batch, const BatchCounts& c) {
    ReplayStats& s = runner.stats_;
    if (s.first_lsn == 0) s.first_lsn = batch.events.front().lsn;
    s.last_lsn = batch.events.back().lsn;
    s.applied += batch.events.size();
    s.trades += c.trades;
    s.trades_inserted += c.trades_inserted;
    s.triggers += c.triggers;
    s.triggers_recorded += c.triggers_recorded;
    s.dead_lettered += c.dead_lettered;
    runner.counted_through_ = std::max(runner.counted_through_, batch.events.back().lsn);
    probe = c.trades_inserted < c.trades ? DuplicateProbe::First : DuplicateProbe::OnConflict;
  }

  bool submit(std::vector<QueuedEvent>& batch) {
    lanes.submit(std::move(batch), probe);
    batch.clear();
    return collect(false);
  }

  // Returns the failed batch, if one failed.
  std::optional<FinishedBatch> run(archive::SegmentChain& chain, std::uint64_t start_lsn) {
    runner.start_chain(chain, start_lsn);
    std::vector<QueuedEvent> batch;
    try {
      while (std::optional<QueuedEvent> q = runner.next_event(chain)) {
        batch.push_back(std::move(*q));
        if (full(batch) && !submit(batch)) break;
      }
    } catch (...) {
      finish(batch);  // damage in the sources: what was read before it is applied, then it stops
      // A batch before the damage failed: that is handled first (retried, halved, dead-lettered);
      // a later pass meets the damage again once everything before it is applied.
      if (failure) return std::move(failure);
      throw;
    }
    finish(batch);
    return std::move(failure);
  }

  // Whether `batch` goes now: at the most events a batch may hold, or, while a refused event is
  // looked for, at the isolated range's end (so the next halving splits exactly the failed batch).
  bool full(const std::vector<QueuedEvent>& batch) const {
    if (batch.front().lsn > isolation.through) return batch.size() >= runner.options_.batch_max_events;
    return batch.size() >= isolation.batch_events || batch.back().lsn >= isolation.through;
  }

  void finish(std::vector<QueuedEvent>& batch) {
    if (!failure && !batch.empty()) submit(batch);
    collect(true);
  }
};

ReplayRunner::ReplayRunner(ReplayOptions options, std::function<void(const ReplayStats&)> on_progress,
                           std::function<void(const archive::SkippedRange&)> on_skip)
    : options_(std::move(options)), on_progress_(std::move(on_progress)), on_skip_(std::move(on_skip)) {}

ReplayStats ReplayRunner::run(Database* db) {
  started_ = Clock::now();
  archive::SegmentChain chain = archive::SegmentChain::discover(wal::posix_log_fs(), options_.sources);
  stats_.log_id = wal::log_id_hex(chain.log_id());
  stats_.total_bytes = chain.total_bytes();
  if (db)
    replay(chain, *db);
  else
    dry_run(chain);
  if (chain.stopped_at_live_limit()) {
    // Where reading stopped: the ceiling, or past it when older segments of a log a daemon opened
    // during the run were read before (synced records: a later run resumes after them).
    stats_.held_back = chain.live_limit();
    stats_.held_back->lsn = std::max(stats_.held_back->lsn, highest_read_);
  }
  report();
  return stats_;
}

void ReplayRunner::start_chain(archive::SegmentChain& chain, std::uint64_t start_lsn) {
  chain.start(start_lsn, options_.skip_damaged, [this](const archive::SkippedRange& range) { note_skipped(range); });
}

void ReplayRunner::note_skipped(const archive::SkippedRange& range) {
  const bool known = std::any_of(stats_.skipped.begin(), stats_.skipped.end(), [&](const archive::SkippedRange& s) {
    return s.first_lsn == range.first_lsn && s.file == range.file;
  });
  if (known) return;  // a later pass over the same damage, recorded by an earlier one
  // Known only once recorded: a record that failed in a pass that a failed batch ended (its
  // exception gives way to that failure) is tried again by the next pass, before any batch past
  // the range commits. Known first, a later run resumed past the range without its row.
  if (db_) record_skipped(range);
  stats_.skipped.push_back(range);
  if (on_skip_) on_skip_(range);
}

namespace {

constexpr const char* kSkippedEventType = "skipped";

}  // namespace

// Before any batch past the range can commit (this runs on the reading thread, ahead of them).
// Throws SkipNotRecorded when it cannot be stored.
void ReplayRunner::record_skipped(const archive::SkippedRange& range) {
  try {
    DeadLetterRepository(*db_).add(DeadLetter{options_.instance_id, stats_.log_id, static_cast<std::int64_t>(range.first_lsn),
                                              kSkippedEventType, "", archive::describe(range), std::nullopt});
  } catch (const std::exception& e) {
    TxFailure why = failure_of(e);
    const TxStatus status = status_of(why.kind);
    why.message = "recording the skipped range (" + archive::describe(range) + ") in pm_dead_letters failed: " + why.message;
    throw SkipNotRecorded(status, std::move(why));
  }
}

// The ranges of the sources' log (or of an unrecorded one: rows written before log ids were,
// seed/08) that earlier runs of the instance recorded.
void ReplayRunner::report_skipped_earlier(Database& db) {
  const pqxx::result rows = db.fetch(
      "SELECT error FROM pm_dead_letters WHERE instance_id = $1 AND event_type = $2 AND log_id IN ($3, '') ORDER BY lsn",
      options_.instance_id, std::string(kSkippedEventType), stats_.log_id);
  for (const auto& row : rows) {
    const std::string text = row[0].as<std::string>();
    const bool met_now = std::any_of(stats_.skipped.begin(), stats_.skipped.end(),
                                     [&](const archive::SkippedRange& r) { return archive::describe(r) == text; });
    if (!met_now) stats_.skipped_earlier.push_back(text);
  }
}

// The next event to apply: in the LSN bounds, arrived before --until (the others are counted).
std::optional<QueuedEvent> ReplayRunner::next_event(archive::SegmentChain& chain) {
  while (std::optional<wal::Record> record = chain.next()) {
    if (record->lsn > options_.to_lsn) return std::nullopt;
    QueuedEvent q = queued_from_record(*record, decode_record(*record));
    const bool first_time = record->lsn > highest_read_;
    highest_read_ = std::max(highest_read_, record->lsn);
    stats_.read += first_time ? 1 : 0;
    stats_.bytes_done = chain.bytes_done();
    if (options_.until_ms && q.event.received_ms >= *options_.until_ms) {
      stats_.after_until += first_time ? 1 : 0;
      continue;
    }
    return q;
  }
  return std::nullopt;
}

void ReplayRunner::dry_run(archive::SegmentChain& chain) {
  check_sources_reach(chain, options_.from_lsn);
  start_chain(chain, options_.from_lsn);
  while (std::optional<QueuedEvent> q = next_event(chain)) {
    if (stats_.first_lsn == 0) stats_.first_lsn = q->lsn;
    stats_.last_lsn = q->lsn;
    ++stats_.applied;
    if (q->event.type() == EventType::Trade)
      ++stats_.trades;
    else
      ++stats_.triggers;
    if (stats_.applied % 65536 == 0) report();
  }
}

namespace {

// Retries of a failing server: backoff, and a limit on how long it may fail in a row.
class RetryClock {
 public:
  explicit RetryClock(std::chrono::seconds limit)
      : limit_(limit), backoff_(std::chrono::milliseconds(100), std::chrono::milliseconds(5000), 2.0) {}
  void reset() {
    since_.reset();
    backoff_.reset();
  }
  // Sleeps before the next attempt; throws once the server has failed for longer than the limit.
  void wait(const std::string& why) {
    if (!since_) since_ = Clock::now();
    if (Clock::now() - *since_ > limit_)
      throw ReplayError("PostgreSQL kept failing for " + std::to_string(limit_.count()) + " s: " + why);
    std::this_thread::sleep_for(backoff_.next());  // the server is failing: retry interval
  }

 private:
  std::chrono::seconds limit_;
  Backoff backoff_;
  std::optional<Clock::time_point> since_;
};

}  // namespace

// Why an attempt stopped: the batch that failed (null when the checkpoint could not be read, or a
// skipped range could not be recorded).
struct ReplayRunner::Failure {
  TxStatus status;
  TxFailure why;
  std::shared_ptr<const LaneBatch> batch;
};

void ReplayRunner::replay(archive::SegmentChain& chain, Database& db) {
  db_ = &db;
  replay_passes(chain, db);
  report_skipped_earlier(db);
  db_ = nullptr;
}

void ReplayRunner::replay_passes(archive::SegmentChain& chain, Database& db) {
  BatchApplier applier(options_.instance_id, stats_.log_id, options_.trade_timestamp_unit);
  WriterLanes lanes(db, applier, options_.connections, {}, lane_lock_class("replay:" + options_.instance_id));
  RetryClock retry(options_.retry_for);
  Isolation isolation;
  for (;;) {
    const std::uint64_t done_before = stats_.applied + stats_.dead_lettered;
    std::optional<Failure> failure = attempt(chain, db, lanes, isolation);
    if (!failure) return;
    lanes.restart();
    const bool refused = failure->status == TxStatus::DataError && failure->batch;
    const bool halve = refused && failure->batch->events.size() > 1;
    if (halve)
      isolation = {failure->batch->events.back().lsn, failure->batch->events.size() / 2};  // its halves
    else if (refused)
      failure = dead_letter(lanes, failure->batch->events.front(), failure->why);  // nullopt: stored
    if (stats_.applied + stats_.dead_lettered > done_before) retry.reset();  // it made progress
    if (halve || !failure) continue;
    // A lost connection or a COMMIT in doubt: again from the checkpoint, as is a checkpoint found
    // past a batch whose events a commit in doubt held (it landed since the checkpoint was read).
    // Anything else (storing a dead letter or a skipped range, another writer on the instance's
    // checkpoint) stops the replay with PostgreSQL's own error.
    const bool doubt_landed = failure->batch && overlaps_doubt(*failure->batch) &&
                              failure_is<CheckpointConflict>(failure->why);
    if (failure->status != TxStatus::Retry && failure->status != TxStatus::InDoubt && !doubt_landed)
      throw ReplayError("PostgreSQL refused the replay (" + std::string(to_string(failure->status)) + "): " + failure->why.message);
    retry.wait(failure->why.message);
  }
}

// One pass from the checkpoint; the failure that stopped it, if any.
std::optional<ReplayRunner::Failure> ReplayRunner::attempt(archive::SegmentChain& chain, Database& db, WriterLanes& lanes,
                                                           const Isolation& isolation) {
  std::uint64_t after = 0;
  try {
    after = resume_point(db);
    count_committed_unseen(after);
  } catch (const ReplayError&) {
    throw;
  } catch (const std::exception& e) {
    TxFailure why = failure_of(e);
    const TxStatus status = status_of(why.kind);
    return Failure{status, std::move(why), nullptr};
  }
  const std::uint64_t start = std::max(options_.from_lsn, after + 1);
  Pass pass{*this, lanes, isolation, DuplicateProbe::OnConflict, std::nullopt};
  std::optional<FinishedBatch> failed;
  try {
    check_sources_reach(chain, start);
    failed = pass.run(chain, start);  // a batch that failed before the range wins (Pass::run)
  } catch (const SkipNotRecorded& e) {
    return Failure{e.status(), e.why(), nullptr};
  }
  if (!failed) return std::nullopt;
  return Failure{failed->result.status, failed->result.failure, failed->batch};
}

void ReplayRunner::forget_doubt() {
  in_doubt_.clear();
  dead_letter_in_doubt_.reset();
}

bool ReplayRunner::overlaps_doubt(const LaneBatch& batch) const {
  const std::uint64_t first = batch.events.front().lsn, last = batch.events.back().lsn;
  if (dead_letter_in_doubt_ && first <= *dead_letter_in_doubt_ && *dead_letter_in_doubt_ <= last) return true;
  return std::any_of(in_doubt_.begin(), in_doubt_.end(), [&](const std::shared_ptr<const LaneBatch>& b) {
    return first <= b->events.back().lsn && b->events.front().lsn <= last;
  });
}

// Counts the events of `batch` (shown committed by a checkpoint read) not counted before.
void ReplayRunner::count_unseen(const LaneBatch& batch) {
  for (const QueuedEvent& q : batch.events) {
    if (q.lsn <= counted_through_) continue;
    stats_.first_lsn = stats_.first_lsn == 0 ? q.lsn : std::min(stats_.first_lsn, q.lsn);
    stats_.last_lsn = std::max(stats_.last_lsn, q.lsn);
    ++stats_.applied;
    const bool trade = q.event.type() == EventType::Trade;
    (trade ? stats_.trades : stats_.triggers) += 1;
    (trade ? stats_.trades_unseen : stats_.triggers_unseen) += 1;
  }
  counted_through_ = std::max(counted_through_, batch.events.back().lsn);
}

// The work in doubt (in_doubt_, dead_letter_in_doubt_) that the checkpoint (at `checkpoint_lsn`)
// shows committed is counted, as applied or dead-lettered, each event once (counted_through_) and
// forgotten; the rest is applied again by this pass and stays in doubt. A batch commits whole, and
// with its checkpoint: its last event tells.
void ReplayRunner::count_committed_unseen(std::uint64_t checkpoint_lsn) {
  std::sort(in_doubt_.begin(), in_doubt_.end(), [](const auto& a, const auto& b) {
    return a->events.front().lsn < b->events.front().lsn;
  });
  const auto count_dead_letter = [&] {
    if (*dead_letter_in_doubt_ > counted_through_) ++stats_.dead_lettered;
    counted_through_ = std::max(counted_through_, *dead_letter_in_doubt_);
    dead_letter_in_doubt_.reset();
  };
  std::vector<std::shared_ptr<const LaneBatch>> not_shown;
  for (const std::shared_ptr<const LaneBatch>& batch : in_doubt_) {
    if (batch->events.back().lsn > checkpoint_lsn) {
      not_shown.push_back(batch);
      continue;
    }
    if (dead_letter_in_doubt_ && *dead_letter_in_doubt_ < batch->events.front().lsn) count_dead_letter();
    count_unseen(*batch);
  }
  if (dead_letter_in_doubt_ && *dead_letter_in_doubt_ <= checkpoint_lsn) count_dead_letter();
  in_doubt_ = std::move(not_shown);
}

// The sources must hold the events from `start` on (up to to_lsn): a chain that begins later (an
// archive trimmed by retention, a missing directory) is damage, named, unless skip_damaged. So is
// one that begins past to_lsn: the whole range asked for is missing (it used to apply nothing and
// end as a success).
void ReplayRunner::check_sources_reach(const archive::SegmentChain& chain, std::uint64_t start) {
  if (start > options_.to_lsn) return;  // nothing to apply
  const auto& segments = chain.segments();
  const auto first = std::find_if(segments.begin(), segments.end(), [](const archive::ChainSegment& s) { return s.first_lsn > 0; });
  if (first == segments.end() || first->first_lsn <= start) return;
  // Files before it whose header cannot be read hold the missing events, or some of them: reading
  // starts with those and names them as damage. Blaming retention here named the next, healthy
  // file and advised a --from-lsn that passed over the damaged file's events.
  if (first != segments.begin()) return;
  const archive::SkippedRange missing{start, std::min(first->first_lsn - 1, options_.to_lsn), first->path,
                                      "the sources begin at lsn " + std::to_string(first->first_lsn) +
                                          " (archive retention, or a source directory missing?)"};
  if (!options_.skip_damaged)
    throw archive::ArchiveDamage(first->path, 0, "events " + std::to_string(start) + ".." + std::to_string(missing.last_lsn) +
                                                     " are not in the sources: " + missing.problem + "; " +
                                                     where_the_sources_start(first->first_lsn));
  note_skipped(missing);
}

// The advice for sources that begin at `first_lsn`, past the first LSN to apply.
std::string ReplayRunner::where_the_sources_start(std::uint64_t first_lsn) const {
  if (first_lsn <= options_.to_lsn) return "--from-lsn " + std::to_string(first_lsn) + " starts there";
  return "no event up to --to-lsn " + std::to_string(options_.to_lsn) + " is left in them (restore the archive from a backup)";
}

// Stores the event as a dead letter (the checkpoint moves past it): nullopt, or why that failed,
// the message naming the event.
std::optional<ReplayRunner::Failure> ReplayRunner::dead_letter(WriterLanes& lanes, const QueuedEvent& event,
                                                               const TxFailure& refusal) {
  lanes.submit_dead_letter(event, refusal);
  std::optional<Failure> failure;
  for (FinishedBatch& f : lanes.take_finished(true)) {
    if (f.result.applied()) {
      stats_.dead_lettered += f.result.value->dead_lettered;
      counted_through_ = std::max(counted_through_, event.lsn);
      forget_doubt();
      continue;
    }
    if (f.result.status == TxStatus::InDoubt) dead_letter_in_doubt_ = event.lsn;
    TxFailure why = f.result.failure;
    why.message = "storing the refused event (lsn " + std::to_string(event.lsn) + ") in pm_dead_letters failed: " + why.message;
    failure = Failure{f.result.status, std::move(why), f.batch};
  }
  lanes.restart();  // if storing it failed, the next pass meets the event again
  report();
  return failure;
}

// The LSN up to which this instance's checkpoint says events are applied (0: none), after checking
// that it belongs to the sources' log. A database lacking a bundled migration (the checkpoint's
// record columns) would refuse every batch: that is a ReplayError naming it, before anything is
// applied.
std::uint64_t ReplayRunner::resume_point(Database& db) {
  try {
    Migrator(db).require_applied();
  } catch (const MigrationsPending& e) {
    throw ReplayError(e.what());
  }
  // What the daemon's writer refuses (G2's index missing, trade watermarks of the other unit).
  if (const std::optional<std::string> refusal = apply_refusal(db, options_.trade_timestamp_unit)) throw ReplayError(*refusal);
  const std::optional<IngestCheckpoint> checkpoint = IngestCheckpointRepository(db).get(options_.instance_id);
  if (checkpoint && checkpoint->log_id != stats_.log_id)
    throw ReplayError("the checkpoint of instance '" + options_.instance_id + "' belongs to log " + checkpoint->log_id +
                      ", the sources hold log " + stats_.log_id + "; choose another --instance-id");
  const std::uint64_t lsn = checkpoint ? static_cast<std::uint64_t>(checkpoint->lsn) : 0;
  // Starting above an existing checkpoint's next LSN would move it past events it never applied
  // (a daemon of that instance resumes after the checkpoint and would never apply them).
  if (!checkpoint_read_ && checkpoint && options_.from_lsn > lsn + 1)
    throw ReplayError("instance '" + options_.instance_id + "' has applied up to lsn " + std::to_string(lsn) +
                      "; starting at --from-lsn " + std::to_string(options_.from_lsn) + " would move its checkpoint past lsn " +
                      std::to_string(lsn + 1) + ".." + std::to_string(options_.from_lsn - 1) +
                      " without applying them. Use --from-lsn " + std::to_string(lsn + 1) +
                      " or less, or another --instance-id (the default is one of replay's own)");
  if (!checkpoint_read_) stats_.resumed_after_lsn = lsn;  // later passes find this run's own checkpoints
  checkpoint_read_ = true;
  return lsn;
}

void ReplayRunner::report() {
  stats_.seconds = std::chrono::duration<double>(Clock::now() - started_).count();
  if (on_progress_) on_progress_(stats_);
}

}  // namespace pm
