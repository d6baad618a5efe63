// apply_archive_retention() (archive_index.h).
#include <algorithm>
#include <cerrno>
#include <cstdint>

#include "ingest/archive/archive_file_io.h"
#include "ingest/archive/archive_index.h"
#include "ingest/archive/archive_writer.h"

namespace pm::archive {

std::int64_t newest_arrival_ms(const ArchiveEntry& e) { return e.events() > 0 ? e.last_arrival_ms : e.archived_at_ms; }

namespace {

// For each entry (ascending), when its newest data had arrived: its own time, unless that lies
// after `now_ms` (stamped by a clock that was ahead and got corrected): then the earliest time of
// a later segment (its events came before theirs), at most `now_ms`, instead of holding back the
// age limit until real time catches up with it. A time in the past is the entry's own and no
// other's: a segment stamped by a clock that was behind (1970 at boot) must not age the older
// segments before it, which would all go at once.
std::vector<std::int64_t> arrived_by(const std::vector<ArchiveEntry>& entries, std::int64_t now_ms) {
  std::vector<std::int64_t> out(entries.size());
  std::int64_t later_earliest = INT64_MAX;
  for (std::size_t i = entries.size(); i-- > 0;) {
    const std::int64_t own = newest_arrival_ms(entries[i]);
    out[i] = own <= now_ms ? own : std::min(now_ms, later_earliest);
    later_earliest = std::min(later_earliest, own);
  }
  return out;
}

// Whether the oldest entry, whose data had arrived by `oldest_arrived_ms`, goes.
bool over_limits(const ArchiveIndex& index, std::uint64_t max_bytes, std::int64_t max_age_ms, std::int64_t now_ms,
                 std::int64_t oldest_arrived_ms) {
  if (max_bytes > 0 && index.total_file_bytes() > max_bytes) return true;
  return max_age_ms > 0 && oldest_arrived_ms < now_ms - max_age_ms;
}

}  // namespace

std::vector<ArchiveEntry> apply_archive_retention(wal::LogFs& fs, ArchiveIndex& index, std::uint64_t max_bytes,
                                                  std::int64_t max_age_ms, std::int64_t now_ms,
                                                  std::uint64_t keep_from_segment) {
  const std::vector<std::int64_t> arrived = arrived_by(index.entries(), now_ms);  // the entry at the front is number removed.size()
  std::vector<ArchiveEntry> removed;
  while (!index.entries().empty() && over_limits(index, max_bytes, max_age_ms, now_ms, arrived[removed.size()]) &&
         index.entries().front().segment < keep_from_segment) {
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
