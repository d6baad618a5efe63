#include "ingest/archive/segment_summary.h"

#include <algorithm>
#include <system_error>

#include "ingest/archive/memory_log_fs.h"
#include "ingest/events/event_codec.h"
#include "ingest/log/wal_corruption.h"
#include "ingest/log/wal_directory.h"
#include "ingest/log/wal_reader.h"
#include "ingest/log/wal_scan.h"

namespace pm::archive {

bool add_event(SegmentSummary& s, const wal::Record& r) {
  const std::optional<Event> event = decode_event(r.payload, nullptr);
  if (!event) return false;
  (event->type() == EventType::Trade ? s.trades : s.triggers) += 1;
  const bool first = s.trades + s.triggers == 1;
  s.first_arrival_ms = first ? event->received_ms : std::min(s.first_arrival_ms, event->received_ms);
  s.last_arrival_ms = first ? event->received_ms : std::max(s.last_arrival_ms, event->received_ms);
  s.last_lsn = r.lsn;
  return true;
}

namespace {

void count_event(SegmentSummary& s, const wal::Record& r, const std::string& path) {
  if (add_event(s, r)) return;
  std::string error;
  decode_event(r.payload, &error);
  throw wal::WalCorruption(path, r.start.offset, "event payload does not decode: " + error);
}

}  // namespace

SegmentSummary summarize_segment(const std::string& dir, std::uint64_t segment, const std::string& bytes) {
  MemoryLogFs fs;
  fs.put(wal::segment_path(dir, segment), bytes);
  return summarize_segment(fs, dir, segment);
}

SegmentSummary summarize_segment(wal::LogFs& fs, const std::string& dir, std::uint64_t segment) {
  const std::string path = wal::segment_path(dir, segment);
  wal::SegmentScan scan;
  try {
    scan = wal::scan_segment(fs, path);  // groups whole: body checksums, counts
  } catch (const std::system_error& e) {
    // Only its open can find no file: a segment that is gone says so, as the log's reader does.
    wal::throw_if_segment_missing(path, e);
    throw;
  }
  if (scan.tail != wal::TailState::Clean) throw wal::WalCorruption(path, scan.valid_end.offset, scan.problem);
  SegmentSummary s;
  s.header = scan.header;
  s.first_lsn = scan.header.first_lsn;
  s.last_lsn = s.first_lsn - 1;
  s.file_bytes = scan.file_size;
  wal::WalReader reader(dir, scan.header.log_id, wal::first_position(scan.header), fs);
  const wal::Position limit{segment, scan.file_size, 0, UINT64_MAX};
  while (const std::optional<wal::Record> r = reader.next(limit)) count_event(s, *r, path);
  return s;
}

}  // namespace pm::archive
