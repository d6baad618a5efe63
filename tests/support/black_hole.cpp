#include "tests/support/black_hole.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <string>

#include "ingest/server/unix_socket.h"

namespace pm::test {

namespace {

// A TCP socket bound to 127.0.0.1 on a free port; returns the fd and sets `port`.
int bound_socket(int& port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("bind failed");
  }
  port = ntohs(addr.sin_port);
  return fd;
}

}  // namespace

BlackHole::BlackHole(Mode mode) {
  listen_fd_ = bound_socket(port_);
  if (::listen(listen_fd_, 64) != 0) throw std::runtime_error("listen failed");
  if (mode == Mode::NeverAccept) return;
  acceptor_ = std::thread([this] {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      held_.push_back(fd);
      ++accepted_;
    }
  });
}

BlackHole::~BlackHole() {
  stop_ = true;
  if (acceptor_.joinable()) acceptor_.join();
  for (int fd : held_) ::close(fd);
  ::close(listen_fd_);
}

int refused_port() {
  int port = 0;
  ::close(bound_socket(port));
  return port;
}

int listen_at(const std::string& path) {
  sockaddr_un addr{};
  if (!unix_socket_address(path, addr)) return -1;
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 && ::listen(fd, 8) == 0) return fd;
  const int saved = errno;
  ::close(fd);
  errno = saved;
  return -1;
}

}  // namespace pm::test
