#pragma once
// WriterLanes: the one route by which batches reach PostgreSQL. Consecutive batches run on
// `lanes` connections at once and commit strictly in log order, so the server's COPY work for one
// batch overlaps the tail of the one before it (measured here: two COPY streams load 1.5x faster
// than one on two cores). One lane is the single-connection writer: the same route, one batch at a
// time. Poison isolation (BatchWriter) goes through it too, one batch alone.
//
// Contract:
// - Each lane is a thread; each batch is one attempt (Database::attempt, no retry) on a pooled
//   connection, in a DeferredBeginTransaction (its BEGIN travels with its first statements). An
//   apply batch runs BatchApplier::insert_trades at once (trades also present in an earlier batch
//   still in flight are duplicates of it and are left out, so concurrent batches never insert the
//   same key and never wait on each other), then runs BatchApplier::finish (watermarks,
//   G2 trigger claims, checkpoint) once the previous batch has ended in PostgreSQL, then waits for
//   `durable_gate` (when given) to say its last event is durable in the log (false: it rolls
//   back, failed with LogNotDurable), makes sure the previous batch committed (else it rolls back)
//   and commits. Commits, trigger claims and checkpoints therefore happen in log order, exactly as
//   with one connection.
//   A dead-letter batch (one event) stores the event in pm_dead_letters and moves the checkpoint.
// - Each batch's outcome is a TxResult (repos/tx_result.h): Applied with its counts; RolledBack when
//   an earlier batch did not commit (it must be applied again); or the failure, classified. A failure
//   during COMMIT on a lost connection is InDoubt.
// - A batch's wait for the one before it happens inside PostgreSQL too: each batch's transaction
//   holds the advisory lock (lock_class, seq) and, while seq-1 runs, waits for (lock_class, seq-1)
//   in the same round trip as its finishing statements (PostgreSQL runs them after the wait).
//   Waiting only in this process hid the edge from PostgreSQL: with another writer inserting the
//   same trades (a second daemon), batch 2 here waiting for batch 1, batch 1 waiting on the
//   other's row, the other's batch 2 waiting for its batch 1, which waits on our batch 2's row, was
//   a deadlock no detector saw, lasting until the 60 s statement timeout (SeveralDaemons.*). Now
//   PostgreSQL finds the cycle after deadlock_timeout (1 s) and cancels one batch (40P01,
//   Retry). lock_class should differ between daemons sharing a database (a hash of the
//   instance id); a collision costs only needless waits.
// - Completion is signalled by calling `on_finished` on the lane thread once the outcome is stored
//   (the writer rings its queue's doorbell with it), then take_finished() hands the outcomes over.
// - Threads: one thread (the writer) calls submit/take_finished/restart/in_flight/oldest_submitted;
//   lane threads run the batches. The destructor lets batches in flight finish, then joins the lanes.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "ingest/writer/batch_applier.h"
#include "ingest/writer/batch_phases.h"
#include "ingest/writer/commit_order.h"
#include "ingest/writer/synchronous_commit.h"
#include "repos/database.h"
#include "repos/trade_key_set.h"
#include "repos/tx_result.h"

namespace pm {

// A batch handed to the lanes: its events, its trade rows (views into the events) and their keys.
// Immutable once built.
struct LaneBatch {
  LaneBatch(std::vector<QueuedEvent> e, const BatchApplier& applier, std::optional<std::int64_t> follows);
  const std::vector<QueuedEvent> events;
  const std::vector<TradeRow> rows;
  TradeKeySet keys;
  // Where the stored checkpoint must be when this batch advances it (IngestCheckpoint::follows).
  const std::optional<std::int64_t> follows;
};

struct FinishedBatch {
  std::shared_ptr<const LaneBatch> batch;
  TxResult<BatchCounts> result;  // Applied (counts), RolledBack (behind a failure), or the failure
  double seconds = 0;            // from the start of its transaction to its outcome
  BatchPhases phases;            // the parts of `seconds` (meaningful once committed)
  std::chrono::system_clock::time_point outcome_at;  // when the outcome was known (the commit's time)
};

// The advisory lock class for the batches of a writer named `name` (its instance id): a stable
// hash, so it is the same across restarts.
std::int32_t lane_lock_class(const std::string& name);

// Thrown inside a batch whose events the log could not make durable (its fdatasync failed): the
// batch rolls back.
class LogNotDurable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Blocks until the log record `lsn` is durable (true) or never will be (false); any lane thread.
using DurableGate = std::function<bool(std::uint64_t lsn)>;

class WriterLanes {
 public:
  // `on_finished` runs on a lane thread after each batch's outcome is known (to wake the writer).
  // `commit`: whether each batch's COMMIT waits for the WAL flush (synchronous_commit.h).
  // `durable_gate`: for batches of events that may not be durable yet (null: they all are).
  WriterLanes(Database& db, const BatchApplier& applier, std::size_t lanes, std::function<void()> on_finished = {},
              std::int32_t lock_class = 0, SynchronousCommit commit = SynchronousCommit::ServerDefault,
              DurableGate durable_gate = {});
  ~WriterLanes();
  WriterLanes(const WriterLanes&) = delete;
  WriterLanes& operator=(const WriterLanes&) = delete;

