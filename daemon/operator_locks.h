#pragma once
// Waiting, at the daemon's start, for operator commands that hold its locks.
//
// `pm-ingestctl archive store-damaged` holds the log directory's lock and the archive directory's
// for as long as it runs (it moves a segment out of the live log). A daemon started meanwhile (by
// a producer's connection through pm-ingestd.socket, a restart, an impatient operator) found the
// log "in use by another pm-ingestd" and exited 2, which systemd does not restart. It now waits for
// such a command (a lock another process holds whose owner line names pm-ingestctl; the lock is
// tried, never read from /proc/locks, which the unit's ProcSubset=pid hides), up to `limit`,
// saying once what it waits for. A lock held by a daemon is left to the log's and the archiver's own refusal (exit 2:
// two daemons on one directory is a configuration error).
//
// The main thread, before the log is opened; nothing else runs yet.
#include <signal.h>

#include <chrono>
#include <string>
#include <vector>

#include <spdlog/logger.h>

namespace pm {

enum class OperatorLocks {
  Free,          // no operator command holds them (a daemon may: the open says so)
  StillHeld,     // still held by an operator command at `limit`
  StopAsked,     // SIGINT or SIGTERM arrived while waiting
};

// `lock_paths`: the lock files to wait for, in order. `stop_asked` is polled while waiting.
OperatorLocks wait_for_operator_commands(const std::vector<std::string>& lock_paths, std::chrono::milliseconds limit,
                                         bool (*stop_asked)(const sigset_t&), const sigset_t& signals, spdlog::logger& log);

}  // namespace pm
