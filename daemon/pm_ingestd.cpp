// pm-ingestd: wiring of the ingestion daemon. Producers -> Server -> IngestPipeline (write-ahead
// log, group commit) -> EventQueue -> BatchWriter -> PostgreSQL; /metrics, /healthz and /readyz
// over HTTP; systemd notify. Exit codes: 0 clean stop, 1 bad options or start-up failure (a log or
// archive file of a newer format among them: no damage, another build reads it), 2 fatal
// log/checkpoint problem (damage to synced records, a log that lost applied records, the log
// directory locked by another daemon) or a database it cannot write right (the triggers table
// without the unique index G2 needs, trade watermarks of the other unit than
// --trade-timestamp-unit: found when the writer connects): the message says what to do, 70 a failed fdatasync or
// directory fsync (restart and recover from disk).
//
// systemd (Type=notify): READY=1 once the log is recovered and the socket listens (PostgreSQL is
// not awaited: the daemon logs and acks while it is down); STATUS= once a second with producers,
// backlog and database state; WATCHDOG=1 (when WatchdogSec= is set) only while the writer thread
// has gone round its loop within --writer-stall-timeout (a retry's backoff wait counts as going
// round), so a wedged writer gets the service restarted; STOPPING=1 when SIGTERM/SIGINT arrives.
// SIGHUP, SIGUSR1 and SIGUSR2 are logged and ignored.
#include <signal.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <future>
#include <iostream>
#include <mutex>
#include <thread>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include "daemon/cli_common.h"
#include "daemon/daemon_options.h"
#include "daemon/operator_locks.h"
#include "ingest/archive/segment_archiver.h"
#include "ingest/writer/batch_writer.h"
#include "ingest/events/event_queue.h"
#include "ingest/server/ingest_pipeline.h"
#include "ingest/server/kept_buffers.h"
#include "ingest/server/log_metrics.h"
#include "ingest/server/server.h"
#include "ingest/log/segment_remover.h"
#include "ingest/log/wal.h"
#include "ingest/log/wal_directory.h"
#include "ingest/log/wal_newer_format.h"
#include "ingest/log/wal_reader.h"
#include "metrics/http_endpoint.h"
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

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Clears the endpoint's readiness function before the objects it reads are destroyed.
struct ReadinessBinding {
  pm::HttpEndpoint& endpoint;
  ~ReadinessBinding() { endpoint.set_readiness({}); }
};

// ---- Configuration: the options turned into each part's config. ----

pm::wal::Options log_options(const pm::DaemonOptions& options, const std::shared_ptr<spdlog::logger>& log,
                             pm::IngestMetrics& metrics) {
  pm::wal::Options wal_options;
  wal_options.dir = options.wal_dir;
  wal_options.segment_bytes = options.wal_segment_bytes;
  wal_options.preallocate = options.wal_preallocate;
  wal_options.group_delay = options.wal_group_delay;
  wal_options.on_warning = [log](const std::string& w) { log->warn("{}", w); };
  wal_options.on_fatal = [log](const std::string& m) {
    log->critical("{}", m);
    log->flush();
    std::_Exit(70);
  };
  wal_options.on_recovery = [log, &metrics](const pm::wal::RecoveryFinding& finding) {
    log->warn("log recovery: {}", pm::wal::describe(finding));
    metrics.wal_recovery_findings(pm::wal::to_string(finding.kind)).Increment();
    if (finding.kind == pm::wal::RecoveryFinding::Kind::TornTailCut)
      metrics.wal_recovery_truncated_bytes.Increment(static_cast<double>(finding.bytes));
  };
  pm::count_log_metrics(wal_options, metrics);
  return wal_options;
}

