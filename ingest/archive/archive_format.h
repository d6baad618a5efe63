#pragma once
// The archive of applied log segments (--archive-dir; docs/wal-format.md, "Archive").
//
// One file per segment, `<segment as 16 hex digits>.pmarc`, written as `.tmp`, fsynced, renamed,
// directory fsynced, before the live segment is deleted:
//
//   header (kArchiveHeaderSize bytes): magic "PMARC01\n" | the ArchiveEntry fields below, fixed
//     order, little-endian (segment_version u32 followed by a reserved u32 of 0, every other
//     field 8 bytes; log_id 16 bytes) | reserved zeros | at offset 156: masked crc32c of the
//     header bytes before it
//   body: one zstd frame holding the segment file's bytes exactly as they were in the live log
//     (segment header, group markers, records: every checksum of the log is kept)
//   trailer (8 bytes): masked crc32c of every byte before it (header + body) | magic "PMAE"
//
// The header repeats what the index (archive_index.h) lists, so the index can always be rebuilt
// from the files.
//
// A later archive format ("PMARC02\n".."PMARC99\n"), or an archived segment of a later log format
// (segment_version above wal::kFormatVersion), is a newer format, not damage (wal_newer_format.h).
#include <cstdint>
#include <stdexcept>
#include <string>

#include "ingest/log/wal_format.h"

namespace pm::archive {

inline constexpr char kArchiveMagic[8] = {'P', 'M', 'A', 'R', 'C', '0', '1', '\n'};
inline constexpr char kTrailerMagic[4] = {'P', 'M', 'A', 'E'};
inline constexpr std::size_t kArchiveHeaderSize = 160;
inline constexpr std::size_t kArchiveTrailerSize = 8;
inline constexpr std::uint32_t kArchiveFormatVersion = 1;  // of the file (its magic), not of the segment it holds

// One archived segment: the header of its file and its line in the index.
struct ArchiveEntry {
  wal::LogId log_id{};
  std::uint64_t segment = 0;
  std::uint32_t segment_version = wal::kFormatVersion;  // of the archived segment (1, 2 or 3)
  std::uint64_t first_lsn = 0;   // of its first event record
  std::uint64_t last_lsn = 0;    // of its last one (first_lsn - 1 when it holds none)
  std::uint64_t base_offset = 0; // the segment header's base offset (log offset of its first record)
  std::uint64_t segment_bytes = 0;  // the segment file's size (uncompressed body)
  std::uint64_t file_bytes = 0;     // the archive file's size
  std::int64_t first_arrival_ms = 0;  // smallest / largest received time of its events (0: none)
  std::int64_t last_arrival_ms = 0;
  std::uint64_t trades = 0;
  std::uint64_t triggers = 0;
  std::int64_t archived_at_ms = 0;  // wall clock when it was archived
  std::uint64_t events() const { return trades + triggers; }
  bool operator==(const ArchiveEntry&) const = default;
};

std::string archive_file_name(std::uint64_t segment);  // "0000000000000001.pmarc"
// The segment number of an archive file name; false for other names (".tmp" files included).
bool parse_archive_file_name(const std::string& name, std::uint64_t& segment);

std::string encode_archive_header(const ArchiveEntry& entry);  // kArchiveHeaderSize bytes
// False when the bytes are not a valid header (magic or checksum); `problem` says which. A newer
// format's header is not valid either: throw_if_newer_archive tells it apart.
bool decode_archive_header(const char* data, std::size_t n, ArchiveEntry& out, std::string& problem);

// Throws wal::WalNewerFormat for `path` when the `n` header bytes at `data` are of a newer archive
// format (by the magic alone), or are a valid header whose archived segment is of a newer log
// format; returns otherwise, leaving any damage to the caller's checks.
void throw_if_newer_archive(const std::string& path, const char* data, std::size_t n);

// Damage found in an archive file (or its index): names the file and the byte offset.
class ArchiveDamage : public std::runtime_error {
 public:
  ArchiveDamage(const std::string& file, std::uint64_t offset, const std::string& what);
  const std::string& file() const { return file_; }
  std::uint64_t offset() const { return offset_; }
  const std::string& problem() const { return problem_; }

 private:
  std::string file_;
  std::uint64_t offset_;
  std::string problem_;
};

}  // namespace pm::archive
