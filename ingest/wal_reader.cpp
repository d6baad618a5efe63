#include "ingest/wal_reader.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

namespace pm::wal {

namespace {

constexpr std::size_t kReadWindow = 1 << 20;

std::string join(const std::string& dir, const std::string& name) { return dir + "/" + name; }

Position first_position(const SegmentHeader& h) {
  return Position{h.segment, kSegmentHeaderSize, h.base_offset, h.first_lsn - 1};
}

Position after(const Position& p, std::uint64_t record_bytes, std::uint64_t lsn) {
  return Position{p.segment, p.offset + record_bytes, p.log_offset + record_bytes, lsn};
}

// Whether any valid record (plausible LSN, length inside the file, checksum right) starts after
// `from`. A bad record followed by a valid one is corruption, not a torn write: a crash can only
// leave an incomplete suffix of the last write.
bool valid_record_after(SegmentFile& f, std::uint64_t from, std::uint64_t size, std::uint64_t last_lsn) {
  for (std::uint64_t off = from; off + kRecordHeaderSize <= size; ++off) {
    const char* p = f.read(off, kRecordHeaderSize);
    if (p == nullptr) return false;
    const RecordHeader h = decode_record_header(p);
    if (h.lsn <= last_lsn || h.lsn - last_lsn > (1ull << 32) || h.length > size - off - kRecordHeaderSize) continue;
    const std::size_t bytes = kRecordHeaderSize + h.length;
    const char* rec = f.read(off, bytes);
    if (rec != nullptr && record_checksum_ok(rec, bytes)) return true;
  }
  return false;
}

}  // namespace

WalCorruption::WalCorruption(const std::string& file, std::uint64_t offset, const std::string& what)
    : std::runtime_error("write-ahead log corrupt in " + file + " at offset " + std::to_string(offset) + ": " + what),
      file_(file),
      offset_(offset) {}

SegmentFile::SegmentFile(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "open " + path);
}

SegmentFile::~SegmentFile() {
  if (fd_ >= 0) ::close(fd_);
}

std::uint64_t SegmentFile::size() const {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) throw std::system_error(errno, std::generic_category(), "stat " + path_);
  return static_cast<std::uint64_t>(st.st_size);
}

const char* SegmentFile::read(std::uint64_t offset, std::size_t n, std::uint64_t stable_end) {
  if (offset >= buffer_offset_ && offset + n <= buffer_offset_ + buffer_len_)
    return buffer_.data() + (offset - buffer_offset_);
  const std::size_t want = std::max(n, kReadWindow);
  if (buffer_.size() < want) buffer_.resize(want);
  std::size_t got = 0;
  while (got < want) {
    const ssize_t r = ::pread(fd_, buffer_.data() + got, want - got, static_cast<off_t>(offset + got));
    if (r < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "read " + path_);
    }
    if (r == 0) break;
    got += static_cast<std::size_t>(r);
  }
  buffer_offset_ = offset;
  buffer_len_ = stable_end > offset ? static_cast<std::size_t>(std::min<std::uint64_t>(got, stable_end - offset)) : 0;
  return got >= n ? buffer_.data() : nullptr;
}

WalReader::WalReader(std::string dir, LogId log_id, const Position& from)
    : dir_(std::move(dir)), log_id_(log_id), position_(from) {}

WalReader::~WalReader() = default;

void WalReader::open_segment(std::uint64_t segment) {
  const std::string path = join(dir_, segment_file_name(segment));
  try {
    file_ = std::make_unique<SegmentFile>(path);
  } catch (const std::system_error& e) {
    throw WalCorruption(path, 0, std::string("segment missing: ") + e.what());
  }
  const char* p = file_->read(0, kSegmentHeaderSize, kSegmentHeaderSize);  // cache the header only
  SegmentHeader h;
  if (p == nullptr || !decode_segment_header(p, kSegmentHeaderSize, h))
    throw WalCorruption(path, 0, "invalid segment header");
  if (h.log_id != log_id_) throw WalCorruption(path, 0, "segment belongs to another log");
  if (h.segment != segment) throw WalCorruption(path, 0, "segment number in header does not match its name");
  if (position_.offset == kSegmentHeaderSize || position_.segment != segment) {
    // Entering at the start of the segment: the header must continue the chain exactly.
    if (h.first_lsn != position_.lsn + 1 || h.base_offset != position_.log_offset)
      throw WalCorruption(path, 0, "segment does not continue the log (first lsn " + std::to_string(h.first_lsn) +
                                       ", expected " + std::to_string(position_.lsn + 1) + ")");
    position_ = first_position(h);
  }
}

