#include "ingest/archive/archive_reader.h"

#include <zstd.h>

#include <cstring>
#include <system_error>

#include "ingest/archive/archive_file_io.h"
#include "ingest/archive/segment_summary.h"
#include "ingest/log/wal_corruption.h"
#include "ingest/log/wal_newer_format.h"
#include "repos/util/crc32c.h"

namespace pm::archive {

namespace {

std::uint32_t get_u32(const char* p) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// The trailer: its magic, then the checksum of everything before it. A mismatch is located as
// well as a whole-file checksum allows: the header (its own checksum) or else the body.
void check_trailer(const std::string& path, const std::string& bytes) {
  const std::size_t n = bytes.size();
  if (n < kArchiveHeaderSize + kArchiveTrailerSize)
    throw ArchiveDamage(path, n, "file of " + std::to_string(n) + " bytes is too short for an archive");
  if (std::memcmp(bytes.data() + n - 4, kTrailerMagic, sizeof kTrailerMagic) != 0)
    throw ArchiveDamage(path, n - 4, "no trailer magic at the end (file cut short or damaged)");
  const std::size_t covered = n - kArchiveTrailerSize;
  if (crc32c::unmask(get_u32(bytes.data() + covered)) == crc32c::value(bytes.data(), covered)) return;
  ArchiveEntry entry;
  std::string problem;
  if (!decode_archive_header(bytes.data(), n, entry, problem)) throw ArchiveDamage(path, 0, problem);
  throw ArchiveDamage(path, kArchiveHeaderSize,
                      "archive checksum mismatch: the body (bytes " + std::to_string(kArchiveHeaderSize) + ".." +
                          std::to_string(covered) + ") or the trailer checksum at " + std::to_string(covered) + " is damaged");
}

ArchiveEntry check_header(const std::string& path, const std::string& bytes) {
  ArchiveEntry entry;
  std::string problem;
  if (!decode_archive_header(bytes.data(), bytes.size(), entry, problem)) throw ArchiveDamage(path, 0, problem);
  if (entry.file_bytes != bytes.size())
    throw ArchiveDamage(path, 0, "header says " + std::to_string(entry.file_bytes) + " bytes, the file has " +
                                     std::to_string(bytes.size()));
  return entry;
}

std::string decompress(const std::string& path, const ArchiveEntry& entry, const std::string& bytes) {
  const char* body = bytes.data() + kArchiveHeaderSize;
  const std::size_t n = bytes.size() - kArchiveHeaderSize - kArchiveTrailerSize;
  if (ZSTD_findFrameCompressedSize(body, n) != n) throw ArchiveDamage(path, kArchiveHeaderSize, "body is not one zstd frame");
  const unsigned long long content = ZSTD_getFrameContentSize(body, n);
  if (content != entry.segment_bytes)
    throw ArchiveDamage(path, kArchiveHeaderSize, "zstd frame does not hold the " + std::to_string(entry.segment_bytes) +
                                                      " segment bytes the header states");
  std::string out(static_cast<std::size_t>(content), '\0');
  const std::size_t got = ZSTD_decompress(out.data(), out.size(), body, n);
  if (ZSTD_isError(got)) throw ArchiveDamage(path, kArchiveHeaderSize, std::string("zstd: ") + ZSTD_getErrorName(got));
  if (got != out.size()) throw ArchiveDamage(path, kArchiveHeaderSize, "zstd frame decompressed to fewer bytes than stated");
  return out;
}

// The archived segment's own header must be the one the archive header describes.
void check_segment_header(const std::string& path, const ArchiveEntry& entry, const std::string& segment) {
  wal::throw_if_newer_segment(path, segment.data(), segment.size());
  wal::SegmentHeader h;
  if (!wal::decode_segment_header(segment.data(), segment.size(), h))
    throw ArchiveDamage(path, kArchiveHeaderSize, "archived segment has no valid segment header");
  if (h.log_id != entry.log_id || h.segment != entry.segment || h.base_offset != entry.base_offset ||
      h.first_lsn != entry.first_lsn || h.version != entry.segment_version)
    throw ArchiveDamage(path, kArchiveHeaderSize, "archived segment's header (log " + wal::log_id_hex(h.log_id) + ", segment " +
                                                      std::to_string(h.segment) + ", first lsn " + std::to_string(h.first_lsn) +
                                                      ") does not match the archive header");
}

std::string field_mismatch(const char* name, std::uint64_t header, std::uint64_t records) {
  return std::string(name) + ": header says " + std::to_string(header) + ", the records " + std::to_string(records);
}

// "" when the summary of the records agrees with the header.
std::string compare_to_records(const ArchiveEntry& e, const SegmentSummary& s) {
  if (e.last_lsn != s.last_lsn) return field_mismatch("last lsn", e.last_lsn, s.last_lsn);
  if (e.trades != s.trades) return field_mismatch("trades", e.trades, s.trades);
  if (e.triggers != s.triggers) return field_mismatch("triggers", e.triggers, s.triggers);
  if (e.first_arrival_ms != s.first_arrival_ms || e.last_arrival_ms != s.last_arrival_ms)
    return "arrival range: header says " + std::to_string(e.first_arrival_ms) + ".." + std::to_string(e.last_arrival_ms) +
           ", the records " + std::to_string(s.first_arrival_ms) + ".." + std::to_string(s.last_arrival_ms);
  return "";
}

}  // namespace

ArchivedSegment read_archive(wal::LogFs& fs, const std::string& path) {
  std::string bytes;
  if (const std::error_code ec = read_whole_file(fs, path, bytes)) throw std::system_error(ec, "read " + path);
  throw_if_newer_archive(path, bytes.data(), bytes.size());  // first: a newer format's trailer is unknown
  check_trailer(path, bytes);
  ArchivedSegment out;
  out.entry = check_header(path, bytes);
  out.segment_bytes = decompress(path, out.entry, bytes);
  check_segment_header(path, out.entry, out.segment_bytes);
  return out;
}

ArchiveEntry verify_archive(wal::LogFs& fs, const std::string& path) {
  const ArchivedSegment archived = read_archive(fs, path);
  SegmentSummary summary;
  try {
    summary = summarize_segment(path, archived.entry.segment, archived.segment_bytes);
  } catch (const wal::WalCorruption& e) {
    throw ArchiveDamage(path, kArchiveHeaderSize,
                        "archived segment damaged at its offset " + std::to_string(e.offset()) + ": " + e.problem());
  }
  if (const std::string problem = compare_to_records(archived.entry, summary); !problem.empty())
    throw ArchiveDamage(path, 0, "header disagrees with the archived records: " + problem);
  return archived.entry;
}

bool read_archive_header(wal::LogFs& fs, const std::string& path, ArchiveEntry& out, std::string& problem) {
  std::unique_ptr<wal::LogFile> file;
  std::uint64_t size = 0;
  std::error_code ec = fs.open(path, wal::OpenMode::Read, file);
  if (!ec) ec = file->size(size);
  char header[kArchiveHeaderSize];
  std::size_t got = 0;
  if (!ec) ec = file->read_at(0, header, sizeof header, got);
  if (ec) {
    problem = "cannot read " + path + ": " + ec.message();
    return false;
  }
  throw_if_newer_archive(path, header, got);
  if (!decode_archive_header(header, got, out, problem)) return false;
  if (out.file_bytes == size) return true;
  problem = "header says " + std::to_string(out.file_bytes) + " bytes, the file has " + std::to_string(size);
  return false;
}

}  // namespace pm::archive
