// Access control: --allow-uid/--allow-gid by peer credentials (SO_PEERCRED), --socket-mode and
// --socket-group on the socket file, --max-connections-per-uid. Producers run as other users: the test forks and drops to
// them with setresuid/setresgid, so it needs root.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <memory>

#include "tests/e2e/e2e_util.h"
#include "tests/ops/ops_util.h"
#include "tests/support/daemon_harness.h"
#include "tests/support/producer.h"
#include "tests/support/test_database.h"

namespace pm::test {
namespace {

using namespace std::chrono_literals;

// Ids no account on a test machine uses.
constexpr uid_t kAllowedUid = 47001;
constexpr uid_t kOtherUid = 47002;
constexpr gid_t kProducersGid = 47100;
constexpr gid_t kOtherGid = 47200;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

class OpsAccess : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { tdb_ = new TestDatabase("ops_access"); }
  static void TearDownTestSuite() { delete tdb_; }
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root: producers run as other users through setresuid";
    tdb_->exec("TRUNCATE polymarket_trades, polymarket_first_triggers, trade_watermarks, trigger_watermarks, "
               "pm_ingest_checkpoints, pm_dead_letters");
  }
  // The harness directory is private (0700); producers of other users must reach the socket in it.
  static void open_dir(DaemonHarness& d) { ASSERT_EQ(::chmod(d.dir().c_str(), 0755), 0); }
  static long long trades_with_id(const std::string& id) {
    return tdb_->count("SELECT count(*) FROM polymarket_trades WHERE trade_id = '" + id + "'");
  }
  static TestDatabase* tdb_;
};
TestDatabase* OpsAccess::tdb_ = nullptr;

TEST_F(OpsAccess, RefusedPeerGetsNothingInAllowedPeersDo) {
  DaemonHarness d(tdb_->url(), {"--socket-mode", "0666", "--allow-uid", std::to_string(kAllowedUid), "--allow-gid",
                                std::to_string(kProducersGid)});
  open_dir(d);
  d.start();

  // Not in the lists: connected (the socket file lets anyone in), then closed without a reply.
  pid_t refused_pid = 0;
  const PeerOutcome refused = connect_as(kOtherUid, kOtherGid, d.socket(), trade_line("c", "from_stranger"), 10s, &refused_pid);
  EXPECT_EQ(refused.connect_errno, 0);
  EXPECT_TRUE(refused.closed_by_daemon);
  EXPECT_EQ(refused.reply, "");

  // Allowed by uid, and by primary group.
  const PeerOutcome by_uid = connect_as(kAllowedUid, kOtherGid, d.socket(), trade_line("c", "from_allowed_uid"));
  EXPECT_EQ(by_uid.connect_errno, 0);
  EXPECT_EQ(by_uid.reply, "{\"ack\":1}\n");
  const PeerOutcome by_gid = connect_as(kOtherUid, kProducersGid, d.socket(), trade_line("c", "from_allowed_gid"));
  EXPECT_EQ(by_gid.reply, "{\"ack\":1}\n");
  // root is not in the lists either.
  EXPECT_THROW(
      {
        Producer p(d.socket());
        p.send({trade_line("c", "from_root")});
        if (!p.wait_ack(1, 10s)) throw std::runtime_error("closed without an ack");
      },
      std::runtime_error);

  ASSERT_TRUE(wait_until([&] { return tdb_->count("polymarket_trades") == 2; }, 20s));
  EXPECT_EQ(trades_with_id("from_allowed_uid"), 1);
  EXPECT_EQ(trades_with_id("from_allowed_gid"), 1);
  EXPECT_EQ(trades_with_id("from_stranger"), 0);
  EXPECT_EQ(trades_with_id("from_root"), 0);
  // Applied in log order: the allowed events are in, so nothing refused was logged before them.
  EXPECT_EQ(d.metric("pm_ingest_events_received_total{type=\"trade\"}"), 2);
  EXPECT_EQ(d.metric("pm_ingest_connections_accepted_total"), 2);
  // Every refusal is logged and counted: the stranger, root, and the harness' own start-up probe
  // (also root).
  const std::string log = d.output();
  const std::size_t refusals = occurrences(log, "not in --allow-uid/--allow-gid");
  EXPECT_EQ(occurrences(log, " uid " + std::to_string(kOtherUid) + " gid " + std::to_string(kOtherGid) + ": not in"), 1u) << log;
  EXPECT_GE(occurrences(log, " uid 0 gid 0: not in"), 2u) << log;
  EXPECT_EQ(d.metric("pm_ingest_connections_refused_total{reason=\"peer_credentials\"}"), static_cast<double>(refusals));
  EXPECT_TRUE(contains(log, "refused a producer connection from pid " + std::to_string(refused_pid) + " uid " +
                                std::to_string(kOtherUid) + " gid " + std::to_string(kOtherGid) +
                                ": not in --allow-uid/--allow-gid"))
      << log;
}

TEST_F(OpsAccess, WithoutAllowListsAnyoneWhoCanOpenTheSocketMaySend) {
  DaemonHarness d(tdb_->url(), {"--socket-mode", "0666"});
  open_dir(d);
  d.start();
  const PeerOutcome anyone = connect_as(kOtherUid, kOtherGid, d.socket(), trade_line("c", "open_door"));
  EXPECT_EQ(anyone.reply, "{\"ack\":1}\n");
  EXPECT_TRUE(wait_until([&] { return trades_with_id("open_door") == 1; }, 20s));
  EXPECT_EQ(d.metric("pm_ingest_connections_refused_total{reason=\"peer_credentials\"}"), 0);
}

