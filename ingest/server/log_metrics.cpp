#include "ingest/server/log_metrics.h"

namespace pm {

void count_log_metrics(wal::Options& options, IngestMetrics& metrics) {
  options.on_group_commit = [&metrics](double seconds, std::uint64_t bytes, std::uint64_t records) {
    metrics.wal_fsync_seconds.Observe(seconds);
    metrics.wal_appended_bytes.Increment(static_cast<double>(bytes));
    metrics.wal_appended_records.Increment(static_cast<double>(records));
  };
  options.on_remove_failed = [&metrics](const std::string&, const std::error_code&) { metrics.wal_remove_errors.Increment(); };
}

}  // namespace pm
