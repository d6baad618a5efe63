// The shipped units under a real systemd: a container booted from this machine's OS tree
// (BootedContainer) with pm-ingestd.socket and pm-ingestd.service enabled at boot, the service
// account and /run/pm-ingestd from the shipped sysusers.d and tmpfiles.d files, the units as
// shipped but for ExecStart (the binary just built). The boot order is the real one: tmpfiles,
// the socket, the service; its sandboxing is systemd's own. PostgreSQL is out of reach (the
// container has a network of its own): the daemon acks into its log, which is what a producer
// sees. A producer account of group pm-producers sends through pm-ingestctl send.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include <pqxx/pqxx>

#include "tests/e2e/e2e_util.h"
#include "tests/ops/booted_container.h"
#include "tests/ops/ops_util.h"
#include "tests/support/daemon_harness.h"
#include "tests/support/process.h"
#include "tests/support/test_database.h"

namespace pm::test {
namespace {

const std::string kUnitDir = std::string(PM_SOURCE_DIR) + "/systemd";

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

class OpsSystemdBoot : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string(PM_SANITIZE) != "")
      GTEST_SKIP() << "sanitizer build (" << PM_SANITIZE << "): its runtime and the unit's sandboxing (LockPersonality=, "
                   << "MemoryDenyWriteExecute=) are not meant for each other";
  }

  // The shipped files, the units' ExecStart pointed at this build, bound into the container's /etc.
  // `extra_env`: lines added to the environment file; `drop_in`: a drop-in for the service (its
  // [Service] lines), where a test needs systemd to act sooner than the shipped values would.
  BootedContainer::Options shipped_files(bool with_tmpfiles, const std::string& database_url = kUnreachable,
                                         const std::string& extra_env = "", const std::string& drop_in = "") {
    std::string service = read_file(kUnitDir + "/pm-ingestd.service");
    const std::string exec = "/usr/sbin/pm-ingestd";
    service.replace(service.find(exec), exec.size(), kBinDir + "/pm-ingestd");
    write_file(dir() + "/pm-ingestd.service", service);
    // A metrics port of its own: on the host's network the default 9464 may be taken.
    write_file(dir() + "/pm-ingestd.env", "DATABASE_URL=" + database_url + "\nPM_INGESTD_METRICS_LISTEN=127.0.0.1:" +
                                               std::to_string(free_tcp_port()) + "\n" + extra_env);
    write_file(dir() + "/empty", "");
    std::filesystem::create_directories(dir() + "/no-drop-ins");
    std::filesystem::create_directories(dir() + "/service-drop-ins");
    if (!drop_in.empty()) write_file(dir() + "/service-drop-ins/test.conf", "[Service]\n" + drop_in);
    write_file(dir() + "/trader.conf", "u trader - \"a producer\" /nonexistent /usr/sbin/nologin\nm trader pm-producers\n");
    BootedContainer::Options options;
    options.binds = {dir() + "/pm-ingestd.service:/etc/systemd/system/pm-ingestd.service",
                     kUnitDir + "/pm-ingestd.socket:/etc/systemd/system/pm-ingestd.socket",
                     kUnitDir + "/pm-ingestd.sysusers.conf:/etc/sysusers.d/pm-ingestd.conf",
                     dir() + "/trader.conf:/etc/sysusers.d/trader.conf",
                     dir() + "/pm-ingestd.env:/etc/pm-ingestd/pm-ingestd.env",
                     std::filesystem::path(PM_INGESTD_BIN).parent_path().string() + ":" + kBinDir,
                     // The host's own drop-ins (systemctl edit) stay out; /etc/tmpfiles.d's file of the
                     // name beats an installed /usr/lib or /usr/local/lib one.
                     dir() + "/service-drop-ins:/etc/systemd/system/pm-ingestd.service.d",
                     dir() + "/no-drop-ins:/etc/systemd/system/pm-ingestd.socket.d",
                     (with_tmpfiles ? kUnitDir + "/pm-ingestd.tmpfiles.conf" : dir() + "/empty") +
                         ":/etc/tmpfiles.d/pm-ingestd.conf"};
    options.wants = {"pm-ingestd.socket", "pm-ingestd.service"};
    return options;
  }

  const std::string& dir() const { return scratch_.path(); }
  // Where the build's binaries are inside: not their own path, which may lie under /tmp (a clone
  // there: the container's /tmp is a tmpfs of its own, and the unit's PrivateTmp= another) or /home
  // (ProtectHome=).
  static inline const std::string kBinDir = "/opt/pm-ingestd-test-bin";
  // A database the container never reaches (its own network): the daemon starts, logs and acks
  // without PostgreSQL.
  static inline const std::string kUnreachable = "postgresql://pm:secret@127.0.0.1:1/pm";

  // One trade sent by the producer account through the socket's path; the command's output.
  // `within`: a bound on the whole send (timeout(1)), when given.
  static CommandResult send_as_trader(const BootedContainer& box, const std::string& id, int within_seconds = 0) {
    return box.run(send_command(id, within_seconds));
  }
  static std::string send_command(const std::string& id, int within_seconds) {
    return "printf '%s\\n' " + shell_quote(trade_line("c", id)) + " | " +
           (within_seconds > 0 ? "timeout " + std::to_string(within_seconds) + " " : std::string()) + "runuser -u trader -- " +
           kBinDir + "/" + std::filesystem::path(PM_INGESTCTL_BIN).filename().string() +
           " send --socket /run/pm-ingestd/ingest.sock 2>&1";
  }

  ScratchDir scratch_{"pm_ops_boot"};
};

