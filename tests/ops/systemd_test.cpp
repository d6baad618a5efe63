// systemd: the units pass systemd-analyze, socket activation works with systemd's own launcher,
// and the daemon's sd_notify conversation (READY, STATUS, WATCHDOG, STOPPING) is what the
// service unit relies on. NOTIFY_SOCKET is a datagram socket of the test, as systemd's would be.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <unistd.h>

#include <memory>
#include <optional>
#include <utility>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <regex>

#include <pqxx/pqxx>

#include "tests/e2e/e2e_util.h"
#include "tests/ops/ops_util.h"
#include "tests/support/black_hole.h"
#include "tests/support/daemon_harness.h"
#include "tests/support/producer.h"
#include "tests/support/test_database.h"

namespace pm::test {
namespace {

using namespace std::chrono_literals;

const std::string kUnitDir = std::string(PM_SOURCE_DIR) + "/systemd";

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (std::size_t at = 0; (at = text.find(from, at)) != std::string::npos; at += to.size()) text.replace(at, from.size(), to);
  return text;
}

// Copies of the units whose ExecStart names the binary just built (verify wants it to exist).
std::string units_for_verify(const std::string& dir) {
  write_file(dir + "/pm-ingestd.service",
             replace_all(read_file(kUnitDir + "/pm-ingestd.service"), "/usr/sbin/pm-ingestd", PM_INGESTD_BIN));
  write_file(dir + "/pm-ingestd.socket", read_file(kUnitDir + "/pm-ingestd.socket"));
  return dir + "/pm-ingestd.service " + dir + "/pm-ingestd.socket";
}

TEST(OpsSystemd, UnitsPassSystemdAnalyzeVerifyAndSecurity) {
  if (!executable("/usr/bin/systemd-analyze")) GTEST_SKIP() << "systemd-analyze missing (Debian package systemd)";
  const ScratchDir scratch("pm_ops_units");
  const std::string& dir = scratch.path();
  const CommandResult verify = run_command("/usr/bin/systemd-analyze verify " + units_for_verify(dir));
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  EXPECT_EQ(verify.output, "") << "systemd-analyze verify complained";

  // The check bites: systemd-analyze exits 0 on settings it ignores, but says so, and an empty
  // output is what the test requires.
  write_file(dir + "/pm-ingestd.service",
             replace_all(read_file(dir + "/pm-ingestd.service"), "Type=notify", "Type=notify-please"));
  EXPECT_TRUE(contains(run_command("/usr/bin/systemd-analyze verify " + dir + "/pm-ingestd.service").output,
                       "Failed to parse service type"));
  units_for_verify(dir);

  // Hardening: exposure 2.5 or better on systemd's 0 (locked down) to 10 (unprotected) scale.
  const CommandResult security =
      run_command("/usr/bin/systemd-analyze security --offline=true --threshold=25 " + dir + "/pm-ingestd.service");
  EXPECT_EQ(security.exit_code, 0) << security.output;
  std::smatch m;
  const std::regex overall("Overall exposure level for pm-ingestd.service: ([0-9.]+)");
  ASSERT_TRUE(std::regex_search(security.output, m, overall)) << security.output;
  std::cout << "[ info ] systemd-analyze security exposure: " << m[1] << "\n";
}

TEST(OpsSystemd, UnitsSayWhatTheIssueAsksAndMatchTheDaemonsDefaults) {
  const std::string service = read_file(kUnitDir + "/pm-ingestd.service");
  const std::string socket = read_file(kUnitDir + "/pm-ingestd.socket");
  for (const char* line : {"Type=notify\n", "NotifyAccess=main\n", "WatchdogSec=", "Restart=on-failure\n",
                           "StateDirectory=pm-ingestd\n", "RuntimeDirectory=pm-ingestd\n", "RuntimeDirectoryPreserve=yes\n",
                           "EnvironmentFile=-/etc/pm-ingestd/pm-ingestd.env\n", "User=pm-ingestd\n", "ProtectSystem=strict\n",
                           "ProtectHome=yes\n", "NoNewPrivileges=yes\n", "PrivateTmp=yes\n", "PrivateDevices=yes\n",
                           "ProtectKernelTunables=yes\n", "ProtectKernelModules=yes\n", "ProtectKernelLogs=yes\n",
                           "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6\n", "LockPersonality=yes\n",
                           "MemoryDenyWriteExecute=yes\n", "SystemCallArchitectures=native\n"})
    EXPECT_TRUE(contains(service, std::string("\n") + line)) << line;
  EXPECT_FALSE(contains(service, "\nPrivateUsers=yes")) << "PrivateUsers would hide producers' uids from SO_PEERCRED";
  for (const char* line : {"ListenStream=/run/pm-ingestd/ingest.sock\n", "SocketMode=0660\n", "SocketGroup=pm-producers\n"})
    EXPECT_TRUE(contains(socket, std::string("\n") + line)) << line;
  // The socket outlives restarts of the service, as the README says: PartOf= stopped it (and,
  // with RemoveOnStop=, deleted it) with every `systemctl restart pm-ingestd`.
  EXPECT_FALSE(contains(socket, "\nPartOf=")) << socket;
  // ProtectSystem=strict: an archive directory elsewhere needs ReadWritePaths=; unit and example say so.
  EXPECT_TRUE(contains(service, "ReadWritePaths=")) << service;
  EXPECT_TRUE(contains(read_file(kUnitDir + "/pm-ingestd.env.example"), "ReadWritePaths=")) << "pm-ingestd.env.example";

  // The paths the units use are the daemon's own defaults, so an empty environment file works.
  const CommandResult help = run_command(std::string(PM_INGESTD_BIN) + " --help");
  ASSERT_EQ(help.exit_code, 0) << help.output;
  EXPECT_TRUE(contains(help.output, "(=/run/pm-ingestd/ingest.sock)")) << help.output;
  EXPECT_TRUE(contains(help.output, "(=/var/lib/pm-ingestd/wal)")) << help.output;
  EXPECT_TRUE(contains(help.output, "(=127.0.0.1:9464)")) << help.output;
  EXPECT_TRUE(contains(service, "--wal-dir /var/lib/pm-ingestd/wal --socket /run/pm-ingestd/ingest.sock"));
}

TEST(OpsSystemd, EveryVariableOfTheExampleEnvironmentFileIsAnOption) {
  const std::string example = read_file(kUnitDir + "/pm-ingestd.env.example");
  std::regex assignment(R"(^#?((PM_INGESTD_[A-Z_]+|DATABASE_URL)=.*)$)");
  std::istringstream in(example);
  int checked = 0;
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (!std::regex_match(line, m, assignment)) continue;
    // The daemon refuses PM_INGESTD_ variables that name no option before it prints --help.
    const CommandResult r = run_command("env " + shell_quote(m[1].str()) + " " + PM_INGESTD_BIN + " --help");
    EXPECT_EQ(r.exit_code, 0) << line << "\n" << r.output;
    ++checked;
  }
  EXPECT_GE(checked, 8);
  const CommandResult typo = run_command(std::string("env PM_INGESTD_WAL_MAX_BYTEZ=1G ") + PM_INGESTD_BIN + " --help");
  EXPECT_EQ(typo.exit_code, 1) << typo.output;
}