pm::DatabaseConfig database_config(const pm::DaemonOptions& options) {
  pm::DatabaseConfig db_config;
  db_config.url = options.database_url;
  db_config.min_connections = 0;
  // The writer's connections, one for a batch applied alone, one for health checks.
  db_config.max_connections = static_cast<int>(options.writer_connections) + 2;
  db_config.reconnect_max_attempts = 1;  // the writer has its own backoff loop
  db_config.connect_timeout = std::chrono::seconds(5);
  db_config.retry_max_attempts = 1;
  db_config.trade_timestamp_unit = options.trade_timestamp_unit;
  return db_config;
}

pm::WriterConfig writer_config(const pm::DaemonOptions& options) {
  pm::WriterConfig writer_config;
  writer_config.instance_id = options.instance_id;
  writer_config.batch_max_events = options.batch_max_events;
  writer_config.batch_max_bytes = options.batch_max_bytes;
  writer_config.batch_max_delay = options.batch_max_delay;
  writer_config.writer_connections = options.writer_connections;
  writer_config.synchronous_commit = options.synchronous_commit ? pm::SynchronousCommit::ServerDefault : pm::SynchronousCommit::Off;
  writer_config.trade_timestamp_unit = options.trade_timestamp_unit;
  writer_config.retention.wait_for_standbys = options.standby_wait;
  writer_config.retention.min_standbys = options.min_standbys;
  return writer_config;
}

// Adopts the socket systemd passed, if any (which may log why it is not used).
pm::ServerConfig server_config(const pm::DaemonOptions& options, spdlog::logger& log) {
  pm::ServerConfig server_config;
  server_config.socket_path = options.socket_path;
  server_config.inherited_fd = inherited_socket(log);
  server_config.socket_mode = options.socket_mode;
  server_config.socket_group = options.socket_group;
  server_config.allow_uids = options.allow_uids;
  server_config.allow_gids = options.allow_gids;
  server_config.max_line_bytes = options.max_line_bytes;
  server_config.max_connections = options.max_connections;
  server_config.reply_timeout = options.reply_timeout;
  server_config.line_timeout = options.line_timeout;
  // A quarter of the stop's time at most (--shutdown-timeout may be 1 s): the writer's last batch
  // needs the rest before the forced exit.
  // (in milliseconds: seconds / 4 rounds 1..3 s down to a grace of 0, which cut every reply send)
  server_config.stop_grace = std::min<std::chrono::milliseconds>(
      std::chrono::seconds(2), std::chrono::duration_cast<std::chrono::milliseconds>(options.shutdown_timeout) / 4);
  server_config.max_connections_per_uid = options.max_connections_per_uid;
  server_config.stale_after_ms = options.stale_after.count() * 1000;
  return server_config;
}

// ---- Start-up: the parts that can fail before anything runs (exit code 1 or 2). ----

std::unique_ptr<pm::HttpEndpoint> open_http_endpoint(const pm::DaemonOptions& options, pm::IngestMetrics& metrics,
                                                     spdlog::logger& log) {
  try {
    return std::make_unique<pm::HttpEndpoint>(options.metrics_listen, metrics.registry());
  } catch (const std::exception& e) {
    log.critical("cannot serve /metrics: {}", e.what());
    return nullptr;
  }
}

std::unique_ptr<pm::archive::SegmentArchiver> make_archiver(const pm::DaemonOptions& options, pm::IngestMetrics& metrics,
                                                           const std::shared_ptr<spdlog::logger>& log) {
  if (options.archive_dir.empty()) return nullptr;
  pm::archive::ArchiverConfig config;
  config.dir = options.archive_dir;
  config.max_bytes = options.archive_max_bytes;
  config.max_age = options.archive_max_age;
  config.compression_level = options.archive_compression_level;
  auto archiver = std::make_unique<pm::archive::SegmentArchiver>(config, metrics, log);
  archiver->prepare();  // before recovery may delete applied segments the archive holds; throws if another daemon holds it
  return archiver;
}

