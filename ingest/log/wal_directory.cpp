#include "ingest/log/wal_directory.h"

#include <algorithm>
#include <system_error>

#include "ingest/log/segment_file.h"
#include "ingest/log/spare_segment.h"
#include "ingest/log/wal_corruption.h"
#include "ingest/log/wal_newer_format.h"
#include "ingest/log/wal_state.h"

namespace pm::wal {

std::string path_in(const std::string& dir, const std::string& name) { return dir + "/" + name; }

std::string segment_path(const std::string& dir, std::uint64_t segment) {
  return path_in(dir, segment_file_name(segment));
}

DirectoryListing list_log_dir(LogFs& fs, const std::string& dir) {
  std::vector<std::string> names;
  if (const std::error_code ec = fs.list(dir, names)) throw std::system_error(ec, "list " + dir);
  DirectoryListing out;
  for (const std::string& name : names) {
    std::uint64_t segment = 0;
    if (parse_segment_file_name(name, segment)) {
      out.segments.push_back(segment);
    } else if (name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0) {
      out.temporary.push_back(name);
    } else if (name == kStateFileName) {
      out.has_state = true;
    } else if (name == kSpareFileName || name == kSparePartialFileName) {
      out.spares.push_back(name);
    }
  }
  std::sort(out.segments.begin(), out.segments.end());
  return out;
}

std::unique_ptr<SegmentFile> open_segment_file(LogFs& fs, const std::string& path) {
  try {
    return std::make_unique<SegmentFile>(fs, path);
  } catch (const std::system_error& e) {
    throw_if_segment_missing(path, e);
    throw WalCorruption(path, e);
  }
}

SegmentHeader read_segment_header(LogFs& fs, const std::string& dir, std::uint64_t segment) {
  const std::string path = segment_path(dir, segment);
  return read_segment_header(*open_segment_file(fs, path), segment);
}

void check_not_newer_format(SegmentFile& file, std::uint64_t stable_end) {
  constexpr std::size_t kMagicSize = sizeof kMagicV3;
  std::size_t n = kSegmentHeaderSize;  // the whole header: a flipped magic is damage (throw_if_newer_segment)
  const char* magic = file.read(0, n, stable_end);
  if (magic == nullptr) magic = file.read(0, n = kMagicSize, stable_end);  // a shorter file: from the same read
  if (magic != nullptr) throw_if_newer_segment(file.path(), magic, n);
}

SegmentHeader read_segment_header(SegmentFile& file, std::uint64_t segment) {
  check_not_newer_format(file, kSegmentHeaderSize);
  const char* p = file.read(0, kSegmentHeaderSize, kSegmentHeaderSize);
  SegmentHeader h;
  if (p == nullptr || !decode_segment_header(p, kSegmentHeaderSize, h)) throw WalCorruption(file.path(), 0, "invalid segment header");
  if (h.segment != segment) throw WalCorruption(file.path(), 0, "segment number in header does not match its name");
  return h;
}

Position first_position(const SegmentHeader& h) {
  return Position{h.segment, kSegmentHeaderSize, h.base_offset, h.first_lsn - 1};
}

void check_no_gap(const std::string& dir, const std::vector<std::uint64_t>& segments) {
  for (std::size_t i = 1; i < segments.size(); ++i)
    if (segments[i] != segments[i - 1] + 1)
      throw WalCorruption(segment_path(dir, segments[i]), 0,
                          "segment " + segment_file_name(segments[i - 1] + 1) + " is missing before it");
}

void check_no_gap_from_applied(const std::string& dir, const std::vector<std::uint64_t>& segments, std::uint64_t applied_segment) {
  auto from = std::lower_bound(segments.begin(), segments.end(), applied_segment);
  if (from != segments.begin() && (from == segments.end() || *from != applied_segment)) --from;  // reports it missing
  check_no_gap(dir, std::vector<std::uint64_t>(from, segments.end()));
}

std::uint64_t first_of_newest_run(const std::vector<std::uint64_t>& segments) {
  auto run = segments.end() - 1;
  while (run != segments.begin() && *(run - 1) + 1 == *run) --run;
  return *run;
}

}  // namespace pm::wal
