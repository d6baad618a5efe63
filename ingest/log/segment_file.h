#pragma once
// SegmentFile: one log file read through a window buffer (LogFs reads at offsets, no seek state
// shared with the appender). Not thread-safe: one per reading thread.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ingest/log/log_fs.h"

namespace pm::wal {

class SegmentFile {
 public:
  SegmentFile(LogFs& fs, const std::string& path);  // throws std::system_error when it cannot open
  SegmentFile(const SegmentFile&) = delete;
  SegmentFile& operator=(const SegmentFile&) = delete;

  std::uint64_t size() const;  // current size; throws std::system_error
  // Bytes [offset, offset + n); nullptr when the file is shorter. Only bytes below `stable_end`
  // are kept for later calls: past a durable limit a concurrent append may still be writing, or a
  // failed append may be cut and written again, so those bytes are read afresh every time.
  // Throws std::system_error when the read fails.
  const char* read(std::uint64_t offset, std::size_t n, std::uint64_t stable_end = UINT64_MAX);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::unique_ptr<LogFile> file_;
  std::vector<char> buffer_;
  std::uint64_t buffer_offset_ = 0;
  std::size_t buffer_len_ = 0;
  std::size_t window_ = 0;  // bytes read per refill: grows to 1 MiB
};

// Whether every byte of `f` from `from` to `size` is zero: the preallocated rest of a segment (wal.h),
// a clean end in formats 2 and 3. False when the file is shorter. Throws what read() throws.
bool zeros_to_end(SegmentFile& f, std::uint64_t from, std::uint64_t size);

}  // namespace pm::wal
