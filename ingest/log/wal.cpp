#include "ingest/log/wal.h"

#include <stdexcept>

#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <iostream>
#include <system_error>
#include <thread>

#include "ingest/log/wal_corruption.h"
#include "ingest/log/wal_directory.h"
#include "ingest/log/wal_scan.h"

namespace pm::wal {

namespace {

LogId random_log_id() {
  LogId id{};
  std::size_t got = 0;
  while (got < id.size()) {
    const ssize_t r = ::getrandom(id.data() + got, id.size() - got, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "getrandom");
    }
    got += static_cast<std::size_t>(r);
  }
  return id;
}

void default_fatal(const std::string& message) {
  std::cerr << "pm-ingestd: FATAL: " << message << std::endl;
  std::_Exit(70);
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::uint64_t file_size(LogFs& fs, const std::string& path) {
  std::unique_ptr<LogFile> f;
  std::uint64_t size = 0;
  std::error_code ec = fs.open(path, OpenMode::Read, f);
  if (!ec) ec = f->size(size);
  if (ec) throw std::system_error(ec, "stat " + path);
  return size;
}

}  // namespace

// One append() call waiting in queue_: owned by the calling thread (on its stack); the leader of
// its group fills `out` and sets `status` and `done` (under mu_).
struct WriteAheadLog::Request {
  std::span<const std::string> payloads;
  std::vector<Appended>* out;
  const WrittenCallback* on_written;
  AppendStatus status = AppendStatus::Ok;
  bool done = false;
  // Signalled under mu_ when this request is done or has become the front of the queue: each
  // appender wakes only for its own news, not for every group that completes ahead of it.
  std::condition_variable wake{};
};

// The requests one leader writes at once: formed under mu_, then written without it, then
// completed under it. Owned by the leader's stack.
struct WriteAheadLog::Group {
  std::vector<Request*> requests;  // the front of queue_, in order
  std::size_t bytes = 0;           // of their records (the group marker excluded)
  bool roll = false;               // the active segment is full: start a new one first
  Position start;                  // durable_ when formed (the new segment's start after a roll)
  Position end;                    // past the group's last record, once encoded
  AppendStatus status = AppendStatus::Ok;
  std::uint64_t sync_ns = 0;       // how long the fdatasync took
};

const char* to_string(AppendStatus status) {
  switch (status) {
    case AppendStatus::Ok: return "ok";
    case AppendStatus::DiskFull: return "disk_full";
    case AppendStatus::IoError: return "io_error";
  }
  return "io_error";
}

WriteAheadLog::WriteAheadLog(Options options) : options_(std::move(options)) {
  fs_ = options_.fs != nullptr ? options_.fs : &posix_log_fs();
  if (!options_.on_fatal) options_.on_fatal = default_fatal;
  if (!options_.on_warning) options_.on_warning = [](const std::string&) {};
  if (options_.lock_owner.empty()) options_.lock_owner = "pid " + std::to_string(::getpid());
}

WriteAheadLog::~WriteAheadLog() = default;

std::unique_ptr<WriteAheadLog> WriteAheadLog::open(Options options) {
  std::unique_ptr<WriteAheadLog> log(new WriteAheadLog(std::move(options)));
  log->recover();
  return log;
}

void WriteAheadLog::fatal(const std::string& message) {
  {
    std::lock_guard lock(mu_);
    halted_ = true;
  }
  durable_changed_.notify_all();  // records written but not synced never will be: wait_durable says so
  options_.on_fatal(message);
}

void WriteAheadLog::report(RecoveryFinding finding) {
  if (options_.on_recovery) options_.on_recovery(finding);
}

bool WriteAheadLog::halted() const {
  std::lock_guard lock(mu_);
  return halted_;
}

bool WriteAheadLog::create_from_spare(const std::string& path, const std::string& header, std::unique_ptr<LogFile>& file,
                                      std::uint64_t& file_bytes) {
  const std::string spare = spare_ ? spare_->take() : "";
  if (spare.empty()) return false;
  std::uint64_t size = 0;
  std::error_code ec = fs_->open(spare, OpenMode::Write, file);
  if (!ec) ec = file->size(size);
  if (!ec) ec = file->write_at(0, header.data(), header.size());
  if (!ec) ec = file->sync();
  if (!ec) ec = fs_->rename_new(spare, path);
  if (ec) {
    file.reset();
    fs_->remove(spare);
    if (ec == std::errc::file_exists) throw std::system_error(ec, "create segment " + path);
    options_.on_warning("cannot start " + path + " from the prepared " + spare + ": " + ec.message() + "; created it empty instead");
    return false;
  }
  file_bytes = size;
  return true;
}

void WriteAheadLog::create_file(const std::string& path, const std::string& header, std::unique_ptr<LogFile>& file) {
  const std::string tmp = path + ".tmp";
  if (const std::error_code ec = fs_->open(tmp, OpenMode::CreateTruncate, file)) throw std::system_error(ec, "create " + tmp);
  std::error_code ec = file->write_at(0, header.data(), header.size());
  bool sync_failed = false;
  if (!ec) sync_failed = static_cast<bool>(ec = file->sync());
  if (!ec) ec = fs_->rename_new(tmp, path);
  if (ec) {
    file.reset();
    fs_->remove(tmp);
    if (sync_failed) throw WalSyncFailed(ec, "fdatasync of new segment " + tmp);
    throw std::system_error(ec, "create segment " + path);
  }
}

void WriteAheadLog::set_active_file_bytes(std::uint64_t bytes) {
  std::lock_guard lock(mu_);
  active_file_bytes_ = bytes;
}

void WriteAheadLog::create_segment(std::uint64_t segment, std::uint64_t first_lsn, std::uint64_t base_offset) {
  const std::string path = segment_path(options_.dir, segment);
  const SegmentHeader new_header{log_id_, segment, first_lsn, base_offset, kFormatVersion};
  const std::string header = encode_segment_header(new_header);
  std::unique_ptr<LogFile> file;
  std::uint64_t file_bytes = header.size();
  if (!create_from_spare(path, header, file, file_bytes)) create_file(path, header, file);
  // Until the directory is synced the new name may vanish in a power loss: no record goes there
  // before, and a failed directory sync leaves the directory's state unknown.
  if (const std::error_code dir_ec = fs_->sync_dir(options_.dir)) {
    fatal("fsync of log directory " + options_.dir + " failed after creating " + path + ": " + dir_ec.message() +
          "; restarting to recover from what is on disk");
    throw std::system_error(dir_ec, "fsync " + options_.dir);
  }
  active_ = std::move(file);
  active_header_ = new_header;
  active_cut_unsynced_ = false;
  std::lock_guard lock(mu_);
  segments_[segment] = header.size();
  active_file_bytes_ = file_bytes;
  if (segments_.size() == 1) {
    oldest_lsn_ = first_lsn - 1;
    oldest_log_offset_ = base_offset;
  }
  durable_ = Position{segment, kSegmentHeaderSize, base_offset, first_lsn - 1};
  ++stats_.segments;
}

void WriteAheadLog::recover() {
  if (const std::error_code ec = fs_->create_dir(options_.dir)) throw std::system_error(ec, "create log directory " + options_.dir);
  const std::string lock_path = path_in(options_.dir, kLockFileName);
  if (const std::error_code ec = fs_->lock(lock_path, options_.lock_owner, lock_)) {
    if (ec == std::errc::resource_unavailable_try_again) {
      const std::string owner = fs_->lock_owner(lock_path);
      throw WalLocked("the log directory " + options_.dir + " is in use by another pm-ingestd" +
                      (owner.empty() ? std::string() : " (" + owner + ")") +
                      "; one log directory serves one daemon: give each daemon its own --wal-dir");
    }
    throw std::system_error(ec, "lock " + lock_path);
  }
  const DirectoryListing listing = list_log_dir(*fs_, options_.dir);
  // Before any file is removed or created: a log of a newer format is left as it is.
  refuse_newer_format(listing.segments);
  LocalState state;
  const StateRead read = read_local_state(listing, state);
  if (options_.preallocate)
    spare_ = std::make_unique<SpareSegment>(*fs_, options_.dir, options_.segment_bytes, options_.on_warning);
  if (!options_.preallocate) remove_spare_files(listing.spares);
  for (const std::string& name : listing.temporary) {
    const std::string path = path_in(options_.dir, name);
    if (const std::error_code ec = fs_->remove(path)) throw std::system_error(ec, "remove " + path);
    report(RecoveryFinding{RecoveryFinding::Kind::TemporaryRemoved, path, 0, 0, ""});
  }
  if (listing.segments.empty()) {
    const std::string state_path = path_in(options_.dir, kStateFileName);
    if (read == StateRead::Valid && state.ceiling.lsn > 0)
      throw WalCorruption(state_path, 0,
                          "the directory holds no log segments, but its state says events up to lsn " +
                              std::to_string(state.ceiling.lsn) +
                              " may be applied: the log's files were removed. Move this directory away and start with an "
                              "empty --wal-dir after resetting the checkpoint (`pm-ingestctl checkpoint-reset --instance-id ID`)");
    start_new_log();
    return;
  }
  recover_existing(listing, read, state);
}

StateRead WriteAheadLog::read_local_state(const DirectoryListing& listing, LocalState& state) {
  if (!listing.has_state) return StateRead::Missing;
  const std::string state_path = path_in(options_.dir, kStateFileName);
  LocalState unsynced;
  read_state(*fs_, state_path, unsynced);  // a newer format throws here, before anything is synced
  std::unique_ptr<LogFile> file;
  if (const std::error_code ec = fs_->open(state_path, OpenMode::Write, file)) throw std::system_error(ec, "open " + state_path);
  read_from_storage(*file, state_path);  // a slot whose sync failed is not taken for the newest
  return read_state(*fs_, state_path, state);
}

void WriteAheadLog::refuse_newer_format(const std::vector<std::uint64_t>& segments) {
  if (segments.empty()) return;
  try {
    check_not_newer_format(*open_segment_file(*fs_, segment_path(options_.dir, segments.back())));
  } catch (const WalCorruption&) {  // cannot be opened: recovery reads it again, and says what is wrong
  } catch (const std::system_error&) {  // a read that failed: the same
  }
}

void WriteAheadLog::remove_spare_files(const std::vector<std::string>& names) {
  // Only SpareSegment's constructor removes them, and there is none without preallocation: left,
  // they would take up to a segment's bytes for ever, uncounted in stats().disk_bytes.
  bool removed = false;
  for (const std::string& name : names) {
    const std::string path = path_in(options_.dir, name);
    if (const std::error_code ec = fs_->remove(path); ec && ec != std::errc::no_such_file_or_directory)
      options_.on_warning("cannot remove " + path + ", a spare segment file of a run with preallocation: " + ec.message());
    else
      removed = removed || !ec;
  }
  if (removed && fs_->sync_dir(options_.dir))
    options_.on_warning("fsync of log directory " + options_.dir + " failed after removing its spare segment files");
}

void WriteAheadLog::start_new_log() {
  log_id_ = random_log_id();
  const Position start{1, kSegmentHeaderSize, 0, 0};
  // The state file is created first; the new segment's directory sync makes both names durable.
  state_ = StateFile::create(*fs_, path_in(options_.dir, kStateFileName), LocalState{log_id_, start, start});
  create_segment(1, 1, 0);
  applied_at_open_ = start;
  noted_applied_ = start;
}

void WriteAheadLog::recover_existing(const DirectoryListing& listing, StateRead read, const LocalState& state) {
  std::vector<std::uint64_t> found = listing.segments;
  const std::uint64_t newest_segment = found.back();
  log_id_ = read_segment_header(*fs_, options_.dir, newest_segment).log_id;
  const bool state_of_this_log = read == StateRead::Valid && state.log_id == log_id_;
  if (state_of_this_log) found = remove_applied_segments(found, state);
  check_segments_follow(found, state_of_this_log ? state.applied.segment : 0);
  load_segment_sizes(found);
  require_nothing_after(newest_segment);
  const SegmentScan scan = open_newest_segment(newest_segment, read, state);
  segments_[newest_segment] = scan.valid_end.offset;
  durable_ = scan.valid_end;
  active_header_ = scan.header;
  open_state(read, state);
  // Segments of an older version are only read: appends start a new segment in the current format
  // (version 3: a marker's checksum there is keyed by the log id, wal_format.h).
  if (scan.header.version < kFormatVersion) {
    cut_to_records(segment_path(options_.dir, newest_segment));
    create_segment(newest_segment + 1, durable_.lsn + 1, durable_.log_offset);
  }
}

// As seal_active() at a roll, at recovery: a format 2 segment may end in preallocated zeros (a
// clean end while it is the newest), which the reader takes for damage once a later segment
// exists (it reads a sealed segment to its file's end). The cut is synced before that segment is made.
void WriteAheadLog::cut_to_records(const std::string& path) {
  const ActiveCut result = cut_active_to(durable_.offset, false);
  if (const std::error_code ec = result.cut ? result.cut : result.sync)
    throw WalSyncFailed(ec, "cut the zeros after the records of " + path + " at recovery");
}

WriteAheadLog::ActiveCut WriteAheadLog::cut_active_to(std::uint64_t end, bool unsynced_cut) {
  ActiveCut result;
  std::uint64_t size = 0;
  result.cut = active_->size(size);
  if (!result.cut && size > end) result.cut = active_->truncate(end);
  if (result.cut) return result;
  if (size > end || unsynced_cut) result.sync = active_->sync();
  if (!result.sync) set_active_file_bytes(end);
  return result;
}

// A segment after the newest listed one means the listing missed it (a directory read that failed
// part way): appending to the one before would give its LSNs to new events. Not damage: the next
// start lists the directory again.
void WriteAheadLog::require_nothing_after(std::uint64_t newest_segment) {
  const std::string next = segment_path(options_.dir, newest_segment + 1);
  std::unique_ptr<LogFile> file;
  if (fs_->open(next, OpenMode::Read, file)) return;
  throw std::runtime_error(next + " exists, but the listing of " + options_.dir + " ended at segment " +
                           std::to_string(newest_segment) + "; not appending before it (start again to list the directory again)");
}

std::vector<std::uint64_t> WriteAheadLog::remove_applied_segments(const std::vector<std::uint64_t>& found,
                                                                  const LocalState& state) {
  // Segments below the applied position are applied; a crash while removing them may have left
  // some behind, with gaps between them.
  const std::uint64_t newest_segment = found.back();
  std::vector<std::uint64_t> kept;
  bool removed = false;
  bool removing = true;  // from the oldest up to the first segment may_remove keeps
  for (std::uint64_t seg : found) {
    removing = removing && seg < state.applied.segment && seg < newest_segment && may_remove(seg);
    if (removing) {
      const std::string path = segment_path(options_.dir, seg);
      if (const std::error_code ec = fs_->remove(path); ec && ec != std::errc::no_such_file_or_directory) {
        // Kept, with the later ones, as at runtime (remove_segments_before): the log opens, and
        // the removal is tried again once applied segments are released.
        warn_unremovable(path, ec);
        removing = false;
        kept.push_back(seg);
        continue;
      }
      report(RecoveryFinding{RecoveryFinding::Kind::AppliedSegmentRemoved, path, 0, 0,
                             "applied (below lsn " + std::to_string(state.applied.lsn + 1) +
                                 "), left behind by a crash while applied segments were removed"});
      removed = true;
    } else {
      kept.push_back(seg);
    }
  }
  if (removed && fs_->sync_dir(options_.dir))
    options_.on_warning("fsync of log directory " + options_.dir + " failed after removing applied segments");
  return kept;
}

void WriteAheadLog::check_segments_follow(const std::vector<std::uint64_t>& found, std::uint64_t applied_segment) {
  // Below the applied segment every record is applied: the segments there are the ones
  // Options::may_remove refused (an archive directory unusable at start), and a crash while they
  // were removed may have left holes between them (names removed apart, before the directory
  // fsync). Readers start at or above the applied position, and the archiver takes the segments
  // that are there. From the applied segment on (itself included, when older ones are kept), every
  // segment must be there.
  check_no_gap_from_applied(options_.dir, found, applied_segment);
  // The first segment of the run that ends at the newest: the applied position is never recorded
  // below it (persistable_applied), or the next recovery would find the hole above it.
  const std::uint64_t run = first_of_newest_run(found);
  if (run != found.front()) applied_floor_ = first_position(read_segment_header(*fs_, options_.dir, run));
}

void WriteAheadLog::load_segment_sizes(const std::vector<std::uint64_t>& found) {
  for (std::size_t i = 0; i < found.size(); ++i) {
    const SegmentHeader h = read_segment_header(*fs_, options_.dir, found[i]);
    const std::string path = segment_path(options_.dir, found[i]);
    if (h.log_id != log_id_) throw WalCorruption(path, 0, "segment belongs to another log (log id " + log_id_hex(h.log_id) + ")");
    if (i == 0) {
      oldest_lsn_ = h.first_lsn - 1;
      oldest_log_offset_ = h.base_offset;
    }
    segments_[found[i]] = file_size(*fs_, path);
  }
  stats_.segments = segments_.size();
}

SegmentScan WriteAheadLog::open_newest_segment(std::uint64_t newest_segment, StateRead read, const LocalState& state) {
  const std::string newest = segment_path(options_.dir, newest_segment);
  if (const std::error_code ec = fs_->open(newest, OpenMode::Write, active_)) throw std::system_error(ec, "open " + newest);
  // Stored first: a process killed between creating a segment and syncing the directory left its
  // name in the page cache only (below).
  if (const std::error_code ec = fs_->sync_dir(options_.dir))
    throw WalSyncFailed(ec, "fsync of log directory " + options_.dir + " at recovery");
  read_from_storage(*active_, newest);
  const SegmentScan scan = scan_segment(*fs_, newest);
  if (scan.tail == TailState::Corrupt)
    throw WalCorruption(newest, scan.valid_end.offset,
                        scan.problem + "; a valid " + (has_group_markers(scan.header) ? "group" : "record") + " follows at offset " +
                            std::to_string(scan.later_valid_offset) +
                            ", so this damage lies in data that had been synced and acknowledged");
  check_state(read, state, scan.valid_end);
  // Everything up to the ceiling had been synced: damage there is corruption of acknowledged
  // data, whatever the format alone could tell. Nothing is cut then.
  if (scan.tail == TailState::Torn && read == StateRead::Valid && state.log_id == log_id_ &&
      state.ceiling.lsn > scan.valid_end.lsn)
    throw WalCorruption(newest, scan.valid_end.offset,
                        scan.problem + "; the log's state file says records up to lsn " + std::to_string(state.ceiling.lsn) +
                            " had been synced (and may be applied), so this damage lies in acknowledged data");
  if (scan.tail != TailState::Torn) {
    set_active_file_bytes(scan.file_size);
    return scan;
  }
  const ActiveCut cut = cut_active_to(scan.valid_end.offset, false);
  if (const std::error_code ec = cut.cut ? cut.cut : cut.sync) throw WalSyncFailed(ec, "cut torn tail of " + newest);
  report(RecoveryFinding{RecoveryFinding::Kind::TornTailCut, newest, scan.valid_end.offset,
                         scan.file_size - scan.valid_end.offset, scan.problem});
  return scan;
}

// The scan must count what the storage holds, not what the page cache shows. A process killed
// between a group's write and its fdatasync, or between creating a segment and the directory sync
// that makes its name durable, left them only in the page cache: both are stored first, so
// nothing is appended (and acknowledged) on top of bytes a power loss can take. A process whose
// fdatasync failed left pages Linux marked clean though the storage never got them: the clean
// pages are then dropped, so the scan reads them from the storage (a torn tail, cut) instead of
// counting a group a later eviction or power loss would take from under acknowledged ones. The
// state file is read the same way.
void WriteAheadLog::read_from_storage(LogFile& file, const std::string& path) {
  if (const std::error_code ec = file.sync()) throw WalSyncFailed(ec, "fdatasync of " + path + " at recovery");
  if (const std::error_code ec = file.drop_clean_pages())
    throw std::system_error(ec, "drop the cached pages of " + path + " at recovery");
}

void WriteAheadLog::check_state(StateRead read, const LocalState& state, const Position& end) const {
  if (const std::string problem = state_mismatch(read, state, log_id_, end.lsn); !problem.empty())
    throw WalCorruption(path_in(options_.dir, kStateFileName), 0, problem);
}

void WriteAheadLog::open_state(StateRead read, const LocalState& state) {
  const std::string path = path_in(options_.dir, kStateFileName);
  const Position oldest_position = oldest();
  if (read == StateRead::Valid) {
    if (state.ceiling.lsn > durable_.lsn)
      throw WalCorruption(segment_path(options_.dir, durable_.segment), durable_.offset,
                          "the log ends at lsn " + std::to_string(durable_.lsn) + ", but records up to lsn " +
                              std::to_string(state.ceiling.lsn) + " had been synced (" + path +
                              ") and may already be applied in PostgreSQL: records were lost from the log, and new "
                              "events would reuse their LSNs and be skipped. "
                              "Restore the missing log files if you have them; otherwise keep this directory for "
                              "inspection (`pm-ingestctl wal-verify --salvage`), start with an empty --wal-dir and reset "
                              "the checkpoint (`pm-ingestctl checkpoint-reset --instance-id ID`)");
    applied_at_open_ = state.applied.lsn >= oldest_position.lsn && state.applied.segment >= oldest_position.segment
                           ? state.applied
                           : oldest_position;
    state_ = StateFile::open(*fs_, path, state);
  } else {
    // An older log, or a crash while this one was created: the ceiling starts at the log's end.
    // The writer still checks the checkpoint in PostgreSQL against the log.
    state_ = StateFile::create(*fs_, path, LocalState{log_id_, oldest_position, durable_});
    if (const std::error_code ec = fs_->sync_dir(options_.dir)) throw WalSyncFailed(ec, "fsync " + options_.dir);
    report(RecoveryFinding{RecoveryFinding::Kind::StateCreated, path, 0, 0,
                           read == StateRead::Missing ? "the log had no state file (written before format 2, or a crash while it was created)"
                                                      : "its only copy was damaged by a crash while the log was created"});
    applied_at_open_ = oldest_position;
  }
  noted_applied_ = applied_at_open_;
}

AppendStatus WriteAheadLog::write_at_end(const std::string& bytes) {
  const std::uint64_t offset = durable_.offset;  // only the leader changes it
  if (const std::error_code ec = active_->write_at(offset, bytes.data(), bytes.size())) {
    // Nothing of a failed group may stay in the file: recovery would find half a group.
    if (const std::error_code cut = active_->truncate(offset))
      fatal("cannot cut a failed write off " + segment_file_name(durable_.segment) + ": " + cut.message());
    // The cut is not durable until the file is synced: the next group's fdatasync, or seal_active's.
    active_cut_unsynced_ = true;
    set_active_file_bytes(offset);
    options_.on_warning("log write failed: " + ec.message());
    return is_disk_full(ec) ? AppendStatus::DiskFull : AppendStatus::IoError;
  }
  return AppendStatus::Ok;
}

AppendStatus WriteAheadLog::sync_active(std::uint64_t& sync_ns) {
  const auto t0 = std::chrono::steady_clock::now();
  if (const std::error_code ec = active_->sync()) {
    fatal("fdatasync of " + segment_path(options_.dir, durable_.segment) + " failed: " + ec.message() +
          "; the page cache can no longer be trusted, restarting");
    return AppendStatus::IoError;
  }
  active_cut_unsynced_ = false;
  sync_ns = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count());
  return AppendStatus::Ok;
}

