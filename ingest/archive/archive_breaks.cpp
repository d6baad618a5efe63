#include "ingest/archive/archive_breaks.h"

#include <algorithm>

#include "ingest/log/wal_format.h"

namespace pm::archive {

namespace {

std::string lsn_range(std::uint64_t first, std::uint64_t last) {
  return first <= last ? "lsn " + std::to_string(first) + ".." + std::to_string(last) : "no lsn";
}

// A run of segments no file holds, between the files of `before` and `after`.
ArchiveBreak missing_run(const ArchiveEntry& before, const ArchiveEntry& after, std::uint64_t first, std::uint64_t last) {
  const std::string files = archive_file_name(before.segment) + " and " + archive_file_name(after.segment);
  return ArchiveBreak{first, last, first,
                      "missing: no archive file holds segments " + wal::segment_file_name(first) + ".." +
                          wal::segment_file_name(last) + ", between " + files + " (" +
                          lsn_range(before.last_lsn + 1, after.first_lsn - 1) +
                          " at most); a gap in the archive, not retention's (it removes the oldest files only)"};
}

// The runs of segments between `before` and `after` that no file in `present` (ascending) holds.
void add_missing_runs(const ArchiveEntry& before, const ArchiveEntry& after, const std::vector<std::uint64_t>& present,
                      std::vector<ArchiveBreak>& out) {
  std::uint64_t next = before.segment + 1;  // the first segment not known to be held
  auto it = std::upper_bound(present.begin(), present.end(), before.segment);
  for (; it != present.end() && *it < after.segment; ++it) {
    if (*it > next) out.push_back(missing_run(before, after, next, *it - 1));
    next = std::max(next, *it + 1);
  }
  if (after.segment > next) out.push_back(missing_run(before, after, next, after.segment - 1));
}

}  // namespace

std::vector<ArchiveBreak> archive_breaks(const std::vector<ArchiveEntry>& files, std::vector<std::uint64_t> present) {
  std::sort(present.begin(), present.end());
  std::vector<ArchiveBreak> out;
  for (std::size_t i = 1; i < files.size(); ++i) {
    const ArchiveEntry& before = files[i - 1];
    const ArchiveEntry& after = files[i];
    if (after.segment != before.segment + 1) {
      add_missing_runs(before, after, present, out);
    } else if (after.first_lsn != before.last_lsn + 1) {
      out.push_back(ArchiveBreak{1, 0, after.segment,
                                 "chain broken: starts at lsn " + std::to_string(after.first_lsn) + ", " +
                                     archive_file_name(before.segment) + " before it ends at lsn " +
                                     std::to_string(before.last_lsn)});
    }
  }
  return out;
}

}  // namespace pm::archive
