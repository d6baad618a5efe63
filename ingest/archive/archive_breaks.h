#pragma once
// archive_breaks(): where the archive's chain of files is broken between two neighbouring files,
// found from the files alone, so that ArchiveIndex::load() reports a gap at every load, not only
// at the first one after a file went (it then saves an index without the file).
//
// Contract:
// - A break is a run of segment numbers between two readable archive files that no archive file
//   holds (a file whose header is damaged holds its number: it is reported as damaged already),
//   or two readable files of consecutive segments whose LSNs do not follow (the later one's
//   first lsn is not the earlier one's last + 1).
// - Nothing before the oldest readable file is a break: retention removes the oldest files only,
//   so a trimmed front is no gap. Nor is anything after the newest (it is not archived yet).
// - Pure: no file is read.
#include <cstdint>
#include <string>
#include <vector>

#include "ingest/archive/archive_format.h"

namespace pm::archive {

struct ArchiveBreak {
  std::uint64_t first_missing = 0;  // the segments no file holds (first > last: none, LSNs only)
  std::uint64_t last_missing = 0;
  std::uint64_t reported_segment = 0;  // the first missing one, or the file whose LSNs do not follow
  std::string problem;                 // what is wrong, naming the files on both sides and the LSNs
};

// The breaks between neighbours of `files` (the readable files' headers, ascending segment);
// `present` holds the segment of every archive file there, damaged ones included.
std::vector<ArchiveBreak> archive_breaks(const std::vector<ArchiveEntry>& files, std::vector<std::uint64_t> present);

}  // namespace pm::archive
