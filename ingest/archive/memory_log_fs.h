#pragma once
// MemoryLogFs: a read-only LogFs (ingest/log/log_fs.h) over byte strings held in memory, so the
// log's own reader, scanner and salvage code can read a segment that is not a file of a live log
// directory (a decompressed archive, or a snapshot of a live segment).
//
// Contract:
// - put(path, bytes) serves `bytes` as the file `path` ("dir/name"); list(dir) names the files put
//   directly under `dir`. Only OpenMode::Read succeeds; every call that would change something
//   fails with errc::read_only_file_system, and a missing file with errc::no_such_file_or_directory.
// - Thread-safe; an open file keeps its bytes even if they are replaced or the fs is destroyed.
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "ingest/log/log_fs.h"

namespace pm::archive {

class MemoryLogFs final : public wal::LogFs {
 public:
  void put(const std::string& path, std::string bytes);

  std::error_code create_dir(const std::string& dir) override;
  std::error_code open(const std::string& path, wal::OpenMode mode, std::unique_ptr<wal::LogFile>& out) override;
  std::error_code rename(const std::string& from, const std::string& to) override;
  std::error_code remove(const std::string& path) override;
  std::error_code sync_dir(const std::string& dir) override;
  std::error_code list(const std::string& dir, std::vector<std::string>& names) override;
  std::error_code lock(const std::string& path, const std::string& owner, std::unique_ptr<wal::FileLock>& out) override;
  std::string lock_owner(const std::string& path) override;
  bool lock_in_use(const std::string& path) override;  // never: it gives no locks

 private:
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<const std::string>> files_;
};

}  // namespace pm::archive