// Stops the archiver's thread when run() returns (shut_down stops it first, within its timeout),
// before the log it uses is destroyed.
struct ArchiverStop {
  pm::archive::SegmentArchiver* archiver;
  ~ArchiverStop() {
    if (archiver) archiver->stop();
  }
};

// 0 when it started; else (after logging why) the exit code: 2 when the archive directory belongs
// to another log, 1 when it holds a file of a newer format (no damage, wal_newer_format.h).
int start_archiver(pm::archive::SegmentArchiver& archiver, pm::wal::WriteAheadLog& wal, spdlog::logger& log) {
  try {
    archiver.start(wal);
  } catch (const pm::archive::ArchiveForeignLog& e) {
    log.critical("{}; refusing to start", e.what());
    return 2;
  } catch (const pm::wal::WalNewerFormat& e) {
    log.critical("{}; refusing to start (nothing is damaged, and the archive was left as it is): run the pm-ingestd that wrote it, or give "
                 "this one an archive directory of its own (--archive-dir)",
                 e.what());
    return 1;
  }
  return 0;
}

// What the daemon says when its log holds a segment of a newer format (exit 1: no damage).
std::string newer_log_advice(const pm::wal::WalNewerFormat& e, const std::string& wal_dir) {
  return fmt::format("{}; refusing to start (nothing is damaged, and the log was left as it is). Run the pm-ingestd that writes "
                     "format {} on this log; or let it apply its whole log, stop it, move {} away, and start this one on an empty "
                     "--wal-dir",
                     e.what(), e.version(), wal_dir);
}

// Opens and recovers the log. On failure: logs why, returns null and sets `exit_code`.
std::unique_ptr<pm::wal::WriteAheadLog> open_log(const pm::DaemonOptions& options, const std::shared_ptr<spdlog::logger>& log,
                                                 pm::IngestMetrics& metrics, const pm::archive::SegmentArchiver* archiver,
                                                 int& exit_code) {
  std::unique_ptr<pm::wal::WriteAheadLog> wal;
  try {
    pm::wal::Options wal_options = log_options(options, log, metrics);
    if (archiver)
      wal_options.may_remove = [archiver](const pm::wal::LogId& id, std::uint64_t segment) { return archiver->may_remove(id, segment); };
    wal = pm::wal::WriteAheadLog::open(std::move(wal_options));
  } catch (const pm::wal::WalCorruption& e) {
    if (e.unreadable()) {  // no damage: the advice to inspect it would mislead; restarted like any failure to open
      log->critical("cannot open the write-ahead log in {}: {} (check the files' owner and permissions)", options.wal_dir, e.what());
      exit_code = 1;
      return nullptr;
    }
    log->critical("{}; refusing to start (inspect with `pm-ingestctl wal-verify --wal-dir {}`)", e.what(), options.wal_dir);
    exit_code = 2;
    return nullptr;
  } catch (const pm::wal::WalNewerFormat& e) {  // not damage (exit 1): another build reads it
    log->critical("{}", newer_log_advice(e, options.wal_dir));
    exit_code = 1;
    return nullptr;
  } catch (const pm::wal::WalLocked& e) {
    log->critical("{}; refusing to start", e.what());
    exit_code = 2;
    return nullptr;
  } catch (const pm::wal::WalSyncFailed& e) {
    log->critical("{}; exiting 70 to be restarted and recover from what is on disk", e.what());
    exit_code = 70;
    return nullptr;
  } catch (const std::exception& e) {
    log->critical("cannot open the write-ahead log in {}: {}", options.wal_dir, e.what());
    exit_code = 1;
    return nullptr;
  }
  const auto durable = wal->durable();
  log->info("log {} recovered: {} records up to lsn {}", pm::wal::log_id_hex(wal->log_id()), durable.lsn - wal->oldest().lsn,
            durable.lsn);
  return wal;
}

