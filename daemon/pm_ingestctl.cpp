// pm-ingestctl: the operator's tool.
//   pm-ingestctl migrate [--database-url URL]   apply pending seed migrations
//   pm-ingestctl pending [--database-url URL]   list migrations not applied yet
#include <iostream>
#include <string>
#include <vector>

#include <boost/program_options.hpp>

#include "daemon/cli_common.h"
#include "repos/database.h"
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
      ("connect-attempts", po::value<int>()->default_value(3), "connection attempts before giving up");
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
    std::cerr << "pm-ingestctl: unknown command '" << command << "'\n\n" << kUsage;
    return 2;
  } catch (const std::exception& error) {
    std::cerr << "pm-ingestctl " << command << ": " << pm::redact_url(error.what()) << "\n";
    return 1;
  }
}
