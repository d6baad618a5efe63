#include "daemon/daemon_options.h"

#include <arpa/inet.h>
#include <sys/un.h>
#include <grp.h>
#include <pwd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <sstream>
#include <stdexcept>

#include <boost/program_options.hpp>

#include "daemon/cli_common.h"
#include "ingest/log/wal_format.h"
#include "metrics/http_endpoint.h"
#include "metrics/ingest_metrics.h"

namespace po = boost::program_options;

namespace pm {

namespace {

// An on/off switch: true for "on"; anything but "on" or "off" is an error naming the option.
bool take_switch(const po::variables_map& vm, const std::string& option) {
  const std::string value = vm[option].as<std::string>();
  if (value != "on" && value != "off") throw std::invalid_argument("--" + option + ": '" + value + "' is neither on nor off");
  return value == "on";
}

// Digits only: stoull and stoul take a sign (and wrap "-1"), and stop at the first non-digit.
bool all_digits(const std::string& text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
}

std::uint64_t parse_bytes(const std::string& option, const std::string& text) {
  // 123, 64K, 512M, 4G (powers of 1024); plain bytes otherwise.
  const std::size_t digits = text.find_first_not_of("0123456789");
  const std::string number = text.substr(0, digits);
  unsigned long long value = 0;
  try {
    if (!all_digits(number)) throw std::invalid_argument(text);
    value = std::stoull(number);
  } catch (...) {
    throw std::invalid_argument("--" + option + ": '" + text + "' is not a byte count (e.g. 512M, 4G)");
  }
  std::string suffix = digits == std::string::npos ? "" : text.substr(digits);
  for (auto& c : suffix) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  int shift = -1;
  if (suffix == "" || suffix == "B") shift = 0;
  if (suffix == "K" || suffix == "KB" || suffix == "KIB") shift = 10;
  if (suffix == "M" || suffix == "MB" || suffix == "MIB") shift = 20;
  if (suffix == "G" || suffix == "GB" || suffix == "GIB") shift = 30;
  if (shift < 0) throw std::invalid_argument("--" + option + ": unknown unit in '" + text + "' (use K, M or G)");
  if (value > (std::numeric_limits<std::uint64_t>::max() >> 2 >> shift))  // at most 4 EiB
    throw std::invalid_argument("--" + option + ": '" + text + "' is too large");
  return value << shift;
}

std::chrono::seconds parse_duration(const std::string& option, const std::string& text) {
  // 3600, 90s, 45m, 12h, 30d; at most 100 years (archive retention compares in milliseconds).
  constexpr long long kMaxSeconds = 100LL * 366 * 86400;
  const std::size_t digits = text.find_first_not_of("0123456789");
  const std::string number = text.substr(0, digits);
  const std::string suffix = digits == std::string::npos ? "" : text.substr(digits);
  long long unit = 0;
  if (suffix == "" || suffix == "s") unit = 1;
  if (suffix == "m") unit = 60;
  if (suffix == "h") unit = 3600;
  if (suffix == "d") unit = 86400;
  if (!all_digits(number) || unit == 0)
    throw std::invalid_argument("--" + option + ": '" + text + "' is not a duration (e.g. 3600, 90m, 12h, 30d)");
  if (number.size() > 12 || std::stoll(number) > kMaxSeconds / unit)
    throw std::invalid_argument("--" + option + ": '" + text + "' is longer than 100 years");
  return std::chrono::seconds(std::stoll(number) * unit);
}

// A uid or gid given by number: uid_t and gid_t are 32 bits, and (uid_t)-1 means "none".
unsigned long parse_id_number(const std::string& option, const std::string& text) {
  if (text.size() > 10 || std::stoull(text) >= 0xFFFFFFFFull)
    throw std::invalid_argument("--" + option + ": " + text + " is not a valid id (at most 4294967294)");
  return std::stoul(text);
}

uid_t parse_uid(const std::string& text) {
  if (all_digits(text)) return static_cast<uid_t>(parse_id_number("allow-uid", text));
  if (const passwd* pw = ::getpwnam(text.c_str())) return pw->pw_uid;
  throw std::invalid_argument("--allow-uid: no user '" + text + "'");
}

gid_t parse_gid(const std::string& option, const std::string& text) {
  if (all_digits(text)) return static_cast<gid_t>(parse_id_number(option, text));
  if (const group* gr = ::getgrnam(text.c_str())) return gr->gr_gid;
  throw std::invalid_argument("--" + option + ": no group '" + text + "'");
}

// A count option, read as a signed number so "-1" is refused instead of wrapping.
std::size_t take_count(const po::variables_map& vm, const std::string& option, long long least, long long most) {
  const long long value = vm[option].as<long long>();
  require_between(option, value, least, most);
  return static_cast<std::size_t>(value);
}

// A duration option in whole `unit`s, bounded: past `most` it overflowed the clock arithmetic
// (--shutdown-timeout 10000000000 made SIGTERM exit at once; --stale-after wrapped into "every
// event is stale").
long take_duration(const po::variables_map& vm, const std::string& option, long least, long most, const char* unit) {
  const long value = vm[option].as<long>();
  require_between(option, value, least, most, unit);
  return value;
}

constexpr long kDaySeconds = 24 * 3600;

constexpr std::size_t kMostLineBytes = wal::kMaxPayload / 2;

mode_t parse_socket_mode(const std::string& text) {
  if (text.empty() || text.size() > 4 || text.find_first_not_of("01234567") != std::string::npos)
    throw std::invalid_argument("--socket-mode: '" + text + "' is not an octal mode (e.g. 0660, at most 0777)");
  const unsigned long mode = std::stoul(text, nullptr, 8);
  if (mode > 0777) throw std::invalid_argument("--socket-mode: '" + text + "' sets more than permission bits (at most 0777)");
  return static_cast<mode_t>(mode);
}

// PM_INGESTD_BATCH_MAX_EVENTS -> batch-max-events. DATABASE_URL is not mapped: it is the fallback
// when neither --database-url nor --database-url-file is set (resolve_database_url), so a URL file
// given on the command line beats it.
std::string environment_name(const std::string& variable) {
  const std::string prefix = "PM_INGESTD_";
  if (variable.rfind(prefix, 0) != 0) return "";
  std::string name = variable.substr(prefix.size());
  for (auto& c : name) c = c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}

// The --help text: the options in the order --help lists them, added group by group.
const char* const kDescription =
    "pm-ingestd: durable ingestion of trades and triggers into PostgreSQL.\n"
    "Producers send NDJSON lines over a Unix socket; each valid event is written to a\n"
    "checksummed write-ahead log and fsynced before it is acknowledged, then applied to\n"
    "PostgreSQL in batches, exactly once.\n\n"
    "Every option can also come from --config (INI: name = value) or the environment as\n"
    "PM_INGESTD_<NAME> (e.g. PM_INGESTD_WAL_DIR; an empty one is refused, but for the\n"
    "database URL pair, where empty sets nothing).\n"
    "Command line beats environment beats config file. The database URL is --database-url, else the first line of\n"
    "--database-url-file, from the first of those sources that sets either; else\n"
    "DATABASE_URL.\n\nOptions";

// clang-format off
void describe_general(po::options_description& desc) {
  desc.add_options()
    ("help,h", "print this help and exit")
    ("version", "print the version and exit")
    ("config", po::value<std::string>(), "INI file with option = value lines (a database-url-file line there must be an absolute path)");
}

void describe_socket(po::options_description& desc, const DaemonOptions& d) {
  desc.add_options()
    ("socket", po::value<std::string>()->default_value(d.socket_path), "Unix socket producers connect to (ignored when systemd passes a socket)")
    ("socket-mode", po::value<std::string>()->default_value("0660"), "permissions of the socket file (octal)")
    ("socket-group", po::value<std::string>(), "group of the socket file (name or gid; default: the daemon's)")
    // Not composing: the command line's list replaces the environment's and the config file's
    // (composing merged them, so a config file's user stayed allowed after the command line named
    // another); repeating the option within one source still adds to its list.
    ("allow-uid", po::value<std::vector<std::string>>(), "accept producers running as this user (name or uid; repeatable; default: anyone who can open the socket)")
    ("allow-gid", po::value<std::vector<std::string>>(), "accept producers whose primary group is this (name or gid; repeatable)");
}

void describe_log_and_database(po::options_description& desc, const DaemonOptions& d) {
  desc.add_options()
    ("wal-dir", po::value<std::string>()->default_value(d.wal_dir), "directory of the write-ahead log (one daemon per directory: it is locked; a second daemon exits with status 2)")
    ("wal-max-bytes", po::value<std::string>()->default_value("4G"), "log bytes at which new lines get `busy`: unapplied ones, and applied segments waiting for --archive-dir (checked per chunk read; with none of those a chunk is always taken)")
    ("wal-segment-bytes", po::value<std::string>()->default_value("64M"), "size at which the log starts a new segment file (4K to 4G)")
    ("wal-group-delay-us", po::value<long>()->default_value(d.wal_group_delay.count()), "microseconds the log's group leader waits before its write and fdatasync, only while other connections are appending (its previous group held several connections' lines), so more lines share one fdatasync: less CPU under load, at most this much more ack latency; a lone producer never waits; 0: never (at most 10000)")
    ("wal-preallocate", po::value<std::string>()->default_value("on"), "on: once a log segment is a quarter full (a segment that grows with its appends, such as a new log's first: once it holds 64 KiB, and it is left as soon as the spare is ready), a thread prepares the next one's file as zeros (spare.zeros in --wal-dir, --wal-segment-bytes on disk), so each group's fdatasync overwrites existing blocks instead of growing the file; a segment is cut to its records when the next starts. off: plain appends (e.g. on a copy-on-write file system, where zeros written ahead gain nothing)")
    ("database-url", po::value<std::string>(), "PostgreSQL URL (prefer DATABASE_URL or --database-url-file: a password here is masked in ps but stays in shell history)")
    ("database-url-file", po::value<std::string>(), "read the PostgreSQL URL from the first line of this file")
    ("metrics-listen", po::value<std::string>()->default_value(d.metrics_listen), "host:port serving /metrics, /healthz and /readyz (HTTP; the host an IPv4 address or localhost; [an IPv6 address] only where the HTTP server was built with IPv6, which Debian's civetweb is not; keep it on loopback unless a firewall guards it)");
}

void describe_archive(po::options_description& desc, const DaemonOptions& d) {
  desc.add_options()
    ("archive-dir", po::value<std::string>(), "keep every event: applied log segments are compressed (zstd) into this directory before the live log deletes them (default: off, they are deleted); pm-ingestctl replay rebuilds the tables from it. Applied segments waiting to be archived stay in --wal-dir and count against --wal-max-bytes")
    ("archive-max-bytes", po::value<std::string>()->default_value("0"), "delete the oldest archived segments while the archive is larger than this (e.g. 200G; 0: no limit)")
    ("archive-max-age", po::value<std::string>()->default_value("0"), "delete archived segments whose newest event arrived longer ago than this (e.g. 30d, 12h; 0: no limit)")
    ("archive-compression-level", po::value<int>()->default_value(d.archive_compression_level), "zstd level of archived segments (1 fastest .. 19 smallest)");
}

void describe_writer(po::options_description& desc, const DaemonOptions& d) {
  desc.add_options()
    ("batch-max-events", po::value<long long>()->default_value(static_cast<long long>(d.batch_max_events)), "events per PostgreSQL transaction at most")
    ("batch-max-bytes", po::value<std::string>()->default_value("32M"), "log record bytes per PostgreSQL transaction: a batch goes once it holds this much (one event more at most), so large lines keep the batches in memory bounded")
    ("writer-connections", po::value<long long>()->default_value(static_cast<long long>(d.writer_connections)), "PostgreSQL connections the writer uses at once: consecutive batches overlap and still commit in log order (1: one batch at a time)")
    ("synchronous-commit", po::value<std::string>()->default_value(d.synchronous_commit ? "on" : "off"), "off: each batch commits with synchronous_commit = off, so its rows are visible (and the next batch commits) without waiting for PostgreSQL's WAL flush; the log keeps the batch until the primary has flushed it (and the standbys, with --standby-wait on), and a PostgreSQL crash that loses it only makes the daemon apply it again: rows a reader saw can be missing until then, no acked event is lost. on: each batch's COMMIT waits for the flush: the role's setting applies (e.g. remote_apply), except that off is raised to local")
    ("batch-max-delay-ms", po::value<long>()->default_value(d.batch_max_delay.count()), "upper bound (ms) on how long a batch waits for more events; it waits only while every writer connection is busy, and an idle writer sends each event at once")
    ("queue-max-events", po::value<long long>()->default_value(static_cast<long long>(d.queue_max_events)), "events held in memory for the writer; beyond, it reads them back from the log")
    ("queue-max-bytes", po::value<std::string>()->default_value("64M"), "log record bytes of the events held in memory for the writer (whichever of this and --queue-max-events is reached first); beyond, it reads them back from the log")
    ("trade-timestamp-unit", po::value<std::string>()->default_value("ms"), "unit of polymarket_trades.timestamp in the database: ms or s")
    ("instance-id", po::value<std::string>()->default_value(d.instance_id), "name of this daemon's checkpoint (one per daemon sharing a database; not starting with 'replay', which names pm-ingestctl replay's own)")
    ("shutdown-timeout", po::value<long>()->default_value(d.shutdown_timeout.count()), "seconds SIGTERM/SIGINT may take before the daemon exits anyway; a second SIGTERM/SIGINT exits at once (unapplied events wait in the log for the next start; under systemd, TimeoutStopSec= kills it at 30 s in pm-ingestd.service: for more, raise both)")
    ("stale-after", po::value<long>()->default_value(d.stale_after.count()), "seconds after which an arriving event counts as stale (G1 metric)")
    ("freshness-alert-seconds", po::value<double>()->default_value(d.freshness_alert_seconds), "freshness bound for the alert PmIngestdStaleRows: it fires while the p99 time from an event's arrival to its row being visible in PostgreSQL (pm_ingest_event_visible_seconds) is above this; exported as pm_ingest_event_visible_alert_threshold_seconds; below 300, the histogram's highest bucket")
    ("writer-stall-timeout", po::value<long>()->default_value(d.writer_stall_timeout.count()), "seconds the writer thread may spend in one loop (one batch, one reconnect) before /readyz fails and the systemd watchdog stops being fed; keep it above PostgreSQL's statement timeout (60 s)");
}

void describe_connections(po::options_description& desc, const DaemonOptions& d) {
  desc.add_options()
    ("max-line-bytes", po::value<std::string>()->default_value("1M"), "longest accepted line (256 to 8M); longer ones get `too_long`")
    ("max-connections", po::value<long long>()->default_value(static_cast<long long>(d.max_connections)), "producer connections at most")
    ("max-connections-per-uid", po::value<long long>()->default_value(static_cast<long long>(d.max_connections_per_uid)), "producer connections at most from one user (peer uid), so one cannot take them all (0: no limit)")
    ("reply-timeout", po::value<long>()->default_value(d.reply_timeout.count()), "seconds a reply may wait for a producer that does not read before its connection is closed (what it had acked stays durable)")
    ("line-timeout", po::value<long>()->default_value(d.line_timeout.count()), "seconds a line may take to arrive whole, from its first byte (the daemon's own time answering the lines before it, such as a slow log sync, not counted); a producer slower than that gets `busy` for it and is disconnected (idle connections are never closed)");
}

void describe_standbys_and_logging(po::options_description& desc, const DaemonOptions& d) {
  desc.add_options()
    ("standby-wait", po::value<std::string>()->default_value("on"), "on: an applied log segment is deleted only once every standby of the PostgreSQL primary (replication slots, WAL senders) has flushed the commits that applied it, so a failover loses no acked event; off: deleted once committed and flushed on the primary (a single server)")
    ("min-standbys", po::value<long long>()->default_value(static_cast<long long>(d.min_standbys)), "standbys the primary must show before applied log segments are deleted (a standby without a replication slot is invisible while disconnected)")
    ("log-level", po::value<std::string>()->default_value(d.log_level), "trace, debug, info, warn, error or critical (anything else is refused)");
}
// clang-format on

po::options_description describe_options(const DaemonOptions& defaults) {
  po::options_description desc(kDescription);
  describe_general(desc);
  describe_socket(desc, defaults);
  describe_log_and_database(desc, defaults);
  describe_archive(desc, defaults);
  describe_writer(desc, defaults);
  describe_connections(desc, defaults);
  describe_standbys_and_logging(desc, defaults);
  return desc;
}

// --database-url and --database-url-file are one setting: the first source (command line,
// environment, --config) that sets either decides, and within it the URL beats the file. boost
// merges option by option, which let a config file's URL beat a URL file on the command line.
struct DatabaseUrlSource {
  bool decided = false;
  std::string url;
  std::string url_file;
};

// An empty value (`PM_INGESTD_DATABASE_URL_FILE=`) sets nothing: it decides no source.
void decide_database_url(const po::variables_map& vm, DatabaseUrlSource& source) {
  const auto value = [&vm](const char* option) { return vm.count(option) ? vm[option].as<std::string>() : std::string(); };
  if (source.decided || (value("database-url").empty() && value("database-url-file").empty())) return;
  source.decided = true;
  source.url = value("database-url");
  source.url_file = value("database-url-file");
}

// A relative database-url-file in an INI file would be read from the working directory of each
// program that reads the file (/ for the daemon under systemd, the operator's for pm-ingestctl).
// `given_as` names where the file's path came from in errors ("--config", "PM_INGESTD_CONFIG").
void require_absolute_url_file(const std::string& given_as, const std::string& config_path, const DatabaseUrlSource& source) {
  if (source.url.empty() && !source.url_file.empty() && source.url_file.front() != '/')
    throw std::invalid_argument(given_as + " " + config_path + ": database-url-file must be an absolute path ('" +
                                source.url_file + "' given)");
}

// The INI format ends a value at '#' (a comment): a database-url line holding one, a password's
// '#' most likely, would connect with the URL cut there and could show the password's first part
// in the connection error. Refused, never quoted.
void refuse_cut_database_url(const std::string& given_as, const std::string& path, const std::string& text) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    const std::size_t start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line.compare(start, 12, "database-url") != 0) continue;
    const std::size_t equals = line.find_first_not_of(" \t", start + 12);
    if (equals != std::string::npos && line[equals] == '=' && line.find('#', equals) != std::string::npos)
      throw std::invalid_argument(given_as + " " + path +
                                  ": the database-url line holds '#', where an INI value ends (the rest is read as a "
                                  "comment): write '#' as %23 in the URL, or give the URL in a database-url-file");
  }
}

