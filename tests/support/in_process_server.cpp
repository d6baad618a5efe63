#include "tests/support/in_process_server.h"

#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

namespace pm::test {

InProcessServer::InProcessServer(const std::string& dir, InProcessServerOptions options) {
  wal::Options log_options;
  log_options.dir = dir + "/wal";
  log_options.fs = options.fs;
  log_ = wal::WriteAheadLog::open(log_options);
  pipeline_ = std::make_unique<IngestPipeline>(1ull << 30, *log_, queue_, metrics_, [] { return std::uint64_t{0}; });
  config_.socket_path = dir + "/ingest.sock";
  config_.line_timeout = options.line_timeout;
  auto quiet = std::make_shared<spdlog::logger>("in-process-server", std::make_shared<spdlog::sinks::null_sink_mt>());
  server_ = std::make_unique<Server>(config_, *pipeline_, metrics_, std::move(quiet));
  server_->start();
}

InProcessServer::~InProcessServer() { server_->stop(); }

}  // namespace pm::test