// The password of a postgresql:// URL with one.
std::string password_of(const std::string& url) {
  const std::size_t colon = url.find(':', url.find("://") + 3);
  return url.substr(colon + 1, url.find('@') - colon - 1);
}

std::string service_property(const BootedContainer& box, const std::string& name) {
  return box.run("systemctl show -p " + name + " --value pm-ingestd.service").output;
}

std::string journal_of_service(const BootedContainer& box) {
  return box.run("journalctl -b -u pm-ingestd --no-pager").output;
}

std::string owners(const BootedContainer& box) {
  return box.run("stat -c '%n %U:%G %a' /run/pm-ingestd /run/pm-ingestd/ingest.sock").output;
}

// Everything as shipped: /run/pm-ingestd is the service's from boot on, so the service's
// RuntimeDirectory= leaves the socket's file alone, and the producer is acked at boot and after a
// restart of the service.
TEST_F(OpsSystemdBoot, AfterBootAndARestartAProducerOfPmProducersIsAcked) {
  BootedContainer box(dir(), shipped_files(true));
  if (!box.started()) GTEST_SKIP() << box.why();
  ASSERT_TRUE(box.booted()) << box.why();
  const std::string expected = "/run/pm-ingestd pm-ingestd:pm-ingestd 755\n/run/pm-ingestd/ingest.sock pm-ingestd:pm-producers 660\n";
  EXPECT_EQ(owners(box), expected) << "after the boot";

  const CommandResult first = send_as_trader(box, "boot1");  // starts the service too, if the boot had not yet
  EXPECT_EQ(first.exit_code, 0) << first.output << box.run("journalctl -b -u pm-ingestd --no-pager | tail -30").output;
  EXPECT_EQ(box.run("systemctl is-active pm-ingestd.service").output, "active\n")
      << box.run("systemctl status pm-ingestd --no-pager").output;
  EXPECT_EQ(owners(box), expected) << "after the service's start";

  EXPECT_EQ(box.run("systemctl restart pm-ingestd.service").exit_code, 0);
  const CommandResult second = send_as_trader(box, "boot2");
  EXPECT_EQ(second.exit_code, 0) << second.output;
  EXPECT_EQ(owners(box), expected) << "after a restart";
  const std::string journal = box.run("journalctl -b -u pm-ingestd --no-pager").output;
  EXPECT_FALSE(contains(journal, "had group")) << "the socket's group was changed under the daemon:\n" << journal;
  EXPECT_FALSE(contains(journal, "secret")) << journal;
}

