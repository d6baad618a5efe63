#pragma once
// Reading archive files (archive_format.h).
//
// - read_archive(): the archived segment, checked: the whole-file checksum (trailer), the header,
//   the zstd frame, and that the decompressed bytes are a segment of the size and header the
//   archive header states. Damage throws ArchiveDamage naming the file and byte offset.
// - verify_archive(): read_archive() plus every record of the segment (checksums, LSN order, group
//   markers, the LSN range and event counts of the header). Read-only. Damage inside the archived
//   segment is reported as ArchiveDamage at the body's offset, its problem naming the segment
//   offset.
// - A file of a newer format (archive_format.h) throws wal::WalNewerFormat from each of them: it
//   is no damage, and no caller may take it for damage or step over it.
// Any thread; nothing is shared.
#include <string>

#include "ingest/archive/archive_format.h"
#include "ingest/log/log_fs.h"

namespace pm::archive {

struct ArchivedSegment {
  ArchiveEntry entry;
  std::string segment_bytes;  // the segment file as it was in the live log
};

ArchivedSegment read_archive(wal::LogFs& fs, const std::string& path);  // also std::system_error (I/O)
ArchiveEntry verify_archive(wal::LogFs& fs, const std::string& path);

// The header of the archive file at `path`, checked (magic, checksum) and matched against the
// file's size; the body is not read. False with `problem` set when it is not valid or cannot be
// read. Never throws for damage or I/O errors; throws wal::WalNewerFormat for a newer format.
bool read_archive_header(wal::LogFs& fs, const std::string& path, ArchiveEntry& out, std::string& problem);

}  // namespace pm::archive
