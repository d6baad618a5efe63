#include "ingest/log/segment_file.h"

#include <algorithm>
#include <system_error>

namespace pm::wal {

namespace {
// The window starts small (most files read at start-up are short, and tools open many) and
// doubles with every refill up to 1 MiB, the size that keeps replay of large segments fast.
constexpr std::size_t kFirstWindow = 16 << 10;
constexpr std::size_t kMaxWindow = 1 << 20;
}

SegmentFile::SegmentFile(LogFs& fs, const std::string& path) : path_(path) {
  if (const std::error_code ec = fs.open(path, OpenMode::Read, file_)) throw std::system_error(ec, "open " + path);
}

std::uint64_t SegmentFile::size() const {
  std::uint64_t out = 0;
  if (const std::error_code ec = file_->size(out)) throw std::system_error(ec, "stat " + path_);
  return out;
}

const char* SegmentFile::read(std::uint64_t offset, std::size_t n, std::uint64_t stable_end) {
  if (offset >= buffer_offset_ && offset + n <= buffer_offset_ + buffer_len_)
    return buffer_.data() + (offset - buffer_offset_);
  window_ = window_ == 0 ? kFirstWindow : std::min(window_ * 2, kMaxWindow);
  const std::size_t want = std::max(n, window_);
  if (buffer_.size() < want) buffer_.resize(want);
  std::size_t got = 0;
  buffer_len_ = 0;
  if (const std::error_code ec = file_->read_at(offset, buffer_.data(), want, got)) throw std::system_error(ec, "read " + path_);
  buffer_offset_ = offset;
  buffer_len_ = stable_end > offset ? static_cast<std::size_t>(std::min<std::uint64_t>(got, stable_end - offset)) : 0;
  return got >= n ? buffer_.data() : nullptr;
}

bool zeros_to_end(SegmentFile& f, std::uint64_t from, std::uint64_t size) {
  constexpr std::uint64_t kStep = 64u << 10;
  for (std::uint64_t off = from; off < size; off += kStep) {
    const std::size_t n = static_cast<std::size_t>(std::min(kStep, size - off));
    const char* p = f.read(off, n);
    if (p == nullptr) return false;
    for (std::size_t i = 0; i < n; ++i)
      if (p[i] != 0) return false;
  }
  return true;
}

}  // namespace pm::wal
