// pm-ingestd: wiring of the ingestion daemon. Producers -> Server -> IngestPipeline (write-ahead
// log, group commit) -> EventQueue -> BatchWriter -> PostgreSQL; metrics over HTTP; systemd
// notify. Exit codes: 0 clean stop, 1 bad options or start-up failure, 2 fatal log/checkpoint
// problem (the message says what to do), 70 a failed fdatasync (restart and recover from disk).
#include <signal.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <iostream>
#include <mutex>
#include <thread>

#include <prometheus/exposer.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "daemon/cli_common.h"
#include "daemon/daemon_options.h"
#include "ingest/batch_writer.h"
#include "ingest/event_queue.h"
#include "ingest/ingest_pipeline.h"
#include "ingest/server.h"
#include "ingest/wal.h"
#include "metrics/ingest_metrics.h"
#include "repos/database.h"

#ifndef PM_VERSION
#define PM_VERSION "0.0.0"
#endif

namespace {

std::shared_ptr<spdlog::logger> make_logger(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("pm-ingestd");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::info);
  return logger;
}

// The socket systemd passed (socket activation), or -1.
int inherited_socket(spdlog::logger& log) {
  const int n = sd_listen_fds(1);
  if (n <= 0) return -1;
  if (n > 1) log.warn("systemd passed {} sockets; using the first", n);
  const int fd = SD_LISTEN_FDS_START;
  if (sd_is_socket_unix(fd, SOCK_STREAM, 1, nullptr, 0) <= 0) {
    log.error("the socket systemd passed (fd {}) is not a listening Unix stream socket; ignoring it", fd);
    return -1;
  }
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<pm::DaemonOptions> parsed;
  try {
    parsed = pm::parse_daemon_options(argc, argv, PM_VERSION);
  } catch (const std::exception& e) {
    std::cerr << "pm-ingestd: " << pm::redact_url(e.what()) << "\n(see pm-ingestd --help)\n";
    return 1;
  }
  pm::scrub_argv_passwords(argc, argv);
  if (!parsed) return 0;
  const pm::DaemonOptions& options = *parsed;

  // Signals are taken synchronously by the main thread; block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  auto log = make_logger(options.log_level);
  log->info("pm-ingestd {} starting: wal {}, database {}, instance '{}', trade timestamps in {}", PM_VERSION,
            options.wal_dir, pm::redact_url(options.database_url), options.instance_id,
            pm::to_string(options.trade_timestamp_unit));

  pm::IngestMetrics metrics(PM_VERSION);
  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    exposer = std::make_unique<prometheus::Exposer>(options.metrics_listen);
    exposer->RegisterCollectable(metrics.registry());
  } catch (const std::exception& e) {
    log->critical("cannot serve metrics on {}: {}", options.metrics_listen, e.what());
    return 1;
  }

  std::unique_ptr<pm::wal::WriteAheadLog> wal;
  try {
    pm::wal::Options wal_options;
    wal_options.dir = options.wal_dir;
    wal_options.segment_bytes = options.wal_segment_bytes;
    wal_options.on_warning = [log](const std::string& w) { log->warn("{}", w); };
    wal_options.on_fatal = [log](const std::string& m) {
      log->critical("{}", m);
      log->flush();
      std::_Exit(70);
    };
    wal_options.on_group_commit = [&metrics](double seconds, std::uint64_t bytes, std::uint64_t records) {
      metrics.wal_fsync_seconds.Observe(seconds);
      metrics.wal_appended_bytes.Increment(static_cast<double>(bytes));
      metrics.wal_appended_records.Increment(static_cast<double>(records));
    };
    wal = pm::wal::WriteAheadLog::open(wal_options);
  } catch (const pm::wal::WalCorruption& e) {
    log->critical("{}; refusing to start (inspect with `pm-ingestctl wal-verify --wal-dir {}`)", e.what(), options.wal_dir);
    return 2;
  } catch (const std::exception& e) {
    log->critical("cannot open the write-ahead log in {}: {}", options.wal_dir, e.what());
    return 1;
  }
  const auto durable = wal->durable();
  log->info("log {} recovered: {} records up to lsn {}", pm::wal::log_id_hex(wal->log_id()), durable.lsn - wal->oldest().lsn,
            durable.lsn);

  pm::DatabaseConfig db_config;
  db_config.url = options.database_url;
  db_config.min_connections = 0;
  db_config.max_connections = 2;
  db_config.reconnect_max_attempts = 1;  // the writer has its own backoff loop
  db_config.connect_timeout = std::chrono::seconds(5);
  db_config.retry_max_attempts = 1;
  db_config.trade_timestamp_unit = options.trade_timestamp_unit;
  pm::Database db(db_config);

  pm::EventQueue queue(options.queue_max_events);
  std::atomic<int> fatal_exit{0};
  pm::WriterConfig writer_config;
  writer_config.instance_id = options.instance_id;
  writer_config.batch_max_events = options.batch_max_events;
  writer_config.batch_max_delay = options.batch_max_delay;
  writer_config.trade_timestamp_unit = options.trade_timestamp_unit;
  pm::BatchWriter writer(writer_config, db, *wal, queue, metrics, log, [&](const std::string&) {
    fatal_exit = 2;
    ::kill(::getpid(), SIGTERM);
  });
  pm::IngestPipeline pipeline(options.wal_max_bytes, *wal, queue, metrics, [&] { return writer.applied_log_offset(); });

  pm::ServerConfig server_config;
  server_config.socket_path = options.socket_path;
  server_config.inherited_fd = inherited_socket(*log);
  server_config.socket_mode = options.socket_mode;
  server_config.socket_group = options.socket_group;
  server_config.allow_uids = options.allow_uids;
  server_config.allow_gids = options.allow_gids;
  server_config.max_line_bytes = options.max_line_bytes;
  server_config.max_connections = options.max_connections;
  server_config.stale_after_ms = options.stale_after.count() * 1000;
  pm::Server server(server_config, pipeline, metrics, log);

  writer.start();
  try {
    server.start();
  } catch (const std::exception& e) {
    log->critical("{}", e.what());
    writer.stop();
    return 1;
  }
  log->info("ready: producers connect to {}, metrics at http://{}/metrics",
            server_config.inherited_fd >= 0 ? "the systemd socket" : options.socket_path, options.metrics_listen);
  sd_notify(0, "READY=1\nSTATUS=accepting producers");

  // Wait for SIGINT/SIGTERM (or a fatal writer error, which raises SIGTERM).
  for (;;) {
    timespec tick{1, 0};
    const int sig = sigtimedwait(&signals, nullptr, &tick);
    if (sig == SIGINT || sig == SIGTERM) break;
    const auto unapplied = pipeline.unapplied_bytes();
    sd_notifyf(0, "STATUS=%zu producers, %llu log bytes unapplied, database %s", server.connections(),
               static_cast<unsigned long long>(unapplied), writer.database_up() ? "up" : "down");
  }

  log->info("stopping: no new connections, finishing the batch in flight");
  sd_notify(0, "STOPPING=1");
  auto done = std::async(std::launch::async, [&] {
    pipeline.close();
    server.stop();
    writer.stop();
  });
  if (done.wait_for(options.shutdown_timeout) != std::future_status::ready) {
    log->warn("shutdown took longer than {} s; exiting now (unapplied events are replayed at the next start)",
              options.shutdown_timeout.count());
    log->flush();
    std::_Exit(fatal_exit ? fatal_exit.load() : 0);
  }
  log->info("stopped; applied up to lsn {} of {}", writer.applied_lsn(), wal->durable().lsn);
  return fatal_exit.load();
}
