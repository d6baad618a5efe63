#include "daemon/log_health.h"

#include <ostream>
#include <sstream>

#include "daemon/cli_common.h"
#include "daemon/log_inspection.h"
#include "ingest/log/wal_format.h"

namespace pm::ctl {

namespace {

// Whether the daemon on the log applies from `instance`'s checkpoint: the one `daemon_instance`
// names, else any not named like pm-ingestctl replay's own ('replay', 'replay to=...').
bool daemon_applies_from(const std::string& instance, const std::string& daemon_instance) {
  return daemon_instance.empty() ? !names_a_replay_checkpoint(instance) : instance == daemon_instance;
}

}  // namespace

int report_log_health(const std::string& dir, const std::vector<StoredCheckpoint>& read_before,
                      const std::function<std::vector<StoredCheckpoint>()>& read_after, const std::string& daemon_instance,
                      std::ostream& out, wal::LogFs& fs) {
  const LogVerdict v = verify_log(dir, {}, fs);
  if (!v.extent_known) {
    out << "log             " << dir << ": " << verdict_word(v) << ": " << v.problem << "\n" << advice_for(v, dir) << "\n";
    return exit_code_for(v);
  }
  const std::string id = wal::log_id_hex(v.extent.log_id);
  // Read whole, the LSNs of each run (those below a hole too); else where reading in order starts and ends.
  std::string lsns = v.ok ? lsn_ranges(v) : "";
  if (lsns.empty()) lsns = std::to_string(v.extent.oldest.lsn + 1) + ".." + std::to_string(v.extent.end.lsn);
  out << "log             " << id << " in " << dir << ": lsn " << lsns << ", " << v.extent.segments << " segment(s), "
      << record_bytes(v) << " record bytes\n";
  if (!v.ok) {
    out << "log health      " << verdict_word(v) << ": " << v.problem << "\n" << advice_for(v, dir) << "\n";
    return exit_code_for(v);
  }
  for (const auto& [instance, log_id, lsn] : read_before) {
    if (log_id == id && lsn > v.extent.end.lsn) {
      out << "log health      DAMAGED: a checkpoint of this log is at lsn " << lsn << " but the log ends at lsn "
          << v.extent.end.lsn << ": records were lost, and new events would reuse their LSNs\n"
          << damage_advice(dir) << "\n";
      return 2;
    }
  }
  std::ostringstream notes;
  for (const auto& [instance, log_id, lsn] : read_after()) {
    if (log_id != id || lsn >= v.extent.oldest.lsn) continue;
    if (!daemon_applies_from(instance, daemon_instance)) {
      notes << "note            instance " << instance << " is at lsn " << lsn << ", behind this log (read in order from lsn "
            << v.extent.oldest.lsn + 1 << "): the daemon does not apply from it; a replay resumes from the archive\n";
      continue;
    }
    out << "log health      DAMAGED: a checkpoint of this log is at lsn " << lsn << " but the log can be read in order "
        << "only from lsn " << v.extent.oldest.lsn + 1 << ": unapplied records were removed, and the daemon will "
        << "refuse to apply it (exit 2)\n"
        << damage_advice(dir) << "\n";
    return 2;
  }
  out << notes.str() << "log health      ok" << (v.torn_tail ? " (ends in a torn last group, never acknowledged; cut at the next start)" : "")
      << "\n";
  return 0;
}

}  // namespace pm::ctl