AppendStatus WriteAheadLog::seal_active() {
  // A cut (of the zeros here, or of a failed write since the last sync) is metadata: until the
  // file is synced, a power loss may undo it and bring this segment back ending in zeros or half a
  // group. Once the next segment exists, recovery no longer scans this one: the reader would stop there.
  const ActiveCut result = cut_active_to(durable_.offset, active_cut_unsynced_);
  if (result.cut) {
    options_.on_warning("cannot cut the zeros after the records of " + segment_file_name(durable_.segment) + ": " +
                        result.cut.message());
    return is_disk_full(result.cut) ? AppendStatus::DiskFull : AppendStatus::IoError;
  }
  if (result.sync) {
    fatal("fdatasync of " + segment_path(options_.dir, durable_.segment) + " failed after cutting it to its records: " +
          result.sync.message() + "; restarting to recover from what is on disk");
    return AppendStatus::IoError;
  }
  active_cut_unsynced_ = false;
  return AppendStatus::Ok;
}

AppendStatus WriteAheadLog::roll_segment(Position& start) {
  if (const AppendStatus sealed = seal_active(); sealed != AppendStatus::Ok) return sealed;
  try {
    create_segment(start.segment + 1, start.lsn + 1, start.log_offset);
    start = durable();
    return AppendStatus::Ok;
  } catch (const std::system_error& e) {
    if (e.code() == std::errc::file_exists) {  // a segment the log's listing missed: never replaced
      fatal("cannot start log segment " + std::to_string(start.segment + 1) + ": " + e.what() +
            " though the log ended in segment " + std::to_string(start.segment) +
            " when it was opened (a directory listing that missed it?); restarting to recover from what is on disk");
      return AppendStatus::IoError;
    }
    options_.on_warning(std::string("cannot start a new log segment: ") + e.what());
    return is_disk_full(e.code()) ? AppendStatus::DiskFull : AppendStatus::IoError;
  } catch (const std::exception& e) {  // out of memory: the group fails, its request leaves the queue
    options_.on_warning(std::string("cannot start a new log segment: ") + e.what());
    return AppendStatus::IoError;
  }
}

