// Issue 17: several daemons, each with its own --instance-id, log and socket, into one database.
// Two drivers send the same lines (same seed) to different daemons, so every trade and trigger
// arrives twice, at two daemons; one daemon is killed with kill -9 mid-run and restarted. Each
// trade is stored once, G2 gives one first trigger per (condition, threshold) across daemons,
// watermarks equal the newest stored timestamps, and each daemon's checkpoint counts every event
// it applied once.
#include <gtest/gtest.h>

#include <memory>
#include <random>

#include "tests/e2e/e2e_util.h"
#include "tests/e2e/load_driver.h"
#include "tests/support/daemon_harness.h"
#include "tests/support/test_database.h"

namespace pm::test {
namespace {

using namespace std::chrono_literals;

template <class T>
std::set<T> joined(const std::set<T>& a, const std::set<T>& b) {
  std::set<T> out = a;
  out.insert(b.begin(), b.end());
  return out;
}

TEST(SeveralDaemons, ThreeDaemonsWithOverlappingInputAndAKillNineStoreEachEventOnce) {
  TestDatabase tdb("multi_daemon");
  std::vector<std::unique_ptr<DaemonHarness>> daemons;
  std::vector<std::string> sockets;
  for (int i = 0; i < 3; ++i) {
    daemons.push_back(std::make_unique<DaemonHarness>(
        tdb.url(), std::vector<std::string>{"--instance-id", "d" + std::to_string(i), "--wal-segment-bytes", "256K",
                                            "--batch-max-delay-ms", "5"}));
    daemons.back()->start();
    sockets.push_back(daemons.back()->socket());
  }
  const std::uint32_t seed = static_cast<std::uint32_t>(std::random_device{}());
  SCOPED_TRACE("seed " + std::to_string(seed));
  // Producer k of `first` sends to daemon k % 3, the same lines from `second` go to daemon (k + 1) % 3.
  LoadDriver first(sockets, LoadOptions{6, seed, true});
  LoadDriver second({sockets[1], sockets[2], sockets[0]}, LoadOptions{6, seed, true});
  ASSERT_TRUE(wait_until([&] { return first.acked_count() > 10000 && second.acked_count() > 10000; }, 60s));
  daemons[1]->kill9();
  daemons[1]->start();
  const std::size_t at_kill = first.acked_count() + second.acked_count();
  ASSERT_TRUE(wait_until([&] { return first.acked_count() + second.acked_count() > at_kill + 40000; }, 120s));
  first.stop();
  second.stop();
  EXPECT_GT(first.reconnects() + second.reconnects(), 0) << "the kill -9 cut producers off";
  // Every record each daemon appended is applied (not the sampled unapplied gauge, whose 0 can
  // predate the last chunks), then the checks.
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(wait_until_log_applied(tdb.url(), *daemons[i], 60s, "d" + std::to_string(i))) << daemons[i]->output();

  expect_exactly_what_was_acked(tdb.url(), joined(first.acked(), second.acked()), joined(first.sent(), second.sent()));
  expect_triggers_and_watermarks_consistent(tdb.url(), joined(first.triggers_acked(), second.triggers_acked()),
                                            joined(first.triggers_sent(), second.triggers_sent()));
  for (int i = 0; i < 3; ++i) expect_each_record_applied_once(tdb.url(), "d" + std::to_string(i));
  double duplicates = 0, deadlocks_broken = 0;
  for (auto& d : daemons) {
    // A deadlock between daemons is broken by PostgreSQL within a second, never by the 60 s
    // statement timeout (as it was while a batch waited for the one before it unseen).
    EXPECT_EQ(d->metric("pm_ingest_database_errors_total{kind=\"timeout\"}"), 0) << d->output();
    duplicates += d->metric("pm_ingest_dedup_hits_total{kind=\"trade\"}");
    deadlocks_broken += d->metric("pm_ingest_database_errors_total{kind=\"transient\"}");
  }
  EXPECT_GT(duplicates, 0) << "the same trades reached two daemons";
  std::printf("[ figures ] %zu distinct trades acked, %.0f duplicate trades deduplicated across 3 daemons, %zu first triggers, "
              "%.0f batches retried after PostgreSQL broke a deadlock\n",
              joined(first.acked(), second.acked()).size(), duplicates,
              joined(first.triggers_acked(), second.triggers_acked()).size(), deadlocks_broken);
}

}  // namespace
}  // namespace pm::test
