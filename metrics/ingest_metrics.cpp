#include "metrics/ingest_metrics.h"

#include <limits>

namespace pm {

namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Registry;

prometheus::Family<prometheus::Counter>& counters(Registry& r, const std::string& name, const std::string& help) {
  return BuildCounter().Name(name).Help(help).Register(r);
}

prometheus::Gauge& gauge(Registry& r, const std::string& name, const std::string& help) {
  return BuildGauge().Name(name).Help(help).Register(r).Add({});
}

prometheus::Counter& counter(Registry& r, const std::string& name, const std::string& help) {
  return counters(r, name, help).Add({});
}

prometheus::Histogram& histogram(Registry& r, const std::string& name, const std::string& help,
                                 prometheus::Histogram::BucketBoundaries buckets) {
  return BuildHistogram().Name(name).Help(help).Register(r).Add({}, std::move(buckets));
}

// fdatasync, commit and batch phase latencies: 50 us to 2 minutes (a batch may run up to
// PostgreSQL's 60 s statement timeout, and its begin phase includes retries).
prometheus::Histogram::BucketBoundaries latency_buckets() {
  return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
}

// Arrival to visible in PostgreSQL: 1 ms (an idle writer) to 5 minutes (a replayed backlog).
prometheus::Histogram::BucketBoundaries visible_buckets() {
  return {0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, kEventVisibleTopBucketSeconds};
}

prometheus::Histogram::BucketBoundaries batch_size_buckets() {
  return {1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000};
}

}  // namespace

