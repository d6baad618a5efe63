#pragma once
// SyncGateFs: holds fdatasync at a gate, to see what happens while a log's sync is in progress.
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <vector>

#include "ingest/log/log_fs.h"

namespace pm::wal {

// A LogFs (the real file system unless another is given) with a gate on fdatasync: while it is
// closed, every file's sync() waits until open_gate(). Thread-safe.
class SyncGateFs : public LogFs {
 public:
  explicit SyncGateFs(LogFs& inner = posix_log_fs()) : inner_(inner) {}
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

  std::error_code create_dir(const std::string& dir) override { return inner_.create_dir(dir); }
  std::error_code open(const std::string& path, OpenMode mode, std::unique_ptr<LogFile>& out) override {
    std::unique_ptr<LogFile> file;
    if (auto ec = inner_.open(path, mode, file)) return ec;
    out = std::make_unique<GatedFile>(*this, std::move(file));
    return {};
  }
  std::error_code rename(const std::string& from, const std::string& to) override { return inner_.rename(from, to); }
  std::error_code remove(const std::string& path) override { return inner_.remove(path); }
  std::error_code sync_dir(const std::string& dir) override { return inner_.sync_dir(dir); }
  std::error_code list(const std::string& dir, std::vector<std::string>& names) override { return inner_.list(dir, names); }
  std::error_code lock(const std::string& path, const std::string& owner, std::unique_ptr<FileLock>& out) override {
    return inner_.lock(path, owner, out);
  }
  std::string lock_owner(const std::string& path) override { return inner_.lock_owner(path); }

 private:
  class GatedFile : public LogFile {
   public:
    GatedFile(SyncGateFs& fs, std::unique_ptr<LogFile> file) : fs_(fs), file_(std::move(file)) {}
    std::error_code write_at(std::uint64_t offset, const char* data, std::size_t n) override { return file_->write_at(offset, data, n); }
    std::error_code read_at(std::uint64_t offset, char* data, std::size_t n, std::size_t& got) override {
      return file_->read_at(offset, data, n, got);
    }
    std::error_code sync() override {
      if (!fs_.pass_gate()) return std::make_error_code(std::errc::io_error);
      return file_->sync();
    }
    std::error_code truncate(std::uint64_t size) override { return file_->truncate(size); }
    std::error_code size(std::uint64_t& out) override { return file_->size(out); }

   private:
    SyncGateFs& fs_;
    std::unique_ptr<LogFile> file_;
  };
  // False: the sync must fail.
  bool pass_gate() {
    std::unique_lock lock(mu_);
    ++held_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return !closed_; });
    --held_;
    return !failing_;
  }
  LogFs& inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool closed_ = false;
  bool failing_ = false;
  int held_ = 0;
};

}  // namespace pm::wal
