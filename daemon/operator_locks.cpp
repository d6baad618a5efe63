#include "daemon/operator_locks.h"

#include <unistd.h>

#include <thread>

#include "ingest/log/log_fs.h"

namespace pm {
namespace {

constexpr std::chrono::milliseconds kPollInterval{100};

// Whether `path` is locked now by a pm-ingestctl command: taking the lock fails because another
// holds it, and the file's owner line names pm-ingestctl. Found by trying the lock, not with
// LogFs::lock_in_use(): that reads /proc/locks, which the unit's ProcSubset=pid hides ("cannot
// tell": in use), and the owner line stays in the file after its holder has exited, so a daemon
// under the shipped unit waited for a command long gone, every start. A lock taken here is let go
// at once (the log's open takes it); a missing directory or any other failure is no command.
bool held_by_operator_command(wal::LogFs& fs, const std::string& path, std::string& owner) {
  std::unique_ptr<wal::FileLock> probe;
  if (fs.lock(path, "pid " + std::to_string(::getpid()), probe) != std::errc::resource_unavailable_try_again) return false;
  owner = fs.lock_owner(path);
  // The holder writes its owner line just after taking the lock: an empty line may be that moment.
  if (owner.empty()) {
    std::this_thread::sleep_for(kPollInterval);
    owner = fs.lock_owner(path);
  }
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
