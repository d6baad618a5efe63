#include "ingest/wal.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <iostream>
#include <system_error>

namespace pm::wal {

namespace {

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

std::string path_in(const std::string& dir, const std::string& name) { return dir + "/" + name; }

bool write_all(int fd, const char* data, std::size_t n, std::uint64_t offset) {
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, data, n, static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (w == 0) {
      errno = ENOSPC;
      return false;
    }
    data += w;
    n -= static_cast<std::size_t>(w);
    offset += static_cast<std::uint64_t>(w);
  }
  return true;
}

LogId random_log_id() {
  LogId id{};
  std::size_t got = 0;
  while (got < id.size()) {
    const ssize_t r = ::getrandom(id.data() + got, id.size() - got, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      throw_errno("getrandom");
    }
    got += static_cast<std::size_t>(r);
  }
  return id;
}

void default_fatal(const std::string& message) {
  std::cerr << "pm-ingestd: FATAL: " << message << std::endl;
  std::_Exit(70);
}

}  // namespace

struct WriteAheadLog::Request {
  std::span<const std::string> payloads;
  std::vector<Appended>* out;
  const DurableCallback* on_durable;
  AppendStatus status = AppendStatus::Ok;
  bool done = false;
};

const char* to_string(AppendStatus status) {
  switch (status) {
    case AppendStatus::Ok: return "ok";
    case AppendStatus::DiskFull: return "disk_full";
    case AppendStatus::IoError: return "io_error";
  }
  return "io_error";
}

WriteAheadLog::WriteAheadLog(Options options) : options_(std::move(options)) {
  if (!options_.on_fatal) options_.on_fatal = default_fatal;
  if (!options_.on_warning) options_.on_warning = [](const std::string&) {};
}

WriteAheadLog::~WriteAheadLog() {
  if (active_fd_ >= 0) ::close(active_fd_);
  if (dir_fd_ >= 0) ::close(dir_fd_);
}

std::unique_ptr<WriteAheadLog> WriteAheadLog::open(Options options) {
  std::unique_ptr<WriteAheadLog> log(new WriteAheadLog(std::move(options)));
  log->recover();
  return log;
}

void WriteAheadLog::fsync_dir() {
  if (::fsync(dir_fd_) != 0) options_.on_fatal("fsync of log directory " + options_.dir + " failed: " + std::strerror(errno));
}

void WriteAheadLog::create_segment(std::uint64_t segment, std::uint64_t first_lsn, std::uint64_t base_offset) {
  const std::string name = segment_file_name(segment);
  const std::string tmp = path_in(options_.dir, name + ".tmp");
  const std::string header = encode_segment_header(SegmentHeader{log_id_, segment, first_lsn, base_offset});
  const int fd = ::open(tmp.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0640);
  if (fd < 0) throw_errno("create " + tmp);
  if (!write_all(fd, header.data(), header.size(), 0) || ::fdatasync(fd) != 0) {
    const int saved = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    errno = saved;
    throw_errno("write " + tmp);
  }
  if (::rename(tmp.c_str(), path_in(options_.dir, name).c_str()) != 0) {
    const int saved = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    errno = saved;
    throw_errno("rename " + tmp);
  }
  fsync_dir();
  if (active_fd_ >= 0) ::close(active_fd_);
  active_fd_ = fd;
  std::lock_guard lock(mu_);
  segments_[segment] = header.size();
  if (segments_.size() == 1) {
    oldest_lsn_ = first_lsn - 1;
    oldest_log_offset_ = base_offset;
  }
  durable_ = Position{segment, kSegmentHeaderSize, base_offset, first_lsn - 1};
  ++stats_.segments;
}