class OpsSystemdDaemon : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { tdb_ = new TestDatabase("ops_systemd"); }
  static void TearDownTestSuite() { delete tdb_; }
  void SetUp() override {
    tdb_->exec("TRUNCATE polymarket_trades, polymarket_first_triggers, trade_watermarks, trigger_watermarks, "
               "pm_ingest_checkpoints, pm_dead_letters");
  }
  static TestDatabase* tdb_;
};
TestDatabase* OpsSystemdDaemon::tdb_ = nullptr;

TEST_F(OpsSystemdDaemon, SocketActivationAcksOverTheInheritedSocket) {
  if (!executable("/usr/bin/systemd-socket-activate")) GTEST_SKIP() << "systemd-socket-activate missing (package systemd)";
  const ScratchDir scratch("pm_ops_activate");
  const std::string& dir = scratch.path();
  const std::string sock = dir + "/ingest.sock";
  const int metrics_port = free_tcp_port();
  Process activator;
  // systemd-socket-activate binds the socket, waits for the first connection, then execs
  // pm-ingestd in its place with LISTEN_FDS=1 (fd 3), as systemd does for pm-ingestd.socket.
  activator.start("/usr/bin/systemd-socket-activate",
                  {"-l", sock, "-E", "DATABASE_URL=" + tdb_->url(), PM_INGESTD_BIN, "--wal-dir", dir + "/wal",
                   "--metrics-listen", "127.0.0.1:" + std::to_string(metrics_port), "--socket", dir + "/own.sock"},
                  {}, dir + "/out.log");
  struct stat st {};
  ASSERT_TRUE(wait_until([&] { return ::stat(sock.c_str(), &st) == 0 || !activator.running(); }, 10s))
      << read_file(dir + "/out.log");
  ASSERT_TRUE(S_ISSOCK(st.st_mode));

  {
    // The file appears at bind(), a moment before listen(): until then a connect is refused. The
    // first connection that gets through makes systemd-socket-activate start the daemon.
    std::unique_ptr<Producer> first;
    ASSERT_TRUE(wait_until([&] {
      try {
        first = std::make_unique<Producer>(sock);
        return true;
      } catch (const std::runtime_error&) {
        return false;
      }
    }, 10s)) << read_file(dir + "/out.log");
    Producer& p = *first;
    ASSERT_TRUE(p.send({trade_line("c", "sa1"), trade_line("c", "sa2"), trigger_line("tok", "c", "0.8")}));
    auto replies = p.wait_ack(3, 20s);
    ASSERT_TRUE(replies) << read_file(dir + "/out.log");
    EXPECT_EQ(replies->size(), 1u);
  }
  EXPECT_TRUE(wait_until([&] { return tdb_->count("polymarket_trades") == 2; }, 20s));
  EXPECT_EQ(tdb_->count("polymarket_first_triggers"), 1);
  const std::string out = read_file(dir + "/out.log");
  EXPECT_TRUE(contains(out, "listening on the socket inherited from systemd (fd 3)")) << out;
  EXPECT_NE(::access((dir + "/own.sock").c_str(), F_OK), 0) << "the daemon bound a socket of its own";
  // A second producer on the same inherited socket, after the first one left.
  {
    Producer p(sock);
    ASSERT_TRUE(p.send({trade_line("c", "sa3")}));
    EXPECT_TRUE(p.wait_ack(1, 10s));
  }
  // SIGTERM finishes only the batch in flight (an acked event not yet in a batch is replayed at
  // the next start), so the third row is awaited before the stop, not assumed after it.
  EXPECT_TRUE(wait_until([&] { return tdb_->count("polymarket_trades") == 3; }, 20s));
  EXPECT_EQ(metric_value(http_get(metrics_port, "/metrics"), "pm_ingest_connections_accepted_total"), 2);

  // `systemctl restart pm-ingestd.socket` under the running service: systemd removes the file and
  // binds a new socket there, which this daemon never sees. /readyz said ready all the same.
  ASSERT_EQ(::unlink(sock.c_str()), 0);
  const int restarted = listen_at(sock);
  ASSERT_GE(restarted, 0) << std::strerror(errno);
  HttpResponse ready;
  EXPECT_TRUE(wait_until(
      [&] {
        ready = http_request(metrics_port, "GET", "/readyz");
        return contains(ready.body, "\"failing\":[\"socket_open\"]");
      },
      10s))
      << ready.body;
  EXPECT_TRUE(contains(ready.body, sock + " was removed or replaced")) << ready.body;

  activator.signal(SIGTERM);
  EXPECT_EQ(activator.wait(30s), 0);
  EXPECT_EQ(::stat(sock.c_str(), &st), 0) << "the socket belongs to systemd: the daemon must not remove it";
  EXPECT_EQ(tdb_->count("polymarket_trades"), 3) << "the stop wrote nothing twice";
  ::close(restarted);
}

