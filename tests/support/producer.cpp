#include "tests/support/producer.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

#include <simdjson.h>

#include "ingest/server/unix_socket.h"

namespace pm::test {

namespace {

Reply parse_reply(const std::string& line) {
  static thread_local simdjson::dom::parser parser;
  Reply r;
  simdjson::dom::element doc;
  if (parser.parse(line).get(doc) != simdjson::SUCCESS) throw std::runtime_error("reply is not JSON: " + line);
  std::uint64_t n = 0;
  if (doc["ack"].get(n) == simdjson::SUCCESS) {
    r.is_ack = true;
    r.ack = n;
    return r;
  }
  std::string_view s;
  if (doc["error"].get(s) != simdjson::SUCCESS) throw std::runtime_error("reply has neither ack nor error: " + line);
  r.error = std::string(s);
  if (doc["line"].get(n) == simdjson::SUCCESS) r.line = n;
  if (doc["detail"].get(s) == simdjson::SUCCESS) r.detail = std::string(s);
  return r;
}

}  // namespace

bool socket_accepts(const std::string& path) {
  const int fd = connect_unix_socket(path);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

Producer::Producer(const std::string& socket_path) : fd_(connect_unix_socket(socket_path)) {
  if (fd_ < 0) throw std::runtime_error("cannot connect to " + socket_path + ": " + std::strerror(errno));
}

Producer::~Producer() {
  if (fd_ >= 0) ::close(fd_);
}

bool Producer::send_raw(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

bool Producer::send(const std::vector<std::string>& lines) {
  std::string all;
  for (const auto& l : lines) {
    all += l;
    all += '\n';
  }
  return send_raw(all);
}

void Producer::shutdown_write() { ::shutdown(fd_, SHUT_WR); }

std::optional<std::vector<Reply>> Producer::wait_ack(std::uint64_t n, std::chrono::milliseconds timeout,
                                                     std::vector<Reply>* seen) {
  std::vector<Reply> replies;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char chunk[65536];
  while (last_ack_ < n) {
    for (std::size_t nl; (nl = buffer_.find('\n')) != std::string::npos;) {
      Reply r = parse_reply(buffer_.substr(0, nl));
      buffer_.erase(0, nl + 1);
      if (r.is_ack) last_ack_ = std::max(last_ack_, r.ack);
      replies.push_back(r);
      if (seen) seen->push_back(r);
    }
    if (last_ack_ >= n) break;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    const ssize_t got = ::read(fd_, chunk, sizeof chunk);
    if (got <= 0) {
      if (got < 0 && errno == EINTR) continue;
      return std::nullopt;
    }
    buffer_.append(chunk, static_cast<std::size_t>(got));
  }
  return replies;
}

std::string read_replies_until(int fd, const std::string& text, std::string replies) {
  char buf[4096];
  while (replies.find(text) == std::string::npos) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    replies.append(buf, static_cast<std::size_t>(n));
  }
  return replies;
}

}  // namespace pm::test
