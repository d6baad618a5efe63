// --line-timeout is the producer's time to send a line whole, not the daemon's: the time the
// connection's thread spends answering the lines before it (a slow log sync, a reply send) does
// not count against the unfinished line that began in the same read. It did: a line that began
// just before a sync slower than --line-timeout was refused `busy` and the connection closed,
// though the producer had sent it at once.
// In process: a real log in a temporary directory (its syncs held at a gate), a real Unix socket.
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "ingest/server/unix_socket.h"
#include "tests/support/daemon_harness.h"
#include "tests/support/in_process_server.h"
#include "tests/support/producer.h"
#include "tests/support/sync_gate_fs.h"

namespace pm::test {
namespace {

bool send_text(int fd, const std::string& text) {
  return ::send(fd, text.data(), text.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(text.size());
}

std::string trade_line(const std::string& trade_id) {
  return R"({"type":"trade","condition_id":"c","trade_id":")" + trade_id +
         R"(","token_id":"tok","price":0.5,"size":"10","side":"buy","timestamp":1700000000})";
}

TEST(ServerLineTimeout, TheDaemonsOwnSlowSyncIsNotCountedAgainstTheUnfinishedLine) {
  const std::string dir = make_temp_dir("pm_line_timeout");
  wal::SyncGateFs gate;
  InProcessServerOptions options;
  options.fs = &gate;
  options.line_timeout = std::chrono::seconds(2);
  auto server = std::make_unique<InProcessServer>(dir, options);

  const int fd = connect_unix_socket(server->socket_path());
  ASSERT_GE(fd, 0);
  const std::string second = trade_line("t2");
  gate.close_gate();
  // Line 1 whole and the first half of line 2, in one write: one read of the daemon's.
  ASSERT_TRUE(send_text(fd, trade_line("t1") + "\n" + second.substr(0, second.size() / 2)));
  gate.wait_for_held_sync();  // line 1's sync: the connection's thread waits in it
  std::this_thread::sleep_for(std::chrono::milliseconds(3000));  // the fault: a sync slower than --line-timeout
  gate.open_gate();
  const std::string first_replies = read_replies_until(fd, R"({"ack":1})");
  EXPECT_NE(first_replies.find(R"({"ack":1})"), std::string::npos) << first_replies;
  const bool sent = send_text(fd, second.substr(second.size() / 2) + "\n");
  const std::string replies = read_replies_until(fd, R"({"ack":2})", first_replies);
  ::close(fd);
  EXPECT_TRUE(sent) << "the connection was closed: " << replies;
  EXPECT_NE(replies.find(R"({"ack":2})"), std::string::npos) << replies;
  EXPECT_EQ(replies.find("busy"), std::string::npos) << replies;
  EXPECT_EQ(server->metrics().connections_closed("line_timeout").Value(), 0);
  EXPECT_EQ(server->log().durable().lsn, 2u);
  server.reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace pm::test
