#include "ingest/log/wal_corruption.h"

#include <cerrno>

namespace pm::wal {

WalCorruption::WalCorruption(const std::string& file, std::uint64_t offset, const std::string& what)
    : std::runtime_error("write-ahead log corrupt in " + file + " at offset " + std::to_string(offset) + ": " + what),
      file_(file),
      offset_(offset),
      problem_(what) {}

WalCorruption::WalCorruption(const std::string& file, const std::system_error& cause)
    : std::runtime_error("cannot read write-ahead log file " + file + ": " + cause.what()),
      file_(file),
      offset_(0),
      problem_(std::string("cannot open segment: ") + cause.what()),
      unreadable_(refused_access(cause.code())) {}

bool refused_access(const std::error_code& ec) {
  if (ec.category() != std::generic_category() && ec.category() != std::system_category()) return false;
  switch (ec.value()) {
    case EACCES: case EPERM: case ENOENT: case ENOTDIR: case EISDIR: case ELOOP: case ENAMETOOLONG:
    case EMFILE: case ENFILE: case ENOMEM:
      return true;
    default:
      return false;
  }
}

bool is_segment_missing(const std::exception& e) {
  const auto* corruption = dynamic_cast<const WalCorruption*>(&e);
  return corruption != nullptr && corruption->segment_missing();
}

bool is_unreadable(const std::exception& e) {
  const auto* corruption = dynamic_cast<const WalCorruption*>(&e);
  return corruption != nullptr && corruption->unreadable();
}

void throw_if_segment_missing(const std::string& path, const std::system_error& e) {
  if (e.code() == std::errc::no_such_file_or_directory) throw WalCorruption(path, 0, std::string(kSegmentMissing) + ": " + e.what());
}

}  // namespace pm::wal
