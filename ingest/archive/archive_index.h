#pragma once
// ArchiveIndex: the list of archived segments (`index.ndjson` in the archive directory, one JSON
// object per segment in segment order: the ArchiveEntry fields, log id as 32 hex digits). The
// archive files' headers are the truth; the index is their summary for listing and retention.
//
// Contract:
// - load() reads the index and checks it against the files' headers; when it is missing, damaged
//   or disagrees with the files (a crash between a file and the index being written), it is
//   rebuilt from the headers and saved. Files whose header is damaged are not listed and are
//   reported through `damaged` (file, problem); nothing is deleted. An index that cannot be parsed
//   is reported there too (before it is rebuilt); a missing one is not. So is each file the index
//   lists that is gone but the oldest listed one (lost_entries, RetentionWindow::OneFile):
//   retention deletes one file, then unlists it, so a crash leaves at most that one listed and
//   gone. The index saved then no longer lists such a file, so every load also reports each break
//   between neighbouring files (archive_breaks.h: segments no file holds, LSNs that do not
//   follow) that no lost entry named: a gap stays reported at every load until the files are
//   restored or those before the gap are moved away; the oldest end trimmed by retention is no
//   break. Each lost entry and each such break is one report. The directory is created when missing; a failed rebuild throws ArchiveWriteError. A file
//   of a newer format (wal_newer_format.h) is no damage: load() and read() throw
//   wal::WalNewerFormat, and load() writes nothing (it would rebuild the index without it).
// - add() and remove() rewrite the index atomically (`index.ndjson.tmp`, fsync, rename, directory
//   fsync); they throw ArchiveWriteError when that fails (the in-memory list is unchanged then).
// - Not thread-safe: one owner (the daemon's archiver thread, or a pm-ingestctl command).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ingest/archive/archive_format.h"
#include "ingest/log/log_fs.h"

namespace pm::archive {

inline constexpr char kIndexFileName[] = "index.ndjson";

// Which listed entries whose file is gone lost_entries() excuses as retention's doing.
enum class RetentionWindow {
  OneFile,    // the oldest listed one: the directory is not being written (the daemon's start, a
              // tool while no daemon holds ARCHIVE.LOCK); retention unlists each file it deletes
  AnyOldest,  // every one older than the oldest file still there: a running daemon's retention may
              // delete several after the index was read
};

class ArchiveIndex {
 public:
  using DamageReport = std::function<void(const std::string& file, const std::string& problem)>;
  static ArchiveIndex load(wal::LogFs& fs, const std::string& archive_dir, const DamageReport& damaged = {});
  // Read-only (operator tools, and a look before the daemon owns the directory): the entries the
  // files' headers state; nothing is created or rewritten. `index_stale` (if given) is set when
  // index.ndjson is missing, damaged or disagrees with them; `lost` (if given) gets what
  // lost_entries finds in `window`. Throws std::system_error when the directory cannot be listed.
  static ArchiveIndex read(wal::LogFs& fs, const std::string& archive_dir, const DamageReport& damaged = {},
                           bool* index_stale = nullptr, std::vector<ArchiveEntry>* lost = nullptr,
                           RetentionWindow window = RetentionWindow::AnyOldest);

  const std::vector<ArchiveEntry>& entries() const { return entries_; }  // ascending segment
  std::uint64_t total_file_bytes() const;
  // Lists the segment in its place by segment number (below the newest listed one too: a segment
  // the live log got back, archived again after retention removed its copy); a listed segment's
  // entry is replaced by the new one (archived again once its file was gone).
  void add(const ArchiveEntry& entry);
  void remove(std::uint64_t segment);    // from the index only; the caller deletes the file (unlisted: no-op)
  const std::string& dir() const { return dir_; }

  // The index file's text for `entries` (also what `pm-ingestctl archive list --json` prints).
  static std::string render(const std::vector<ArchiveEntry>& entries);

 private:
  ArchiveIndex(wal::LogFs& fs, std::string dir) : fs_(&fs), dir_(std::move(dir)) {}
  void save(const std::vector<ArchiveEntry>& entries);
  wal::LogFs* fs_;
  std::string dir_;
  std::vector<ArchiveEntry> entries_;
};

// The entries `listed` in the index (ascending) whose file is gone (its segment is not among
// `present`, the archive files there, damaged ones included): archived events no archive file
// holds any more (deleted by hand, lost by the file system, a partial restore), but for those
// `window` excuses. (AnyOldest: a damaged file is never listed, so it does not count as an older
// file still there.)
std::vector<ArchiveEntry> lost_entries(const std::vector<ArchiveEntry>& listed, const std::vector<std::uint64_t>& present,
                                       RetentionWindow window);

// The problem reported for a lost entry (file and what it held).
std::string lost_entry_problem(const ArchiveEntry& entry);

// When the segment's newest data arrived (epoch ms, the archiving host's clock): its newest
// event's arrival, or when it was archived if it holds none.
std::int64_t newest_arrival_ms(const ArchiveEntry& entry);

// Retention of the archive: removes the oldest archived segments (file, then index line) while the
// archive's files total more than `max_bytes` (0: no limit) or the newest event of the oldest
// segment arrived before `now_ms - max_age_ms` (0: no limit), oldest first, all of them if need
// be, but never segment `keep_from_segment` or a later one: those are still in the live log,
// which removes a segment only while the archive holds it (the daemon passes the log's oldest
// segment). A segment's time is newest_arrival_ms; one that lies in the future (a clock that was
// ahead, then corrected) counts as the earliest later segment's time (its events came first), at
// most now, so it no longer holds back the age limit until real time reaches it. A time in the past
// is only that segment's own: it never ages the older segments before it. Returns what it
// removed. A file that cannot be deleted stays listed (ArchiveWriteError; what was removed before
// stays removed); a file already missing is only unlisted.
std::vector<ArchiveEntry> apply_archive_retention(wal::LogFs& fs, ArchiveIndex& index, std::uint64_t max_bytes,
                                                  std::int64_t max_age_ms, std::int64_t now_ms,
                                                  std::uint64_t keep_from_segment = UINT64_MAX);

}  // namespace pm::archive
