#pragma once
// ForwardingLogFs and ForwardingLogFile: a LogFs and a LogFile that pass every call to an inner
// one, for test file systems that change one thing (a gate on sync, a size that lies) and keep the
// rest. A subclass overrides what it changes; ForwardingLogFs::wrap() lets it wrap each file it
// opens. Thread-safety is the inner one's.
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "ingest/log/log_fs.h"

namespace pm::wal {

class ForwardingLogFile : public LogFile {
 public:
  explicit ForwardingLogFile(std::unique_ptr<LogFile> inner) : inner_(std::move(inner)) {}
  std::error_code write_at(std::uint64_t offset, const char* data, std::size_t n) override { return inner_->write_at(offset, data, n); }
  std::error_code read_at(std::uint64_t offset, char* data, std::size_t n, std::size_t& got) override {
    return inner_->read_at(offset, data, n, got);
  }
  std::error_code sync() override { return inner_->sync(); }
  std::error_code drop_clean_pages() override { return inner_->drop_clean_pages(); }
  std::error_code truncate(std::uint64_t size) override { return inner_->truncate(size); }
  std::error_code size(std::uint64_t& out) override { return inner_->size(out); }

 private:
  std::unique_ptr<LogFile> inner_;
};

class ForwardingLogFs : public LogFs {
 public:
  explicit ForwardingLogFs(LogFs& inner) : inner_(inner) {}
  std::error_code create_dir(const std::string& dir) override { return inner_.create_dir(dir); }
  std::error_code open(const std::string& path, OpenMode mode, std::unique_ptr<LogFile>& out) override {
    std::unique_ptr<LogFile> file;
    if (auto ec = inner_.open(path, mode, file)) return ec;
    out = wrap(std::move(file));
    return {};
  }
  std::error_code rename(const std::string& from, const std::string& to) override { return inner_.rename(from, to); }
  std::error_code rename_new(const std::string& from, const std::string& to) override { return inner_.rename_new(from, to); }
  std::error_code remove(const std::string& path) override { return inner_.remove(path); }
  std::error_code sync_dir(const std::string& dir) override { return inner_.sync_dir(dir); }
  std::error_code list(const std::string& dir, std::vector<std::string>& names) override { return inner_.list(dir, names); }
  std::error_code lock(const std::string& path, const std::string& owner, std::unique_ptr<FileLock>& out) override {
    return inner_.lock(path, owner, out);
  }
  std::string lock_owner(const std::string& path) override { return inner_.lock_owner(path); }
  bool lock_in_use(const std::string& path) override { return inner_.lock_in_use(path); }

 protected:
  // The file handed out for an opened inner file: itself unless a subclass wraps it.
  virtual std::unique_ptr<LogFile> wrap(std::unique_ptr<LogFile> file) { return file; }

 private:
  LogFs& inner_;
};

}  // namespace pm::wal