// The group-commit pattern of LevelDB's DBImpl::Write: every caller queues its request; the one at
// the front leads, forms a group of the requests queued behind it, writes and syncs it once, and
// completes it (durable position, callbacks, waking the followers).
AppendStatus WriteAheadLog::append(std::span<const std::string> payloads, std::vector<Appended>& out,
                                   const WrittenCallback& on_written) {
  out.clear();
  if (payloads.empty()) return AppendStatus::Ok;
  for (const std::string& payload : payloads)
    if (payload.size() > kMaxPayload)  // acknowledged, it would be damage to every reader
      throw std::invalid_argument("a log record of " + std::to_string(payload.size()) + " bytes is longer than the " +
                                  std::to_string(kMaxPayload) + " bytes the log's readers take");
  Request self{payloads, &out, &on_written};
  std::unique_lock lock(mu_);
  if (halted_) return AppendStatus::IoError;
  queue_.push_back(&self);
  self.wake.wait(lock, [&] { return self.done || queue_.front() == &self; });
  if (self.done) return self.status;

  // This thread leads: it writes every request queued so far (up to the group size) at once,
  // after letting the other appenders catch up, if there are any.
  if (options_.group_delay.count() > 0 && last_group_calls_ > 1) {
    ++stats_.delayed_groups;
    lock.unlock();
    std::this_thread::sleep_for(options_.group_delay);
    if (options_.after_group_delay) options_.after_group_delay();
    lock.lock();
  }
  Group group = form_group();
  last_group_calls_ = group.requests.size();
  lock.unlock();
  write_group(group);
  lock.lock();
  complete_group(group, lock);
  return self.status;
}

