#pragma once
// SegmentChain: the events of one log, in LSN order, read from any mix of archive directories
// (archive files) and live log directories (segment files), as `pm-ingestctl replay` and
// `pm-ingestctl archive verify` need them.
//
// Contract:
// - discover(dirs): lists the segments each directory holds (a directory is an archive when it
//   holds `.pmarc` files or an `index.ndjson`, a live log when it holds `.wal` files). A segment
//   present in both is read from the live log. Every segment must belong to one log (same log id:
//   otherwise ChainError naming both files). Gaps between segments are kept in `gaps()`.
// - Reading: next() returns the next event record at or after `from_lsn`, reading each segment
//   from its start (a live log's newest segment up to its valid end: a torn tail being written is
//   not an error). A segment is decompressed whole (archive) or read whole (live) and read
//   through the log's reader. A segment file that vanished since discover() (a live one archived
//   and deleted by the daemon meanwhile, an archive file removed by retention) is read from another
//   archive copy of it (same segment, same log) that a source directory holds, when there is one;
//   else std::system_error (ENOENT) says it was removed since the replay began and that naming
//   the daemon's --archive-dir as a source too lets replay find the copies it archives.
// - LSN continuity across segments is checked (a segment's first lsn must follow the previous
//   one's last). Records before the oldest segment found are not reported as missing: compare
//   from_lsn with segments().front().first_lsn for that.
// - A live directory whose log a running daemon holds (its LOCK is in use, LogFs::lock_in_use) is
//   read only up to the ceiling of its state file (wal_state.h): every record up to it had been
//   synced, while a later one may be in a group whose fdatasync has not finished and may never
//   (the daemon then exits, and its recovery cuts that group and gives its LSNs to new events).
//   Reading ends there, before any byte past it is read, when anything is left past it;
//   stopped_at_live_limit() then says so. A log no
//   process holds is read to its valid end as the storage holds it, the way the daemon's recovery
//   reads it: its newest segment is synced and its clean cached pages dropped first (a group whose
//   fdatasync failed stays cached, though never stored, and recovery cuts it).
// - Damage (a bad archive file, a bad record, a gap in the LSNs) throws ArchiveDamage or
//   wal::WalCorruption naming the file and byte offset, unless `skip_damaged`: then each skipped
//   LSN range is reported through `on_skip` (first, last, file, problem) and reading goes on at the
//   next readable record (wal_salvage's rule inside a segment; the next segment otherwise).
// - A file of a newer format (wal_newer_format.h) is no damage: reading it throws
//   wal::WalNewerFormat when reading reaches it, skip_damaged or not (what comes before it is
//   read); discover() throws it when nothing else could be read.
// - Not thread-safe: one reader.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "ingest/archive/archive_format.h"
#include "ingest/log/log_fs.h"
#include "ingest/log/wal_reader.h"

namespace pm::archive {

class ChainError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ChainSegment {
  std::uint64_t segment = 0;
  std::string path;       // the file it is read from
  bool archived = false;  // .pmarc (else a live .wal)
  std::uint64_t first_lsn = 0;  // from its header
  std::uint64_t bytes = 0;      // on disk (compressed for archive files)
  std::uint64_t events = 0;     // from the archive header; 0 (unknown) for live segments
  // Non-empty when the file's header could not be read at discover(): reading then throws, or
  // with skip_damaged skips the segment. first_lsn is 0 (unknown) then.
  std::string problem;
};

// The bound on a running daemon's live log (see the contract).
struct LiveLimit {
  std::string dir;
  std::uint64_t lsn = 0;  // records up to it are read
  bool state_read = true;  // false: the state file could not be read, and no live record is read
};

struct SkippedRange {
  // Inclusive; last_lsn < first_lsn when no LSN could be named; first_lsn 0 when the range starts
  // before the oldest segment whose header could be read.
  std::uint64_t first_lsn = 0;
  std::uint64_t last_lsn = 0;
  std::string file;
  std::string problem;
};

// "lsn 5..9 in FILE: problem" ("lsn unknown" when no LSN could be named).
std::string describe(const SkippedRange& range);

class SegmentChain {
 public:
  static SegmentChain discover(wal::LogFs& fs, const std::vector<std::string>& dirs);
  SegmentChain(SegmentChain&&) noexcept;
  ~SegmentChain();

  const wal::LogId& log_id() const;
  const std::vector<ChainSegment>& segments() const;
  // Missing segment numbers between the ones found: (first missing, last missing).
  std::vector<std::pair<std::uint64_t, std::uint64_t>> gaps() const;
  // Set when a live directory's log is in use by a running daemon.
  const std::optional<LiveLimit>& live_limit() const;
  // Whether next() ended at a live record past live_limit() (events are left for a later read).
  bool stopped_at_live_limit() const;

  // Starts reading at the first event with lsn >= from_lsn.
  void start(std::uint64_t from_lsn, bool skip_damaged, std::function<void(const SkippedRange&)> on_skip = {});
  // After an exception, call start() again before reading on.
  std::optional<wal::Record> next();
  // Bytes of the chain's files read so far (for progress; segments before the one holding
  // from_lsn count as read), out of total_bytes() (the sizes found by discover()).
  std::uint64_t bytes_done() const;
  std::uint64_t total_bytes() const;

  struct State;  // opaque: the implementation's (segment_chain_state.h)

 private:
  explicit SegmentChain(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace pm::archive
