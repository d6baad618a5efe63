// The daemon's ingest side in one process, for tests of the server that need no database: a real
// log in a directory of the caller's, a queue nothing drains, the pipeline and the server on a
// real Unix socket. Built and started by the constructor, stopped by the destructor; one thread
// owns it, the server's own threads answer the socket.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "ingest/events/event_queue.h"
#include "ingest/log/wal.h"
#include "ingest/server/ingest_pipeline.h"
#include "ingest/server/server.h"
#include "metrics/ingest_metrics.h"

namespace pm::test {

struct InProcessServerOptions {
  wal::LogFs* fs = nullptr;  // the log's file calls; nullptr: the real ones
  std::chrono::seconds line_timeout{kLineTimeoutSeconds};
};

class InProcessServer {
 public:
  // The log in `dir`/wal, the socket at `dir`/ingest.sock (dir must exist).
  InProcessServer(const std::string& dir, InProcessServerOptions options = {});
  ~InProcessServer();
  InProcessServer(const InProcessServer&) = delete;
  InProcessServer& operator=(const InProcessServer&) = delete;

  const std::string& socket_path() const { return config_.socket_path; }
  wal::WriteAheadLog& log() { return *log_; }
  IngestMetrics& metrics() { return metrics_; }
  EventQueue& queue() { return queue_; }
  IngestPipeline& pipeline() { return *pipeline_; }

 private:
  std::unique_ptr<wal::WriteAheadLog> log_;
  IngestMetrics metrics_;
  EventQueue queue_{16};
  std::unique_ptr<IngestPipeline> pipeline_;
  ServerConfig config_;
  std::unique_ptr<Server> server_;
};

}  // namespace pm::test
