#pragma once
// SegmentArchiver: with --archive-dir, every applied log segment goes into the archive before the
// live log deletes it (event sourcing: the archive keeps every event; docs/wal-format.md, "Archive").
//
// Contract:
// - may_remove(log_id, segment) is the log's Options::may_remove: true only for a segment the
//   archive holds (is_archived). Thread-safe; it exists before the log is opened, so recovery keeps
//   applied segments that were not archived yet.
// - start(log) loads (or rebuilds) the index, removes partial files and starts the archiver thread.
//   Segments below the applied position the log had at open (kept by recovery) are archived first.
// - release_before(segment), from the writer thread (LogRetention): the segments below `segment`
//   are applied and confirmed. It records the mark and wakes the thread; it never waits for it.
// - The thread archives released segments oldest first, deletes each from the live log
//   (WriteAheadLog::remove_segments_before), then applies --archive-max-bytes / --archive-max-age.
//   A failure (disk full, EIO, a damaged segment) is logged at most once a minute, counted and
//   retried with backoff (1 s doubling to 30 s); the live segment stays meanwhile. Ingestion and
//   the writer never wait for the archive.
// - kept_from_log_offset(): where the oldest released segment still in the live log starts
//   (UINT64_MAX when none): the daemon counts --wal-max-bytes from there. Any thread; an atomic
//   read (it runs for every line), refreshed whenever segments are released or archived.
// - stop() ends the thread (after the segment it is archiving, if any). Idempotent.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
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
};

class SegmentArchiver {
 public:
  SegmentArchiver(ArchiverConfig config, IngestMetrics& metrics, std::shared_ptr<spdlog::logger> logger);
  ~SegmentArchiver();
  SegmentArchiver(const SegmentArchiver&) = delete;
  SegmentArchiver& operator=(const SegmentArchiver&) = delete;

  bool may_remove(const wal::LogId& log_id, std::uint64_t segment) const;
  void start(wal::WriteAheadLog& log);  // throws ArchiveWriteError when the directory is unusable
  void release_before(std::uint64_t segment);
  std::uint64_t kept_from_log_offset() const;
  void stop();

 private:
  void run();
  // The oldest released segment still in the live log, if any.
  std::optional<std::uint64_t> next_segment() const;
  bool archive_and_remove(std::uint64_t segment);  // false: failed (logged, counted)
  void archive_into_index(std::uint64_t segment);
  void apply_retention();
  void publish_gauges();   // archiver thread
  void publish_pending();  // any thread (release_before runs on the writer's)
  void report_failure(const std::string& message);
  void wait_for_work(std::chrono::milliseconds backoff);

  const ArchiverConfig config_;
  wal::LogFs& fs_;
  IngestMetrics& metrics_;
  std::shared_ptr<spdlog::logger> logger_;
  wal::WriteAheadLog* log_ = nullptr;
  std::optional<ArchiveIndex> index_;  // the archiver thread's, once started

  std::atomic<std::uint64_t> released_before_{0};
  std::atomic<std::uint64_t> kept_from_log_offset_{UINT64_MAX};
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mu_
  bool released_ = false;  // guarded by mu_: release_before() since the thread last looked
  std::thread thread_;
  std::chrono::steady_clock::time_point last_report_{};
};

}  // namespace pm::archive