// A system where the tmpfiles.d entry was not applied (an install before it shipped): the socket
// unit creates /run/pm-ingestd as root's, the service's RuntimeDirectory= re-owns the socket's file
// to pm-ingestd:pm-ingestd, and the daemon gives it --socket-group (pm-producers) back.
TEST_F(OpsSystemdBoot, WithoutTheTmpfilesEntryTheDaemonGivesTheSocketItsGroupBack) {
  BootedContainer box(dir(), shipped_files(false));
  if (!box.started()) GTEST_SKIP() << box.why();
  ASSERT_TRUE(box.booted()) << box.why();
  const CommandResult sent = send_as_trader(box, "bare1");
  EXPECT_EQ(sent.exit_code, 0) << sent.output << box.run("journalctl -b -u pm-ingestd --no-pager | tail -30").output;
  EXPECT_TRUE(contains(owners(box), "/run/pm-ingestd/ingest.sock pm-ingestd:pm-producers 660\n")) << owners(box);
  EXPECT_TRUE(contains(box.run("journalctl -b -u pm-ingestd --no-pager").output, "had group"))
      << box.run("journalctl -b -u pm-ingestd --no-pager").output;
}

// The sandboxed service as shipped, on the host's network, writes into PostgreSQL; a kill -9 of its
// main process is restarted by systemd (Restart=on-failure) and each event is applied once; a
// stop is clean (exit 0, Result=success); the password is in no line the daemon logged.
TEST_F(OpsSystemdBoot, TheSandboxedServiceWritesIsRestartedAfterAKillAndStopsCleanly) {
  TestDatabase tdb("ops_boot");
  BootedContainer::Options options = shipped_files(true, tdb.url());
  options.own_network = false;
  BootedContainer box(dir(), options);
  if (!box.started()) GTEST_SKIP() << box.why();
  ASSERT_TRUE(box.booted()) << box.why();
  const auto journal = [&box] { return box.run("journalctl -b -u pm-ingestd --no-pager").output; };
  const auto main_pid = [&box] { return box.run("systemctl show -p MainPID --value pm-ingestd.service").output; };

  for (const char* id : {"svc1", "svc2"}) {
    const CommandResult sent = send_as_trader(box, id);
    ASSERT_EQ(sent.exit_code, 0) << sent.output << journal();
  }
  EXPECT_TRUE(wait_until([&] { return tdb.count("polymarket_trades") == 2; }, std::chrono::seconds(30))) << journal();

  const std::string killed = main_pid();
  ASSERT_NE(killed, "0\n");
  const CommandResult kill = box.run("systemctl kill -s KILL pm-ingestd.service");
  ASSERT_EQ(kill.exit_code, 0) << kill.output << box.run("systemctl status pm-ingestd --no-pager").output << journal();
  EXPECT_TRUE(wait_until([&] {
    const std::string now = main_pid();
    return now != killed && now != "0\n" && box.run("systemctl is-active pm-ingestd.service").output == "active\n";
  }, std::chrono::seconds(30))) << journal();
  EXPECT_EQ(box.run("systemctl show -p NRestarts --value pm-ingestd.service").output, "1\n");
  const CommandResult after = send_as_trader(box, "svc3");
  EXPECT_EQ(after.exit_code, 0) << after.output << journal();
  EXPECT_TRUE(wait_until([&] { return tdb.count("polymarket_trades") == 3; }, std::chrono::seconds(30))) << journal();

  EXPECT_EQ(box.run("systemctl stop pm-ingestd.service").exit_code, 0);
  EXPECT_EQ(box.run("systemctl show -p Result --value pm-ingestd.service").output, "success\n") << journal();
  EXPECT_EQ(box.run("systemctl show -p ExecMainStatus --value pm-ingestd.service").output, "0\n") << journal();
  // Each event applied once: the checkpoint's count of applied events (the primary key would hide
  // a second COPY of a row, not a second apply).
  EXPECT_EQ(tdb.count("SELECT count(*) FROM pm_ingest_checkpoints WHERE lsn = 3 AND applied_events = 3"), 1)
      << journal();
  EXPECT_EQ(journal().find(password_of(tdb.url())), std::string::npos) << journal();
}