IngestMetrics::IngestMetrics(const std::string& version)
    : registry_(std::make_shared<Registry>()),
      received_family_(counters(*registry_, "pm_ingest_events_received_total", "Valid events received from producers and made durable (acked), by type; a line answered busy counts when it is sent again and taken.")),
      rejected_family_(counters(*registry_, "pm_ingest_events_rejected_total", "Lines rejected with an error reply, by protocol reason (a line still unfinished at --line-timeout gets busy and is counted in pm_ingest_connections_closed_total instead, unless already too_long; busy replies while the daemon stops are counted as shutting_down).")),
      stale_family_(counters(*registry_, "pm_ingest_stale_events_total", "Events whose own time was older than --stale-after on arrival (G1), by type; counted as pm_ingest_events_received_total is.")),
      refused_family_(counters(*registry_, "pm_ingest_connections_refused_total", "Producer connections refused, by reason.")),
      closed_family_(counters(*registry_, "pm_ingest_connections_closed_total", "Producer connections the daemon closed, by reason (line_timeout: a partial line held past --line-timeout; reply_timeout: replies not read for --reply-timeout).")),
      wal_errors_family_(counters(*registry_, "pm_ingest_wal_write_errors_total", "Failed write-ahead log appends, by kind.")),
      recovery_family_(counters(*registry_, "pm_ingest_wal_recovery_findings_total", "What log recovery found and repaired at start-up, by kind (torn_tail_cut, temporary_removed, applied_segment_removed, state_created).")),
      rows_family_(counters(*registry_, "pm_ingest_rows_written_total", "Rows inserted or upserted in PostgreSQL, by table.")),
      dedup_family_(counters(*registry_, "pm_ingest_dedup_hits_total", "Events acknowledged but not stored because they were already stored, by kind.")),
      db_errors_family_(counters(*registry_, "pm_ingest_database_errors_total", "PostgreSQL errors seen by the writer, by kind.")),
      checks_family_(BuildGauge().Name("pm_ingest_readiness_check").Help("1 when this /readyz check passes, else 0, by check.").Register(*registry_)),
      hellos_family_(counters(*registry_, "pm_ingest_hellos_total", "Hello lines accepted (line 1 of a connection declaring its payload format), by format.")),
      polymarket_family_(counters(*registry_, "pm_ingest_polymarket_messages_total", "Messages in accepted lines of the Polymarket payload formats, by format and event_type (clob-ws-market event types, unknown, or trade for the REST formats); a line with events counts once they are durable.")),
      batch_phase_family_(BuildHistogram().Name("pm_ingest_batch_phase_duration_seconds").Help("Time one committed batch's transaction spent in each phase: begin (a connection, earlier runs the database retried), trades (BEGIN, its settings and ordering lock, sent with the COPY, and the COPY), finish (watermarks, triggers, checkpoint, run once the batch before it has ended: most of the wait for it), durable (the wait for its events' fdatasync in the log, which runs while the batch starts), turn (the rest of the wait for the batch before), commit.").Register(*registry_)),
      received_trades(received_family_.Add({{"type", "trade"}})),
      received_triggers(received_family_.Add({{"type", "trigger"}})),
      stale_trades(stale_family_.Add({{"type", "trade"}})),
      stale_triggers(stale_family_.Add({{"type", "trigger"}})),
      producers_connected(gauge(*registry_, "pm_ingest_producers_connected", "Producer connections open now.")),
      connections_accepted(counter(*registry_, "pm_ingest_connections_accepted_total", "Producer connections accepted.")),
      wal_appended_bytes(counter(*registry_, "pm_ingest_wal_appended_bytes_total", "Bytes appended to the write-ahead log (records with headers).")),
      wal_appended_records(counter(*registry_, "pm_ingest_wal_appended_records_total", "Records appended to the write-ahead log.")),
      wal_fsync_seconds(histogram(*registry_, "pm_ingest_wal_fsync_duration_seconds", "Duration of each group commit's fdatasync.", latency_buckets())),
      durable_wait_seconds(histogram(*registry_, "pm_ingest_durable_wait_seconds", "Time a connection waits from submitting a chunk of events until they are durable in the log.", latency_buckets())),
      wal_unapplied_bytes(gauge(*registry_, "pm_ingest_wal_unapplied_bytes", "Log bytes durable but not yet applied to PostgreSQL.")),
      wal_unapplied_events(gauge(*registry_, "pm_ingest_wal_unapplied_events", "Events durable in the log but not yet applied to PostgreSQL.")),
      wal_disk_bytes(gauge(*registry_, "pm_ingest_wal_disk_bytes", "Bytes of all log segment files on disk, the zeros of a segment started from a spare file and the spare being prepared included.")),
      wal_segments(gauge(*registry_, "pm_ingest_wal_segments", "Log segment files on disk.")),
      wal_remove_errors(counter(*registry_, "pm_ingest_wal_remove_errors_total", "Failed attempts to remove an applied (and, with --archive-dir, archived) log segment, at start-up or at runtime (a permission, an I/O error): it and the later applied segments stay in --wal-dir, counted against --wal-max-bytes, until a later attempt removes them.")),
      queue_events(gauge(*registry_, "pm_ingest_queue_events", "Events waiting in the in-memory queue for the writer.")),
      writer_batches_in_flight(gauge(*registry_, "pm_ingest_writer_batches_in_flight", "Batches handed to the writer's PostgreSQL connections whose outcome is not recorded yet (at most --writer-connections).")),
      writer_connections(gauge(*registry_, "pm_ingest_writer_connections", "PostgreSQL connections the writer applies batches on at once (--writer-connections). rate(pm_ingest_batch_commit_duration_seconds_sum) divided by this is the share of the time they are busy.")),
      queue_overflow_events(counter(*registry_, "pm_ingest_queue_overflow_events_total", "Events not queued because the queue was full (the writer reads them back from the log).")),
      batch_events(histogram(*registry_, "pm_ingest_batch_events", "Events per applied batch.", batch_size_buckets())),
      batch_commit_seconds(histogram(*registry_, "pm_ingest_batch_commit_duration_seconds", "Time to apply and commit one batch transaction.", latency_buckets())),
      event_visible_buckets(visible_buckets()),
      event_visible_seconds(histogram(*registry_, "pm_ingest_event_visible_seconds", "Time from an event's arrival to the commit that made it visible in PostgreSQL, per event.", event_visible_buckets)),
      event_waiting_seconds(histogram(*registry_, "pm_ingest_event_waiting_seconds", "Time from an event's arrival to the start of the batch transaction that applied it, per event: the part of pm_ingest_event_visible_seconds before PostgreSQL (waiting for a free writer connection or a CPU, or to be read back from the log).", event_visible_buckets)),
      event_visible_alert_threshold_seconds(gauge(*registry_, "pm_ingest_event_visible_alert_threshold_seconds", "The operator's freshness bound (--freshness-alert-seconds): PmIngestdStaleRows fires while the p99 of pm_ingest_event_visible_seconds is above it.")),
      dedup_trade(dedup_family_.Add({{"kind", "trade"}})),
      dedup_trigger_same_token(dedup_family_.Add({{"kind", "trigger_same_token"}})),
      dedup_trigger_other_token(dedup_family_.Add({{"kind", "trigger_other_token"}})),
      dead_lettered(counter(*registry_, "pm_ingest_dead_lettered_events_total", "Events PostgreSQL rejected on their own, stored in pm_dead_letters.")),
      applied_events(counter(*registry_, "pm_ingest_applied_events_total", "Events applied to PostgreSQL (stored, deduplicated or dead-lettered).")),
      log_catchup_events(counter(*registry_, "pm_ingest_log_catchup_events_total", "Events the writer read back from the log instead of the queue, each counted once (a batch read again from the log to be retried after a failure is not counted again).")),
      wal_read_errors(counter(*registry_, "pm_ingest_wal_read_errors_total", "Failed attempts of the writer to read events back from its log: a segment the system refused to open (a permission, no file descriptor left). Each is retried after a backoff; the acked events wait in the log, unapplied, until a read succeeds.")),
      lag_oldest_unapplied_seconds(gauge(*registry_, "pm_ingest_lag_oldest_unapplied_seconds", "Age of the oldest event durable in the log but not applied (0 when caught up). While that event cannot be read back from the log (a segment the system refuses to open), a lower bound: the time since it was first seen durable and unapplied.")),
      newest_applied_event_age_seconds(gauge(*registry_, "pm_ingest_newest_applied_event_age_seconds", "Age of the newest applied event's own timestamp (NaN until an event is applied after the start).")),
      newest_applied_event_timestamp_seconds(gauge(*registry_, "pm_ingest_newest_applied_event_timestamp_seconds", "Own timestamp of the newest applied event, as Unix time (NaN until an event is applied after the start).")),
      database_up(gauge(*registry_, "pm_ingest_database_up", "1 when the writer is connected to PostgreSQL and no batch or check has failed since without succeeding after, else 0.")),
      database_stale_host_answers(counter(*registry_, "pm_ingest_database_stale_host_answers_total", "Database host names given their last good addresses (serve-stale), per connection attempt or health check, because the name servers did not answer in time.")),
      replay_done(gauge(*registry_, "pm_ingest_replay_done", "1 once the log present at start-up has been applied.")),
      ready(gauge(*registry_, "pm_ingest_ready", "1 while every readiness check passes (/readyz answers 200), else 0.")),
      writer_heartbeat_age_seconds(gauge(*registry_, "pm_ingest_writer_heartbeat_age_seconds", "Time since the writer thread last went round its loop (the systemd watchdog is fed only while this is small).")),
      wal_budget_bytes(gauge(*registry_, "pm_ingest_wal_budget_bytes", "Log bytes at which new lines get busy (--wal-max-bytes); what counts is pm_ingest_wal_budget_used_bytes.")),
      wal_budget_used_bytes(gauge(*registry_, "pm_ingest_wal_budget_used_bytes",
                                  "Log bytes counted against --wal-max-bytes: unapplied, and applied but still waiting for the "
                                  "archive. New lines get busy when they would take it past the budget.")),
      watchdog_pings(counter(*registry_, "pm_ingest_watchdog_pings_total", "WATCHDOG=1 notifications sent to systemd.")),
      start_time_seconds(gauge(*registry_, "pm_ingest_start_time_seconds", "Start time of the daemon, as Unix time.")),
      wal_recovery_truncated_bytes(counter(*registry_, "pm_ingest_wal_recovery_truncated_bytes_total", "Bytes of torn last groups cut off the log by recovery at start-up.")),
      replication_standbys(gauge(*registry_, "pm_ingest_replication_standbys", "Standbys the PostgreSQL primary shows (physical replication slots and WAL senders), as of the writer's last look.")),
      replication_lag_bytes(gauge(*registry_, "pm_ingest_replication_lag_bytes", "WAL bytes the slowest standby has not flushed yet, as of the writer's last look (0 without standbys; NaN while it cannot be known: fewer standbys shown than --min-standbys, or positions the role cannot see).")),
      wal_segments_awaiting_replication(gauge(*registry_, "pm_ingest_wal_segments_awaiting_replication", "Applied log segments kept until every standby has flushed the commits that applied them (flushed on the primary already).")),
      archived_segments(counter(*registry_, "pm_ingest_archived_segments_total", "Applied log segments compressed into the archive (--archive-dir).")),
      archived_bytes(counter(*registry_, "pm_ingest_archived_bytes_total", "Bytes of log segments archived, as they were in the live log (uncompressed).")),
      archive_errors(counter(*registry_, "pm_ingest_archive_errors_total", "Failures of the archiver (--archive-dir), each retried with the live segments kept meanwhile: an attempt to archive a segment (disk full, I/O error, a segment it cannot read), to use the archive directory or to load or write the archive index, and a retention pass (--archive-max-bytes, --archive-max-age) that failed; also, at each load of the index (at start), each damaged archive file found and a damaged index (rebuilt), which pm_ingest_archive_damaged_files also counts but for the index.")),
      archive_removed_segments(counter(*registry_, "pm_ingest_archive_removed_segments_total", "Archived segments deleted by --archive-max-bytes or --archive-max-age.")),
      archive_segments(gauge(*registry_, "pm_ingest_archive_segments", "Segment files in the archive now.")),
      archive_bytes(gauge(*registry_, "pm_ingest_archive_bytes", "Size of the archive's segment files on disk (compressed).")),
      archive_oldest_event_timestamp_seconds(gauge(*registry_, "pm_ingest_archive_oldest_event_timestamp_seconds", "Arrival time (Unix time) of the oldest event in the archive; 0 when it is empty.")),
      archive_pending_segments(gauge(*registry_, "pm_ingest_archive_pending_segments", "Applied live log segments waiting to be archived (they are kept in --wal-dir and count against --wal-max-bytes).")),
      archive_damaged_files(gauge(*registry_, "pm_ingest_archive_damaged_files", "Archive files whose events cannot be read back, found when the archiver last loaded its index (at start): files whose header is damaged, files the index lists that are gone, and each gap between archive files (segments no file holds; retention's trim of the oldest is none). pm-ingestctl archive verify names them, and also reads every file's body.")) {
  BuildGauge()
      .Name("pm_ingest_build_info")
      .Help("Build information; the value is always 1.")
      .Register(*registry_)
      .Add({{"version", version}})
      .Set(1);
  for (const char* reason : {"parse", "schema", "range", "timestamp_units", "too_long", "busy", "shutting_down"}) rejected(reason);
  for (const char* table : {"polymarket_trades", "polymarket_first_triggers", "trade_watermarks", "trigger_watermarks", "pm_dead_letters"})
    rows_written(table);
  for (const char* reason : {"peer_credentials", "too_many", "too_many_per_uid", "no_thread", "no_fd"}) connections_refused(reason);
  for (const char* reason : {"line_timeout", "reply_timeout"}) connections_closed(reason);
  for (const char* kind : {"disk_full", "io_error"}) wal_write_errors(kind);
  for (const char* kind : {"torn_tail_cut", "temporary_removed", "applied_segment_removed", "state_created"}) wal_recovery_findings(kind);
  for (const char* format : {"pm-ingestd", "clob-ws-market", "data-api-trades", "clob-rest-trades"}) hellos(format);
  for (const char* type : {"last_trade_price", "book", "price_change", "best_bid_ask", "tick_size_change", "new_market",
                           "market_resolved", "unknown"})
    polymarket_messages("clob-ws-market", type);
  for (const char* format : {"data-api-trades", "clob-rest-trades"}) polymarket_messages(format, "trade");
  start_time_seconds.SetToCurrentTime();
  // Unknown until an event is applied after this start: 0 read as "applied just now" (age) or
  // 1970 on the dashboard's freshness panel while a restarted daemon waited for PostgreSQL.
  newest_applied_event_timestamp_seconds.Set(std::numeric_limits<double>::quiet_NaN());
  newest_applied_event_age_seconds.Set(std::numeric_limits<double>::quiet_NaN());
}

