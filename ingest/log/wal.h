#pragma once
// WriteAheadLog: the durable, append-only event log of pm-ingestd (format: wal_format.h). Every
// file operation goes through a LogFs (log_fs.h), so tests can inject power loss and I/O faults.
//
// Contract:
// - open() takes an exclusive lock on the directory (a second process, or a second open in this
//   one, gets WalLocked), then recovers it: leftover temporary files are removed, segments below
//   the applied position of the local state file (wal_state.h) are removed (those
//   Options::may_remove allows), the chain of segment headers is checked, and a torn last group of
//   the newest segment is cut (wal_scan.h). A missing segment is corruption from the applied one
//   on; below it, where every record is applied, the kept segments may have holes between them (a
//   crash while they were removed) and oldest() is the oldest one there (readable_oldest() the
//   first after the last hole). Each of these is reported through `on_recovery`. Without
//   Options::preallocate, the spare segment files of an earlier run with it (spare_segment.h) are
//   removed too (nothing else would, and stats() does not count them; a failure is an
//   `on_warning`). Zeros after the last group are not damage: they are
//   the rest of a segment started from a file of zeros (Options::preallocate), which later
//   appends overwrite.
//   A log whose newest segment is of a newer format (wal_newer_format.h) throws WalNewerFormat
//   before anything in the directory changes (lock aside): this build cannot read it, and another
//   build may still apply it. Another segment of a newer format throws it when its header is read.
//   Damage inside what had been synced throws WalCorruption naming the file and offset; so does a
//   log that ends below the state's ceiling (synced records were lost, and may be applied: new
//   events must not reuse their LSNs). The ceiling trails the log's end (below); a smaller loss is
//   caught by the writer, which reads back the record its checkpoint names before it applies
//   anything (seed/07_checkpoint_record.sql). An empty directory starts a new log with a random
//   log id.
// - append() is called by any number of threads at once. Calls are grouped: one leader writes the
//   whole group (framed by a group marker) with one write and one fdatasync; every caller returns
//   only when its records are durable (Ok) or will never be acknowledged (DiskFull / IoError: a
//   failed write leaves nothing of the group in the file; a failed fdatasync may leave it there,
//   whole or not, and halts the log: recovery then reads what the storage holds and cuts it as a
//   torn tail, wal_scan.h). `on_written` runs for each call's records in LSN order,
//   once the group is written and before its fdatasync (and before any later group's write); it
//   must be quick. Those records are not durable yet: a consumer may start work on them (the
//   batch writer starts their transaction meanwhile) but must let nothing outside this process
//   depend on them before wait_durable() says so (the writer's COMMIT waits for it).
//   A payload longer than kMaxPayload (16 MiB), which no reader would take back, throws
//   std::invalid_argument before anything of the call is written.
// - With group_delay, a leader whose previous group held several calls (other threads are
//   appending) first waits that long, without the lock, so the calls arriving meanwhile join its
//   group: fewer fdatasyncs under concurrent load (PostgreSQL's commit_delay with
//   commit_siblings); a lone appender never waits.
// - A segment is cut to its records (and synced) before the next one starts: only the newest
//   segment may end in zeros. A failed write cut off again (above) counts too: a cut is durable
//   only once its file is synced, so a segment cut since its last fdatasync is synced before the
//   next one starts (recovery scans only the newest segment: an older one that came back from a
//   power loss ending in half a group would stop the reader).
// - With Options::preallocate, a segment that grows with its appends (a new log's first one, or
//   one started while no spare was ready) asks for a spare once it holds kGrowingSegmentSpareBytes
//   (or a quarter of a segment, if less), and is left for that spare at the first group after it
//   is ready, however little it holds: there each group's fdatasync also writes the file's new
//   size (measured here: 0.34 against 0.27 ms per fdatasync).
// - A failed fdatasync (of a segment or of the state file), or a failed directory fsync when a
//   new segment is created, leaves the files' state unknown: the log calls `on_fatal` (default:
//   log to stderr and exit 70, for systemd to restart the daemon and recover from what is really
//   on disk). No record of that group is acknowledged. If on_fatal returns, the log is halted:
//   every later append() returns IoError.
// - The consumer (the batch writer) calls note_applied() after each commit, and persist_applied()
//   at a clean stop; remove_segments_before() persists the applied position before it deletes
//   anything. Every state write also raises the ceiling to the log's durable end: a lower bound
//   of what had been synced, at most a second (or a stop) behind while batches commit; no batch
//   waits for it; refresh_ceiling() raises it when nothing else writes the state. These take the
//   state lock: the archiver thread may call remove_segments_before() and the writer's sampler
//   refresh_ceiling() while the writer thread calls the others.
// - hold_applied_at(p): while applied segments wait for PostgreSQL's standbys, the applied
//   position written to the state file stays at or below p (recovery deletes every segment below
//   the recorded one, so recording more would delete what a failover may still need);
//   hold_applied_at(nullopt) lifts the hold. Never below a hole among the applied segments kept
//   at open, though: the position recorded is at least the start of the first segment after it
//   (a reader cannot cross the hole, and the next recovery would refuse a hole above the applied
//   position).
// - durable() and the other getters are thread-safe.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "ingest/log/log_fs.h"
#include "ingest/log/spare_segment.h"
#include "ingest/log/wal_corruption.h"
#include "ingest/log/wal_directory.h"
#include "ingest/log/wal_format.h"
#include "ingest/log/wal_recovery_report.h"
#include "ingest/log/wal_state.h"

