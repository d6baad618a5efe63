#pragma once
// BlackHole: a TCP port on 127.0.0.1 that takes connections and never answers, the way a server
// behind a dropped route or a hung host looks to a client. Mode::NeverAccept leaves connections in
// the listen backlog (the kernel completes the handshake; nobody reads); Mode::AcceptAndHold
// accepts them on a thread of its own and keeps them open without reading or writing. Everything
// is closed in the destructor. refused_port() is a port with nothing listening (connect is
// refused at once). For one test's thread; the accept thread is internal.
#include <atomic>
#include <thread>
#include <vector>

namespace pm::test {

class BlackHole {
 public:
  enum class Mode { NeverAccept, AcceptAndHold };
  explicit BlackHole(Mode mode);
  ~BlackHole();
  BlackHole(const BlackHole&) = delete;
  BlackHole& operator=(const BlackHole&) = delete;

  int port() const { return port_; }
  // Connections accepted so far (AcceptAndHold).
  int accepted() const { return accepted_.load(); }

 private:
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::vector<int> held_;
  std::thread acceptor_;
};

// A 127.0.0.1 port nothing listens on (bound, then closed).
int refused_port();

// A Unix socket listening at `path` that nobody accepts on: connections wait in its backlog and
// are never answered (a hung daemon; or what a restart of pm-ingestd.socket, or a second daemon,
// leaves at a daemon's path). -1 with errno set on failure. The caller closes it.
int listen_at(const std::string& path);

}  // namespace pm::test
