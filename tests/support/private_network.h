#pragma once
// PrivateNetwork: the calling thread moves into a network namespace of its own (unshare
// CLONE_NEWNET, loopback up), so what it starts afterwards (a PgCluster, a daemon, its threads)
// talks over a loopback no other test shares, and a port can be black-holed there: its packets
// held by a queue of 8 bits a second (after a first packet, one a minute at most), which the peers
// see as a host that vanished (nothing refused, nothing acknowledged). Needs CAP_SYS_ADMIN and
// CAP_NET_ADMIN, and `ip`/`tc` (iproute2, scripts/setup.sh) with HTB and u32 in the kernel;
// available() says whether all of that is there (tried once at construction), why() why not, and
// the thread is then back in its own namespace. The destructor moves the thread back; declare it
// before what runs inside it. For one test's thread.
#include <string>
#include <vector>

namespace pm::test {

class PrivateNetwork {
 public:
  PrivateNetwork();
  ~PrivateNetwork();
  PrivateNetwork(const PrivateNetwork&) = delete;
  PrivateNetwork& operator=(const PrivateNetwork&) = delete;

  bool available() const { return original_ns_ >= 0; }
  const std::string& why() const { return why_; }
  // TCP packets to and from `port` on loopback vanish until restore(). Throws if tc fails.
  void black_hole(int port);
  void restore();  // packets flow again (the held ones are dropped: TCP sends them again)
  // The name servers of /etc/resolv.conf (127.0.0.1 when it names none) take queries here, over
  // UDP and TCP, and never answer: host-name lookups from this namespace hang for the resolver's
  // timeouts. Returns the servers silenced. Throws if one cannot be.
  std::vector<std::string> silence_name_servers();
  // The UDP sockets silence_name_servers() bound (one per server), for a test::NameServer to answer
  // on. Owned here.
  const std::vector<int>& name_server_sockets() const { return name_server_udp_sockets_; }

 private:
  void leave();  // back to the original namespace (idempotent)
  int original_ns_ = -1;
  std::string why_;
  bool shaped_ = false;
  std::vector<int> silent_sockets_;          // every socket silence_name_servers() bound
  std::vector<int> name_server_udp_sockets_;  // the UDP ones among them
};

}  // namespace pm::test
