// An ack held back while the producer does not read its replies (connection_session.h): it goes
// out once the producer reads, also while bytes of an unfinished line keep arriving (each read
// returned before looking at the held ack, and the 20 ms recheck never came while reads did: the
// ack waited for the line's end, up to --line-timeout); and a producer that never reads does not
// wake its connection 50 times a second for ever.
// In process: a real log in a temporary directory, a real Unix socket.
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "ingest/server/unix_socket.h"
#include "tests/support/daemon_harness.h"
#include "tests/support/in_process_server.h"
#include "tests/support/process.h"

namespace pm::test {
namespace {

using namespace std::chrono_literals;

constexpr std::uint64_t kLines = 40;  // past the ~20 unread replies that hold acks back

bool send_text(int fd, const std::string& text) {
  return ::send(fd, text.data(), text.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(text.size());
}

std::string trade_line(std::uint64_t n) {
  return R"({"type":"trade","condition_id":"c","trade_id":"t)" + std::to_string(n) +
         R"(","token_id":"tok","price":0.5,"size":"10","side":"buy","timestamp":1700000000})";
}

// The thread id of this process's one connection thread (named pm-conn), or -1.
pid_t connection_thread() {
  pid_t found = -1;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    std::getline(comm, name);
    if (name.rfind("pm-conn", 0) != 0) continue;
    if (found >= 0) return -1;
    found = static_cast<pid_t>(std::stol(task.path().filename().string()));
  }
  return found;
}

// True while thread `tid` waits in poll().
bool waits_in_poll(pid_t tid) {
  std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/syscall");
  long number = -1;
  in >> number;
#ifdef SYS_poll
  if (number == SYS_poll) return true;
#endif
  return number == SYS_ppoll;
}

long voluntary_switches(pid_t tid) {
  std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("voluntary_ctxt_switches:", 0) == 0) return std::stol(line.substr(24));
  return -1;
}

// What the socket holds unread, left in it.
std::string peek(int fd) {
  std::string bytes(1 << 20, '\0');
  const ssize_t n = ::recv(fd, bytes.data(), bytes.size(), MSG_PEEK | MSG_DONTWAIT);
  bytes.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  return bytes;
}

// Sends kLines lines one read at a time, reading no reply, until the last one's ack is held back:
// the connection's thread has answered it (the line is durable and the thread waits in poll()
// again) and its ack is not among the replies sent.
class ServerHeldAck : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = make_temp_dir("pm_held_ack");
    server_ = std::make_unique<InProcessServer>(dir_);
    fd_ = connect_unix_socket(server_->socket_path());
    ASSERT_GE(fd_, 0);
    for (std::uint64_t n = 1; n <= kLines; ++n) {
      ASSERT_TRUE(send_text(fd_, trade_line(n) + "\n"));
      ASSERT_TRUE(wait_until([&] { return server_->log().durable().lsn == n; }, 20s)) << "line " << n;
    }
    ASSERT_TRUE(wait_until([&] { return (tid_ = connection_thread()) >= 0; }, 20s));
    ASSERT_TRUE(wait_until([&] { return waits_in_poll(tid_); }, 20s));
    const std::string sent = peek(fd_);
    ASSERT_NE(sent.find(R"({"ack":1})"), std::string::npos) << sent;
    ASSERT_EQ(sent.find(R"({"ack":)" + std::to_string(kLines) + "}"), std::string::npos)
        << "the last ack was not held back; the test needs more lines: " << sent;
  }
  void TearDown() override {
    if (fd_ >= 0) ::close(fd_);
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Returns right after one of the held ack's rechecks (a wake-up of the connection's thread), once
  // they have backed off past half a second: the next one is then at least that far away, so only
  // the read path can send the ack within a shorter window. The rechecks go 20, 40, .. 640 ms, then
  // every second.
  void wait_right_after_a_slow_recheck() {
    long seen = voluntary_switches(tid_);
    auto last_wake = std::chrono::steady_clock::now();
    bool first = true;
    ASSERT_TRUE(wait_until([&] {
      const long now_seen = voluntary_switches(tid_);
      if (now_seen == seen) return false;
      seen = now_seen;
      const auto now = std::chrono::steady_clock::now();
      const bool slow = !first && now - last_wake >= 500ms;
      first = false;
      last_wake = now;
      return slow;
    }, 20s));
  }

  std::string dir_;
  std::unique_ptr<InProcessServer> server_;
  int fd_ = -1;
  pid_t tid_ = -1;
};

TEST_F(ServerHeldAck, AHeldAckGoesOutWhileAnUnfinishedLineKeepsArriving) {
  std::string replies;
  char buffer[1 << 16];
  const auto read_available = [&] {
    for (ssize_t n; (n = ::recv(fd_, buffer, sizeof buffer, MSG_DONTWAIT)) > 0;) replies.append(buffer, static_cast<std::size_t>(n));
  };
  // No recheck falls inside the window below: the ack must come from the read path (a recheck
  // between two bytes let the test pass without it).
  wait_right_after_a_slow_recheck();
  read_available();  // the producer reads its replies now
  const std::string expected = R"({"ack":)" + std::to_string(kLines) + "}";
  const std::string unfinished = trade_line(kLines + 1);
  const auto started = std::chrono::steady_clock::now();
  // A byte of the next line every 5 ms (the producer's pace, not a wait for the daemon), reading
  // meanwhile: the held ack must come within 300 ms, long before the line ends.
  for (std::size_t i = 0; i < 60 && replies.find(expected) == std::string::npos; ++i) {
    ASSERT_TRUE(send_text(fd_, unfinished.substr(i, 1)));
    pollfd p{fd_, POLLIN, 0};
    ::poll(&p, 1, 5);
    read_available();
  }
  const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  EXPECT_NE(replies.find(expected), std::string::npos) << "after " << waited.count() << " ms: " << replies;
  EXPECT_LT(waited, 300ms);
}

TEST_F(ServerHeldAck, AProducerThatNeverReadsDoesNotWakeItsConnectionFiftyTimesASecond) {
  // The recheck interval doubles from 20 ms to 1 s in 1.3 s; then its wake-ups are counted for 3 s
  // (they were 150: one every 20 ms). Time is what is measured here: nothing to wait on instead.
  std::this_thread::sleep_for(2s);
  const long before = voluntary_switches(tid_);
  std::this_thread::sleep_for(3s);
  const long after = voluntary_switches(tid_);
  ASSERT_GE(before, 0);
  EXPECT_LE(after - before, 8) << "the connection's thread woke " << after - before << " times in 3 s";
  EXPECT_EQ(peek(fd_).find(R"({"ack":)" + std::to_string(kLines) + "}"), std::string::npos) << "still held";
}

}  // namespace
}  // namespace pm::test