// A writer wedged inside PostgreSQL (a table lock this test holds) no longer feeds the watchdog
// once its loop is older than --writer-stall-timeout, and the real systemd kills and restarts the
// service (WatchdogSec=, Restart=on-failure). The event acked meanwhile waits in the log through
// the restart and lands, once, when the lock goes. The drop-in shortens WatchdogSec= to 2 s (30 s
// as shipped) and keeps the abort from writing a core; the chain is the shipped one.
TEST_F(OpsSystemdBoot, AWedgedWriterStarvesTheWatchdogAndSystemdRestartsTheService) {
  TestDatabase tdb("ops_boot_watchdog");
  BootedContainer::Options options = shipped_files(true, tdb.url(), "PM_INGESTD_WRITER_STALL_TIMEOUT=1\n",
                                                   "WatchdogSec=2s\nTimeoutAbortSec=2s\nLimitCORE=0\n");
  options.own_network = false;
  BootedContainer box(dir(), options);
  if (!box.started()) GTEST_SKIP() << box.why();
  ASSERT_TRUE(box.booted()) << box.why();

  const CommandResult first = send_as_trader(box, "wd1");
  ASSERT_EQ(first.exit_code, 0) << first.output << journal_of_service(box);
  ASSERT_TRUE(wait_until([&] { return tdb.count("polymarket_trades") == 1; }, std::chrono::seconds(30)))
      << journal_of_service(box);
  const std::string wedged_pid = service_property(box, "MainPID");
  // Counted from here: a slow first batch (a sanitizer, a loaded machine) may already have cost a
  // restart, which is not what this test is about.
  const std::string restarts_before = service_property(box, "NRestarts");

  pqxx::connection locker(tdb.url());
  pqxx::work lock(locker);
  lock.exec0("LOCK TABLE polymarket_trades IN ACCESS EXCLUSIVE MODE");
  const CommandResult second = send_as_trader(box, "wd2");
  ASSERT_EQ(second.exit_code, 0) << "acks do not wait for the writer: " << second.output << journal_of_service(box);
  EXPECT_TRUE(wait_until([&] {
    return service_property(box, "NRestarts") != restarts_before && service_property(box, "ActiveState") == "active\n";
  }, std::chrono::seconds(60))) << journal_of_service(box);
  lock.abort();

  EXPECT_TRUE(wait_until([&] { return tdb.count("polymarket_trades") == 2; }, std::chrono::seconds(30)))
      << journal_of_service(box);
  EXPECT_NE(service_property(box, "MainPID"), wedged_pid);
  const std::string journal = journal_of_service(box);
  EXPECT_TRUE(contains(journal, "no longer feeding the systemd watchdog")) << journal;
  EXPECT_TRUE(contains(journal, "Watchdog timeout")) << journal;
  EXPECT_EQ(box.run("systemctl stop pm-ingestd.service").exit_code, 0);
  EXPECT_EQ(tdb.count("SELECT count(*) FROM pm_ingest_checkpoints WHERE lsn = 2 AND applied_events = 2"), 1)
      << journal_of_service(box);
  EXPECT_EQ(journal.find(password_of(tdb.url())), std::string::npos) << journal;
}

