#include "ingest/writer/writer_lanes.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <stdexcept>

#include "repos/advisory_lock.h"
#include "repos/deferred_begin_transaction.h"
#include "repos/owed_statements.h"
#include "repos/util/thread_name.h"

namespace pm {

std::int32_t lane_lock_class(const std::string& name) {
  std::uint32_t h = 2166136261u;  // FNV-1a
  for (const unsigned char c : name) h = (h ^ c) * 16777619u;
  return static_cast<std::int32_t>(h & 0x7fffffff);
}

LaneBatch::LaneBatch(std::vector<QueuedEvent> e, const BatchApplier& applier, std::optional<std::int64_t> follows)
    : events(std::move(e)), rows(applier.trade_rows(events)), follows(follows) {
  keys.reserve(rows.size());
  for (const TradeRow& row : rows) keys.insert(row);
}

WriterLanes::WriterLanes(Database& db, const BatchApplier& applier, std::size_t lanes,
                         std::function<void()> on_finished, std::int32_t lock_class, SynchronousCommit commit,
                         DurableGate durable_gate)
    : db_(db),
      applier_(applier),
      on_finished_(std::move(on_finished)),
      lock_class_(lock_class),
      commit_(commit),
      durable_gate_(std::move(durable_gate)) {
  if (lanes < 1) throw std::invalid_argument("WriterLanes needs at least one lane");
  for (std::size_t i = 0; i < lanes; ++i) lanes_.push_back(std::make_unique<Lane>());
  try {
    for (auto& lane : lanes_) lane->thread = std::thread([this, l = lane.get()] { run_lane(*l); });
  } catch (...) {  // a thread could not start: stop the ones that did before failing
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    changed_.notify_all();
    for (auto& lane : lanes_)
      if (lane->thread.joinable()) lane->thread.join();
    throw;
  }
}

WriterLanes::~WriterLanes() {
  {
    std::unique_lock lock(mu_);
    changed_.wait(lock, [&] {
      for (const auto& lane : lanes_)
        if (lane->job) return false;
      return true;
    });
    stopping_ = true;
  }
  changed_.notify_all();
  for (auto& lane : lanes_) lane->thread.join();
}

void WriterLanes::submit(std::vector<QueuedEvent> events, DuplicateProbe probe, std::optional<std::int64_t> follows) {
  Job job;
  job.batch = std::make_shared<const LaneBatch>(std::move(events), applier_, follows);
  job.probe = probe;
  hand_over(std::move(job));
}

void WriterLanes::submit_dead_letter(QueuedEvent event, TxFailure refusal, std::optional<std::int64_t> follows) {
  std::vector<QueuedEvent> events;
  events.push_back(std::move(event));
  Job job;
  job.batch = std::make_shared<const LaneBatch>(std::move(events), applier_, follows);
  job.dead_letter = std::move(refusal);
  hand_over(std::move(job));
}

void WriterLanes::hand_over(Job job) {
  job.seq = first_seq_ + submitted_;
  job.earlier.assign(uncollected_.begin(), uncollected_.end());
  Lane& lane = *lanes_[job.seq % lanes_.size()];
  uncollected_.push_back(job.batch);
  submit_times_.push_back(std::chrono::steady_clock::now());
  ++submitted_;
  {
    std::unique_lock lock(mu_);
    changed_.wait(lock, [&] { return !lane.job.has_value(); });
    lane.job = std::move(job);
  }
  changed_.notify_all();
}

std::vector<FinishedBatch> WriterLanes::take_finished(bool wait_for_all) {
  std::vector<FinishedBatch> out;
  std::unique_lock lock(mu_);
  if (wait_for_all) changed_.wait(lock, [&] { return finished_.size() == submitted_ - taken_; });
  for (auto it = finished_.find(first_seq_ + taken_); it != finished_.end(); it = finished_.find(first_seq_ + taken_)) {
    out.push_back(std::move(it->second));
    finished_.erase(it);
    uncollected_.pop_front();
    submit_times_.pop_front();
    ++taken_;
  }
  return out;
}

bool WriterLanes::next_lane_free() {
  const Lane& lane = *lanes_[(first_seq_ + submitted_) % lanes_.size()];
  std::lock_guard lock(mu_);
  return !lane.job.has_value();
}

std::optional<std::chrono::steady_clock::time_point> WriterLanes::oldest_submitted() const {
  if (submit_times_.empty()) return std::nullopt;
  return submit_times_.front();
}

void WriterLanes::restart() {
  if (in_flight() != 0) throw std::logic_error("WriterLanes::restart with batches in flight");
  first_seq_ += submitted_;
  submitted_ = 0;
  taken_ = 0;
  order_.reset(first_seq_);
}

void WriterLanes::run_lane(Lane& lane) {
  name_this_thread("pm-lane");
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mu_);
      changed_.wait(lock, [&] { return stopping_ || lane.job.has_value(); });
      if (!lane.job) return;
      job = *lane.job;
    }
    FinishedBatch result = run_job(job);
    {
      std::lock_guard lock(mu_);
      finished_.emplace(job.seq, std::move(result));
      lane.job.reset();
    }
    changed_.notify_all();
    if (on_finished_) on_finished_();
  }
}

