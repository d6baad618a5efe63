#pragma once
// summarize_segment(): checks one segment file's bytes with the log's own scanner and reader and
// tells what it holds (the ArchiveEntry fields that come from the records). Stateless; any thread.
#include <cstdint>
#include <string>

#include "ingest/log/log_fs.h"
#include "ingest/log/wal_format.h"
#include "ingest/log/wal_reader.h"

namespace pm::archive {

struct SegmentSummary {
  wal::SegmentHeader header;
  std::uint64_t first_lsn = 0;  // the header's first lsn
  std::uint64_t last_lsn = 0;   // of the last event record (first_lsn - 1 when none)
  std::uint64_t trades = 0;
  std::uint64_t triggers = 0;
  std::int64_t first_arrival_ms = 0;  // smallest / largest received_ms (0 when no event)
  std::int64_t last_arrival_ms = 0;
  std::uint64_t file_bytes = 0;  // the segment file's size, all of it checked
};

// `bytes` are segment `segment`'s file; `dir` is only used to name it in errors
// (`<dir>/<segment file name>`). Every group (marker, body checksum, record count), record
// (checksum, LSN order, type) and event payload (decode_event) is checked, and the bytes must end
// exactly after the last group. Throws wal::WalCorruption naming that path and the offset.
SegmentSummary summarize_segment(const std::string& dir, std::uint64_t segment, const std::string& bytes);

// Counts one event record into `s` (type, arrival range, last lsn); false, counting nothing, when
// its payload does not decode as an event.
bool add_event(SegmentSummary& s, const wal::Record& r);

// The same for the file `<dir>/<segment file name>` read through `fs`, a window at a time (a
// segment of any size, in memory of the order of its largest group). A file that is not there is
// wal::WalCorruption whose segment_missing() is true, as the log's reader reports it (a daemon
// removes applied segments: callers tell that from damage by it); std::system_error when the file
// cannot be read otherwise.
SegmentSummary summarize_segment(wal::LogFs& fs, const std::string& dir, std::uint64_t segment);

}  // namespace pm::archive
