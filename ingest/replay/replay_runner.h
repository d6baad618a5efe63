#pragma once
// ReplayRunner: the engine of `pm-ingestctl replay`. It applies the events of archived and/or live
// log segments (archive::SegmentChain) to a database with the daemon's own batch transaction:
// COPY of the trades, G2 trigger claims, watermarks with GREATEST, and a checkpoint under its own
// instance id in the same transaction (BatchApplier through WriterLanes, commits in LSN order). So
// it is exactly once: it resumes after its checkpoint (after a kill -9 too), and running it again
// over the same events changes nothing.
//
// Contract:
// - Events are applied in LSN order from max(from_lsn, checkpoint + 1) up to to_lsn; with until_ms
//   only the events that arrived (their received time) before that instant. The checkpoint covers
//   the events a run passed over: resume a run with the same bounds; use another instance id for
//   other bounds. A from_lsn above an existing checkpoint + 1 is a ReplayError: the checkpoint
//   would pass over events it never applied.
// - The instance's checkpoint must belong to the sources' log (same log id), and the database must
//   have every bundled migration (pm-ingestctl migrate): otherwise ReplayError, nothing applied.
// - A COMMIT in doubt that lands only after the next pass read the checkpoint (held by a synchronous
//   standby while the connection was cut) makes that pass's copy of its events find the checkpoint
//   past them (CheckpointConflict): the checkpoint is read again (a retry), and shows it applied.
// - A batch PostgreSQL refuses for a value (DataError) is applied again in halves, each refused half
//   halved again, down to the refused event, which goes to pm_dead_letters, as the daemon does: a
//   refused event in a batch of n costs about 2 log2(n) transactions, not n. A lost connection,
//   another transient failure or a COMMIT in doubt is retried after a backoff from the checkpoint,
//   for at most retry_for without progress (events applied or dead-lettered); then, and for any
//   other error (a dead letter PostgreSQL refuses to store included), ReplayError with its message.
//   A batch whose COMMIT reply was lost and that the next checkpoint read shows committed counts as
//   applied (trades_unseen, triggers_unseen: whether each was new is unknown); a dead letter whose
//   store had its reply lost counts as dead-lettered once the checkpoint shows it.
// - Damage in the sources throws archive::ArchiveDamage or wal::WalCorruption (file and offset),
//   unless skip_damaged: then each skipped range is in the stats and reported through on_skip.
//   Sources that begin after the first LSN to apply (an archive trimmed by retention) count as
//   damage too, also when they begin past to_lsn (nothing asked for is left). What was read
//   before the damage is applied first: a batch of it that fails is handled as any failed batch,
//   the damage met again after it; so a failure that ends the run
//   there (a ReplayError: PostgreSQL's refusal, retry_for spent) is what it reports, and the
//   damage shows at the next run. A skipped range is recorded in
//   pm_dead_letters (event_type 'skipped', log_id the sources' log, lsn its first, error what was
//   skipped and why) before the checkpoint can pass it, and every run of the instance reports the
//   ones earlier runs recorded for the same log, or for no recorded log (rows older than
//   seed/08_dead_letters_log_id.sql) (stats.skipped_earlier): a run resumed past the damage (after
//   a kill, or run again) used to say nothing of it. A failure to store that row is handled as a
//   failed batch's: a lost connection or another transient failure is retried from the
//   checkpoint (within the same retry_for), anything else is a ReplayError naming the range.
// - Dead letters (refused events and skipped ranges) are keyed by (instance id, log id, lsn); one
//   of the same key stored before is kept as it is.
// - A live log a running daemon holds is read only up to what it had synced (SegmentChain's live
//   limit); stats.held_back says where reading stopped. A later run resumes there.
// - dry_run (run(nullptr)): no database; every record is read, checked, decoded and counted.
// - on_progress runs on the calling thread after each batch and once at the end.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "ingest/archive/segment_chain.h"
#include "ingest/events/event_queue.h"
#include "repos/database.h"
#include "repos/timestamp_unit.h"
#include "repos/tx_result.h"

