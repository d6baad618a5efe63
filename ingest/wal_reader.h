#pragma once
// Reading the write-ahead log (format: wal_format.h).
//
// - WalReader reads records in order from a record boundary up to a limit (the log's durable
//   end), moving from segment to segment and checking every checksum, LSN and the chain of segment
//   headers. Anything wrong throws WalCorruption naming the segment file and byte offset: a bad
//   record before the durable end is never skipped.
// - scan_segment() walks one segment file to its end and tells where the valid records stop and
//   why; the log uses it at start-up to cut a torn tail off the newest segment.
// Not thread-safe: one reader per thread. Reading a segment that is being appended is safe as long
// as the limit is durable.
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "ingest/wal_format.h"

namespace pm::wal {

class WalCorruption : public std::runtime_error {
 public:
  WalCorruption(const std::string& file, std::uint64_t offset, const std::string& what);
  const std::string& file() const { return file_; }
  std::uint64_t offset() const { return offset_; }

 private:
  std::string file_;
  std::uint64_t offset_;
};

struct Record {
  std::uint64_t lsn = 0;
  std::uint8_t type = 0;
  std::string payload;
  Position start;  // where the record begins
  Position end;    // the boundary after it
};

// A segment file read through a window buffer (pread, no seeking state shared with writers).
class SegmentFile {
 public:
  explicit SegmentFile(const std::string& path);  // throws std::system_error
  ~SegmentFile();
  SegmentFile(const SegmentFile&) = delete;
  SegmentFile& operator=(const SegmentFile&) = delete;

  std::uint64_t size() const;  // current size on disk
  // Bytes [offset, offset + n); nullptr when the file is shorter. Only bytes below `stable_end`
  // are kept for later calls: past a durable limit a concurrent append may still be writing, or a
  // failed append may be cut and written again, so those bytes are read afresh every time.
  const char* read(std::uint64_t offset, std::size_t n, std::uint64_t stable_end = UINT64_MAX);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
  std::vector<char> buffer_;
  std::uint64_t buffer_offset_ = 0;
  std::size_t buffer_len_ = 0;
};

class WalReader {
 public:
  WalReader(std::string dir, LogId log_id, const Position& from);
  ~WalReader();

  // The next record that ends at or before `limit`, or nullopt when there is none.
  std::optional<Record> next(const Position& limit);
  const Position& position() const { return position_; }

 private:
  void open_segment(std::uint64_t segment);
  std::string dir_;
  LogId log_id_;
  Position position_;
  std::unique_ptr<SegmentFile> file_;
};

enum class TailState {
  Clean,    // the valid records end exactly at the end of the file
  Torn,     // a bad record with no valid record after it (a crash's torn write): cut at valid_end
  Corrupt,  // a bad record with a valid record after it: never cut silently
};

struct SegmentScan {
  SegmentHeader header;
  Position valid_end;       // boundary after the last valid record
  std::uint64_t file_size = 0;
  TailState tail = TailState::Clean;
  std::string problem;      // what is wrong at valid_end when not Clean
  std::uint64_t records = 0;
};

// Scans the whole segment file from its first record, checking checksums and the LSN sequence
// that its header starts. Throws WalCorruption when the header itself is invalid.
SegmentScan scan_segment(const std::string& path);

}  // namespace pm::wal

namespace pm::wal {

// What a log directory holds, found without changing anything (for operator tools; safe while a
// daemon appends). `end` is where the valid records of the newest segment stop; `tail` says
// whether bytes after it are a torn write or corruption.
struct LogExtent {
  LogId log_id{};
  Position oldest;
  Position end;
  std::uint64_t segments = 0;
  TailState tail = TailState::Clean;
  std::string tail_problem;
};

// Throws WalCorruption for unreadable headers or gaps, std::runtime_error for an empty directory.
LogExtent inspect_log(const std::string& dir);

}  // namespace pm::wal
