#include "daemon/log_inspection.h"

#include <ostream>

#include "ingest/events/event_codec.h"
#include "ingest/events/event_json.h"
#include "ingest/log/wal_directory.h"
#include "ingest/log/wal_salvage.h"

namespace pm::ctl {

namespace {

using EventSink = std::function<bool(const wal::Record&, const Event&)>;

// One read of the whole log; `delivered` counts the events passed to `on_event`.
LogVerdict verify_once(const std::string& dir, const EventSink& on_event, wal::LogFs& fs, std::uint64_t& delivered) {
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
    wal::WalReader reader(dir, v.extent.log_id, v.extent.oldest, fs);
    while (auto record = reader.next(v.extent.end)) {
      std::string error;
      auto event = decode_event(record->payload, &error);
      if (!event)
        throw wal::WalCorruption(wal::segment_path(dir, record->start.segment), record->start.offset,
                                 "record " + std::to_string(record->lsn) + " does not decode: " + error);
      ++v.records;
      v.trades += event->type() == EventType::Trade;
      if (!on_event) continue;
      ++delivered;
      if (!on_event(*record, *event)) break;
    }
    if (v.extent.has_state && v.extent.ceiling.lsn > v.extent.end.lsn) {
      v.problem = "the log ends at lsn " + std::to_string(v.extent.end.lsn) + " but its state file says records up to lsn " +
                  std::to_string(v.extent.ceiling.lsn) + " were synced and may be applied: records were lost";
      return v;
    }
    v.ok = true;
  } catch (const wal::WalCorruption& e) {
    v.problem = e.what();
    v.segment_missing = e.segment_missing();
  } catch (const std::system_error& e) {
    v.problem = e.what();
  }
  return v;
}

}  // namespace

LogVerdict verify_log(const std::string& dir, const EventSink& on_event, wal::LogFs& fs) {
  std::uint64_t delivered = 0;
  LogVerdict v = verify_once(dir, on_event, fs, delivered);
  const bool in_use = !v.ok && fs.lock_in_use(wal::path_in(dir, wal::kLockFileName));
  for (int attempt = 2; in_use && !v.ok && delivered == 0 && attempt <= 3; ++attempt) v = verify_once(dir, on_event, fs, delivered);
  if (in_use && !v.ok && delivered > 0 && v.segment_missing) {
    v.cut_by_a_removal = true;
    v.problem += " (a daemon holds this log and may have removed an applied segment while it was read: run the command again)";
  }
  return v;
}

std::string damage_advice(const std::string& dir) {
  return "What to do: the daemon will not apply a damaged log (it refuses to start, exit 2; systemd does not restart it, though with the socket unit the next producer connection starts it again: `systemctl stop pm-ingestd.socket` keeps it down). "
         "List what can still be read, and the skipped byte ranges and LSNs, with `pm-ingestctl wal-verify --salvage "
         "--wal-dir " + dir + "`; print those events (lsn, a tab, the event) with `pm-ingestctl wal-dump --salvage --wal-dir " +
         dir + "` and send them again with `... | grep -v '^#' | cut -f2- | pm-ingestctl send` (trades and triggers are "
         "deduplicated by key). Then move the directory away "
         "(keep it for inspection), reset the checkpoint with `pm-ingestctl checkpoint-reset --instance-id ID`, and start "
         "the daemon with an empty --wal-dir.";
}

std::uint64_t salvage(const std::string& dir, bool print_events, std::uint64_t from_lsn, std::uint64_t limit, std::ostream& out,
                      bool* cut) {
  std::uint64_t printed = 0;
  if (cut != nullptr) *cut = false;
  const auto counts = wal::salvage_log(
      wal::posix_log_fs(), dir,
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
  out << "# salvage: " << counts.records << " readable records, " << counts.skipped_ranges << " damaged range(s) ("
      << counts.skipped_bytes << " bytes), " << counts.unreadable_segments << " unreadable segment(s)";
  if (counts.superseded_tails > 0)
    out << ", " << counts.superseded_tails << " segment(s) ending in " << counts.superseded_bytes
        << " bytes of records whose LSNs the next segment starts with (a cut write a power loss brought back; never "
           "acknowledged, not returned)";
  out << "\n";
  return counts.skipped_ranges + counts.unreadable_segments + counts.superseded_tails;
}

}  // namespace pm::ctl
