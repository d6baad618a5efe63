#pragma once
// IngestMetrics: every Prometheus series pm-ingestd exports, created once in one registry.
// Names follow the Prometheus conventions (pm_ingest_ prefix, base units, _total counters,
// _seconds/_bytes). Members are references into the registry: increment or set them from any
// thread (prometheus-cpp metrics are thread-safe). The object owns the registry's families; keep
// it alive while anything may update a metric or serve /metrics.
#include <array>
#include <memory>
#include <string>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace pm {

// The highest finite bucket of pm_ingest_event_visible_seconds: histogram_quantile() never says
// more, so a freshness alert bound must stay below it.
inline constexpr double kEventVisibleTopBucketSeconds = 300;

class IngestMetrics {
  // Declared first: every member below is initialised from these.
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& received_family_;
  prometheus::Family<prometheus::Counter>& rejected_family_;
  prometheus::Family<prometheus::Counter>& stale_family_;
  prometheus::Family<prometheus::Counter>& refused_family_;
  prometheus::Family<prometheus::Counter>& closed_family_;
  prometheus::Family<prometheus::Counter>& wal_errors_family_;
  prometheus::Family<prometheus::Counter>& recovery_family_;
  prometheus::Family<prometheus::Counter>& rows_family_;
  prometheus::Family<prometheus::Counter>& dedup_family_;
  prometheus::Family<prometheus::Counter>& db_errors_family_;
  prometheus::Family<prometheus::Gauge>& checks_family_;
  prometheus::Family<prometheus::Counter>& hellos_family_;
  prometheus::Family<prometheus::Counter>& polymarket_family_;
  prometheus::Family<prometheus::Histogram>& batch_phase_family_;

 public:
  explicit IngestMetrics(const std::string& version = "unknown");
  IngestMetrics(const IngestMetrics&) = delete;
  IngestMetrics& operator=(const IngestMetrics&) = delete;

  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  // Producer side.
  prometheus::Counter& received_trades;
  prometheus::Counter& received_triggers;
  prometheus::Counter& rejected(const std::string& reason);  // protocol reasons
  prometheus::Counter& stale_trades;    // G1: event time older than --stale-after on arrival
  prometheus::Counter& stale_triggers;
  prometheus::Gauge& producers_connected;
  prometheus::Counter& connections_accepted;
  prometheus::Counter& connections_refused(const std::string& reason);
  // Connections the daemon closed on a producer: line_timeout, reply_timeout.
  prometheus::Counter& connections_closed(const std::string& reason);
  // Accepted hellos, by the format they declared (pm-ingestd and the three Polymarket formats).
  prometheus::Counter& hellos(const std::string& format);
  // Messages of accepted lines of the Polymarket formats, by format and event type (clob-ws-market:
  // its event types and `unknown`; the REST formats: `trade`). Both labels come from fixed lists.
  prometheus::Counter& polymarket_messages(const std::string& format, const std::string& event_type);

  // Write-ahead log.
  prometheus::Counter& wal_appended_bytes;
  prometheus::Counter& wal_appended_records;
  prometheus::Histogram& wal_fsync_seconds;
  // A connection's wait from submitting a chunk's events to their durability (group commit
  // queueing + write + fdatasync): the daemon's share of ack latency.
  prometheus::Histogram& durable_wait_seconds;
  prometheus::Counter& wal_write_errors(const std::string& kind);  // disk_full, io_error
  prometheus::Gauge& wal_unapplied_bytes;
  prometheus::Gauge& wal_unapplied_events;
  prometheus::Gauge& wal_disk_bytes;
  prometheus::Gauge& wal_segments;
  // Failed removals of applied segments (each attempt, at start-up too): they stay in the live log.
  prometheus::Counter& wal_remove_errors;