// Stores the INI file's settings in `vm` below what it holds; a name that is no option throws.
void store_config_file(const std::string& given_as, const std::string& path, const po::options_description& desc,
                       po::variables_map& vm) {
  std::ifstream in(path);
  if (!in) throw std::invalid_argument(given_as + ": cannot read " + path);
  std::ostringstream text;
  text << in.rdbuf();
  refuse_cut_database_url(given_as, path, text.str());
  std::istringstream config(text.str());
  po::store(po::parse_config_file(config, desc), vm);
}

// An empty PM_INGESTD_* variable (`PM_INGESTD_ARCHIVE_DIR=`, an undefined value in a templated
// environment file) is refused, naming it: stored, it switched the archive off or hid --config's
// line, and taken as unset it would drop an access list (`PM_INGESTD_ALLOW_UID=`) in silence. The
// database pair keeps its documented rule: empty sets nothing (decide_database_url).
void refuse_empty_variable(const std::string& variable, const std::string& option) {
  if (option.empty() || option == "database-url" || option == "database-url-file") return;
  const char* value = std::getenv(variable.c_str());
  if (value != nullptr && *value == '\0')
    throw std::invalid_argument("environment variable " + variable + " is empty: give it a value, or remove it to leave --" +
                                option + " to --config or its default");
}

