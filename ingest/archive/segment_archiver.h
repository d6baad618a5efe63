#pragma once
// SegmentArchiver: with --archive-dir, every applied log segment goes into the archive before the
// live log deletes it (event sourcing: the archive keeps every event; docs/wal-format.md, "Archive").
//
// Contract:
// - prepare(), before the log is opened: creates the archive directory if needed, takes its lock
//   file (kArchiveLockFileName: one daemon per archive directory, whatever its log) and fsyncs it,
//   so an archive file renamed into it before a crash is durable before recovery deletes the live
//   copy. Until that has worked (the thread tries again with each retry), may_remove() refuses
//   everything (segments are kept), and it logs why; when another process holds the lock it throws
//   ArchiveForeignLog naming that process (before anything else could fail and hide it).
// - may_remove(log_id, segment) is the log's Options::may_remove: true only for a segment the
//   archive holds (is_archived). Thread-safe.
// - start(log) refuses (ArchiveForeignLog) an archive directory whose lock another process holds
//   (two daemons on one archive, before either archived anything) or that holds another log's
//   segments (a log directory reset, or two daemons on one archive): archives are named by
//   segment number and would be overwritten. It throws wal::WalNewerFormat for a directory holding
//   an archive file of a newer format (wal_newer_format.h): not this build's to list, rebuild or
//   trim. A directory start() cannot read yet is checked again each time the
//   thread loads the index; another log's archive found then is reported and retried, and nothing
//   is archived or removed meanwhile. Anything else that goes wrong is the thread's: it loads (or
//   rebuilds) the index, then archives released segments oldest first, deletes each from the live
//   log (WriteAheadLog::remove_segments_before) and applies --archive-max-bytes / --archive-max-age
//   (also while archiving fails, so retention can make room), never to a segment still in the
//   live log (the log removes a segment only once it is archived). While no segment is waiting
//   (traffic stopped, PostgreSQL down) the limits are applied again every retention_interval (a
//   minute), so --archive-max-age removes what ages past it without a new segment, and a failed
//   pass is retried. Segments below the applied position the log had at open (kept by recovery)
//   are released at once.
// - A failure (disk full, EIO, a damaged segment, anything thrown) is logged (the same one again at
//   most once a minute), counted and retried with backoff (1 s doubling to 30 s); the live
//   segment stays meanwhile.
//   Ingestion and the writer never wait for the archive.
// - release_before(segment), from the writer thread (LogRetention): the segments below `segment`
//   are applied and confirmed. It records the mark and wakes the thread; it never waits for it.
// - kept_from_log_offset(): where the oldest released segment still in the live log starts
//   (UINT64_MAX when none): the daemon counts --wal-max-bytes from there. Any thread (an atomic
//   read: it runs for every line); release_before refreshes it at once (the archiver thread may be
//   waiting out a retry), and the archiver thread each time it looks.
// - stop() ends the thread (after the segment it is archiving, if any). Idempotent.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include <spdlog/logger.h>

#include "ingest/archive/archive_index.h"
#include "ingest/log/wal.h"
#include "metrics/ingest_metrics.h"

namespace pm::archive {

struct ArchiverConfig {
  std::string dir;
  std::uint64_t max_bytes = 0;      // 0: no limit
  std::chrono::seconds max_age{0};  // 0: no limit
  int compression_level = 3;
  std::chrono::milliseconds retry_initial{1000};
  std::chrono::milliseconds retry_max{30000};
  std::chrono::milliseconds retention_interval{60000};  // while idle, the limits are applied this often
  std::function<std::int64_t()> now_ms;                  // the wall clock for --archive-max-age; null: now_epoch_ms()
  wal::LogFs* fs = nullptr;  // the archive directory's file system; null: posix_log_fs() (tests pass a FaultFs)
};

// Held by the daemon archiving into the directory; unknown to the archive's readers.
inline constexpr char kArchiveLockFileName[] = "ARCHIVE.LOCK";

class ArchiveForeignLog : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class SegmentArchiver {
 public:
  SegmentArchiver(ArchiverConfig config, IngestMetrics& metrics, std::shared_ptr<spdlog::logger> logger);
  ~SegmentArchiver();
  SegmentArchiver(const SegmentArchiver&) = delete;
  SegmentArchiver& operator=(const SegmentArchiver&) = delete;

  void prepare();
  bool may_remove(const wal::LogId& log_id, std::uint64_t segment) const;
  void start(wal::WriteAheadLog& log);
  void release_before(std::uint64_t segment);
  std::uint64_t kept_from_log_offset() const { return kept_from_log_offset_.load(std::memory_order_relaxed); }
  void stop();

 private:
  enum class Outcome { Done, Refused, Failed };
  void refuse_if_locked() const;  // ArchiveForeignLog when another process held the lock
  // The archiver thread and its steps. REQUIRES: archiver thread, for every function below.
  void run();
  // Creates and syncs the directory and takes its lock; "" once usable (dir_ready_), else why not.
  // Any thread before start(); then the archiver thread's.
  std::string open_directory();
  bool load_index();
  void refuse_another_log(const ArchiveIndex& index) const;  // throws ArchiveForeignLog
  std::optional<std::uint64_t> next_segment() const;  // the oldest released segment still live
  Outcome archive_and_remove(std::uint64_t segment);
  void archive_into_index(std::uint64_t segment);
  void apply_retention();  // throws what the index or the file system throws
  void warn_of_future_times(std::int64_t now_ms);  // logs archive times after now_ms, once
  void retain();           // apply_retention(), a failure reported and counted
  Outcome idle();          // retain() when it last ran retention_interval ago or more
  // The log's oldest segment and the release mark (bounded by the durable segment) the refreshed
  // kept_from_log_offset() was computed from.
  struct Released {
    wal::Position oldest;
    std::uint64_t released = 0;
  };
  Released refresh_kept_from();
  void publish_gauges();
  void report_failure(const std::string& message);
  // Waits for work: at once when a released segment waits and nothing failed; after a failure,
  // `backoff`; after a refused removal, until the next release (or 1 s).
  void wait_for_work(Outcome last, std::chrono::milliseconds backoff);
  bool stopping();

  const ArchiverConfig config_;
  wal::LogFs& fs_;
  IngestMetrics& metrics_;
  std::shared_ptr<spdlog::logger> logger_;
  wal::WriteAheadLog* log_ = nullptr;
  std::optional<ArchiveIndex> index_;  // the archiver thread's, once loaded
  std::atomic<bool> dir_ready_{false};  // created, locked and synced
  std::unique_ptr<wal::FileLock> lock_;
  std::string locked_by_;  // set when another process held the lock (its owner, or "another process")

  std::atomic<std::uint64_t> released_before_{0};
  std::atomic<std::uint64_t> kept_from_log_offset_{UINT64_MAX};
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mu_
  bool released_ = false;  // guarded by mu_: release_before() since the thread last looked
  std::thread thread_;
  std::chrono::steady_clock::time_point last_report_{};
  std::chrono::steady_clock::time_point last_retained_{};  // when retain() last ran
  bool warned_of_future_ = false;
  std::string last_report_message_;
};

}  // namespace pm::archive
