#pragma once
// LogRetention: when an applied log segment may be deleted. Committed on the primary is not
// enough: with asynchronous replication a commit can be lost in a failover, and with
// synchronous_commit = off in a PostgreSQL crash; then the log is the only copy of those
// acknowledged events. A segment is deleted only once the primary's WAL position after the commit
// that applied it is flushed on the primary and on every standby the primary knows (replication
// slots and WAL senders, repos/replication_status.h).
//
// Contract:
// - Writer thread only. Database errors propagate to the caller (the writer's retry loop), and
//   NotAPrimary when the server is a standby: nothing may be written there.
// - applied(p): everything before position p is applied (committed). When p's segment moves past
//   the last request, asks the primary for its WAL position now (one query) and queues the
//   removal of the segments before p's. Call it before the log notes p as applied: while removals
//   wait, the log's state file records no applied position beyond the last confirmed one
//   (WriteAheadLog::hold_applied_at), or a restart's recovery would delete the waiting segments.
//   The position waited for is the end of the last WAL record (the commit did not wait for its
//   flush: batch_commits Off, or the session's synchronous_commit is off) or the flushed position
//   (it did: the insert position may stay ahead of every flush on an idle server).
// - check(force): removes what is queued and confirmed; reads the positions at once after
//   applied() queued something, then at most every check_interval (always when force).
//   Call it after the log has noted the applied position (it refuses to delete beyond that).
// - flush_and_check(): at shutdown, with segments waiting: makes the primary flush its WAL (a
//   transaction that writes a WAL message, committed with synchronous_commit = on, flushes
//   everything before its commit record), then check(true); the log can then record those segments as
//   applied. Standbys still confirm on their own. Errors propagate (the segments stay held).
// - forget(): after a reconnect the queued positions belong to a server that may be gone; the
//   writer re-reads its checkpoint and calls applied() again. Until then nothing beyond the
//   oldest segment is recorded as applied.
// - A primary on another timeline than the queued positions (promoted without the writer seeing
//   an error) throws PrimaryChanged: the writer reconnects and re-reads its checkpoint.
// - Before a confirmed position lets any segment go, the instance's checkpoint row is read: it
//   must have reached that position. A crash-restart keeps the timeline, and behind a proxy that
//   hides it from the sessions nothing else would show it; the restarted server's WAL soon passes
//   the positions queued before the crash, which would then "confirm" commits the crash lost. A
//   row behind the position throws PrimaryChanged after forget(), so nothing goes and the writer
//   re-reads its checkpoint. (A batch committed after the crash cannot move the row over the lost
//   ones meanwhile: its save advances the row only from where the batch before left it.)
// - wait_for_standbys = false: only the primary's own flush is waited for, and only when batch
//   commits do not wait for it (Off); with ServerDefault segments are deleted at once, as before
//   (a single server whose role does not set synchronous_commit = off).
// - min_standbys: fewer visible standbys than this confirm nothing (a standby without a slot
//   that is disconnected is invisible to the primary).
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include <spdlog/logger.h>

#include "ingest/log/wal.h"
#include "ingest/writer/synchronous_commit.h"
#include "metrics/ingest_metrics.h"
#include "repos/database.h"
#include "repos/replication_status.h"

namespace pm {

struct RetentionConfig {
  // What happens to applied, confirmed segments below a segment: null deletes them from the live
  // log at once, on the writer thread; the daemon passes SegmentRemover::release_before (deleted on
  // its thread) or, with an archive, SegmentArchiver::release_before (archived first, its thread).
  std::function<void(std::uint64_t segment)> release_before;
  bool wait_for_standbys = true;
  SynchronousCommit batch_commits = SynchronousCommit::ServerDefault;  // as the writer's lanes commit
  std::size_t min_standbys = 0;
  std::chrono::milliseconds check_interval{500};
  std::string instance_id = "default";  // whose checkpoint row must cover what is released
};

class NotAPrimary : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class PrimaryChanged : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class LogRetention {
 public:
  LogRetention(RetentionConfig config, Database& db, wal::WriteAheadLog& log, IngestMetrics& metrics,
               std::shared_ptr<spdlog::logger> logger);

  void applied(const wal::Position& position);
  void check(bool force);
  void flush_and_check();
  void forget();
  // Segments applied but kept until the standbys have them.
  std::size_t awaiting() const { return awaiting_.size(); }

 private:
  struct Awaiting {
    wal::Position applied;  // remove every segment before applied.segment
    std::uint64_t lsn;      // once every standby has flushed this position (flushed on the primary)
  };
  // True when segments wait for a position to be confirmed (by standbys or the primary's flush).
  bool waits() const;
  ReplicationStatus read_status();
  void report(const ReplicationStatus& status, const std::optional<std::uint64_t>& confirmed);
  void require_checkpoint_at(const wal::Position& applied);
  void warn_at_most_each_minute(const std::string& message);
  void release_before(std::uint64_t segment);

  const RetentionConfig config_;
  Database& db_;
  wal::WriteAheadLog& log_;
  IngestMetrics& metrics_;
  std::shared_ptr<spdlog::logger> logger_;
  std::deque<Awaiting> awaiting_;
  std::uint64_t requested_ = 0;  // the highest segment whose removal was queued
  std::uint32_t timeline_ = 0;   // of the queued positions (0: none seen since forget())
  std::optional<wal::Position> confirmed_;  // the last applied position the standbys confirmed (since forget())
  std::chrono::steady_clock::time_point last_check_{};
  std::chrono::steady_clock::time_point last_warning_{};
};

}  // namespace pm