WriteAheadLog::Group WriteAheadLog::form_group() {
  Group group;
  for (Request* r : queue_) {
    std::size_t bytes = 0;
    for (const auto& p : r->payloads) bytes += kRecordHeaderSize + p.size();
    if (!group.requests.empty() && group.bytes + bytes > options_.max_group_bytes) break;
    group.requests.push_back(r);
    group.bytes += bytes;
  }
  // A segment that grows is left for a spare as soon as one is ready (it holds a group at least).
  group.roll = durable_.offset >= options_.segment_bytes ||
               (spare_ && active_segment_grows() && durable_.offset > kSegmentHeaderSize && spare_->ready());
  group.start = durable_;
  group.status = halted_ ? AppendStatus::IoError : AppendStatus::Ok;
  return group;
}

bool WriteAheadLog::active_segment_grows() const { return active_file_bytes_ <= durable_.offset; }

void WriteAheadLog::write_group(Group& group) {
  if (group.status == AppendStatus::Ok && group.roll) group.status = roll_segment(group.start);
  group.end = group.start;
  if (group.status != AppendStatus::Ok) return;
  try {
    const std::string buffer = encode_group(group);
    group.status = write_at_end(buffer);
  } catch (const std::exception& e) {  // out of memory building the group: nothing was written
    options_.on_warning(std::string("cannot build a log write: ") + e.what());
    group.status = AppendStatus::IoError;
  }
  if (group.status != AppendStatus::Ok) return;
  // The consumer starts on the records while they are being synced (wal.h: on_written).
  run_written_callbacks(group);
  group.status = sync_active(group.sync_ns);
}

