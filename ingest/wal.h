#pragma once
// WriteAheadLog: the durable, append-only event log of pm-ingestd (format: wal_format.h).
//
// Contract:
// - open() recovers the directory: leftover temporary files are removed, the chain of segment
//   headers is checked, a torn tail of the newest segment (what a crash mid-write leaves) is cut
//   and reported through `on_warning`; a bad record followed by valid ones throws WalCorruption
//   naming the file and offset. An empty directory starts a new log with a random log id.
// - append() is called by any number of threads at once. Calls are grouped: one leader writes the
//   whole group with one write and one fdatasync (group commit); every caller returns only when its
//   records are durable (Ok) or definitely not written (DiskFull / IoError: nothing of the group
//   is left in the file, so recovery never misreads it). `on_durable` runs for each call's records
//   in LSN order, once they are durable and before any later group's; it must be quick.
// - A failed fdatasync leaves the file's state unknown (the page cache may have dropped the
//   data), so the log invokes `on_fatal` (default: log to stderr and exit 70, for systemd to
//   restart the daemon and recover from what is really on disk). No record of that group is acked.
// - durable() and the other getters are thread-safe. remove_segments_before() deletes whole
//   segments below a segment number (never the active one) and fsyncs the directory.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "ingest/wal_format.h"
#include "ingest/wal_reader.h"

namespace pm::wal {

struct Options {
  std::string dir;
  std::uint64_t segment_bytes = 64ull << 20;   // roll to a new segment past this size
  std::size_t max_group_bytes = 8u << 20;      // one group's write at most (soft)
  std::function<void(const std::string&)> on_warning;  // torn tails cut, segments removed, ...
  std::function<void(const std::string&)> on_fatal;    // fdatasync failed; must not return normally
  // Called by each group's leader after its fdatasync: (fsync seconds, bytes, records).
  std::function<void(double, std::uint64_t, std::uint64_t)> on_group_commit;
};

enum class AppendStatus { Ok, DiskFull, IoError };
const char* to_string(AppendStatus status);

struct Appended {
  std::uint64_t lsn = 0;
  Position end;  // the boundary after the record
};

using DurableCallback = std::function<void(std::span<const Appended>)>;

struct WalStats {
  std::uint64_t appended_bytes = 0;   // since open
  std::uint64_t groups = 0;           // fdatasync calls since open
  std::uint64_t segments = 0;         // files on disk
  std::uint64_t disk_bytes = 0;       // bytes of all segment files
};

class WriteAheadLog {
 public:
  static std::unique_ptr<WriteAheadLog> open(Options options);  // throws WalCorruption, std::system_error
  ~WriteAheadLog();
  WriteAheadLog(const WriteAheadLog&) = delete;
  WriteAheadLog& operator=(const WriteAheadLog&) = delete;

  // Appends one record per payload. `out` receives their LSNs and end positions on Ok.
  AppendStatus append(std::span<const std::string> payloads, std::vector<Appended>& out,
                      const DurableCallback& on_durable = {});

  Position durable() const;
  Position oldest() const;  // start of the oldest segment still on disk
  const LogId& log_id() const { return log_id_; }
  const std::string& dir() const { return options_.dir; }
  WalStats stats() const;
  // Seconds of the last fdatasync, for the fsync latency metric (set before on_durable runs).
  double last_sync_seconds() const;

  void remove_segments_before(std::uint64_t segment);

 private:
  struct Request;
  explicit WriteAheadLog(Options options);
  void recover();
  void create_segment(std::uint64_t segment, std::uint64_t first_lsn, std::uint64_t base_offset);
  AppendStatus write_group(const std::string& bytes, std::uint64_t& synced_seconds_ns);
  void fsync_dir();

  Options options_;
  LogId log_id_{};
  int dir_fd_ = -1;
  int active_fd_ = -1;

  mutable std::mutex mu_;
  std::condition_variable group_cv_;
  std::deque<Request*> queue_;
  Position durable_;                          // guarded by mu_
  std::map<std::uint64_t, std::uint64_t> segments_;  // segment -> size on disk; guarded by mu_
  std::uint64_t oldest_log_offset_ = 0;       // guarded by mu_
  std::uint64_t oldest_lsn_ = 0;              // guarded by mu_
  WalStats stats_;                            // guarded by mu_
  double last_sync_seconds_ = 0;              // guarded by mu_
};

}  // namespace pm::wal
