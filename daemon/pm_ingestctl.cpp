// pm-ingestctl: the operator's tool (migrations, status, checkpoints, log inspection).
// Each command is a small function; exit codes: 0 ok, 1 failure (a log or archive file of a newer
// format among them: no damage), 2 usage error or corrupt log, 3 replay (--skip-damaged) skipped
// damaged ranges, in this run or an earlier one.
#include <algorithm>
#include <cstdlib>
#include <unistd.h>
#include <fstream>
#include <iostream>
#include <tuple>
#include <utility>
#include <limits>
#include <string>
#include <vector>

#include <boost/program_options.hpp>

#include "daemon/archive_commands.h"
#include "daemon/cli_common.h"
#include "daemon/daemon_options.h"
#include "daemon/log_health.h"
#include "daemon/log_inspection.h"
#include "daemon/send_command.h"
#include "ingest/events/event_codec.h"
#include "ingest/server/payload_format.h"
#include "ingest/server/protocol.h"
#include "repos/timestamp_unit.h"
#include "ingest/log/wal.h"
#include "ingest/log/wal_reader.h"
#include "repos/database.h"
#include "ingest/writer/ingest_checkpoint_repository.h"
#include "repos/migrator.h"

namespace po = boost::program_options;

namespace {

constexpr const char* kUsage =
    "Usage: pm-ingestctl COMMAND [options]\n"
    "\n"
    "Commands:\n"
    "  migrate   apply the bundled seed/*.sql migrations not applied yet, each in its own\n"
    "            transaction (an index on polymarket_trades is built CONCURRENTLY, outside\n"
    "            one, writers going on), with no statement timeout; safe to run again and on\n"
    "            a database that already has the production schema\n"
    "  pending   list the bundled migrations not applied yet\n"
    "  status    every instance's checkpoint, dead letters and (with --wal-dir) the log's state\n"
    "            [--instance-id ID]: the daemon's instance, whose checkpoint the log must\n"
    "            hold (default: every instance not named 'replay...', which a daemon's\n"
    "            never is; name the daemon's when a replay ran under another name); a\n"
    "            replay's checkpoint behind the log's oldest record is noted, not damage\n"
    "  checkpoint-reset --instance-id ID\n"
    "            forget an instance's checkpoint (after its log was fully applied and\n"
    "            removed); its next start applies its log from the oldest record; exit 1\n"
    "            when the instance has no checkpoint (the ones that have are named)\n"
    "  wal-verify --wal-dir DIR [--salvage]\n"
    "            read the whole log, checking every checksum, group and sequence number;\n"
    "            exit 2 with the file, offset, diagnosis and what to do when it is damaged,\n"
    "            exit 1 when it cannot be read (no such directory, a permission: the\n"
    "            daemon's files belong to its user) or a segment is of a newer format\n"
    "            (written by a later pm-ingestd: no damage). --salvage reads past damage\n"
    "            (never past a newer format) and lists\n"
    "            the skipped byte ranges and LSNs\n"
    "  wal-dump --wal-dir DIR [--from-lsn N] [--limit N] [--salvage]\n"
    "            print the log's events as JSON lines (lsn, a tab, the event); --salvage\n"
    "            prints every readable event past damage (no --limit unless given), with a\n"
    "            comment line (#) for each skipped range\n"
    "  replay --source DIR... [--database-url URL] [--from-lsn N] [--to-lsn N]\n"
    "         [--until TIME] [--instance-id ID] [--dry-run] [--skip-damaged]\n"
    "            apply the events of archive directories (--archive-dir of the daemon)\n"
    "            and/or log directories to a database, with the daemon's own batch\n"
    "            transaction and a checkpoint of its own (instance 'replay', plus its\n"
    "            bounds, unless --instance-id): exactly once, resumable after a kill, a\n"
    "            second run applies nothing. --until keeps the events that arrived before\n"
    "            TIME (RFC 3339). Never give it a daemon's --instance-id (with bounds or\n"
    "            --skip-damaged, an --instance-id must start with 'replay').\n"
    "            --dry-run reads and checks everything and prints counts only. Damage stops\n"
    "            it (exit 2, file and offset) unless --skip-damaged, which names every\n"
    "            skipped LSN range (exit 3; recorded in pm_dead_letters, so a later run of\n"
    "            the instance over the same log names it again) and keeps a checkpoint of\n"
    "            its own ('replay skip-damaged'), so a later run without it, after the file\n"
    "            is restored, still stops at or applies the skipped events. A log\n"
    "            directory a running daemon holds is read only as far as its state file\n"
    "            says it had synced (a second or so behind); the rest is left for the next\n"
    "            run (exit 1 when that state file cannot be read). Progress on stderr\n"
    "  send [--input FILE]... [--format F] [--socket PATH]\n"
    "            send NDJSON lines (or the elements of a JSON array) from files or stdin to\n"
    "            the daemon, waiting for every ack: lines not acknowledged are sent again\n"
    "            after a reconnect, `busy` is retried with backoff. Prints sent, acked,\n"
    "            rejected by reason with each input line, unacknowledged (the first 100\n"
    "            rejections of each reason also on stderr as they come); exit 1 if any\n"
    "            line was rejected or left unacknowledged. --format: pm-ingestd (protocol\n"
    "            v1 lines), clob-ws-market, data-api-trades, clob-rest-trades. NDJSON is\n"
    "            sent as it is read (a pipe from a live producer works); an input that is\n"
    "            one JSON array is read whole first\n"
    "  archive list --archive-dir DIR [--json]\n"
    "            the archived segments: LSN and arrival ranges, events, sizes, and totals\n"
    "            (exit 2 for a directory that holds no archive)\n"
    "  archive verify --archive-dir DIR\n"
    "            read every archive file: checksums, every record, the LSN chain (read-only;\n"
    "            exit 2 when something is damaged, else 1 when a file is of a newer format)\n"
    "  archive store-damaged --archive-dir DIR --wal-dir DIR --segment N\n"
    "            with the daemon stopped: archive an applied live segment whose records are\n"
    "            damaged, as it is, when the daemon says it cannot archive it (every later\n"
    "            segment waits behind it). The file keeps the damage: archive verify names\n"
    "            it, replay stops there unless --skip-damaged. N: the number or the file\n"
    "            name (000000000000000a.wal). Refused for a segment that is not damaged\n"
    "\n"
    "status exits 2 when the log (--wal-dir) is damaged or ends below a checkpoint stored for it,\n"
    "1 when it cannot be read or is of a newer format.\n"
    "Exit codes: 0 ok, 1 the command failed (a log segment or archive file of a newer format,\n"
    "written by a later pm-ingestd, among them: no damage; replay stops there even with\n"
    "--skip-damaged), 2 a usage error (a missing or bad option, no such command) or damage,\n"
    "3 replay skipped damaged ranges (--skip-damaged).\n"
    "\n";

// A number option, read signed so that "-1" is refused instead of wrapping to a huge count.
long long bounded(const po::variables_map& vm, const std::string& option, long long least, long long most) {
  return pm::require_between(option, vm[option].as<long long>(), least, most);
}

constexpr long long kNoLimit = std::numeric_limits<long long>::max();

// An environment variable's value, "" when unset.
std::string environment(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

// The database-url and database-url-file lines of the daemon's INI file, read as the daemon reads
// it (a file it refuses is refused here too). Throws UsageError naming `given_as` and the problem.
std::pair<std::string, std::string> config_file_database(const std::string& path, const std::string& given_as) {
  try {
    return pm::config_file_database(path, given_as);
  } catch (const std::invalid_argument& e) {
    throw pm::UsageError(e.what());
  }
}

// The daemon's INI file: --config, else $PM_INGESTD_CONFIG (path "" when neither), and which.
struct DaemonIni {
  std::string path, given_as;
};
DaemonIni daemon_ini(const po::variables_map& vm) {
  if (!vm["config"].as<std::string>().empty()) return {vm["config"].as<std::string>(), "--config"};
  return {environment("PM_INGESTD_CONFIG"), "PM_INGESTD_CONFIG"};
}

// The database as the daemon finds it, in its order: the options, else the daemon's environment
// file's PM_INGESTD_DATABASE_URL(_FILE) (so `systemd-run -p EnvironmentFile=...` reaches the same
// database), else the daemon's INI file (--config, else $PM_INGESTD_CONFIG), else DATABASE_URL.
pm::DatabaseConfig database_config(const po::variables_map& vm) {
  std::string url_given = vm["database-url"].as<std::string>(), file_given = vm["database-url-file"].as<std::string>();
  if (url_given.empty() && file_given.empty()) {
    url_given = environment("PM_INGESTD_DATABASE_URL");
    file_given = environment("PM_INGESTD_DATABASE_URL_FILE");
  }
  const DaemonIni ini = daemon_ini(vm);
  if (url_given.empty() && file_given.empty() && !ini.path.empty())
    std::tie(url_given, file_given) = config_file_database(ini.path, ini.given_as);
  auto url = pm::resolve_database_url(url_given, file_given);
  if (!url)
    throw pm::UsageError(
        "no database: give --database-url, --database-url-file, PM_INGESTD_DATABASE_URL(_FILE), the daemon's --config or "
        "DATABASE_URL");
  pm::DatabaseConfig config;
  config.url = *url;
  config.min_connections = 0;
  config.max_connections = 2;
  config.reconnect_max_attempts = static_cast<int>(bounded(vm, "connect-attempts", 1, 1000));
  return config;
}

int run_migrate(const po::variables_map& vm) {
  pm::Database db(database_config(vm));
  pm::Migrator migrator(db, [](const std::string& holder) {
    std::cerr << "pm-ingestctl migrate: waiting for another migrate to finish (it holds the migrators' lock: " << holder
              << ")" << std::endl;
  });
  const auto report = migrator.migrate();
  for (const auto& name : report.skipped) std::cout << "already applied  " << name << "\n";
  for (const auto& name : report.applied) std::cout << "applied          " << name << "\n";
  std::cout << (report.applied.empty() ? "schema up to date" : "migrations applied: " + std::to_string(report.applied.size()))
            << " (" << pm::redact_url(db.config().url) << ")\n";
  return 0;
}

std::string required_wal_dir(const po::variables_map& vm) {
  const std::string dir = vm["wal-dir"].as<std::string>();
  if (dir.empty()) throw pm::UsageError("--wal-dir is required");
  return dir;
}

int run_status(const po::variables_map& vm) {
  pm::Database db(database_config(vm));
  const auto pending = pm::Migrator(db).pending();
  std::cout << "database        " << pm::redact_url(db.config().url) << "\n";
  std::cout << "migrations      " << (pending.empty() ? "up to date" : std::to_string(pending.size()) + " pending") << "\n";
  std::vector<pm::ctl::StoredCheckpoint> checkpoints;
  db.transaction([&](pqxx::work& tx) {
    for (const auto& row : tx.exec("SELECT instance_id, log_id, lsn, applied_events, updated_at FROM pm_ingest_checkpoints ORDER BY instance_id")) {
      std::cout << "instance        " << row[0].c_str() << ": applied up to lsn " << row[2].c_str() << " of log " << row[1].c_str()
                << " (" << row[3].c_str() << " events, at " << row[4].c_str() << ")\n";
      checkpoints.push_back({row[0].c_str(), row[1].c_str(), row[2].as<std::uint64_t>()});
    }
    std::cout << "dead letters    " << tx.exec1("SELECT count(*) FROM pm_dead_letters")[0].c_str() << "\n";
  });
  const std::string dir = vm["wal-dir"].as<std::string>();
  if (dir.empty()) return 0;
  const auto read_after = [&db] {
    std::vector<pm::ctl::StoredCheckpoint> now;
    db.transaction([&](pqxx::work& tx) {
      for (const auto& row : tx.exec("SELECT instance_id, log_id, lsn FROM pm_ingest_checkpoints ORDER BY instance_id"))
        now.push_back({row[0].c_str(), row[1].c_str(), row[2].as<std::uint64_t>()});
    });
    return now;
  };
  return pm::ctl::report_log_health(dir, checkpoints, read_after, vm["instance-id"].as<std::string>(), std::cout);
}

int run_checkpoint_reset(const po::variables_map& vm) {
  // Named, never defaulted: a reset makes a running daemon apply its whole log again.
  const std::string instance = vm["instance-id"].as<std::string>();
  if (instance.empty()) throw pm::UsageError("checkpoint-reset needs --instance-id ID (the daemon's, 'default' unless it was given one)");
  pm::Database db(database_config(vm));
  if (pm::IngestCheckpointRepository(db).reset(instance)) {
    std::cout << "checkpoint of instance '" << instance << "' removed\n";
    return 0;
  }
  // Nothing reset (a mistyped ID): a failure, so that `checkpoint-reset && systemctl start` stops here.
  std::string known;
  db.transaction([&](pqxx::work& tx) {
    for (const auto& row : tx.exec("SELECT instance_id FROM pm_ingest_checkpoints ORDER BY instance_id"))
      known += (known.empty() ? "'" : ", '") + std::string(row[0].c_str()) + "'";
  });
  std::cerr << "instance '" << instance << "' has no checkpoint; nothing was reset (instances with one: "
            << (known.empty() ? "none" : known) << ")\n";
  return 1;
}

int run_wal_verify(const po::variables_map& vm) {
  const std::string dir = required_wal_dir(vm);
  if (vm["salvage"].as<bool>()) return pm::ctl::salvage(dir, false, 0, 0, std::cout) == 0 ? 0 : 2;
  const pm::ctl::LogVerdict v = pm::ctl::verify_log(dir);
  if (!v.ok) {
    std::cerr << v.problem << "\n" << pm::ctl::advice_for(v, dir) << "\n";
    return pm::ctl::exit_code_for(v);
  }
  for (const auto& finding : v.extent.pending_recovery)
    std::cerr << "note: at its next start the daemon will have " << pm::wal::describe(finding) << "\n";
  std::cout << "log ok: " << v.records << " records"
            << (v.records ? " (lsn " + pm::ctl::lsn_ranges(v) + ")" : "")
            << ", " << v.trades << " trades, " << v.records - v.trades << " triggers\n";
  return 0;
}

// A dump cut short by --limit says so, on stdout (where the lines go) and stderr.
void say_where_the_limit_stopped(bool cut, std::uint64_t limit) {
  if (!cut) return;
  const std::string note = "# stopped after " + std::to_string(limit) + " record(s) (--limit " + std::to_string(limit) +
                           "): more follow; --from-lsn continues, a larger --limit prints more";
  std::cout << note << "\n";
  std::cerr << note << "\n";
}

int run_wal_dump(const po::variables_map& vm) {
  const std::string dir = required_wal_dir(vm);
  const auto from = static_cast<std::uint64_t>(bounded(vm, "from-lsn", 0, kNoLimit));
  const bool salvage = vm["salvage"].as<bool>();
  // --salvage prints everything unless a limit is given: its output is what an operator sends
  // again before the damaged log is moved away.
  const std::uint64_t limit = salvage && vm["limit"].defaulted() ? UINT64_MAX : static_cast<std::uint64_t>(bounded(vm, "limit", 0, kNoLimit));
  bool cut = false;
  if (salvage) {
    const std::uint64_t damaged = pm::ctl::salvage(dir, true, from, limit, std::cout, &cut);
    say_where_the_limit_stopped(cut, limit);
    return damaged == 0 ? 0 : 2;
  }
  std::uint64_t left = limit;
  // Events below --from-lsn are read and checked, not passed on: a read cut by a segment the daemon
  // removed is tried again as long as nothing was printed.
  const pm::ctl::LogVerdict v = pm::ctl::verify_log(
      dir,
      [&](const pm::wal::Record& r, const pm::Event& e) {
        if (left-- == 0) {
          cut = true;
          return false;
        }
        std::cout << r.lsn << "\t" << pm::event_to_json(e) << "\n";
        return true;
      },
      pm::wal::posix_log_fs(), from);
  say_where_the_limit_stopped(cut, limit);
  if (!v.ok && v.cut_by_a_removal) {  // not damage: the advice to move the log away would harm it
    std::cerr << v.problem << "\n";
    return 1;
  }
  if (!v.ok) {
    std::cerr << v.problem << "\n" << pm::ctl::advice_for(v, dir) << "\n";
    return pm::ctl::exit_code_for(v);
  }
  return 0;
}

int run_pending(const po::variables_map& vm) {
  pm::Database db(database_config(vm));
  pm::Migrator migrator(db);
  for (const auto& name : migrator.pending()) std::cout << name << "\n";
  return 0;
}

// The unit of polymarket_trades.timestamp as the daemon takes it: --trade-timestamp-unit, else its
// PM_INGESTD_TRADE_TIMESTAMP_UNIT, else its INI file's line, else ms. (A seconds deployment rebuilt
// with `systemd-run -p EnvironmentFile=... pm-ingestctl replay` wrote milliseconds into a fresh
// database, which the daemon and the bot then refused.)
pm::TimestampUnit trade_timestamp_unit(const po::variables_map& vm) {
  std::string given = vm["trade-timestamp-unit"].as<std::string>(), from = "--trade-timestamp-unit";
  if (vm["trade-timestamp-unit"].defaulted()) {
    const DaemonIni ini = daemon_ini(vm);
    if (const std::string env = environment("PM_INGESTD_TRADE_TIMESTAMP_UNIT"); !env.empty()) {
      given = env;
      from = "PM_INGESTD_TRADE_TIMESTAMP_UNIT";
    } else if (!ini.path.empty()) {
      try {
        if (std::string line = pm::config_file_option(ini.path, "trade-timestamp-unit", ini.given_as); !line.empty()) {
          given = line;
          from = "trade-timestamp-unit in " + ini.path;
        }
      } catch (const std::invalid_argument& e) {
        throw pm::UsageError(std::string(e.what()) + " (read for the daemon's trade-timestamp-unit: give --trade-timestamp-unit "
                             "to replay without it)");
      }
    }
  }
  const auto unit = pm::parse_timestamp_unit(given);
  if (!unit) throw pm::UsageError(from + " must be ms or s ('" + given + "' given)");
  return *unit;
}

int run_replay(const po::variables_map& vm) {
  pm::ctl::ReplayCommand c;
  if (vm.count("source")) c.sources = vm["source"].as<std::vector<std::string>>();
  if (c.sources.empty()) throw pm::UsageError("replay needs --source DIR (archive or log directories, repeatable)");
  if (!vm["dry-run"].as<bool>()) c.database = database_config(vm);
  c.batch_max_events = static_cast<std::size_t>(bounded(vm, "batch-max-events", 1, 10'000'000));
  c.connections = static_cast<std::size_t>(bounded(vm, "writer-connections", 1, 16));
  if (c.database) c.database->max_connections = static_cast<int>(c.connections) + 1;
  c.from_lsn = static_cast<std::uint64_t>(bounded(vm, "from-lsn", 0, kNoLimit));
  if (!vm["to-lsn"].defaulted()) c.to_lsn = static_cast<std::uint64_t>(bounded(vm, "to-lsn", 0, kNoLimit));
  if (vm.count("until")) c.until = vm["until"].as<std::string>();
  c.skip_damaged = vm["skip-damaged"].as<bool>();  // before the instance: its name says so
  const std::string given = vm["instance-id"].as<std::string>();
  const bool partial = c.from_lsn > 1 || c.to_lsn != UINT64_MAX || c.until || c.skip_damaged;
  if (partial && !given.empty() && !pm::names_a_replay_checkpoint(given))
    throw pm::UsageError("--instance-id '" + given + "' with --from-lsn, --to-lsn, --until or --skip-damaged: such a run moves its "
                         "checkpoint past events it does not apply, so a daemon (or another replay) resuming from that checkpoint "
                         "would never apply them. Give it a checkpoint of its own: leave --instance-id out, or name one starting "
                         "with 'replay'");
  c.instance_id = given.empty() ? pm::ctl::default_replay_instance(c) : given;
  c.trade_timestamp_unit = trade_timestamp_unit(vm);
  return pm::ctl::run_replay(c);
}

int run_archive(const po::variables_map& vm) {
  const std::string sub = vm.count("subcommand") ? vm["subcommand"].as<std::string>() : "";
  if (sub != "list" && sub != "verify" && sub != "store-damaged") {
    std::cerr << "pm-ingestctl archive: say `archive list`, `archive verify` or `archive store-damaged`"
              << (sub.empty() ? "" : ", not `archive " + sub + "`") << "\n";
    return 2;
  }
  const std::string dir = vm["archive-dir"].as<std::string>();
  if (dir.empty()) throw pm::UsageError("archive " + sub + " needs --archive-dir DIR");
  if (sub == "store-damaged") {
    if (!vm.count("segment")) throw pm::UsageError("archive store-damaged needs --segment N (the number or file name the daemon's message names)");
    return pm::ctl::run_archive_store_damaged(dir, required_wal_dir(vm), vm["segment"].as<std::string>());
  }
  return sub == "list" ? pm::ctl::run_archive_list(dir, vm["json"].as<bool>()) : pm::ctl::run_archive_verify(dir);
}

int run_send(const po::variables_map& vm) {
  pm::ctl::SendCommand c;
  c.socket_path = vm["socket"].as<std::string>();
  if (vm.count("input")) c.inputs = vm["input"].as<std::vector<std::string>>();
  c.format = vm["format"].as<std::string>();
  c.max_in_flight = static_cast<std::size_t>(bounded(vm, "max-in-flight", 1, 1'000'000));
  c.give_up_after = std::chrono::seconds(bounded(vm, "give-up-after", 1, 24 * 3600));
  if (!pm::payload_format_named(c.format))
    throw pm::UsageError("--format: unknown format '" + c.format + "' (" + pm::known_formats() + ")");
  return pm::ctl::run_send(c, STDIN_FILENO);
}

void add_options(po::options_description& options) {
  options.add_options()
      ("help,h", "print this help")
      ("database-url", po::value<std::string>()->default_value(""),
       "PostgreSQL URL (default: $PM_INGESTD_DATABASE_URL, else the first line of $PM_INGESTD_DATABASE_URL_FILE, as the daemon's environment gives them, else $DATABASE_URL); prefer the environment or --database-url-file, "
       "a password given here is masked in ps but may linger in shell history")
      ("database-url-file", po::value<std::string>()->default_value(""),
       "read the URL from the first line of this file")
      ("config", po::value<std::string>()->default_value(""),
       "the daemon's INI file (default: $PM_INGESTD_CONFIG): its database-url or database-url-file line names the "
       "database when neither option nor PM_INGESTD_DATABASE_URL(_FILE) does, before $DATABASE_URL, as in the daemon (parsed as the daemon parses it: a misspelled name or malformed line is refused)")
      ("connect-attempts", po::value<long long>()->default_value(3), "connection attempts before giving up")
      ("instance-id", po::value<std::string>()->default_value(""), "daemon instance (checkpoint-reset: required; status: the one whose checkpoint the log must hold; a daemon's is 'default' unless it was given one), or replay's own checkpoint (default 'replay', plus its bounds and --skip-damaged: 'replay until=...')")
      ("wal-dir", po::value<std::string>()->default_value(""), "log directory (status, wal-verify, wal-dump, archive store-damaged)")
      ("from-lsn", po::value<long long>()->default_value(0), "first record to print (wal-dump) or replay (replay)")
      ("limit", po::value<long long>()->default_value(100), "records to print at most (wal-dump; with --salvage: all unless given); a cut dump ends with a '# stopped after' line")
      ("salvage", po::bool_switch()->default_value(false), "read past damage, listing what was skipped (wal-verify, wal-dump)")
      ("source", po::value<std::vector<std::string>>()->multitoken()->composing(), "archive or log directory to replay (repeatable)")
      ("archive-dir", po::value<std::string>()->default_value(""), "archive directory (archive list, verify, store-damaged)")
      ("segment", po::value<std::string>(), "archive store-damaged: the live segment, by number or file name")
      ("to-lsn", po::value<long long>()->default_value(kNoLimit, "none"), "last record to replay")
      ("until", po::value<std::string>(), "replay only events that arrived before this time (RFC 3339, e.g. 2026-11-30T04:00:00Z)")
      ("dry-run", po::bool_switch()->default_value(false), "replay: read, check and count; write nothing")
      ("skip-damaged", po::bool_switch()->default_value(false), "replay: go on past damaged ranges, naming each skipped LSN range")
      ("batch-max-events", po::value<long long>()->default_value(20000), "replay: events per transaction at most")
      ("writer-connections", po::value<long long>()->default_value(2), "replay: batches in flight at once (they commit in LSN order)")
      ("trade-timestamp-unit", po::value<std::string>()->default_value("ms"),
       "replay: unit of polymarket_trades.timestamp in the database (ms or s); when not given, the daemon's: "
       "$PM_INGESTD_TRADE_TIMESTAMP_UNIT, else the trade-timestamp-unit line of its INI file (--config), else ms")
      ("json", po::bool_switch()->default_value(false), "archive list: print the index as JSON lines")
      ("socket", po::value<std::string>()->default_value("/run/pm-ingestd/ingest.sock"), "send: the daemon's socket")
      ("input", po::value<std::vector<std::string>>()->composing(), "send: a file to send (repeatable; - or none: stdin)")
      ("format", po::value<std::string>()->default_value("pm-ingestd"), "send: what the lines are (pm-ingestd, clob-ws-market, data-api-trades, clob-rest-trades)")
      ("max-in-flight", po::value<long long>()->default_value(1000), "send: lines sent but not yet acknowledged, at most")
      ("give-up-after", po::value<long long>()->default_value(60), "send: seconds without any acknowledgement (daemon unreachable, or answering only busy) before the lines in flight are reported unacknowledged; the input is then not read further (exit 1)");
}

// The visible `options` and the command (the one positional argument) into `vm`; false (with
// the error and the usage on stderr) on a usage error.
bool parse_command_line(int argc, char** argv, const po::options_description& options, po::variables_map& vm) {
  po::options_description hidden;
  hidden.add_options()("command", po::value<std::string>(), "command")("subcommand", po::value<std::string>(), "subcommand");
  po::positional_options_description positional;
  positional.add("command", 1).add("subcommand", 1);
  po::options_description all;
  all.add(options).add(hidden);
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& error) {
    std::cerr << "pm-ingestctl: " << pm::redact_url(error.what()) << "\n\n" << kUsage << options;
    return false;
  }
  return true;
}

// Runs one command; its exit code: 2 for a usage error or no such command, 1 when it failed.
int run_command(const std::string& command, const po::variables_map& vm) {
  try {
    using Run = int (*)(const po::variables_map&);
    static const std::vector<std::pair<std::string, Run>> commands = {
        {"migrate", run_migrate},       {"pending", run_pending},   {"status", run_status},
        {"checkpoint-reset", run_checkpoint_reset}, {"wal-verify", run_wal_verify}, {"wal-dump", run_wal_dump},
        {"replay", run_replay},         {"archive", run_archive},   {"send", run_send}};
    const auto found = std::find_if(commands.begin(), commands.end(), [&](const auto& c) { return c.first == command; });
    if (found == commands.end()) {
      std::cerr << "pm-ingestctl: unknown command '" << command << "'\n\n" << kUsage;
      return 2;
    }
    // `status /var/lib/pm-ingestd/wal` (the directory without --wal-dir) ran without the log's
    // check and exited 0: a health script always passed. Only `archive` takes a second word.
    if (command != "archive" && vm.count("subcommand"))
      throw pm::UsageError("takes no argument '" + vm["subcommand"].as<std::string>() +
                           "': give each value with its option (--wal-dir DIR, --source DIR, --input FILE, ...)");
    return found->second(vm);
  } catch (const pm::UsageError& error) {
    std::cerr << "pm-ingestctl " << command << ": " << pm::redact_url(error.what()) << "\n(see pm-ingestctl --help)\n";
    return 2;
  } catch (const std::exception& error) {
    std::cerr << "pm-ingestctl " << command << ": " << pm::redact_url(error.what()) << "\n";
    return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  po::options_description options("Options");
  add_options(options);
  po::variables_map vm;
  if (!parse_command_line(argc, argv, options, vm)) return 2;
  pm::scrub_argv_passwords(argc, argv);
  if (vm.count("help") || !vm.count("command")) {
    std::cout << kUsage << options;
    return vm.count("help") ? 0 : 2;
  }
  return run_command(vm["command"].as<std::string>(), vm);
}
