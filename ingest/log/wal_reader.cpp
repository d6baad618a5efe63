#include "ingest/log/wal_reader.h"

#include <system_error>

#include "ingest/log/wal_corruption.h"
#include "ingest/log/wal_directory.h"
#include "ingest/log/wal_newer_format.h"
#include "ingest/log/wal_state.h"
#include "repos/util/crc32c.h"

namespace pm::wal {

WalReader::WalReader(std::string dir, LogId log_id, const Position& from, LogFs& fs, GroupCheck group_check)
    : fs_(fs), group_check_(group_check), dir_(std::move(dir)), log_id_(log_id), position_(from) {}

WalReader::~WalReader() = default;

void WalReader::open_segment(std::uint64_t segment) {
  const SegmentHeader h = read_segment_header(fs_, dir_, segment);
  const std::string path = segment_path(dir_, segment);
  if (h.log_id != log_id_) throw WalCorruption(path, 0, "segment belongs to another log");
  if (position_.offset == kSegmentHeaderSize || position_.segment != segment) {
    // Entering at the start of the segment: the header must continue the chain exactly.
    if (h.first_lsn != position_.lsn + 1 || h.base_offset != position_.log_offset)
      throw WalCorruption(path, 0, "segment does not continue the log (first lsn " + std::to_string(h.first_lsn) +
                                       ", expected " + std::to_string(position_.lsn + 1) + ")");
    position_ = first_position(h);
  }
  file_ = open_segment_file(fs_, path);
  file_header_ = h;
  file_segment_ = segment;
  sealed_size_.reset();
}

// A segment before the limit's is sealed (cut to its records before the next one started): its
// size is read once, not once per record.
std::uint64_t WalReader::sealed_size() {
  if (!sealed_size_) sealed_size_ = file_->size();
  return *sealed_size_;
}

// A group marker at the reader's position is checked and stepped over (it holds no event).
bool WalReader::skip_group_marker(const char* header, std::uint64_t end) {
  const RecordHeader h = decode_record_header(header);
  if (h.type != kRecordGroup) return false;
  const char* p = position_.offset + kGroupMarkerSize <= end ? file_->read(position_.offset, kGroupMarkerSize, end) : nullptr;
  GroupMarker marker;
  if (p == nullptr || !group_marker_ok(file_header_, p, marker))
    throw WalCorruption(file_->path(), position_.offset, "invalid group marker");
  if (h.lsn != position_.lsn + 1)
    throw WalCorruption(file_->path(), position_.offset,
                        "group starts at lsn " + std::to_string(h.lsn) + " where " + std::to_string(position_.lsn + 1) + " was expected");
  if (group_check_ == GroupCheck::Whole) {
    check_group_whole(marker, end);
    if (marker.records > 0) group_body_end_ = position_.offset + kGroupMarkerSize + marker.body_bytes;
  }
  position_ = advanced(position_, kGroupMarkerSize, position_.lsn);
  return true;
}

// The group whose marker is at the reader's position lies whole before `end` (the segment's end, or
// the limit in the limit's segment) and its body matches the marker's checksum. Checked before any
// of its records is returned: a group cut short (after whole records or not) is damage.
void WalReader::check_group_whole(const GroupMarker& marker, std::uint64_t end) {
  const std::uint64_t body_start = position_.offset + kGroupMarkerSize;
  const auto describe = [&] {
    return "group marker states " + std::to_string(marker.records) + " records in " + std::to_string(marker.body_bytes) + " bytes";
  };
  if ((marker.records == 0) != (marker.body_bytes == 0) ||
      marker.body_bytes < std::uint64_t{marker.records} * kRecordHeaderSize)
    throw WalCorruption(file_->path(), position_.offset, describe());
  if (marker.body_bytes > end - body_start)
    throw WalCorruption(file_->path(), position_.offset,
                        "group cut short: " + describe() + " (to offset " + std::to_string(body_start + marker.body_bytes) +
                            ") but the segment's readable bytes end at offset " + std::to_string(end));
  const char* p = file_->read(position_.offset, static_cast<std::size_t>(kGroupMarkerSize + marker.body_bytes), end);
  if (p == nullptr) throw WalCorruption(file_->path(), position_.offset, "group cut short: " + describe() + " but the file ends first");
  const bool body_ok = group_body_ok(marker, p + kGroupMarkerSize);
  const std::uint32_t records = count_body_records(p + kGroupMarkerSize, marker.body_bytes, !body_ok);
  if (!body_ok) throw WalCorruption(file_->path(), position_.offset, "group body checksum mismatch (" + describe() + ")");
  if (records != marker.records)
    throw WalCorruption(file_->path(), position_.offset,
                        "group's records do not fill its body: " + std::to_string(records) + " records where its marker states " +
                            std::to_string(marker.records));
}

// The event records a group body holds, stepping from header to header. A record that runs past
// the body, or (check_each: the body's checksum failed) fails its own checksum, is damage named at
// that record, as reading record by record would name it.
std::uint32_t WalReader::count_body_records(const char* body, std::uint64_t body_bytes, bool check_each) const {
  std::uint64_t at = 0;
  std::uint32_t records = 0;
  const std::uint64_t body_start = position_.offset + kGroupMarkerSize;
  while (at < body_bytes) {
    if (body_bytes - at < kRecordHeaderSize) throw WalCorruption(file_->path(), body_start + at, "record header cut short");
    const RecordHeader h = decode_record_header(body + at);
    const std::uint64_t bytes = kRecordHeaderSize + std::uint64_t{h.length};
    if (h.length > kMaxPayload || bytes > body_bytes - at)
      throw WalCorruption(file_->path(), body_start + at, "record length " + std::to_string(h.length) + " runs past the end");
    if (check_each && !record_checksum_ok(body + at, static_cast<std::size_t>(bytes)))
      throw WalCorruption(file_->path(), body_start + at, "checksum mismatch");
    if (h.type != kRecordEvent)
      throw WalCorruption(file_->path(), body_start + at, "record of type " + std::to_string(h.type) + " inside a group");
    at += bytes;
    records += 1;
  }
  return records;
}

std::optional<Record> WalReader::next(const Position& limit) {
  if (position_.lsn >= limit.lsn) return std::nullopt;
  for (;;) {
    if (!file_ || file_segment_ != position_.segment) open_segment(position_.segment);
    const bool last_segment = position_.segment == limit.segment;
    const std::uint64_t end = last_segment ? limit.offset : sealed_size();
    if (position_.offset >= end) {
      if (last_segment) return std::nullopt;
      // This segment is finished; the next one must start the following record.
      position_.segment += 1;
      position_.offset = kSegmentHeaderSize;
      file_.reset();
      continue;
    }
    const char* p = file_->read(position_.offset, kRecordHeaderSize, end);
    if (p == nullptr || position_.offset + kRecordHeaderSize > end)
      throw WalCorruption(file_->path(), position_.offset, "record header cut short");
    if (skip_group_marker(p, end)) continue;
    const RecordHeader h = decode_record_header(p);
    const std::uint64_t bytes = kRecordHeaderSize + h.length;
    if (h.length > kMaxPayload || position_.offset + bytes > end)
      throw WalCorruption(file_->path(), position_.offset, "record length " + std::to_string(h.length) + " runs past the end");
    p = file_->read(position_.offset, static_cast<std::size_t>(bytes), end);
    if (p == nullptr) throw WalCorruption(file_->path(), position_.offset, "record cut short");
    // A record inside a group whose body checksum was verified at its marker is not summed again.
    const bool in_checked_body = group_body_end_ && position_.offset + bytes <= *group_body_end_;
    if (!in_checked_body && !record_checksum_ok(p, static_cast<std::size_t>(bytes)))
      throw WalCorruption(file_->path(), position_.offset, "checksum mismatch");
    if (h.lsn != position_.lsn + 1)
      throw WalCorruption(file_->path(), position_.offset,
                          "lsn " + std::to_string(h.lsn) + " where " + std::to_string(position_.lsn + 1) + " was expected");
    if (h.type != kRecordEvent) throw WalCorruption(file_->path(), position_.offset, "record of unknown type " + std::to_string(h.type));
    if (group_body_end_ && position_.offset + bytes >= *group_body_end_) group_body_end_.reset();  // its last record
    Record r;
    r.lsn = h.lsn;
    r.type = h.type;
    r.payload.assign(p + kRecordHeaderSize, h.length);
    r.start = position_;
    r.end = advanced(position_, bytes, h.lsn);
    position_ = r.end;
    return r;
  }
}

std::string record_mismatch(const std::string& dir, LogId log_id, const Position& end, std::uint64_t bytes,
                            std::uint32_t payload_crc, LogFs& fs) {
  if (end.lsn == 0 || bytes <= kRecordHeaderSize || end.offset < kSegmentHeaderSize + bytes || end.log_offset < bytes)
    return "no record of " + std::to_string(bytes) + " bytes fits before that position";
  const Position start{end.segment, end.offset - bytes, end.log_offset - bytes, end.lsn - 1};
  try {
    WalReader reader(dir, log_id, start, fs);
    const std::optional<Record> record = reader.next(end);
    if (!record || record->end.offset != end.offset) return "no record of " + std::to_string(bytes) + " bytes ends there";
    if (crc32c::value(record->payload.data(), record->payload.size()) != payload_crc)
      return "the record with lsn " + std::to_string(record->lsn) + " there holds another event";
    return "";
  } catch (const std::exception& e) {
    if (is_unreadable(e) || is_newer_format(e)) throw;  // neither says what is there
    return std::string("what is there is not that record: ") + e.what();
  }
}

LogExtent inspect_log(const std::string& dir, LogFs& fs) {
  // The state file first: a running daemon raises its ceiling only to what it has synced, so a
  // ceiling read before the segments are listed and scanned is never past the end the scan finds.
  // Read after them, it could be (a group synced, or a segment started, in between), and a healthy
  // running log was reported as damaged ("records were lost").
  LocalState state;
  const StateRead state_read = read_state(fs, path_in(dir, kStateFileName), state);
  const bool state_valid = state_read == StateRead::Valid;
  const DirectoryListing listing = list_log_dir(fs, dir);
  if (listing.segments.empty()) throw std::runtime_error(dir + " holds no log segments");
  LogExtent extent;
  extent.segments = listing.segments.size();
  const SegmentHeader first = read_segment_header(fs, dir, listing.segments.front());
  extent.log_id = first.log_id;
  // Holes below the applied position are allowed, as the log's recovery allows them (wal.h); the
  // records are read in order from the run of segments that ends at the newest; the runs below the
  // last hole are listed, each to be read on its own.
  if (state_valid && state.log_id == first.log_id) {
    check_no_gap_from_applied(dir, listing.segments, state.applied.segment);
    const std::uint64_t newest_run = first_of_newest_run(listing.segments);
    extent.oldest = first_position(read_segment_header(fs, dir, newest_run));
    for (const std::uint64_t segment : listing.segments) {
      if (segment >= newest_run) break;
      auto& runs = extent.runs_below_hole;
      if (runs.empty() || runs.back().second + 1 != segment) runs.emplace_back(segment, segment);
      else runs.back().second = segment;
    }
  } else {
    check_no_gap(dir, listing.segments);
    extent.oldest = first_position(first);
  }
  const std::string newest = segment_path(dir, listing.segments.back());
  const SegmentScan scan = scan_segment(fs, newest);
  if (scan.header.log_id != extent.log_id) throw WalCorruption(newest, 0, "segment belongs to another log");
  extent.end = scan.valid_end;
  extent.newest_version = scan.header.version;
  extent.newest_file_size = scan.file_size;
  extent.tail = scan.tail;
  extent.tail_problem = scan.problem;
  extent.later_valid_offset = scan.later_valid_offset;
  // What recovery refuses, the tools call damage (they called such a log ok, and said recovery
  // would create the state file the daemon then refused to start without).
  if (const std::string problem = state_mismatch(state_read, state, extent.log_id, extent.end.lsn); !problem.empty())
    throw WalCorruption(path_in(dir, kStateFileName), 0, problem);
  if (state_valid) {  // of this log: another log's was refused just above
    extent.has_state = true;
    extent.applied = state.applied;
    extent.ceiling = state.ceiling;
    if (extent.tail == TailState::Torn && state.ceiling.lsn > extent.end.lsn) {
      extent.tail = TailState::Corrupt;
      extent.tail_problem += "; the state file says records up to lsn " + std::to_string(state.ceiling.lsn) +
                             " had been synced, so this damage lies in acknowledged data";
    }
  }
  for (const std::string& name : listing.temporary)
    extent.pending_recovery.push_back(RecoveryFinding{RecoveryFinding::Kind::TemporaryRemoved, path_in(dir, name), 0, 0, ""});
  if (extent.tail == TailState::Torn)
    extent.pending_recovery.push_back(RecoveryFinding{RecoveryFinding::Kind::TornTailCut, newest, extent.end.offset,
                                                      scan.file_size - extent.end.offset, extent.tail_problem});
  if (!extent.has_state)
    extent.pending_recovery.push_back(RecoveryFinding{RecoveryFinding::Kind::StateCreated, path_in(dir, kStateFileName), 0, 0,
                                                      "the log has no valid state file (written before format 2?)"});
  return extent;
}

}  // namespace pm::wal