std::string WriteAheadLog::encode_group(Group& group) {
  Position& end = group.end;
  std::string buffer;
  buffer.reserve(group.bytes + kGroupMarkerSize);
  const std::size_t marker = begin_group(buffer, end.lsn + 1);
  end = advanced(end, kGroupMarkerSize, end.lsn);
  std::uint32_t records = 0;
  for (Request* r : group.requests) {
    for (const auto& payload : r->payloads) {
      append_record(buffer, end.lsn + 1, kRecordEvent, payload);
      const std::uint64_t bytes = kRecordHeaderSize + payload.size();
      end = advanced(end, bytes, end.lsn + 1);
      r->out->push_back(Appended{end.lsn, end});
      ++records;
    }
  }
  finish_group(buffer, marker, records, active_header_);
  return buffer;
}

void WriteAheadLog::complete_group(Group& group, std::unique_lock<std::mutex>& lock) {
  if (group.status == AppendStatus::Ok) {
    const Position& start = group.start;
    const Position& end = group.end;
    durable_ = end;
    segments_[end.segment] = end.offset;
    active_file_bytes_ = std::max(active_file_bytes_, end.offset);
    stats_.appended_bytes += end.log_offset - start.log_offset;
    stats_.groups += 1;
    last_sync_seconds_ = static_cast<double>(group.sync_ns) / 1e9;
    const bool grows = active_segment_grows();
    durable_changed_.notify_all();
    lock.unlock();
    // The next segment's file is prepared once this one is a quarter full, or sooner while this
    // one grows: a log that hardly writes never pays for one.
    const std::uint64_t quarter = options_.segment_bytes / 4;
    if (spare_ && end.offset >= (grows ? std::min(quarter, kGrowingSegmentSpareBytes) : quarter)) spare_->prepare();
    if (options_.on_group_commit)
      guarded("on_group_commit", [&] {
        options_.on_group_commit(static_cast<double>(group.sync_ns) / 1e9, end.log_offset - start.log_offset, end.lsn - start.lsn);
      });
    lock.lock();
  }
  for (Request* r : group.requests) {
    queue_.pop_front();
    r->status = group.status;
    r->done = true;
    if (group.status != AppendStatus::Ok) r->out->clear();
    r->wake.notify_one();
  }
  if (!queue_.empty()) queue_.front()->wake.notify_one();  // the next leader
}

