#include "ingest/log/wal_salvage.h"

#include <algorithm>
#include <system_error>
#include <optional>

#include "ingest/log/segment_file.h"
#include "ingest/log/wal_corruption.h"
#include "ingest/log/wal_directory.h"
#include "ingest/log/wal_newer_format.h"
#include "ingest/log/wal_state.h"

namespace pm::wal {

namespace {

// What stands at `offset`: a valid event record (bytes > 0, is_marker false), a valid group
// marker (is_marker true), or nothing valid (bytes == 0, `problem` says why).
struct Entry {
  std::uint64_t bytes = 0;
  bool is_marker = false;
  RecordHeader header;
  std::string problem;
};

Entry entry_at(SegmentFile& f, const SegmentHeader& segment, std::uint64_t offset, std::uint64_t size, std::uint64_t last_lsn,
               bool strict_lsn) {
  Entry e;
  if (size - offset < kRecordHeaderSize) {
    e.problem = "incomplete record header";
    return e;
  }
  const char* header = f.read(offset, kRecordHeaderSize);
  if (header == nullptr) {  // the file is shorter than when its size was taken: changed meanwhile
    e.problem = "the file ended early (it changed meanwhile)";
    return e;
  }
  e.header = decode_record_header(header);
  const std::uint64_t bytes = kRecordHeaderSize + static_cast<std::uint64_t>(e.header.length);
  const bool lsn_ok = strict_lsn ? e.header.lsn == last_lsn + 1 : e.header.lsn > last_lsn && e.header.lsn - last_lsn <= (1ull << 32);
  if (e.header.type == kRecordGroup) {
    const char* marker = e.header.length == kGroupPayloadSize && bytes <= size - offset ? f.read(offset, kGroupMarkerSize) : nullptr;
    GroupMarker payload;
    if (marker == nullptr || !group_marker_ok(segment, marker, payload)) {
      e.problem = "invalid group marker";
    } else if (!lsn_ok) {
      e.problem = "group marker out of sequence";
    } else {
      e.bytes = bytes;
      e.is_marker = true;
    }
    return e;
  }
  const char* record = nullptr;
  if (e.header.type != kRecordEvent || e.header.length > kMaxPayload || bytes > size - offset) {
    e.problem = "invalid record header";
  } else if (record = f.read(offset, static_cast<std::size_t>(bytes)); record == nullptr) {
    e.problem = "the file ended early (it changed meanwhile)";
  } else if (!record_checksum_ok(record, static_cast<std::size_t>(bytes))) {
    e.problem = "checksum mismatch";
  } else if (!lsn_ok) {
    e.problem = "lsn " + std::to_string(e.header.lsn) + " out of sequence";
  } else {
    e.bytes = bytes;
  }
  return e;
}

// The header of segments[i] when it is the segment right after segments[i - 1] and its header is
// valid; else nullopt (none, a gap, or unreadable).
std::optional<SegmentHeader> next_header_of(LogFs& fs, const std::string& dir, const std::vector<std::uint64_t>& segments,
                                            std::size_t i) {
  if (i >= segments.size() || segments[i] != segments[i - 1] + 1) return std::nullopt;
  try {
    return read_segment_header(fs, dir, segments[i]);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// Where the records of the segment `header` heads end in its file, by the next segment's header
// (its base offset counts the record bytes before it); UINT64_MAX when that header does not speak
// for this segment (another log, or numbers that do not follow on).
std::uint64_t records_end_by_next(const SegmentHeader& header, const std::optional<SegmentHeader>& next) {
  if (!next || next->log_id != header.log_id || next->segment != header.segment + 1 || next->base_offset < header.base_offset ||
      next->first_lsn < header.first_lsn)
    return UINT64_MAX;
  return kSegmentHeaderSize + (next->base_offset - header.base_offset);
}

}  // namespace

bool salvage_segment(LogFs& fs, const std::string& dir, std::uint64_t segment, std::uint64_t& last_lsn, SalvageCounts& counts,
                     const std::function<bool(const Record&)>& on_record, const std::function<void(const SkippedRange&)>& on_skip,
                     const std::optional<SegmentHeader>& next, Continuity* continuity) {
  const std::string path = segment_path(dir, segment);
  std::unique_ptr<SegmentFile> file;
  SegmentHeader header;
  try {
    file = open_segment_file(fs, path);  // read through this handle from here on, even once removed
    header = read_segment_header(*file, segment);
  } catch (const std::exception& e) {  // damage, or a read that failed (EIO): the next segment is read
    if (is_unreadable(e) || is_newer_format(e)) throw;  // not damage: nothing to step over
    if (is_segment_missing(e)) {
      ++counts.removed_segments;  // listed a moment ago: the daemon removed it, applied
      return true;
    }
    ++counts.unreadable_segments;
    on_skip(SkippedRange{path, 0, 0, last_lsn, 0, e.what()});
    return true;
  }
  SegmentFile& f = *file;
  const std::uint64_t file_size = f.size();
  // Bytes past where the next segment says this one's records end are a stale tail: never read.
  const std::uint64_t size = std::min(file_size, records_end_by_next(header, next));
  if (size < file_size) {
    ++counts.superseded_tails;
    counts.superseded_bytes += file_size - size;
  }
  Position pos = first_position(header);
  if (continuity != nullptr && header.log_id == continuity->log_id) {
    continuity->seen = true;
    // Below the applied segment holes are allowed (applied segments kept for an unusable archive,
    // some removed by a crash), as recovery allows them.
    if (last_lsn != 0 && pos.lsn > last_lsn && segment > continuity->applied_segment) {
      ++counts.skipped_ranges;
      on_skip(SkippedRange{path, 0, 0, last_lsn, pos.lsn + 1,
                           "lsn " + std::to_string(last_lsn + 1) + ".." + std::to_string(pos.lsn) +
                               " are in no segment (a segment is missing, or the one before it was cut short)"});
    }
  }
  if (last_lsn == 0 || pos.lsn > last_lsn) last_lsn = pos.lsn;
  std::uint64_t reading_at = pos.offset;  // where the entry being read starts
  try {
    while (pos.offset < size) {
      reading_at = pos.offset;
      Entry e = entry_at(f, header, pos.offset, size, last_lsn, true);
      // Zeros from here to the end: the rest of a segment started from a spare file of zeros (the
      // daemon's default), its clean end, as recovery reads it; not a range to skip.
      if (e.bytes == 0 && has_group_markers(header) && zeros_to_end(f, pos.offset, size)) break;
      if (e.bytes == 0) {
        // Resynchronise: the next offset holding a valid record or marker with a later LSN.
        std::uint64_t at = pos.offset + 1;
        Entry next;
        for (; at < size; ++at) {
          next = entry_at(f, header, at, size, last_lsn, false);
          if (next.bytes > 0) break;
        }
        const std::uint64_t next_lsn = at < size ? next.header.lsn : 0;
        ++counts.skipped_ranges;
        counts.skipped_bytes += at - pos.offset;
        on_skip(SkippedRange{path, pos.offset, at, last_lsn, next_lsn, e.problem});
        if (at >= size) break;
        pos = Position{segment, at, header.base_offset + at - kSegmentHeaderSize, next.header.lsn - 1};
        last_lsn = pos.lsn;
        e = next;
      }
      const Position start = pos;
      pos = advanced(pos, e.bytes, e.is_marker ? pos.lsn : e.header.lsn);
      if (e.is_marker) continue;
      last_lsn = e.header.lsn;
      Record r;
      r.lsn = e.header.lsn;
      r.type = e.header.type;
      const char* record = f.read(start.offset, static_cast<std::size_t>(e.bytes));
      if (record == nullptr) break;  // read a moment ago: the file changed meanwhile
      r.payload.assign(record + kRecordHeaderSize, e.header.length);
      r.start = start;
      r.end = pos;
      ++counts.records;
      if (!on_record(r)) return false;
    }
  } catch (const std::system_error& e) {  // a read failed (EIO): the rest of this segment is skipped
    ++counts.skipped_ranges;
    counts.skipped_bytes += size - std::min(size, reading_at);
    on_skip(SkippedRange{path, reading_at, size, last_lsn, 0, e.what()});
  }
  return true;
}

SalvageCounts salvage_log(LogFs& fs, const std::string& dir, const std::function<bool(const Record&)>& on_record,
                          const std::function<void(const SkippedRange&)>& on_skip) {
  SalvageCounts counts;
  std::uint64_t last_lsn = 0;
  // The state file says from which segment on the log has no holes, and up to which LSN records
  // were synced (and may be acknowledged).
  // Read before the listing: a running daemon raises its ceiling only to what it has synced. A state
  // file that cannot be read (a failing disk, a newer format) only leaves those checks out: salvage
  // is what the damage advice sends an operator to.
  LocalState state;
  bool state_valid = false;
  try {
    state_valid = read_state(fs, path_in(dir, kStateFileName), state) == StateRead::Valid;
  } catch (const std::exception&) {
    counts.state_unread = true;
  }
  Continuity continuity{state.log_id, state.applied.segment};
  // Whether the last thing found was damage with nothing readable after it in its segment (a
  // skipped range reported already): the LSNs it hid are not "in no segment".
  bool open_damage = false;
  const auto record = [&](const Record& r) {
    open_damage = false;
    return on_record(r);
  };
  const auto skip = [&](const SkippedRange& r) {
    open_damage = r.next_lsn_after == 0;
    on_skip(r);
  };
  const std::vector<std::uint64_t> segments = list_log_dir(fs, dir).segments;
  if (segments.empty() && state_valid && state.ceiling.lsn > 0) {  // every segment gone (a live log always has one)
    ++counts.skipped_ranges;
    on_skip(SkippedRange{path_in(dir, kStateFileName), 0, 0, 0, 0,
                         "lsn 1.." + std::to_string(state.ceiling.lsn) +
                             " were synced (the state file's ceiling) and the log holds no segment: acknowledged records were lost"});
  }
  for (std::size_t i = 0; i < segments.size(); ++i) {
    // Not once a running daemon removed a segment meanwhile (applied): that explains a jump.
    const bool judge = state_valid && counts.removed_segments == 0 && !open_damage;
    if (!salvage_segment(fs, dir, segments[i], last_lsn, counts, record, skip, next_header_of(fs, dir, segments, i + 1),
                         judge ? &continuity : nullptr))
      return counts;
  }
  if (continuity.seen && counts.removed_segments == 0 && !open_damage && state.ceiling.lsn > last_lsn) {
    ++counts.skipped_ranges;
    on_skip(SkippedRange{segment_path(dir, segments.back()), 0, 0, last_lsn, 0,
                         "lsn " + std::to_string(last_lsn + 1) + ".." + std::to_string(state.ceiling.lsn) +
                             " were synced (the state file's ceiling) and are in no segment: acknowledged records were lost"});
  }
  return counts;
}

}  // namespace pm::wal
