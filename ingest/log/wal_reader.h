#pragma once
// Reading the write-ahead log (format: wal_format.h).
//
// - WalReader reads event records in order from a record boundary up to a limit (the log's durable
//   end), moving from segment to segment and checking every checksum, LSN, group marker and the
//   chain of segment headers. Anything wrong throws WalCorruption naming the segment file and byte
//   offset: a bad record before the durable end is never skipped. A segment of a newer format
//   throws WalNewerFormat (wal_newer_format.h) instead: no damage. A group is checked whole at its
//   marker, before any of its records is returned: its body must lie before the segment's end (the
//   limit, in the limit's segment) and match the marker's checksum, and its records must fill it
//   with the marker's count. Half a group of whole records is damage, never events. Reading that
//   starts inside a group checks the groups from the next marker on. (GroupCheck::MarkersOnly, for
//   a peek at one record, checks records one by one and does not read groups whole.)
// - inspect_log() tells what a log directory holds without changing anything (operator tools;
//   safe while a daemon appends).
// Not thread-safe: one reader per thread. Reading a segment that is being appended is safe as long
// as the limit is durable.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ingest/log/log_fs.h"
#include "ingest/log/segment_file.h"
#include "ingest/log/wal_corruption.h"
#include "ingest/log/wal_format.h"
#include "ingest/log/wal_recovery_report.h"
#include "ingest/log/wal_scan.h"

namespace pm::wal {

struct Record {
  std::uint64_t lsn = 0;
  std::uint8_t type = 0;
  std::string payload;
  Position start;  // where the record begins
  Position end;    // the boundary after it
};

class WalReader {
 public:
  // Whole: every group is checked at its marker (above). MarkersOnly: markers are checked and
  // stepped over, records checked one by one (for a peek at one record that must not read a whole
  // group: the lag gauge; the writer's own reading checks the groups).
  enum class GroupCheck { Whole, MarkersOnly };
  WalReader(std::string dir, LogId log_id, const Position& from, LogFs& fs = posix_log_fs(),
            GroupCheck group_check = GroupCheck::Whole);
  ~WalReader();

  // The next event record that ends at or before `limit`, or nullopt when there is none.
  std::optional<Record> next(const Position& limit);
  const Position& position() const { return position_; }

 private:
  void open_segment(std::uint64_t segment);
  std::uint64_t sealed_size();
  bool skip_group_marker(const char* header, std::uint64_t end);
  void check_group_whole(const GroupMarker& marker, std::uint64_t end);
  std::uint32_t count_body_records(const char* body, std::uint64_t body_bytes, bool check_each) const;
  LogFs& fs_;
  GroupCheck group_check_;
  std::string dir_;
  LogId log_id_;
  Position position_;
  std::unique_ptr<SegmentFile> file_;
  std::uint64_t file_segment_ = 0;
  SegmentHeader file_header_;  // file_'s: its version and log id decide its markers' checksum
  std::optional<std::uint64_t> sealed_size_;  // of file_, once read while it is not the limit's segment
  // Where the body of the group being read ends in file_, once its marker was checked whole; none
  // after its last record, or when reading began inside a group.
  std::optional<std::uint64_t> group_body_end_;
};

// Why the log does not hold, ending exactly at `end`, an event record of `bytes` bytes (header
// included) with LSN end.lsn and a payload whose CRC-32C is `payload_crc`; "" when it does. Reads
// that one record (its segment must still exist); damage or another record there is a reason,
// never an exception. A segment the system refuses to open (WalCorruption::unreadable()) throws:
// nothing is known of what it holds, and the writer retries; so does one of a newer format
// (WalNewerFormat, wal_newer_format.h), which this build cannot read. For the writer's check of the record
// its checkpoint names.
std::string record_mismatch(const std::string& dir, LogId log_id, const Position& end, std::uint64_t bytes,
                            std::uint32_t payload_crc, LogFs& fs = posix_log_fs());

// What a log directory holds. `end` is where the valid records of the newest segment stop; `tail`
// says whether bytes after it are a torn last group or corruption.
struct LogExtent {
  LogId log_id{};
  Position oldest;  // where the run of segments ending at the newest starts (after the last hole below the applied position, if any)
  Position end;
  std::uint64_t segments = 0;  // every segment file, those below a hole included
  // The runs of consecutive segments below the last hole (applied segments kept for an archive
  // that could not be used, some removed by a crash: wal.h), oldest first, each as its first and
  // last segment; empty when there is no hole. Each is read on its own, from its first segment's
  // header to the end of its last segment.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> runs_below_hole;
  std::uint32_t newest_version = kFormatVersion;
  std::uint64_t newest_file_size = 0;
  TailState tail = TailState::Clean;
  std::string tail_problem;
  std::uint64_t later_valid_offset = 0;
  // From the state file (wal_state.h), when it is there and valid: the applied position the
  // daemon last recorded, and the ceiling (every record up to it had been synced).
  bool has_state = false;
  Position applied;
  Position ceiling;
  // What recovery would do at the daemon's next start (the same findings it reports then).
  std::vector<RecoveryFinding> pending_recovery;
};

// A torn last group below the state's ceiling is reported as Corrupt: it had been synced. Safe
// beside a daemon appending to the log (the state file is read before the segments).
// Throws WalCorruption for unreadable headers or gaps (a hole below the state's applied position
// is none: the log's recovery allows it), WalNewerFormat for a segment of a newer format (no
// damage), std::runtime_error for an empty directory.
LogExtent inspect_log(const std::string& dir, LogFs& fs = posix_log_fs());

}  // namespace pm::wal