void WriteAheadLog::guarded(const char* what, const std::function<void()>& callback) {
  try {
    callback();
  } catch (const std::exception& e) {
    options_.on_warning(std::string("a log callback (") + what + ") failed: " + e.what());
  }
}

void WriteAheadLog::run_written_callbacks(const Group& group) {
  // Still the leader: callbacks run in LSN order, before any later group is written.
  for (Request* r : group.requests)
    if (*r->on_written) guarded("on_written", [&] { (*r->on_written)(*r->out); });
}

Position WriteAheadLog::durable() const {
  std::lock_guard lock(mu_);
  return durable_;
}

bool WriteAheadLog::wait_durable(std::uint64_t lsn) {
  std::unique_lock lock(mu_);
  durable_changed_.wait(lock, [&] { return durable_.lsn >= lsn || halted_; });
  return durable_.lsn >= lsn;
}

Position WriteAheadLog::oldest() const {
  std::lock_guard lock(mu_);
  return Position{segments_.begin()->first, kSegmentHeaderSize, oldest_log_offset_, oldest_lsn_};
}

Position WriteAheadLog::readable_oldest() const {
  const Position oldest_now = oldest();
  return oldest_now.segment < applied_floor_.segment ? applied_floor_ : oldest_now;  // applied_floor_: set at open only
}