// The command-line option that makes the environment's value of option `name` moot, or "": the
// option itself, or (the database pair is one setting: decided by the command line in `url`) the
// one of the pair the command line set.
std::string overriding_option(const std::string& name, const po::variables_map& vm, const DatabaseUrlSource& url) {
  if (name.empty()) return "";
  if (vm.count(name) && !vm[name].defaulted()) return name;
  if ((name == "database-url" || name == "database-url-file") && url.decided)
    return url.url.empty() ? "database-url-file" : "database-url";
  return "";
}

// The command line, then the environment, then --config: the first source that sets an option wins.
// `moot`: a notice for each non-empty PM_INGESTD_ variable the command line overrides (names only:
// a value may be a password).
po::variables_map read_sources(int argc, char** argv, const po::options_description& desc, DatabaseUrlSource& url,
                               std::vector<std::string>& moot) {
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    decide_database_url(vm, url);
    po::store(po::parse_environment(desc,
                                    [&desc, &vm, &moot, &url](const std::string& variable) {
                                      const std::string name = environment_name(variable);
                                      if (!name.empty() && desc.find_nothrow(name, false) == nullptr)
                                        throw std::invalid_argument("environment variable " + variable +
                                                                    " names no option (--" + name + ")");
                                      // The command line wins: its option makes the variable moot.
                                      if (const std::string by = overriding_option(name, vm, url); !by.empty()) {
                                        const char* value = std::getenv(variable.c_str());
                                        if (value != nullptr && *value != '\0')
                                          moot.push_back(variable + " is ignored: the command line sets --" + by + " (" +
                                                         (by == name ? "" : "the two are one setting; ") +
                                                         "under systemd, ExecStart=: change that with `systemctl edit pm-ingestd`)");
                                        return std::string();
                                      }
                                      refuse_empty_variable(variable, name);
                                      return name;
                                    }),
              vm);
    decide_database_url(vm, url);
    if (vm.count("config")) {
      const std::string path = vm["config"].as<std::string>();
      store_config_file("--config", path, desc, vm);
      const bool decided_before = url.decided;
      decide_database_url(vm, url);
      if (!decided_before) require_absolute_url_file("--config", path, url);
    }
    po::notify(vm);
  } catch (const po::error& e) {
    throw std::invalid_argument(e.what());
  }
  return vm;
}

