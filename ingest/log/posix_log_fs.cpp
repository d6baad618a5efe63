#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "ingest/log/log_fs.h"

namespace pm::wal {

namespace {

std::error_code last_error() { return errno_code(errno); }

// Whether a line of /proc/locks ("1: FLOCK  ADVISORY  WRITE 4321 08:01:1234 0 EOF") is a flock
// held (not waited for: "1: -> FLOCK ...") on the file `st` describes. The device is MAJOR:MINOR
// in hex; it is compared only when `device_shown`: btrfs subvolumes and overlayfs show another
// device there than stat() gives. Then a lock on another file system's file of the same inode
// number makes the caller take the log for in use (a replay stops early, and says so).
bool names_flock_on(const std::string& line, const struct stat& st, bool device_shown) {
  std::istringstream in(line);
  std::string number, kind, mode, access, pid, file;
  if (!(in >> number >> kind) || kind != "FLOCK" || !(in >> mode >> access >> pid >> file)) return false;
  unsigned major_id = 0, minor_id = 0;
  unsigned long long inode = 0;
  if (std::sscanf(file.c_str(), "%x:%x:%llu", &major_id, &minor_id, &inode) != 3 || inode != st.st_ino) return false;
  return !device_shown || (major_id == major(st.st_dev) && minor_id == minor(st.st_dev));
}

// Whether /proc/locks names the device stat() gives for files at `path` (not on btrfs or
// overlayfs; when it cannot tell, no).
bool lock_table_shows_device_of(const std::string& path) {
  struct statfs fs {};
  if (::statfs(path.c_str(), &fs) != 0) return false;
  return fs.f_type != BTRFS_SUPER_MAGIC && fs.f_type != OVERLAYFS_SUPER_MAGIC;
}

// The directory holding `path` ("." for a bare name, "/" for one in the root).
std::string parent_of(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  const std::size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

class PosixFile final : public LogFile {
 public:
  explicit PosixFile(int fd) : fd_(fd) {}
  ~PosixFile() override { ::close(fd_); }

  std::error_code write_at(std::uint64_t offset, const char* data, std::size_t n) override {
    while (n > 0) {
      const ssize_t w = ::pwrite(fd_, data, n, static_cast<off_t>(offset));
      if (w < 0) {
        if (errno == EINTR) continue;
        return last_error();
      }
      if (w == 0) return errno_code(ENOSPC);
      data += w;
      n -= static_cast<std::size_t>(w);
      offset += static_cast<std::uint64_t>(w);
    }
    return {};
  }

  std::error_code read_at(std::uint64_t offset, char* data, std::size_t n, std::size_t& got) override {
    got = 0;
    while (got < n) {
      const ssize_t r = ::pread(fd_, data + got, n - got, static_cast<off_t>(offset + got));
      if (r < 0) {
        if (errno == EINTR) continue;
        return last_error();
      }
      if (r == 0) break;
      got += static_cast<std::size_t>(r);
    }
    return {};
  }

  std::error_code sync() override { return ::fdatasync(fd_) == 0 ? std::error_code{} : last_error(); }

  std::error_code drop_clean_pages() override {
    const int e = ::posix_fadvise(fd_, 0, 0, POSIX_FADV_DONTNEED);  // returns the error, sets no errno
    return e == 0 ? std::error_code{} : errno_code(e);
  }

  std::error_code truncate(std::uint64_t size) override {
    return ::ftruncate(fd_, static_cast<off_t>(size)) == 0 ? std::error_code{} : last_error();
  }

  std::error_code size(std::uint64_t& out) override {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return last_error();
    out = static_cast<std::uint64_t>(st.st_size);
    return {};
  }

 private:
  int fd_;
};

class PosixLock final : public FileLock {
 public:
  explicit PosixLock(int fd) : fd_(fd) {}
  ~PosixLock() override { ::close(fd_); }  // closing the descriptor releases the flock

 private:
  int fd_;
};

class PosixLogFs final : public LogFs {
 public:
  std::error_code create_dir(const std::string& dir) override {
    if (::mkdir(dir.c_str(), 0750) == 0) return sync_dir(parent_of(dir));  // the new entry, durable
    if (errno == EEXIST) {
      // Made by an earlier start that may have died before its parent's sync: synced now, at
      // best (a parent this process may not open is left alone).
      sync_dir(parent_of(dir));
      return {};
    }
    return last_error();
  }

  std::error_code open(const std::string& path, OpenMode mode, std::unique_ptr<LogFile>& out) override {
    int flags = O_CLOEXEC;
    switch (mode) {
      case OpenMode::Read: flags |= O_RDONLY; break;
      case OpenMode::Write: flags |= O_RDWR; break;
      case OpenMode::CreateTruncate: flags |= O_RDWR | O_CREAT | O_TRUNC; break;
    }
    const int fd = ::open(path.c_str(), flags, 0640);
    if (fd < 0) return last_error();
    out = std::make_unique<PosixFile>(fd);
    return {};
  }

  std::error_code rename(const std::string& from, const std::string& to) override {
    return ::rename(from.c_str(), to.c_str()) == 0 ? std::error_code{} : last_error();
  }

  std::error_code rename_new(const std::string& from, const std::string& to) override {
    if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return {};
    if (errno != EINVAL && errno != ENOSYS) return last_error();
    return LogFs::rename_new(from, to);  // a file system without RENAME_NOREPLACE
  }

  std::error_code remove(const std::string& path) override {
    return ::unlink(path.c_str()) == 0 ? std::error_code{} : last_error();
  }

  std::error_code sync_dir(const std::string& dir) override {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return last_error();
    const std::error_code ec = ::fsync(fd) == 0 ? std::error_code{} : last_error();
    ::close(fd);
    return ec;
  }

  std::error_code list(const std::string& dir, std::vector<std::string>& names) override {
    names.clear();
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return last_error();
    for (;;) {
      errno = 0;  // readdir returns null at the end and on an error (EIO, a damaged directory block)
      const dirent* e = ::readdir(d);
      if (e == nullptr) break;
      const std::string name = e->d_name;
      if (name != "." && name != "..") names.push_back(name);
    }
    const std::error_code ec = errno != 0 ? last_error() : std::error_code{};
    ::closedir(d);
    if (ec) names.clear();
    return ec;
  }

  std::error_code lock(const std::string& path, const std::string& owner, std::unique_ptr<FileLock>& out) override {
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) return last_error();
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const std::error_code ec = errno == EWOULDBLOCK ? std::make_error_code(std::errc::resource_unavailable_try_again) : last_error();
      ::close(fd);
      return ec;
    }
    // Who holds it, for the message a second daemon prints; the lock itself is the flock.
    if (::ftruncate(fd, 0) == 0) {
      const std::string text = owner + "\n";
      [[maybe_unused]] const ssize_t w = ::pwrite(fd, text.data(), text.size(), 0);
    }
    out = std::make_unique<PosixLock>(fd);
    return {};
  }

