// Lines that arrive while the daemon stops are answered `busy` ("daemon shutting down") and counted
// as pm_ingest_events_rejected_total{reason="shutting_down"}, not "busy": PmIngestdRejectingBusy
// pages on busy (a full budget, a full or failing disk), and a routine restart must not page.
// In process: a real log in a temporary directory, a real Unix socket, no database.
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "ingest/server/unix_socket.h"
#include "tests/support/daemon_harness.h"
#include "tests/support/in_process_server.h"
#include "tests/support/producer.h"

namespace pm::test {
namespace {

TEST(ServerStop, LinesRefusedWhileStoppingAreCountedAsShuttingDownNotBusy) {
  const std::string dir = make_temp_dir("pm_server_stop");
  auto server = std::make_unique<InProcessServer>(dir);
  server->pipeline().close();  // the daemon's stop closes the pipeline first, then the server

  const int fd = connect_unix_socket(server->socket_path());
  ASSERT_GE(fd, 0);
  const std::string line =
      R"({"type":"trade","condition_id":"c","trade_id":"t","token_id":"tok","price":0.5,"size":"10","side":"buy","timestamp":1700000000})"
      "\n";
  ASSERT_EQ(::send(fd, line.data(), line.size(), MSG_NOSIGNAL), static_cast<ssize_t>(line.size()));
  const std::string replies = read_replies_until(fd, "{\"ack\":");
  ::close(fd);
  EXPECT_NE(replies.find(R"({"error":"busy","line":1,"detail":"daemon shutting down)"), std::string::npos) << replies;
  EXPECT_EQ(server->metrics().rejected("shutting_down").Value(), 1);
  EXPECT_EQ(server->metrics().rejected("busy").Value(), 0) << "a stop's refusals page as a full log";
  EXPECT_EQ(server->queue().size(), 0u);
  server.reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace pm::test
