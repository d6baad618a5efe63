#pragma once
// store_damaged_segment(): the operator's way past a live log segment whose records are damaged.
// The daemon cannot archive such a segment (archive_segment() refuses damage), so with
// --archive-dir every later applied segment waits behind it in the live log until producers get
// `busy`. This archives it as it is (`pm-ingestctl archive store-damaged`).
//
// Contract:
// - Refuses (DamagedSegmentRefused, naming why and what to do instead) a segment that is not in
//   `wal_dir`, whose records are not damaged (the daemon archives it itself), whose own header
//   cannot be read (the archive could not name it; one of a newer format throws wal::WalNewerFormat
//   instead: no damage), that is not the oldest segment of the log
//   (the daemon archives oldest first) or is its newest (still appended to: a torn tail is cut at
//   the next start), that the log's state file does not show wholly applied, that the archive
//   already holds, or when the archive holds another log's segments or segments after it.
// - The archive file's header: the segment header's log, number and first lsn; as last lsn the
//   next segment's first lsn - 1 when that segment is in `wal_dir`, else the last readable
//   record's; events, counts and arrival range of the readable records only. Its body is the
//   segment's bytes exactly as they are, so the damage stays visible: `pm-ingestctl archive verify`
//   names the file as damaged, and a replay stops there unless --skip-damaged (which names the
//   LSNs it skips). Written like archive_segment(): durable when it returns; then index.ndjson
//   lists it.
// - The caller makes sure no daemon uses the log or the archive meanwhile (pm-ingestctl holds the
//   log's LOCK and ARCHIVE.LOCK). Any thread; not thread-safe against other writers of the
//   archive.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "ingest/archive/archive_format.h"
#include "ingest/log/log_fs.h"
#include "ingest/log/wal_salvage.h"

namespace pm::archive {

class DamagedSegmentRefused : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct StoredDamagedSegment {
  ArchiveEntry entry;
  std::string damage;                      // what archive_segment() found wrong
  std::vector<wal::SkippedRange> skipped;  // the unreadable byte ranges, as the salvage found them
};

StoredDamagedSegment store_damaged_segment(wal::LogFs& fs, const std::string& wal_dir, std::uint64_t segment,
                                          const std::string& archive_dir, int level = 3);

}  // namespace pm::archive