// The take_* functions convert and check the values into `d`. They run in a fixed order, which
// decides which of several bad options is reported (the first one checked).

// A path option's value: refused when empty (`--archive-dir ""`, an unset ${VAR} in a unit: it
// switched the archive off, or failed only after the log's recovery, naming no option).
std::string take_path(const po::variables_map& vm, const std::string& option) {
  std::string path = vm[option].as<std::string>();
  if (path.empty()) throw std::invalid_argument("--" + option + " is empty: give a path" +
                                                (option == "archive-dir" ? " (or leave the option out: no archive)" : ""));
  return path;
}

void take_socket(const po::variables_map& vm, DaemonOptions& d) {
  d.socket_path = take_path(vm, "socket");
  // sun_path's bytes, its NUL included: a longer path failed only after the log's recovery.
  constexpr std::size_t kMaxSocketPath = sizeof(sockaddr_un::sun_path) - 1;
  if (d.socket_path.size() > kMaxSocketPath)
    throw std::invalid_argument("--socket: the path is " + std::to_string(d.socket_path.size()) +
                                " bytes; a Unix socket's path has at most " + std::to_string(kMaxSocketPath));
  d.socket_mode = parse_socket_mode(vm["socket-mode"].as<std::string>());
  if (vm.count("socket-group")) d.socket_group = parse_gid("socket-group", vm["socket-group"].as<std::string>());
  if (vm.count("allow-uid"))
    for (const auto& u : vm["allow-uid"].as<std::vector<std::string>>()) d.allow_uids.push_back(parse_uid(u));
  if (vm.count("allow-gid"))
    for (const auto& g : vm["allow-gid"].as<std::vector<std::string>>()) d.allow_gids.push_back(parse_gid("allow-gid", g));
}

