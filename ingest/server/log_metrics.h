#pragma once
// count_log_metrics: the log's callbacks that feed IngestMetrics, set on its Options before it
// opens: each group commit (pm_ingest_wal_fsync_duration_seconds, appended bytes and records) and
// each failed removal of an applied segment (pm_ingest_wal_remove_errors_total, every attempt:
// on_warning says it once per segment and error). The daemon and the tests wire them alike.
// `metrics` must outlive the log.
#include "ingest/log/wal.h"
#include "metrics/ingest_metrics.h"

namespace pm {

void count_log_metrics(wal::Options& options, IngestMetrics& metrics);

}  // namespace pm
