#include "ingest/log/spare_segment.h"

#include <algorithm>
#include <chrono>
#include <memory>

#include "ingest/log/wal_directory.h"
#include "repos/util/thread_name.h"

namespace pm::wal {

SpareSegment::SpareSegment(LogFs& fs, const std::string& dir, std::uint64_t bytes,
                           std::function<void(const std::string&)> on_warning)
    : fs_(fs),
      spare_path_(path_in(dir, kSpareFileName)),
      partial_path_(path_in(dir, kSparePartialFileName)),
      bytes_(bytes),
      on_warning_(std::move(on_warning)) {
  keep_or_remove_leftovers();
  thread_ = std::thread([this] { run(); });
}

SpareSegment::~SpareSegment() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

// A partial spare is of no use (its writer died); a complete one is, if it has the right size.
void SpareSegment::keep_or_remove_leftovers() {
  fs_.remove(partial_path_);  // usually missing
  std::unique_ptr<LogFile> file;
  std::uint64_t size = 0;
  if (fs_.open(spare_path_, OpenMode::Read, file) || file->size(size)) return;
  file.reset();
  if (size == bytes_) {
    state_ = State::Ready;
    busy_or_ready_ = true;
    written_ = size;
  } else {
    fs_.remove(spare_path_);
  }
}

void SpareSegment::prepare() {
  if (busy_or_ready_.load()) return;
  {
    std::lock_guard lock(mu_);
    if (state_ != State::None) return;
    state_ = State::Wanted;
    busy_or_ready_ = true;
  }
  changed_.notify_all();
}

std::string SpareSegment::take() {
  std::lock_guard lock(mu_);
  if (state_ != State::Ready) return "";
  state_ = State::None;
  busy_or_ready_ = false;
  written_ = 0;
  return spare_path_;
}

bool SpareSegment::ready() const {
  std::lock_guard lock(mu_);
  return state_ == State::Ready;
}

std::uint64_t SpareSegment::disk_bytes() const { return written_.load(); }

void SpareSegment::run() {
  name_this_thread("pm-spare");
  std::unique_lock lock(mu_);
  for (;;) {
    changed_.wait(lock, [&] { return stopping_ || state_ == State::Wanted; });
    if (stopping_) return;
    state_ = State::Writing;
    lock.unlock();
    const bool written = write_partial();
    lock.lock();
    // The rename and Ready are one step under mu_: once spare.zeros is on disk, take() returns it.
    const std::error_code ec = written ? fs_.rename(partial_path_, spare_path_) : std::error_code{};
    const bool ready = written && !ec;
    state_ = ready ? State::Ready : State::None;
    busy_or_ready_ = ready;
    if (written && ec) {
      lock.unlock();
      give_up("rename", ec);
      lock.lock();
    }
    changed_.notify_all();
  }
}

bool SpareSegment::write_partial() {
  std::unique_ptr<LogFile> file;
  std::string what = "create";
  std::error_code ec = fs_.open(partial_path_, OpenMode::CreateTruncate, file);
  const std::string zeros(kChunk, '\0');
  // Paced, so the log's own writes and PostgreSQL's do not queue behind a burst of zeros.
  const auto per_chunk = std::chrono::microseconds(1'000'000 * kChunk / kPaceBytesPerSecond);
  auto slot = std::chrono::steady_clock::now();
  for (std::uint64_t off = 0; !ec && off < bytes_;) {
    {
      std::unique_lock lock(mu_);
      if (changed_.wait_until(lock, slot, [&] { return stopping_; }))
        return false;  // stopping: the partial file stays for the next start to remove
    }
    slot += per_chunk;
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, bytes_ - off));
    what = "write";
    ec = file->write_at(off, zeros.data(), n);
    off += n;
    written_ = off;
    if (!ec && (off % kSyncEvery == 0 || off == bytes_)) {
      what = "fdatasync";
      ec = file->sync();
    }
  }
  if (!ec) return true;
  file.reset();
  give_up(what, ec);
  return false;
}

void SpareSegment::give_up(const std::string& what, std::error_code ec) {
  on_warning_("preparing the log's next segment in " + partial_path_ + " failed (" + what + ": " + ec.message() +
              "); the next segment starts without zeros written ahead");
  fs_.remove(partial_path_);
  written_ = 0;
}

}  // namespace pm::wal