void WriteAheadLog::recover() {
  if (::mkdir(options_.dir.c_str(), 0750) != 0 && errno != EEXIST) throw_errno("create log directory " + options_.dir);
  dir_fd_ = ::open(options_.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd_ < 0) throw_errno("open log directory " + options_.dir);

  std::vector<std::uint64_t> found;
  DIR* d = ::opendir(options_.dir.c_str());
  if (d == nullptr) throw_errno("list " + options_.dir);
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    std::uint64_t seg = 0;
    if (parse_segment_file_name(name, seg)) {
      found.push_back(seg);
    } else if (name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0) {
      ::unlink(path_in(options_.dir, name).c_str());  // a segment whose creation never finished
    }
  }
  ::closedir(d);
  std::sort(found.begin(), found.end());

  if (found.empty()) {
    log_id_ = random_log_id();
    create_segment(1, 1, 0);
    return;
  }
  // Every segment must belong to one log and follow the previous one without a gap.
  SegmentHeader first{};
  for (std::size_t i = 0; i < found.size(); ++i) {
    const std::string path = path_in(options_.dir, segment_file_name(found[i]));
    SegmentFile f(path);
    const char* p = f.read(0, kSegmentHeaderSize);
    SegmentHeader h;
    if (p == nullptr || !decode_segment_header(p, kSegmentHeaderSize, h) || h.segment != found[i])
      throw WalCorruption(path, 0, "invalid segment header");
    if (i == 0) {
      first = h;
      log_id_ = h.log_id;
    } else if (h.log_id != log_id_) {
      throw WalCorruption(path, 0, "segment belongs to another log (log id " + log_id_hex(h.log_id) + ")");
    } else if (found[i] != found[i - 1] + 1) {
      throw WalCorruption(path, 0, "segment " + segment_file_name(found[i - 1] + 1) + " is missing before it");
    }
    segments_[found[i]] = f.size();
  }
  oldest_lsn_ = first.first_lsn - 1;
  oldest_log_offset_ = first.base_offset;
  stats_.segments = segments_.size();

  const std::string newest = path_in(options_.dir, segment_file_name(found.back()));
  const SegmentScan scan = scan_segment(newest);
  if (scan.tail == TailState::Corrupt) throw WalCorruption(newest, scan.valid_end.offset, scan.problem);
  active_fd_ = ::open(newest.c_str(), O_WRONLY | O_CLOEXEC);
  if (active_fd_ < 0) throw_errno("open " + newest);
  if (scan.tail == TailState::Torn) {
    if (::ftruncate(active_fd_, static_cast<off_t>(scan.valid_end.offset)) != 0 || ::fdatasync(active_fd_) != 0)
      throw_errno("cut torn tail of " + newest);
    options_.on_warning("cut a torn tail of " + std::to_string(scan.file_size - scan.valid_end.offset) + " bytes off " +
                        newest + " at offset " + std::to_string(scan.valid_end.offset) + " (" + scan.problem +
                        "); it was never acknowledged");
  }
  segments_[found.back()] = scan.valid_end.offset;
  durable_ = scan.valid_end;
}

AppendStatus WriteAheadLog::write_group(const std::string& bytes, std::uint64_t& sync_ns) {
  const std::uint64_t offset = durable_.offset;  // only the leader changes it
  if (!write_all(active_fd_, bytes.data(), bytes.size(), offset)) {
    const int error = errno;
    // Nothing of a failed group may stay in the file: recovery would find half a record.
    if (::ftruncate(active_fd_, static_cast<off_t>(offset)) != 0)
      options_.on_fatal("cannot cut a failed write off " + segment_file_name(durable_.segment) + ": " + std::strerror(errno));
    options_.on_warning(std::string("log write failed: ") + std::strerror(error));
    return error == ENOSPC || error == EDQUOT ? AppendStatus::DiskFull : AppendStatus::IoError;
  }
  const auto t0 = std::chrono::steady_clock::now();
  if (::fdatasync(active_fd_) != 0) {
    options_.on_fatal("fdatasync of " + path_in(options_.dir, segment_file_name(durable_.segment)) +
                      " failed: " + std::strerror(errno) + "; the page cache can no longer be trusted, restarting");
    return AppendStatus::IoError;  // on_fatal does not return in production
  }
  sync_ns = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count());
  return AppendStatus::Ok;
}

