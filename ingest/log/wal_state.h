#pragma once
// The log's local state file, `<wal-dir>/state`: what the log knows about its consumer without
// PostgreSQL. Two 4 KiB slots written alternately, each with a sequence number and a CRC, every
// write followed by fdatasync: a write torn by a power loss damages one slot, and the other still
// holds the previous state.
//
// - applied: the writer's last committed checkpoint, as far as the writer has told the log (it may
//   lag the checkpoint in PostgreSQL). Segments below it are applied: recovery removes them even
//   when a crash left a gap, and the backlog is counted from it before PostgreSQL answers.
// - ceiling: a position every record up to which had been synced (the log's durable end at the
//   last state write). A log that ends below it lost synced records, which may be applied, and
//   new events must not be given their LSNs: the log refuses to open. It trails the log's end, so
//   it is not a bound of the checkpoint in PostgreSQL: the writer checks that against the log.
// Not thread-safe: the log serialises calls.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <system_error>

#include "ingest/log/log_fs.h"
#include "ingest/log/wal_format.h"

namespace pm::wal {

inline constexpr char kStateFileName[] = "state";
inline constexpr std::size_t kStateSlotSize = 4096;

struct LocalState {
  LogId log_id{};
  Position applied;
  Position ceiling;
};

enum class StateRead { Missing, Valid, Damaged };

// Reads the newest valid slot of the file at `path` into `out`. Missing: no file; Damaged: a file
// with no valid slot. Throws std::system_error when the file cannot be read, and WalNewerFormat
// (wal_newer_format.h: not damage) when a slot begins with the magic of a newer state format
// ("PMWST02\n".."PMWST99\n", written by a later pm-ingestd): its other slot may still hold an older,
// valid one, which is not this log's latest state.
StateRead read_state(LogFs& fs, const std::string& path, LocalState& out);

// Why a state file read as `read` (holding `state` when Valid) cannot stand beside segments of log
// `log_id` whose records end at `end_lsn`: it is another log's, or both its slots are damaged
// while records exist ("" when it can). Recovery refuses such a log (WalCorruption); the
// inspection tools give the same verdict.
std::string state_mismatch(StateRead read, const LocalState& state, const LogId& log_id, std::uint64_t end_lsn);

class StateFile {
 public:
  // Creates (or replaces) the file with `initial` written into it, synced, under `path`.tmp first
  // and then renamed; the caller syncs the directory. Throws std::system_error.
  static std::unique_ptr<StateFile> create(LogFs& fs, const std::string& path, const LocalState& initial);
  // Opens an existing, valid file whose newest slot holds `current`. Throws std::system_error.
  static std::unique_ptr<StateFile> open(LogFs& fs, const std::string& path, const LocalState& current);

  // Writes `state` into the older slot and syncs it. A failed sync leaves the file's state unknown:
  // the caller must treat it as fatal. Errors are returned, never thrown.
  std::error_code write(const LocalState& state, bool& sync_failed);
  const LocalState& current() const { return current_; }
  const std::string& path() const { return path_; }

 private:
  StateFile(std::string path, std::unique_ptr<LogFile> file, LocalState current, std::uint64_t sequence);
  std::string path_;
  std::unique_ptr<LogFile> file_;
  LocalState current_;
  std::uint64_t sequence_;  // of the newest slot written
};

}  // namespace pm::wal
