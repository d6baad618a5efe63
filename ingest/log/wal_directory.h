#pragma once
// The files of a log directory: segment names, leftover temporary files, segment headers.
// The one place that lists a log directory and reads a segment's header (writer, reader, tools).
// Stateless; safe from any thread.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ingest/log/log_fs.h"
#include "ingest/log/segment_file.h"
#include "ingest/log/wal_format.h"

namespace pm::wal {

inline constexpr char kLockFileName[] = "LOCK";

struct DirectoryListing {
  std::vector<std::uint64_t> segments;  // ascending
  std::vector<std::string> temporary;   // names ending in ".tmp": segments or a state file whose creation never finished
  std::vector<std::string> spares;      // spare.zeros, spare.partial (spare_segment.h)
  bool has_state = false;
};

std::string path_in(const std::string& dir, const std::string& name);
std::string segment_path(const std::string& dir, std::uint64_t segment);

// Throws std::system_error when the directory cannot be listed.
DirectoryListing list_log_dir(LogFs& fs, const std::string& dir);

// The header of `segment` in `dir`, checked (magic, CRC, the number in its name).
// Throws WalCorruption when it is not valid, or the file is missing; WalNewerFormat (no damage)
// when its magic is a newer format's (check_not_newer_format).
SegmentHeader read_segment_header(LogFs& fs, const std::string& dir, std::uint64_t segment);
// The same from a file already open (`segment` is the number in its name): it stays readable
// through that handle when the daemon removes it meanwhile.
SegmentHeader read_segment_header(SegmentFile& file, std::uint64_t segment);
// Throws WalNewerFormat when `file` begins with the magic of a newer log format, whatever its size
// (a newer format's header may be shorter); returns otherwise, a file that is too short included
// (left to the caller's own checks). It reads the header as the caller's own header read does
// (`stable_end` as SegmentFile::read's), so that read costs nothing more.
void check_not_newer_format(SegmentFile& file, std::uint64_t stable_end = UINT64_MAX);
// Opens a segment file for reading. Throws WalCorruption: "segment missing" (kSegmentMissing,
// segment_missing()) only when there is no such file, "cannot open segment" for any other error (a
// permission or I/O error is not a segment removed meanwhile); unreadable() when the system refused
// access (refused_access: no damage), not for an I/O error (damage).
std::unique_ptr<SegmentFile> open_segment_file(LogFs& fs, const std::string& path);

// Where a segment's first record starts, from its header.
Position first_position(const SegmentHeader& header);

// Checks that `segments` (ascending) follow each other without a gap; throws WalCorruption naming
// the first missing one.
void check_no_gap(const std::string& dir, const std::vector<std::uint64_t>& segments);

// The same for a log whose applied position is in `applied_segment` (wal.h): below it holes are
// allowed (applied segments an archive refused to let go, some removed by a crash), from it on
// (itself included, when older ones are kept) every segment must be there.
void check_no_gap_from_applied(const std::string& dir, const std::vector<std::uint64_t>& segments, std::uint64_t applied_segment);

// The first segment of the unbroken run of `segments` (ascending, not empty) that ends at the newest:
// where a reader of every record there is may start.
std::uint64_t first_of_newest_run(const std::vector<std::uint64_t>& segments);

}  // namespace pm::wal
