// Event sourcing (issue 12): the daemon archives every applied log segment (--archive-dir), and
// `pm-ingestctl replay` rebuilds the projection tables from the archive and the live log, exactly
// once: row for row what the live daemon wrote, at any instant (--until), through kill -9.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <random>
#include <thread>

#include "repos/util/clock.h"
#include "tests/e2e/e2e_util.h"
#include "tests/e2e/load_driver.h"
#include "tests/e2e/migrate.h"
#include "tests/support/daemon_harness.h"
#include "tests/support/pg_cluster.h"
#include "tests/support/process.h"
#include "tests/support/producer.h"
#include "tests/support/test_database.h"

namespace pm::test {
namespace {

using namespace std::chrono_literals;

// Every row of the four projection tables, every column, as text, in key order. The daemon
// writes times from the events (arrival), never from the clock, so a rebuild matches exactly.
std::vector<std::string> projection(const std::string& url) {
  pqxx::connection c(url);
  pqxx::nontransaction tx(c);
  std::vector<std::string> rows;
  const char* queries[] = {
      "SELECT 'trade ' || to_jsonb(t)::text FROM polymarket_trades t ORDER BY condition_id, trade_id",
      "SELECT 'trigger ' || to_jsonb(t)::text FROM polymarket_first_triggers t ORDER BY condition_id, threshold",
      "SELECT 'trade_watermark ' || to_jsonb(t)::text FROM trade_watermarks t ORDER BY condition_id",
      "SELECT 'trigger_watermark ' || to_jsonb(t)::text FROM trigger_watermarks t ORDER BY threshold"};
  for (const char* q : queries)
    for (const auto& row : tx.exec(q)) rows.push_back(row[0].as<std::string>());
  return rows;
}

// Overwrites two bytes in the middle of the file at `path` (inside its compressed events).
void damage_the_middle_of(const std::string& path) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(std::filesystem::file_size(path) / 2));
  f.put('\x5a').put('\xa5');
}

// The daemon's defaults otherwise (--standby-wait on: segments are released once the primary has
// flushed the commits that applied them).
std::vector<std::string> archive_args(const DaemonHarness& d) {
  return {"--archive-dir", d.dir() + "/archive", "--wal-segment-bytes", "64K"};
}

Run replay(const DaemonHarness& d, const std::string& url, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"replay", "--source", d.dir() + "/archive", "--source", d.wal_dir(), "--database-url", url};
  args.insert(args.end(), extra.begin(), extra.end());
  return run_ctl(args);
}

