#include "tests/support/fifo_feeder.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace pm::test {

FifoFeeder::FifoFeeder(std::string path, LineOf line_of, int held_from, int total)
    : path_(std::move(path)), line_of_(std::move(line_of)), held_from_(held_from), total_(total) {
  if (::mkfifo(path_.c_str(), 0600) != 0) throw std::runtime_error("mkfifo " + path_ + ": " + std::strerror(errno));
  thread_ = std::thread([this] { feed(); });
}

FifoFeeder::~FifoFeeder() {
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

void FifoFeeder::release() {
  {
    std::lock_guard lock(mu_);
    released_ = true;
  }
  changed_.notify_all();
}

bool FifoFeeder::stopped() {
  std::lock_guard lock(mu_);
  return stopped_;
}

void FifoFeeder::feed() {
  // Opened for reading and writing, the FIFO opens at once (a reader that never comes cannot hang
  // the test), and non-blocking writes let the destructor stop a writer whose reader went away.
  const int fd = ::open(path_.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    ADD_FAILURE() << "cannot open the FIFO " << path_ << ": " << std::strerror(error);
    return;
  }
  try {
    if (write_lines(fd, 0, held_from_)) {
      std::unique_lock lock(mu_);
      changed_.wait(lock, [&] { return released_ || stopped_; });
      const bool go_on = !stopped_;
      lock.unlock();
      if (go_on) write_lines(fd, held_from_, total_);
    }
  } catch (const std::exception& e) {
    ADD_FAILURE() << "feeding " << path_ << ": " << e.what();
  }
  ::close(fd);
}

bool FifoFeeder::write_lines(int fd, int from, int to) {
  std::string chunk;
  for (int i = from; i < to; ++i) {
    chunk += line_of_(i);
    chunk += '\n';
    if (chunk.size() >= 64 * 1024 || i + 1 == to) {
      if (!write_all(fd, chunk)) return false;
      chunk.clear();
    }
  }
  return true;
}

bool FifoFeeder::write_all(int fd, const std::string& bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    if (stopped()) return false;
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
    } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
      const int error = errno;
      ADD_FAILURE() << "writing the FIFO " << path_ << ": " << std::strerror(error);
      return false;
    } else {
      pollfd p{fd, POLLOUT, 0};
      ::poll(&p, 1, 100);  // wakes when the reader made room, or to look at stopped_ again
    }
  }
  return true;
}

}  // namespace pm::test
