#pragma once
// WalCorruption: the one error for damage found in the write-ahead log or its state file. It names
// the file and byte offset, so an operator can find the place (`pm-ingestctl wal-verify`). A file
// the system would not open (a permission, a symlink loop, too many open files) is no damage: it
// is unreadable(), so tools tell the operator to fix access, not the log. An I/O error (EIO) is a
// failing disk: damage.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <system_error>

namespace pm::wal {

// How the problem of a segment file that was listed but is gone begins (a daemon removes applied
// segments while tools read them: callers tell that from damage by it).
inline constexpr char kSegmentMissing[] = "segment missing";

class WalCorruption : public std::runtime_error {
 public:
  WalCorruption(const std::string& file, std::uint64_t offset, const std::string& what);
  // `file` could not be opened or read for `cause`, which is not that it is missing.
  WalCorruption(const std::string& file, const std::system_error& cause);
  const std::string& file() const { return file_; }
  std::uint64_t offset() const { return offset_; }
  const std::string& problem() const { return problem_; }
  bool segment_missing() const { return problem_.rfind(kSegmentMissing, 0) == 0; }
  // The system refused access to the file (refused_access): nothing is known about its contents.
  bool unreadable() const { return unreadable_; }

 private:
  std::string file_;
  std::uint64_t offset_;
  std::string problem_;
  bool unreadable_ = false;
};

// Whether `ec` says the system refused access to a file (a permission, a wrong path, a symlink
// loop, no descriptor or memory left) rather than that reading it failed (EIO: the disk).
bool refused_access(const std::error_code& ec);

// An fdatasync or directory fsync failed while the log was opened (recovery, a new log's first
// segment or state file): what the storage holds is unknown. The daemon exits 70, as for a failed
// sync while it runs, to be restarted and recover again.
class WalSyncFailed : public std::system_error {
 public:
  using std::system_error::system_error;
};

// Whether `e` is a WalCorruption saying a listed segment is gone (segment_missing()).
bool is_segment_missing(const std::exception& e);
// Whether `e` is a WalCorruption for a file the system refused access to (unreadable()).
bool is_unreadable(const std::exception& e);

// Throws WalCorruption "segment missing: ..." at `path` when `e` (from opening or reading it) says
// there is no such file; returns otherwise, for the caller to rethrow or map `e` its own way.
void throw_if_segment_missing(const std::string& path, const std::system_error& e);

}  // namespace pm::wal