WalStats WriteAheadLog::stats() const {
  std::lock_guard lock(mu_);
  WalStats s = stats_;
  s.waiting_appends = queue_.size();
  s.segments = segments_.size();
  s.disk_bytes = 0;
  for (const auto& [seg, size] : segments_) s.disk_bytes += size;
  if (active_file_bytes_ > durable_.offset) s.disk_bytes += active_file_bytes_ - durable_.offset;  // zeros after the records
  if (spare_) s.disk_bytes += spare_->disk_bytes();
  return s;
}

double WriteAheadLog::last_sync_seconds() const {
  std::lock_guard lock(mu_);
  return last_sync_seconds_;
}

bool WriteAheadLog::write_state(LocalState next) {
  // Every record durable now had been synced: each write carries the ceiling up to the log's end.
  if (const Position synced = durable(); synced.lsn > next.ceiling.lsn) next.ceiling = synced;
  bool sync_failed = false;
  last_state_write_ms_ = now_ms();  // a failed write too: the once-a-second writers do not retry it at once
  if (const std::error_code ec = state_->write(next, sync_failed)) {
    if (sync_failed) {
      fatal("fdatasync of " + state_->path() + " failed: " + ec.message() + "; restarting to recover from what is on disk");
    } else {
      options_.on_warning("cannot write the log's state file " + state_->path() + ": " + ec.message());
    }
    return false;
  }
  return true;
}

