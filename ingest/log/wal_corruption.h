#pragma once
// WalCorruption: the one error for damage found in the write-ahead log or its state file. It names
// the file and byte offset, so an operator can find the place (`pm-ingestctl wal-verify`).
#include <cstdint>
#include <stdexcept>
#include <string>

namespace pm::wal {

// How the problem of a segment file that was listed but is gone begins (a daemon removes applied
// segments while tools read them: callers tell that from damage by it).
inline constexpr char kSegmentMissing[] = "segment missing";

class WalCorruption : public std::runtime_error {
 public:
  WalCorruption(const std::string& file, std::uint64_t offset, const std::string& what);
  const std::string& file() const { return file_; }
  std::uint64_t offset() const { return offset_; }
  const std::string& problem() const { return problem_; }
  bool segment_missing() const { return problem_.rfind(kSegmentMissing, 0) == 0; }

 private:
  std::string file_;
  std::uint64_t offset_;
  std::string problem_;
};

}  // namespace pm::wal