void take_log_and_database(const po::variables_map& vm, const DatabaseUrlSource& source, DaemonOptions& d) {
  d.wal_dir = take_path(vm, "wal-dir");
  d.wal_max_bytes = parse_bytes("wal-max-bytes", vm["wal-max-bytes"].as<std::string>());
  if (d.wal_max_bytes == 0) throw std::invalid_argument("--wal-max-bytes must be more than 0");
  d.wal_segment_bytes = parse_bytes("wal-segment-bytes", vm["wal-segment-bytes"].as<std::string>());
  // 0 started a file (and a directory fsync) for every group; terabytes preallocated that much.
  if (d.wal_segment_bytes < (4u << 10) || d.wal_segment_bytes > (4ull << 30))
    throw std::invalid_argument("--wal-segment-bytes must be between 4K and 4G (" + std::to_string(d.wal_segment_bytes) + " given)");
  const long group_delay_us = vm["wal-group-delay-us"].as<long>();
  require_between("wal-group-delay-us", group_delay_us, 0, 10000);
  d.wal_group_delay = std::chrono::microseconds(group_delay_us);
  const auto url = resolve_database_url(source.url, source.url_file);
  if (!url) throw std::invalid_argument("no database: set DATABASE_URL, --database-url or --database-url-file");
  d.database_url = *url;
  d.metrics_listen = vm["metrics-listen"].as<std::string>();  // checked last, in take_line_timeout_and_logging
}