TEST_F(OpsAccess, SocketModeAndGroupAreAppliedAndEnforcedByTheKernel) {
  DaemonHarness d(tdb_->url(), {"--socket-mode", "0660", "--socket-group", std::to_string(kProducersGid)});
  open_dir(d);
  d.start();
  struct stat st {};
  ASSERT_EQ(::stat(d.socket().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0660u);
  EXPECT_EQ(st.st_gid, kProducersGid);

  // A member of the socket's group may connect; anyone else is stopped by the file mode.
  const PeerOutcome member = connect_as(kOtherUid, kProducersGid, d.socket(), trade_line("c", "group_member"));
  EXPECT_EQ(member.connect_errno, 0);
  EXPECT_EQ(member.reply, "{\"ack\":1}\n");
  const PeerOutcome outsider = connect_as(kOtherUid, kOtherGid, d.socket(), trade_line("c", "outsider"));
  EXPECT_EQ(outsider.connect_errno, EACCES);
  EXPECT_TRUE(wait_until([&] { return trades_with_id("group_member") == 1; }, 20s));
  EXPECT_EQ(trades_with_id("outsider"), 0);
}

TEST_F(OpsAccess, ARestrictiveModeShutsOutEvenTheGroup) {
  DaemonHarness d(tdb_->url(), {"--socket-mode", "0600", "--socket-group", std::to_string(kProducersGid)});
  open_dir(d);
  d.start();
  struct stat st {};
  ASSERT_EQ(::stat(d.socket().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  const PeerOutcome member = connect_as(kOtherUid, kProducersGid, d.socket(), trade_line("c", "shut_out"));
  EXPECT_EQ(member.connect_errno, EACCES);
  Producer owner(d.socket());  // root, the owner
  ASSERT_TRUE(owner.send({trade_line("c", "owner")}));
  EXPECT_TRUE(owner.wait_ack(1, 10s));
}

// Issue 18 item 6: one user holding its share of connections (here idle, as slow producers would)
// leaves the rest of --max-connections to the others.
TEST_F(OpsAccess, ConnectionsPerUidAreCappedSoOtherUsersKeepCapacity) {
  DaemonHarness d(tdb_->url(), {"--socket-mode", "0666", "--max-connections", "4", "--max-connections-per-uid", "2"});
  open_dir(d);
  d.start();
  // start()'s probe connection holds a slot until the daemon has accepted it and seen it close.
  ASSERT_TRUE(wait_until([&] { return d.metric("pm_ingest_connections_accepted_total") >= 1 &&
                                      d.metric("pm_ingest_producers_connected") == 0; }, 10s)) << d.metrics();
  auto first = std::make_unique<Producer>(d.socket());  // root, the test's own uid: 2 of its 2
  Producer second(d.socket());
  ASSERT_TRUE(wait_until([&] { return d.metric("pm_ingest_producers_connected") == 2; }, 10s)) << d.metrics();

  const PeerOutcome third = connect_as(0, 0, d.socket(), trade_line("c", "third_of_root"));
  EXPECT_TRUE(contains(third.reply, "{\"error\":\"busy\",\"line\":0,")) << third.reply;
  EXPECT_TRUE(contains(third.reply, "too many connections from uid 0 (--max-connections-per-uid 2)")) << third.reply;
  EXPECT_EQ(d.metric("pm_ingest_connections_refused_total{reason=\"too_many_per_uid\"}"), 1);

  const PeerOutcome other = connect_as(kOtherUid, kOtherGid, d.socket(), trade_line("c", "other_user"));
  EXPECT_EQ(other.reply, "{\"ack\":1}\n");

  // A closed connection gives its slot back.
  first.reset();
  ASSERT_TRUE(wait_until([&] { return d.metric("pm_ingest_producers_connected") == 1; }, 10s)) << d.metrics();
  const PeerOutcome again = connect_as(0, 0, d.socket(), trade_line("c", "root_again"));
  EXPECT_EQ(again.reply, "{\"ack\":1}\n");
  EXPECT_TRUE(wait_until([&] { return trades_with_id("other_user") == 1 && trades_with_id("root_again") == 1; }, 20s));
  EXPECT_EQ(trades_with_id("third_of_root"), 0);
}

TEST_F(OpsAccess, UnknownUserOrGroupNamesAreRefusedAtStartWithTheOptionNamed) {
  for (const auto& [option, value] : std::vector<std::pair<std::string, std::string>>{
           {"--allow-uid", "no-such-user-pm"}, {"--allow-gid", "no-such-group-pm"}, {"--socket-group", "no-such-group-pm"}}) {
    const CommandResult r = run_command("DATABASE_URL=" + shell_quote(tdb_->url()) + " " + PM_INGESTD_BIN + " " + option + " " +
                                        value + " --socket /tmp/pm_ops_never.sock --wal-dir /tmp/pm_ops_never_wal");
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_TRUE(contains(r.output, option + ": no ")) << r.output;
  }
  EXPECT_NE(::access("/tmp/pm_ops_never.sock", F_OK), 0);
}

}  // namespace
}  // namespace pm::test
