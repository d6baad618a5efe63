#pragma once
// pm-ingestctl's event-sourcing commands: `replay` (rebuild the tables from archived and/or live
// log segments: ingest/replay/replay_runner.h), `archive list` and `archive verify` (read-only),
// `archive store-damaged`.
// Each returns the command's exit code: 0 ok, 1 failure, 2 damage found (named with file and
// offset), 3 replay finished but skipped damaged ranges (--skip-damaged; each one listed).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ingest/log/log_fs.h"
#include "repos/database.h"
#include "repos/timestamp_unit.h"

namespace pm::ctl {

struct ReplayCommand {
  std::vector<std::string> sources;
  std::optional<DatabaseConfig> database;  // nullopt: --dry-run
  std::string instance_id;
  std::uint64_t from_lsn = 1;
  std::uint64_t to_lsn = UINT64_MAX;
  std::optional<std::string> until;  // RFC 3339
  bool skip_damaged = false;
  std::size_t batch_max_events = 20000;
  std::size_t connections = 2;
  TimestampUnit trade_timestamp_unit = TimestampUnit::Milliseconds;
};

// The checkpoint name of a replay without --instance-id: `replay`, plus its bounds when it has any
// (`replay from=5 to=900 until=2026-11-30T04:00:00Z`), so a run with other bounds never resumes
// from a checkpoint that passed over events it would keep.
std::string default_replay_instance(const ReplayCommand& command);
int run_replay(const ReplayCommand& command);
int run_archive_list(const std::string& archive_dir, bool json);
// `archive verify`: every file read whole and checked, the chain and the index judged. 0 ok, 1 a
// newer format, 2 damaged. `fs` reads the files (tests put a seam there). A file removed between
// the listing and its reading (a running daemon's retention) is said so, not taken for damage;
// when the file read before it is gone too, retention trimmed the oldest end past both, and the
// next file is judged as the oldest (no "segments missing" before it).
int run_archive_verify(const std::string& archive_dir, wal::LogFs& fs = wal::posix_log_fs());
// `archive store-damaged`: archives a damaged live segment as it is (ingest/archive/damaged_segment.h)
// so the daemon can go on past it. `segment` is its number or its file name (000000000000000a.wal).
// Refuses while a daemon holds the log or the archive. 0 done; 1 refused or failed (why on stderr).
int run_archive_store_damaged(const std::string& archive_dir, const std::string& wal_dir, const std::string& segment);

}  // namespace pm::ctl
