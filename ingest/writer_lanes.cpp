#include "ingest/writer_lanes.h"

#include <chrono>
#include <stdexcept>

#include "repos/pg_errors.h"

namespace pm {

LaneBatch::LaneBatch(std::vector<QueuedEvent> e, const BatchApplier& applier)
    : events(std::move(e)), rows(applier.trade_rows(events)) {
  keys.reserve(rows.size());
  for (const TradeRow& row : rows) keys.insert(row);
}

WriterLanes::WriterLanes(Database& db, const BatchApplier& applier, std::size_t lanes,
                         std::function<void()> on_finished, std::int32_t lock_class)
    : db_(db),
      applier_(applier),
      on_finished_(std::move(on_finished)),
      lock_class_(lock_class) {
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

void WriterLanes::submit(std::vector<QueuedEvent> events, DuplicateProbe probe) {
  Job job;
  job.seq = first_seq_ + submitted_;
  job.batch = std::make_shared<const LaneBatch>(std::move(events), applier_);
  job.earlier.assign(uncollected_.begin(), uncollected_.end());
  job.probe = probe;
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

std::string WriterLanes::turn_lock_sql(const char* function, std::uint64_t seq) const {
  // Two int4 keys: the lock class, and the sequence number modulo 2^31 (batches in flight are few).
  return std::string("SELECT ") + function + "(" + std::to_string(lock_class_) + ", " +
         std::to_string(static_cast<std::int32_t>(seq & 0x7fffffff)) + ")";
}

FinishedBatch WriterLanes::run_job(const Job& job) {
  const auto t0 = std::chrono::steady_clock::now();
  FinishedBatch result;
  result.batch = job.batch;
  bool committed = false;
  try {
    std::vector<const TradeKeySet*> earlier;
    for (const auto& b : job.earlier) earlier.push_back(&b->keys);
    const std::span<const QueuedEvent> events(job.batch->events);
    Lease lease = db_.lease();
    bool committing = false;
    try {
      pqxx::work tx(lease.connection());
      tx.exec1(turn_lock_sql("pg_advisory_xact_lock", job.seq));
      order_.started(job.seq);
      const TradeStage stage = applier_.insert_trades(tx, job.batch->rows, job.probe, earlier);
      // Wait for the batch before inside PostgreSQL, where a deadlock through another writer shows.
      if (order_.predecessor_running(job.seq)) tx.exec1(turn_lock_sql("pg_advisory_xact_lock_shared", job.seq - 1));
      if (order_.await_turn(job.seq)) {
        const BatchCounts counts = applier_.finish(tx, events, job.batch->rows, stage);
        committing = true;
        tx.commit();
        committed = true;
        result.counts = counts;  // only once the commit is known to have happened
      } else {
        tx.abort();
        result.aborted = true;
      }
    } catch (const std::exception& error) {  // the transaction is rolled back by now
      const PgErrorKind kind = classify_exception(error);
      if (kind == PgErrorKind::Connection || kind == PgErrorKind::InDoubt) lease.discard();
      if (committing && kind == PgErrorKind::Connection)
        result.error = std::make_exception_ptr(
            pqxx::in_doubt_error(std::string("connection lost during COMMIT: ") + error.what()));
      else
        result.error = std::current_exception();
    }
  } catch (...) {  // no connection to be had, or out of memory before the transaction
    result.error = std::current_exception();
  }
  if (!committed) order_.failed(job.seq);  // later batches stop waiting for this one's turn at once
  order_.done(job.seq, committed);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return result;
}

}  // namespace pm
