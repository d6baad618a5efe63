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
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include "ingest/events/event_queue.h"
#include "ingest/log/wal.h"
#include "ingest/server/ingest_pipeline.h"
#include "ingest/server/server.h"
#include "ingest/server/unix_socket.h"
#include "metrics/ingest_metrics.h"
#include "tests/support/daemon_harness.h"

namespace pm::test {
namespace {

// Reads replies until the ack line arrives (or the connection ends); what was read.
std::string read_until_ack(int fd) {
  std::string replies;
  char buf[4096];
  while (replies.find("{\"ack\":") == std::string::npos) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    replies.append(buf, static_cast<std::size_t>(n));
  }
  return replies;
}

TEST(ServerStop, LinesRefusedWhileStoppingAreCountedAsShuttingDownNotBusy) {
  const std::string dir = make_temp_dir("pm_server_stop");
  wal::Options log_options;
  log_options.dir = dir + "/wal";
  const std::unique_ptr<wal::WriteAheadLog> log = wal::WriteAheadLog::open(log_options);
  IngestMetrics metrics;
  EventQueue queue(16);
  IngestPipeline pipeline(1ull << 30, *log, queue, metrics, [] { return std::uint64_t{0}; });
  ServerConfig config;
  config.socket_path = dir + "/ingest.sock";
  Server server(config, pipeline, metrics, std::make_shared<spdlog::logger>("server-stop", std::make_shared<spdlog::sinks::null_sink_mt>()));
  server.start();
  pipeline.close();  // the daemon's stop closes the pipeline first, then the server

  const int fd = connect_unix_socket(config.socket_path);
  ASSERT_GE(fd, 0);
  const std::string line =
      R"({"type":"trade","condition_id":"c","trade_id":"t","token_id":"tok","price":0.5,"size":"10","side":"buy","timestamp":1700000000})"
      "\n";
  ASSERT_EQ(::send(fd, line.data(), line.size(), MSG_NOSIGNAL), static_cast<ssize_t>(line.size()));
  const std::string replies = read_until_ack(fd);
  ::close(fd);
  EXPECT_NE(replies.find(R"({"error":"busy","line":1,"detail":"daemon shutting down)"), std::string::npos) << replies;
  EXPECT_EQ(metrics.rejected("shutting_down").Value(), 1);
  EXPECT_EQ(metrics.rejected("busy").Value(), 0) << "a stop's refusals page as a full log";
  EXPECT_EQ(queue.size(), 0u);
  server.stop();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace pm::test