namespace {

using Clock = std::chrono::steady_clock;

// A batch's first statement after its BEGIN: how its COMMIT waits (SynchronousCommit), set for
// this transaction only, and the batch's own advisory lock, which later batches wait on. Both are
// owed, to travel in front of the batch's COPY (one round trip for all); `locked` runs once they
// have.
void open_batch(OwedStatements& owed, SynchronousCommit commit, AdvisoryKey key, std::function<void()> locked) {
  const char* commit_mode =
      commit == SynchronousCommit::Off
          ? "set_config('synchronous_commit', 'off', true)"
          // the role's setting, but never off: the commit must wait for the primary's flush
          : "CASE WHEN current_setting('synchronous_commit') = 'off' THEN set_config('synchronous_commit', 'local', true) END";
  owed.add(lock_exclusive_sql(key, commit_mode), std::move(locked));
}

double seconds_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

}  // namespace

FinishedBatch WriterLanes::run_job(const Job& job) {
  const auto t0 = Clock::now();
  FinishedBatch result;
  result.batch = job.batch;
  Clock::time_point body_done;
  result.result = db_.attempt<DeferredBeginTransaction>([&](pqxx::dbtransaction& tx) {
    auto counts = run_body(tx, job, result.phases);
    body_done = Clock::now();
    return counts;
  });
  result.outcome_at = std::chrono::system_clock::now();
  const bool committed = result.result.applied();
  if (!committed) order_.failed(job.seq);  // later batches stop waiting for this one's turn at once
  order_.done(job.seq, committed);
  const auto t1 = Clock::now();
  result.seconds = seconds_between(t0, t1);
  if (committed) {
    BatchPhases& p = result.phases;
    p.commit = seconds_between(body_done, t1);
    p.begin = std::max(0.0, result.seconds - p.trades - p.finish - p.durable - p.turn - p.commit);
  }
  return result;
}

// The batch's transaction: returns its counts to commit, or nullopt to roll back (an earlier batch
// did not commit). What it throws, Database::attempt classifies.
std::optional<BatchCounts> WriterLanes::run_body(pqxx::dbtransaction& tx, const Job& job, BatchPhases& phases) {
  OwedStatements owed;
  DeferredBeginTransaction::owe_begin(owed);  // BEGIN travels with the batch's first statements
  bool locked = false;
  open_batch(owed, commit_, advisory_key(lock_class_, job.seq), [&] {
    locked = true;
    order_.started(job.seq);
  });
  // What came before is `begin`, the rest of the job's time (run_job): with BEGIN and the lock
  // owed, that is only the lease of a connection, and `trades` includes BEGIN and taking the lock.
  Clock::time_point mark = Clock::now();  // the end of the phase before
  const auto phase_done = [&mark](double& phase) {
    const auto now = Clock::now();
    phase = seconds_between(mark, now);
    mark = now;
  };
  const LaneBatch& batch = *job.batch;
  TradeStage stage;
  if (!job.dead_letter) {
    std::vector<const TradeKeySet*> earlier;
    for (const auto& b : job.earlier) earlier.push_back(&b->keys);
    stage = applier_.insert_trades(tx, batch.rows, job.probe, earlier, &owed);
  }
  // No COPY carried the lock (no trades to store): it must be held before waiting for the batch
  // before, so that a deadlock through another writer shows inside PostgreSQL.
  if (!locked) owed.flush(tx);
  phase_done(phases.trades);
  // The wait for the batch before happens inside PostgreSQL, where a deadlock through another
  // writer shows: its shared lock travels in front of the finishing statements (one round trip),
  // which PostgreSQL runs once that batch has ended. If it ended without committing, await_turn
  // says so below and this batch rolls back: nothing it ran meanwhile is kept.
  if (order_.predecessor_running(job.seq)) owed.add(lock_shared_sql(advisory_key(lock_class_, job.seq - 1)));
  if (job.dead_letter) owed.flush(tx);  // the dead letter's statements have parameters
  std::optional<BatchCounts> counts;
  try {
    counts = job.dead_letter ? applier_.dead_letter(tx, batch.events.front(), job.dead_letter->message,
                                                    job.dead_letter->sqlstate, batch.follows)
                             : applier_.finish(tx, batch.events, batch.rows, stage, &owed, batch.follows);
  } catch (const CheckpointConflict&) {
    // The batch before did not commit (its checkpoint is not there): roll back behind it, as below.
    if (!order_.await_turn(job.seq)) return std::nullopt;
    throw;
  }
  phase_done(phases.finish);
  // Nothing commits before its events are durable in the log: a record lost with the page cache
  // would leave a checkpoint naming an LSN that new events then take.
  const std::uint64_t last = batch.events.back().lsn;
  if (durable_gate_ && !durable_gate_(last))
    throw LogNotDurable("the log's fdatasync of lsn " + std::to_string(last) + " failed; the log has stopped");
  phase_done(phases.durable);
  if (!order_.await_turn(job.seq)) return std::nullopt;
  phase_done(phases.turn);
  return counts;
}

}  // namespace pm