  // Queue and writer.
  prometheus::Gauge& queue_events;
  prometheus::Gauge& writer_batches_in_flight;  // handed to the writer's connections, outcome not yet recorded
  prometheus::Gauge& writer_connections;        // --writer-connections: with batch time, how busy they are
  prometheus::Counter& queue_overflow_events;  // left on disk, read back by the writer
  prometheus::Histogram& batch_events;
  prometheus::Histogram& batch_commit_seconds;
  // One committed batch's transaction by phase (begin, trades, durable, turn, finish, commit): where the
  // time between a batch's start and its rows becoming visible goes.
  prometheus::Histogram& batch_phase_seconds(const std::string& phase);
  // Freshness: from an event's arrival to the commit that made it visible, one observation per
  // event (observed per batch with ObserveMultiple over event_visible_buckets).
  const prometheus::Histogram::BucketBoundaries event_visible_buckets;
  prometheus::Histogram& event_visible_seconds;
  prometheus::Histogram& event_waiting_seconds;  // the part of the above before its batch's transaction began
  prometheus::Gauge& event_visible_alert_threshold_seconds;  // --freshness-alert-seconds
  prometheus::Counter& rows_written(const std::string& table);
  prometheus::Counter& dedup_trade;
  prometheus::Counter& dedup_trigger_same_token;
  prometheus::Counter& dedup_trigger_other_token;
  prometheus::Counter& dead_lettered;
  prometheus::Counter& applied_events;
  prometheus::Counter& log_catchup_events;  // events the writer read back from the log
  // The writer's failed attempts to read events back from its log (a segment the system refused to
  // open); each is retried, the events wait in the log meanwhile.
  prometheus::Counter& wal_read_errors;

  // Lag and health.
  prometheus::Gauge& lag_oldest_unapplied_seconds;
  prometheus::Gauge& newest_applied_event_age_seconds;
  prometheus::Gauge& newest_applied_event_timestamp_seconds;
  prometheus::Gauge& database_up;
  prometheus::Counter& database_errors(const std::string& kind);
  prometheus::Counter& database_stale_host_answers;  // a host name's last good addresses used (name servers silent)
  prometheus::Gauge& replay_done;

  // Operations (set by the daemon's main loop once a second).
  prometheus::Gauge& ready;                          // 1 while /readyz answers 200
  prometheus::Gauge& readiness_check(const std::string& check);  // 1 ok, 0 failing, per /readyz check
  prometheus::Gauge& writer_heartbeat_age_seconds;   // since the writer thread's last loop iteration
  prometheus::Gauge& wal_budget_bytes;               // --wal-max-bytes
  // What counts against it: unapplied bytes, and applied segments still waiting for the archive.
  prometheus::Gauge& wal_budget_used_bytes;
  prometheus::Counter& watchdog_pings;               // WATCHDOG=1 sent to systemd
  prometheus::Gauge& start_time_seconds;             // process start, Unix time

  // What recovery found at start (wal_recovery_report.h), by kind; bytes cut off torn tails.
  prometheus::Counter& wal_recovery_findings(const std::string& kind);
  prometheus::Counter& wal_recovery_truncated_bytes;
  // Failover safety (ingest/writer/log_retention.h): as of the last look at the primary's standbys.
  prometheus::Gauge& replication_standbys;
  prometheus::Gauge& replication_lag_bytes;
  prometheus::Gauge& wal_segments_awaiting_replication;
  // The archive of applied segments (--archive-dir; ingest/archive/segment_archiver.h).
  prometheus::Counter& archived_segments;        // segments archived since start
  prometheus::Counter& archived_bytes;           // their size in the live log (uncompressed)
  prometheus::Counter& archive_errors;           // failed attempts (archive, directory, index, retention; each one retried), damage found at a load
  prometheus::Counter& archive_removed_segments; // deleted by --archive-max-bytes / --archive-max-age
  prometheus::Gauge& archive_segments;           // files in the archive now
  prometheus::Gauge& archive_bytes;              // their size on disk (compressed)
  prometheus::Gauge& archive_oldest_event_timestamp_seconds;  // arrival time of the oldest archived event
  prometheus::Gauge& archive_pending_segments;   // applied live segments waiting to be archived
  prometheus::Gauge& archive_damaged_files;      // damaged or lost archive files, and gaps between them, found at the last index load

};

}  // namespace pm