  // Hands `events` (non-empty, continuing the previous batch) to the next lane; blocks while that
  // lane is still busy with its previous batch. `follows`: where the stored checkpoint must be
  // when the batch advances it (IngestCheckpoint::follows: the previous batch's end; unset: not
  // checked). A batch that finds it elsewhere fails (CheckpointConflict), unless a batch before
  // it failed: then it rolls back behind that one, as always.
  void submit(std::vector<QueuedEvent> events, DuplicateProbe probe, std::optional<std::int64_t> follows = std::nullopt);
  // Hands one event to the next lane, to be stored in pm_dead_letters with `refusal` (the server's
  // error for it) instead of being applied; otherwise like submit().
  void submit_dead_letter(QueuedEvent event, TxFailure refusal, std::optional<std::int64_t> follows = std::nullopt);
  // Finished batches in submission order, starting with the oldest not yet taken. With
  // `wait_for_all` it first waits until nothing is in flight; otherwise it does not block.
  std::vector<FinishedBatch> take_finished(bool wait_for_all);
  std::size_t in_flight() const { return submitted_ - taken_; }
  // True when submit() would not wait: the lane the next batch goes to is idle.
  bool next_lane_free();
  // When the oldest batch not yet taken was submitted (nullopt when there is none): the writer's
  // liveness is judged by it, since a lane stuck in PostgreSQL does not stop the writer's loop.
  std::optional<std::chrono::steady_clock::time_point> oldest_submitted() const;
  // After a failure was handled: forget it and start a new sequence. Nothing may be in flight.
  void restart();

 private:
  struct Job {
    std::uint64_t seq = 0;
    std::shared_ptr<const LaneBatch> batch;
    std::vector<std::shared_ptr<const LaneBatch>> earlier;  // uncommitted batches before it
    DuplicateProbe probe = DuplicateProbe::OnConflict;
    std::optional<TxFailure> dead_letter;  // set: store the one event as a dead letter
  };
  void hand_over(Job job);
  std::optional<BatchCounts> run_body(pqxx::dbtransaction& tx, const Job& job, BatchPhases& phases);
  struct Lane {
    std::thread thread;
    std::optional<Job> job;  // guarded by mu_
  };
  void run_lane(Lane& lane);
  FinishedBatch run_job(const Job& job);

  Database& db_;
  const BatchApplier& applier_;
  const std::function<void()> on_finished_;
  const std::int32_t lock_class_;       // first key of the batches' advisory turn locks
  const SynchronousCommit commit_;
  const DurableGate durable_gate_;
  CommitOrder order_;
  std::vector<std::unique_ptr<Lane>> lanes_;

  std::mutex mu_;
  std::condition_variable changed_;
  bool stopping_ = false;
  std::map<std::uint64_t, FinishedBatch> finished_;  // by seq, guarded by mu_

  // Writer thread only.
  std::uint64_t first_seq_ = 1;  // seq of the first batch since restart()
  std::uint64_t submitted_ = 0;  // batches submitted since restart()
  std::uint64_t taken_ = 0;      // batches taken since restart()
  std::deque<std::shared_ptr<const LaneBatch>> uncollected_;
  std::deque<std::chrono::steady_clock::time_point> submit_times_;  // of uncollected_
};

}  // namespace pm
