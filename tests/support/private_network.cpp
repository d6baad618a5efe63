#include "tests/support/private_network.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace pm::test {

namespace {

void run(const std::string& command) {
  if (std::system((command + " > /dev/null 2>&1").c_str()) != 0) throw std::runtime_error("failed: " + command);
}

std::vector<std::string> resolv_conf_name_servers() {
  std::vector<std::string> servers;
  std::ifstream conf("/etc/resolv.conf");
  for (std::string line; std::getline(conf, line);) {
    std::istringstream words(line);
    std::string keyword, address;
    if (words >> keyword >> address && keyword == "nameserver" &&
        std::find(servers.begin(), servers.end(), address) == servers.end())
      servers.push_back(address);
  }
  if (servers.empty()) servers.push_back("127.0.0.1");  // glibc's default
  return servers;
}

// A socket bound to address:53 that is never read (UDP) or never accepts (TCP, a backlog).
int silent_socket(const std::string& address, int type) {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family = AF_INET;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
  if (::inet_pton(AF_INET, address.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET, v4->sin_port = htons(53), length = sizeof *v4;
  } else if (::inet_pton(AF_INET6, address.c_str(), &v6->sin6_addr) == 1) {
    family = AF_INET6, v6->sin6_family = AF_INET6, v6->sin6_port = htons(53), length = sizeof *v6;
  } else {
    throw std::runtime_error("not a name server address: " + address);
  }
  const int fd = ::socket(family, type | SOCK_CLOEXEC, 0);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&storage), length) != 0 || (type == SOCK_STREAM && ::listen(fd, 16) != 0)) {
    const std::string error = std::strerror(errno);
    if (fd >= 0) ::close(fd);
    throw std::runtime_error("cannot bind " + address + ":53: " + error);
  }
  return fd;
}

}  // namespace

PrivateNetwork::PrivateNetwork() {
  const int original = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (original < 0) {
    why_ = std::string("cannot open /proc/thread-self/ns/net: ") + std::strerror(errno);
    return;
  }
  if (::unshare(CLONE_NEWNET) != 0) {
    why_ = std::string("unshare(CLONE_NEWNET) failed (needs CAP_SYS_ADMIN): ") + std::strerror(errno);
    ::close(original);
    return;
  }
  original_ns_ = original;
  try {
    run("ip link set lo up");
    black_hole(1);  // can tc do it here? (the kernel's HTB and u32)
    restore();
  } catch (const std::exception& e) {
    why_ = std::string("no black hole in a network namespace here: ") + e.what();
    leave();
  }
}

PrivateNetwork::~PrivateNetwork() { leave(); }

void PrivateNetwork::leave() {
  if (original_ns_ < 0) return;
  if (::setns(original_ns_, CLONE_NEWNET) != 0)
    std::fprintf(stderr, "PrivateNetwork: setns back failed: %s\n", std::strerror(errno));
  ::close(original_ns_);  // the namespace goes with the last process in it
  original_ns_ = -1;
  for (const int fd : silent_sockets_) ::close(fd);
  silent_sockets_.clear();
  name_server_udp_sockets_.clear();
}

std::vector<std::string> PrivateNetwork::silence_name_servers() {
  if (original_ns_ < 0) throw std::logic_error("PrivateNetwork::silence_name_servers without a namespace: " + why_);
  const std::vector<std::string> servers = resolv_conf_name_servers();
  for (const std::string& server : servers) {
    const bool v6 = server.find(':') != std::string::npos;
    if (server.rfind("127.", 0) != 0 && server != "::1")
      run("ip addr add " + server + (v6 ? "/128 dev lo nodad" : "/32 dev lo"));
    silent_sockets_.push_back(silent_socket(server, SOCK_DGRAM));
    name_server_udp_sockets_.push_back(silent_sockets_.back());
    silent_sockets_.push_back(silent_socket(server, SOCK_STREAM));
  }
  return servers;
}

// An HTB queue on loopback: everything in class 1:1 (no limit) but the port's packets, classified
// into 1:10, which may send 8 bits a second. Packets wait there (a full queue drops them).
void PrivateNetwork::black_hole(int port) {
  if (original_ns_ < 0) throw std::logic_error("PrivateNetwork::black_hole without a namespace: " + why_);
  const std::string p = std::to_string(port);
  run("tc qdisc add dev lo root handle 1: htb default 1");
  shaped_ = true;
  run("tc class add dev lo parent 1: classid 1:1 htb rate 10gbit");
  run("tc class add dev lo parent 1: classid 1:10 htb rate 8bit ceil 8bit");
  run("tc filter add dev lo parent 1: protocol ip prio 1 u32 match ip dport " + p + " 0xffff flowid 1:10");
  run("tc filter add dev lo parent 1: protocol ip prio 1 u32 match ip sport " + p + " 0xffff flowid 1:10");
}

void PrivateNetwork::restore() {
  if (!shaped_) return;
  run("tc qdisc del dev lo root");
  shaped_ = false;
}

}  // namespace pm::test