prometheus::Counter& IngestMetrics::rejected(const std::string& reason) { return rejected_family_.Add({{"reason", reason}}); }
prometheus::Counter& IngestMetrics::connections_refused(const std::string& reason) { return refused_family_.Add({{"reason", reason}}); }
prometheus::Counter& IngestMetrics::connections_closed(const std::string& reason) { return closed_family_.Add({{"reason", reason}}); }
prometheus::Counter& IngestMetrics::hellos(const std::string& format) { return hellos_family_.Add({{"format", format}}); }
prometheus::Counter& IngestMetrics::polymarket_messages(const std::string& format, const std::string& event_type) {
  return polymarket_family_.Add({{"format", format}, {"event_type", event_type}});
}
prometheus::Counter& IngestMetrics::wal_write_errors(const std::string& kind) { return wal_errors_family_.Add({{"kind", kind}}); }
prometheus::Counter& IngestMetrics::wal_recovery_findings(const std::string& kind) { return recovery_family_.Add({{"kind", kind}}); }
prometheus::Counter& IngestMetrics::rows_written(const std::string& table) { return rows_family_.Add({{"table", table}}); }
prometheus::Histogram& IngestMetrics::batch_phase_seconds(const std::string& phase) {
  return batch_phase_family_.Add({{"phase", phase}}, latency_buckets());
}
prometheus::Counter& IngestMetrics::database_errors(const std::string& kind) { return db_errors_family_.Add({{"kind", kind}}); }
prometheus::Gauge& IngestMetrics::readiness_check(const std::string& check) { return checks_family_.Add({{"check", check}}); }

}  // namespace pm