  std::string lock_owner(const std::string& path) override {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return "";
    char buf[128];
    const ssize_t r = ::pread(fd, buf, sizeof buf, 0);
    ::close(fd);
    if (r <= 0) return "";
    std::string text(buf, static_cast<std::size_t>(r));
    while (!text.empty() && (text.back() == '\n' || text.back() == '\0')) text.pop_back();
    return text;
  }

  // The kernel lists every lock it holds in /proc/locks, with the device and inode of its file:
  // reading that takes nothing, where a probing flock() could make a starting daemon fail.
  bool lock_in_use(const std::string& path) override {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return errno != ENOENT;
    std::ifstream locks("/proc/locks");
    if (!locks) return true;
    const bool device_shown = lock_table_shows_device_of(path);
    for (std::string line; std::getline(locks, line);)
      if (names_flock_on(line, st, device_shown)) return true;
    return false;
  }
};

}  // namespace

LogFs& posix_log_fs() {
  static PosixLogFs fs;
  return fs;
}

std::error_code LogFs::rename_new(const std::string& from, const std::string& to) {
  std::unique_ptr<LogFile> existing;
  const std::error_code ec = open(to, OpenMode::Read, existing);
  if (!ec) return errno_code(EEXIST);
  if (ec != std::errc::no_such_file_or_directory) return ec;
  return rename(from, to);
}

bool is_disk_full(const std::error_code& ec) {
  return ec.category() == std::generic_category() && (ec.value() == ENOSPC || ec.value() == EDQUOT);
}

}  // namespace pm::wal
