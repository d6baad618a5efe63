#pragma once
// SyncGateFs: holds fdatasync at a gate, to see what happens while a log's sync is in progress.
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "ingest/log/log_fs.h"
#include "tests/support/forwarding_log_fs.h"

namespace pm::wal {

// A LogFs (the real file system unless another is given) with a gate on fdatasync: while it is
// closed, the sync() of every file (or, with `gated` given, of each file opened under a path
// containing it) waits until open_gate(). The wait is bounded (20 s), so a failed assertion cannot
// leave a thread of the log waiting for ever. Thread-safe.
class SyncGateFs : public ForwardingLogFs {
 public:
  explicit SyncGateFs(LogFs& inner = posix_log_fs(), std::string gated = "") : ForwardingLogFs(inner), gated_(std::move(gated)) {}
  std::error_code open(const std::string& path, OpenMode mode, std::unique_ptr<LogFile>& out) override {
    if (const std::error_code ec = ForwardingLogFs::open(path, mode, out)) return ec;
    if (path.find(gated_) != std::string::npos) out = std::make_unique<GatedFile>(*this, std::move(out));
    return {};
  }
  void close_gate() {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  void open_gate() {
    {
      std::lock_guard lock(mu_);
      closed_ = false;
    }
    cv_.notify_all();
  }
  // Opens the gate, and every sync from now on (those held too) fails with EIO.
  void fail_syncs() {
    {
      std::lock_guard lock(mu_);
      failing_ = true;
      closed_ = false;
    }
    cv_.notify_all();
  }
  // Waits until a sync is held at the gate.
  void wait_for_held_sync() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return held_ > 0; });
  }


 private:
  class GatedFile : public ForwardingLogFile {
   public:
    GatedFile(SyncGateFs& fs, std::unique_ptr<LogFile> file) : ForwardingLogFile(std::move(file)), fs_(fs) {}
    std::error_code sync() override {
      if (!fs_.pass_gate()) return std::make_error_code(std::errc::io_error);
      return ForwardingLogFile::sync();
    }

   private:
    SyncGateFs& fs_;
  };
  // False: the sync must fail.
  bool pass_gate() {
    std::unique_lock lock(mu_);
    ++held_;
    cv_.notify_all();
    cv_.wait_for(lock, std::chrono::seconds(20), [&] { return !closed_; });
    --held_;
    return !failing_;
  }
  const std::string gated_;  // "": every file
  std::mutex mu_;
  std::condition_variable cv_;
  bool closed_ = false;
  bool failing_ = false;
  int held_ = 0;
};

}  // namespace pm::wal