// The running daemon's parts, for readiness, supervision and shutdown. All live in run(), on the
// main thread's stack, longer than anything that holds this.
struct Daemon {
  const pm::DaemonOptions& options;
  spdlog::logger& log;
  pm::IngestMetrics& metrics;
  pm::wal::WriteAheadLog& wal;
  pm::BatchWriter& writer;
  pm::IngestPipeline& pipeline;
  pm::Server& server;
  pm::archive::SegmentArchiver* archiver;  // null without --archive-dir
  std::atomic<int>& fatal_exit;  // 2 once the writer hit a fatal log/checkpoint problem
};

// ---- Readiness: /readyz, STATUS= and the systemd watchdog. ----

// Whether producers can reach the daemon: it accepts, and its socket's path still leads there.
pm::ReadinessCheck socket_check(const pm::Server& server) {
  if (!server.listening()) return {"socket_open", false, "not listening"};
  if (!server.socket_file_ours())
    return {"socket_open", false,
            fmt::format("{} was removed or replaced (a restart of pm-ingestd.socket under the running service?): producers "
                        "cannot reach this daemon; restart pm-ingestd",
                        server.socket_file_path())};
  return {"socket_open", true, "accepting producers"};
}

// /readyz's checks. Runs on the HTTP endpoint's threads (and the main thread's status line).
pm::ReadinessReport readiness_report(const Daemon& d) {
  const double stall_limit = static_cast<double>(d.options.writer_stall_timeout.count());
  const std::uint64_t backlog_ready_limit = d.options.wal_max_bytes / 10 * 9;
  pm::ReadinessReport report;
  const auto applied = d.writer.applied_lsn();
  const auto durable_lsn = d.wal.durable().lsn;
  report.checks.push_back({"log_replayed", d.writer.replay_done(),
                           d.writer.replay_done() ? "the log present at start-up is applied"
                                                  : fmt::format("replaying: applied lsn {} of {}", applied, durable_lsn)});
  report.checks.push_back(socket_check(d.server));
  report.checks.push_back({"database_reachable", d.writer.database_up(),
                           d.writer.database_up() ? "connected, and no batch or check failing" : "PostgreSQL unreachable or failing; retrying"});
  // A line is refused (busy) as soon as it would not fit, so the backlog never exceeds the
  // budget and `unapplied < budget` would never fail; not ready from 90% of the budget on, while
  // producers still get acks, tells a load balancer to send elsewhere before they get busy.
  const auto used = d.pipeline.budget_used_bytes();
  report.checks.push_back({"backlog_under_budget", used < backlog_ready_limit,
                           fmt::format("{} of {} log bytes used: unapplied, or applied and waiting for the archive (not "
                                       "ready from {})",
                                       used, d.options.wal_max_bytes, backlog_ready_limit)});
  const double age = std::max(0.0, seconds_since(d.writer.heartbeat()));  // < 0: a retry's wait
  report.checks.push_back({"writer_running", age < stall_limit,
                           fmt::format("writer loop {:.1f} s ago (limit {} s)", age, d.options.writer_stall_timeout.count())});
  return report;
}

// Watches the writer from the main thread while the daemon runs: feeds the systemd watchdog only
// while the writer loop is younger than --writer-stall-timeout, logs when it stalls and resumes,
// and sends STATUS= (and the readiness metrics) once a second. Main thread only.
class Supervisor {
 public:
  Supervisor(const Daemon& daemon, pm::HttpEndpoint& http) : d_(daemon), http_(http) {
    if (watchdog_) {
      tick_ = std::min(tick_, std::chrono::microseconds(watchdog_usec_ / 4));
      d_.log.info("systemd watchdog every {} ms; fed while the writer loop is younger than {} s", watchdog_usec_ / 1000,
                  d_.options.writer_stall_timeout.count());
    }
  }

  // How long the main thread may wait between two checks: the watchdog is fed from this loop,
  // so the tick must be well inside WatchdogSec.
  std::chrono::microseconds tick() const { return tick_; }