void take_archive(const po::variables_map& vm, DaemonOptions& d) {
  if (vm.count("archive-dir")) d.archive_dir = take_path(vm, "archive-dir");
  d.archive_max_bytes = parse_bytes("archive-max-bytes", vm["archive-max-bytes"].as<std::string>());
  d.archive_max_age = parse_duration("archive-max-age", vm["archive-max-age"].as<std::string>());
  d.archive_compression_level = vm["archive-compression-level"].as<int>();
  if (d.archive_compression_level < 1 || d.archive_compression_level > 19)
    throw std::invalid_argument("--archive-compression-level must be between 1 and 19");
  if (d.archive_dir.empty() && (d.archive_max_bytes != 0 || d.archive_max_age.count() != 0))
    throw std::invalid_argument("--archive-max-bytes and --archive-max-age need --archive-dir");
  const auto same_place = [](const std::string& a, const std::string& b) {
    std::error_code ec;
    return std::filesystem::weakly_canonical(a, ec) == std::filesystem::weakly_canonical(b, ec);
  };
  if (!d.archive_dir.empty() && same_place(d.archive_dir, d.wal_dir))
    throw std::invalid_argument("--archive-dir must be a directory of its own, not --wal-dir");
}

void take_writer(const po::variables_map& vm, DaemonOptions& d) {
  d.batch_max_events = take_count(vm, "batch-max-events", 1, 10'000'000);
  d.writer_connections = take_count(vm, "writer-connections", 1, 16);
  d.synchronous_commit = take_switch(vm, "synchronous-commit");
  d.batch_max_delay = std::chrono::milliseconds(take_duration(vm, "batch-max-delay-ms", 0, 60'000, "ms"));
  d.queue_max_events = take_count(vm, "queue-max-events", 1, 100'000'000);
  d.batch_max_bytes = parse_bytes("batch-max-bytes", vm["batch-max-bytes"].as<std::string>());
  d.queue_max_bytes = parse_bytes("queue-max-bytes", vm["queue-max-bytes"].as<std::string>());
  for (const auto& [name, bytes] : {std::pair{"batch-max-bytes", d.batch_max_bytes}, std::pair{"queue-max-bytes", d.queue_max_bytes}})
    if (bytes < (64u << 10) || bytes > (16ull << 30))
      throw std::invalid_argument(std::string("--") + name + " must be between 64K and 16G (" + std::to_string(bytes) + " given)");
  const auto unit = parse_timestamp_unit(vm["trade-timestamp-unit"].as<std::string>());
  if (!unit) throw std::invalid_argument("--trade-timestamp-unit must be ms or s");
  d.trade_timestamp_unit = *unit;
  d.instance_id = vm["instance-id"].as<std::string>();
  if (d.instance_id.empty()) throw std::invalid_argument("--instance-id must not be empty");
  if (names_a_replay_checkpoint(d.instance_id))
    throw std::invalid_argument("--instance-id '" + d.instance_id + "' starts with 'replay', which names pm-ingestctl replay's own checkpoints");
  d.shutdown_timeout = std::chrono::seconds(take_duration(vm, "shutdown-timeout", 1, kDaySeconds, "seconds"));
  d.stale_after = std::chrono::seconds(take_duration(vm, "stale-after", 1, 365 * kDaySeconds, "seconds"));
  d.freshness_alert_seconds = vm["freshness-alert-seconds"].as<double>();
  if (!(d.freshness_alert_seconds > 0 && d.freshness_alert_seconds < kEventVisibleTopBucketSeconds))
    throw std::invalid_argument("--freshness-alert-seconds must be > 0 and below " +
                                std::to_string(static_cast<int>(kEventVisibleTopBucketSeconds)) +
                                " (the histogram's highest bucket: its p99 never reads more, so the alert could never fire)");
  d.writer_stall_timeout = std::chrono::seconds(vm["writer-stall-timeout"].as<long>());
  if (d.writer_stall_timeout.count() < 1) throw std::invalid_argument("--writer-stall-timeout must be >= 1");
}

void take_connections_and_standbys(const po::variables_map& vm, DaemonOptions& d) {
  d.max_line_bytes = parse_bytes("max-line-bytes", vm["max-line-bytes"].as<std::string>());
  // A line's events, its text included, are one log record each, and a record is read back only
  // up to wal::kMaxPayload: half of it leaves room for the rest of the event.
  if (d.max_line_bytes < 256 || d.max_line_bytes > kMostLineBytes)
    throw std::invalid_argument("--max-line-bytes must be between 256 and " + std::to_string(kMostLineBytes) +
                                " (8M: the log reads back records of at most 16 MiB)");
  d.max_connections = take_count(vm, "max-connections", 1, 1'000'000);
  d.reply_timeout = std::chrono::seconds(take_duration(vm, "reply-timeout", 1, kDaySeconds, "seconds"));
  d.max_connections_per_uid = take_count(vm, "max-connections-per-uid", 0, 1'000'000);
  d.wal_preallocate = take_switch(vm, "wal-preallocate");
  d.standby_wait = take_switch(vm, "standby-wait");
  d.min_standbys = take_count(vm, "min-standbys", 0, 1000);
  if (d.min_standbys > 0 && !d.standby_wait)
    throw std::invalid_argument("--min-standbys needs --standby-wait on (with off, segments are deleted without looking at standbys)");
}

// --metrics-listen as civetweb takes it: an IPv4 address, a bracketed IPv6 address or localhost, a
// colon and a port 1-65535. civetweb's own syntax (a list, an 's' or 'r' suffix, a bare port)
// would open listeners the option does not describe, and anything else failed only after the
// log's recovery, in a message that did not name the option.
void check_metrics_listen(const std::string& listen) {
  const auto refuse = [&] {
    throw std::invalid_argument("--metrics-listen must be host:port (an IPv4 address, [an IPv6 address] or localhost, "
                                "then a port 1-65535), got '" + listen + "'");
  };
  const std::size_t colon = listen.rfind(':');
  if (colon == std::string::npos) refuse();
  const std::string host = listen.substr(0, colon), port = listen.substr(colon + 1);
  if (!all_digits(port) || port.size() > 5 || std::stoul(port) < 1 || std::stoul(port) > 65535) refuse();
  unsigned char address[16];
  const bool v6 = host.size() > 2 && host.front() == '[' && host.back() == ']' &&
                  ::inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), address) == 1;
  if (host != "localhost" && !v6 && ::inet_pton(AF_INET, host.c_str(), address) != 1) refuse();
  // Refused here, not after the log's recovery, when the endpoint would fail to open (and a
  // restart loop would recover the log each time before failing again).
  if (v6 && !http_endpoint_serves_ipv6())
    throw std::invalid_argument("--metrics-listen: '" + listen +
                                "' is an IPv6 address, and this build's HTTP server (Debian's civetweb) has no IPv6; "
                                "use an IPv4 address");
}

