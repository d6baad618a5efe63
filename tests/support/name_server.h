#pragma once
// NameServer: a DNS server over real UDP for one test, on sockets already bound to the name
// servers' port 53 (PrivateNetwork::name_server_sockets()), so the process's own getaddrinfo asks
// it. On a thread of its own it answers each query: an A query for a name it was told to answer
// with that IPv4 address, any other type for that name with no records (so AAAA lookups end at
// once; a name told to exist without an address: every type), and every other name with "no such
// name" (NXDOMAIN). silence() makes it read and drop every query from then on, as name servers
// that stopped answering; answer() and forget() change what it says from the next query on. The sockets stay their owner's; the destructor ends the
// thread. Any thread may call its methods.
#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace pm::test {

class NameServer {
 public:
  explicit NameServer(std::vector<int> udp_sockets);
  ~NameServer();
  NameServer(const NameServer&) = delete;
  NameServer& operator=(const NameServer&) = delete;

  void answer(const std::string& name, const std::string& ipv4);  // throws on an address that is not IPv4
  void answer_without_address(const std::string& name);           // the name exists, with no records
  void forget(const std::string& name);                           // "no such name" from now on
  void silence();                                                 // no answer to anything from now on

 private:
  void serve();
  std::vector<unsigned char> reply_to(const unsigned char* query, std::size_t length);

  std::vector<int> sockets_;
  int wake_fd_ = -1;  // an eventfd: the destructor's "stop"
  std::mutex mu_;
  std::map<std::string, std::vector<unsigned char>> names_;  // lower-case name -> its 4 address bytes
  std::atomic<bool> silent_{false};
  std::thread thread_;
};

}  // namespace pm::test
