#pragma once
// What pm-ingestctl tells an operator about a log directory, read-only (safe while a daemon
// appends): a full verification with a diagnosis and what to do, and a salvage listing that
// steps over damage and names the skipped byte ranges and LSNs.
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "ingest/events/event.h"
#include "ingest/log/wal_reader.h"

namespace pm::ctl {

// A run of segments below the last hole (wal::LogExtent::runs_below_hole) as verify_log() reads it.
struct RunBelowHole {
  wal::Position start;  // where its first segment's header says its records start
  wal::Position end;    // the end of its last segment; its lsn is the last record's once the run is read
};

struct LogVerdict {
  bool ok = false;
  std::string problem;  // the diagnosis when not ok: what is damaged, where, and what it means
  wal::LogExtent extent;
  bool extent_known = false;
  std::vector<RunBelowHole> runs_below_hole;  // oldest first, once their segments' headers are read
  std::uint64_t records = 0, trades = 0;  // of every run read, those below a hole included
  bool torn_tail = false;  // the last group is torn (the daemon cuts it at its next start)
  bool segment_missing = false;  // the problem: a segment file that was listed is gone
  // The problem: the system refused to list the directory or open a file (a wrong --wal-dir, a
  // permission, a symlink loop): no damage was found, and none of the damage advice applies.
  bool unreadable = false;
  // The problem: a segment is of a newer format than this build reads (wal_newer_format.h): no
  // damage, and none of the damage advice applies.
  bool newer_format = false;
  // Not ok because a segment went missing while a daemon holds the log (it removes applied ones),
  // after events had been passed on (so it was not read again): no damage, run the command again.
  bool cut_by_a_removal = false;
};

// Reads every record from the oldest segment to the end, decoding each event: first each run of
// segments below a hole (applied segments kept for an unusable archive, some removed by a crash),
// from its first segment's header to the end of its last segment, then the run that ends at the
// newest segment (from extent.oldest to extent.end), all with the reader's checks (checksums, LSN
// chain, group markers); a run must end before the next one starts (lsn and log offset).
// `on_event` (optional) sees each one from `from_lsn` on, in LSN order, and returns false to stop
// early. While a daemon holds the log, a failed read is tried again (up to 3 reads in all) as long
// as nothing was passed to `on_event` yet: the daemon may remove an applied segment while it is read.
LogVerdict verify_log(const std::string& dir,
                      const std::function<bool(const wal::Record&, const Event&)>& on_event = {},
                      wal::LogFs& fs = wal::posix_log_fs(), std::uint64_t from_lsn = 0);

// The record bytes the verdict's runs hold: the main run's and those below a hole.
std::uint64_t record_bytes(const LogVerdict& v);

// The LSNs read when the whole log was read (`ok`), a range per run: "1..40, 61..200" ("" for none).
std::string lsn_ranges(const LogVerdict& v);

// What an operator can do about a damaged log, as a paragraph naming the commands.
std::string damage_advice(const std::string& dir);

// For a verdict that is not ok: what to do (damage_advice, how to make the log readable, or which
// build reads it), and the exit code that says which (2 damage, 1 the log could not be read or is
// of a newer format).
std::string advice_for(const LogVerdict& v, const std::string& dir);
int exit_code_for(const LogVerdict& v);
// What `status` calls it: "CANNOT BE READ", "NEWER FORMAT" or "DAMAGED".
const char* verdict_word(const LogVerdict& v);

// Reads every readable record past any damage; prints each skipped range to `out`, and each event
// at or after `from_lsn` (at most `limit`; `*cut` says whether more followed) when `print_events`.
// Returns the number of damaged places (skipped ranges, unreadable segments, superseded tails);
// segments a running daemon removed between the listing and their read are named, not counted.
// A segment of a newer format is never stepped over: wal::WalNewerFormat (wal_salvage.h).
std::uint64_t salvage(const std::string& dir, bool print_events, std::uint64_t from_lsn, std::uint64_t limit, std::ostream& out,
                      bool* cut = nullptr, wal::LogFs& fs = wal::posix_log_fs());

}  // namespace pm::ctl
