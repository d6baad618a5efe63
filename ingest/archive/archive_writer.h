#pragma once
// archive_segment(): seals one applied live segment into the archive (archive_format.h).
//
// Contract:
// - Reads segment `segment` of the log in `wal_dir` through `fs` and checks every record
//   (checksums, LSN order, group markers) while it counts events by type and their arrival range;
//   damage throws wal::WalCorruption (nothing is archived then; a segment that is gone is
//   WalCorruption::segment_missing()).
// - Compresses it (zstd, `level`) into `<archive_dir>/<name>.tmp`, fsyncs it, renames it and
//   fsyncs the directory: when it returns, the archive file survives a power loss. Only then may
//   the caller delete the live segment.
// - Streams: the segment is read and compressed 1 MiB at a time, zstd's output written as it
//   comes (the body read back once for the file's checksum), so the memory it needs does not grow
//   with --wal-segment-bytes (it held the segment 3-4 times over: a 4 GiB segment needed ~14 GiB).
//   Reading an archive file back (archive_reader.h) still holds the whole segment and its
//   compressed body.
// - A failed write, sync or rename throws ArchiveWriteError with the error code (disk full is
//   wal::is_disk_full(code)); the `.tmp` file is removed (best effort) and the live segment is
//   untouched. Calling it again later is the retry.
// - Any thread; it touches only these two files and the archive directory entry.
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <system_error>

#include "ingest/archive/archive_format.h"
#include "ingest/archive/segment_summary.h"
#include "ingest/log/log_fs.h"

namespace pm::archive {

class ArchiveWriteError : public std::system_error {
 public:
  using std::system_error::system_error;
};

// archive_segment() was told to give up (its `abandon` said so between two chunks of the body):
// nothing was written, the `.tmp` file is removed.
class ArchiveAbandoned : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline constexpr int kDefaultCompressionLevel = 3;

// `abandon` (may be empty) is asked before each 1 MiB of the body is compressed: a stop need not
// wait for a whole segment at a slow level (19: tens of seconds for 64 MiB).
ArchiveEntry archive_segment(wal::LogFs& fs, const std::string& wal_dir, std::uint64_t segment,
                             const std::string& archive_dir, int level = kDefaultCompressionLevel,
                             const std::function<bool()>& abandon = {});

// The writing half of archive_segment(), for a segment already summarized (`summary`: its fields
// go into the header as they are, and summary.file_bytes of the live segment into the body).
// store_damaged_segment() uses it for a segment whose summary comes from a salvage.
ArchiveEntry write_archive_file(wal::LogFs& fs, const std::string& wal_dir, const SegmentSummary& summary,
                                const std::string& archive_dir, int level = kDefaultCompressionLevel,
                                const std::function<bool()>& abandon = {});

// Whether `archive_dir` holds a complete archive of `segment` of log `log_id`: the file exists and
// its header is valid and names that log and segment. (The body is not read.) A file of a newer
// format is not known to be one: false (the live segment is kept). Never throws: the log asks it
// (Options::may_remove) where nothing would catch it.
bool is_archived(wal::LogFs& fs, const std::string& archive_dir, const wal::LogId& log_id, std::uint64_t segment);

// Removes leftover `.tmp` files of an interrupted archive_segment().
void remove_partial_archives(wal::LogFs& fs, const std::string& archive_dir);

}  // namespace pm::archive
