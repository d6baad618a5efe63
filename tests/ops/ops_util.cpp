#include "tests/ops/ops_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "ingest/server/unix_socket.h"
#include "tests/support/daemon_harness.h"
#include "tests/support/process.h"

namespace pm::test {


CommandResult run_command(const std::string& command, const std::optional<std::string>& input) {
  CommandResult result;
  std::string full = command + " 2>&1";
  std::string input_path;
  if (input) {
    char tmpl[] = "/tmp/pm_ops_stdin_XXXXXX";
    const int fd = ::mkstemp(tmpl);
    if (fd < 0) throw std::runtime_error("mkstemp failed");
    ::close(fd);
    input_path = tmpl;
    write_file(input_path, *input);
    full = "(" + command + ") < " + input_path + " 2>&1";
  }
  FILE* pipe = ::popen(full.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("popen failed: " + command);
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) result.output.append(buf, n);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (!input_path.empty()) ::unlink(input_path.c_str());
  return result;
}

bool executable(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

std::string url_encode(const std::string& text) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (const unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (const char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  if (!out) throw std::runtime_error("cannot write " + path);
}

ScratchDir::ScratchDir(const std::string& prefix) : path_(make_temp_dir(prefix)) {}

ScratchDir::~ScratchDir() {
  if (!::testing::Test::HasFailure()) {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
}

namespace {

// The address of the Unix socket at `path`; throws for a path too long for it.
sockaddr_un unix_address(const std::string& path) {
  sockaddr_un addr;
  if (!unix_socket_address(path, addr)) throw std::runtime_error("socket path does not fit in sockaddr_un: " + path);
  return addr;
}

}  // namespace

NotifyListener::NotifyListener(const std::string& path) : path_(path) {
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  const sockaddr_un addr = unix_address(path);
  ::unlink(path.c_str());
  if (fd_ < 0 || ::bind(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    const std::string why = std::strerror(errno);
    if (fd_ >= 0) ::close(fd_);
    throw std::runtime_error("cannot bind the notify socket " + path + ": " + why);
  }
  reader_ = std::thread([this] { read_until_stopped(); });
}

NotifyListener::~NotifyListener() {
  stopping_ = true;
  reader_.join();
  ::close(fd_);
  ::unlink(path_.c_str());
}

namespace {
const std::string kCatchUpMarker = "PM_TEST_CATCH_UP=1";
}  // namespace

// Waits for datagrams in short polls (so the destructor is heard within one) and keeps each; a
// catch_up marker is counted, not kept.
void NotifyListener::read_until_stopped() {
  char buf[4096];
  while (!stopping_) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    for (ssize_t got; (got = ::recv(fd_, buf, sizeof buf, 0)) > 0;) {
      std::string message(buf, static_cast<std::size_t>(got));
      if (message == kCatchUpMarker) {
        ++markers_read_;
        continue;
      }
      std::lock_guard lock(mu_);
      messages_.push_back(std::move(message));
    }
  }
}

bool NotifyListener::catch_up(std::chrono::milliseconds timeout) {
  const unsigned before = markers_read_;
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  const sockaddr_un addr = unix_address(path_);
  const ssize_t sent = ::sendto(fd, kCatchUpMarker.data(), kCatchUpMarker.size(), 0,
                                reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  const int send_errno = errno;
  ::close(fd);
  if (sent < 0) throw std::runtime_error("cannot send to the notify socket " + path_ + ": " + std::strerror(send_errno));
  return wait_until([&] { return markers_read_ > before; }, timeout);
}

void NotifyListener::clear() {
  std::lock_guard lock(mu_);
  messages_.clear();
}

namespace {
std::vector<std::string> lines_of(const std::string& message) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= message.size()) {
    const std::size_t end = message.find('\n', start);
    out.push_back(message.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}
}  // namespace

bool NotifyListener::wait_for_line(const std::string& prefix, std::chrono::milliseconds timeout) {
  return wait_until([&] { return count_lines(prefix) > 0; }, timeout);
}

std::size_t NotifyListener::count_lines(const std::string& prefix) const {
  std::lock_guard lock(mu_);
  std::size_t n = 0;
  for (const auto& m : messages_)
    for (const auto& line : lines_of(m))
      if (line.rfind(prefix, 0) == 0) ++n;
  return n;
}

std::string NotifyListener::last_line(const std::string& prefix) const {
  std::lock_guard lock(mu_);
  std::string last;
  for (const auto& m : messages_)
    for (const auto& line : lines_of(m))
      if (line.rfind(prefix, 0) == 0) last = line;
  return last;
}

ScopedEnv::ScopedEnv(std::vector<std::pair<std::string, std::string>> vars) {
  for (const auto& [name, value] : vars) {
    const char* old = std::getenv(name.c_str());
    saved_.emplace_back(name, old != nullptr ? std::optional<std::string>(old) : std::nullopt);
    ::setenv(name.c_str(), value.c_str(), 1);
  }
}

ScopedEnv::~ScopedEnv() {
  for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
    if (it->second)
      ::setenv(it->first.c_str(), it->second->c_str(), 1);
    else
      ::unsetenv(it->first.c_str());
  }
}

PeerOutcome connect_as(uid_t uid, gid_t gid, const std::string& socket_path, const std::string& line,
                       std::chrono::seconds timeout, pid_t* child_pid) {
  // Everything the child needs is prepared before fork(): it only makes system calls.
  const sockaddr_un addr = unix_address(socket_path);
  const std::string payload = line + "\n";
  struct Wire {
    int connect_errno;
    long bytes_read;
    int closed;
    char reply[512];
  };
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    Wire w{};
    w.bytes_read = -1;
    if (::setgroups(0, nullptr) != 0 || ::setresgid(gid, gid, gid) != 0 || ::setresuid(uid, uid, uid) != 0) ::_exit(3);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
      w.connect_errno = errno;
    } else {
      timeval tv{static_cast<time_t>(timeout.count()), 0};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      ::send(fd, payload.data(), payload.size(), MSG_NOSIGNAL);
      long total = 0;
      for (;;) {
        const ssize_t n = ::read(fd, w.reply + total, sizeof w.reply - 1 - static_cast<std::size_t>(total));
        if (n == 0 || (n < 0 && errno == ECONNRESET)) {
          w.closed = 1;
          break;
        }
        if (n < 0) break;  // timeout
        total += n;
        if (std::memchr(w.reply, '\n', static_cast<std::size_t>(total)) != nullptr ||
            total >= static_cast<long>(sizeof w.reply) - 1)
          break;
      }
      w.bytes_read = total;
    }
    [[maybe_unused]] auto written = ::write(pipe_fds[1], &w, sizeof w);
    ::_exit(0);
  }
  if (child_pid != nullptr) *child_pid = pid;
  ::close(pipe_fds[1]);
  Wire w{};
  const ssize_t got = ::read(pipe_fds[0], &w, sizeof w);
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (got != static_cast<ssize_t>(sizeof w))
    throw std::runtime_error("the child producer failed (exit " + std::to_string(WEXITSTATUS(status)) +
                             "; could not drop to uid " + std::to_string(uid) + "?)");
  PeerOutcome out;
  out.connect_errno = w.connect_errno;
  out.bytes_read = w.bytes_read;
  out.reply.assign(w.reply, static_cast<std::size_t>(std::max(0L, w.bytes_read)));
  out.closed_by_daemon = w.closed != 0;
  return out;
}

}  // namespace pm::test