// The same trades sent twice on one connection: the second copy is a duplicate of the first.
void send_duplicates(const std::string& socket, const std::string& prefix, int n) {
  Producer p(socket);
  std::vector<std::string> lines;
  for (int i = 0; i < n; ++i) lines.push_back(trade_line("dup", prefix + std::to_string(i), 1'700'000'000 + i));
  ASSERT_TRUE(p.send(lines));
  ASSERT_TRUE(p.send(lines));
  ASSERT_TRUE(p.wait_ack(2 * static_cast<std::uint64_t>(n), 30s));
}

// `chunks` groups of 200 trades ("<prefix><n>"), each acked before the next: with 64K segments a
// group (~45 KB) fills most of one, so the log rolls over every group or two.
void send_in_chunks(Producer& p, const std::string& prefix, int chunks) {
  for (int chunk = 0; chunk < chunks; ++chunk) {
    std::vector<std::string> lines;
    for (int i = chunk * 200; i < (chunk + 1) * 200; ++i) lines.push_back(trade_line("c" + std::to_string(i % 3), prefix + std::to_string(i)));
    ASSERT_TRUE(p.send(lines));
    ASSERT_TRUE(p.wait_ack((chunk + 1) * 200ull, 30s));
  }
}

// A first life of `d` that archives nothing (its archive directory cannot be made: a file is in the
// way), with 64K segments: `chunks` x 200 trades sent and applied, the daemon stopped. The names of
// the segments left in its log, sorted; empty (after a failed assertion) when that did not happen.
std::vector<std::string> applied_segments_left_live(DaemonHarness& d, const std::string& url, const std::string& prefix,
                                                    int chunks) {
  const std::string not_a_dir = d.dir() + "/not-a-dir";
  { std::ofstream(not_a_dir) << "a file"; }
  d.args() = {"--archive-dir", not_a_dir + "/archive", "--wal-segment-bytes", "64K"};
  d.start();
  {
    Producer p(d.socket());
    send_in_chunks(p, prefix, chunks);
  }
  const long long trades = 200ll * chunks;
  EXPECT_TRUE(wait_until([&] { return query_count(url, "SELECT count(*) FROM polymarket_trades") == trades; }, 60s));
  EXPECT_EQ(d.stop(), 0);
  std::vector<std::string> segments;
  for (const auto& f : std::filesystem::directory_iterator(d.wal_dir()))
    if (f.path().extension() == ".wal") segments.push_back(f.path().filename().string());
  std::sort(segments.begin(), segments.end());
  return segments;
}

// Waits until `trades` trades are stored and every applied segment but the newest is archived:
// the live log is down to its active segment (the archiver removes a segment only once archived).
// pm_ingest_archive_pending_segments alone is no such sign: it is 0 too before the retention has
// seen the primary flush the last commits and released their segments to the archiver.
void wait_applied_and_archived(DaemonHarness& d, std::size_t trades, const std::string& url) {
  ASSERT_TRUE(wait_until([&] { return query_count(url, "SELECT count(*) FROM polymarket_trades") == static_cast<long long>(trades); }, 60s))
      << query_count(url, "SELECT count(*) FROM polymarket_trades") << " of " << trades << " trades stored";
  ASSERT_TRUE(wait_until([&] { return d.metric("pm_ingest_wal_segments") == 1 && d.metric("pm_ingest_archive_pending_segments") == 0; }, 60s))
      << "log segments " << d.metric("pm_ingest_wal_segments") << ", pending " << d.metric("pm_ingest_archive_pending_segments") << "\n"
      << d.output();
}

TEST(EventSourcing, ReplayOfTheArchiveRebuildsEveryProjectionRowForRowThroughAnOutage) {
  PgCluster cluster;
  cluster.start();
  migrate(cluster.url());
  cluster.query("CREATE DATABASE rebuild");
  migrate(cluster.url("rebuild"));
  DaemonHarness d(cluster.url(), {});
  d.args() = archive_args(d);
  d.start();
  LoadOptions options;
  options.producers = 4;
  options.triggers = true;  // producers race for the same (condition, threshold): G2
  LoadDriver load({d.socket()}, options);
  send_duplicates(d.socket(), "dupA", 300);
  ASSERT_TRUE(wait_until([&] { return load.acked_count() > 2000; }, 60s)) << d.output();
  cluster.stop();
  const std::size_t at_stop = load.acked_count();
  ASSERT_TRUE(wait_until([&] { return load.acked_count() > at_stop + 1000; }, 60s)) << d.output();
  ASSERT_TRUE(wait_until([&] { return d.metric("pm_ingest_database_up") == 0; }, 30s));
  cluster.start();
  ASSERT_TRUE(wait_until([&] { return d.metric("pm_ingest_database_up") == 1; }, 60s)) << d.output();
  send_duplicates(d.socket(), "dupB", 300);
  load.stop();
  wait_applied_and_archived(d, load.acked().size() + 600, cluster.url());
  EXPECT_GT(d.metric("pm_ingest_archived_segments_total"), 3);
  EXPECT_EQ(d.stop(), 0);

  const test::Run r = replay(d, cluster.url("rebuild"));
  ASSERT_EQ(r.code, 0) << r.output;
  const auto live = projection(cluster.url());
  const auto rebuilt = projection(cluster.url("rebuild"));
  EXPECT_GT(live.size(), 3000u);
  EXPECT_EQ(rebuilt, live);
  // A second run finds its checkpoint at the end: it applies nothing and changes nothing.
  const test::Run again = replay(d, cluster.url("rebuild"));
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_NE(again.output.find("applied 0"), std::string::npos) << again.output;
  EXPECT_EQ(projection(cluster.url("rebuild")), live);
}

TEST(EventSourcing, PointInTimeReplayHoldsExactlyTheEventsThatArrivedBefore) {
  TestDatabase live("es_pitr_live");
  TestDatabase rebuilt("es_pitr_rebuilt");
  DaemonHarness d(live.url(), {});
  d.args() = archive_args(d);
  d.start();
  Producer p(d.socket());
  std::vector<std::string> before, after;
  for (int i = 0; i < 3000; ++i) before.push_back(trade_line("c" + std::to_string(i % 7), "before" + std::to_string(i)));
  for (int i = 0; i < 3000; ++i) after.push_back(trade_line("c" + std::to_string(i % 7), "after" + std::to_string(i)));
  ASSERT_TRUE(p.send(before));
  ASSERT_TRUE(p.wait_ack(before.size(), 30s));
  const std::int64_t instant = now_epoch_ms() + 1;  // later than every arrival so far
  ASSERT_TRUE(wait_until([&] { return now_epoch_ms() > instant; }, 1s));
  ASSERT_TRUE(p.send(after));
  ASSERT_TRUE(p.wait_ack(before.size() + after.size(), 30s));
  ASSERT_TRUE(wait_until([&] { return query_count(live.url(), "SELECT count(*) FROM polymarket_trades") == 6000; }, 60s));
  EXPECT_EQ(d.stop(), 0);

  const test::Run r = replay(d, rebuilt.url(), {"--until", format_iso_ms(instant)});
  ASSERT_EQ(r.code, 0) << r.output;
  std::set<std::string> expected;
  for (int i = 0; i < 3000; ++i) expected.insert("before" + std::to_string(i));
  EXPECT_EQ(trade_ids(rebuilt.url()), expected);
  EXPECT_NE(r.output.find("arrived at or after --until 3000"), std::string::npos) << r.output;
}

TEST(EventSourcing, ReplayKilledAtRandomMomentsResumesToTheSameTables) {
  TestDatabase live("es_kill_live");
  TestDatabase rebuilt("es_kill_rebuilt");
  DaemonHarness d(live.url(), {});
  d.args() = archive_args(d);
  d.start();
  LoadOptions options;
  options.triggers = true;
  LoadDriver load({d.socket()}, options);
  ASSERT_TRUE(wait_until([&] { return load.acked_count() > 20000; }, 120s)) << d.output();
  load.stop();
  wait_applied_and_archived(d, load.acked().size(), live.url());
  EXPECT_EQ(d.stop(), 0);

  const std::uint32_t seed = static_cast<std::uint32_t>(std::random_device{}());
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const std::vector<std::string> args = {"replay", "--source", d.dir() + "/archive", "--source", d.wal_dir(),
                                         "--database-url", rebuilt.url(), "--batch-max-events", "100"};
  const auto checkpoint = [&] {
    return query_count(rebuilt.url(), "SELECT coalesce(max(lsn), 0) FROM pm_ingest_checkpoints WHERE instance_id = 'replay'");
  };
  const test::Run count = run_ctl({"replay", "--dry-run", "--source", d.dir() + "/archive", "--source", d.wal_dir()});
  ASSERT_EQ(count.code, 0) << count.output;
  const long long events = std::stoll(count.output.substr(count.output.find("events read ") + 12));
  constexpr int kRounds = 12;
  int killed = 0;
  for (int round = 0; round < kRounds; ++round) {
    // Killed once its checkpoint passed a random point of this round's share of what is left.
    const long long at = checkpoint();
    const long long share = std::max(1LL, (events - at) / (kRounds - round + 1));
    const long long target = at + std::uniform_int_distribution<long long>(1, share)(rng);
    Process p;
    p.start(PM_INGESTCTL_BIN, args, {}, d.dir() + "/replay.out", Process::Output::Append);  // every round's, for the message below
    ASSERT_TRUE(wait_until([&] { return checkpoint() >= target || !p.running(); }, 60s));
    if (p.running()) ++killed;
    p.kill9();
    p.wait(10s);
  }
  // Most rounds kill a running replay; one that finished first (the checkpoint polled late) is
  // no defect. The projection below is the proof.
  EXPECT_GE(killed, kRounds / 2) << read_file(d.dir() + "/replay.out");
  const test::Run last = run_ctl(args);
  ASSERT_EQ(last.code, 0) << last.output;
  EXPECT_EQ(projection(rebuilt.url()), projection(live.url()));
}

TEST(EventSourcing, ArchiveRetentionRemovesOnlyWhatTheLimitSays) {
  TestDatabase live("es_retention");
  DaemonHarness d(live.url(), {});
  d.args() = archive_args(d);
  d.args().insert(d.args().end(), {"--archive-max-bytes", "100K"});
  d.start();
  LoadDriver load({d.socket()}, LoadOptions{});
  ASSERT_TRUE(wait_until([&] { return d.metric("pm_ingest_archive_removed_segments_total") >= 3; }, 120s)) << d.output();
  load.stop();
  wait_applied_and_archived(d, load.acked().size(), live.url());
  EXPECT_EQ(d.stop(), 0);
  const test::Run list = run_ctl({"archive", "list", "--archive-dir", d.dir() + "/archive", "--json"});
  ASSERT_EQ(list.code, 0) << list.output;
  // What is left fits the limit, and is the newest: a contiguous run of segments ending at the
  // last archived one.
  std::uintmax_t bytes = 0;
  std::vector<std::string> names;
  for (const auto& f : std::filesystem::directory_iterator(d.dir() + "/archive"))
    if (f.path().extension() == ".pmarc") {
      bytes += f.file_size();
      names.push_back(f.path().filename());
    }
  std::sort(names.begin(), names.end());
  EXPECT_LE(bytes, 100u * 1024);
  ASSERT_FALSE(names.empty());
  const auto number = [](const std::string& name) { return std::stoull(name.substr(0, 16), nullptr, 16); };
  EXPECT_EQ(number(names.back()) - number(names.front()) + 1, names.size());
  const test::Run verify = run_ctl({"archive", "verify", "--archive-dir", d.dir() + "/archive"});
  EXPECT_EQ(verify.code, 0) << verify.output;
}

// The archive on a full tmpfs: archiving fails (counted, retried), the
// live log keeps the applied segments and they count against --wal-max-bytes, so lines get `busy`
// once the kept segments reach it (nothing acked is lost); once there is space again everything is
// archived and lines are acked again.
TEST(EventSourcing, AFullArchiveDiskKeepsSegmentsWithinTheLogBudgetAndLosesNothing) {
  if (::geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root";
  TestDatabase live("es_tmpfs");
  DaemonHarness d(live.url(), {});
  const std::string archive = d.dir() + "/archive";
  std::filesystem::create_directories(archive);
  ASSERT_EQ(::mount("tmpfs", archive.c_str(), "tmpfs", 0, "size=1m"), 0) << std::strerror(errno);
  {
    std::ofstream filler(archive + "/filler");  // until the tmpfs is full
    const std::string block(4096, 'x');
    for (int i = 0; i < 1024 && filler.write(block.data(), block.size()); ++i) filler.flush();
  }
  d.args() = archive_args(d);
  d.args().insert(d.args().end(), {"--wal-max-bytes", "2M"});
  d.start();
  Producer p(d.socket());
  std::uint64_t sent = 0, busy = 0;
  // Until lines get `busy` while the live log holds about the budget (2M: ~18 segments of ~110K,
  // one group of 500 lines each, as a group never spans two segments), applied segments waiting
  // for the archive among them (the newest few wait for the primary's flush to be confirmed); a
  // `busy` while PostgreSQL lags behind a chunk alone does not end it.
  const auto budget_held_by_archive = [&] {
    return d.metric("pm_ingest_wal_disk_bytes") >= 1.5 * 1024 * 1024 && d.metric("pm_ingest_archive_pending_segments") >= 6;
  };
  bool held = false;
  while (!held && sent < 400'000) {
    std::vector<std::string> chunk;
    for (int i = 0; i < 500; ++i) chunk.push_back(trade_line("c" + std::to_string(i % 5), "t" + std::to_string(sent + i)));
    ASSERT_TRUE(p.send(chunk));
    sent += chunk.size();
    std::vector<Reply> replies;
    ASSERT_TRUE(p.wait_ack(sent, 30s, &replies)) << d.output();
    for (const Reply& r : replies) busy += r.error == "busy" ? 1 : 0;
    held = busy > 0 && wait_until(budget_held_by_archive, 2s);  // the gauges are sampled every 250 ms
  }
  ASSERT_TRUE(held) << "the kept segments never reached --wal-max-bytes: sent " << sent << ", busy " << busy
                    << ", pending segments " << d.metric("pm_ingest_archive_pending_segments")
                    << ", log bytes " << d.metric("pm_ingest_wal_disk_bytes") << "\n" << d.output();
  const long long accepted = static_cast<long long>(sent - busy);
  // The archiver has failed at least once on the full disk (it may not have tried yet when the
  // budget filled: the segments wait for the primary's flush to be confirmed first).
  EXPECT_TRUE(wait_until([&] { return d.metric("pm_ingest_archive_errors_total") > 0; }, 30s)) << d.output();
  // Everything accepted is applied: what holds the budget is the archive, not PostgreSQL.
  ASSERT_TRUE(wait_until([&] { return query_count(live.url(), "SELECT count(*) FROM polymarket_trades") == accepted; }, 60s));
  // The gauge the backlog alerts read shows it, above PmIngestdBacklogHigh's half of the budget
  // (pm_ingest_wal_unapplied_bytes, which they read before, stays near 0: they never fired while
  // every line got `busy`).
  EXPECT_TRUE(wait_until([&] { return d.metric("pm_ingest_wal_budget_used_bytes") > 1024 * 1024 &&
                                      d.metric("pm_ingest_wal_unapplied_bytes") < 64 * 1024; }, 10s))
      << "budget used " << d.metric("pm_ingest_wal_budget_used_bytes") << ", unapplied " << d.metric("pm_ingest_wal_unapplied_bytes");
  std::filesystem::remove(archive + "/filler");
  ASSERT_TRUE(wait_until([&] { return d.metric("pm_ingest_archive_pending_segments") == 0; }, 90s)) << d.output();
  std::vector<std::string> last = {trade_line("c0", "after-space")};
  ASSERT_TRUE(p.send(last));
  std::vector<Reply> replies;
  ASSERT_TRUE(p.wait_ack(sent + 1, 30s, &replies));
  for (const Reply& r : replies) EXPECT_TRUE(r.error.empty()) << r.error;
  EXPECT_EQ(d.stop(), 0);
  const test::Run dry = run_ctl({"replay", "--dry-run", "--source", archive, "--source", d.wal_dir()});
  EXPECT_EQ(dry.code, 0) << dry.output;
  EXPECT_NE(dry.output.find("events read " + std::to_string(accepted + 1) + ","), std::string::npos) << dry.output;
  ::umount2(archive.c_str(), MNT_DETACH);
}

// Applied segments kept because the archive was full survive a kill -9: recovery keeps them
// (they are not archived) and the restarted daemon archives them.
TEST(EventSourcing, SegmentsWaitingForTheArchiveSurviveKillNineAndAreArchivedAfterTheRestart) {
  if (::geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root";
  TestDatabase live("es_tmpfs_kill");
  DaemonHarness d(live.url(), {});
  const std::string archive = d.dir() + "/archive";
  std::filesystem::create_directories(archive);
  ASSERT_EQ(::mount("tmpfs", archive.c_str(), "tmpfs", 0, "size=1m"), 0) << std::strerror(errno);
  {
    std::ofstream filler(archive + "/filler");
    const std::string block(4096, 'x');
    for (int i = 0; i < 1024 && filler.write(block.data(), block.size()); ++i) filler.flush();
  }
  d.args() = archive_args(d);
  d.start();
  std::uint64_t sent = 0;
  {
    Producer p(d.socket());
    for (int round = 0; round < 8; ++round) {
      std::vector<std::string> chunk;
      for (int i = 0; i < 500; ++i) chunk.push_back(trade_line("c" + std::to_string(i % 5), "k" + std::to_string(sent + i)));
      ASSERT_TRUE(p.send(chunk));
      sent += chunk.size();
      ASSERT_TRUE(p.wait_ack(sent, 30s)) << d.output();
    }
  }
  ASSERT_TRUE(wait_until([&] { return d.metric("pm_ingest_archive_pending_segments") >= 4; }, 30s)) << d.output();
  d.kill9();
  std::filesystem::remove(archive + "/filler");
  d.start();
  ASSERT_TRUE(wait_until([&] { return d.metric("pm_ingest_archive_pending_segments") == 0 &&
                                      d.metric("pm_ingest_archived_segments_total") >= 4; }, 60s)) << d.output();
  EXPECT_EQ(d.stop(), 0);
  const test::Run dry = run_ctl({"replay", "--dry-run", "--source", archive, "--source", d.wal_dir()});
  EXPECT_EQ(dry.code, 0) << dry.output;
  EXPECT_NE(dry.output.find("events read " + std::to_string(sent) + ","), std::string::npos) << dry.output;
  const test::Run verify = run_ctl({"archive", "verify", "--archive-dir", archive});
  EXPECT_EQ(verify.code, 0) << verify.output;
  ::umount2(archive.c_str(), MNT_DETACH);
}

// Damage in an archived segment: replay stops with the file and offset (exit 2) and leaves the
// events before it applied; --skip-damaged names the skipped LSN range (exit 3) and applies the
// rest; archive verify reports the file (exit 2); archive list still lists it.
TEST(EventSourcing, ADamagedArchiveFileStopsReplayWithItsFileAndOffsetUnlessSkipped) {
  TestDatabase live("es_damage_live");
  TestDatabase rebuilt("es_damage_rebuilt");
  DaemonHarness d(live.url(), {});
  d.args() = archive_args(d);
  d.start();
  Producer p(d.socket());
  send_in_chunks(p, "d", 20);
  ASSERT_TRUE(wait_until([&] { return d.metric("pm_ingest_archived_segments_total") >= 4 &&
                                      d.metric("pm_ingest_archive_pending_segments") == 0; }, 60s)) << d.output();
  EXPECT_EQ(d.stop(), 0);
  const std::string archive = d.dir() + "/archive";
  const std::string victim = archive + "/0000000000000002.pmarc";
  ASSERT_TRUE(std::filesystem::exists(victim));
  damage_the_middle_of(victim);
  const test::Run stopped = replay(d, rebuilt.url());
  EXPECT_EQ(stopped.code, 2) << stopped.output;
  EXPECT_NE(stopped.output.find(victim), std::string::npos) << stopped.output;
  EXPECT_NE(stopped.output.find("offset"), std::string::npos) << stopped.output;
  const long long before_damage = query_count(rebuilt.url(), "SELECT count(*) FROM polymarket_trades");
  EXPECT_GT(before_damage, 0);
  EXPECT_LT(before_damage, 4000);

  const test::Run verify = run_ctl({"archive", "verify", "--archive-dir", archive});
  EXPECT_EQ(verify.code, 2) << verify.output;
  EXPECT_NE(verify.output.find(victim + " DAMAGED"), std::string::npos) << verify.output;

  const test::Run skipped = replay(d, rebuilt.url(), {"--skip-damaged"});
  EXPECT_EQ(skipped.code, 3) << skipped.output;
  EXPECT_NE(skipped.output.find("SKIPPED (damaged): lsn "), std::string::npos) << skipped.output;
  EXPECT_NE(skipped.output.find(victim), std::string::npos) << skipped.output;
  const long long after = query_count(rebuilt.url(), "SELECT count(*) FROM polymarket_trades");
  EXPECT_GT(after, before_damage);
  EXPECT_LT(after, 4000);
  // Run again (as after a kill), it resumes past the damage: it still names it, from its record.
  const test::Run resumed = replay(d, rebuilt.url(), {"--skip-damaged"});
  EXPECT_EQ(resumed.code, 3) << resumed.output;
  EXPECT_NE(resumed.output.find("SKIPPED (damaged) by an earlier run of this instance: lsn "), std::string::npos)
      << resumed.output;
  EXPECT_NE(resumed.output.find(victim), std::string::npos) << resumed.output;
  EXPECT_NE(resumed.output.find("applied 0"), std::string::npos) << resumed.output;
  // The skip kept its own checkpoint: a run without --skip-damaged still stops at the damage (it
  // resumed past the skipped range and exited 0, as if nothing were missing).
  const test::Run again = replay(d, rebuilt.url());
  EXPECT_EQ(again.code, 2) << again.output;
  EXPECT_NE(again.output.find(victim), std::string::npos) << again.output;
}

// Archive files are named by segment number: an archive directory that holds another log's
// segments (the log directory was reset) would be overwritten. The daemon refuses to start.
// Runs `d` with its archive until two segments are archived, stops it and removes its log
// directory, so that its next start begins another log (another log id). The write time of the
// archive's first file, to show later that nothing wrote over it.
std::filesystem::file_time_type archive_then_start_another_log(DaemonHarness& d) {
  d.args() = archive_args(d);
  d.start();
  {
    Producer p(d.socket());
    send_in_chunks(p, "f", 10);
  }
  EXPECT_TRUE(wait_until([&] { return d.metric("pm_ingest_archived_segments_total") >= 2; }, 60s)) << d.output();
  EXPECT_EQ(d.stop(), 0);
  std::filesystem::remove_all(d.wal_dir());
  return std::filesystem::last_write_time(d.dir() + "/archive/0000000000000001.pmarc");
}

TEST(EventSourcing, AnArchiveDirectoryOfAnotherLogIsRefusedAtStart) {
  TestDatabase live("es_foreign");
  DaemonHarness d(live.url(), {});
  const auto before = archive_then_start_another_log(d);
  EXPECT_EQ(d.run_to_exit(), 2) << d.output();
  EXPECT_NE(d.output().find("holds log"), std::string::npos) << d.output();
  EXPECT_EQ(std::filesystem::last_write_time(d.dir() + "/archive/0000000000000001.pmarc"), before);
}

// Two daemons (two logs) on one archive directory before either had archived anything: the check
// for another log's files found none, both ran, and the second's segment 1 would be renamed over
// the first's (both 0000000000000001.pmarc) and its index rewritten without the first's entries.
// The directory's lock refuses the second at start (exit 2, which systemd does not restart), before
// anything else can fail: here its log directory cannot be made either, and it exited 1 naming only
// that (systemd restarts an exit 1 for ever, and the archive's holder was never named).
TEST(EventSourcing, ASecondDaemonOnAnArchiveDirectoryInUseIsRefusedAtStart) {
  TestDatabase live("es_shared_archive");
  DaemonHarness first(live.url(), {});
  first.args() = archive_args(first);
  first.start();
  DaemonHarness second(live.url(), {"--archive-dir", first.dir() + "/archive", "--instance-id", "second"});
  std::ofstream(second.wal_dir()) << "a file where the log directory should be\n";
  EXPECT_EQ(second.run_to_exit(), 2) << second.output();
  EXPECT_NE(second.output().find("the archive directory " + first.dir() + "/archive is in use by another pm-ingestd (pid " +
                                 std::to_string(first.process().pid()) + ")"),
            std::string::npos)
      << second.output();
  // Only the refusal: the start logged first that the directory was unusable and that applied
  // segments stayed in the live log "until it works", for a daemon that then exited.
  EXPECT_EQ(second.output().find("until it works"), std::string::npos) << second.output();
  EXPECT_EQ(first.stop(), 0);
}

// An archive directory start() could not read (its parent did not exist yet) is checked when the
// archiver gets to it: another log's archive found there is refused, not written over. The new
// log's segment 1 was archived over the old log's 0000000000000001.pmarc.
TEST(EventSourcing, AnArchiveDirectoryOfAnotherLogFoundAfterStartIsNotWrittenOver) {
  TestDatabase live("es_foreign_late");
  TestDatabase next_live("es_foreign_late_next");  // the new log starts at lsn 1: a database of its own
  DaemonHarness d(live.url(), {});
  const auto before = archive_then_start_another_log(d);
  const std::string late = d.dir() + "/late";
  d.args() = {"--archive-dir", late + "/archive", "--wal-segment-bytes", "64K"};
  d.database_url() = next_live.url();
  d.start();
  Producer p(d.socket());
  send_in_chunks(p, "n", 10);  // segments the new log would archive as 0000000000000001.pmarc...
  // ...into the old log's archive, published whole by one rename: an empty `late` would let the
  // archiver's retry make late/archive first (its mkdir is one level), and the move then fail.
  const std::string staged = d.dir() + "/late.staged";
  std::filesystem::create_directory(staged);
  std::filesystem::rename(d.dir() + "/archive", staged + "/archive");
  std::filesystem::rename(staged, late);
  ASSERT_TRUE(wait_until([&] { return d.output().find("holds log") != std::string::npos; }, 60s)) << d.output();
  EXPECT_EQ(d.metric("pm_ingest_archived_segments_total"), 0);
  EXPECT_EQ(std::filesystem::last_write_time(late + "/archive/0000000000000001.pmarc"), before);
  EXPECT_GE(d.metric("pm_ingest_wal_segments"), 2) << "the applied segments stay in the live log";
  EXPECT_EQ(d.stop(), 0);
}

// --archive-max-bytes below one archived segment: each segment is archived, leaves the live log,
// and only then goes to the limit. The limit took the segment just archived before the log could
// remove it, so the log kept it (it removes only what the archive holds), archived it again every
// second, and grew until every line got `busy`.
TEST(EventSourcing, ALimitBelowOneSegmentStillLetsTheLiveLogShrink) {
  TestDatabase live("es_tiny_limit");
  DaemonHarness d(live.url(), {});
  d.args() = archive_args(d);
  d.args().insert(d.args().end(), {"--archive-max-bytes", "1K"});
  d.start();
  Producer p(d.socket());
  send_in_chunks(p, "m", 10);
  // The log's files, not its gauges: pm_ingest_wal_segments kept its value from the start while
  // the writer caught up here, so it read 1 before anything was archived.
  const auto live_segments = [&] {
    int n = 0;
    for (const auto& f : std::filesystem::directory_iterator(d.wal_dir())) n += f.path().extension() == ".wal" ? 1 : 0;
    return n;
  };
  ASSERT_TRUE(wait_until([&] { return query_count(live.url(), "SELECT count(*) FROM polymarket_trades") == 2000; }, 60s));
  EXPECT_TRUE(wait_until([&] { return live_segments() == 1; }, 60s)) << live_segments() << " live segments\n" << d.output();
  // How many segments 2,000 trades fill depends on how the acks group them: at least two.
  EXPECT_GE(d.metric("pm_ingest_archived_segments_total"), 2);
  EXPECT_GE(d.metric("pm_ingest_archive_removed_segments_total"), 1);
  EXPECT_EQ(d.stop(), 0);
}

// A log directory a running daemon holds whose state file cannot be read: the replay cannot tell
// what was synced, reads nothing of it, says so and fails (it exited 0, so a scripted rebuild took
// the run for complete). The test holds the directory's lock itself, as a daemon would.
TEST(EventSourcing, AReplayThatCannotTellWhatARunningDaemonSyncedFails) {
  TestDatabase live("es_state_unread");
  DaemonHarness d(live.url(), {});
  d.start();
  {
    Producer p(d.socket());
    std::vector<std::string> lines;
    for (int i = 0; i < 10; ++i) lines.push_back(trade_line("c", "unread" + std::to_string(i)));
    ASSERT_TRUE(p.send(lines));
    ASSERT_TRUE(p.wait_ack(10, 10s));
  }
  EXPECT_EQ(d.stop(), 0);
  const int lock = ::open((d.wal_dir() + "/LOCK").c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(lock, 0) << std::strerror(errno);
  ASSERT_EQ(::flock(lock, LOCK_EX | LOCK_NB), 0) << std::strerror(errno);
  const std::string state = read_file(d.wal_dir() + "/state");
  { std::ofstream(d.wal_dir() + "/state", std::ios::trunc) << "not a state file"; }
  const auto held = run_ctl({"replay", "--dry-run", "--source", d.wal_dir()});
  EXPECT_EQ(held.code, 1) << held.output;
  EXPECT_NE(held.output.find("its state file cannot be read, so what it has synced is unknown"), std::string::npos) << held.output;
  ::close(lock);
  { std::ofstream(d.wal_dir() + "/state", std::ios::trunc | std::ios::binary) << state; }
  const auto free = run_ctl({"replay", "--dry-run", "--source", d.wal_dir()});
  EXPECT_EQ(free.code, 0) << free.output;
  EXPECT_NE(free.output.find("events read 10,"), std::string::npos) << free.output;
}

// Replay beside the running daemon reads its live log only as far as the log's state file says it
// had synced (a group still being synced may yet fail and be cut): each run either reads every
// acked event or says where it stopped; once the daemon is idle, the writer raises that bound
// within about a second, and a run reads everything.
TEST(EventSourcing, ReplayBesideARunningDaemonReadsItsLogUpToWhatItHadSynced) {
  TestDatabase live("es_beside");
  DaemonHarness d(live.url(), {});
  d.start();
  Producer p(d.socket());
  const auto send_chunk = [&](int chunk) {
    std::vector<std::string> lines;
    for (int i = 0; i < 500; ++i) lines.push_back(trade_line("c" + std::to_string(i % 5), "beside" + std::to_string(chunk * 500 + i)));
    ASSERT_TRUE(p.send(lines));
    ASSERT_TRUE(p.wait_ack((chunk + 1) * 500ull, 30s));
  };
  // Runs a dry replay until it reads `events`; each run reads all or says where it stopped.
  const auto replay_reaches = [&](int events) {
    test::Run dry;
    const std::string all = "events read " + std::to_string(events) + ",";
    const bool reached = wait_until([&] {
      dry = run_ctl({"replay", "--dry-run", "--source", d.wal_dir()});
      const bool read_all = dry.output.find(all) != std::string::npos;
      EXPECT_EQ(dry.code, 0) << dry.output;
      EXPECT_TRUE(read_all || dry.output.find("is in use by a running pm-ingestd") != std::string::npos) << dry.output;
      return read_all;
    }, 20s);
    EXPECT_TRUE(reached) << dry.output;
  };
  send_chunk(0);
  replay_reaches(500);
  // The state was just written for the first chunk's commit; the second commits well within a
  // second of it, and commits write the state at most once a second: only the idle writer's
  // raise of the ceiling lets a replay reach it.
  send_chunk(1);
  ASSERT_TRUE(wait_until([&] { return query_count(live.url(), "SELECT count(*) FROM polymarket_trades") == 1000; }, 30s));
  replay_reaches(1000);
  EXPECT_EQ(d.stop(), 0);
}

// With PostgreSQL unreachable the writer applies nothing and commits nothing, so commits never
// raise the ceiling; the daemon raises it each second anyway, and a replay elsewhere (the
// disaster-recovery case) reaches every acked event.
TEST(EventSourcing, ReplayBesideADaemonWhoseDatabaseIsDownReachesEveryAckedEvent) {
  const std::string unreachable = unreachable_database_url();
  DaemonHarness d(unreachable);
  d.start();
  Producer p(d.socket());
  std::vector<std::string> lines;
  for (int i = 0; i < 300; ++i) lines.push_back(trade_line("c" + std::to_string(i % 3), "down" + std::to_string(i)));
  ASSERT_TRUE(p.send(lines));
  ASSERT_TRUE(p.wait_ack(lines.size(), 30s));
  test::Run dry;
  EXPECT_TRUE(wait_until([&] {
    dry = run_ctl({"replay", "--dry-run", "--source", d.wal_dir()});
    return dry.output.find("events read 300,") != std::string::npos;
  }, 20s)) << dry.output;
  EXPECT_EQ(d.metric("pm_ingest_database_up"), 0);
}

// The newest archive file is gone (deleted by hand, lost by the file system; its live segment was
// removed when it was archived): `archive verify` said "archive ok ... index stale" (exit 0), and
// the daemon's next start rebuilt the index without it, saying nothing. Both report it now. And a
// file missing right after a damaged one was reported only once the damaged one was restored.
TEST(EventSourcing, AnArchivedFileThatIsGoneIsReportedNotSilentlyUnlisted) {
  TestDatabase live("es_lost_file");
  DaemonHarness d(live.url(), {});
  d.args() = archive_args(d);
  d.start();
  {
    Producer p(d.socket());
    send_in_chunks(p, "g", 20);
  }
  ASSERT_TRUE(wait_until([&] { return d.metric("pm_ingest_archived_segments_total") >= 5 &&
                                      d.metric("pm_ingest_archive_pending_segments") == 0; }, 60s)) << d.output();
  EXPECT_EQ(d.stop(), 0);
  const std::string archive = d.dir() + "/archive";
  std::vector<std::string> files;
  for (const auto& f : std::filesystem::directory_iterator(archive))
    if (f.path().extension() == ".pmarc") files.push_back(f.path().string());
  std::sort(files.begin(), files.end());
  ASSERT_GE(files.size(), 5u);
  std::filesystem::remove(files.back());
  damage_the_middle_of(files[1]);
  std::filesystem::remove(files[2]);

  const test::Run verify = run_ctl({"archive", "verify", "--archive-dir", archive});
  EXPECT_EQ(verify.code, 2) << verify.output;
  EXPECT_NE(verify.output.find(files.back() + " missing: index.ndjson lists it (lsn "), std::string::npos) << verify.output;
  EXPECT_NE(verify.output.find("ARCHIVE DAMAGED"), std::string::npos) << verify.output;
  EXPECT_NE(verify.output.find(files[1] + " DAMAGED"), std::string::npos) << verify.output;
  const std::string missing = std::filesystem::path(files[2]).stem().string() + ".wal";
  EXPECT_NE(verify.output.find(files[3] + " ok: lsn"), std::string::npos) << verify.output;
  EXPECT_NE(verify.output.find("CHAIN BROKEN: segments " + missing + ".." + missing + " are missing"), std::string::npos)
      << verify.output;

  d.start();
  EXPECT_TRUE(wait_until([&] { return d.output().find(files.back() + ": missing: index.ndjson lists it") != std::string::npos; }, 20s))
      << d.output();
  EXPECT_GE(d.metric("pm_ingest_archive_errors_total"), 1);
  // The two listed and gone; the damaged body is found by `archive verify`, not at load (headers
  // only). The gauge is set once the load is done, after the messages.
  EXPECT_TRUE(wait_until([&] { return d.metric("pm_ingest_archive_damaged_files") == 2; }, 20s))
      << d.metric("pm_ingest_archive_damaged_files") << "\n" << d.output();
  EXPECT_EQ(d.stop(), 0);
}

// An applied live segment whose records are damaged cannot be archived: the daemon keeps it, and
// every later segment waits behind it in the live log. `archive store-damaged`, with the daemon
// stopped, archives it as it is; the next start removes it and archives the rest. `archive verify`
// names the damaged file, and a replay with --skip-damaged names the skipped LSNs and applies the rest.
TEST(EventSourcing, ADamagedLiveSegmentIsArchivedAsItIsByStoreDamagedAndTheLaterSegmentsFollow) {
  TestDatabase live("es_store_damaged");
  TestDatabase rebuilt("es_store_damaged_rebuilt");
  DaemonHarness d(live.url(), {});
  const std::vector<std::string> segments = applied_segments_left_live(d, live.url(), "sd", 10);
  ASSERT_GE(segments.size(), 4u) << d.output();
  const std::string victim = segments[1];
  damage_the_middle_of(d.wal_dir() + "/" + victim);

  d.args() = archive_args(d);
  d.start();
  ASSERT_TRUE(wait_until([&] { return d.output().find("cannot archive log segment " + victim + ": it is damaged") != std::string::npos; }, 30s))
      << d.output();
  EXPECT_NE(d.output().find("pm-ingestctl archive store-damaged --archive-dir"), std::string::npos) << d.output();
  const std::string archive = d.dir() + "/archive";
  const std::vector<std::string> store = {"archive", "store-damaged", "--archive-dir", archive, "--wal-dir", d.wal_dir(), "--segment", victim};
  const test::Run while_running = run_ctl(store);
  EXPECT_EQ(while_running.code, 1) << while_running.output;
  EXPECT_NE(while_running.output.find("stop the daemon first"), std::string::npos) << while_running.output;
  EXPECT_GT(d.metric("pm_ingest_archive_pending_segments"), 0);
  EXPECT_EQ(d.stop(), 0);

  // A directory that is not there is named as such, not as a daemon to stop (the message said "stop the daemon first").
  const test::Run no_archive = run_ctl({"archive", "store-damaged", "--archive-dir", archive + "/nope", "--wal-dir", d.wal_dir(), "--segment", victim});
  EXPECT_EQ(no_archive.code, 1) << no_archive.output;
  EXPECT_NE(no_archive.output.find("(No such file or directory)"), std::string::npos) << no_archive.output;
  EXPECT_EQ(no_archive.output.find("stop the daemon first"), std::string::npos) << no_archive.output;
  const test::Run not_oldest = run_ctl({"archive", "store-damaged", "--archive-dir", archive, "--wal-dir", d.wal_dir(), "--segment", segments[2]});
  EXPECT_EQ(not_oldest.code, 1) << not_oldest.output;
  EXPECT_NE(not_oldest.output.find("is not the oldest segment"), std::string::npos) << not_oldest.output;
  const test::Run stored = run_ctl(store);
  ASSERT_EQ(stored.code, 0) << stored.output;
  EXPECT_NE(stored.output.find("archived the damaged segment"), std::string::npos) << stored.output;
  EXPECT_NE(stored.output.find("unreadable: bytes "), std::string::npos) << stored.output;
  const test::Run twice = run_ctl(store);
  EXPECT_EQ(twice.code, 1) << twice.output;
  EXPECT_NE(twice.output.find("already holds"), std::string::npos) << twice.output;

  d.start();
  wait_applied_and_archived(d, 2000, live.url());
  EXPECT_EQ(d.stop(), 0);
  const std::string victim_file = archive + "/" + victim.substr(0, victim.size() - 4) + ".pmarc";
  const test::Run verify = run_ctl({"archive", "verify", "--archive-dir", archive});
  EXPECT_EQ(verify.code, 2) << verify.output;
  EXPECT_NE(verify.output.find(victim_file + " DAMAGED"), std::string::npos) << verify.output;
  EXPECT_EQ(occurrences(verify.output, "DAMAGED"), 2u) << "the file, and the summary line: " << verify.output;

  const test::Run replayed = replay(d, rebuilt.url(), {"--skip-damaged"});  // the archive and the live log
  EXPECT_EQ(replayed.code, 3) << replayed.output;
  EXPECT_NE(replayed.output.find("SKIPPED (damaged): lsn "), std::string::npos) << replayed.output;
  EXPECT_NE(replayed.output.find(victim_file), std::string::npos) << replayed.output;
  // Every trade is there but those of the LSNs it names as skipped (one damaged group).
  std::smatch range;
  ASSERT_TRUE(std::regex_search(replayed.output, range, std::regex("SKIPPED \\(damaged\\): lsn ([0-9]+)\\.\\.([0-9]+) in "))) << replayed.output;
  const long long skipped = std::stoll(range[2]) - std::stoll(range[1]) + 1;
  EXPECT_GT(skipped, 0);
  EXPECT_LT(skipped, 400);
  EXPECT_EQ(query_count(rebuilt.url(), "SELECT count(*) FROM polymarket_trades"), 2000 - skipped) << replayed.output;
}

// `archive store-damaged` on a segment the system will not let it open (as root, a symlink loop
// stands in for a permission) knows nothing of damage: it says it cannot read it, exit 1, and gives
// no advice to remove it from the log directory (the advice for a header that is damaged, which
// would throw away a healthy segment's events). Once the segment opens, it is read: healthy, so
// the daemon archives it itself.
TEST(EventSourcing, StoreDamagedOnASegmentThatCannotBeOpenedSaysSoAndCallsItNotDamaged) {
  TestDatabase live("es_store_unreadable");
  DaemonHarness d(live.url(), {});
  const std::vector<std::string> segments = applied_segments_left_live(d, live.url(), "su", 3);
  ASSERT_GE(segments.size(), 2u) << d.output();
  const std::filesystem::path oldest = d.wal_dir() + "/" + segments.front();
  const std::filesystem::path kept = d.dir() + "/" + segments.front() + ".kept";
  std::filesystem::rename(oldest, kept);
  std::filesystem::create_symlink(oldest.filename(), oldest);  // open() fails with ELOOP
  const std::string archive = d.dir() + "/archive";
  std::filesystem::create_directories(archive);
  const std::vector<std::string> store = {"archive", "store-damaged", "--archive-dir", archive, "--wal-dir", d.wal_dir(),
                                          "--segment", segments.front()};
  const test::Run refused = run_ctl(store);
  EXPECT_EQ(refused.code, 1) << refused.output;
  EXPECT_NE(refused.output.find("Too many levels of symbolic links"), std::string::npos) << refused.output;
  EXPECT_NE(refused.output.find("nothing is known about damage"), std::string::npos) << refused.output;
  EXPECT_EQ(refused.output.find("remove it from the log directory"), std::string::npos) << "damage advice: " << refused.output;
  EXPECT_FALSE(std::filesystem::exists(archive + "/" + segments.front().substr(0, segments.front().size() - 4) + ".pmarc"));

  std::filesystem::remove(oldest);
  std::filesystem::rename(kept, oldest);
  const test::Run readable = run_ctl(store);
  EXPECT_EQ(readable.code, 1) << readable.output;
  EXPECT_NE(readable.output.find("is not damaged: every record checks out"), std::string::npos) << readable.output;
}

// `archive verify` pointed at a directory that holds no archive (the log directory, a typo) said
// "archive ok: 0 archived segments" and exited 0; `archive list` listed "total: 0 segments", exit 0.
TEST(EventSourcing, ArchiveVerifyOfADirectoryWithoutAnArchiveSaysSo) {
  TestDatabase live("es_verify_none");
  DaemonHarness d(live.url(), {});
  d.args() = archive_args(d);
  d.start();
  {
    Producer p(d.socket());
    ASSERT_TRUE(p.send({trade_line("c", "v1")}));
    ASSERT_TRUE(p.wait_ack(1, 10s));
  }
  EXPECT_EQ(d.stop(), 0);
  const test::Run of_the_log = run_ctl({"archive", "verify", "--archive-dir", d.wal_dir()});
  EXPECT_EQ(of_the_log.code, 2) << of_the_log.output;
  EXPECT_NE(of_the_log.output.find("no archive in"), std::string::npos) << of_the_log.output;
  const test::Run empty_archive = run_ctl({"archive", "verify", "--archive-dir", d.dir() + "/archive"});
  EXPECT_EQ(empty_archive.code, 0) << "the daemon's own archive, nothing archived yet: " << empty_archive.output;
  for (const bool json : {false, true}) {
    std::vector<std::string> list = {"archive", "list", "--archive-dir", d.wal_dir()};
    if (json) list.push_back("--json");
    const test::Run listed = run_ctl(list);
    EXPECT_EQ(listed.code, 2) << listed.output;
    EXPECT_NE(listed.output.find("no archive in " + d.wal_dir()), std::string::npos) << listed.output;
    list[3] = d.dir() + "/archive";
    const test::Run own = run_ctl(list);
    EXPECT_EQ(own.code, 0) << own.output;
  }
}

// Sources that do not reach back to the first event to apply (archive retention removed the
// oldest segments) stop a replay like damage, naming where they begin; --from-lsn starts there.
TEST(EventSourcing, ReplayOfATrimmedArchiveSaysWhereItBegins) {
  TestDatabase live("es_trimmed");
  TestDatabase rebuilt("es_trimmed_rebuilt");
  DaemonHarness d(live.url(), {});
  d.args() = archive_args(d);
  d.args().insert(d.args().end(), {"--archive-max-bytes", "60K"});
  d.start();
  Producer p(d.socket());
  send_in_chunks(p, "r", 30);
  ASSERT_TRUE(wait_until([&] { return d.metric("pm_ingest_archive_removed_segments_total") >= 1 &&
                                      d.metric("pm_ingest_archive_pending_segments") == 0; }, 60s)) << d.output();
  EXPECT_EQ(d.stop(), 0);
  const test::Run stopped = replay(d, rebuilt.url());
  EXPECT_EQ(stopped.code, 2) << stopped.output;
  const std::size_t at = stopped.output.find("--from-lsn ");
  ASSERT_NE(at, std::string::npos) << stopped.output;
  const std::string from = std::to_string(std::stoull(stopped.output.substr(at + 11)));
  EXPECT_EQ(query_count(rebuilt.url(), "SELECT count(*) FROM polymarket_trades"), 0);
  const test::Run from_there = replay(d, rebuilt.url(), {"--from-lsn", from});
  EXPECT_EQ(from_there.code, 0) << from_there.output;
  EXPECT_EQ(query_count(rebuilt.url(), "SELECT count(*) FROM polymarket_trades"), 6000 - std::stoll(from) + 1);
}

}  // namespace
}  // namespace pm::test
