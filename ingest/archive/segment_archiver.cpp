#include "ingest/archive/segment_archiver.h"

#include <algorithm>

#include <fmt/format.h>

#include "ingest/archive/archive_writer.h"
#include "ingest/log/wal_corruption.h"
#include "repos/util/clock.h"

namespace pm::archive {

SegmentArchiver::SegmentArchiver(ArchiverConfig config, IngestMetrics& metrics, std::shared_ptr<spdlog::logger> logger)
    : config_(std::move(config)), fs_(wal::posix_log_fs()), metrics_(metrics), logger_(std::move(logger)) {}

SegmentArchiver::~SegmentArchiver() { stop(); }

bool SegmentArchiver::may_remove(const wal::LogId& log_id, std::uint64_t segment) const {
  return is_archived(fs_, config_.dir, log_id, segment);
}

void SegmentArchiver::start(wal::WriteAheadLog& log) {
  log_ = &log;
  if (const std::error_code ec = fs_.create_dir(config_.dir))
    throw ArchiveWriteError(ec, "cannot create the archive directory " + config_.dir);
  remove_partial_archives(fs_, config_.dir);
  index_ = ArchiveIndex::load(fs_, config_.dir, [this](const std::string& file, const std::string& problem) {
    logger_->error("archive file {} is damaged ({}); it is left alone and not listed", file, problem);
  });
  // Segments below the applied position at open were kept by recovery because they were not archived.
  released_before_ = log.applied_at_open().segment;
  publish_gauges();
  thread_ = std::thread([this] { run(); });
}

void SegmentArchiver::release_before(std::uint64_t segment) {
  if (segment <= released_before_.load()) return;
  released_before_ = segment;
  publish_pending();
  {
    std::lock_guard lock(mu_);
    released_ = true;
  }
  wake_.notify_one();
}

std::uint64_t SegmentArchiver::kept_from_log_offset() const { return kept_from_log_offset_.load(std::memory_order_relaxed); }

void SegmentArchiver::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void SegmentArchiver::run() {
  std::chrono::milliseconds backoff{0};
  for (;;) {
    wait_for_work(backoff);
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    const std::optional<std::uint64_t> segment = next_segment();
    if (!segment) {
      backoff = std::chrono::milliseconds{0};
      continue;
    }
    if (archive_and_remove(*segment))
      backoff = std::chrono::milliseconds{0};
    else
      backoff = std::clamp(backoff * 2, config_.retry_initial, config_.retry_max);
    publish_gauges();
  }
}

// Returns at once while released segments remain and the last attempt succeeded; otherwise sleeps
// until release_before() or stop(), or until the backoff after a failure has passed.
void SegmentArchiver::wait_for_work(std::chrono::milliseconds backoff) {
  std::unique_lock lock(mu_);
  if (backoff.count() == 0 && next_segment()) return;
  const auto woken = [this] { return stopping_ || released_; };
  if (backoff.count() > 0)
    wake_.wait_for(lock, backoff, [this] { return stopping_; });
  else
    wake_.wait_for(lock, std::chrono::seconds(1), woken);  // the timeout also retries a refused removal
  released_ = false;
}

std::optional<std::uint64_t> SegmentArchiver::next_segment() const {
  const std::uint64_t oldest = log_->oldest().segment;
  if (oldest >= released_before_.load() || oldest >= log_->durable().segment) return std::nullopt;
  return oldest;
}

bool SegmentArchiver::archive_and_remove(std::uint64_t segment) {
  try {
    archive_into_index(segment);
    log_->remove_segments_before(segment + 1);
    apply_retention();
  } catch (const ArchiveWriteError& e) {
    report_failure(fmt::format("cannot archive log segment {}: {}; the live segment is kept and archiving is retried",
                               wal::segment_file_name(segment), e.what()));
    return false;
  } catch (const wal::WalCorruption& e) {
    report_failure(fmt::format("cannot archive log segment {}: {}; it is kept in the live log (pm-ingestctl wal-verify)",
                               wal::segment_file_name(segment), e.what()));
    return false;
  }
  return log_->oldest().segment > segment;  // the log refuses (and says why) while its state lags
}

void SegmentArchiver::archive_into_index(std::uint64_t segment) {
  const auto& entries = index_->entries();
  const bool listed = std::any_of(entries.begin(), entries.end(), [&](const ArchiveEntry& e) { return e.segment == segment; });
  if (listed && is_archived(fs_, config_.dir, log_->log_id(), segment)) return;  // archived before a restart
  const ArchiveEntry entry = archive_segment(fs_, log_->dir(), segment, config_.dir, config_.compression_level);
  if (!listed) index_->add(entry);
  metrics_.archived_segments.Increment();
  metrics_.archived_bytes.Increment(static_cast<double>(entry.segment_bytes));
  logger_->debug("archived log segment {}: lsn {}..{}, {} events, {} -> {} bytes", wal::segment_file_name(segment),
                 entry.first_lsn, entry.last_lsn, entry.events(), entry.segment_bytes, entry.file_bytes);
}

void SegmentArchiver::apply_retention() {
  if (config_.max_bytes == 0 && config_.max_age.count() == 0) return;
  const auto removed = apply_archive_retention(fs_, *index_, config_.max_bytes, config_.max_age.count() * 1000, now_epoch_ms());
  metrics_.archive_removed_segments.Increment(static_cast<double>(removed.size()));
  for (const ArchiveEntry& e : removed)
    logger_->info("archive retention removed {} (lsn {}..{}, events arrived until {} ms)", archive_file_name(e.segment),
                  e.first_lsn, e.last_lsn, e.last_arrival_ms);
}

void SegmentArchiver::publish_gauges() {
  const auto& entries = index_->entries();
  metrics_.archive_segments.Set(static_cast<double>(entries.size()));
  metrics_.archive_bytes.Set(static_cast<double>(index_->total_file_bytes()));
  const auto oldest = std::find_if(entries.begin(), entries.end(), [](const ArchiveEntry& e) { return e.events() > 0; });
  metrics_.archive_oldest_event_timestamp_seconds.Set(oldest == entries.end() ? 0.0 : static_cast<double>(oldest->first_arrival_ms) / 1000.0);
  publish_pending();
}

void SegmentArchiver::publish_pending() {
  const wal::Position oldest = log_->oldest();
  const std::uint64_t released = std::min(released_before_.load(), log_->durable().segment);
  kept_from_log_offset_ = oldest.segment < released ? oldest.log_offset : UINT64_MAX;
  metrics_.archive_pending_segments.Set(released > oldest.segment ? static_cast<double>(released - oldest.segment) : 0.0);
}

void SegmentArchiver::report_failure(const std::string& message) {
  metrics_.archive_errors.Increment();
  const auto now = std::chrono::steady_clock::now();
  if (last_report_ != std::chrono::steady_clock::time_point{} && now - last_report_ < std::chrono::minutes(1)) return;
  last_report_ = now;
  logger_->error("{}", message);
}

}  // namespace pm::archive
