#include "tests/support/pg_cluster.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include <pqxx/pqxx>

#include "tests/support/daemon_harness.h"

namespace pm::test {

namespace {
const std::string kBin = "/usr/lib/postgresql/15/bin";
}

std::string PgCluster::run_as_owner(const std::string& command) const {
  return ::geteuid() == 0 ? "runuser -u postgres -- " + command : command;
}

PgCluster::PgCluster() : PgCluster(true) {}

PgCluster::PgCluster(bool init) : dir_(make_temp_dir("pm_pgcluster")), port_(free_tcp_port()) {
  if (::geteuid() == 0 && std::system(("chown postgres " + dir_ + " && chmod 755 " + dir_).c_str()) != 0)
    throw std::runtime_error("cannot hand " + dir_ + " to the postgres user");
  if (!init) return;
  const std::string initdb = run_as_owner(kBin + "/initdb -D " + dir_ + "/data -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 > " +
                                          dir_ + "/initdb.log 2>&1");
  if (std::system(initdb.c_str()) != 0) throw std::runtime_error("initdb failed; see " + dir_ + "/initdb.log");
  configure("listen_addresses = '127.0.0.1'\nfsync = off");
}

std::unique_ptr<PgCluster> PgCluster::standby_of(const PgCluster& primary, const std::string& slot) {
  primary.query("SELECT pg_create_physical_replication_slot('" + slot + "', true)");
  std::unique_ptr<PgCluster> standby(new PgCluster(false));
  const std::string backup = standby->run_as_owner(kBin + "/pg_basebackup -h 127.0.0.1 -p " + std::to_string(primary.port()) +
                                                   " -U postgres -D " + standby->dir_ + "/data -R -X stream -S " + slot + " > " +
                                                   standby->dir_ + "/basebackup.log 2>&1");
  if (std::system(backup.c_str()) != 0) throw std::runtime_error("pg_basebackup failed; see " + standby->dir_ + "/basebackup.log");
  standby->configure("");  // its own port and socket directory after the primary's
  return standby;
}

void PgCluster::configure(const std::string& lines) {
  // Later lines win: the port and socket directory are written again after whatever is added.
  const std::string conf = "printf '%s\\n' \"" + lines + "\" \"port = " + std::to_string(port_) + "\" \"unix_socket_directories = '" +
                           dir_ + "'\" >> " + dir_ + "/data/postgresql.conf";
  if (std::system(conf.c_str()) != 0) throw std::runtime_error("cannot configure the test cluster");
}

PgCluster::~PgCluster() {
  [[maybe_unused]] int rc = std::system(run_as_owner(kBin + "/pg_ctl -D " + dir_ + "/data -m immediate -w stop > /dev/null 2>&1").c_str());
  std::filesystem::remove_all(dir_);
}

void PgCluster::pg_ctl(const std::string& args, const std::string& what) const {
  const std::string cmd = run_as_owner(kBin + "/pg_ctl -D " + dir_ + "/data -l " + dir_ + "/server.log -w -t 60 " + args + " > /dev/null 2>&1");
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("cannot " + what + " the test cluster; see " + dir_ + "/server.log");
}

void PgCluster::start() {
  const std::string log = dir_ + "/server.log";
  for (int moves = 0;; ++moves) {
    const std::size_t log_before = std::filesystem::exists(log) ? std::filesystem::file_size(log) : 0;
    try {
      pg_ctl("start", "start");
      return;
    } catch (const std::runtime_error&) {
      // free_tcp_port() found the port free when it was picked; another test's process (ctest -j)
      // may have bound it since. Then a new port, unless a test already holds the old one (its URL
      // would be stale).
      const bool taken = read_file(log).find("Address already in use", log_before) != std::string::npos;
      if (!taken || port_read_ || moves == 3) throw;
      port_ = free_tcp_port();
      configure("");  // later lines win
    }
  }
}
void PgCluster::stop() { pg_ctl("-m fast stop", "stop"); }
void PgCluster::crash() { pg_ctl("-m immediate stop", "crash"); }
void PgCluster::promote() { pg_ctl("promote", "promote"); }

std::string PgCluster::query(const std::string& sql) const {
  pqxx::connection c(url());
  pqxx::nontransaction tx(c);
  const pqxx::result r = tx.exec(sql);
  return r.empty() || r[0].empty() || r[0][0].is_null() ? "" : r[0][0].as<std::string>();
}

namespace {
constexpr const char* kHeldCommitSessions = "FROM pg_stat_activity WHERE wait_event = 'SyncRep'";
}

int PgCluster::held_commit_count() const {
  return std::stoi(query(std::string("SELECT count(*) ") + kHeldCommitSessions));
}

void PgCluster::hold_commits() {
  query("ALTER SYSTEM SET synchronous_standby_names = 'nobody_answers'");
  query("SELECT pg_reload_conf()");
  if (!wait_until([&] { return query("SHOW synchronous_standby_names") == "nobody_answers"; }, std::chrono::seconds(10)))
    throw std::runtime_error("the test cluster did not take synchronous_standby_names; see " + dir_ + "/server.log");
}

bool PgCluster::wait_for_held_commit(std::chrono::milliseconds timeout) const {
  return wait_until([&] { return held_commit_count() > 0; }, timeout);
}

// pg_terminate_backend only signals: wait until the sessions are gone, so that a release_commits()
// after this cannot complete a held commit whose session was meant to end.
void PgCluster::end_held_commit_sessions() const {
  query(std::string("SELECT count(pg_terminate_backend(pid)) ") + kHeldCommitSessions);
  if (!wait_until([&] { return held_commit_count() == 0; }, std::chrono::seconds(10)))
    throw std::runtime_error("sessions waiting for a synchronous standby outlived pg_terminate_backend; see " + dir_ + "/server.log");
}

void PgCluster::release_commits() {
  query("ALTER SYSTEM RESET synchronous_standby_names");
  query("SELECT pg_reload_conf()");
}

std::string PgCluster::url(const std::string& database) const {
  port_read_ = true;
  return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + database;
}

}  // namespace pm::test
