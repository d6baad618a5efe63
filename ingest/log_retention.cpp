#include "ingest/log_retention.h"

#include <fmt/format.h>

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

void LogRetention::applied_before(std::uint64_t segment) {
  if (segment <= requested_) return;
  requested_ = segment;
  if (!config_.wait_for_standbys) {
    log_.remove_segments_before(segment);
    return;
  }
  const ReplicationStatus status = db_.transaction([](pqxx::work& tx) { return read_replication_status(tx); });
  if (status.in_recovery) throw NotAPrimary(kStandbyMessage);
  awaiting_.push_back({segment, status.current_lsn});
  last_check_ = Clock::now();
  report(status, status.confirmed_lsn());
}

void LogRetention::check(bool force) {
  if (!force && (awaiting_.empty() || Clock::now() - last_check_ < config_.check_interval)) return;
  const ReplicationStatus status = db_.transaction([](pqxx::work& tx) { return read_replication_status(tx); });
  last_check_ = Clock::now();
  if (status.in_recovery) throw NotAPrimary(kStandbyMessage);
  report(status, status.confirmed_lsn());
}

void LogRetention::forget() {
  awaiting_.clear();
  requested_ = 0;
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
  std::uint64_t remove_before = 0;
  while (confirmed && !awaiting_.empty() && awaiting_.front().lsn <= *confirmed) {
    remove_before = awaiting_.front().segment;
    awaiting_.pop_front();
  }
  if (remove_before > 0) log_.remove_segments_before(remove_before);
  metrics_.replication_standbys.Set(static_cast<double>(status.standbys.size()));
  if (confirmed) metrics_.replication_lag_bytes.Set(static_cast<double>(status.current_lsn - std::min(status.current_lsn, *confirmed)));
  const std::uint64_t oldest = log_.oldest().segment;
  metrics_.wal_segments_awaiting_replication.Set(
      awaiting_.empty() || awaiting_.back().segment <= oldest ? 0.0 : static_cast<double>(awaiting_.back().segment - oldest));
}

void LogRetention::warn_at_most_each_minute(const std::string& message) {
  const auto now = Clock::now();
  if (last_warning_ != Clock::time_point{} && now - last_warning_ < std::chrono::minutes(1)) return;
  last_warning_ = now;
  logger_->warn("{}", message);
}

}  // namespace pm
