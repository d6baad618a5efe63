#pragma once
// The recovery rule: how far a segment's records are valid, and whether what follows is a torn
// tail (cut it) or corruption (stop). Used by the log at start-up and by the operator tools.
//
// Version 2 and 3 segments are read group by group (wal_format.h; in version 3 a marker's
// checksum is keyed by the log id, so a marker inside a producer's bytes is no marker). A group is valid when its marker,
// its body checksum and every record in it check out. At the first invalid group:
// - Torn: no valid group marker follows it. It is the last group written, which a power loss
//   may leave damaged anywhere (cut, zeroed or garbage pages, in any order); its fdatasync had not
//   returned, so none of its records was acknowledged, unless the storage lost data it had
//   confirmed as flushed (which no format can tell).
// - Corrupt: a valid group marker follows it (after the body its own marker states, when that
//   marker checks out: the body is producers' bytes and may hold anything). That later group was
//   written only after the bad one's fdatasync returned: acknowledged data is damaged. Never cut
//   silently.
// Version 1 segments (no markers) keep their old rule: torn only when no valid record follows
// (zeros included: version 1 never preallocated).
// In versions 2 and 3, zeros from the first invalid group to the end of the file are no damage but the
// preallocated rest of the segment (wal.h, Options::preallocate): the scan ends there, Clean.
// Stateless; reads only.
#include <cstdint>
#include <string>

#include "ingest/log/log_fs.h"
#include "ingest/log/wal_format.h"

namespace pm::wal {

enum class TailState {
  Clean,    // the valid records end at the end of the file, or only zeros follow them (the
            // preallocated rest of the newest segment: valid_end is then below file_size)
  Torn,     // the last group is damaged or incomplete: cut at valid_end
  Corrupt,  // damage before a later valid group (or record, in version 1): never cut
};

struct SegmentScan {
  SegmentHeader header;
  Position valid_end;       // boundary after the last valid group
  std::uint64_t file_size = 0;
  TailState tail = TailState::Clean;
  std::string problem;      // what is wrong at valid_end when not Clean
  std::uint64_t later_valid_offset = 0;  // Corrupt: where the valid data after the damage starts
  std::uint64_t records = 0;
};

// Scans the whole segment file from its first record. Throws WalCorruption when the header itself
// is invalid, WalNewerFormat (no damage) when its magic is a newer format's, std::system_error when
// the file cannot be read.
SegmentScan scan_segment(LogFs& fs, const std::string& path);

}  // namespace pm::wal
