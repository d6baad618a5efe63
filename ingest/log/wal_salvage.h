#pragma once
// Salvage: read every event record that can still be found in a damaged log, in order, stepping
// over what cannot be read and saying exactly which byte ranges and LSNs were skipped. For the
// operator (`pm-ingestctl wal-verify --salvage`, `wal-dump --salvage`); reads only, never cuts.
// Each segment is read from its header on; after a bad record the reader resynchronises at the
// next offset holding a valid record (or group marker) whose LSN comes later. Stateless.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "ingest/log/log_fs.h"
#include "ingest/log/wal_reader.h"

namespace pm::wal {

struct SkippedRange {
  std::string file;
  std::uint64_t from_offset = 0;  // first byte not readable
  std::uint64_t to_offset = 0;    // where reading resumed (the file's size when it did not)
  std::uint64_t last_lsn_before = 0;
  std::uint64_t next_lsn_after = 0;  // 0 when no record followed in this file
  std::string problem;
};

struct SalvageCounts {
  std::uint64_t records = 0;
  std::uint64_t skipped_ranges = 0;
  std::uint64_t skipped_bytes = 0;
  std::uint64_t unreadable_segments = 0;  // no valid header: skipped whole
  // Listed, then gone when opened: a running daemon removes the segments it has applied (their
  // events are in PostgreSQL). Not damage; nothing of them was read.
  std::uint64_t removed_segments = 0;
  // Segments whose file runs past where the next segment's header says their records end (a write
  // that failed and was cut, brought back by a power loss; never acknowledged): those bytes are
  // not read.
  std::uint64_t superseded_tails = 0;
  std::uint64_t superseded_bytes = 0;
  // The log's state file could not be read (a failing disk, a newer format): LSNs missing between
  // segments or below its ceiling were not looked for.
  bool state_unread = false;
};

// Calls `on_record` for each readable event record and `on_skip` for each damaged range. With the
// log's state file (of this log), LSNs no segment holds are damaged ranges too: between a segment
// and the next one from the applied segment on (below it, holes are allowed, as recovery allows
// them), and from the last record read up to the state's ceiling (synced, so maybe acknowledged).
// Not judged once a running daemon removed a segment during the read (it removes applied ones).
// `on_record` returns false to stop. Throws std::system_error when the directory cannot be read,
// WalCorruption (unreadable()) for a segment the system refuses to open, WalNewerFormat for one of
// a newer format (wal_newer_format.h): neither is damage to step over.
SalvageCounts salvage_log(LogFs& fs, const std::string& dir, const std::function<bool(const Record&)>& on_record,
                          const std::function<void(const SkippedRange&)>& on_skip);

// What salvage_log knows of the log from its state file: LSNs between the last one read and a
// segment of this log that starts later are a skipped range from the segment after `applied_segment`
// on. `seen`: a segment of this log was read with it.
struct Continuity {
  LogId log_id{};
  std::uint64_t applied_segment = 0;
  bool seen = false;
};

// The same for segment `segment` of `dir` alone, adding to `counts`. `last_lsn` is the LSN read last
// before it (0: none), and is updated. `next` is the header of the segment after it, when there is
// one and it is readable: of this log and numbered next, its base offset says where this segment's
// records end, and the bytes after that are superseded (counted, not read). With `continuity`, LSNs
// missing before it are reported (above). False when `on_record` asked to stop.
bool salvage_segment(LogFs& fs, const std::string& dir, std::uint64_t segment, std::uint64_t& last_lsn, SalvageCounts& counts,
                     const std::function<bool(const Record&)>& on_record, const std::function<void(const SkippedRange&)>& on_skip,
                     const std::optional<SegmentHeader>& next = std::nullopt, Continuity* continuity = nullptr);

}  // namespace pm::wal