namespace pm {

class WriterLanes;
struct LaneBatch;

class ReplayError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ReplayOptions {
  std::vector<std::string> sources;
  std::string instance_id = "replay";
  std::uint64_t from_lsn = 1;
  std::uint64_t to_lsn = UINT64_MAX;
  std::optional<std::int64_t> until_ms;  // arrival time bound (exclusive), epoch ms
  bool skip_damaged = false;
  std::size_t batch_max_events = 20000;
  std::size_t connections = 2;
  TimestampUnit trade_timestamp_unit = TimestampUnit::Milliseconds;
  std::chrono::seconds retry_for{60};
};

struct ReplayStats {
  std::string log_id;
  std::uint64_t resumed_after_lsn = 0;  // the checkpoint found at the start (0: none)
  std::uint64_t read = 0;               // event records read
  std::uint64_t after_until = 0;        // passed over: arrived at or after --until
  std::uint64_t applied = 0;            // events in committed batches (dry run: would be applied)
  std::uint64_t trades = 0;
  std::uint64_t trades_inserted = 0;
  std::uint64_t triggers = 0;
  std::uint64_t triggers_recorded = 0;
  std::uint64_t dead_lettered = 0;
  // Of trades and triggers: those of batches whose COMMIT reply was lost and that the checkpoint
  // read next showed committed (counted as applied; whether each was new is unknown).
  std::uint64_t trades_unseen = 0;
  std::uint64_t triggers_unseen = 0;
  std::uint64_t first_lsn = 0;  // of the events applied (or counted, dry run)
  std::uint64_t last_lsn = 0;
  std::uint64_t bytes_done = 0;
  std::uint64_t total_bytes = 0;
  double seconds = 0;
  std::vector<archive::SkippedRange> skipped;
  // Ranges earlier runs of this instance skipped in this log (their pm_dead_letters text), not met
  // by this one.
  std::vector<std::string> skipped_earlier;
  // Set when reading stopped at a running daemon's live log's synced bound (segment_chain.h): the
  // events after it are left for a later run.
  std::optional<archive::LiveLimit> held_back;
};

class ReplayRunner {
 public:
  ReplayRunner(ReplayOptions options, std::function<void(const ReplayStats&)> on_progress = {},
               std::function<void(const archive::SkippedRange&)> on_skip = {});
  // Applies to `db`, or only reads and counts when db is null (dry run). Throws ReplayError,
  // archive::ArchiveDamage, archive::ChainError, wal::WalCorruption.
  ReplayStats run(Database* db);

 private:
  struct Pass;
  struct Failure;
  // While a refused event is looked for: the events up to `through` go in batches of at most
  // `batch_events`, none reaching past `through` (none at all when through is 0).
  struct Isolation {
    std::uint64_t through = 0;
    std::size_t batch_events = 0;
  };
  void dry_run(archive::SegmentChain& chain);
  void replay(archive::SegmentChain& chain, Database& db);
  void replay_passes(archive::SegmentChain& chain, Database& db);
  std::optional<Failure> attempt(archive::SegmentChain& chain, Database& db, WriterLanes& lanes, const Isolation& isolation);
  void check_sources_reach(const archive::SegmentChain& chain, std::uint64_t start);
  std::string where_the_sources_start(std::uint64_t first_lsn) const;
  void start_chain(archive::SegmentChain& chain, std::uint64_t start_lsn);
  void note_skipped(const archive::SkippedRange& range);
  void record_skipped(const archive::SkippedRange& range);
  void report_skipped_earlier(Database& db);
  std::optional<QueuedEvent> next_event(archive::SegmentChain& chain);
  std::optional<Failure> dead_letter(WriterLanes& lanes, const QueuedEvent& event, const TxFailure& refusal);
  std::uint64_t resume_point(Database& db);
  void count_committed_unseen(std::uint64_t checkpoint_lsn);
  void report();

  const ReplayOptions options_;
  std::function<void(const ReplayStats&)> on_progress_;
  std::function<void(const archive::SkippedRange&)> on_skip_;
  ReplayStats stats_;
  std::chrono::steady_clock::time_point started_;
  std::uint64_t highest_read_ = 0;  // counts each record once over several passes
  bool checkpoint_read_ = false;    // the first pass read the checkpoint (resumed_after_lsn is set)
  // Batches whose COMMIT outcome is unknown (InDoubt) that no checkpoint read has shown committed
  // yet, and the lsn of such a dead letter: one may still land (a synchronous standby held it), and
  // the pass applying those events again then finds the checkpoint past it. Every checkpoint read
  // counts those it shows; all are forgotten once a later batch commits (it covered them).
  std::vector<std::shared_ptr<const LaneBatch>> in_doubt_;
  std::optional<std::uint64_t> dead_letter_in_doubt_;
  // Every event up to this lsn is counted in stats_ (applied or dead-lettered): a commit in doubt
  // shown committed counts only its events above it (two copies of one range may both land).
  std::uint64_t counted_through_ = 0;
  void forget_doubt();
  bool overlaps_doubt(const LaneBatch& batch) const;
  void count_unseen(const LaneBatch& batch);
  Database* db_ = nullptr;  // while replay() runs: where skipped ranges are recorded
};

}  // namespace pm
