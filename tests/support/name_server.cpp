#include "tests/support/name_server.h"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <stdexcept>

namespace pm::test {

namespace {

constexpr std::size_t kHeaderBytes = 12;
constexpr std::uint16_t kTypeA = 1;
constexpr std::uint16_t kClassIn = 1;
constexpr unsigned kRcodeNoSuchName = 3;

std::string lower(std::string name) {
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}

std::uint16_t read16(const unsigned char* p) { return static_cast<std::uint16_t>(p[0] << 8 | p[1]); }

void append16(std::vector<unsigned char>& out, std::uint16_t value) {
  out.push_back(static_cast<unsigned char>(value >> 8));
  out.push_back(static_cast<unsigned char>(value & 0xff));
}

// The question's name (dotted, lower case) and where the question ends, or false for a query this
// server does not read (compressed or malformed names).
bool read_question(const unsigned char* query, std::size_t length, std::string& name, std::size_t& end) {
  std::size_t at = kHeaderBytes;
  while (at < length && query[at] != 0) {
    const std::size_t label = query[at];
    if (label > 63 || at + 1 + label >= length) return false;
    if (!name.empty()) name += '.';
    name.append(reinterpret_cast<const char*>(query + at + 1), label);
    at += 1 + label;
  }
  end = at + 1 + 4;  // the root label, QTYPE, QCLASS
  if (end > length) return false;
  name = lower(name);
  return true;
}

}  // namespace

NameServer::NameServer(std::vector<int> udp_sockets) : sockets_(std::move(udp_sockets)) {
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC);
  if (wake_fd_ < 0) throw std::runtime_error(std::string("NameServer: eventfd: ") + std::strerror(errno));
  thread_ = std::thread([this] { serve(); });
}

NameServer::~NameServer() {
  const std::uint64_t one = 1;
  if (::write(wake_fd_, &one, sizeof one) != sizeof one) std::perror("NameServer: eventfd write");
  thread_.join();
  ::close(wake_fd_);
}

void NameServer::answer(const std::string& name, const std::string& ipv4) {
  in_addr address{};
  if (::inet_pton(AF_INET, ipv4.c_str(), &address) != 1) throw std::invalid_argument("NameServer: not IPv4: " + ipv4);
  const auto* bytes = reinterpret_cast<const unsigned char*>(&address);
  std::lock_guard<std::mutex> lock(mu_);
  names_[lower(name)] = std::vector<unsigned char>(bytes, bytes + 4);
}

void NameServer::answer_without_address(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  names_[lower(name)] = {};
}

void NameServer::forget(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  names_.erase(lower(name));
}

void NameServer::silence() { silent_ = true; }

void NameServer::serve() {
  std::vector<pollfd> watched;
  for (const int fd : sockets_) watched.push_back({fd, POLLIN, 0});
  watched.push_back({wake_fd_, POLLIN, 0});
  for (;;) {
    if (::poll(watched.data(), watched.size(), -1) < 0) {
      if (errno == EINTR) continue;
      std::perror("NameServer: poll");
      return;
    }
    if (watched.back().revents != 0) return;
    for (std::size_t i = 0; i + 1 < watched.size(); ++i) {
      if (watched[i].revents == 0) continue;
      unsigned char query[512];
      sockaddr_storage from{};
      socklen_t from_length = sizeof from;
      const ssize_t got = ::recvfrom(watched[i].fd, query, sizeof query, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &from_length);
      if (got <= 0 || silent_) continue;
      const std::vector<unsigned char> reply = reply_to(query, static_cast<std::size_t>(got));
      if (!reply.empty())
        ::sendto(watched[i].fd, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), from_length);
    }
  }
}

std::vector<unsigned char> NameServer::reply_to(const unsigned char* query, std::size_t length) {
  std::string name;
  std::size_t question_end = 0;
  if (length < kHeaderBytes || read16(query + 4) != 1 || !read_question(query, length, name, question_end)) return {};
  const std::uint16_t type = read16(query + question_end - 4);
  std::vector<unsigned char> address;
  bool known = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto it = names_.find(name);
    if (it != names_.end()) known = true, address = it->second;
  }
  const bool answered = known && type == kTypeA && !address.empty();
  std::vector<unsigned char> reply(query, query + 2);                        // the query's id
  reply.push_back(static_cast<unsigned char>(0x80 | (query[2] & 0x01)));     // a response; RD as asked
  reply.push_back(static_cast<unsigned char>(0x80 | (known ? 0 : kRcodeNoSuchName)));  // RA; the code
  append16(reply, 1);                                                        // one question
  append16(reply, answered ? 1 : 0);                                         // answers
  append16(reply, 0);
  append16(reply, 0);
  reply.insert(reply.end(), query + kHeaderBytes, query + question_end);
  if (answered) {
    append16(reply, 0xC000 | kHeaderBytes);  // the name: a pointer to the question's
    append16(reply, kTypeA);
    append16(reply, kClassIn);
    append16(reply, 0), append16(reply, 0);  // TTL 0: nothing may keep it
    append16(reply, 4);
    reply.insert(reply.end(), address.begin(), address.end());
  }
  return reply;
}

}  // namespace pm::test