  void check_writer() {
    const double heartbeat_age = std::max(0.0, seconds_since(d_.writer.heartbeat()));  // < 0: a retry's wait
    d_.metrics.writer_heartbeat_age_seconds.Set(heartbeat_age);
    const bool writer_healthy = heartbeat_age < static_cast<double>(d_.options.writer_stall_timeout.count());
    if (!writer_healthy && !writer_stalled_)
      d_.log.error("the writer thread has not gone round its loop for {:.0f} s (limit {} s){}", heartbeat_age,
                   d_.options.writer_stall_timeout.count(), watchdog_ ? "; no longer feeding the systemd watchdog" : "");
    else if (writer_healthy && writer_stalled_)
      d_.log.warn("the writer thread is running again");
    writer_stalled_ = !writer_healthy;
    if (watchdog_ && writer_healthy) {
      sd_notify(0, "WATCHDOG=1");
      d_.metrics.watchdog_pings.Increment();
    }
  }

  // At most once a second.
  void publish_status() {
    if (std::chrono::steady_clock::now() - last_status_ < std::chrono::seconds(1)) return;
    last_status_ = std::chrono::steady_clock::now();
    const pm::ReadinessReport report = http_.readiness();
    std::string failing;
    for (const auto& check : report.checks) {
      d_.metrics.readiness_check(check.name).Set(check.ok ? 1 : 0);
      if (!check.ok) failing += (failing.empty() ? "" : ",") + check.name;
      if (check.name == "socket_open" && d_.server.listening()) log_socket_change(check);
    }
    // After the checks: once a scrape has shown this `ready`, the next shows the checks it came from.
    d_.metrics.ready.Set(report.ready() ? 1 : 0);
    const auto used = d_.pipeline.budget_used_bytes();
    d_.metrics.wal_budget_used_bytes.Set(static_cast<double>(used));
    sd_notifyf(0, "STATUS=%zu producers, %llu events unapplied, %llu log bytes of the budget used, database %s, %s%s",
               d_.server.connections(), static_cast<unsigned long long>(d_.metrics.wal_unapplied_events.Value()),
               static_cast<unsigned long long>(used), d_.writer.database_up() ? "up" : "down",
               report.ready() ? "ready" : "not ready: ", failing.c_str());
  }

 private:
  const Daemon& d_;
  pm::HttpEndpoint& http_;
  std::uint64_t watchdog_usec_ = 0;
  const bool watchdog_ = sd_watchdog_enabled(0, &watchdog_usec_) > 0 && watchdog_usec_ > 0;
  std::chrono::microseconds tick_{1'000'000};
  std::chrono::steady_clock::time_point last_status_{};
  bool writer_stalled_ = false;
  bool socket_failing_ = false;

  // Logs when producers can no longer reach the daemon (its socket file removed or replaced), and
  // when they can again.
  void log_socket_change(const pm::ReadinessCheck& check) {
    if (!check.ok && !socket_failing_) d_.log.error("not ready: {}", check.detail);
    else if (check.ok && socket_failing_) d_.log.warn("the socket is reachable again");
    socket_failing_ = !check.ok;
  }
};

// ---- Run and shut down. ----

// Signals are taken synchronously by the main thread; they are blocked before any thread starts.
// SIGHUP, SIGUSR1 and SIGUSR2 are taken too, and only logged: their default action ended the daemon
// at once (an operator's `kill -HUP` out of reload habit, a closed terminal), with batches in
// flight, and systemd did not restart it (a death by SIGHUP is a clean exit to Restart=on-failure).
sigset_t block_stop_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  for (const int sig : {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2}) sigaddset(&signals, sig);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  return signals;
}

// How long a starting daemon waits for a pm-ingestctl command holding its log's or archive's lock
// (operator_locks.h); well inside the unit's TimeoutStartSec=300.
constexpr std::chrono::seconds kOperatorCommandWait{60};