std::optional<Record> WalReader::next(const Position& limit) {
  if (position_.lsn >= limit.lsn) return std::nullopt;
  for (;;) {
    if (!file_ || file_->path() != join(dir_, segment_file_name(position_.segment))) open_segment(position_.segment);
    const bool last_segment = position_.segment == limit.segment;
    const std::uint64_t end = last_segment ? limit.offset : file_->size();
    if (position_.offset >= end) {
      if (last_segment) return std::nullopt;
      // This segment is finished; the next one must start the following record.
      position_.segment += 1;
      position_.offset = kSegmentHeaderSize;
      file_.reset();
      continue;
    }
    const char* p = file_->read(position_.offset, kRecordHeaderSize, end);
    if (p == nullptr || position_.offset + kRecordHeaderSize > end)
      throw WalCorruption(file_->path(), position_.offset, "record header cut short");
    const RecordHeader h = decode_record_header(p);
    const std::uint64_t bytes = kRecordHeaderSize + h.length;
    if (h.length > kMaxPayload || position_.offset + bytes > end)
      throw WalCorruption(file_->path(), position_.offset, "record length " + std::to_string(h.length) + " runs past the end");
    p = file_->read(position_.offset, static_cast<std::size_t>(bytes), end);
    if (p == nullptr) throw WalCorruption(file_->path(), position_.offset, "record cut short");
    if (!record_checksum_ok(p, static_cast<std::size_t>(bytes)))
      throw WalCorruption(file_->path(), position_.offset, "checksum mismatch");
    if (h.lsn != position_.lsn + 1)
      throw WalCorruption(file_->path(), position_.offset,
                          "lsn " + std::to_string(h.lsn) + " where " + std::to_string(position_.lsn + 1) + " was expected");
    Record r;
    r.lsn = h.lsn;
    r.type = h.type;
    r.payload.assign(p + kRecordHeaderSize, h.length);
    r.start = position_;
    r.end = after(position_, bytes, h.lsn);
    position_ = r.end;
    return r;
  }
}

SegmentScan scan_segment(const std::string& path) {
  SegmentFile f(path);
  SegmentScan scan;
  scan.file_size = f.size();
  const char* p = f.read(0, kSegmentHeaderSize);
  if (p == nullptr || !decode_segment_header(p, kSegmentHeaderSize, scan.header))
    throw WalCorruption(path, 0, "invalid segment header");
  Position pos = first_position(scan.header);
  auto stop = [&](TailState state, std::string why) {
    scan.valid_end = pos;
    scan.tail = state;
    scan.problem = std::move(why);
    return scan;
  };
  while (pos.offset < scan.file_size) {
    const std::uint64_t left = scan.file_size - pos.offset;
    std::string problem;
    std::uint64_t bytes = 0;
    if (left < kRecordHeaderSize) {
      problem = "incomplete record header (" + std::to_string(left) + " bytes)";
    } else {
      const RecordHeader h = decode_record_header(f.read(pos.offset, kRecordHeaderSize));
      bytes = kRecordHeaderSize + static_cast<std::uint64_t>(h.length);
      if (bytes > left) {
        problem = "record of " + std::to_string(h.length) + " bytes runs past the end of the file";
      } else if (!record_checksum_ok(f.read(pos.offset, static_cast<std::size_t>(bytes)), static_cast<std::size_t>(bytes))) {
        problem = "checksum mismatch";
      } else if (h.lsn != pos.lsn + 1) {
        problem = "lsn " + std::to_string(h.lsn) + " where " + std::to_string(pos.lsn + 1) + " was expected";
      }
    }
    if (!problem.empty()) {
      const bool more = valid_record_after(f, pos.offset + 1, scan.file_size, pos.lsn);
      return stop(more ? TailState::Corrupt : TailState::Torn, problem);
    }
    pos = after(pos, bytes, pos.lsn + 1);
    ++scan.records;
  }
  scan.valid_end = pos;
  return scan;
}

}  // namespace pm::wal

namespace pm::wal {

LogExtent inspect_log(const std::string& dir) {
  std::vector<std::uint64_t> found;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) throw std::system_error(errno, std::generic_category(), "list " + dir);
  while (dirent* e = ::readdir(d)) {
    std::uint64_t seg = 0;
    if (parse_segment_file_name(e->d_name, seg)) found.push_back(seg);
  }
  ::closedir(d);
  if (found.empty()) throw std::runtime_error(dir + " holds no log segments");
  std::sort(found.begin(), found.end());
  for (std::size_t i = 1; i < found.size(); ++i)
    if (found[i] != found[i - 1] + 1)
      throw WalCorruption(join(dir, segment_file_name(found[i])), 0,
                          "segment " + segment_file_name(found[i - 1] + 1) + " is missing before it");
  LogExtent extent;
  extent.segments = found.size();
  {
    const std::string path = join(dir, segment_file_name(found.front()));
    SegmentFile f(path);
    SegmentHeader h;
    const char* p = f.read(0, kSegmentHeaderSize);
    if (p == nullptr || !decode_segment_header(p, kSegmentHeaderSize, h)) throw WalCorruption(path, 0, "invalid segment header");
    extent.log_id = h.log_id;
    extent.oldest = first_position(h);
  }
  const SegmentScan scan = scan_segment(join(dir, segment_file_name(found.back())));
  if (scan.header.log_id != extent.log_id)
    throw WalCorruption(join(dir, segment_file_name(found.back())), 0, "segment belongs to another log");
  extent.end = scan.valid_end;
  extent.tail = scan.tail;
  extent.tail_problem = scan.problem;
  return extent;
}

}  // namespace pm::wal
