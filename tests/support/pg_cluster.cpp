#include "tests/support/pg_cluster.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include "tests/support/daemon_harness.h"

namespace pm::test {

namespace {
const std::string kBin = "/usr/lib/postgresql/15/bin";
}

std::string PgCluster::run_as_owner(const std::string& command) const {
  return ::geteuid() == 0 ? "runuser -u postgres -- " + command : command;
}

PgCluster::PgCluster() : dir_(make_temp_dir("pm_pgcluster")), port_(free_tcp_port()) {
  if (::geteuid() == 0 && std::system(("chown postgres " + dir_ + " && chmod 755 " + dir_).c_str()) != 0)
    throw std::runtime_error("cannot hand " + dir_ + " to the postgres user");
  const std::string init = run_as_owner(kBin + "/initdb -D " + dir_ + "/data -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 > " +
                                        dir_ + "/initdb.log 2>&1");
  if (std::system(init.c_str()) != 0) throw std::runtime_error("initdb failed; see " + dir_ + "/initdb.log");
  const std::string conf = "echo \"port = " + std::to_string(port_) + "\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '" +
                           dir_ + "'\nfsync = off\" >> " + dir_ + "/data/postgresql.conf";
  if (std::system(conf.c_str()) != 0) throw std::runtime_error("cannot configure the test cluster");
}

PgCluster::~PgCluster() {
  [[maybe_unused]] int rc = std::system(run_as_owner(kBin + "/pg_ctl -D " + dir_ + "/data -m immediate -w stop > /dev/null 2>&1").c_str());
  std::filesystem::remove_all(dir_);
}

void PgCluster::start() {
  const std::string cmd = run_as_owner(kBin + "/pg_ctl -D " + dir_ + "/data -l " + dir_ + "/server.log -w -t 60 start > /dev/null 2>&1");
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("cannot start the test cluster; see " + dir_ + "/server.log");
}

void PgCluster::stop() {
  const std::string cmd = run_as_owner(kBin + "/pg_ctl -D " + dir_ + "/data -m fast -w -t 60 stop > /dev/null 2>&1");
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("cannot stop the test cluster");
}

std::string PgCluster::url(const std::string& database) const {
  return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + database;
}

}  // namespace pm::test