// Whether SIGINT or SIGTERM is waiting: they stay blocked (pending) from before the log's recovery
// until wait_for_stop takes them, so a stop asked for while the daemon started is seen here.
bool stop_requested_while_starting(const sigset_t& signals) {
  sigset_t pending;
  sigemptyset(&pending);
  if (sigpending(&pending) != 0) return false;
  return (sigismember(&signals, SIGINT) && sigismember(&pending, SIGINT)) ||
         (sigismember(&signals, SIGTERM) && sigismember(&pending, SIGTERM));
}

// Starts the writer, then the server; false (after logging why, the writer stopped) when the
// socket cannot be served.
bool start_serving(const Daemon& d, const pm::ServerConfig& server_config) {
  d.writer.start();
  try {
    d.server.start();
  } catch (const std::exception& e) {
    d.log.critical("{}", e.what());
    d.writer.stop();
    return false;
  }
  d.log.info("ready: producers connect to {}; http://{}/metrics, /healthz, /readyz",
             server_config.inherited_fd >= 0 ? "the systemd socket" : d.options.socket_path, d.options.metrics_listen);
  sd_notify(0, "READY=1\nSTATUS=accepting producers");
  return true;
}

// Waits for SIGINT/SIGTERM (or a fatal writer error, which raises SIGTERM), supervising meanwhile;
// SIGHUP, SIGUSR1 and SIGUSR2 are logged and ignored.
void wait_for_stop(const sigset_t& signals, Supervisor& supervisor, spdlog::logger& log) {
  for (;;) {
    const auto tick = supervisor.tick();
    const auto tick_s = std::chrono::duration_cast<std::chrono::seconds>(tick);
    timespec ts{static_cast<time_t>(tick_s.count()), static_cast<long>((tick - tick_s).count() * 1000)};
    const int sig = sigtimedwait(&signals, nullptr, &ts);
    if (sig == SIGINT || sig == SIGTERM) return;
    if (sig > 0)
      log.warn("received {} and ignored it: pm-ingestd has no reload; restart it to apply a changed configuration "
               "(SIGTERM stops it)",
               sigabbrev_np(sig) ? std::string("SIG") + sigabbrev_np(sig) : std::to_string(sig));
    supervisor.check_writer();
    supervisor.publish_status();
    pm::give_back_pending_memory();  // of connections that went idle after a large line
  }
}

// Waits for the stop to finish within `timeout`; false when it did not, or when a second SIGINT or
// SIGTERM came meanwhile (the operator's "now": with a long --shutdown-timeout and a batch stuck
// behind a lock, only kill -9 ended it). Other signals are taken and ignored.
bool stopped_in_time(std::future<void>& done, std::chrono::seconds timeout, const sigset_t& signals, spdlog::logger& log) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  constexpr auto kSlice = std::chrono::milliseconds(50);
  while (done.wait_for(std::min<std::chrono::steady_clock::duration>(kSlice, deadline - std::chrono::steady_clock::now())) !=
         std::future_status::ready) {
    if (std::chrono::steady_clock::now() >= deadline) {
      log.warn("shutdown took longer than {} s; exiting now (unapplied events are replayed at the next start)", timeout.count());
      return false;
    }
    const timespec now{0, 0};
    siginfo_t info{};
    const int sig = sigtimedwait(&signals, &info, &now);
    // The writer's fatal error raises SIGTERM itself (kill(getpid())): not the operator's second.
    if ((sig == SIGINT || sig == SIGTERM) && !(info.si_code == SI_USER && info.si_pid == ::getpid())) {
      log.warn("a second {} while stopping; exiting now (unapplied events are replayed at the next start)",
               sig == SIGINT ? "SIGINT" : "SIGTERM");
      return false;
    }
  }
  return true;
}

