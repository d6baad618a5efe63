// pm-ingestctl as an operator runs it: migrate, status, checkpoint-reset, wal-verify, wal-dump.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <pqxx/pqxx>

#include "ingest/log/wal_directory.h"
#include "repos/migrator.h"
#include "tests/e2e/e2e_util.h"
#include "tests/support/daemon_harness.h"
#include "tests/support/producer.h"
#include "tests/support/test_database.h"

namespace pm::test {
namespace {

using namespace std::chrono_literals;

Run ctl(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {}) {
  return run_ctl(args, env);
}

TEST(Ctl, MigrateTwiceFromTheEnvironment) {
  TestDatabase tdb("ctl_migrate", /*migrate=*/false);
  auto first = ctl({"migrate"}, {{"DATABASE_URL", tdb.url()}});
  ASSERT_EQ(first.code, 0) << first.output;
  EXPECT_NE(first.output.find("applied          01_schema.sql"), std::string::npos) << first.output;
  EXPECT_EQ(first.output.find(":predict@"), std::string::npos) << "password printed: " << first.output;
  auto second = ctl({"migrate", "--database-url", tdb.url()});
  ASSERT_EQ(second.code, 0) << second.output;
  EXPECT_NE(second.output.find("schema up to date"), std::string::npos) << second.output;
  EXPECT_EQ(second.output.find("applied          "), std::string::npos);
  EXPECT_EQ(tdb.count("polymarket_trades"), 0);
  auto pending = ctl({"pending", "--database-url", tdb.url()});
  EXPECT_EQ(pending.code, 0);
  EXPECT_EQ(pending.output, "");
}

// A second `migrate` while another runs waits for it: it said nothing while it waited, so an
// operator could not tell a wait from a hang (the first one's index build may take minutes).
TEST(Ctl, ASecondMigrateSaysItWaitsForTheFirstAndWhoHoldsTheLock) {
  TestDatabase tdb("ctl_migrate_wait", /*migrate=*/false), other("ctl_migrate_wait_other", /*migrate=*/false);
  pqxx::connection first(tdb.url());  // the first migrator, holding the migrators' lock
  pqxx::nontransaction(first).exec("SELECT pg_advisory_lock(" + std::to_string(kMigrationLockKey) + ")");
  // A migrator of another database holds the same key there: not this one's holder (pg_locks
  // shows every database's locks; it was named too, and a CI run beside other tests failed here).
  pqxx::connection elsewhere(other.url());
  pqxx::nontransaction(elsewhere).exec("SELECT pg_advisory_lock(" + std::to_string(kMigrationLockKey) + ")");
  const std::string dir = make_temp_dir("ctl_migrate_wait");
  Process second;
  second.start(PM_INGESTCTL_BIN, {"migrate", "--database-url", tdb.url()}, {}, dir + "/out.log");
  const std::string said = "waiting for another migrate to finish (it holds the migrators' lock: pid " +
                           std::to_string(first.backendpid()) + ")";
  EXPECT_TRUE(wait_until([&] { return read_file(dir + "/out.log").find(said) != std::string::npos; }, 30s))
      << read_file(dir + "/out.log");
  pqxx::nontransaction(first).exec("SELECT pg_advisory_unlock_all()");
  EXPECT_EQ(second.wait(60s), 0) << read_file(dir + "/out.log");
  EXPECT_NE(read_file(dir + "/out.log").find("applied          01_schema.sql"), std::string::npos);
  std::filesystem::remove_all(dir);
}

// The install's migrate step runs pm-ingestctl with the daemon's environment file: one that names
// the database through PM_INGESTD_DATABASE_URL_FILE (as the example offers) gave "no database".
TEST(Ctl, ReadsTheDaemonsDatabaseVariablesFromItsEnvironment) {
  TestDatabase tdb("ctl_daemon_env", /*migrate=*/false);
  const std::string dir = make_temp_dir("ctl_daemon_env");
  { std::ofstream(dir + "/database-url") << tdb.url() << "\n"; }
  const auto from_file = ctl({"migrate"}, {{"DATABASE_URL", ""}, {"PM_INGESTD_DATABASE_URL_FILE", dir + "/database-url"}});
  ASSERT_EQ(from_file.code, 0) << from_file.output;
  EXPECT_NE(from_file.output.find("applied          01_schema.sql"), std::string::npos) << from_file.output;
  const auto from_url = ctl({"pending"}, {{"DATABASE_URL", "postgresql://u@127.0.0.1:1/x"}, {"PM_INGESTD_DATABASE_URL", tdb.url()}});
  EXPECT_EQ(from_url.code, 0) << from_url.output;
  // The daemon's INI file (--config) beats DATABASE_URL in the daemon: pm-ingestctl reads its
  // database lines too (it went to DATABASE_URL's database), given as --config or PM_INGESTD_CONFIG.
  const std::string unreachable = "postgresql://u@127.0.0.1:1/x";
  { std::ofstream(dir + "/url.conf") << "wal-max-bytes = 8G\ndatabase-url = " << tdb.url() << "\n"; }
  { std::ofstream(dir + "/file.conf") << "database-url-file = " << dir << "/database-url\nbatch-max-events = 500\n"; }
  const auto from_config = ctl({"pending", "--config", dir + "/url.conf", "--connect-attempts", "1"}, {{"DATABASE_URL", unreachable}});
  EXPECT_EQ(from_config.code, 0) << from_config.output;
  const auto from_config_env = ctl({"pending", "--connect-attempts", "1"},
                                   {{"DATABASE_URL", unreachable}, {"PM_INGESTD_CONFIG", dir + "/file.conf"}});
  EXPECT_EQ(from_config_env.code, 0) << from_config_env.output;
  const auto no_config = ctl({"pending", "--config", dir + "/none.conf"}, {{"DATABASE_URL", unreachable}});
  EXPECT_EQ(no_config.code, 2) << no_config.output;
  EXPECT_NE(no_config.output.find("--config: cannot read " + dir + "/none.conf"), std::string::npos) << no_config.output;
  // A file the daemon refuses is refused here too: a misspelled name (the daemon would not start,
  // pm-ingestctl went on to DATABASE_URL), and a relative database-url-file (read from each
  // program's own working directory: / for the daemon under systemd).
  { std::ofstream(dir + "/typo.conf") << "databse-url = " << tdb.url() << "\n"; }
  { std::ofstream(dir + "/relative.conf") << "database-url-file = database-url\n"; }
  const auto typo = ctl({"pending", "--config", dir + "/typo.conf"}, {{"DATABASE_URL", tdb.url()}});
  EXPECT_EQ(typo.code, 2) << typo.output;
  EXPECT_NE(typo.output.find("--config " + dir + "/typo.conf: unrecognised option 'databse-url'"), std::string::npos)
      << typo.output;
  const auto relative = ctl({"pending"}, {{"DATABASE_URL", tdb.url()}, {"PM_INGESTD_CONFIG", dir + "/relative.conf"}});
  EXPECT_EQ(relative.code, 2) << relative.output;
  EXPECT_NE(relative.output.find("PM_INGESTD_CONFIG " + dir +
                                 "/relative.conf: database-url-file must be an absolute path ('database-url' given)"),
            std::string::npos)
      << relative.output;
  std::filesystem::remove_all(dir);
}

TEST(Ctl, MigrateFailureNamesTheFileAndTheServerMessage) {
  TestDatabase tdb("ctl_fail", /*migrate=*/false);
  // A table in the way with an incompatible shape: the index of 03a (and 04) cannot be built on it.
  tdb.exec("CREATE TABLE polymarket_trades (condition_id TEXT NOT NULL, trade_id TEXT NOT NULL)");
  auto r = ctl({"migrate", "--database-url", tdb.url()});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("03a_trades_condition_timestamp_index_concurrently.sql"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("timestamp"), std::string::npos) << r.output;
  EXPECT_EQ(tdb.count("SELECT count(*) FROM pm_schema_migrations"), 3);
}

TEST(Ctl, UnreachableDatabaseIsAClearErrorWithoutThePassword) {
  auto r = ctl({"migrate", "--connect-attempts", "1", "--database-url",
                "postgresql://predict:hunter2pw@127.0.0.1:" + std::to_string(free_tcp_port()) + "/predict"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("cannot connect"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("hunter2pw"), std::string::npos) << r.output;
  // No database given is a usage error, as --help says (it exited 1).
  auto none = ctl({"migrate"}, {{"DATABASE_URL", ""}});
  EXPECT_EQ(none.code, 2) << none.output;
  EXPECT_NE(none.output.find("DATABASE_URL"), std::string::npos) << none.output;
  auto no_file = ctl({"migrate", "--database-url-file", "/nonexistent/url"});
  EXPECT_EQ(no_file.code, 2) << no_file.output;
  EXPECT_NE(no_file.output.find("cannot read --database-url-file /nonexistent/url: No such file or directory"), std::string::npos)
      << no_file.output;
  EXPECT_EQ(ctl({"frobnicate"}).code, 2);
  // Usage errors exit 2, as the usage says (they exited 1, like a failure while a command ran).
  for (const std::vector<std::string>& usage : {std::vector<std::string>{"wal-verify"}, {"wal-dump"}, {"replay"},
                                                {"archive", "list"}, {"replay", "--dry-run", "--source", "/nonexistent", "--until", "yesterday"},
                                                {"send", "--format", "nope", "--input", "/dev/null"}}) {
    const auto r = ctl(usage);
    EXPECT_EQ(r.code, 2) << usage.front() << ": " << r.output;
    EXPECT_NE(r.output.find("see pm-ingestctl --help"), std::string::npos) << r.output;
  }
  // A URL given to the wrong option: the option parser's error quotes the value.
  auto misplaced = ctl({"status", "--connect-attempts", "postgresql://predict:S3cretF@localhost/predict"});
  EXPECT_NE(misplaced.output.find("--connect-attempts"), std::string::npos) << misplaced.output;
  EXPECT_EQ(misplaced.output.find("S3cretF"), std::string::npos) << misplaced.output;
  for (const char* attempts : {"0", "-1"}) {  // a bad value is a usage error too (it exited 1)
    const auto bad = ctl({"status", "--connect-attempts", attempts, "--database-url", "postgresql://u@127.0.0.1:1/x"});
    EXPECT_EQ(bad.code, 2) << bad.output;
    EXPECT_NE(bad.output.find("--connect-attempts must be between 1 and 1000 (" + std::string(attempts) + " given)"), std::string::npos)
        << bad.output;
  }
}

// An input that opens but cannot be read (a directory; /proc/self/mem, whose reads fail with EIO)
// sent nothing and exited 0, as for an empty file.
TEST(Ctl, SendFailsOnAnInputItCannotRead) {
  const auto directory = ctl({"send", "--socket", "/nonexistent/sock", "--input", "/tmp"});
  EXPECT_EQ(directory.code, 1) << directory.output;  // as for a file that is not there
  EXPECT_NE(directory.output.find("cannot read /tmp: it is a directory"), std::string::npos) << directory.output;
  const auto unreadable = ctl({"send", "--socket", "/nonexistent/sock", "--input", "/proc/self/mem"});
  EXPECT_EQ(unreadable.code, 1) << unreadable.output;
  EXPECT_NE(unreadable.output.find("reading /proc/self/mem failed"), std::string::npos) << unreadable.output;
}

// Counts are read signed and bounded: "-1" wrapped to 2^64-1 (a replay batch of the whole archive
// in memory; --from-lsn -1 printed nothing), and checkpoint-reset without --instance-id reset the
// 'default' instance (a running daemon then applies its whole log again).
TEST(Ctl, NegativeCountsAndAnUnnamedCheckpointResetAreUsageErrors) {
  const std::string dir = make_temp_dir("pm_ctl_counts");
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"wal-dump", "--wal-dir", dir, "--from-lsn", "-1"}, "--from-lsn must be between 0 and 9223372036854775807 (-1 given)"},
      {{"wal-dump", "--wal-dir", dir, "--limit", "-1"}, "--limit must be between 0 and 9223372036854775807 (-1 given)"},
      {{"replay", "--dry-run", "--source", dir, "--batch-max-events", "-1"}, "--batch-max-events must be between 1 and 10000000 (-1 given)"},
      {{"replay", "--dry-run", "--source", dir, "--writer-connections", "17"}, "--writer-connections must be between 1 and 16 (17 given)"},
      {{"replay", "--dry-run", "--source", dir, "--to-lsn", "-1"}, "--to-lsn must be between 0 and 9223372036854775807 (-1 given)"},
      {{"send", "--max-in-flight", "-1", "--input", "/dev/null"}, "--max-in-flight must be between 1 and 1000000 (-1 given)"},
      {{"send", "--give-up-after", "0", "--input", "/dev/null"}, "--give-up-after must be between 1 and 86400 (0 given)"},
      {{"checkpoint-reset", "--database-url", "postgresql://u@127.0.0.1:1/x"}, "checkpoint-reset needs --instance-id ID"},
      // A bounded or skipping replay moves its checkpoint past events it does not apply: a daemon's
      // instance resuming from it would never apply them (the help text only warned).
      {{"replay", "--dry-run", "--source", dir, "--instance-id", "default", "--until", "2026-11-30T04:00:00Z"},
       "--instance-id 'default' with --from-lsn, --to-lsn, --until or --skip-damaged"},
      {{"replay", "--dry-run", "--source", dir, "--instance-id", "default", "--skip-damaged"}, "Give it a checkpoint of its own"},
      // The log's directory without --wal-dir: status ran without the log's check and exited 0.
      {{"status", "--database-url", "postgresql://u@127.0.0.1:1/x", dir}, "status: takes no argument '" + dir + "'"},
      {{"wal-verify", dir}, "give each value with its option (--wal-dir DIR"},
      {{"wal-verfy", dir}, "unknown command 'wal-verfy'"},  // a mistyped command is named as such
  };
  for (const auto& [args, message] : cases) {
    const auto r = ctl(args);
    EXPECT_EQ(r.code, 2) << args.front() << ": " << r.output;
    EXPECT_NE(r.output.find(message), std::string::npos) << r.output;
  }
  std::filesystem::remove_all(dir);
}

// A log of 2000 trades in 64 KiB segments, all applied and every segment kept (the daemon's
// --archive-dir cannot be created, so nothing may be removed), the daemon stopped.
void write_a_log_whose_archive_cannot_be_used(TestDatabase& tdb, DaemonHarness& d) {
  const std::string not_a_dir = d.dir() + "/not-a-dir";
  { std::ofstream(not_a_dir) << "a file"; }
  d.args() = {"--archive-dir", not_a_dir + "/archive", "--wal-segment-bytes", "64K"};  // nothing archived: all kept
  d.start();
  {
    Producer p(d.socket());
    for (int chunk = 0; chunk < 20; ++chunk) {  // a group per chunk: segments roll between them
      std::vector<std::string> lines;
      for (int i = chunk * 100; i < (chunk + 1) * 100; ++i) lines.push_back(trade_line("h", "h" + std::to_string(i)));
      ASSERT_TRUE(p.send(lines));
      ASSERT_TRUE(p.wait_ack((chunk + 1) * 100ull, 30s));
    }
  }
  ASSERT_TRUE(wait_until([&] { return tdb.count("SELECT count(*) FROM pm_ingest_checkpoints WHERE lsn = 2000") == 1; }, 30s));
  EXPECT_EQ(d.stop(), 0);
}

// A crash among the removals of applied segments kept for an unusable archive can leave a hole
// below the applied position, which the daemon accepts. `status` and `wal-verify` accept it too
// (no damage, no advice to move the log away), and `status` reports a checkpoint below it as
// damage, as the daemon refuses it (it said "log health ok").
TEST(Ctl, StatusAcceptsAHoleBelowTheAppliedPositionButNotACheckpointInIt) {
  TestDatabase tdb("ctl_hole");
  DaemonHarness d(tdb.url());
  write_a_log_whose_archive_cannot_be_used(tdb, d);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  ASSERT_TRUE(std::filesystem::exists(d.wal_dir() + "/0000000000000004.wal")) << "four segments or more";
  std::filesystem::remove(d.wal_dir() + "/0000000000000002.wal");
  const auto healthy = ctl({"status", "--database-url", tdb.url(), "--wal-dir", d.wal_dir()});
  EXPECT_EQ(healthy.code, 0) << healthy.output;
  EXPECT_NE(healthy.output.find("log health      ok"), std::string::npos) << healthy.output;
  const auto verify = ctl({"wal-verify", "--wal-dir", d.wal_dir()});
  EXPECT_EQ(verify.code, 0) << verify.output;
  tdb.exec("UPDATE pm_ingest_checkpoints SET lsn = 5, segment = 1 WHERE instance_id = 'default'");
  const auto below = ctl({"status", "--database-url", tdb.url(), "--wal-dir", d.wal_dir()});
  EXPECT_EQ(below.code, 2) << below.output;
  EXPECT_NE(below.output.find("a checkpoint of this log is at lsn 5 but the log can be read in order only from lsn"),
            std::string::npos)
      << below.output;
}

// replay reads trade timestamps in the daemon's unit: a seconds deployment rebuilt with the
// daemon's environment file (`systemd-run -p EnvironmentFile=... pm-ingestctl replay`) or its INI
// file wrote milliseconds into a fresh database, which the daemon and the bot then refused.
TEST(Ctl, ReplayTakesTheTradeTimestampUnitFromTheDaemonsEnvironmentAndItsIniFile) {
  TestDatabase source_db("ctl_unit_source"), from_env("ctl_unit_env"), from_ini("ctl_unit_ini"), by_default("ctl_unit_default");
  DaemonHarness d(source_db.url());
  d.start();
  {
    Producer p(d.socket());
    ASSERT_TRUE(p.send({trade_line("c", "secs", 1'700'000'123)}));
    ASSERT_TRUE(p.wait_ack(1, 10s));
  }
  ASSERT_EQ(d.stop(), 0);
  const std::string ini = d.dir() + "/pm-ingestd.conf";
  { std::ofstream(ini) << "trade-timestamp-unit = s\n"; }
  const auto stored = [](TestDatabase& db) { return db.count("SELECT \"timestamp\" FROM polymarket_trades WHERE trade_id = 'secs'"); };
  const auto env = ctl({"replay", "--source", d.wal_dir(), "--database-url", from_env.url()}, {{"PM_INGESTD_TRADE_TIMESTAMP_UNIT", "s"}});
  ASSERT_EQ(env.code, 0) << env.output;
  EXPECT_EQ(stored(from_env), 1'700'000'123);
  const auto config = ctl({"replay", "--source", d.wal_dir(), "--database-url", from_ini.url()}, {{"PM_INGESTD_CONFIG", ini}});
  ASSERT_EQ(config.code, 0) << config.output;
  EXPECT_EQ(stored(from_ini), 1'700'000'123);
  const auto plain = ctl({"replay", "--source", d.wal_dir(), "--database-url", by_default.url()});
  ASSERT_EQ(plain.code, 0) << plain.output;
  EXPECT_EQ(stored(by_default), 1'700'000'123'000) << "without a unit anywhere: milliseconds, as the daemon's default";
  const auto bad = ctl({"replay", "--dry-run", "--source", d.wal_dir()}, {{"PM_INGESTD_TRADE_TIMESTAMP_UNIT", "us"}});
  EXPECT_EQ(bad.code, 2) << bad.output;
  EXPECT_NE(bad.output.find("PM_INGESTD_TRADE_TIMESTAMP_UNIT must be ms or s ('us' given)"), std::string::npos) << bad.output;
}

// A replay into the live database keeps a checkpoint of its own on the daemon's log, which falls
// behind the log's oldest segment as the daemon removes applied ones: `status` said "log health
// DAMAGED ... the daemon will refuse to apply it", exit 2, and advised moving a healthy log away.
// The daemon's own checkpoint there is still damage; so is any with --instance-id naming it.
TEST(Ctl, StatusNotesAReplayCheckpointBehindTheLogButHoldsTheDaemonsOwn) {
  TestDatabase tdb("ctl_replay_behind");
  DaemonHarness d(tdb.url());
  write_a_log_whose_archive_cannot_be_used(tdb, d);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  ASSERT_TRUE(std::filesystem::exists(d.wal_dir() + "/0000000000000004.wal")) << "four segments or more";
  std::filesystem::remove(d.wal_dir() + "/0000000000000001.wal");  // applied: as the daemon removes them
  std::filesystem::remove(d.wal_dir() + "/0000000000000002.wal");
  tdb.exec("INSERT INTO pm_ingest_checkpoints (instance_id, log_id, lsn, segment, segment_offset, log_offset, updated_at) "
           "SELECT 'replay to=100', log_id, 100, 1, 0, 0, updated_at FROM pm_ingest_checkpoints WHERE instance_id = 'default'");
  const auto noted = ctl({"status", "--database-url", tdb.url(), "--wal-dir", d.wal_dir()});
  EXPECT_EQ(noted.code, 0) << noted.output;
  EXPECT_NE(noted.output.find("instance replay to=100 is at lsn 100, behind this log"), std::string::npos) << noted.output;
  EXPECT_NE(noted.output.find("log health      ok"), std::string::npos) << noted.output;
  const auto named = ctl({"status", "--database-url", tdb.url(), "--wal-dir", d.wal_dir(), "--instance-id", "replay to=100"});
  EXPECT_EQ(named.code, 2) << named.output;
  EXPECT_NE(named.output.find("a checkpoint of this log is at lsn 100 but the log can be read in order only from lsn"),
            std::string::npos)
      << named.output;
  tdb.exec("UPDATE pm_ingest_checkpoints SET lsn = 100 WHERE instance_id = 'default'");
  const auto daemons = ctl({"status", "--database-url", tdb.url(), "--wal-dir", d.wal_dir()});
  EXPECT_EQ(daemons.code, 2) << daemons.output;
  EXPECT_NE(daemons.output.find("log health      DAMAGED"), std::string::npos) << daemons.output;
}

// The "N record bytes" of `status` output (0 when it is not there).
std::uint64_t status_record_bytes(const std::string& output) {
  const std::size_t end = output.find(" record bytes");
  if (end == std::string::npos) return 0;
  const std::size_t start = output.rfind(' ', end - 1);
  return std::stoull(output.substr(start + 1, end - start - 1));
}

// The segments kept below such a hole are read by `wal-verify` too, each run from its first
// segment's header to the end of its last, with the same checks: an intact run's records are
// counted (and `status` counts its bytes), a damaged record in it is damage naming the file and
// offset, exit 2 (they were never read: "log ok", exit 0, counting the records after the hole only).
TEST(Ctl, WalVerifyReadsTheSegmentsKeptBelowAHole) {
  TestDatabase tdb("ctl_hole_read");
  DaemonHarness d(tdb.url());
  write_a_log_whose_archive_cannot_be_used(tdb, d);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  const auto segment = [&](std::uint64_t n) { return wal::segment_path(d.wal_dir(), n); };
  ASSERT_TRUE(std::filesystem::exists(segment(5))) << "five segments or more";
  const auto whole = ctl({"status", "--database-url", tdb.url(), "--wal-dir", d.wal_dir()});
  ASSERT_EQ(whole.code, 0) << whole.output;
  const std::uint64_t whole_bytes = status_record_bytes(whole.output);
  ASSERT_GT(whole_bytes, 0u) << whole.output;
  // Segment 3 removed: segments 1 and 2 are a run below the hole, 4 on the run read in order.
  const std::uint64_t first3 = wal::read_segment_header(wal::posix_log_fs(), d.wal_dir(), 3).first_lsn;
  const std::uint64_t first4 = wal::read_segment_header(wal::posix_log_fs(), d.wal_dir(), 4).first_lsn;
  const std::uint64_t bytes3 = std::filesystem::file_size(segment(3)) - wal::kSegmentHeaderSize;
  std::filesystem::remove(segment(3));
  const auto verify = ctl({"wal-verify", "--wal-dir", d.wal_dir()});
  EXPECT_EQ(verify.code, 0) << verify.output;
  EXPECT_NE(verify.output.find("log ok: " + std::to_string(2000 - (first4 - first3)) + " records (lsn 1.." +
                               std::to_string(first3 - 1) + ", " + std::to_string(first4) + "..2000)"),
            std::string::npos)
      << verify.output;
  const auto status = ctl({"status", "--database-url", tdb.url(), "--wal-dir", d.wal_dir()});
  EXPECT_EQ(status.code, 0) << status.output;
  EXPECT_EQ(status_record_bytes(status.output), whole_bytes - bytes3) << status.output;
  EXPECT_NE(status.output.find("lsn 1.." + std::to_string(first3 - 1) + ", " + std::to_string(first4) + "..2000, "),
            std::string::npos)
      << status.output;

  // A record of segment 2 damaged (past the header and group marker, inside the first record).
  {
    std::fstream f(segment(2), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(56 + 33 + 30);
    f.put('\x7f');
  }
  const auto damaged = ctl({"wal-verify", "--wal-dir", d.wal_dir()});
  EXPECT_EQ(damaged.code, 2) << damaged.output;
  EXPECT_NE(damaged.output.find("0000000000000002.wal at offset 89: checksum mismatch"), std::string::npos) << damaged.output;
  EXPECT_NE(damaged.output.find("wal-dump --salvage"), std::string::npos) << damaged.output;
  // In an order that can be followed: the events are sent once a daemon runs on an empty log (sent
  // first, as it advised, they waited for a daemon that refuses this log: unacknowledged, exit 1).
  const std::size_t saved = damaged.output.find("> salvaged.tsv"), started = damaged.output.find("start the daemon with an empty"),
                    sent = damaged.output.find("| pm-ingestctl send");
  ASSERT_NE(saved, std::string::npos) << damaged.output;
  ASSERT_NE(sent, std::string::npos) << damaged.output;
  EXPECT_LT(saved, started);
  EXPECT_LT(started, sent) << damaged.output;
  const auto damaged_status = ctl({"status", "--database-url", tdb.url(), "--wal-dir", d.wal_dir()});
  EXPECT_EQ(damaged_status.code, 2) << damaged_status.output;
  EXPECT_NE(damaged_status.output.find("log health      DAMAGED"), std::string::npos) << damaged_status.output;
}

TEST(Ctl, StatusResetVerifyAndDump) {
  TestDatabase tdb("ctl_status");
  DaemonHarness d(tdb.url());
  d.start();
  {
    Producer p(d.socket());
    ASSERT_TRUE(p.send({trade_line("c", "x1"), trade_line("c", "x2"), trigger_line("t", "c", "0.9")}));
    ASSERT_TRUE(p.wait_ack(3, 10s));
  }
  ASSERT_TRUE(wait_until([&] { return tdb.count("SELECT count(*) FROM pm_ingest_checkpoints WHERE lsn = 3") == 1; }, 20s));
  auto status = ctl({"status", "--database-url", tdb.url(), "--wal-dir", d.wal_dir()});
  ASSERT_EQ(status.code, 0) << status.output;
  EXPECT_NE(status.output.find("default: applied up to lsn 3"), std::string::npos) << status.output;
  EXPECT_NE(status.output.find("lsn 1..3"), std::string::npos) << status.output;

  auto verify = ctl({"wal-verify", "--wal-dir", d.wal_dir()});  // read-only, fine while the daemon runs
  EXPECT_EQ(verify.code, 0) << verify.output;
  EXPECT_NE(verify.output.find("3 records"), std::string::npos) << verify.output;
  auto dump = ctl({"wal-dump", "--wal-dir", d.wal_dir(), "--from-lsn", "2"});
  EXPECT_EQ(dump.code, 0);
  EXPECT_NE(dump.output.find("2\t{\"type\":\"trade\",\"condition_id\":\"c\",\"trade_id\":\"x2\""), std::string::npos) << dump.output;
  EXPECT_NE(dump.output.find("3\t{\"type\":\"trigger\""), std::string::npos) << dump.output;
  EXPECT_EQ(d.stop(), 0);

  // Flip a byte inside record 1 (after the 56-byte segment header and the 33-byte group marker):
  // verification names the segment file, the offset and what to do; the group was synced (the
  // state file's ceiling covers it), so this is damage to acknowledged data, not a torn tail.
  const std::string segment = d.wal_dir() + "/0000000000000001.wal";
  {
    std::fstream f(segment, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(56 + 33 + 30);
    f.put('\x7f');
  }
  auto corrupt = ctl({"wal-verify", "--wal-dir", d.wal_dir()});
  EXPECT_EQ(corrupt.code, 2);
  EXPECT_NE(corrupt.output.find("0000000000000001.wal at offset 56"), std::string::npos) << corrupt.output;
  EXPECT_NE(corrupt.output.find("acknowledged data"), std::string::npos) << corrupt.output;
  EXPECT_NE(corrupt.output.find("wal-dump --salvage"), std::string::npos) << corrupt.output;
  auto damaged_status = ctl({"status", "--database-url", tdb.url(), "--wal-dir", d.wal_dir()});
  EXPECT_EQ(damaged_status.code, 2) << damaged_status.output;
  EXPECT_NE(damaged_status.output.find("DAMAGED"), std::string::npos) << damaged_status.output;
  // Salvage reads past the bad record: the two after it, and the range it skipped.
  auto salvage = ctl({"wal-dump", "--salvage", "--wal-dir", d.wal_dir()});
  EXPECT_EQ(salvage.code, 2) << salvage.output;
  EXPECT_EQ(salvage.output.find("1\t{"), std::string::npos) << salvage.output;
  EXPECT_NE(salvage.output.find("2\t{\"type\":\"trade\",\"condition_id\":\"c\",\"trade_id\":\"x2\""), std::string::npos) << salvage.output;
  EXPECT_NE(salvage.output.find("3\t{\"type\":\"trigger\""), std::string::npos) << salvage.output;
  EXPECT_NE(salvage.output.find("# skipped " + segment + " bytes 89.."), std::string::npos) << salvage.output;
  EXPECT_NE(salvage.output.find("after lsn 0, resuming at lsn 2"), std::string::npos) << salvage.output;
  // And the daemon refuses to start on it (exit 2: systemd does not restart it in a loop).
  EXPECT_EQ(d.run_to_exit(), 2) << d.output();
  EXPECT_NE(d.output().find("refusing to start"), std::string::npos) << d.output();

  // A mistyped instance resets nothing and fails, naming the instances that have a checkpoint (it
  // exited 0: `checkpoint-reset && systemctl start` went on with the checkpoint in place).
  auto typo = ctl({"checkpoint-reset", "--instance-id", "defualt", "--database-url", tdb.url()});
  EXPECT_EQ(typo.code, 1) << typo.output;
  EXPECT_NE(typo.output.find("instance 'defualt' has no checkpoint; nothing was reset (instances with one: 'default')"),
            std::string::npos)
      << typo.output;
  EXPECT_EQ(tdb.count("pm_ingest_checkpoints"), 1);
  auto reset = ctl({"checkpoint-reset", "--instance-id", "default", "--database-url", tdb.url()});
  EXPECT_EQ(reset.code, 0) << reset.output;
  EXPECT_EQ(tdb.count("pm_ingest_checkpoints"), 0);
}

// A log the system will not let the tool read (a mistyped --wal-dir, a file, a segment it cannot
// open: as root, a symlink loop stands in for a permission) is not damage: the damage advice (move
// the directory away, reset the checkpoint) would strand a healthy log's acked events. It exited 2
// with that advice for all three; the daemon refused to start on it "inspect with wal-verify".
TEST(Ctl, ALogThatCannotBeReadIsNotCalledDamaged) {
  TestDatabase tdb("ctl_unreadable");
  const std::string dir = make_temp_dir("ctl_unreadable");
  { std::ofstream(dir + "/a-file") << "x\n"; }
  const auto expect_unreadable = [&](const std::vector<std::string>& args, const std::string& why) {
    const auto r = ctl(args);
    EXPECT_EQ(r.code, 1) << r.output;
    EXPECT_NE(r.output.find(why), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("could not be read, which says nothing about damage"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("salvage"), std::string::npos) << "damage advice for a log that was not read: " << r.output;
    EXPECT_EQ(r.output.find("checkpoint-reset"), std::string::npos) << r.output;
  };
  expect_unreadable({"wal-verify", "--wal-dir", dir + "/missing"}, "No such file or directory");
  expect_unreadable({"wal-verify", "--wal-dir", dir + "/a-file"}, "Not a directory");

  DaemonHarness d(tdb.url());
  d.start();
  {
    Producer p(d.socket());
    ASSERT_TRUE(p.send({trade_line("c", "x1")}));
    ASSERT_TRUE(p.wait_ack(1, 10s));
  }
  EXPECT_EQ(d.stop(), 0);
  const std::filesystem::path segment = d.wal_dir() + "/0000000000000001.wal";
  ASSERT_TRUE(std::filesystem::remove(segment));
  std::filesystem::create_symlink(segment.filename(), segment);  // open() fails with ELOOP
  const std::string loop = "Too many levels of symbolic links";
  expect_unreadable({"wal-verify", "--wal-dir", d.wal_dir()}, loop);
  expect_unreadable({"wal-dump", "--wal-dir", d.wal_dir()}, loop);
  expect_unreadable({"status", "--database-url", tdb.url(), "--wal-dir", d.wal_dir()}, loop);
  EXPECT_NE(ctl({"status", "--database-url", tdb.url(), "--wal-dir", d.wal_dir()}).output.find("CANNOT BE READ"), std::string::npos);
  // Salvage and replay stop on it as a failure (exit 1), not as damage to skip (exit 2).
  for (const std::vector<std::string>& args : {std::vector<std::string>{"wal-verify", "--salvage", "--wal-dir", d.wal_dir()},
                                               {"replay", "--dry-run", "--source", d.wal_dir()},
                                               {"replay", "--dry-run", "--skip-damaged", "--source", d.wal_dir()}}) {
    const auto r = ctl(args);
    EXPECT_EQ(r.code, 1) << args[0] << ": " << r.output;
    EXPECT_NE(r.output.find(loop), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("DAMAGED"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("SKIPPED"), std::string::npos) << r.output;
  }
  // The daemon: a failure to open it (exit 1, restarted), naming the error, with no damage verdict.
  EXPECT_EQ(d.run_to_exit(), 1) << d.output();
  EXPECT_NE(d.output().find("cannot open the write-ahead log in " + d.wal_dir() + ": cannot read write-ahead log file"),
            std::string::npos)
      << d.output();
  EXPECT_EQ(d.output().find("corrupt"), std::string::npos) << d.output();
  std::filesystem::remove_all(dir);
}

// A log a later pm-ingestd went on in its own format (segment 2 begins "PMWAL04\n"; what follows
// is unknown to this build) is no damage: this build cannot read it, and the build that wrote it
// still applies it. It was "invalid segment header": the tools and the daemon exited 2 with the
// advice to move the log away and reset the checkpoint, and `replay --skip-damaged` skipped the
// segment (exit 3, a dead letter for its LSNs) as if its acknowledged events were lost. Now each
// names the newer format and exits 1, and a replay stops there, --skip-damaged or not, having
// applied what came before it. An archive file of a newer format is no damage either.
TEST(Ctl, ALogOfANewerFormatIsNotCalledDamagedNorSkipped) {
  TestDatabase tdb("ctl_newer_format");
  DaemonHarness d(tdb.url());
  d.start();
  {
    Producer p(d.socket());
    ASSERT_TRUE(p.send({trade_line("c", "n1"), trade_line("c", "n2")}));
    ASSERT_TRUE(p.wait_ack(2, 10s));
  }
  ASSERT_TRUE(wait_until([&] { return tdb.count("SELECT count(*) FROM pm_ingest_checkpoints WHERE lsn = 2") == 1; }, 20s));
  EXPECT_EQ(d.stop(), 0);
  const std::string newer = d.wal_dir() + "/0000000000000002.wal";
  const std::string newer_bytes = "PMWAL04\n" + std::string(200, '\x5a');
  { std::ofstream(newer, std::ios::binary) << newer_bytes; }
  const std::string says = newer + " was written by a newer pm-ingestd (log format 4; this build reads log formats 1..3)";
  const auto expect_newer = [&](const std::vector<std::string>& args) {
    const auto r = ctl(args);
    EXPECT_EQ(r.code, 1) << args[0] << ": " << r.output;
    EXPECT_NE(r.output.find(says), std::string::npos) << args[0] << ": " << r.output;
    for (const char* damage_word : {"DAMAGED", "corrupt", "SKIPPED", "skipping", "checkpoint-reset"})
      EXPECT_EQ(r.output.find(damage_word), std::string::npos) << args[0] << " says " << damage_word << ": " << r.output;
    return r.output;
  };
  EXPECT_NE(expect_newer({"wal-verify", "--wal-dir", d.wal_dir()}).find("Nothing is damaged"), std::string::npos);
  expect_newer({"wal-dump", "--wal-dir", d.wal_dir()});
  EXPECT_NE(expect_newer({"status", "--database-url", tdb.url(), "--wal-dir", d.wal_dir()}).find("NEWER FORMAT"), std::string::npos);
  expect_newer({"wal-verify", "--salvage", "--wal-dir", d.wal_dir()});
  expect_newer({"wal-dump", "--salvage", "--wal-dir", d.wal_dir()});
  EXPECT_NE(expect_newer({"replay", "--dry-run", "--skip-damaged", "--source", d.wal_dir()}).find("NEWER FORMAT"), std::string::npos);
  // Into the database: what comes before it is applied, nothing is skipped or dead-lettered.
  expect_newer({"replay", "--skip-damaged", "--database-url", tdb.url(), "--source", d.wal_dir()});
  EXPECT_EQ(tdb.count("SELECT count(*) FROM pm_ingest_checkpoints WHERE instance_id = 'replay skip-damaged' AND lsn = 2"), 1);
  EXPECT_EQ(tdb.count("pm_dead_letters"), 0);

  // The daemon refuses to start on it, exit 1, saying what to do; the log is left as it was.
  EXPECT_EQ(d.run_to_exit(), 1) << d.output();
  EXPECT_NE(d.output().find(says + "; refusing to start (nothing is damaged"), std::string::npos) << d.output();
  EXPECT_NE(d.output().find("start this one on an empty --wal-dir"), std::string::npos) << d.output();
  EXPECT_EQ(d.output().find("corrupt"), std::string::npos) << d.output();
  EXPECT_EQ(d.output().find("wal-verify"), std::string::npos) << d.output();
  EXPECT_EQ(read_file(newer), newer_bytes);

  // An archive file of a newer archive format: archive verify names it, not as damage.
  const std::string archive = make_temp_dir("ctl_newer_archive");
  { std::ofstream(archive + "/0000000000000001.pmarc", std::ios::binary) << "PMARC02\n" << std::string(300, '\x5a'); }
  const auto verify = ctl({"archive", "verify", "--archive-dir", archive});
  EXPECT_EQ(verify.code, 1) << verify.output;
  EXPECT_NE(verify.output.find(archive + "/0000000000000001.pmarc NEWER FORMAT: " + archive +
                               "/0000000000000001.pmarc was written by a newer pm-ingestd (archive format 2; this build "
                               "reads archive format 1)"),
            std::string::npos)
      << verify.output;
  EXPECT_NE(verify.output.find("ARCHIVE HOLDS A NEWER FORMAT: 0 archived segments, 0 events, 0 damaged, 1 of a newer format"),
            std::string::npos)
      << verify.output;
  EXPECT_EQ(verify.output.find("DAMAGED"), std::string::npos) << verify.output;
  // A daemon given that archive directory refuses to start (exit 1): it would have rebuilt the
  // index without the file, as damage.
  DaemonHarness fresh(tdb.url(), {"--archive-dir", archive});
  EXPECT_EQ(fresh.run_to_exit(), 1) << fresh.output();
  EXPECT_NE(fresh.output().find("(archive format 2; this build reads archive format 1); refusing to start (nothing is damaged"),
            std::string::npos)
      << fresh.output();
  EXPECT_FALSE(std::filesystem::exists(archive + "/index.ndjson"));
  std::filesystem::remove_all(archive);
}

// wal-dump --salvage stopped at the default --limit (100) without saying so, and the damage advice
// (send the salvaged events again, move the log away, reset the checkpoint) then lost every event
// after the hundredth. Now it prints everything unless a limit is given, a cut dump says so, and
// the advice's pipeline delivers what it printed.
TEST(Ctl, SalvageDumpPrintsEveryReadableEventAndTheAdvicesPipelineDeliversThem) {
  TestDatabase tdb("ctl_salvage_all");
  DaemonHarness d(tdb.url());
  d.start();
  {
    Producer p(d.socket());
    ASSERT_TRUE(p.send(trade_lines("c", "s", 150)));
    ASSERT_TRUE(p.wait_ack(150, 10s));
  }
  EXPECT_EQ(d.stop(), 0);
  {
    std::fstream f(d.wal_dir() + "/0000000000000001.wal", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(56 + 33 + 30);  // inside record 1
    f.put('\x7f');
  }
  const auto event_lines = [](const std::string& output) {
    std::vector<std::string> lines;
    std::istringstream in(output);
    for (std::string line; std::getline(in, line);)
      if (!line.empty() && line[0] != '#' && line.find('\t') != std::string::npos) lines.push_back(line.substr(line.find('\t') + 1));
    return lines;
  };
  const auto salvage = ctl({"wal-dump", "--salvage", "--wal-dir", d.wal_dir()});
  EXPECT_EQ(salvage.code, 2) << salvage.output;
  const std::vector<std::string> salvaged = event_lines(salvage.output);
  EXPECT_EQ(salvaged.size(), 149u) << salvage.output;
  EXPECT_EQ(salvage.output.find("# stopped"), std::string::npos) << salvage.output;
  const auto limited = ctl({"wal-dump", "--salvage", "--wal-dir", d.wal_dir(), "--limit", "10"});
  EXPECT_EQ(event_lines(limited.output).size(), 10u) << limited.output;
  EXPECT_NE(limited.output.find("# stopped after 10 record(s) (--limit 10): more follow"), std::string::npos) << limited.output;
  // Not a summary of the whole log: it said "# salvage: 11 readable records" (one more than printed).
  EXPECT_NE(limited.output.find("# salvage up to --limit (the rest not read): 10 records printed, 1 damaged range(s)"),
            std::string::npos)
      << limited.output;

  // The advice: grep -v '^#' | cut -f2- | pm-ingestctl send, into a fresh log and database.
  const std::string lines_file = d.dir() + "/salvaged.ndjson";
  {
    std::ofstream out(lines_file);
    for (const std::string& line : salvaged) out << line << "\n";
  }
  TestDatabase fresh("ctl_salvage_sent");
  DaemonHarness again(fresh.url());
  again.start();
  const auto sent = ctl({"send", "--socket", again.socket(), "--input", lines_file});
  EXPECT_EQ(sent.code, 0) << sent.output;
  EXPECT_TRUE(wait_until([&] { return fresh.count("polymarket_trades") == 149; }, 20s)) << fresh.count("polymarket_trades");
}

}  // namespace
}  // namespace pm::test