namespace pm::wal {

struct SegmentScan;  // wal_scan.h

// Another process (or another open log in this one) holds the directory.
class WalLocked : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Options {
  std::string dir;
  LogFs* fs = nullptr;                          // null: posix_log_fs()
  std::uint64_t segment_bytes = 64ull << 20;    // roll to a new segment past this size
  std::size_t max_group_bytes = 8u << 20;       // one group's write at most (soft)
  // Start each segment from a file of zeros prepared ahead of time (spare_segment.h), so each
  // group's fdatasync overwrites existing blocks instead of growing the file.
  bool preallocate = false;
  // How long a group's leader waits for more calls while others are appending (0: never).
  std::chrono::microseconds group_delay{0};
  // Tests: runs in a group's leader when its group_delay is over, before it forms the group (the
  // log's mutex not held), so a test can hold the delay until the calls it needs have queued.
  std::function<void()> after_group_delay;
  std::string lock_owner;                       // written into the lock file; default "pid N"
  std::function<void(const std::string&)> on_warning;          // write failures, removals, ...
  std::function<void(const RecoveryFinding&)> on_recovery;     // what open() found and did
  std::function<void(const std::string&)> on_fatal;            // must not return normally in production
  // Called by each group's leader after its fdatasync: (fsync seconds, bytes, records).
  std::function<void(double, std::uint64_t, std::uint64_t)> on_group_commit;
  // Called for each failed removal of an applied segment (path, error), at open or at runtime:
  // every attempt, where on_warning says it once per segment and error.
  std::function<void(const std::string&, const std::error_code&)> on_remove_failed;
  // Whether an applied segment may be deleted (null: every one may). With an archive it says
  // whether the segment is archived: recovery and remove_segments_before() delete applied segments
  // from the oldest up to the first one it refuses, and keep that one and every later one.
  std::function<bool(const LogId&, std::uint64_t segment)> may_remove;
};

// What a segment that grows with its appends holds before it asks for a spare (wal.h contract).
inline constexpr std::uint64_t kGrowingSegmentSpareBytes = 64u << 10;

enum class AppendStatus { Ok, DiskFull, IoError };
const char* to_string(AppendStatus status);

struct Appended {
  std::uint64_t lsn = 0;
  Position end;  // the boundary after the record
};

using WrittenCallback = std::function<void(std::span<const Appended>)>;

struct WalStats {
  std::uint64_t appended_bytes = 0;   // since open
  std::uint64_t groups = 0;           // fdatasync calls since open
  std::uint64_t delayed_groups = 0;   // groups whose leader waited group_delay for more calls
  std::uint64_t waiting_appends = 0;  // append() calls queued or being written now
  std::uint64_t segments = 0;         // files on disk
  std::uint64_t disk_bytes = 0;       // bytes of all segment files
};

class WriteAheadLog {
 public:
  // Throws WalLocked, WalCorruption, WalNewerFormat, std::system_error.
  static std::unique_ptr<WriteAheadLog> open(Options options);
  ~WriteAheadLog();
  WriteAheadLog(const WriteAheadLog&) = delete;
  WriteAheadLog& operator=(const WriteAheadLog&) = delete;

