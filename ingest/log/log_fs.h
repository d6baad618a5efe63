#pragma once
// LogFs: everything the write-ahead log does to files, behind one narrow interface (LevelDB's
// Env, cut down to what the log needs). posix_log_fs() is the production implementation; tests
// use a fault-injecting one (tests/support/fault_fs.h) that loses unsynced bytes on a simulated
// power loss and fails chosen calls with EIO, ENOSPC or EDQUOT.
//
// Contract:
// - Every call reports failure as a std::error_code (empty = success) and never throws for an
//   I/O failure (std::bad_alloc aside). Paths are "dir/name" strings.
// - LogFile::sync() is fdatasync: once it succeeds, the file's bytes and size survive a power
//   loss. A file created, renamed or removed survives a power loss only after sync_dir() of its
//   directory has succeeded.
// - A failed sync may leave bytes readable that the storage never got: Linux marks the pages of a
//   failed write-back clean and keeps them cached. drop_clean_pages() makes later reads come from
//   the storage (recovery reads the log's tail that way).
// - Implementations are thread-safe across files: the log's leader appends while readers read
//   the same files and the writer thread lists and removes segments. One LogFile is used by one
//   thread at a time.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

namespace pm::wal {

class LogFile {
 public:
  virtual ~LogFile() = default;
  // Writes all `n` bytes at `offset` (short writes and EINTR are retried inside).
  virtual std::error_code write_at(std::uint64_t offset, const char* data, std::size_t n) = 0;
  // Reads up to `n` bytes at `offset`; `got` < n only at the end of the file.
  virtual std::error_code read_at(std::uint64_t offset, char* data, std::size_t n, std::size_t& got) = 0;
  virtual std::error_code sync() = 0;  // fdatasync
  // Drops the file's clean cached pages (posix_fadvise DONTNEED), so the next reads of them come
  // from the storage. Dirty pages are not dropped: sync() first. Advisory: a page another process
  // has mapped stays cached.
  virtual std::error_code drop_clean_pages() = 0;
  virtual std::error_code truncate(std::uint64_t size) = 0;
  virtual std::error_code size(std::uint64_t& out) = 0;
};

// Held while it exists; released when destroyed (or when the process dies).
class FileLock {
 public:
  virtual ~FileLock() = default;
};

enum class OpenMode {
  Read,            // existing file, read only
  Write,           // existing file, read and write
  CreateTruncate,  // created if missing, emptied, read and write
};

class LogFs {
 public:
  virtual ~LogFs() = default;
  // Success if it exists; a directory it creates is durable (its parent synced) once it returns.
  // An existing one's parent is synced too where it can be (an earlier start may have died first).
  virtual std::error_code create_dir(const std::string& dir) = 0;
  virtual std::error_code open(const std::string& path, OpenMode mode, std::unique_ptr<LogFile>& out) = 0;
  virtual std::error_code rename(const std::string& from, const std::string& to) = 0;
  // rename() that never replaces an existing `to` (EEXIST): a new segment must not overwrite one
  // a listing missed. This default looks first, which only the directory's lock makes safe;
  // PosixLogFs asks the kernel (renameat2 RENAME_NOREPLACE) where the file system can.
  virtual std::error_code rename_new(const std::string& from, const std::string& to);
  virtual std::error_code remove(const std::string& path) = 0;
  virtual std::error_code sync_dir(const std::string& dir) = 0;
  // Names in `dir` (no "." or ".."), in no particular order; an error when any could not be read
  // (a partial listing would hide a segment).
  virtual std::error_code list(const std::string& dir, std::vector<std::string>& names) = 0;
  // An exclusive lock on `path` (created if missing) that no other process or LogFs user can
  // take while `out` lives: errc::resource_unavailable_try_again when one holds it already.
  // `owner` (e.g. "pid 1234") is written into the file for the message the loser prints.
  virtual std::error_code lock(const std::string& path, const std::string& owner, std::unique_ptr<FileLock>& out) = 0;
  // What the lock file at `path` says about its holder ("" when unreadable).
  virtual std::string lock_owner(const std::string& path) = 0;
  // Whether a lock() on `path` is held now (by any process, this one included), found without
  // taking it: a reader beside a running daemon must never stop that daemon from starting. True
  // when it cannot tell; false when there is no such file. (POSIX: the kernel's lock table, which
  // shows only the locks of processes in the caller's PID namespace.)
  virtual bool lock_in_use(const std::string& path) = 0;
};

// The production file system (POSIX calls); one process-wide instance.
LogFs& posix_log_fs();

// The error code of an errno value.
inline std::error_code errno_code(int e) { return std::error_code(e, std::generic_category()); }
// Whether an error means "no space" (ENOSPC, EDQUOT): the caller may retry once space returns.
bool is_disk_full(const std::error_code& ec);

}  // namespace pm::wal