// Stops accepting, finishes the batch in flight and returns the exit code; past
// --shutdown-timeout, or at a second stop signal, it exits at once (unapplied events are replayed
// at the next start). A part that fails to stop makes the exit code 1.
int shut_down(const Daemon& d, const sigset_t& signals) {
  d.log.info("stopping: no new connections, finishing the batch in flight");
  sd_notify(0, "STOPPING=1\nSTATUS=stopping: finishing the batch in flight");
  // Every part is stopped, whatever another's stop throws (the first exception is rethrown at the
  // end): a writer left running was joined later by its destructor, unbounded.
  const auto stop_parts = [&] {
    std::exception_ptr first;
    const auto stop = [&](const auto& part_stop) {
      try {
        part_stop();
      } catch (...) {
        if (!first) first = std::current_exception();
      }
    };
    stop([&] { d.pipeline.close(); });
    stop([&] { d.server.stop(); });
    stop([&] { d.writer.stop(); });
    if (d.archiver) stop([&] { d.archiver->stop(); });
    if (first) std::rethrow_exception(first);
  };
  std::future<void> done;
  try {
    done = std::async(std::launch::async, stop_parts);
  } catch (const std::system_error& e) {  // no thread left (a pids limit): std::terminate before
    d.log.warn("cannot start a thread to bound the stop by --shutdown-timeout ({}); stopping without that bound", e.what());
    std::promise<void> stopped;
    try {
      stop_parts();
      stopped.set_value();
    } catch (...) {  // reported below, as from the thread
      stopped.set_exception(std::current_exception());
    }
    done = stopped.get_future();
  }
  if (!stopped_in_time(done, d.options.shutdown_timeout, signals, d.log)) {
    d.log.flush();
    std::_Exit(d.fatal_exit ? d.fatal_exit.load() : 0);
  }
  try {
    done.get();
  } catch (const std::exception& e) {  // dropped before: "stopped", exit 0
    d.log.error("stopping failed: {}", pm::redact_url(e.what()));
    if (d.fatal_exit == 0) d.fatal_exit = 1;
  }
  d.log.info("stopped; applied up to lsn {} of {}", d.writer.applied_lsn(), d.wal.durable().lsn);
  return d.fatal_exit.load();
}

