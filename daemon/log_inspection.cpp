#include "daemon/log_inspection.h"

#include <optional>
#include <ostream>
#include <system_error>

#include "ingest/events/event_codec.h"
#include "ingest/events/event_json.h"
#include "ingest/log/segment_file.h"
#include "ingest/log/wal_directory.h"
#include "ingest/log/wal_newer_format.h"
#include "ingest/log/wal_salvage.h"

namespace pm::ctl {

namespace {

using EventSink = std::function<bool(const wal::Record&, const Event&)>;

// Where segment `h.segment` ends: a segment below the newest is sealed (cut to its last record
// before the next one started), so its records end with the file. Its lsn is not known from the
// file: the one before the segment's first record stands in for it until the segment is read.
wal::Position sealed_end(wal::LogFs& fs, const std::string& dir, const wal::SegmentHeader& h) {
  const std::string path = wal::segment_path(dir, h.segment);
  std::uint64_t size = 0;
  try {
    size = wal::SegmentFile(fs, path).size();
  } catch (const std::system_error& e) {
    wal::throw_if_segment_missing(path, e);  // removed since its header was read
    throw;
  }
  if (size < wal::kSegmentHeaderSize) throw wal::WalCorruption(path, 0, "segment shorter than its header");
  return wal::Position{h.segment, size, h.base_offset + size - wal::kSegmentHeaderSize, h.first_lsn - 1};
}

// One read of the whole log; `delivered` counts the events passed to `on_event`.
LogVerdict verify_once(const std::string& dir, const EventSink& on_event, wal::LogFs& fs, std::uint64_t from_lsn,
                       std::uint64_t& delivered) {
  LogVerdict v;
  try {
    v.extent = wal::inspect_log(dir, fs);
    v.extent_known = true;
    if (v.extent.tail == wal::TailState::Corrupt) {
      v.problem = wal::WalCorruption(wal::segment_path(dir, v.extent.end.segment), v.extent.end.offset, v.extent.tail_problem).what();
      if (v.extent.later_valid_offset != 0)
        v.problem += "; valid data follows at offset " + std::to_string(v.extent.later_valid_offset) +
                     ", so synced, acknowledged records are damaged";
      return v;
    }
    v.torn_tail = v.extent.tail == wal::TailState::Torn;
    for (const auto& [first, last] : v.extent.runs_below_hole) {
      const wal::SegmentHeader head = wal::read_segment_header(fs, dir, first);
      v.runs_below_hole.push_back(
          RunBelowHole{wal::first_position(head), sealed_end(fs, dir, last == first ? head : wal::read_segment_header(fs, dir, last))});
    }
    bool stopped = false;  // by on_event
    // Reads [from, limit) with every check; returns where the reader stopped.
    const auto read_run = [&](const wal::Position& from, const wal::Position& limit) {
      wal::WalReader reader(dir, v.extent.log_id, from, fs);
      while (!stopped) {
        const std::optional<wal::Record> record = reader.next(limit);
        if (!record) break;
        std::string error;
        auto event = decode_event(record->payload, &error);
        if (!event)
          throw wal::WalCorruption(wal::segment_path(dir, record->start.segment), record->start.offset,
                                   "record " + std::to_string(record->lsn) + " does not decode: " + error);
        ++v.records;
        v.trades += event->type() == EventType::Trade;
        if (!on_event || record->lsn < from_lsn) continue;
        ++delivered;
        stopped = !on_event(*record, *event);
      }
      return reader.position();
    };
    for (std::size_t i = 0; i < v.runs_below_hole.size() && !stopped; ++i) {
      RunBelowHole& run = v.runs_below_hole[i];
      run.end.lsn = read_run(run.start, wal::Position{run.end.segment, run.end.offset, run.end.log_offset, UINT64_MAX}).lsn;
      if (stopped) break;
      // The hole held records: the next run starts after this one ends.
      const wal::Position& next = i + 1 < v.runs_below_hole.size() ? v.runs_below_hole[i + 1].start : v.extent.oldest;
      if (next.lsn < run.end.lsn || next.log_offset < run.end.log_offset)
        throw wal::WalCorruption(wal::segment_path(dir, next.segment), 0,
                                 "segment does not continue the log after the hole below it (first lsn " + std::to_string(next.lsn + 1) +
                                     ", log offset " + std::to_string(next.log_offset) + "; " +
                                     wal::segment_file_name(run.end.segment) + " ends at lsn " + std::to_string(run.end.lsn) +
                                     ", log offset " + std::to_string(run.end.log_offset) + ")");
    }
    if (!stopped) read_run(v.extent.oldest, v.extent.end);
    if (v.extent.has_state && v.extent.ceiling.lsn > v.extent.end.lsn) {
      v.problem = "the log ends at lsn " + std::to_string(v.extent.end.lsn) + " but its state file says records up to lsn " +
                  std::to_string(v.extent.ceiling.lsn) + " were synced and may be applied: records were lost";
      return v;
    }
    v.ok = true;
  } catch (const wal::WalCorruption& e) {
    v.problem = e.what();
    v.segment_missing = e.segment_missing();
    v.unreadable = e.unreadable();
  } catch (const wal::WalNewerFormat& e) {
    v.problem = e.what();
    v.newer_format = true;
  } catch (const std::system_error& e) {  // listing the directory, opening or reading a file
    v.problem = e.what();
    v.unreadable = wal::refused_access(e.code());
  }
  return v;
}

}  // namespace

LogVerdict verify_log(const std::string& dir, const EventSink& on_event, wal::LogFs& fs, std::uint64_t from_lsn) {
  std::uint64_t delivered = 0;
  LogVerdict v = verify_once(dir, on_event, fs, from_lsn, delivered);
  const bool in_use = !v.ok && fs.lock_in_use(wal::path_in(dir, wal::kLockFileName));
  for (int attempt = 2; in_use && !v.ok && delivered == 0 && attempt <= 3; ++attempt) v = verify_once(dir, on_event, fs, from_lsn, delivered);
  if (in_use && !v.ok && delivered > 0 && v.segment_missing) {
    v.cut_by_a_removal = true;
    v.problem += " (a daemon holds this log and may have removed an applied segment while it was read: run the command again)";
  }
  return v;
}

std::uint64_t record_bytes(const LogVerdict& v) {
  std::uint64_t bytes = v.extent.end.log_offset - v.extent.oldest.log_offset;
  for (const RunBelowHole& run : v.runs_below_hole) bytes += run.end.log_offset - run.start.log_offset;
  return bytes;
}

std::string lsn_ranges(const LogVerdict& v) {
  std::string out;
  const auto add = [&](const wal::Position& start, const wal::Position& end) {
    if (end.lsn <= start.lsn) return;
    out += (out.empty() ? "" : ", ") + std::to_string(start.lsn + 1) + ".." + std::to_string(end.lsn);
  };
  for (const RunBelowHole& run : v.runs_below_hole) add(run.start, run.end);
  add(v.extent.oldest, v.extent.end);
  return out;
}

std::string damage_advice(const std::string& dir) {
  return "What to do: the daemon will not apply a damaged log (it refuses to start, exit 2; systemd does not restart it, though with the socket unit the next producer connection starts it again: `systemctl stop pm-ingestd.socket` keeps it down). "
         "List what can still be read, and the skipped byte ranges and LSNs, with `pm-ingestctl wal-verify --salvage "
         "--wal-dir " + dir + "`; save those events (lsn, a tab, the event) in a file with `pm-ingestctl wal-dump --salvage "
         "--wal-dir " + dir + " > salvaged.tsv`. Then move the directory away (keep it for inspection), reset the checkpoint "
         "with `pm-ingestctl checkpoint-reset --instance-id ID`, start the daemon with an empty --wal-dir (and, with "
         "--archive-dir, an empty archive directory too: the old one holds the old log's segments, and the daemon "
         "refuses another log's archive), and once it runs "
         "send the saved events again with `grep -v '^#' salvaged.tsv | cut -f2- | pm-ingestctl send` (trades and triggers "
         "are deduplicated by key; before the daemon runs, nothing can take them).";
}

std::string advice_for(const LogVerdict& v, const std::string& dir) {
  if (v.newer_format)
    return "Nothing is damaged: this build of pm-ingestctl cannot read that format. Inspect it with the pm-ingestctl of the "
           "version that wrote it, and change nothing in " + dir + " (this build's pm-ingestd refuses to start on it).";
  if (!v.unreadable) return damage_advice(dir);
  return "The log could not be read, which says nothing about damage: check that " + dir +
         " is the daemon's --wal-dir and that this user may read it (the daemon's files belong to its user: "
         "run this as root or as that user). Change nothing in the directory until it reads.";
}

int exit_code_for(const LogVerdict& v) { return v.unreadable || v.newer_format ? 1 : 2; }

const char* verdict_word(const LogVerdict& v) { return v.unreadable ? "CANNOT BE READ" : v.newer_format ? "NEWER FORMAT" : "DAMAGED"; }

std::uint64_t salvage(const std::string& dir, bool print_events, std::uint64_t from_lsn, std::uint64_t limit, std::ostream& out,
                      bool* cut, wal::LogFs& fs) {
  std::uint64_t printed = 0;
  if (cut != nullptr) *cut = false;
  const auto counts = wal::salvage_log(
      fs, dir,
      [&](const wal::Record& r) {
        if (!print_events || r.lsn < from_lsn) return true;
        if (printed++ == limit) {
          if (cut != nullptr) *cut = true;
          return false;
        }
        std::string error;
        if (auto event = decode_event(r.payload, &error)) {
          out << r.lsn << "\t" << event_to_json(*event) << "\n";
        } else {
          out << "# lsn " << r.lsn << " passes its checksum but does not decode: " << error << "\n";
        }
        return true;
      },
      [&](const wal::SkippedRange& s) {
        out << "# skipped " << s.file << " bytes " << s.from_offset << ".." << s.to_offset << " after lsn " << s.last_lsn_before
            << (s.next_lsn_after ? ", resuming at lsn " + std::to_string(s.next_lsn_after) : std::string(", nothing readable after it"))
            << ": " << s.problem << "\n";
      });
  // Cut by --limit: the record that stopped it was read, not printed, and nothing after it was looked at.
  const bool stopped = cut != nullptr && *cut;
  if (stopped)
    out << "# salvage up to --limit (the rest not read): " << limit << " records printed, ";
  else
    out << "# salvage: " << counts.records << " readable records, ";
  out << counts.skipped_ranges << " damaged range(s) (" << counts.skipped_bytes << " bytes), "
      << counts.unreadable_segments << " unreadable segment(s)";
  if (counts.superseded_tails > 0)
    out << ", " << counts.superseded_tails << " segment(s) ending in " << counts.superseded_bytes
        << " bytes of records whose LSNs the next segment starts with (a cut write a power loss brought back; never "
           "acknowledged, not returned)";
  if (counts.state_unread)
    out << "; the log's state file could not be read, so LSNs missing between segments or below its ceiling were not "
           "looked for";
  if (counts.removed_segments > 0)
    out << "; " << counts.removed_segments
        << " segment(s) removed while the log was read (a running daemon removes the segments it has applied: "
           "their events are in PostgreSQL; not damage)";
  out << "\n";
  return counts.skipped_ranges + counts.unreadable_segments + counts.superseded_tails;
}

}  // namespace pm::ctl
