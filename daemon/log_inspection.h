#pragma once
// What pm-ingestctl tells an operator about a log directory, read-only (safe while a daemon
// appends): a full verification with a diagnosis and what to do, and a salvage listing that
// steps over damage and names the skipped byte ranges and LSNs.
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>

#include "ingest/events/event.h"
#include "ingest/log/wal_reader.h"

namespace pm::ctl {

struct LogVerdict {
  bool ok = false;
  std::string problem;  // the diagnosis when not ok: what is damaged, where, and what it means
  wal::LogExtent extent;
  bool extent_known = false;
  std::uint64_t records = 0, trades = 0;
  bool torn_tail = false;  // the last group is torn (the daemon cuts it at its next start)
  bool segment_missing = false;  // the problem: a segment file that was listed is gone
  // Not ok because a segment went missing while a daemon holds the log (it removes applied ones),
  // after events had been passed on (so it was not read again): no damage, run the command again.
  bool cut_by_a_removal = false;
};

// Reads every record from the oldest segment to the end, decoding each event.
// `on_event` (optional) sees each one and returns false to stop early. While a daemon holds the
// log, a failed read is tried again (up to 3 reads in all) as long as nothing was passed to
// `on_event` yet: the daemon may remove an applied segment while it is read.
LogVerdict verify_log(const std::string& dir,
                      const std::function<bool(const wal::Record&, const Event&)>& on_event = {},
                      wal::LogFs& fs = wal::posix_log_fs());

// What an operator can do about a damaged log, as a paragraph naming the commands.
std::string damage_advice(const std::string& dir);

// Reads every readable record past any damage; prints each skipped range to `out`, and each event
// at or after `from_lsn` (at most `limit`; `*cut` says whether more followed) when `print_events`.
// Returns the number of skipped ranges.
std::uint64_t salvage(const std::string& dir, bool print_events, std::uint64_t from_lsn, std::uint64_t limit, std::ostream& out,
                      bool* cut = nullptr);

}  // namespace pm::ctl
