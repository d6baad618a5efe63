#include "ingest/archive/archive_writer.h"

#include <zstd.h>

#include <chrono>
#include <cstring>

#include "ingest/archive/archive_file_io.h"
#include "ingest/archive/archive_reader.h"
#include "ingest/archive/segment_summary.h"
#include "ingest/log/wal_corruption.h"
#include "ingest/log/wal_directory.h"
#include "repos/util/crc32c.h"

namespace pm::archive {

namespace {

std::string read_live_segment(wal::LogFs& fs, const std::string& path) {
  std::string bytes;
  if (const std::error_code ec = read_whole_file(fs, path, bytes)) {
    if (ec == std::errc::no_such_file_or_directory) throw wal::WalCorruption(path, 0, wal::kSegmentMissing);
    throw std::system_error(ec, "read " + path);
  }
  return bytes;
}

std::string compress(const std::string& bytes, int level) {
  std::string out(ZSTD_compressBound(bytes.size()), '\0');
  const std::size_t n = ZSTD_compress(out.data(), out.size(), bytes.data(), bytes.size(), level);
  if (ZSTD_isError(n))
    throw ArchiveWriteError(std::make_error_code(std::errc::io_error), std::string("zstd compression: ") + ZSTD_getErrorName(n));
  out.resize(n);
  return out;
}

ArchiveEntry entry_of(const SegmentSummary& s, std::uint64_t segment_bytes, std::uint64_t body_bytes) {
  ArchiveEntry e;
  e.log_id = s.header.log_id;
  e.segment = s.header.segment;
  e.segment_version = s.header.version;
  e.first_lsn = s.first_lsn;
  e.last_lsn = s.last_lsn;
  e.base_offset = s.header.base_offset;
  e.segment_bytes = segment_bytes;
  e.file_bytes = kArchiveHeaderSize + body_bytes + kArchiveTrailerSize;
  e.first_arrival_ms = s.first_arrival_ms;
  e.last_arrival_ms = s.last_arrival_ms;
  e.trades = s.trades;
  e.triggers = s.triggers;
  e.archived_at_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  return e;
}

// Header, body, trailer (archive_format.h).
std::string archive_bytes(const ArchiveEntry& entry, const std::string& body) {
  std::string out = encode_archive_header(entry);
  out += body;
  const std::uint32_t crc = crc32c::mask(crc32c::value(out.data(), out.size()));
  char trailer[kArchiveTrailerSize];
  std::memcpy(trailer, &crc, 4);
  std::memcpy(trailer + 4, kTrailerMagic, sizeof kTrailerMagic);
  out.append(trailer, sizeof trailer);
  return out;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

ArchiveEntry archive_segment(wal::LogFs& fs, const std::string& wal_dir, std::uint64_t segment,
                             const std::string& archive_dir, int level) {
  const std::string bytes = read_live_segment(fs, wal::segment_path(wal_dir, segment));
  const SegmentSummary summary = summarize_segment(wal_dir, segment, bytes);
  const std::string body = compress(bytes, level);
  const ArchiveEntry entry = entry_of(summary, bytes.size(), body.size());
  if (const std::error_code ec = fs.create_dir(archive_dir)) throw ArchiveWriteError(ec, "create directory " + archive_dir);
  write_file_atomically(fs, archive_dir, archive_file_name(segment), archive_bytes(entry, body));
  return entry;
}

bool is_archived(wal::LogFs& fs, const std::string& archive_dir, const wal::LogId& log_id, std::uint64_t segment) {
  ArchiveEntry entry;
  std::string problem;
  return read_archive_header(fs, path_in_dir(archive_dir, archive_file_name(segment)), entry, problem) &&
         entry.log_id == log_id && entry.segment == segment;
}

void remove_partial_archives(wal::LogFs& fs, const std::string& archive_dir) {
  std::vector<std::string> names;
  if (const std::error_code ec = fs.list(archive_dir, names)) {
    if (ec == std::errc::no_such_file_or_directory) return;
    throw ArchiveWriteError(ec, "list " + archive_dir);
  }
  bool removed = false;
  for (const std::string& name : names) {
    if (!ends_with(name, ".tmp")) continue;
    const std::string path = path_in_dir(archive_dir, name);
    if (const std::error_code ec = fs.remove(path)) throw ArchiveWriteError(ec, "remove " + path);
    removed = true;
  }
  if (!removed) return;
  if (const std::error_code ec = fs.sync_dir(archive_dir)) throw ArchiveWriteError(ec, "fsync directory " + archive_dir);
}

}  // namespace pm::archive
