#include "tests/support/daemon_harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>

#include <gtest/gtest.h>

#include "tests/support/http_client.h"
#include "tests/support/producer.h"

#ifndef PM_INGESTD_BIN
#error PM_INGESTD_BIN must name the pm-ingestd binary
#endif

namespace pm::test {

std::string make_temp_dir(const std::string& prefix) {
  std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + "_XXXXXX")).string();
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

int free_tcp_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string unreachable_database_url() {
  return "postgresql://predict:predict@127.0.0.1:" + std::to_string(free_tcp_port()) + "/predict";
}

std::string http_get(int port, const std::string& path) { return http_request(port, "GET", path).body; }

double metric_value(const std::string& exposition, const std::string& series) {
  std::istringstream in(exposition);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return -1;
}

DaemonHarness::DaemonHarness(std::string database_url, std::vector<std::string> extra_args)
    : database_url_(std::move(database_url)),
      extra_args_(std::move(extra_args)),
      dir_(make_temp_dir("pm_e2e")),
      metrics_port_(free_tcp_port()) {}

DaemonHarness::~DaemonHarness() {
  process_.kill9();
  if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir_);
}

void DaemonHarness::launch(const std::vector<std::string>& wrapper) {
  std::vector<std::string> args = {"--socket", socket(), "--wal-dir", wal_dir(), "--metrics-listen",
                                   "127.0.0.1:" + std::to_string(metrics_port_), "--log-level", "debug"};
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  std::string program = PM_INGESTD_BIN;
  if (!wrapper.empty()) {
    args.insert(args.begin(), program);
    args.insert(args.begin(), wrapper.begin() + 1, wrapper.end());
    program = wrapper.front();
  }
  // Appended: output() is every run's (tests read the earlier runs' lines after a restart).
  process_.start(program, args, {{"DATABASE_URL", database_url_}}, dir_ + "/daemon.log", Process::Output::Append);
}

int DaemonHarness::run_to_exit(std::chrono::milliseconds timeout) {
  launch();
  return wait_for_exit(timeout);
}

int DaemonHarness::wait_for_exit(std::chrono::milliseconds timeout) {
  const auto code = process_.wait(timeout);
  if (!code) process_.kill9();
  return code ? *code : -1;
}

int DaemonHarness::run_to_exit_with_sigterm_pending(std::chrono::milliseconds timeout) {
  // A blocked signal stays pending across execve.
  launch({"/usr/bin/env", "python3", "-c",
          "import os, signal, sys\n"
          "signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])\n"
          "os.kill(os.getpid(), signal.SIGTERM)\n"
          "os.execv(sys.argv[1], sys.argv[1:])\n"});
  return wait_for_exit(timeout);
}

void DaemonHarness::start() {
  for (int moves = 0;; ++moves) {
    const std::size_t output_before = output().size();
    launch();
    const bool up = wait_until([&] { return socket_accepts(socket()) || !process_.running(); }, std::chrono::seconds(20));
    if (up && process_.running()) return;
    // free_tcp_port() found the metrics port free when it was picked; another test's process
    // (ctest -j) may have bound it since. The daemon then exits at once saying so: a new port.
    const std::string taken = "cannot serve /metrics: cannot listen on 127.0.0.1:" + std::to_string(metrics_port_) + ":";
    if (!up || moves == 3 || !logged_since(output_before, taken)) break;
    metrics_port_ = free_tcp_port();
  }
  FAIL() << "pm-ingestd did not come up:\n" << output();
}

int DaemonHarness::stop(std::chrono::milliseconds timeout) {
  process_.signal(SIGTERM);
  auto code = process_.wait(timeout);
  return code ? *code : -1;
}

}  // namespace pm::test