  // Appends one record per payload. `out` receives their LSNs and end positions on Ok.
  AppendStatus append(std::span<const std::string> payloads, std::vector<Appended>& out,
                      const WrittenCallback& on_written = {});

  Position durable() const;
  // Blocks until record `lsn` is durable (true), or until the log halts first (false: its group's
  // fdatasync failed; it never will be). Any thread. `lsn` must have been reported through an
  // on_written callback (a record not written yet would make it wait for a later append).
  bool wait_durable(std::uint64_t lsn);
  Position oldest() const;  // start of the oldest segment still on disk
  // Where reading every record in order can start: oldest(), or, when a crash left a hole among the
  // applied segments kept below the applied position (see open()), the start of the first segment
  // after it. A consumer must not need a record below it.
  Position readable_oldest() const;
  // The applied position the state file knew at open (at least oldest()): where the backlog is
  // counted from before PostgreSQL answers.
  Position applied_at_open() const { return applied_at_open_; }
  const LogId& log_id() const { return log_id_; }
  const std::string& dir() const { return options_.dir; }
  LogFs& fs() const { return *fs_; }
  WalStats stats() const;
  // Seconds of the last fdatasync, for the fsync latency metric (set before on_group_commit runs).
  double last_sync_seconds() const;
  bool halted() const;

  // Records the applied position; persisted with the next state write, at most once a second.
  void note_applied(const Position& applied);
  // Persists the last noted applied position, and the ceiling at the log's durable end, now (at a
  // clean stop). False when it cannot; a failed sync also calls on_fatal.
  bool persist_applied();
  // Raises the state file's ceiling to the log's durable end when it is behind and the last state
  // write (or attempt) is a second old: a reader beside the running daemon (pm-ingestctl replay)
  // reads its log only up to the ceiling, which commits alone would leave behind for ever while
  // the consumer is idle, or cannot apply (PostgreSQL down). At most one write a second; any
  // thread (the writer's metrics sampler calls it).
  void refresh_ceiling();
  void hold_applied_at(std::optional<Position> limit);
  // Deletes whole segments below `segment` (never the active one, and from the oldest only up to
  // one Options::may_remove refuses or the first whose removal fails: that one and the later ones
  // stay, counted and asked for again), after persisting the applied position, then fsyncs the
  // directory. Thread-safe against the consumer's other calls (the archiver thread calls it).
  void remove_segments_before(std::uint64_t segment);

