#pragma once
// Helpers of the operations suites (tests/ops): HTTP with status codes, shell commands, a stand-in
// for systemd's notification socket, a producer running as another user, environment guards.
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#ifndef PM_SOURCE_DIR
#error PM_SOURCE_DIR must name the source tree
#endif
#include "tests/support/http_client.h"

#ifndef PM_BUILD_DIR
#error PM_BUILD_DIR must name the build tree
#endif

namespace pm::test {


struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};
// Runs `command` with /bin/sh -c; `input` (if any) is written to its stdin.
CommandResult run_command(const std::string& command, const std::optional<std::string>& input = std::nullopt);

bool executable(const std::string& path);
std::string url_encode(const std::string& text);
std::string shell_quote(const std::string& text);
void write_file(const std::string& path, const std::string& content);

// A private temporary directory, removed at the end unless the test failed (then kept to look at).
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& prefix);
  ~ScratchDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A datagram socket standing in for systemd's NOTIFY_SOCKET: collects what sd_notify sends. A
// thread of its own reads every datagram as it arrives, as systemd does: a socket left unread fills
// after 11 datagrams (net.unix.max_dgram_qlen), and the daemon's next sd_notify then blocks its
// main thread, which also watches the writer. All members may be called from the test's thread.
class NotifyListener {
 public:
  explicit NotifyListener(const std::string& path);
  ~NotifyListener();
  NotifyListener(const NotifyListener&) = delete;
  NotifyListener& operator=(const NotifyListener&) = delete;
  const std::string& path() const { return path_; }
  // True once a received message has a line starting with `prefix`, within `timeout`.
  bool wait_for_line(const std::string& prefix, std::chrono::milliseconds timeout);
  // Over the messages received so far (each may hold several NAME=value lines).
  std::size_t count_lines(const std::string& prefix) const;
  std::string last_line(const std::string& prefix) const;
  // Returns once every datagram sent to the socket before this call has been read: a marker sent
  // now arrives behind them. False if it was not read within `timeout`.
  bool catch_up(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Forgets the messages received so far.
  void clear();

 private:
  void read_until_stopped();

  std::string path_;
  int fd_ = -1;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  std::vector<std::string> messages_;  // guarded by mu_
  std::atomic<unsigned> markers_read_{0};
  std::thread reader_;
};

// Sets environment variables for the lifetime of the object (children inherit them), then
// restores the previous values.
class ScopedEnv {
 public:
  explicit ScopedEnv(std::vector<std::pair<std::string, std::string>> vars);
  ~ScopedEnv();

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

// What a producer running as another user saw (see connect_as).
struct PeerOutcome {
  int connect_errno = 0;  // 0: connected
  long bytes_read = -1;   // what the daemon answered before closing (or the read timeout)
  std::string reply;      // those bytes
  bool closed_by_daemon = false;  // read() returned 0 or ECONNRESET
};
// Forks; the child drops to uid/gid (no supplementary groups), connects to the Unix socket,
// sends `line` + "\n" and reads until the first newline, EOF or `timeout`. Needs root.
PeerOutcome connect_as(uid_t uid, gid_t gid, const std::string& socket_path, const std::string& line,
                       std::chrono::seconds timeout = std::chrono::seconds(10), pid_t* child_pid = nullptr);

}  // namespace pm::test