// The group of the socket file systemd-socket-activate binds (as root: root:root, or `chgrp` to
// `file_group` before the daemon starts), once a pm-ingestd told --socket-group 4242 has taken it
// over and acked a line; and the daemon's output.
std::pair<gid_t, std::string> inherited_socket_group(TestDatabase& tdb, std::optional<gid_t> file_group) {
  // Each run is a new log: the checkpoint of the run before would be another log's (exit 2).
  tdb.exec("TRUNCATE polymarket_trades, pm_ingest_checkpoints");
  const ScratchDir scratch("pm_ops_activate_group");
  const std::string& dir = scratch.path();
  const std::string sock = dir + "/ingest.sock";
  Process activator;
  activator.start("/usr/bin/systemd-socket-activate",
                  {"-l", sock, "-E", "DATABASE_URL=" + tdb.url(), PM_INGESTD_BIN, "--wal-dir", dir + "/wal",
                   "--metrics-listen", "127.0.0.1:" + std::to_string(free_tcp_port()), "--socket", dir + "/own.sock",
                   "--socket-group", "4242"},
                  {}, dir + "/out.log");
  struct stat st {};
  EXPECT_TRUE(wait_until([&] { return ::stat(sock.c_str(), &st) == 0 || !activator.running(); }, 10s));
  if (file_group) {
    EXPECT_EQ(::chown(sock.c_str(), static_cast<uid_t>(-1), *file_group), 0) << std::strerror(errno);
  }
  std::unique_ptr<Producer> first;
  EXPECT_TRUE(wait_until([&] {
    try {
      first = std::make_unique<Producer>(sock);
      return true;
    } catch (const std::runtime_error&) {
      return !activator.running();  // it failed: stop waiting
    }
  }, 10s));
  EXPECT_TRUE(first && first->send({trade_line("c", "grp1")}) && first->wait_ack(1, 20s))  // start() ran
      << read_file(dir + "/out.log");
  first.reset();
  EXPECT_EQ(::stat(sock.c_str(), &st), 0);
  activator.signal(SIGTERM);
  EXPECT_EQ(activator.wait(30s), 0);
  return {st.st_gid, read_file(dir + "/out.log")};
}

