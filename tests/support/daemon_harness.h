#pragma once
// DaemonHarness: runs the real pm-ingestd binary for a test, in a private directory (socket,
// log directory, output file), against a given database URL, with a free metrics port.
#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "tests/support/process.h"

namespace pm::test {

std::string make_temp_dir(const std::string& prefix);
int free_tcp_port();
// A PostgreSQL URL nothing answers (a free loopback port): a daemon given it runs with its database down.
std::string unreachable_database_url();
// GET http://127.0.0.1:port/path; the body, or "" when nothing answers.
std::string http_get(int port, const std::string& path);
// The value of one sample in Prometheus text (`name{labels}` exactly as exposed), or -1.
double metric_value(const std::string& exposition, const std::string& series);

class DaemonHarness {
 public:
  DaemonHarness(std::string database_url, std::vector<std::string> extra_args = {});
  ~DaemonHarness();

  // Starts the daemon and waits until its socket accepts connections (fails the test if it exits).
  // Moves to a new metrics port (up to 3 times) when the daemon could not listen on its own: read
  // metrics_port() after start().
  void start();
  void kill9() { process_.kill9(); }
  void signal(int sig) { process_.signal(sig); }
  // Starts the daemon expecting it to exit by itself (a refusal to start); its exit code, or -1
  // when it is still running after `timeout` (then it is killed).
  int run_to_exit(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // As run_to_exit, with SIGTERM already pending when the daemon starts (blocked, raised and kept
  // across exec by a python3 wrapper): as if it came while the daemon recovered its log.
  int run_to_exit_with_sigterm_pending(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // SIGTERM; the exit code (or -1 on timeout).
  int stop(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  bool running() { return process_.running(); }
  Process& process() { return process_; }

  const std::string& dir() const { return dir_; }
  std::string socket() const { return dir_ + "/ingest.sock"; }
  std::string wal_dir() const { return dir_ + "/wal"; }
  std::string output() const { return read_file(dir_ + "/daemon.log"); }
  // Whether the output written after its first `from` bytes (an earlier output().size()) holds `text`.
  bool logged_since(std::size_t from, const std::string& text) const { return output().find(text, from) != std::string::npos; }
  int metrics_port() const { return metrics_port_; }  // the current one: start() may move it
  std::string metrics() const { return http_get(metrics_port_, "/metrics"); }
  double metric(const std::string& series) const { return metric_value(metrics(), series); }
  std::vector<std::string>& args() { return extra_args_; }
  std::string& database_url() { return database_url_; }

 private:
  // Starts pm-ingestd, through `wrapper` (a program and its arguments, the daemon's command line
  // appended) when one is given.
  void launch(const std::vector<std::string>& wrapper = {});
  int wait_for_exit(std::chrono::milliseconds timeout);  // the exit code, or -1 (then killed)
  std::string database_url_;
  std::vector<std::string> extra_args_;
  std::string dir_;
  int metrics_port_;
  Process process_;
};

}  // namespace pm::test
