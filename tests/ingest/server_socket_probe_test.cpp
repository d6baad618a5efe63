// The probe of a socket file found at the socket path on start (Server::bind_socket): only a file
// nobody listens on (connect: ECONNREFUSED) is stale and replaced. Any other failure was taken for
// stale too, and the file unlinked: a listener whose backlog was full (a daemon too busy to accept)
// lost its socket file to the new daemon; and the probe's blocking connect waited on that backlog
// for ever, so the new daemon hung in its start. Now it refuses, naming the path and the error.
// In process (tests/support/in_process_server.h), as root too.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ingest/server/unix_socket.h"
#include "tests/support/daemon_harness.h"
#include "tests/support/in_process_server.h"

namespace pm::test {
namespace {

using namespace std::chrono_literals;

// A socket bound at `path`; listening with a backlog of 0 when `listen` (else a stale file once closed).
int bound_socket(const std::string& path, bool listen) {
  sockaddr_un addr;
  if (!unix_socket_address(path, addr)) return -1;
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return -1;
  if (listen && ::listen(fd, 0) != 0) return -1;
  return fd;
}

ino_t inode(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

// Starts an InProcessServer in `dir`; "" when it started, else what it threw.
std::string start_server(const std::string& dir, std::unique_ptr<InProcessServer>& server) {
  try {
    server = std::make_unique<InProcessServer>(dir);
    return "";
  } catch (const std::exception& e) {
    return e.what();
  }
}

TEST(ServerSocketProbe, ASocketWhoseBacklogIsFullIsNotTakenForStale) {
  const std::string dir = make_temp_dir("pm_socket_probe");
  const std::string path = dir + "/ingest.sock";
  int listener = bound_socket(path, true);
  ASSERT_GE(listener, 0) << std::strerror(errno);
  std::vector<int> queued;  // connections the listener never accepts, until its backlog is full
  int error = 0;
  while (queued.size() < 64) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un addr;
    ASSERT_TRUE(unix_socket_address(path, addr));
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      error = errno;
      ::close(fd);
      break;
    }
    queued.push_back(fd);
  }
  ASSERT_EQ(error, EAGAIN) << "the backlog never filled: " << std::strerror(error);
  const ino_t before = inode(path);

  std::unique_ptr<InProcessServer> server;
  auto started = std::async(std::launch::async, [&] { return start_server(dir, server); });
  if (started.wait_for(20s) != std::future_status::ready) {
    ADD_FAILURE() << "the start waited on the full backlog";
    ::close(listener);  // wakes the probe (then refused: the old code took the file for stale)
    listener = -1;
  }
  const std::string refusal = started.get();
  EXPECT_NE(refusal.find("cannot tell whether the socket " + path + " is in use"), std::string::npos) << refusal;
  EXPECT_NE(refusal.find(std::strerror(EAGAIN)), std::string::npos) << refusal;
  EXPECT_EQ(server, nullptr);
  EXPECT_EQ(inode(path), before) << "the listener's socket file was replaced";

  server.reset();
  for (int fd : queued) ::close(fd);
  if (listener >= 0) ::close(listener);
  std::filesystem::remove_all(dir);
}

TEST(ServerSocketProbe, AFileNobodyListensOnIsReplaced) {
  const std::string dir = make_temp_dir("pm_socket_probe");
  const std::string path = dir + "/ingest.sock";
  const int left = bound_socket(path, false);  // a daemon's file left behind by a crash
  ASSERT_GE(left, 0) << std::strerror(errno);
  ::close(left);
  ASSERT_EQ(probe_unix_socket(path), ECONNREFUSED);
  std::unique_ptr<InProcessServer> server;
  EXPECT_EQ(start_server(dir, server), "");
  EXPECT_EQ(probe_unix_socket(path), 0) << "the new daemon accepts on the path";
  server.reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace pm::test
