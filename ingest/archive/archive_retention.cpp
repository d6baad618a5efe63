// apply_archive_retention() (archive_index.h).
#include <cerrno>

#include "ingest/archive/archive_file_io.h"
#include "ingest/archive/archive_index.h"
#include "ingest/archive/archive_writer.h"

namespace pm::archive {

namespace {

// When the segment's newest data arrived: its newest event, or when it was archived if it holds none.
std::int64_t newest_arrival_ms(const ArchiveEntry& e) { return e.events() > 0 ? e.last_arrival_ms : e.archived_at_ms; }

bool over_limits(const ArchiveIndex& index, std::uint64_t max_bytes, std::int64_t max_age_ms, std::int64_t now_ms) {
  if (index.entries().empty()) return false;
  if (max_bytes > 0 && index.total_file_bytes() > max_bytes) return true;
  return max_age_ms > 0 && newest_arrival_ms(index.entries().front()) < now_ms - max_age_ms;
}

}  // namespace

std::vector<ArchiveEntry> apply_archive_retention(wal::LogFs& fs, ArchiveIndex& index, std::uint64_t max_bytes,
                                                  std::int64_t max_age_ms, std::int64_t now_ms,
                                                  std::uint64_t keep_from_segment) {
  std::vector<ArchiveEntry> removed;
  while (over_limits(index, max_bytes, max_age_ms, now_ms) && index.entries().front().segment < keep_from_segment) {
    const ArchiveEntry oldest = index.entries().front();
    const std::string path = path_in_dir(index.dir(), archive_file_name(oldest.segment));
    // A file already gone (a crash after its deletion, before the index was rewritten) is fine.
    if (const std::error_code ec = fs.remove(path); ec && ec != std::errc::no_such_file_or_directory)
      throw ArchiveWriteError(ec, "remove " + path);
    index.remove(oldest.segment);  // its directory fsync also makes the deletion durable
    removed.push_back(oldest);
  }
  return removed;
}

}  // namespace pm::archive