// pm-ingestd.service's RuntimeDirectory= re-owns /run/pm-ingestd's files to pm-ingestd:pm-ingestd
// when pm-ingestd.socket created the directory first (at every boot): the socket's file lost
// SocketGroup=pm-producers and producers were refused. The daemon gives an inherited file that
// carries its own user and group (here root's: the activator binds as root) --socket-group again;
// a file of another group is the socket unit's SocketGroup=, set on purpose: left, with an error.
TEST_F(OpsSystemdDaemon, AnInheritedSocketFileOfTheServicesOwnGroupIsGivenTheSocketGroup) {
  if (!executable("/usr/bin/systemd-socket-activate")) GTEST_SKIP() << "systemd-socket-activate missing (package systemd)";
  if (::geteuid() != 0) GTEST_SKIP() << "needs root: the file is given a group the test user is not in";
  const auto [own_group_then, mended] = inherited_socket_group(*tdb_, std::nullopt);
  EXPECT_EQ(own_group_then, 4242u) << mended;
  EXPECT_TRUE(contains(mended, "had group 0 (the service's own: RuntimeDirectory= re-owned it), not --socket-group's 4242: "
                               "set to 4242")) << mended;

  const auto [chosen_then, left] = inherited_socket_group(*tdb_, 4343);
  EXPECT_EQ(chosen_then, 4343u) << left;
  EXPECT_TRUE(contains(left, "has group 4343, not --socket-group's 4242: left as the socket unit made it")) << left;
}