AppendStatus WriteAheadLog::append(std::span<const std::string> payloads, std::vector<Appended>& out,
                                   const DurableCallback& on_durable) {
  out.clear();
  if (payloads.empty()) return AppendStatus::Ok;
  Request self{payloads, &out, &on_durable};
  std::unique_lock lock(mu_);
  queue_.push_back(&self);
  group_cv_.wait(lock, [&] { return self.done || queue_.front() == &self; });
  if (self.done) return self.status;

  // This thread leads: it writes every request queued so far (up to the group size) at once.
  std::vector<Request*> group;
  std::size_t group_bytes = 0;
  for (Request* r : queue_) {
    std::size_t bytes = 0;
    for (const auto& p : r->payloads) bytes += kRecordHeaderSize + p.size();
    if (!group.empty() && group_bytes + bytes > options_.max_group_bytes) break;
    group.push_back(r);
    group_bytes += bytes;
  }
  const bool roll = durable_.offset >= options_.segment_bytes;
  Position start = durable_;
  lock.unlock();

  AppendStatus status = AppendStatus::Ok;
  if (roll) {
    try {
      create_segment(start.segment + 1, start.lsn + 1, start.log_offset);
      start = durable();
    } catch (const std::system_error& e) {
      options_.on_warning(std::string("cannot start a new log segment: ") + e.what());
      status = e.code().value() == ENOSPC || e.code().value() == EDQUOT ? AppendStatus::DiskFull : AppendStatus::IoError;
    }
  }
  std::uint64_t sync_ns = 0;
  Position end = start;
  if (status == AppendStatus::Ok) {
    try {
      std::string buffer;
      buffer.reserve(group_bytes);
      for (Request* r : group) {
        for (const auto& payload : r->payloads) {
          append_record(buffer, end.lsn + 1, kRecordEvent, payload);
          const std::uint64_t bytes = kRecordHeaderSize + payload.size();
          end = Position{end.segment, end.offset + bytes, end.log_offset + bytes, end.lsn + 1};
          r->out->push_back(Appended{end.lsn, end});
        }
      }
      status = write_group(buffer, sync_ns);
    } catch (const std::exception& e) {  // out of memory building the group: nothing was written
      options_.on_warning(std::string("cannot build a log write: ") + e.what());
      status = AppendStatus::IoError;
    }
  }

  lock.lock();
  if (status == AppendStatus::Ok) {
    durable_ = end;
    segments_[end.segment] = end.offset;
    stats_.appended_bytes += end.log_offset - start.log_offset;
    stats_.groups += 1;
    last_sync_seconds_ = static_cast<double>(sync_ns) / 1e9;
    lock.unlock();
    // Still the leader: callbacks run in LSN order, before any later group is written. They must
    // not stop the group from completing: the records are durable whatever a callback does.
    auto guarded = [this](auto&& callback) {
      try {
        callback();
      } catch (const std::exception& e) {
        options_.on_warning(std::string("a log callback failed after a durable write: ") + e.what());
      }
    };
    if (options_.on_group_commit)
      guarded([&] { options_.on_group_commit(static_cast<double>(sync_ns) / 1e9, end.log_offset - start.log_offset, end.lsn - start.lsn); });
    for (Request* r : group)
      if (*r->on_durable) guarded([&] { (*r->on_durable)(*r->out); });
    lock.lock();
  }
  for (Request* r : group) {
    queue_.pop_front();
    r->status = status;
    r->done = true;
    if (status != AppendStatus::Ok) r->out->clear();
  }
  group_cv_.notify_all();
  return self.status;
}

Position WriteAheadLog::durable() const {
  std::lock_guard lock(mu_);
  return durable_;
}

Position WriteAheadLog::oldest() const {
  std::lock_guard lock(mu_);
  return Position{segments_.begin()->first, kSegmentHeaderSize, oldest_log_offset_, oldest_lsn_};
}

WalStats WriteAheadLog::stats() const {
  std::lock_guard lock(mu_);
  WalStats s = stats_;
  s.segments = segments_.size();
  s.disk_bytes = 0;
  for (const auto& [seg, size] : segments_) s.disk_bytes += size;
  return s;
}

double WriteAheadLog::last_sync_seconds() const {
  std::lock_guard lock(mu_);
  return last_sync_seconds_;
}

void WriteAheadLog::remove_segments_before(std::uint64_t segment) {
  std::vector<std::uint64_t> doomed;
  {
    std::lock_guard lock(mu_);
    for (const auto& [seg, size] : segments_)
      if (seg < segment && seg != durable_.segment) doomed.push_back(seg);
  }
  if (doomed.empty()) return;
  for (std::uint64_t seg : doomed) {
    const std::string path = path_in(options_.dir, segment_file_name(seg));
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
      options_.on_warning("cannot remove applied segment " + path + ": " + std::strerror(errno));
  }
  fsync_dir();
  // The new oldest segment's header tells where it starts.
  std::lock_guard lock(mu_);
  for (std::uint64_t seg : doomed) segments_.erase(seg);
  const std::string path = path_in(options_.dir, segment_file_name(segments_.begin()->first));
  try {
    SegmentFile f(path);
    SegmentHeader h;
    if (const char* p = f.read(0, kSegmentHeaderSize); p != nullptr && decode_segment_header(p, kSegmentHeaderSize, h)) {
      oldest_lsn_ = h.first_lsn - 1;
      oldest_log_offset_ = h.base_offset;
    }
  } catch (const std::exception& e) {
    options_.on_warning(std::string("cannot read ") + path + ": " + e.what());
  }
}

}  // namespace pm::wal
