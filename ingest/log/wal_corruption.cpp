#include "ingest/log/wal_corruption.h"

namespace pm::wal {

WalCorruption::WalCorruption(const std::string& file, std::uint64_t offset, const std::string& what)
    : std::runtime_error("write-ahead log corrupt in " + file + " at offset " + std::to_string(offset) + ": " + what),
      file_(file),
      offset_(offset),
      problem_(what) {}

}  // namespace pm::wal
