// pm-ingestd under failure: kill -9 of the daemon at random moments under load, PostgreSQL stopped
// and restarted under load, the daemon started before PostgreSQL, and a full log disk. Every
// acknowledged event must land exactly once and nothing that was not sent may appear.
#include <gtest/gtest.h>

#include <sys/mount.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

#include "tests/e2e/e2e_util.h"
#include "tests/e2e/load_driver.h"
#include "tests/e2e/migrate.h"
#include "tests/support/daemon_harness.h"
#include "tests/support/pg_cluster.h"
#include "tests/support/producer.h"
#include "tests/support/test_database.h"

namespace pm::test {
namespace {

using namespace std::chrono_literals;

TEST(Crash, KillNineAtRandomMomentsUnderLoadLosesNothingAcked) {
  TestDatabase tdb("crash_kill");
  DaemonHarness d(tdb.url(), {"--wal-segment-bytes", "256K", "--batch-max-delay-ms", "5"});
  const std::uint32_t seed = static_cast<std::uint32_t>(std::random_device{}());
  std::mt19937 rng(seed);
  SCOPED_TRACE("seed " + std::to_string(seed));
  const int rounds = std::getenv("PM_CRASH_ROUNDS") ? std::atoi(std::getenv("PM_CRASH_ROUNDS")) : 25;
  d.start();
  LoadDriver load(d.socket(), 6, seed);
  for (int round = 0; round < rounds; ++round) {
    const std::size_t before = load.acked_count();
    // Let acks flow, then kill at a random moment.
    ASSERT_TRUE(wait_until([&] { return load.acked_count() > before; }, 30s)) << d.output();
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 150)(rng)));
    d.kill9();
    d.start();
  }
  load.stop();
  EXPECT_GT(load.reconnects(), 0);
  ASSERT_TRUE(wait_until_log_applied(tdb.url(), d, 60s)) << d.output();
  expect_exactly_what_was_acked(tdb.url(), load);
  expect_each_record_applied_once(tdb.url());
  EXPECT_EQ(d.stop(), 0);
  std::cout << "[ crash ] " << rounds << " kill -9 rounds, " << load.acked().size() << " acked trades, "
            << load.reconnects() << " reconnects, seed " << seed << "\n";
}

class WithOwnPostgres : public ::testing::Test {
 protected:
  void SetUp() override { cluster_ = std::make_unique<PgCluster>(); }
  void migrate() { test::migrate(cluster_->url()); }
  std::unique_ptr<PgCluster> cluster_;
};

TEST_F(WithOwnPostgres, PostgresStoppedUnderLoadAndRestartedLosesNothing) {
  cluster_->start();
  migrate();
  DaemonHarness d(cluster_->url());
  d.start();
  LoadDriver load(d.socket(), 4, 7);
  ASSERT_TRUE(wait_until([&] { return query_count(cluster_->url(), "SELECT count(*) FROM polymarket_trades") > 100; }, 30s));
  cluster_->stop();
  // Acks keep coming while the database is down.
  const std::size_t at_stop = load.acked_count();
  ASSERT_TRUE(wait_until([&] { return load.acked_count() > at_stop + 500; }, 30s));
  ASSERT_TRUE(wait_until([&] { return d.metric("pm_ingest_database_up") == 0; }, 30s));
  std::this_thread::sleep_for(3s);  // the outage lasts several seconds: a duration under test, not a sync point
  cluster_->start();
  ASSERT_TRUE(wait_until([&] { return d.metric("pm_ingest_database_up") == 1; }, 60s)) << d.output();
  load.stop();
  ASSERT_TRUE(wait_until_log_applied(cluster_->url(), d, 60s)) << d.output();
  expect_exactly_what_was_acked(cluster_->url(), load);
  expect_each_record_applied_once(cluster_->url());
  EXPECT_GT(d.metric("pm_ingest_database_errors_total{kind=\"connection\"}"), 0)
      << "in_doubt " << d.metric("pm_ingest_database_errors_total{kind=\"in_doubt\"}") << ", other "
      << d.metric("pm_ingest_database_errors_total{kind=\"other\"}") << ", transient "
      << d.metric("pm_ingest_database_errors_total{kind=\"transient\"}") << "\n" << d.output();
}

