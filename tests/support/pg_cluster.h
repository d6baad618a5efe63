#pragma once
// PgCluster: a throwaway PostgreSQL 15 server of a test's own (initdb in a temp directory, its own
// port, trust auth on loopback), so a test can stop, kill and restart PostgreSQL without touching
// the shared private cluster other suites use. Runs the server as `postgres` when the test runs
// as root (PostgreSQL refuses root). A standby of another cluster is made with pg_basebackup
// (streaming replication, asynchronous unless the primary is told otherwise).
#include <chrono>
#include <memory>
#include <string>

namespace pm::test {

class PgCluster {
 public:
  PgCluster();   // initdb; not started
  ~PgCluster();  // stops the server (immediate) and deletes the directory

  // A standby of `primary` (running), streaming through the physical replication slot `slot`,
  // which this creates on the primary. Not started.
  static std::unique_ptr<PgCluster> standby_of(const PgCluster& primary, const std::string& slot);

  // Moves to a new port (up to 3 times) when the server could not bind its own, unless port() or
  // url() was read before.
  void start();
  void stop();   // fast shutdown: sessions are terminated
  void crash();  // immediate shutdown: no checkpoint, as a power cut would leave it
  void promote();  // a standby becomes a primary (waits until it accepts writes)
  void configure(const std::string& lines);  // appended to postgresql.conf (takes effect on start)
  // Held commits: COMMIT waits for a synchronous standby that never answers. Each held commit is
  // durable locally but invisible, and its session waits (wait_event SyncRep) until it is ended or
  // the commits are released. hold_commits returns once new sessions see the setting.
  void hold_commits();
  bool wait_for_held_commit(std::chrono::milliseconds timeout) const;  // one is waiting, within timeout
  // Ends the sessions of held commits, and returns once they are gone: the commits stay, their
  // clients never hear of them (in doubt).
  void end_held_commit_sessions() const;
  void release_commits();  // commits no longer wait; the held ones complete
  int port() const {
    port_read_ = true;
    return port_;
  }
  const std::string& dir() const { return dir_; }
  std::string url(const std::string& database = "postgres") const;
  // The first column of the first row of `sql` on database postgres, or "" when none.
  std::string query(const std::string& sql) const;

 private:
  explicit PgCluster(bool init);
  int held_commit_count() const;  // sessions whose COMMIT waits for the standby
  std::string run_as_owner(const std::string& command) const;
  void pg_ctl(const std::string& args, const std::string& what) const;
  std::string dir_;
  int port_;
  mutable bool port_read_ = false;  // a test may hold port_ (in a URL): start() must not move it
};

}  // namespace pm::test
