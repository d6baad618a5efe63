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
  BootedContainer::Options shipped_files(bool with_tmpfiles, const std::string& database_url = kUnreachable) {
    std::string service = read_file(kUnitDir + "/pm-ingestd.service");
    const std::string exec = "/usr/sbin/pm-ingestd";
    service.replace(service.find(exec), exec.size(), kBinDir + "/pm-ingestd");
    write_file(dir() + "/pm-ingestd.service", service);
    // A metrics port of its own: on the host's network the default 9464 may be taken.
    write_file(dir() + "/pm-ingestd.env", "DATABASE_URL=" + database_url + "\nPM_INGESTD_METRICS_LISTEN=127.0.0.1:" +
                                               std::to_string(free_tcp_port()) + "\n");
    write_file(dir() + "/empty", "");
    std::filesystem::create_directories(dir() + "/no-drop-ins");
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
                     dir() + "/no-drop-ins:/etc/systemd/system/pm-ingestd.service.d",
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
  static CommandResult send_as_trader(const BootedContainer& box, const std::string& id) {
    return box.run("printf '%s\\n' " + shell_quote(trade_line("c", id)) + " | runuser -u trader -- " +
                   kBinDir + "/" + std::filesystem::path(PM_INGESTCTL_BIN).filename().string() + " send --socket /run/pm-ingestd/ingest.sock 2>&1");
  }

  ScratchDir scratch_{"pm_ops_boot"};
};

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
  const std::string url = tdb.url();
  const std::string password = url.substr(url.find(':', url.find("://") + 3) + 1,
                                          url.find('@') - url.find(':', url.find("://") + 3) - 1);
  EXPECT_EQ(journal().find(password), std::string::npos) << journal();
}

}  // namespace
}  // namespace pm::test