TEST_F(WithOwnPostgres, DaemonStartedBeforePostgresCatchesUp) {
  DaemonHarness d(cluster_->url());
  d.start();  // PostgreSQL is not running yet
  Producer p(d.socket());
  ASSERT_TRUE(p.send(trade_lines("c", "early", 100)));
  ASSERT_TRUE(p.wait_ack(100, 10s));
  cluster_->start();
  migrate();
  EXPECT_TRUE(wait_until([&] { return query_count(cluster_->url(), "SELECT count(*) FROM polymarket_trades") == 100; }, 60s))
      << d.output();
  EXPECT_EQ(d.stop(), 0);
}

// The log directory on a 2 MiB tmpfs: when it fills, lines get `busy`, nothing acked is lost, and
// logging resumes once space is freed.
TEST(Crash, FullLogDiskAnswersBusyAndRecovers) {
  if (::geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root";
  TestDatabase tdb("crash_disk");
  const std::string unreachable = unreachable_database_url();
  DaemonHarness d(unreachable, {"--wal-segment-bytes", "64K", "--wal-max-bytes", "1G"});
  std::filesystem::create_directories(d.wal_dir());
  ASSERT_EQ(::mount("tmpfs", d.wal_dir().c_str(), "tmpfs", 0, "size=2m"), 0) << std::strerror(errno);
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{d.wal_dir()};
  { std::ofstream(d.wal_dir() + "/filler", std::ios::binary) << std::string(1'200'000, 'f'); }
  d.start();
  Producer p(d.socket());
  std::set<std::string> durable;
  std::uint64_t sent = 0;
  bool saw_busy = false;
  for (int chunk = 0; chunk < 400 && !saw_busy; ++chunk) {
    std::vector<std::string> lines, ids;
    for (int i = 0; i < 20; ++i) {
      ids.push_back("df" + std::to_string(chunk) + "_" + std::to_string(i));
      lines.push_back(trade_line("c", ids.back()));
    }
    ASSERT_TRUE(p.send(lines));
    std::vector<Reply> seen;
    ASSERT_TRUE(p.wait_ack(sent + lines.size(), 10s, &seen));
    std::set<std::uint64_t> busy_lines;
    for (const auto& r : seen) {
      if (r.is_ack) continue;
      ASSERT_EQ(r.error, "busy") << r.detail;
      busy_lines.insert(r.line);
    }
    for (std::size_t i = 0; i < ids.size(); ++i)
      if (!busy_lines.count(sent + i + 1)) durable.insert(ids[i]);
    saw_busy = !busy_lines.empty();
    sent += lines.size();
  }
  ASSERT_TRUE(saw_busy) << "the disk never filled";
  EXPECT_GT(d.metric("pm_ingest_wal_write_errors_total{kind=\"disk_full\"}"), 0);
  std::filesystem::remove(d.wal_dir() + "/filler");
  ASSERT_TRUE(p.send({trade_line("c", "after_space_returned")}));
  std::vector<Reply> seen;
  ASSERT_TRUE(p.wait_ack(sent + 1, 10s, &seen));
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_TRUE(seen[0].is_ack) << seen[0].error;
  durable.insert("after_space_returned");
  // Restart on the same log, with the database: every acked event lands, no busy one does.
  d.kill9();
  d.database_url() = tdb.url();
  d.start();
  ASSERT_TRUE(wait_until([&] { return query_count(tdb.url(), "SELECT count(*) FROM polymarket_trades") >= static_cast<long long>(durable.size()); }, 60s));
  EXPECT_EQ(trade_ids(tdb.url()), durable);
}

}  // namespace
}  // namespace pm::test
