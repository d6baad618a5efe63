#include "daemon/stoppable_input.h"

#include <cerrno>
#include <cstdint>
#include <system_error>

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace pm::ctl {

InputStop::InputStop() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
}

InputStop::~InputStop() { ::close(fd_); }

void InputStop::stop() {
  if (stopped_.exchange(true, std::memory_order_acq_rel)) return;
  const std::uint64_t one = 1;
  // Cannot fail short of a bad descriptor; a reader that missed the wake-up checks stopped() first.
  [[maybe_unused]] const ssize_t n = ::write(fd_, &one, sizeof one);
}

bool FdReadBuf::wait_readable() {
  for (;;) {
    if (stop_.stopped()) return false;
    pollfd fds[2] = {{fd_, POLLIN, 0}, {stop_.wake_fd(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "poll");
    }
    if (fds[1].revents != 0) continue;  // the stop: seen at the top
    if (fds[0].revents != 0) return true;  // data, the end (POLLHUP) or an error: read() says which
  }
}

FdReadBuf::int_type FdReadBuf::underflow() {
  if (gptr() < egptr()) return traits_type::to_int_type(*gptr());
  for (;;) {
    if (!wait_readable()) return traits_type::eof();
    const ssize_t n = ::read(fd_, buffer_.data(), buffer_.size());
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) throw std::system_error(errno, std::generic_category(), "read");
    if (n == 0) return traits_type::eof();
    setg(buffer_.data(), buffer_.data(), buffer_.data() + n);
    return traits_type::to_int_type(*gptr());
  }
}

}  // namespace pm::ctl