void WriteAheadLog::note_applied(const Position& applied) {
  std::lock_guard lock(state_mu_);
  noted_applied_ = applied;
  if (now_ms() - last_state_write_ms_ < 1000) return;
  LocalState next = state_->current();
  next.applied = persistable_applied();
  write_state(next);
}

void WriteAheadLog::refresh_ceiling() {
  std::lock_guard lock(state_mu_);
  if (now_ms() - last_state_write_ms_ < 1000 || state_->current().ceiling.lsn >= durable().lsn) return;
  LocalState next = state_->current();
  next.applied = persistable_applied();
  write_state(next);
}

Position WriteAheadLog::persistable_applied() const {
  const Position p = applied_hold_ && applied_hold_->lsn < noted_applied_.lsn ? *applied_hold_ : noted_applied_;
  return p.segment < applied_floor_.segment ? applied_floor_ : p;
}

void WriteAheadLog::hold_applied_at(std::optional<Position> limit) {
  std::lock_guard lock(state_mu_);
  applied_hold_ = limit;
}

bool WriteAheadLog::persist_applied() {
  std::lock_guard lock(state_mu_);
  const Position applied = persistable_applied();
  if (state_->current().applied.lsn == applied.lsn && state_->current().ceiling.lsn >= durable().lsn) return true;
  LocalState next = state_->current();
  next.applied = applied;
  return write_state(next);
}

void WriteAheadLog::remove_segments_before(std::uint64_t segment) {
  std::vector<std::uint64_t> doomed;
  {
    std::lock_guard lock(mu_);
    for (const auto& [seg, size] : segments_)
      if (seg < segment && seg != durable_.segment) doomed.push_back(seg);
  }
  // Asked outside mu_: may_remove reads files, and appends must not wait for it.
  const auto kept = std::find_if(doomed.begin(), doomed.end(), [&](std::uint64_t seg) { return !may_remove(seg); });
  doomed.erase(kept, doomed.end());
  if (doomed.empty()) return;
  if (!persist_applied_before_removal(segment)) return;
  // Oldest first, up to the first that cannot be removed: the log keeps that one and those after
  // it (counted, read, asked for again), with no hole below them.
  std::size_t removed = 0;
  for (; removed < doomed.size(); ++removed) {
    const std::string path = segment_path(options_.dir, doomed[removed]);
    if (const std::error_code ec = fs_->remove(path); ec && ec != std::errc::no_such_file_or_directory) {
      warn_unremovable(path, ec);
      break;
    }
  }
  doomed.resize(removed);
  if (doomed.empty()) return;
  if (const std::error_code ec = fs_->sync_dir(options_.dir))
    options_.on_warning("fsync of log directory " + options_.dir + " failed after removing applied segments (" + ec.message() +
                        "); a power loss may bring them back, and recovery removes them again");
  // The new oldest segment's header tells where it starts.
  std::lock_guard lock(mu_);
  for (std::uint64_t seg : doomed) segments_.erase(seg);
  try {
    const SegmentHeader h = read_segment_header(*fs_, options_.dir, segments_.begin()->first);
    oldest_lsn_ = h.first_lsn - 1;
    oldest_log_offset_ = h.base_offset;
  } catch (const std::exception& e) {
    options_.on_warning(std::string("cannot read the oldest segment's header: ") + e.what());
  }
}

void WriteAheadLog::warn_unremovable(const std::string& path, const std::error_code& ec) {
  if (options_.on_remove_failed) options_.on_remove_failed(path, ec);
  // Once per segment and error: the archiver asks again every second while it fails.
  std::string warning = "cannot remove applied segment " + path + ": " + ec.message() +
                        "; it and the later applied ones are kept until a later removal succeeds";
  {
    std::lock_guard lock(state_mu_);
    if (warning == last_unremovable_warning_) return;
    last_unremovable_warning_ = warning;
  }
  options_.on_warning(warning);
}

bool WriteAheadLog::persist_applied_before_removal(std::uint64_t segment) {
  // Recovery must know these were applied, or a crash mid-removal would leave a gap it cannot
  // explain: the applied position is persisted first.
  std::lock_guard lock(state_mu_);
  if (noted_applied_.segment < segment) {
    options_.on_warning("not removing log segments below " + segment_file_name(segment) +
                        ": the applied position the log knows is in segment " + std::to_string(noted_applied_.segment));
    return false;
  }
  if (persistable_applied().segment < segment) {
    options_.on_warning("not removing log segments below " + segment_file_name(segment) +
                        ": the applied position held for the standbys is in an earlier segment");
    return false;
  }
  if (state_->current().applied.segment < segment) {
    LocalState next = state_->current();
    next.applied = persistable_applied();
    if (!write_state(next)) return false;
  }
  return true;
}

}  // namespace pm::wal
