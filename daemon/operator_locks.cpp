#include "daemon/operator_locks.h"

#include <thread>

#include "ingest/log/log_fs.h"

namespace pm {
namespace {

constexpr std::chrono::milliseconds kPollInterval{100};

// Whether `path` is locked now by a pm-ingestctl command (its lock file's owner line says so).
bool held_by_operator_command(wal::LogFs& fs, const std::string& path, std::string& owner) {
  if (!fs.lock_in_use(path)) return false;
  owner = fs.lock_owner(path);
  return owner.rfind("pm-ingestctl", 0) == 0;
}

}  // namespace

OperatorLocks wait_for_operator_commands(const std::vector<std::string>& lock_paths, std::chrono::milliseconds limit,
                                         bool (*stop_asked)(const sigset_t&), const sigset_t& signals, spdlog::logger& log) {
  wal::LogFs& fs = wal::posix_log_fs();
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (const std::string& path : lock_paths) {
    std::string owner;
    bool said = false;
    while (held_by_operator_command(fs, path, owner)) {
      if (stop_asked(signals)) return OperatorLocks::StopAsked;
      if (std::chrono::steady_clock::now() >= deadline) {
        log.critical("{} is still held by {} (an operator command) after {} s; exiting 1 to be started again", path, owner,
                     std::chrono::duration_cast<std::chrono::seconds>(limit).count());
        return OperatorLocks::StillHeld;
      }
      if (!said) {
        log.warn("{} is held by {} (an operator command, e.g. pm-ingestctl archive store-damaged); waiting up to {} s "
                 "for it to finish before opening the log",
                 path, owner, std::chrono::duration_cast<std::chrono::seconds>(limit).count());
        said = true;
      }
      std::this_thread::sleep_for(kPollInterval);
    }
    if (said) log.info("{} released; starting", path);
  }
  return OperatorLocks::Free;
}

}  // namespace pm
