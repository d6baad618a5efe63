#pragma once
// SpareSegment: a file of zeros, written and synced ahead of time by a thread of its own, which
// the log renames into place as its next segment (wal.h, Options::preallocate). The appends then
// overwrite blocks that exist and sit clean in the page cache, so a group's fdatasync writes the
// group and no block allocation (measured here, 62,000 events/s paced: fdatasync 0.25 against
// 0.27 ms, rows visible in PostgreSQL at p99 85 against 126 ms). The zeros go into a file of
// their own: written ahead into the active segment itself, every group's fdatasync had to write
// them too, and nothing was gained. PostgreSQL prepares its WAL segments for the same reason.
//
// Contract:
// - The spare is `dir/spare.zeros` once complete (exactly `bytes` long, all zeros, synced) and
//   `dir/spare.partial` while it is written. The constructor removes a partial one, and a
//   complete one of another size; a complete one of the right size is kept.
// - prepare(): asks the thread to write a spare unless one is complete or being written. Cheap
//   when one is; the log calls it once its active segment is a quarter full, or holds
//   kGrowingSegmentSpareBytes while it grows with its appends (wal.h). The zeros are
//   written at kPaceBytesPerSecond, in kChunk writes, synced every kSyncEvery.
// - take(): the path of the complete spare ("" when none is ready), which the caller now owns
//   (it renames it into a segment, or removes it); prepare() makes the next one. The rename to
//   spare.zeros and readiness are one step: a spare.zeros seen on disk and not yet taken is one
//   take() returns.
// - ready(): whether take() would return a spare now (only the caller of take() can change that).
// - A failed write or sync is reported through `on_warning`; the partial file is removed and the
//   next prepare() tries again. The log then simply starts segments without a spare.
// - disk_bytes(): the spare files' bytes on disk now.
// - Threads: any thread may call prepare/take/disk_bytes; the destructor stops the thread after
//   the write in flight (a partial file stays, for the next constructor to remove).
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>

#include "ingest/log/log_fs.h"

namespace pm::wal {

inline constexpr char kSpareFileName[] = "spare.zeros";
inline constexpr char kSparePartialFileName[] = "spare.partial";

class SpareSegment {
 public:
  SpareSegment(LogFs& fs, const std::string& dir, std::uint64_t bytes, std::function<void(const std::string&)> on_warning);
  ~SpareSegment();
  SpareSegment(const SpareSegment&) = delete;
  SpareSegment& operator=(const SpareSegment&) = delete;

  void prepare();
  std::string take();
  bool ready() const;
  std::uint64_t disk_bytes() const;

  static constexpr std::size_t kChunk = 1u << 20;       // one write of zeros
  static constexpr std::uint64_t kSyncEvery = 8u << 20;  // zeros written between two fdatasyncs
  // How fast zeros are written: a 64 MiB spare takes half a second, while the log fills the last
  // three quarters of a segment (the spare is asked for at a quarter) in 0.9 s at 55 MB/s.
  static constexpr std::uint64_t kPaceBytesPerSecond = 128u << 20;

 private:
  enum class State { None, Wanted, Writing, Ready };
  void keep_or_remove_leftovers();
  void run();
  bool write_partial();  // the thread, without mu_: true when spare.partial holds all the zeros, synced
  void give_up(const std::string& what, std::error_code ec);  // warns, removes the partial file

  LogFs& fs_;
  const std::string spare_path_;
  const std::string partial_path_;
  const std::uint64_t bytes_;
  const std::function<void(const std::string&)> on_warning_;

  mutable std::mutex mu_;
  std::condition_variable changed_;
  State state_ = State::None;               // guarded by mu_
  std::atomic<bool> busy_or_ready_{false};  // state_ is Wanted, Writing or Ready: prepare() returns at once
  std::atomic<std::uint64_t> written_{0};   // bytes of the spare files now
  bool stopping_ = false;                   // guarded by mu_
  std::thread thread_;
};

}  // namespace pm::wal