void take_line_timeout_and_logging(const po::variables_map& vm, DaemonOptions& d) {
  d.line_timeout = std::chrono::seconds(take_duration(vm, "line-timeout", 1, kDaySeconds, "seconds"));
  d.log_level = vm["log-level"].as<std::string>();
  const std::vector<std::string> levels{"trace", "debug", "info", "warn", "error", "critical"};
  if (std::find(levels.begin(), levels.end(), d.log_level) == levels.end())
    throw std::invalid_argument("--log-level: '" + d.log_level + "' is none of trace, debug, info, warn, error, critical");
  check_metrics_listen(d.metrics_listen);
}

}  // namespace

std::optional<DaemonOptions> parse_daemon_options(int argc, char** argv, const std::string& version) {
  DaemonOptions d;
  const po::options_description desc = describe_options(d);
  DatabaseUrlSource url_source;
  const po::variables_map vm = read_sources(argc, argv, desc, url_source, d.moot_variables);
  if (vm.count("help")) {
    std::cout << desc << "\n";
    return std::nullopt;
  }
  if (vm.count("version")) {
    std::cout << "pm-ingestd " << version << "\n";
    return std::nullopt;
  }
  take_socket(vm, d);
  take_log_and_database(vm, url_source, d);
  take_archive(vm, d);
  take_writer(vm, d);
  take_connections_and_standbys(vm, d);
  take_line_timeout_and_logging(vm, d);
  return d;
}

namespace {

// A pm-ingestd INI file's options, as the daemon reads it (defaults included, marked so).
po::variables_map read_config_file(const std::string& path, const std::string& given_as) {
  DaemonOptions defaults;
  const po::options_description desc = describe_options(defaults);
  po::variables_map vm;
  try {
    store_config_file(given_as, path, desc, vm);
  } catch (const po::error& e) {
    throw std::invalid_argument(given_as + " " + path + ": " + e.what());
  }
  return vm;
}

}  // namespace

std::string config_file_option(const std::string& path, const std::string& option, const std::string& given_as) {
  const po::variables_map vm = read_config_file(path, given_as);
  return vm.count(option) && !vm[option].defaulted() ? vm[option].as<std::string>() : "";
}

std::pair<std::string, std::string> config_file_database(const std::string& path, const std::string& given_as) {
  po::variables_map vm = read_config_file(path, given_as);
  DatabaseUrlSource source;
  decide_database_url(vm, source);
  require_absolute_url_file(given_as, path, source);
  return {source.url, source.url_file};
}

}  // namespace pm