// The wait for an operator command (pm-ingestctl archive store-damaged) under the shipped unit,
// whose ProcSubset=pid hides /proc/locks: an owner line naming pm-ingestctl left in the log's lock
// file by a command that has exited holds nothing back (the first version read /proc/locks, could
// not tell, waited 60 s, exited 1, and did the same at every restart: the service never came up
// again after a store-damaged); a lock such a command holds (flock(1) with that owner line, until
// the test stops it once the daemon says it waits) is waited for, and the service starts once it goes.
TEST_F(OpsSystemdBoot, TheServiceWaitsForAnOperatorCommandOnlyWhileOneHoldsTheLogsLock) {
  BootedContainer box(dir(), shipped_files(true));
  if (!box.started()) GTEST_SKIP() << box.why();
  ASSERT_TRUE(box.booted()) << box.why();
  const std::string lock = "/var/lib/pm-ingestd/wal/LOCK";
  const CommandResult first = send_as_trader(box, "op1");
  ASSERT_EQ(first.exit_code, 0) << first.output << journal_of_service(box);

  ASSERT_EQ(box.run("systemctl stop pm-ingestd.service").exit_code, 0);
  ASSERT_EQ(box.run("echo 'pm-ingestctl pid 4242' > " + lock).exit_code, 0);
  const CommandResult after_stale = send_as_trader(box, "op2", 20);  // the socket unit starts the service
  EXPECT_EQ(after_stale.exit_code, 0) << after_stale.output << journal_of_service(box);
  EXPECT_FALSE(contains(journal_of_service(box), "an operator command")) << journal_of_service(box);

  ASSERT_EQ(box.run("systemctl stop pm-ingestd.service").exit_code, 0);
  ASSERT_EQ(box.run("echo 'pm-ingestctl pid 4243' > " + lock).exit_code, 0);
  const CommandResult holder = box.run("systemd-run --unit=pm-test-lock-holder flock " + lock + " sleep 600 2>&1");
  ASSERT_EQ(holder.exit_code, 0) << holder.output;
  ASSERT_TRUE(wait_until([&] { return box.run("flock -n " + lock + " true").exit_code != 0; }, std::chrono::seconds(10)))
      << "the holder did not take the lock";
  // The send in the background: its connection starts the service, which waits for the holder.
  const CommandResult sender = box.run("systemd-run --unit=pm-test-send sh -c " +
                                       shell_quote(send_command("op3", 120) + "; echo $? > /run/pm-test-send.rc") + " 2>&1");
  ASSERT_EQ(sender.exit_code, 0) << sender.output;
  EXPECT_TRUE(wait_until([&] {
    return contains(journal_of_service(box), lock + " is held by pm-ingestctl pid 4243 (an operator command");
  }, std::chrono::seconds(60))) << journal_of_service(box);
  ASSERT_EQ(box.run("systemctl stop pm-test-lock-holder").exit_code, 0);
  EXPECT_TRUE(wait_until([&] { return box.run("cat /run/pm-test-send.rc 2>/dev/null").output == "0\n"; },
                         std::chrono::seconds(60)))
      << box.run("cat /run/pm-test-send.rc; journalctl -b -u pm-test-send --no-pager").output << journal_of_service(box);
  const std::string journal = journal_of_service(box);
  EXPECT_TRUE(contains(journal, lock + " released; starting")) << journal;
  EXPECT_EQ(service_property(box, "ActiveState"), "active\n");
}

// Exit 2 (here: the database holds trades in milliseconds, the daemon is set to seconds; restarting
// cannot fix it) is not restarted: RestartPreventExitStatus=2 leaves the service failed at once for
// an operator, where Restart=on-failure would start it five times more, each refusing again. The
// journal says what to set. ActiveState is "failed" only when systemd scheduled no restart (a
// scheduled one is "activating", auto-restart).
TEST_F(OpsSystemdBoot, AnExitTwoLeavesTheServiceFailedWithoutARestart) {
  TestDatabase tdb("ops_boot_exit2");
  tdb.exec("INSERT INTO trade_watermarks (condition_id, last_timestamp, updated_at) "
           "VALUES ('c_old', 1700000000000, '2023-11-14T22:13:20.000000Z')");
  BootedContainer::Options options = shipped_files(true, tdb.url(), "PM_INGESTD_TRADE_TIMESTAMP_UNIT=s\n");
  options.own_network = false;
  BootedContainer box(dir(), options);
  if (!box.started()) GTEST_SKIP() << box.why();
  ASSERT_TRUE(box.booted()) << box.why();

  EXPECT_TRUE(wait_until([&] { return service_property(box, "ActiveState") == "failed\n"; },
                         std::chrono::seconds(60))) << journal_of_service(box);
  EXPECT_EQ(service_property(box, "ExecMainStatus"), "2\n") << journal_of_service(box);
  EXPECT_EQ(service_property(box, "Result"), "exit-code\n");
  EXPECT_EQ(service_property(box, "NRestarts"), "0\n") << journal_of_service(box);
  const std::string journal = journal_of_service(box);
  EXPECT_TRUE(contains(journal, "--trade-timestamp-unit is epoch seconds (s): set it to ms")) << journal;
  EXPECT_EQ(journal.find(password_of(tdb.url())), std::string::npos) << journal;
  EXPECT_EQ(tdb.count("pm_ingest_checkpoints"), 0);
}

}  // namespace
}  // namespace pm::test