TEST_F(OpsSystemdDaemon, NotifiesReadyWithoutPostgresThenStatusWithTheBacklogThenStopping) {
  const ScratchDir scratch("pm_ops_notify");
  const std::string& dir = scratch.path();
  NotifyListener notify(dir + "/notify.sock");
  ScopedEnv env({{"NOTIFY_SOCKET", notify.path()}});
  DaemonHarness d(unreachable_database_url());
  d.start();
  ASSERT_TRUE(notify.wait_for_line("READY=1", 20s)) << d.output();
  EXPECT_FALSE(contains(d.output(), "writer connected")) << "READY=1 must not wait for PostgreSQL";
  {
    Producer p(d.socket());
    ASSERT_TRUE(p.send(trade_lines("c", "n", 5)));
    ASSERT_TRUE(p.wait_ack(5, 10s));
  }
  EXPECT_TRUE(wait_until(
      [&] { return contains(notify.last_line("STATUS="), "5 events unapplied"); }, 20s))
      << notify.last_line("STATUS=");
  const std::string status = notify.last_line("STATUS=");
  EXPECT_TRUE(contains(status, "database down")) << status;
  EXPECT_TRUE(contains(status, "not ready: log_replayed,database_reachable")) << status;
  EXPECT_EQ(notify.count_lines("WATCHDOG=1"), 0u) << "no WatchdogSec, no pings";

  EXPECT_EQ(d.stop(), 0);
  ASSERT_TRUE(notify.catch_up());
  EXPECT_EQ(notify.count_lines("STOPPING=1"), 1u);
  EXPECT_EQ(notify.count_lines("READY=1"), 1u);
}

TEST_F(OpsSystemdDaemon, WatchdogIsFedOnlyWhileTheWriterGoesRoundItsLoop) {
  const ScratchDir scratch("pm_ops_watchdog");
  const std::string& dir = scratch.path();
  NotifyListener notify(dir + "/notify.sock");
  // WatchdogSec=400ms: the daemon must ping at least every 400 ms while healthy.
  ScopedEnv env({{"NOTIFY_SOCKET", notify.path()}, {"WATCHDOG_USEC", "400000"}});
  DaemonHarness d(tdb_->url(), {"--writer-stall-timeout", "1"});
  d.start();
  ASSERT_TRUE(notify.wait_for_line("READY=1", 20s));
  ASSERT_TRUE(wait_until([&] { return notify.count_lines("WATCHDOG=1") >= 5; }, 10s));
  EXPECT_TRUE(contains(d.output(), "systemd watchdog every 400 ms")) << d.output();

  // Wedge the writer: it blocks on a lock this test holds. Its log is read from here on: a writer
  // late by a second under load before this printed the stall line already.
  const std::size_t output_before = d.output().size();
  auto locker = std::make_unique<pqxx::connection>(tdb_->url());
  auto lock = std::make_unique<pqxx::work>(*locker);
  lock->exec0("LOCK TABLE polymarket_trades IN ACCESS EXCLUSIVE MODE");
  Producer p(d.socket());
  ASSERT_TRUE(p.send({trade_line("c", "wd1")}));
  ASSERT_TRUE(p.wait_ack(1, 10s)) << "acks do not depend on the writer";
  ASSERT_TRUE(wait_until([&] { return d.logged_since(output_before, "no longer feeding the systemd watchdog"); }, 20s)) << d.output();
  // The pings sent before the stall was logged are read; those after it would be counted.
  ASSERT_TRUE(notify.catch_up());
  notify.clear();
  const double pings_before = d.metric("pm_ingest_watchdog_pings_total");
  // For two more seconds (five watchdog periods), not one ping: systemd would restart us.
  ASSERT_TRUE(wait_until([&] { return d.metric("pm_ingest_writer_heartbeat_age_seconds") >= 3.0; }, 20s));
  ASSERT_TRUE(notify.catch_up());
  EXPECT_EQ(notify.count_lines("WATCHDOG=1"), 0u);
  EXPECT_EQ(d.metric("pm_ingest_watchdog_pings_total"), pings_before);

  lock->abort();
  lock.reset();
  EXPECT_TRUE(notify.wait_for_line("WATCHDOG=1", 20s)) << "pings resume once the writer moves";
  EXPECT_TRUE(wait_until([&] { return tdb_->count("polymarket_trades") == 1; }, 20s));
  EXPECT_EQ(d.stop(), 0);
}

}  // namespace
}  // namespace pm::test
