#pragma once
// archive_segment(): seals one applied live segment into the archive (archive_format.h).
//
// Contract:
// - Reads segment `segment` of the log in `wal_dir` through `fs`, whole, and checks every record
//   (checksums, LSN order, group markers) while it counts events by type and their arrival range;
//   damage throws wal::WalCorruption (nothing is archived then).
// - Compresses it (zstd, `level`), writes `<archive_dir>/<name>.tmp`, fsyncs it, renames it and
//   fsyncs the directory: when it returns, the archive file survives a power loss. Only then may
//   the caller delete the live segment.
// - A failed write, sync or rename throws ArchiveWriteError with the error code (disk full is
//   wal::is_disk_full(code)); the `.tmp` file is removed (best effort) and the live segment is
//   untouched. Calling it again later is the retry.
// - Any thread; it touches only these two files and the archive directory entry.
#include <cstdint>
#include <string>
#include <system_error>

#include "ingest/archive/archive_format.h"
#include "ingest/log/log_fs.h"

namespace pm::archive {

class ArchiveWriteError : public std::system_error {
 public:
  using std::system_error::system_error;
};

inline constexpr int kDefaultCompressionLevel = 3;

ArchiveEntry archive_segment(wal::LogFs& fs, const std::string& wal_dir, std::uint64_t segment,
                             const std::string& archive_dir, int level = kDefaultCompressionLevel);

// Whether `archive_dir` holds a complete archive of `segment` of log `log_id`: the file exists and
// its header is valid and names that log and segment. (The body is not read.)
bool is_archived(wal::LogFs& fs, const std::string& archive_dir, const wal::LogId& log_id, std::uint64_t segment);

// Removes leftover `.tmp` files of an interrupted archive_segment().
void remove_partial_archives(wal::LogFs& fs, const std::string& archive_dir);

}  // namespace pm::archive
