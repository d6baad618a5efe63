#include "ingest/archive/segment_archiver.h"

#include <unistd.h>

#include <algorithm>

#include <fmt/format.h>

#include "ingest/archive/archive_file_io.h"
#include "ingest/archive/archive_writer.h"
#include "ingest/log/wal_corruption.h"
#include "ingest/log/wal_newer_format.h"
#include "repos/util/clock.h"
#include "repos/util/thread_name.h"

namespace pm::archive {

namespace {
using Clock = std::chrono::steady_clock;
}

SegmentArchiver::SegmentArchiver(ArchiverConfig config, IngestMetrics& metrics, std::shared_ptr<spdlog::logger> logger)
    : config_(std::move(config)), fs_(config_.fs != nullptr ? *config_.fs : wal::posix_log_fs()), metrics_(metrics), logger_(std::move(logger)) {}

SegmentArchiver::~SegmentArchiver() { stop(); }

std::string SegmentArchiver::open_directory() {
  if (const std::error_code ec = fs_.create_dir(config_.dir)) return ec.message();
  if (!lock_) {
    const std::string lock_path = path_in_dir(config_.dir, kArchiveLockFileName);
    const std::error_code ec = fs_.lock(lock_path, "pid " + std::to_string(::getpid()), lock_);
    if (ec == std::errc::resource_unavailable_try_again) {
      const std::string owner = fs_.lock_owner(lock_path);
      locked_by_ = owner.empty() ? "another process" : owner;
      return "in use by another pm-ingestd (" + locked_by_ + ")";
    }
    if (ec) return "cannot lock " + lock_path + ": " + ec.message();
    locked_by_.clear();
  }
  if (const std::error_code ec = fs_.sync_dir(config_.dir)) return ec.message();
  dir_ready_ = true;
  return "";
}

void SegmentArchiver::prepare() {
  const std::string problem = open_directory();
  refuse_if_locked();
  if (!problem.empty())
    logger_->error("cannot use the archive directory {} ({}); applied log segments are kept in the live log until it works",
                   config_.dir, problem);
}

bool SegmentArchiver::may_remove(const wal::LogId& log_id, std::uint64_t segment) const {
  return dir_ready_.load() && is_archived(fs_, config_.dir, log_id, segment);
}

void SegmentArchiver::refuse_another_log(const ArchiveIndex& index) const {
  for (const ArchiveEntry& e : index.entries())
    if (e.log_id != log_->log_id())
      throw ArchiveForeignLog(fmt::format("the archive directory {} holds log {} (segment {}), this log is {}: give each log an "
                                          "archive directory of its own (move the old archive away, or point --archive-dir elsewhere)",
                                          config_.dir, wal::log_id_hex(e.log_id), archive_file_name(e.segment),
                                          wal::log_id_hex(log_->log_id())));
}

void SegmentArchiver::refuse_if_locked() const {
  if (!locked_by_.empty())
    throw ArchiveForeignLog(fmt::format("the archive directory {} is in use by another pm-ingestd ({}): give each daemon an "
                                        "archive directory of its own (point --archive-dir elsewhere)",
                                        config_.dir, locked_by_));
}

void SegmentArchiver::start(wal::WriteAheadLog& log) {
  log_ = &log;
  refuse_if_locked();
  try {
    refuse_another_log(ArchiveIndex::read(fs_, config_.dir, {}));
  } catch (const ArchiveForeignLog&) {
    throw;
  } catch (const wal::WalNewerFormat&) {  // the index would be rebuilt without it: not this build's archive
    throw;
  } catch (const std::exception& e) {
    logger_->warn("cannot read the archive directory {} yet ({}); retrying in the background", config_.dir, e.what());
  }
  // Segments below the applied position at open were kept by recovery because they were not archived.
  released_before_ = log.applied_at_open().segment;
  thread_ = std::thread([this] { run(); });
}

void SegmentArchiver::release_before(std::uint64_t segment) {
  if (segment <= released_before_.load()) return;
  released_before_ = segment;
  // Counted at once: the archiver thread may be waiting out a retry's backoff (up to retry_max),
  // and meanwhile the released segments, still in the live log, would count against nothing.
  if (log_ != nullptr) refresh_kept_from();
  {
    std::lock_guard lock(mu_);
    released_ = true;
  }
  wake_.notify_one();
}

void SegmentArchiver::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

bool SegmentArchiver::stopping() {
  std::lock_guard lock(mu_);
  return stopping_;
}

void SegmentArchiver::run() {
  name_this_thread("pm-archiver");
  std::chrono::milliseconds backoff{0};
  Outcome last = Outcome::Done;
  while (!stopping()) {
    publish_gauges();
    const std::optional<std::uint64_t> segment = next_segment();
    if ((!index_ || !dir_ready_) && !load_index())
      last = Outcome::Failed;
    else if (segment)
      last = archive_and_remove(*segment);
    else
      last = idle();
    backoff = last == Outcome::Failed ? std::clamp(backoff * 2, config_.retry_initial, config_.retry_max) : std::chrono::milliseconds{0};
    wait_for_work(last, backoff);
  }
}

bool SegmentArchiver::load_index() {
  try {
    if (!dir_ready_) {
      if (const std::string problem = open_directory(); !problem.empty()) {
        report_failure(fmt::format("cannot use the archive directory {} ({}); applied log segments are kept in the live log "
                                   "until it works; retrying",
                                   config_.dir, problem));
        return false;
      }
    }
    // Again here, before anything in the directory changes: start() could not read it when it did
    // not exist yet, or was unreadable, and another log's partial files and index are not ours.
    refuse_another_log(ArchiveIndex::read(fs_, config_.dir, {}));
    remove_partial_archives(fs_, config_.dir);
    // Damaged files (left alone, not listed), a damaged index (rebuilt), archived files that are
    // gone (lost_entries) and gaps between files (archive_breaks, at every load): logged and
    // counted; all but the index, whose events the archive cannot give back, also in
    // archive_damaged_files (PmIngestdArchiveDamaged).
    const std::string index_path = path_in_dir(config_.dir, kIndexFileName);
    int damaged_files = 0;
    index_ = ArchiveIndex::load(fs_, config_.dir, [&](const std::string& file, const std::string& problem) {
      logger_->error("archive file {}: {}; not listed in the archive index", file, problem);
      metrics_.archive_errors.Increment();
      damaged_files += file != index_path;
    });
    metrics_.archive_damaged_files.Set(damaged_files);
    retain();
    return true;
  } catch (const std::exception& e) {
    report_failure(fmt::format("cannot load the archive index in {}: {}; retrying", config_.dir, e.what()));
    return false;
  }
}

void SegmentArchiver::wait_for_work(Outcome last, std::chrono::milliseconds backoff) {
  std::unique_lock lock(mu_);
  if (last == Outcome::Failed) {
    wake_.wait_for(lock, backoff, [this] { return stopping_; });
  } else if (last == Outcome::Refused || !next_segment()) {
    // The timeout also looks again at a removal the log refused (its applied position lagged),
    // and lets idle() apply the retention limits.
    const auto wait = std::min<std::chrono::milliseconds>(std::chrono::seconds(1), config_.retention_interval);
    wake_.wait_for(lock, wait, [this] { return stopping_ || released_; });
  }
  released_ = false;
}

std::optional<std::uint64_t> SegmentArchiver::next_segment() const {
  const std::uint64_t oldest = log_->oldest().segment;
  if (oldest >= released_before_.load() || oldest >= log_->durable().segment) return std::nullopt;
  return oldest;
}

SegmentArchiver::Outcome SegmentArchiver::archive_and_remove(std::uint64_t segment) {
  retain();  // first: it may make the room archiving needs
  try {
    archive_into_index(segment);
  } catch (const ArchiveAbandoned& e) {  // stopping: archived again at the next start
    logger_->info("{}: the daemon is stopping; it is archived at the next start", e.what());
    return Outcome::Refused;
  } catch (const wal::WalCorruption& e) {
    if (e.segment_missing() || e.unreadable()) {  // not damage: the same read may work next time
      report_failure(fmt::format("cannot archive log segment {}: {}; archiving is retried", wal::segment_file_name(segment), e.what()));
      return Outcome::Failed;
    }
    // Retrying reads the same damage: say so, and what it holds up, instead of "retried".
    report_failure(fmt::format("cannot archive log segment {}: it is damaged ({}). Its events are applied, but it cannot be "
                               "archived, and every later segment waits behind it in the live log (producers get busy once "
                               "--wal-max-bytes is used up). See what it holds with `pm-ingestctl wal-verify --salvage "
                               "--wal-dir {}`; to archive it as it is and let the later segments go, stop the daemon and run "
                               "`pm-ingestctl archive store-damaged --archive-dir {} --wal-dir {} --segment {}`. Archiving is "
                               "retried in case the damage was a passing read error",
                               wal::segment_file_name(segment), e.what(), log_->dir(), config_.dir, log_->dir(),
                               wal::segment_file_name(segment)));
    return Outcome::Failed;
  } catch (const std::exception& e) {
    report_failure(fmt::format("cannot archive log segment {}: {}; the live segment is kept and archiving is retried",
                               wal::segment_file_name(segment), e.what()));
    return Outcome::Failed;
  }
  retain();  // and after: the new file may take the archive past its limit (it spares `segment`, still live)
  log_->remove_segments_before(segment + 1);
  if (log_->oldest().segment <= segment) return Outcome::Refused;  // the log says why it refused
  retain();  // `segment` has left the live log: the limits may take it now
  return Outcome::Done;
}

void SegmentArchiver::retain() {
  last_retained_ = Clock::now();
  try {
    apply_retention();
  } catch (const std::exception& e) {
    report_failure(fmt::format("archive retention in {} failed: {}; retried with the next segment, or within {} s",
                               config_.dir, e.what(), std::chrono::ceil<std::chrono::seconds>(config_.retention_interval).count()));
  }
}

// Nothing to archive: the age limit still applies (a quiet weekend, PostgreSQL down), and a
// failed retention pass is retried.
SegmentArchiver::Outcome SegmentArchiver::idle() {
  if (Clock::now() - last_retained_ >= config_.retention_interval) retain();
  return Outcome::Done;
}

void SegmentArchiver::archive_into_index(std::uint64_t segment) {
  const auto& entries = index_->entries();
  const bool listed = std::any_of(entries.begin(), entries.end(), [&](const ArchiveEntry& e) {
    return e.segment == segment && e.log_id == log_->log_id();
  });
  if (listed && is_archived(fs_, config_.dir, log_->log_id(), segment)) return;  // archived before a restart
  const ArchiveEntry entry =
      archive_segment(fs_, log_->dir(), segment, config_.dir, config_.compression_level, [this] { return stopping(); });
  index_->add(entry);  // a listed segment whose file was gone gets the new file's entry
  metrics_.archived_segments.Increment();
  metrics_.archived_bytes.Increment(static_cast<double>(entry.segment_bytes));
  logger_->debug("archived log segment {}: lsn {}..{}, {} events, {} -> {} bytes", wal::segment_file_name(segment),
                 entry.first_lsn, entry.last_lsn, entry.events(), entry.segment_bytes, entry.file_bytes);
}

// Throws what the index or the file system throws (the caller reports it).
void SegmentArchiver::apply_retention() {
  if (config_.max_bytes == 0 && config_.max_age.count() == 0) return;
  const std::int64_t now = config_.now_ms ? config_.now_ms() : now_epoch_ms();
  warn_of_future_times(now);
  const auto removed = apply_archive_retention(fs_, *index_, config_.max_bytes, config_.max_age.count() * 1000, now,
                                               log_->oldest().segment);
  metrics_.archive_removed_segments.Increment(static_cast<double>(removed.size()));
  for (const ArchiveEntry& e : removed)
    logger_->info("archive retention removed {} (lsn {}..{}, events arrived until {} ms)", archive_file_name(e.segment),
                  e.first_lsn, e.last_lsn, e.last_arrival_ms);
}

// Once per run of the daemon: archived events stamped after `now_ms` (the clock was ahead when they
// arrived). Age retention counts such a segment as old as the later segments.
void SegmentArchiver::warn_of_future_times(std::int64_t now_ms) {
  if (warned_of_future_ || config_.max_age.count() == 0) return;
  const auto& entries = index_->entries();
  const auto future = std::find_if(entries.begin(), entries.end(), [&](const ArchiveEntry& e) { return newest_arrival_ms(e) > now_ms; });
  if (future == entries.end()) return;
  warned_of_future_ = true;
  logger_->warn("archive file {}: its events arrived at {} ms by this host's clock, {} s ahead of it now: the clock was ahead "
                "then. --archive-max-age counts it as old as the segments archived after it",
                archive_file_name(future->segment), newest_arrival_ms(*future), (newest_arrival_ms(*future) - now_ms) / 1000);
}

// From the writer's thread (release_before) and the archiver's: each value stored is computed from
// the log and a release mark that was still the latest after the store, so a store from an older
// mark is followed by one from the newer (a log computed a moment before its oldest segment went
// gives an earlier offset: more counted, never less).
SegmentArchiver::Released SegmentArchiver::refresh_kept_from() {
  for (;;) {
    const std::uint64_t mark = released_before_.load();
    const Released now{log_->oldest(), std::min(mark, log_->durable().segment)};
    kept_from_log_offset_ = now.oldest.segment < now.released ? now.oldest.log_offset : UINT64_MAX;
    if (released_before_.load() == mark) return now;
  }
}

void SegmentArchiver::publish_gauges() {
  const auto [oldest, released] = refresh_kept_from();
  metrics_.archive_pending_segments.Set(released > oldest.segment ? static_cast<double>(released - oldest.segment) : 0.0);
  if (!index_) return;
  const auto& entries = index_->entries();
  metrics_.archive_segments.Set(static_cast<double>(entries.size()));
  metrics_.archive_bytes.Set(static_cast<double>(index_->total_file_bytes()));
  const auto first = std::find_if(entries.begin(), entries.end(), [](const ArchiveEntry& e) { return e.events() > 0; });
  metrics_.archive_oldest_event_timestamp_seconds.Set(first == entries.end() ? 0.0 : static_cast<double>(first->first_arrival_ms) / 1000.0);
}

void SegmentArchiver::report_failure(const std::string& message) {
  metrics_.archive_errors.Increment();
  const auto now = Clock::now();
  // The same failure again within a minute is only counted; another one is logged at once.
  if (message == last_report_message_ && now - last_report_ < std::chrono::minutes(1)) return;
  last_report_ = now;
  last_report_message_ = message;
  logger_->error("{}", message);
}

}  // namespace pm::archive