// Builds the parts in dependency order (they are destroyed in reverse), runs until SIGINT/SIGTERM
// and returns the exit code.
int run(const pm::DaemonOptions& options, const sigset_t& signals, const std::shared_ptr<spdlog::logger>& log) {
  pm::IngestMetrics metrics(PM_VERSION);
  metrics.wal_budget_bytes.Set(static_cast<double>(options.wal_max_bytes));
  metrics.event_visible_alert_threshold_seconds.Set(options.freshness_alert_seconds);
  metrics.writer_connections.Set(static_cast<double>(options.writer_connections));
  int exit_code = 0;
  std::vector<std::string> lock_paths{pm::wal::path_in(options.wal_dir, pm::wal::kLockFileName)};
  if (!options.archive_dir.empty()) lock_paths.push_back(pm::wal::path_in(options.archive_dir, pm::archive::kArchiveLockFileName));
  switch (pm::wait_for_operator_commands(lock_paths, kOperatorCommandWait, stop_requested_while_starting, signals, *log)) {
    case pm::OperatorLocks::Free: break;
    case pm::OperatorLocks::StillHeld: return 1;
    case pm::OperatorLocks::StopAsked:
      log->info("stop requested while waiting for an operator command; exiting before opening the log");
      return 0;
  }
  std::unique_ptr<pm::archive::SegmentArchiver> archiver;
  try {
    archiver = make_archiver(options, metrics, log);
  } catch (const pm::archive::ArchiveForeignLog& e) {  // another daemon's archive directory: before anything else can fail
    log->critical("{}; refusing to start", e.what());
    return 2;
  }
  // The log first: it takes the directory's lock, so a second daemon on it exits 2 naming the
  // first, before it fails on the metrics address its twin holds (exit 1, which systemd restarts).
  const std::unique_ptr<pm::wal::WriteAheadLog> wal = open_log(options, log, metrics, archiver.get(), exit_code);
  if (!wal) return exit_code;
  const std::unique_ptr<pm::HttpEndpoint> http = open_http_endpoint(options, metrics, *log);
  if (!http) return 1;
  if (archiver)
    if (const int refused = start_archiver(*archiver, *wal, *log); refused != 0) return refused;
  const ArchiverStop archiver_stop{archiver.get()};  // before the log goes

  pm::Database db(database_config(options));
  pm::EventQueue queue(options.queue_max_events, options.queue_max_bytes);
  std::atomic<int> fatal_exit{0};
  pm::WriterConfig writer_cfg = writer_config(options);
  // Applied segments go to the archive, or are deleted on a thread of their own: never on the writer's.
  std::unique_ptr<pm::wal::SegmentRemover> remover;
  if (archiver) {
    writer_cfg.retention.release_before = [&](std::uint64_t segment) { archiver->release_before(segment); };
  } else {
    remover = std::make_unique<pm::wal::SegmentRemover>(*wal, [&](const std::string& m) { log->error("{}", m); });
    writer_cfg.retention.release_before = [&](std::uint64_t segment) { remover->release_before(segment); };
  }
  pm::BatchWriter writer(writer_cfg, db, *wal, queue, metrics, log, [&](const std::string&) {
    fatal_exit = 2;
    ::kill(::getpid(), SIGTERM);
  });
  // The budget counts from the applied position, or from an applied segment still waiting for the archive.
  pm::IngestPipeline pipeline(options.wal_max_bytes, *wal, queue, metrics, [&] {
    const std::uint64_t applied = writer.applied_log_offset();
    return archiver ? std::min(applied, archiver->kept_from_log_offset()) : applied;
  });
  const pm::ServerConfig server_cfg = server_config(options, *log);
  pm::Server server(server_cfg, pipeline, metrics, log);

  const Daemon daemon{options, *log, metrics, *wal, writer, pipeline, server, archiver.get(), fatal_exit};
  http->set_readiness([&daemon] { return readiness_report(daemon); });
  ReadinessBinding readiness_binding{*http};
  // A stop asked for during the log's recovery: exit without READY=1 and without taking producers
  // (it served them, and told systemd it was ready, before it took the signal).
  if (stop_requested_while_starting(signals)) {
    log->info("stop requested while starting; exiting before serving (the log is recovered, its unapplied events wait for the next start)");
    return 0;
  }
  // From here every way out goes through shut_down, bounded by --shutdown-timeout: an exception
  // unwound to main() ran the parts' destructors unbounded (a batch behind a lock, an fsync on a
  // hung archive mount).
  try {
    if (!start_serving(daemon, server_cfg)) return 1;
    Supervisor supervisor(daemon, *http);
    wait_for_stop(signals, supervisor, *log);
  } catch (const std::exception& e) {
    log->critical("cannot go on: {}; stopping, exit 1", pm::redact_url(e.what()));
    if (fatal_exit == 0) fatal_exit = 1;
  }
  return shut_down(daemon, signals);
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
  pm::scrub_environment_passwords();
  if (!parsed) return 0;
  const pm::DaemonOptions& options = *parsed;

  const sigset_t signals = block_stop_signals();
  auto log = make_logger(options.log_level);
  log->info("pm-ingestd {} starting: wal {}, database {}, instance '{}', trade timestamps in {}", PM_VERSION,
            options.wal_dir, pm::redact_url(options.database_url), options.instance_id,
            pm::to_string(options.trade_timestamp_unit));
  for (const std::string& notice : options.moot_variables) log->warn("{}", notice);
  try {
    return run(options, signals, log);
  } catch (const std::exception& e) {  // a part that could not start (a thread refused under a pids limit, ...)
    log->critical("cannot run: {}; exiting 1", pm::redact_url(e.what()));
    return 1;
  }
}
