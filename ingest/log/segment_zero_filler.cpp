#include "ingest/log/segment_zero_filler.h"

#include <algorithm>

namespace pm::wal {

SegmentZeroFiller::SegmentZeroFiller(LogFs& fs, std::uint64_t target, std::uint64_t ahead,
                                     std::function<void(const std::string&)> on_warning)
    : fs_(fs), target_(target), ahead_(ahead), on_warning_(std::move(on_warning)), zeros_(kChunk, '\0') {
  thread_ = std::thread([this] { run(); });
}

SegmentZeroFiller::~SegmentZeroFiller() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

void SegmentZeroFiller::follow(const std::string& path, std::uint64_t size, std::uint64_t written) {
  std::unique_ptr<LogFile> opened;
  const std::error_code ec = fs_.open(path, OpenMode::Write, opened);
  std::unique_lock lock(mu_);
  changed_.wait(lock, [&] { return !writing_; });
  path_ = path;
  file_ = std::move(opened);
  if (ec) give_up("open", ec);
  paused_ = false;
  zero_end_ = size;
  reserved_ = written;
  unsynced_ = 0;
  changed_.notify_all();
}

void SegmentZeroFiller::reserve(std::uint64_t end) {
  std::unique_lock lock(mu_);
  reserved_ = std::max(reserved_, end);
  changed_.wait(lock, [&] { return !writing_ || end <= write_start_; });
}

void SegmentZeroFiller::pause() {
  std::unique_lock lock(mu_);
  paused_ = true;
  changed_.wait(lock, [&] { return !writing_; });
}

void SegmentZeroFiller::resume(std::uint64_t size) {
  {
    std::lock_guard lock(mu_);
    paused_ = false;
    zero_end_ = size;
    reserved_ = size;
  }
  changed_.notify_all();
}

std::uint64_t SegmentZeroFiller::filled_end() const {
  std::lock_guard lock(mu_);
  return file_ ? zero_end_ : 0;
}

std::uint64_t SegmentZeroFiller::next_chunk(std::uint64_t& start) const {
  if (!file_ || paused_ || stopping_) return 0;
  start = std::max(zero_end_, reserved_);
  const std::uint64_t limit = std::min(target_, reserved_ + ahead_);
  return start < limit ? std::min(kChunk, limit - start) : 0;
}

void SegmentZeroFiller::give_up(const std::string& what, const std::error_code& ec) {
  on_warning_("zero-filling " + path_ + " ahead of the log stopped: " + what + " failed: " + ec.message() +
              "; the log appends to it without");
  file_.reset();
}

// Writes one chunk at a time without the lock (reserve() waits only when the leader's bytes would
// overlap it), then syncs every kSyncEvery bytes and when it has caught up.
void SegmentZeroFiller::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    std::uint64_t start = 0;
    std::uint64_t n = 0;
    changed_.wait(lock, [&] { return stopping_ || (n = next_chunk(start)) > 0; });
    if (stopping_) return;
    const std::shared_ptr<LogFile> file = file_;
    writing_ = true;
    write_start_ = start;
    lock.unlock();
    std::error_code ec = file->write_at(start, zeros_.data(), static_cast<std::size_t>(n));
    lock.lock();
    writing_ = false;
    changed_.notify_all();
    if (file != file_) continue;  // followed another file meanwhile
    if (ec) {
      give_up("a write of zeros", ec);
      continue;
    }
    zero_end_ = std::max(zero_end_, start + n);
    unsynced_ += n;
    std::uint64_t next = 0;
    if (unsynced_ < kSyncEvery && next_chunk(next) > 0) continue;
    unsynced_ = 0;
    lock.unlock();
    ec = file->sync();
    lock.lock();
    if (ec && file == file_) give_up("fdatasync", ec);
  }
}

}  // namespace pm::wal
