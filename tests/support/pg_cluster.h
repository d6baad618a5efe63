#pragma once
// PgCluster: a throwaway PostgreSQL 15 server of a test's own (initdb in a temp directory, its own
// port, trust auth on loopback), so a test can stop, kill and restart PostgreSQL without touching
// the shared private cluster other suites use. Runs the server as `postgres` when the test runs
// as root (PostgreSQL refuses root).
#include <string>

namespace pm::test {

class PgCluster {
 public:
  PgCluster();   // initdb; not started
  ~PgCluster();  // stops the server (immediate) and deletes the directory

  void start();
  void stop();   // fast shutdown: sessions are terminated
  int port() const { return port_; }
  std::string url(const std::string& database = "postgres") const;

 private:
  std::string run_as_owner(const std::string& command) const;
  std::string dir_;
  int port_;
};

}  // namespace pm::test