 private:
  struct Request;
  explicit WriteAheadLog(Options options);
  void recover();
  // Throws WalNewerFormat when the newest of `segments` (ascending) is of a newer format; a file
  // that cannot be opened or read is left to recovery's own reading.
  void refuse_newer_format(const std::vector<std::uint64_t>& segments);
  // The state file as the storage holds it (read_state: Missing without one); throws WalNewerFormat
  // for a newer state format.
  StateRead read_local_state(const DirectoryListing& listing, LocalState& state);
  // Removes the spare files `names` (without preallocation), then syncs the directory if any went.
  void remove_spare_files(const std::vector<std::string>& names);
  void start_new_log();
  void recover_existing(const DirectoryListing& listing, StateRead read, const LocalState& state);
  // Removes the segments below the state's applied position (never the newest); returns the rest.
  std::vector<std::uint64_t> remove_applied_segments(const std::vector<std::uint64_t>& found, const LocalState& state);
  // Throws WalCorruption when a segment is missing from `applied_segment` on (holes below it are
  // applied segments removed apart); sets applied_floor_ when there is a hole.
  void check_segments_follow(const std::vector<std::uint64_t>& found, std::uint64_t applied_segment);
  // Checks each segment's log id and records its size; the first one is the oldest.
  void load_segment_sizes(const std::vector<std::uint64_t>& found);
  // Opens the newest segment as active_, scans it as the storage holds it, refuses damage in
  // synced data and cuts a torn tail.
  SegmentScan open_newest_segment(std::uint64_t newest_segment, StateRead read, const LocalState& state);
  // Stores the file's dirty pages, then drops its clean cached pages: later reads come from the storage.
  void read_from_storage(LogFile& file, const std::string& path);
  // Refuses a state file of another log, or a damaged one beside records, before anything is cut.
  void check_state(StateRead read, const LocalState& state, const Position& end) const;
  void open_state(StateRead read, const LocalState& state);
  // Creates, syncs and activates a new segment. REQUIRES: mu_ not held; the open() thread or the
  // leader of the group being written.
  void create_segment(std::uint64_t segment, std::uint64_t first_lsn, std::uint64_t base_offset);
  // The new segment's file from the prepared spare (header written and synced, renamed to `path`);
  // false when there is none or it failed (a warning; the caller creates the file instead).
  bool create_from_spare(const std::string& path, const std::string& header, std::unique_ptr<LogFile>& file,
                         std::uint64_t& file_bytes);
  // The new segment's file as `path`.tmp, header written and synced, renamed. Throws on failure.
  void create_file(const std::string& path, const std::string& header, std::unique_ptr<LogFile>& file);
  void set_active_file_bytes(std::uint64_t bytes);
  // What cut_active_to() did: its two steps' errors apart, since the callers differ in what each means.
  struct ActiveCut {
    std::error_code cut;   // reading the file's size or cutting it
    std::error_code sync;  // the fdatasync after the cut
  };
  // Makes the active segment's file end at `end` bytes durably: cuts what lies after (preallocated
  // zeros, a torn group) when the file is longer, then syncs it when it cut something or
  // `unsynced_cut` says an earlier cut is not synced yet. Once both steps succeeded the file's
  // size counts as `end` (set_active_file_bytes). The one cut of the active segment at a roll
  // and at recovery; the caller decides what a failure means. REQUIRES: the leader, or recovery.
  ActiveCut cut_active_to(std::uint64_t end, bool unsynced_cut);

