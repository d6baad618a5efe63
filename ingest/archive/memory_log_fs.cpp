#include "ingest/archive/memory_log_fs.h"

#include <algorithm>
#include <cstring>

namespace pm::archive {

namespace {

std::error_code read_only() { return std::make_error_code(std::errc::read_only_file_system); }

class MemoryFile final : public wal::LogFile {
 public:
  explicit MemoryFile(std::shared_ptr<const std::string> bytes) : bytes_(std::move(bytes)) {}

  std::error_code write_at(std::uint64_t, const char*, std::size_t) override { return read_only(); }
  std::error_code read_at(std::uint64_t offset, char* data, std::size_t n, std::size_t& got) override {
    got = 0;
    if (offset < bytes_->size()) {
      got = static_cast<std::size_t>(std::min<std::uint64_t>(n, bytes_->size() - offset));
      std::memcpy(data, bytes_->data() + offset, got);
    }
    return {};
  }
  std::error_code sync() override { return read_only(); }
  std::error_code drop_clean_pages() override { return {}; }  // no cache: reads are the bytes
  std::error_code truncate(std::uint64_t) override { return read_only(); }
  std::error_code size(std::uint64_t& out) override {
    out = bytes_->size();
    return {};
  }

 private:
  std::shared_ptr<const std::string> bytes_;
};

}  // namespace

void MemoryLogFs::put(const std::string& path, std::string bytes) {
  auto shared = std::make_shared<const std::string>(std::move(bytes));
  std::lock_guard lock(mu_);
  files_[path] = std::move(shared);
}

std::error_code MemoryLogFs::create_dir(const std::string&) { return read_only(); }

std::error_code MemoryLogFs::open(const std::string& path, wal::OpenMode mode, std::unique_ptr<wal::LogFile>& out) {
  if (mode != wal::OpenMode::Read) return read_only();
  std::lock_guard lock(mu_);
  const auto it = files_.find(path);
  if (it == files_.end()) return std::make_error_code(std::errc::no_such_file_or_directory);
  out = std::make_unique<MemoryFile>(it->second);
  return {};
}

std::error_code MemoryLogFs::rename(const std::string&, const std::string&) { return read_only(); }
std::error_code MemoryLogFs::remove(const std::string&) { return read_only(); }
std::error_code MemoryLogFs::sync_dir(const std::string&) { return read_only(); }

std::error_code MemoryLogFs::list(const std::string& dir, std::vector<std::string>& names) {
  names.clear();
  const std::string prefix = dir + "/";
  std::lock_guard lock(mu_);
  for (const auto& [path, bytes] : files_) {
    if (path.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string name = path.substr(prefix.size());
    if (!name.empty() && name.find('/') == std::string::npos) names.push_back(name);
  }
  return {};
}

std::error_code MemoryLogFs::lock(const std::string&, const std::string&, std::unique_ptr<wal::FileLock>&) {
  return read_only();
}

std::string MemoryLogFs::lock_owner(const std::string&) { return ""; }

bool MemoryLogFs::lock_in_use(const std::string&) { return false; }

}  // namespace pm::archive
