#include "ingest/log/wal_scan.h"

#include <algorithm>

#include "ingest/log/segment_file.h"
#include "ingest/log/wal_corruption.h"
#include "ingest/log/wal_directory.h"

namespace pm::wal {

namespace {

// A record header whose lsn could follow `last_lsn` (no wrap, no absurd jump).
bool plausible_lsn(std::uint64_t lsn, std::uint64_t last_lsn) { return lsn > last_lsn && lsn - last_lsn <= (1ull << 32); }

// What a scan says when the file ends before the size it had when the scan began: it was cut
// meanwhile (a reader beside the daemon: the operator tools), and the rest cannot be judged.
const char* const kShrankDuringScan = "the file ended before the size it had when the scan began (it changed meanwhile)";

// Checks one event record at `pos` ending no later than `end`; "" when valid.
std::string check_record(SegmentFile& f, const Position& pos, std::uint64_t end, std::uint64_t& bytes) {
  const std::uint64_t left = end - pos.offset;
  if (left < kRecordHeaderSize) return "incomplete record header (" + std::to_string(left) + " bytes)";
  const char* header = f.read(pos.offset, kRecordHeaderSize);
  if (header == nullptr) return kShrankDuringScan;
  const RecordHeader h = decode_record_header(header);
  bytes = kRecordHeaderSize + static_cast<std::uint64_t>(h.length);
  if (bytes > left) return "record of " + std::to_string(h.length) + " bytes runs past the end";
  const char* record = f.read(pos.offset, static_cast<std::size_t>(bytes));
  if (record == nullptr) return kShrankDuringScan;
  if (!record_checksum_ok(record, static_cast<std::size_t>(bytes))) return "checksum mismatch";
  if (h.lsn != pos.lsn + 1) return "lsn " + std::to_string(h.lsn) + " where " + std::to_string(pos.lsn + 1) + " was expected";
  if (h.type != kRecordEvent) return "record of unknown type " + std::to_string(h.type);
  return "";
}

// Checks the group whose marker is at `pos` in the segment `header` heads; "" when valid, with
// `next` after its last record. `group_end` is set where the group ends by its marker once the
// marker itself checks out (a later group can only start there), else left alone.
std::string check_group(SegmentFile& f, const SegmentHeader& header, const Position& pos, std::uint64_t size, Position& next,
                        std::uint64_t& records, std::uint64_t& group_end) {
  const std::uint64_t left = size - pos.offset;
  if (left < kGroupMarkerSize) return "incomplete group marker (" + std::to_string(left) + " bytes)";
  const char* m = f.read(pos.offset, kGroupMarkerSize);
  if (m == nullptr) return kShrankDuringScan;
  const RecordHeader h = decode_record_header(m);
  GroupMarker marker;
  if (!group_marker_ok(header, m, marker)) return "no valid group marker";
  if (h.lsn != pos.lsn + 1) return "group starts at lsn " + std::to_string(h.lsn) + " where " + std::to_string(pos.lsn + 1) + " was expected";
  if (marker.records > 0 && marker.body_bytes <= kMaxGroupBody) group_end = pos.offset + kGroupMarkerSize + marker.body_bytes;
  if (marker.body_bytes > left - kGroupMarkerSize) return "group of " + std::to_string(marker.body_bytes) + " bytes runs past the end of the file";
  if (marker.records == 0 || marker.body_bytes > kMaxGroupBody) return "group marker with impossible size";
  const std::uint64_t body = pos.offset + kGroupMarkerSize;
  const char* b = f.read(body, static_cast<std::size_t>(marker.body_bytes));
  if (b == nullptr) return kShrankDuringScan;
  if (!group_body_ok(marker, b)) return "group checksum mismatch";
  Position at = advanced(pos, kGroupMarkerSize, pos.lsn);
  const std::uint64_t body_end = body + marker.body_bytes;
  for (std::uint32_t i = 0; i < marker.records; ++i) {
    std::uint64_t bytes = 0;
    if (at.offset >= body_end) return "group holds fewer records than its marker says";
    if (std::string problem = check_record(f, at, body_end, bytes); !problem.empty()) return problem + " inside a group";
    at = advanced(at, bytes, at.lsn + 1);
  }
  if (at.offset != body_end) return "group holds more bytes than its records";
  next = at;
  records = marker.records;
  return "";
}

// The offset of the first valid group marker (of the segment `header` heads) after `from` that
// could follow lsn `last_lsn`, or 0. In version 3 no producer can forge one (wal_format.h).
std::uint64_t later_group_marker(SegmentFile& f, const SegmentHeader& header, std::uint64_t from, std::uint64_t size,
                                 std::uint64_t last_lsn) {
  for (std::uint64_t off = from; off + kGroupMarkerSize <= size; ++off) {
    const char* p = f.read(off, kGroupMarkerSize);
    if (p == nullptr) return 0;
    const RecordHeader h = decode_record_header(p);
    if (h.type != kRecordGroup || !plausible_lsn(h.lsn, last_lsn)) continue;
    GroupMarker marker;
    if (group_marker_ok(header, p, marker)) return off;
  }
  return 0;
}

// Version 1: the offset of any valid record after `from` that could follow lsn `last_lsn`, or 0.
std::uint64_t later_record(SegmentFile& f, std::uint64_t from, std::uint64_t size, std::uint64_t last_lsn) {
  for (std::uint64_t off = from; off + kRecordHeaderSize <= size; ++off) {
    const char* p = f.read(off, kRecordHeaderSize);
    if (p == nullptr) return 0;
    const RecordHeader h = decode_record_header(p);
    if (!plausible_lsn(h.lsn, last_lsn) || h.length > size - off - kRecordHeaderSize) continue;
    const std::size_t bytes = kRecordHeaderSize + h.length;
    const char* rec = f.read(off, bytes);
    if (rec != nullptr && record_checksum_ok(rec, bytes)) return off;
  }
  return 0;
}

}  // namespace

SegmentScan scan_segment(LogFs& fs, const std::string& path) {
  SegmentFile f(fs, path);
  SegmentScan scan;
  scan.file_size = f.size();
  check_not_newer_format(f);
  const char* p = f.read(0, kSegmentHeaderSize);
  if (p == nullptr || !decode_segment_header(p, kSegmentHeaderSize, scan.header))
    throw WalCorruption(path, 0, "invalid segment header");
  const bool grouped = has_group_markers(scan.header);
  Position pos = first_position(scan.header);
  while (pos.offset < scan.file_size) {
    Position next;
    std::uint64_t records = 0;
    std::string problem;
    // Where a later group may begin if this one is bad: past the body a valid marker states (its
    // body is a producer's bytes, which may hold anything, a marker included), else anywhere after.
    std::uint64_t search_from = pos.offset + 1;
    if (grouped) {
      problem = check_group(f, scan.header, pos, scan.file_size, next, records, search_from);
    } else {
      std::uint64_t bytes = 0;
      problem = check_record(f, pos, scan.file_size, bytes);
      next = advanced(pos, bytes, pos.lsn + 1);
      records = 1;
    }
    // Preallocated zeros: the clean end. Version 1 never preallocated: zeros there are a torn
    // tail (a file system that extended the file before a power loss), cut like any other, as
    // the segment is no longer the newest once the log goes on in a later version (only the
    // newest may end in zeros).
    if (!problem.empty() && grouped && zeros_to_end(f, pos.offset, scan.file_size)) break;
    if (!problem.empty()) {
      const std::uint64_t later = grouped ? later_group_marker(f, scan.header, search_from, scan.file_size, pos.lsn)
                                          : later_record(f, pos.offset + 1, scan.file_size, pos.lsn);
      scan.valid_end = pos;
      scan.tail = later != 0 ? TailState::Corrupt : TailState::Torn;
      scan.problem = problem;
      scan.later_valid_offset = later;
      return scan;
    }
    pos = next;
    scan.records += records;
  }
  scan.valid_end = pos;
  return scan;
}

}  // namespace pm::wal
