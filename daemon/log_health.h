#pragma once
// The log's health as `pm-ingestctl status` reports it: the log verified whole (log_inspection.h),
// then held against the checkpoints stored for it in PostgreSQL. Read-only; safe beside a running
// daemon, which applies, checkpoints and removes applied segments meanwhile.
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "ingest/log/log_fs.h"

namespace pm::ctl {

// A row of pm_ingest_checkpoints.
struct StoredCheckpoint {
  std::string instance;
  std::string log_id;
  std::uint64_t lsn = 0;
};

// Prints the log's lines of `status` to `out` and returns the exit code (0 ok, 2 damaged, 1 not
// readable or of a newer format). A checkpoint past the log's end is damage whoever's it is (judged
// on `read_before`, read before the log: the daemon checkpoints only what the log holds); one behind
// its oldest record only when the daemon applies from it (`daemon_instance`, else any not named like
// replay's), judged on the checkpoints `read_after()` gives once the log was read, since the daemon
// may have applied and removed segments meanwhile (reading a large log takes minutes).
int report_log_health(const std::string& dir, const std::vector<StoredCheckpoint>& read_before,
                      const std::function<std::vector<StoredCheckpoint>()>& read_after, const std::string& daemon_instance,
                      std::ostream& out, wal::LogFs& fs = wal::posix_log_fs());

}  // namespace pm::ctl
