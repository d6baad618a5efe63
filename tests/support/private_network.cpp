#include "tests/support/private_network.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace pm::test {

namespace {

void run(const std::string& command) {
  if (std::system((command + " > /dev/null 2>&1").c_str()) != 0) throw std::runtime_error("failed: " + command);
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