  // Group commit (append()). Only the leader, the thread whose request is at the front of
  // queue_, calls these; no other thread touches active_ or durable_'s offset meanwhile.
  struct Group;
  // Takes the requests queued so far, up to max_group_bytes. REQUIRES: mu_ held.
  Group form_group();
  // Whether the active segment grows with its appends (no zeros after its records). REQUIRES: mu_ held.
  bool active_segment_grows() const;
  // Starts a new segment if the group asked for it, encodes the group and writes it with one
  // write and one fdatasync; sets its status and end. REQUIRES: mu_ not held.
  void write_group(Group& group);
  // The group's bytes: a group marker, then one record per payload; fills each request's `out`.
  std::string encode_group(Group& group);
  // Writes `bytes` at the durable end of the active segment; a failed write is cut off again.
  // REQUIRES: mu_ not held; the leader.
  AppendStatus write_at_end(const std::string& bytes);
  // fdatasync of the active segment; a failed one calls fatal(). REQUIRES: mu_ not held; the leader.
  AppendStatus sync_active(std::uint64_t& sync_ns);
  AppendStatus roll_segment(Position& start);
  // Cuts the zeros after the active segment's records (a preallocated segment) and syncs it, so a
  // sealed segment ends with its last record; syncs it too when a failed write was cut off since
  // its last fdatasync (active_cut_unsynced_). REQUIRES: mu_ not held; the leader.
  AppendStatus seal_active();
  // Publishes the durable position (waking wait_durable), runs on_group_commit (mu_ released
  // meanwhile), then marks every request of the group done and wakes the waiting threads.
  // REQUIRES: mu_ held through `lock`.
  void complete_group(Group& group, std::unique_lock<std::mutex>& lock);
  // Each request's on_written, in LSN order. REQUIRES: mu_ not held; the leader.
  void run_written_callbacks(const Group& group);
  // A callback must not stop the group: what it throws is a warning.
  void guarded(const char* what, const std::function<void()>& callback);
  bool write_state(LocalState next);  // REQUIRES: state_mu_ held
  // Persists the applied position before segments below `segment` are deleted; false: keep them.
  // REQUIRES: state_mu_ not held.
  bool persist_applied_before_removal(std::uint64_t segment);
  // Throws when a segment after `newest_segment` exists though the listing did not show it.
  void require_nothing_after(std::uint64_t newest_segment);
  void cut_to_records(const std::string& path);  // recovery: the active segment ends at durable_
  // Warns that an applied segment could not be removed, once per segment and error. REQUIRES: state_mu_ not held.
  void warn_unremovable(const std::string& path, const std::error_code& ec);
  bool may_remove(std::uint64_t segment) const { return !options_.may_remove || options_.may_remove(log_id_, segment); }
  void fatal(const std::string& message);  // halts the log, then on_fatal. REQUIRES: mu_ not held.
  void report(RecoveryFinding finding);

  Options options_;
  LogFs* fs_;
  std::unique_ptr<FileLock> lock_;
  LogId log_id_{};
  std::unique_ptr<LogFile> active_;  // used by open(), then only by the leader of the group being written
  SegmentHeader active_header_;  // active_'s header: its group markers' key (kFormatVersion once open() returns); as active_
  bool active_cut_unsynced_ = false;  // active_ was cut (a failed write) since its last fdatasync; as active_
  std::unique_ptr<SpareSegment> spare_;  // with Options::preallocate: the next segment's file, prepared
  Position applied_at_open_;

  mutable std::mutex mu_;
  std::deque<Request*> queue_;                // append() calls waiting, in order; guarded by mu_
  std::size_t last_group_calls_ = 0;          // append() calls in the last group formed; guarded by mu_
  Position durable_;                          // guarded by mu_
  std::map<std::uint64_t, std::uint64_t> segments_;  // segment -> size on disk; guarded by mu_
  std::uint64_t oldest_log_offset_ = 0;       // guarded by mu_
  std::uint64_t oldest_lsn_ = 0;              // guarded by mu_
  WalStats stats_;                            // guarded by mu_
  double last_sync_seconds_ = 0;              // guarded by mu_
  std::uint64_t active_file_bytes_ = 0;       // the active segment file's size (zeros after the records); guarded by mu_
  bool halted_ = false;                       // guarded by mu_
  std::condition_variable durable_changed_;   // durable_ advanced or the log halted; with mu_

  std::mutex state_mu_;                       // the consumer's calls
  std::unique_ptr<StateFile> state_;          // guarded by state_mu_
  Position noted_applied_;                    // guarded by state_mu_
  std::optional<Position> applied_hold_;      // guarded by state_mu_
  // The start of the first segment after the highest hole among the segments kept at open (segment
  // 0: none); set by open().
  Position applied_floor_;
  Position persistable_applied() const;       // noted_applied_ within the hold, not below applied_floor_. REQUIRES: state_mu_ held
  std::int64_t last_state_write_ms_ = 0;      // guarded by state_mu_
  std::string last_unremovable_warning_;      // guarded by state_mu_
};

}  // namespace pm::wal
