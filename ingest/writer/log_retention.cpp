#include "ingest/writer/log_retention.h"

#include <algorithm>
#include <limits>

#include <fmt/format.h>

#include "ingest/writer/ingest_checkpoint_repository.h"

namespace pm {

namespace {
using Clock = std::chrono::steady_clock;
constexpr const char* kStandbyMessage =
    "the database server is a standby (in recovery): nothing is written there; waiting for a primary "
    "(a multi-host URL with target_session_attrs=read-write finds it)";
}

LogRetention::LogRetention(RetentionConfig config, Database& db, wal::WriteAheadLog& log, IngestMetrics& metrics,
                           std::shared_ptr<spdlog::logger> logger)
    : config_(config), db_(db), log_(log), metrics_(metrics), logger_(std::move(logger)) {}

bool LogRetention::waits() const {
  return config_.wait_for_standbys || config_.batch_commits == SynchronousCommit::Off;
}

void LogRetention::applied(const wal::Position& position) {
  if (position.segment <= requested_) return;
  if (!waits()) {
    awaiting_.push_back({position, 0});
    requested_ = position.segment;
    return;
  }
  // Before anything can note `position`: the state file records nothing beyond what the standbys
  // confirmed (the oldest segment when nothing is confirmed since the last look at a server).
  if (awaiting_.empty()) log_.hold_applied_at(confirmed_ ? *confirmed_ : log_.oldest());
  const ReplicationStatus status = read_status();
  // A commit that waited for its flush (ServerDefault never lets a batch commit with off) is
  // covered by the flushed position (later records of other sessions need not be waited for); one
  // that did not, by the end of the last record.
  const bool commit_flushed = config_.batch_commits == SynchronousCommit::ServerDefault;
  awaiting_.push_back({position, commit_flushed ? status.flushed_lsn : status.last_record_end});
  requested_ = position.segment;
  last_check_ = {};  // the next check() looks at once (the log has noted `position` by then)
}

void LogRetention::check(bool force) {
  if (!waits() && !awaiting_.empty()) {
    release_before(awaiting_.back().applied.segment);
    awaiting_.clear();
  }
  if (!force && (awaiting_.empty() || Clock::now() - last_check_ < config_.check_interval)) return;
  const ReplicationStatus status = read_status();
  report(status, config_.wait_for_standbys ? status.confirmed_lsn() : std::optional<std::uint64_t>(status.flushed_lsn));
}

void LogRetention::flush_and_check() {
  if (awaiting_.empty()) return;
  // A transaction that wrote no WAL commits without flushing whatever synchronous_commit says: the
  // message (one small WAL record, nothing stored in a table) makes its COMMIT flush.
  db_.transaction(
      [](pqxx::work& tx) {
        tx.exec0("SET LOCAL synchronous_commit = on");
        tx.exec1("SELECT pg_logical_emit_message(true, 'pm-ingestd', 'flush')");
        return 0;
      },
      kKeepSession);  // SET LOCAL ends with its transaction
  check(true);
}

void LogRetention::forget() {
  awaiting_.clear();
  confirmed_.reset();
  requested_ = 0;
  timeline_ = 0;
  if (waits()) log_.hold_applied_at(log_.oldest());
}

ReplicationStatus LogRetention::read_status() {
  ReplicationStatus status = db_.transaction([](pqxx::work& tx) { return read_replication_status(tx); }, kKeepSession);
  last_check_ = Clock::now();
  if (status.in_recovery) throw NotAPrimary(kStandbyMessage);
  if (timeline_ != 0 && status.timeline != timeline_) {
    const std::uint32_t was = timeline_;
    forget();
    throw PrimaryChanged(fmt::format("the primary is on timeline {} now, was {} (a promotion): reading the checkpoint again",
                                     status.timeline, was));
  }
  timeline_ = status.timeline;
  return status;
}

void LogRetention::report(const ReplicationStatus& status, const std::optional<std::uint64_t>& confirmed_lsn) {
  std::optional<std::uint64_t> confirmed = confirmed_lsn;
  if (status.standbys.size() < config_.min_standbys) {
    warn_at_most_each_minute(fmt::format("the primary shows {} standby(s), fewer than --min-standbys {}: applied log "
                                         "segments are kept until it shows them",
                                         status.standbys.size(), config_.min_standbys));
    confirmed.reset();
  } else if (!confirmed) {
    warn_at_most_each_minute("applied log segments are kept: the primary does not show how far " +
                             status.unknown_positions() +
                             " has replicated (a slot never used, or the daemon's role lacks pg_monitor)");
  }
  std::optional<wal::Position> confirmed_applied;
  std::size_t confirmed_count = 0;
  while (confirmed && confirmed_count < awaiting_.size() && awaiting_[confirmed_count].lsn <= *confirmed)
    confirmed_applied = awaiting_[confirmed_count++].applied;
  if (confirmed_applied) {
    require_checkpoint_at(*confirmed_applied);
    awaiting_.erase(awaiting_.begin(), awaiting_.begin() + static_cast<std::ptrdiff_t>(confirmed_count));
    // The hold moves up to what is confirmed (or goes) before the log records and deletes.
    confirmed_ = confirmed_applied;
    log_.hold_applied_at(awaiting_.empty() ? std::nullopt : confirmed_applied);
    release_before(confirmed_applied->segment);
  }
  metrics_.replication_standbys.Set(static_cast<double>(status.standbys.size()));
  // Unknown (too few standbys shown, or positions the role cannot see): NaN, not the last value.
  metrics_.replication_lag_bytes.Set(confirmed ? static_cast<double>(status.current_lsn - std::min(status.current_lsn, *confirmed))
                                               : std::numeric_limits<double>::quiet_NaN());
  // From the last confirmed segment: applied segments below it that are still there wait for
  // the archive (pm_ingest_archive_pending_segments), not for a standby. Segments whose commits the
  // primary has not flushed yet (synchronous_commit off) wait for it, a moment, not for a standby.
  const std::uint64_t oldest = std::max(log_.oldest().segment, confirmed_ ? confirmed_->segment : 0);
  std::uint64_t held_for_standbys = oldest;
  for (const Awaiting& a : awaiting_)
    if (a.lsn <= status.flushed_lsn) held_for_standbys = std::max(held_for_standbys, a.applied.segment);
  metrics_.wal_segments_awaiting_replication.Set(static_cast<double>(held_for_standbys - oldest));
}

// Throws PrimaryChanged (after forget()) when the stored checkpoint has not reached `applied`: the
// commit that applied it is gone, whatever the server's WAL positions say. Nothing to check when
// no segment would go (`applied` is in the oldest one: e.g. the log's start, with no row yet).
void LogRetention::require_checkpoint_at(const wal::Position& applied) {
  if (applied.segment <= log_.oldest().segment) return;
  const std::optional<IngestCheckpoint> stored = IngestCheckpointRepository(db_).get(config_.instance_id);
  const std::uint64_t stored_lsn = stored ? static_cast<std::uint64_t>(stored->lsn) : 0;
  if (stored_lsn >= applied.lsn) return;
  forget();
  throw PrimaryChanged(fmt::format(
      "the checkpoint of instance '{}' in PostgreSQL is at lsn {}, behind lsn {} applied before: the server lost "
      "commits (a crash or a restore its sessions did not show); keeping the log's segments and reading the "
      "checkpoint again",
      config_.instance_id, stored_lsn, applied.lsn));
}

void LogRetention::release_before(std::uint64_t segment) {
  if (config_.release_before)
    config_.release_before(segment);
  else
    log_.remove_segments_before(segment);
}

void LogRetention::warn_at_most_each_minute(const std::string& message) {
  const auto now = Clock::now();
  if (last_warning_ != Clock::time_point{} && now - last_warning_ < std::chrono::minutes(1)) return;
  last_warning_ = now;
  logger_->warn("{}", message);
}

}  // namespace pm
