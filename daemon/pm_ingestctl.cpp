// pm-ingestctl: the operator's tool (migrations, status, checkpoints, log inspection).
// Each command is a small function; exit codes: 0 ok, 1 failure, 2 usage error or corrupt log.
#include <iostream>
#include <string>
#include <vector>

#include <boost/program_options.hpp>

#include "daemon/cli_common.h"
#include "ingest/event_codec.h"
#include "ingest/protocol.h"
#include "ingest/wal.h"
#include "ingest/wal_reader.h"
#include "repos/database.h"
#include "repos/ingest_checkpoint_repository.h"
#include "repos/migrator.h"

namespace po = boost::program_options;

namespace {

constexpr const char* kUsage =
    "Usage: pm-ingestctl COMMAND [options]\n"
    "\n"
    "Commands:\n"
    "  migrate   apply the bundled seed/*.sql migrations not applied yet, each in its own\n"
    "            transaction; safe to run again and on a database that already has the\n"
    "            production schema\n"
    "  pending   list the bundled migrations not applied yet\n"
    "  status    every instance's checkpoint, dead letters and (with --wal-dir) the log's state\n"
    "  checkpoint-reset --instance-id ID\n"
    "            forget an instance's checkpoint (after its log was fully applied and\n"
    "            removed); its next start applies its log from the oldest record\n"
    "  wal-verify --wal-dir DIR\n"
    "            read the whole log, checking every checksum and sequence number\n"
    "  wal-dump --wal-dir DIR [--from-lsn N] [--limit N]\n"
    "            print the log's events as JSON lines (lsn first)\n"
    "\n";

pm::DatabaseConfig database_config(const po::variables_map& vm) {
  auto url = pm::resolve_database_url(vm["database-url"].as<std::string>(),
                                      vm["database-url-file"].as<std::string>());
  if (!url) throw std::runtime_error("no database: give --database-url, --database-url-file or DATABASE_URL");
  pm::DatabaseConfig config;
  config.url = *url;
  config.min_connections = 0;
  config.max_connections = 2;
  config.reconnect_max_attempts = vm["connect-attempts"].as<int>();
  return config;
}

int run_migrate(const po::variables_map& vm) {
  pm::Database db(database_config(vm));
  pm::Migrator migrator(db);
  const auto report = migrator.migrate();
  for (const auto& name : report.skipped) std::cout << "already applied  " << name << "\n";
  for (const auto& name : report.applied) std::cout << "applied          " << name << "\n";
  std::cout << (report.applied.empty() ? "schema up to date" : "migrations applied: " + std::to_string(report.applied.size()))
            << " (" << pm::redact_url(db.config().url) << ")\n";
  return 0;
}

int run_status(const po::variables_map& vm) {
  pm::Database db(database_config(vm));
  const auto pending = pm::Migrator(db).pending();
  std::cout << "database        " << pm::redact_url(db.config().url) << "\n";
  std::cout << "migrations      " << (pending.empty() ? "up to date" : std::to_string(pending.size()) + " pending") << "\n";
  db.transaction([&](pqxx::work& tx) {
    for (const auto& row : tx.exec("SELECT instance_id, log_id, lsn, applied_events, updated_at FROM pm_ingest_checkpoints ORDER BY instance_id"))
      std::cout << "instance        " << row[0].c_str() << ": applied up to lsn " << row[2].c_str() << " of log " << row[1].c_str()
                << " (" << row[3].c_str() << " events, at " << row[4].c_str() << ")\n";
    std::cout << "dead letters    " << tx.exec1("SELECT count(*) FROM pm_dead_letters")[0].c_str() << "\n";
  });
  if (const std::string dir = vm["wal-dir"].as<std::string>(); !dir.empty()) {
    const pm::wal::LogExtent extent = pm::wal::inspect_log(dir);
    std::cout << "log             " << pm::wal::log_id_hex(extent.log_id) << " in " << dir << ": lsn " << extent.oldest.lsn + 1
              << ".." << extent.end.lsn << ", " << extent.segments << " segment(s), "
              << extent.end.log_offset - extent.oldest.log_offset << " record bytes\n";
  }
  return 0;
}

int run_checkpoint_reset(const po::variables_map& vm) {
  const std::string instance = vm["instance-id"].as<std::string>();
  pm::Database db(database_config(vm));
  const bool removed = pm::IngestCheckpointRepository(db).reset(instance);
  std::cout << (removed ? "checkpoint of instance '" + instance + "' removed" : "instance '" + instance + "' had no checkpoint") << "\n";
  return 0;
}

// Reads the log from its oldest record to its end; `on_record` sees each decoded event.
template <class Fn>
int read_log(const po::variables_map& vm, Fn&& on_record) {
  const std::string dir = vm["wal-dir"].as<std::string>();
  if (dir.empty()) throw std::runtime_error("--wal-dir is required");
  try {
    // Read-only: safe while a daemon appends; a torn tail is reported, not cut.
    const pm::wal::LogExtent extent = pm::wal::inspect_log(dir);
    if (extent.tail == pm::wal::TailState::Corrupt)
      throw pm::wal::WalCorruption(dir + "/" + pm::wal::segment_file_name(extent.end.segment), extent.end.offset, extent.tail_problem);
    if (extent.tail == pm::wal::TailState::Torn)
      std::cerr << "note: " << pm::wal::segment_file_name(extent.end.segment) << " ends in a torn last group at offset "
                << extent.end.offset << " (" << extent.tail_problem << "); the daemon cuts it at its next start\n";
    pm::wal::WalReader reader(dir, extent.log_id, extent.oldest);
    while (auto record = reader.next(extent.end)) {
      std::string error;
      auto event = pm::decode_event(record->payload, &error);
      if (!event) throw pm::wal::WalCorruption(dir + "/" + pm::wal::segment_file_name(record->start.segment), record->start.offset, error);
      if (!on_record(*record, *event)) break;
    }
    return 0;
  } catch (const pm::wal::WalCorruption& e) {
    std::cerr << e.what() << "\n";
    return 2;
  }
}

int run_wal_verify(const po::variables_map& vm) {
  std::uint64_t records = 0, first = 0, last = 0, trades = 0;
  const int rc = read_log(vm, [&](const pm::wal::Record& r, const pm::Event& e) {
    if (records++ == 0) first = r.lsn;
    last = r.lsn;
    trades += e.type() == pm::EventType::Trade;
    return true;
  });
  if (rc == 0)
    std::cout << "log ok: " << records << " records" << (records ? " (lsn " + std::to_string(first) + ".." + std::to_string(last) + ")" : "")
              << ", " << trades << " trades, " << records - trades << " triggers\n";
  return rc;
}

int run_wal_dump(const po::variables_map& vm) {
  const std::uint64_t from = vm["from-lsn"].as<std::uint64_t>();
  std::uint64_t left = vm["limit"].as<std::uint64_t>();
  return read_log(vm, [&](const pm::wal::Record& r, const pm::Event& e) {
    if (r.lsn < from) return true;
    if (left-- == 0) return false;
    std::cout << r.lsn << "\t" << pm::event_to_json(e) << "\n";
    return true;
  });
}

int run_pending(const po::variables_map& vm) {
  pm::Database db(database_config(vm));
  pm::Migrator migrator(db);
  for (const auto& name : migrator.pending()) std::cout << name << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  po::options_description options("Options");
  options.add_options()
      ("help,h", "print this help")
      ("database-url", po::value<std::string>()->default_value(""),
       "PostgreSQL URL (default: $DATABASE_URL); prefer the environment or --database-url-file, "
       "a password given here is masked in ps but may linger in shell history")
      ("database-url-file", po::value<std::string>()->default_value(""),
       "read the URL from the first line of this file")
      ("connect-attempts", po::value<int>()->default_value(3), "connection attempts before giving up")
      ("instance-id", po::value<std::string>()->default_value("default"), "daemon instance (checkpoint-reset)")
      ("wal-dir", po::value<std::string>()->default_value(""), "log directory (status, wal-verify, wal-dump)")
      ("from-lsn", po::value<std::uint64_t>()->default_value(0), "first record to print (wal-dump)")
      ("limit", po::value<std::uint64_t>()->default_value(100), "records to print at most (wal-dump)");
  po::options_description hidden;
  hidden.add_options()("command", po::value<std::string>(), "command");
  po::positional_options_description positional;
  positional.add("command", 1);
  po::options_description all;
  all.add(options).add(hidden);

  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& error) {
    std::cerr << "pm-ingestctl: " << error.what() << "\n\n" << kUsage << options;
    return 2;
  }
  pm::scrub_argv_passwords(argc, argv);
  if (vm.count("help") || !vm.count("command")) {
    std::cout << kUsage << options;
    return vm.count("help") ? 0 : 2;
  }
  const std::string command = vm["command"].as<std::string>();
  try {
    if (command == "migrate") return run_migrate(vm);
    if (command == "pending") return run_pending(vm);
    if (command == "status") return run_status(vm);
    if (command == "checkpoint-reset") return run_checkpoint_reset(vm);
    if (command == "wal-verify") return run_wal_verify(vm);
    if (command == "wal-dump") return run_wal_dump(vm);
    std::cerr << "pm-ingestctl: unknown command '" << command << "'\n\n" << kUsage;
    return 2;
  } catch (const std::exception& error) {
    std::cerr << "pm-ingestctl " << command << ": " << pm::redact_url(error.what()) << "\n";
    return 1;
  }
}
