#pragma once
// DaemonOptions: every pm-ingestd setting, from the command line, the environment
// (PM_INGESTD_<OPTION_NAME> for any option) and an INI config file (--config), in that order of
// precedence. The database URL is --database-url, else --database-url-file, taken from the first
// of those sources that sets either (a URL file on the command line beats a URL in the config
// file), else DATABASE_URL. parse_daemon_options() validates everything and throws
// std::invalid_argument with a message naming the option; it returns nullopt after printing
// --help or --version.
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "repos/timestamp_unit.h"

namespace pm {

struct DaemonOptions {
  std::string socket_path = "/run/pm-ingestd/ingest.sock";
  mode_t socket_mode = 0660;
  std::optional<gid_t> socket_group;
  std::vector<uid_t> allow_uids;
  std::vector<gid_t> allow_gids;
  std::string wal_dir = "/var/lib/pm-ingestd/wal";
  std::string database_url;  // never logged unredacted
  std::string metrics_listen = "127.0.0.1:9464";
  std::size_t batch_max_events = 20000;
  std::uint64_t batch_max_bytes = 32ull << 20;  // a batch's record bytes: it goes once it holds this much
  std::chrono::milliseconds batch_max_delay{20};
  std::size_t writer_connections = 2;
  bool synchronous_commit = false;  // off: batches commit without waiting for the WAL flush
  std::uint64_t wal_max_bytes = 4ull << 30;
  std::uint64_t wal_segment_bytes = 64ull << 20;
  std::chrono::microseconds wal_group_delay{200};  // a group leader's wait for other connections' lines
  bool wal_preallocate = true;  // segments start from files of zeros prepared ahead (wal::Options::preallocate)
  std::size_t queue_max_events = 20000;
  std::uint64_t queue_max_bytes = 64ull << 20;  // the queue's record bytes at most
  TimestampUnit trade_timestamp_unit = TimestampUnit::Milliseconds;
  std::string instance_id = "default";
  std::chrono::seconds shutdown_timeout{10};
  std::chrono::seconds stale_after{300};
  double freshness_alert_seconds = 1.0;  // PmIngestdStaleRows: p99 arrival-to-visible above this
  std::chrono::seconds writer_stall_timeout{120};  // writer loop older than this: not ready, no watchdog
  std::size_t max_line_bytes = 1 << 20;
  std::size_t max_connections = 1024;
  std::size_t max_connections_per_uid = 0;  // 0: no limit
  std::chrono::seconds reply_timeout{30};  // a reply blocked this long (producer not reading): close
  std::chrono::seconds line_timeout{30};   // a line incomplete this long (slow producer): close
  std::string log_level = "info";
  // PM_INGESTD_ variables the command line overrode (a notice each, for the log: names, no values).
  std::vector<std::string> moot_variables;
  std::string archive_dir;                 // empty: applied segments are deleted, not archived
  std::uint64_t archive_max_bytes = 0;     // 0: no limit
  std::chrono::seconds archive_max_age{0}; // 0: no limit
  int archive_compression_level = 3;       // zstd
  bool standby_wait = true;      // keep applied log segments until every standby has them
  std::size_t min_standbys = 0;  // fewer visible standbys confirm nothing
};

// argv is not modified here; call scrub_argv_passwords() afterwards.
std::optional<DaemonOptions> parse_daemon_options(int argc, char** argv, const std::string& version);

// The database-url and database-url-file lines of a pm-ingestd INI file (either may be empty), read
// as pm-ingestd reads the file: a name that is no pm-ingestd option, a malformed line or a relative
// database-url-file throws std::invalid_argument naming `given_as` (where the path came from), the
// file and the problem. For pm-ingestctl, which connects where the daemon does.
std::pair<std::string, std::string> config_file_database(const std::string& path, const std::string& given_as = "--config");

// The value a pm-ingestd INI file sets for `option` (a string option of pm-ingestd, e.g.
// "trade-timestamp-unit"), or "" when the file leaves it at its default. Read and refused as
// config_file_database does. For pm-ingestctl, which must read events as the daemon does.
std::string config_file_option(const std::string& path, const std::string& option, const std::string& given_as = "--config");

}  // namespace pm
