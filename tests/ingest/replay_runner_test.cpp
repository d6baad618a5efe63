// ReplayRunner (pm-ingestctl replay) against a real PostgreSQL, on a log of real files.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "ingest/events/event_codec.h"
#include "ingest/log/wal.h"
#include "ingest/log/wal_directory.h"
#include "ingest/replay/replay_runner.h"
#include "repos/migrator.h"
#include "tests/support/daemon_harness.h"
#include "tests/support/pg_cluster.h"
#include "tests/support/private_network.h"
#include "tests/support/release_held_commits.h"
#include "tests/support/process.h"
#include "tests/support/test_database.h"
#include "tests/support/trade_event.h"

namespace pm {
namespace {

// A log directory of `count` trades of `condition`, removed with the object.
class TradeLog {
 public:
  TradeLog(const std::string& condition, int count)
      : dir_(std::filesystem::temp_directory_path() / ("pm_replay_test_" + std::to_string(::getpid()) + "_" + condition)) {
    std::filesystem::remove_all(dir_);
    wal::Options options;
    options.dir = dir_.string();
    options.segment_bytes = 1 << 20;
    options.on_fatal = [](const std::string& m) { FAIL() << "fatal: " << m; };
    auto log = wal::WriteAheadLog::open(options);
    std::vector<std::string> payloads;
    for (int i = 0; i < count; ++i) encode_event(test::trade_event(condition, "t" + std::to_string(i)), payloads.emplace_back());
    std::vector<wal::Appended> appended;
    EXPECT_EQ(log->append(payloads, appended), wal::AppendStatus::Ok);
  }
  ~TradeLog() { std::filesystem::remove_all(dir_); }
  std::string dir() const { return dir_.string(); }

 private:
  std::filesystem::path dir_;
};

// The ReplayError a replay with `options` stops with ("" and a test failure if it ran through).
std::string replay_error(const ReplayOptions& options, Database& db) {
  try {
    ReplayRunner(options).run(&db);
  } catch (const ReplayError& e) {
    return e.what();
  }
  ADD_FAILURE() << "the replay ran through";
  return "";
}

// A database an older pm-ingestctl migrated lacks the checkpoint's record columns: replay names the
// missing migration and what to run, applies nothing, and applies everything once it is there.
TEST(ReplayRunnerTest, OnADatabaseMissingAMigrationItNamesItAndAppliesNothing) {
  test::TestDatabase tdb("replay_pending");
  tdb.exec("DELETE FROM pm_schema_migrations WHERE name = '07_checkpoint_record.sql'");
  tdb.exec("ALTER TABLE pm_ingest_checkpoints DROP COLUMN record_bytes, DROP COLUMN record_crc");
  const TradeLog log("replay-pending", 3);
  ReplayOptions options;
  options.sources = {log.dir()};
  const std::string error = replay_error(options, tdb.db());
  EXPECT_NE(error.find("07_checkpoint_record.sql"), std::string::npos) << error;
  EXPECT_NE(error.find("run `pm-ingestctl migrate`"), std::string::npos) << error;
  EXPECT_EQ(tdb.count("polymarket_trades"), 0);
  EXPECT_EQ(tdb.count("pm_ingest_checkpoints"), 0);

  Migrator(tdb.db()).migrate();
  const ReplayStats stats = ReplayRunner(options).run(&tdb.db());
  EXPECT_EQ(stats.applied, 3u);
  EXPECT_EQ(tdb.count("polymarket_trades"), 3);
}

// A replay set to seconds into a database whose trade watermarks are milliseconds wrote
// second-sized rows beside them (1970 to every milliseconds reader). It names the unit to set and
// applies nothing; set right, it applies the log.
TEST(ReplayRunnerTest, IntoADatabaseOfTheOtherUnitItNamesTheUnitAndAppliesNothing) {
  test::TestDatabase tdb("replay_unit");
  tdb.exec("INSERT INTO trade_watermarks (condition_id, last_timestamp, updated_at) "
           "VALUES ('c_old', 1700000000000, '2023-11-14T22:13:20.000000Z')");
  const TradeLog log("replay-unit", 3);
  ReplayOptions options;
  options.sources = {log.dir()};
  options.trade_timestamp_unit = TimestampUnit::Seconds;
  const std::string error = replay_error(options, tdb.db());
  EXPECT_NE(error.find("trade_watermarks holds epoch milliseconds (ms)"), std::string::npos) << error;
  EXPECT_NE(error.find("set it to ms"), std::string::npos) << error;
  EXPECT_EQ(tdb.count("polymarket_trades"), 0);
  EXPECT_EQ(tdb.count("pm_ingest_checkpoints"), 0);

  options.trade_timestamp_unit = TimestampUnit::Milliseconds;
  EXPECT_EQ(ReplayRunner(options).run(&tdb.db()).applied, 3u);
  EXPECT_EQ(tdb.count("polymarket_trades"), 3);
}

// The oldest file's header is damaged: replay names that file as damage. It named the next file,
// blamed archive retention and advised a --from-lsn that passed over the damaged file's events.
TEST(ReplayRunnerTest, ADamagedHeaderOfTheOldestFileIsNamedAsDamageNotAsRetention) {
  const std::string dir = test::make_temp_dir("pm_replay_header") + "/wal";
  {
    wal::Options options;
    options.dir = dir;
    options.segment_bytes = 4096;
    options.on_fatal = [](const std::string& m) { FAIL() << "fatal: " << m; };
    auto log = wal::WriteAheadLog::open(options);
    for (int group = 0; group < 10; ++group) {
      std::vector<std::string> payloads;
      for (int i = 0; i < 10; ++i)
        encode_event(test::trade_event("hdr", "t" + std::to_string(group * 10 + i)), payloads.emplace_back());
      std::vector<wal::Appended> appended;
      ASSERT_EQ(log->append(payloads, appended), wal::AppendStatus::Ok);
    }
  }
  const std::string oldest = wal::segment_path(dir, 1);
  ASSERT_TRUE(std::filesystem::exists(wal::segment_path(dir, 2)));
  {
    std::fstream f(oldest, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(20);
    f.put('\x5a');  // inside the header its CRC covers
  }
  ReplayOptions options;
  options.sources = {dir};
  std::string damage;
  try {
    ReplayRunner(options).run(nullptr);
  } catch (const std::exception& e) {
    damage = e.what();
  }
  // What the directory held, for a failure (it failed once under ctest -j2, not understood: the
  // flipped byte was not seen as damage).
  const auto listing = [&dir] {
    std::string out;
    for (const auto& entry : std::filesystem::directory_iterator(dir))
      out += "\n  " + entry.path().filename().string() + " " +
             (entry.is_regular_file() ? std::to_string(entry.file_size()) : std::string("(not a file)"));
    return out;
  };
  EXPECT_NE(damage.find(oldest), std::string::npos) << damage << "\nthe log directory:" << listing();
  EXPECT_EQ(damage.find("retention"), std::string::npos) << damage;
  EXPECT_EQ(damage.find("--from-lsn"), std::string::npos) << damage;

  options.skip_damaged = true;
  const ReplayStats stats = ReplayRunner(options).run(nullptr);
  ASSERT_EQ(stats.skipped.size(), 1u);
  EXPECT_EQ(stats.skipped[0].file, oldest);
  EXPECT_GT(stats.read, 0u);
  EXPECT_LT(stats.read, 100u);
  std::filesystem::remove_all(std::filesystem::path(dir).parent_path());
}

// A log of 200 trades ("t0".."t199" of `condition`) in segments of 4 KiB (five or more), in `dir`
// when given, else in a new temporary directory's "wal" (its parent removed by the caller).
std::string segmented_log(const std::string& condition, std::string dir = "") {
  if (dir.empty()) dir = test::make_temp_dir("pm_replay_" + condition) + "/wal";
  wal::Options options;
  options.dir = dir;
  options.segment_bytes = 4096;
  options.on_fatal = [](const std::string& m) { FAIL() << "fatal: " << m; };
  auto log = wal::WriteAheadLog::open(options);
  for (int group = 0; group < 20; ++group) {
    std::vector<std::string> payloads;
    for (int i = 0; i < 10; ++i)
      encode_event(test::trade_event(condition, "t" + std::to_string(group * 10 + i)), payloads.emplace_back());
    std::vector<wal::Appended> appended;
    EXPECT_EQ(log->append(payloads, appended), wal::AppendStatus::Ok);
  }
  return dir;
}

// Retention trimmed the sources past the whole range asked for (they begin above --to-lsn): a
// point-in-time rebuild from lsn 1 read nothing, said "applied 0" and succeeded, leaving an empty
// database. It stops like damage, naming the missing range; --skip-damaged names it as skipped.
TEST(ReplayRunnerTest, SourcesThatBeginPastToLsnAreDamageNotAnEmptySuccess) {
  const std::string dir = segmented_log("replay-past-to");
  ASSERT_TRUE(std::filesystem::exists(wal::segment_path(dir, 4)));
  std::filesystem::remove(wal::segment_path(dir, 1));
  std::filesystem::remove(wal::segment_path(dir, 2));
  const std::uint64_t first = archive::SegmentChain::discover(wal::posix_log_fs(), {dir}).segments().front().first_lsn;
  ASSERT_GT(first, 3u);
  ReplayOptions options;
  options.sources = {dir};
  options.to_lsn = first - 2;
  std::string damage;
  try {
    const ReplayStats stats = ReplayRunner(options).run(nullptr);
    ADD_FAILURE() << "ran through, applied " << stats.applied;
  } catch (const archive::ArchiveDamage& e) {
    damage = e.what();
  }
  EXPECT_NE(damage.find("events 1.." + std::to_string(first - 2) + " are not in the sources"), std::string::npos) << damage;
  EXPECT_NE(damage.find("begin at lsn " + std::to_string(first)), std::string::npos) << damage;
  EXPECT_EQ(damage.find("--from-lsn"), std::string::npos) << "no --from-lsn reaches below --to-lsn: " << damage;

  options.skip_damaged = true;
  const ReplayStats stats = ReplayRunner(options).run(nullptr);
  EXPECT_EQ(stats.applied, 0u);
  ASSERT_EQ(stats.skipped.size(), 1u);
  EXPECT_EQ(stats.skipped[0].first_lsn, 1u);
  EXPECT_EQ(stats.skipped[0].last_lsn, first - 2);
  std::filesystem::remove_all(std::filesystem::path(dir).parent_path());
}

// --from-lsn above an existing checkpoint's next LSN would move that instance's checkpoint past
// events it never applied: a daemon of that instance would resume after them. Refused, naming the
// gap; from the next LSN (or below) it resumes as before.
TEST(ReplayRunnerTest, AStartAboveAnInstancesCheckpointIsRefusedInsteadOfSkippingTheEventsBetween) {
  test::TestDatabase tdb("replay_gap");
  const TradeLog log("replay-gap", 10);
  ReplayOptions options;
  options.sources = {log.dir()};
  options.instance_id = "default";
  options.to_lsn = 3;
  EXPECT_EQ(ReplayRunner(options).run(&tdb.db()).applied, 3u);
  options.to_lsn = UINT64_MAX;
  options.from_lsn = 6;
  const std::string error = replay_error(options, tdb.db());
  EXPECT_NE(error.find("lsn 4..5"), std::string::npos) << error;
  EXPECT_EQ(tdb.count("polymarket_trades"), 3);
  EXPECT_EQ(tdb.count("SELECT count(*) FROM pm_ingest_checkpoints WHERE instance_id = 'default' AND lsn = 3"), 1);
  options.from_lsn = 4;
  EXPECT_EQ(ReplayRunner(options).run(&tdb.db()).applied, 7u);
  EXPECT_EQ(tdb.count("polymarket_trades"), 10);
}

// A batch PostgreSQL refuses for one event's value is halved, and the refused half halved again,
// down to that event: both refused events of 1,000 go to pm_dead_letters, everything else lands,
// and finding them takes fewer than 150 batches (80 reports when written; one event per batch, the
// old way, took 1,009).
TEST(ReplayRunnerTest, ARefusedEventIsFoundByHalvingTheBatchAndDeadLettered) {
  test::TestDatabase tdb("replay_refused");
  tdb.exec("ALTER TABLE polymarket_trades ADD CONSTRAINT test_refused CHECK (trade_id NOT IN ('t137', 't613'))");
  const TradeLog log("replay-refused", 1000);
  ReplayOptions options;
  options.sources = {log.dir()};
  options.batch_max_events = 1000;
  int reports = 0;  // one after each batch submitted, and at each pass's end
  const ReplayStats stats = ReplayRunner(options, [&](const ReplayStats&) { ++reports; }).run(&tdb.db());
  EXPECT_EQ(stats.applied, 998u);
  EXPECT_EQ(stats.dead_lettered, 2u);
  EXPECT_EQ(stats.resumed_after_lsn, 0u) << "the run began without a checkpoint; later passes found its own";
  EXPECT_EQ(tdb.count("polymarket_trades"), 998);
  EXPECT_EQ(tdb.count("pm_dead_letters"), 2);
  EXPECT_EQ(tdb.count("SELECT count(*) FROM pm_dead_letters WHERE lsn IN (138, 614) AND sqlstate = '23514'"), 2);
  EXPECT_EQ(tdb.count("SELECT count(*) FROM pm_ingest_checkpoints WHERE instance_id = 'replay' AND lsn = 1000"), 1);
  EXPECT_LT(reports, 150);
}

// segmented_log() with a byte of the third segment's body flipped: reading stops there with damage.
std::string damaged_log(const std::string& condition, std::string dir = "") {
  dir = segmented_log(condition, dir);
  const std::string third = wal::segment_path(dir, 3);
  EXPECT_TRUE(std::filesystem::exists(wal::segment_path(dir, 4)));
  std::fstream f(third, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(2048);
  const char byte = static_cast<char>(f.get());
  f.seekp(2048);
  f.put(static_cast<char>(byte ^ 0x5a));
  return dir;
}

// The replay's damage, or "" (and a test failure) when it ran through.
std::string replay_damage(const ReplayOptions& options, Database& db) {
  try {
    ReplayRunner(options).run(&db);
  } catch (const std::exception& e) {
    return e.what();
  }
  ADD_FAILURE() << "the replay ran through the damage";
  return "";
}

// A batch that fails before damage the reading meets is handled first (here a refused event,
// dead-lettered), and everything before the damage applied; then the damage stops the replay. It
// stopped at the damage at once, the failed batch and the ones after it rolled back, so a replay
// of a damaged log never got past a refused event just before the damage.
TEST(ReplayRunnerTest, ABatchThatFailedBeforeTheDamageIsHandledBeforeTheDamageStopsTheReplay) {
  const std::string dir = damaged_log("replay-damage-after");
  ReplayOptions options;
  options.sources = {dir};
  options.batch_max_events = 10;
  test::TestDatabase clean("replay_damage_clean");  // how far a replay gets without a refused event
  EXPECT_NE(replay_damage(options, clean.db()).find(wal::segment_path(dir, 3)), std::string::npos);
  const long long before_damage = clean.count("polymarket_trades");
  ASSERT_GT(before_damage, 20);

  // The refused event is in the last batch read before the damage: its failure comes back after
  // the reading met the damage.
  const long long refused_lsn = before_damage - 1;
  test::TestDatabase tdb("replay_damage_after");
  tdb.exec("ALTER TABLE polymarket_trades ADD CONSTRAINT test_refused CHECK (trade_id <> 't" +
           std::to_string(refused_lsn - 1) + "')");
  const std::string damage = replay_damage(options, tdb.db());
  EXPECT_NE(damage.find(wal::segment_path(dir, 3)), std::string::npos) << damage;
  EXPECT_EQ(tdb.count("SELECT count(*) FROM pm_dead_letters WHERE lsn = " + std::to_string(refused_lsn)), 1);
  EXPECT_EQ(tdb.count("polymarket_trades"), before_damage - 1);
  std::filesystem::remove_all(std::filesystem::path(dir).parent_path());
}

// The daemon's writer reading its log back (at start, after a queue overflow) met damage after
// intact, acknowledged events it had read into the batch: it threw the batch away and stopped, and
// every restart did the same, so none of them reached the tables until an operator ran a replay.
// It applies them first now (as replay does), then stops on the damage (exit 2).
TEST(WriterReadBack, TheDaemonAppliesTheEventsBeforeDamageInItsLogBeforeItStops) {
  const std::string clean_dir = damaged_log("daemon-damage-clean");
  test::TestDatabase clean("daemon_damage_clean");  // how far a replay gets: everything before the damage
  ReplayOptions options;
  options.sources = {clean_dir};
  EXPECT_NE(replay_damage(options, clean.db()).find(wal::segment_path(clean_dir, 3)), std::string::npos);
  const long long before_damage = clean.count("polymarket_trades");
  ASSERT_GT(before_damage, 20);
  std::filesystem::remove_all(std::filesystem::path(clean_dir).parent_path());

  test::TestDatabase tdb("daemon_damage");
  test::DaemonHarness d(tdb.url(), {"--wal-segment-bytes", "4096"});
  damaged_log("daemon-damage-clean", d.wal_dir());  // the same log, unapplied
  EXPECT_EQ(d.run_to_exit(std::chrono::seconds(60)), 2) << d.output();
  EXPECT_NE(d.output().find(wal::segment_path(d.wal_dir(), 3)), std::string::npos) << d.output();
  EXPECT_EQ(tdb.count("polymarket_trades"), before_damage) << d.output();
  EXPECT_EQ(tdb.count("SELECT count(*) FROM pm_ingest_checkpoints WHERE lsn = " + std::to_string(before_damage)), 1);
}

// A skipped range's row in pm_dead_letters is what tells a later run, resumed past the damage, that
// events were skipped. Storing it failed in a pass that a failed batch before the damage ended
// (the record's exception gave way to the batch's failure), and the next pass took the range for
// one recorded already: the checkpoint moved past it with no row, and a second run said nothing.
TEST(ReplayRunnerTest, ASkippedRangeWhoseRecordFailedBesideAFailedBatchIsRecordedByTheNextPass) {
  const std::string dir = damaged_log("replay-skip-record");
  test::TestDatabase tdb("replay_skip_record");
  tdb.exec("CREATE SEQUENCE test_trade_statements; CREATE SEQUENCE test_skipped_records");
  tdb.exec("CREATE FUNCTION test_fail_first_trades() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
           "IF nextval('test_trade_statements') = 1 THEN "
           "RAISE EXCEPTION 'test: the first batch fails' USING ERRCODE = '40001'; END IF; RETURN NULL; END $$");
  tdb.exec("CREATE TRIGGER test_fail_first_trades AFTER INSERT ON polymarket_trades "
           "FOR EACH STATEMENT EXECUTE FUNCTION test_fail_first_trades()");
  tdb.exec("CREATE FUNCTION test_fail_first_skipped() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
           "IF NEW.event_type = 'skipped' AND nextval('test_skipped_records') = 1 THEN "
           "RAISE EXCEPTION 'test: the first skipped range is not stored'; END IF; RETURN NEW; END $$");
  tdb.exec("CREATE TRIGGER test_fail_first_skipped BEFORE INSERT ON pm_dead_letters "
           "FOR EACH ROW EXECUTE FUNCTION test_fail_first_skipped()");
  ReplayOptions options;
  options.sources = {dir};
  options.skip_damaged = true;
  options.batch_max_events = 1000;  // the events before the damage are one batch, sent after the damage is met
  options.retry_for = std::chrono::seconds(30);
  const ReplayStats stats = ReplayRunner(options).run(&tdb.db());
  ASSERT_EQ(stats.skipped.size(), 1u);
  EXPECT_EQ(tdb.count("SELECT count(*) FROM pm_dead_letters WHERE event_type = 'skipped'"), 1);
  EXPECT_EQ(tdb.count("SELECT last_value FROM test_skipped_records"), 2);  // failed once, then stored
  EXPECT_GE(tdb.count("SELECT last_value FROM test_trade_statements"), 2);  // the batch failed once
  EXPECT_EQ(tdb.count("SELECT count(*) FROM pm_ingest_checkpoints WHERE instance_id = 'replay' AND lsn = 200"), 1);

  const ReplayStats again = ReplayRunner(options).run(&tdb.db());  // resumed past the damage
  EXPECT_TRUE(again.skipped.empty());
  ASSERT_EQ(again.skipped_earlier.size(), 1u);
  EXPECT_NE(again.skipped_earlier[0].find(wal::segment_path(dir, 3)), std::string::npos) << again.skipped_earlier[0];
  std::filesystem::remove_all(std::filesystem::path(dir).parent_path());
}

// Storing a skipped range's row ran on the reading thread, outside the batches' retries: a
// transient failure there (a serialization failure here; a lost connection the same) ended the
// run with PostgreSQL's raw error (exit 1), where a batch's would have been retried. It is retried
// from the checkpoint now, and the run ends with the range recorded (exit 3).
TEST(ReplayRunnerTest, ASkippedRangeWhoseRecordFailsTransientlyIsRetriedAndRecorded) {
  const std::string dir = damaged_log("replay-skip-retry");
  test::TestDatabase tdb("replay_skip_retry");
  tdb.exec("CREATE SEQUENCE test_skipped_records");
  tdb.exec("CREATE FUNCTION test_fail_first_skipped() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
           "IF NEW.event_type = 'skipped' AND nextval('test_skipped_records') = 1 THEN "
           "RAISE EXCEPTION 'test: the first skipped range is not stored' USING ERRCODE = '40001'; END IF; "
           "RETURN NEW; END $$");
  tdb.exec("CREATE TRIGGER test_fail_first_skipped BEFORE INSERT ON pm_dead_letters "
           "FOR EACH ROW EXECUTE FUNCTION test_fail_first_skipped()");
  ReplayOptions options;
  options.sources = {dir};
  options.skip_damaged = true;
  options.retry_for = std::chrono::seconds(30);
  ReplayStats stats;
  ASSERT_NO_THROW(stats = ReplayRunner(options).run(&tdb.db()));
  ASSERT_EQ(stats.skipped.size(), 1u);
  EXPECT_EQ(tdb.count("SELECT count(*) FROM pm_dead_letters WHERE event_type = 'skipped'"), 1);
  EXPECT_EQ(tdb.count("SELECT last_value FROM test_skipped_records"), 2);  // failed once, then stored
  EXPECT_EQ(tdb.count("SELECT count(*) FROM pm_ingest_checkpoints WHERE instance_id = 'replay' AND lsn = 200"), 1);
  EXPECT_EQ(stats.applied + (stats.skipped[0].last_lsn - stats.skipped[0].first_lsn + 1), 200u);
  std::filesystem::remove_all(std::filesystem::path(dir).parent_path());
}

// One that PostgreSQL refuses for good stops the replay with a ReplayError naming the range (it
// was a raw pqxx error).
TEST(ReplayRunnerTest, ASkippedRangeThatCannotBeRecordedStopsTheReplayNamingIt) {
  const std::string dir = damaged_log("replay-skip-refused");
  test::TestDatabase tdb("replay_skip_refused");
  tdb.exec("ALTER TABLE pm_dead_letters ADD CONSTRAINT test_no_skipped CHECK (event_type <> 'skipped')");
  ReplayOptions options;
  options.sources = {dir};
  options.skip_damaged = true;
  options.retry_for = std::chrono::seconds(10);
  const std::string error = replay_error(options, tdb.db());
  EXPECT_NE(error.find("recording the skipped range (lsn "), std::string::npos) << error;
  EXPECT_NE(error.find("test_no_skipped"), std::string::npos) << error;
  EXPECT_EQ(tdb.count("pm_dead_letters"), 0);
  std::filesystem::remove_all(std::filesystem::path(dir).parent_path());
}

// Without the unique index on (condition_id, threshold) G2 stands on, a second token's first
// trigger of one (condition, threshold) was recorded too: the daemon refuses such a database, replay
// did not look. It names what is wrong and applies nothing; once fixed, the first trigger wins.
TEST(ReplayRunnerTest, OnADatabaseWithoutTheG2IndexItNamesItAndAppliesNothing) {
  test::TestDatabase tdb("replay_g2");
  tdb.exec("DROP INDEX idx_triggers_condition_threshold_unique; "
           "CREATE INDEX idx_triggers_condition_threshold_unique ON polymarket_first_triggers (condition_id, threshold)");
  const std::string dir = test::make_temp_dir("pm_replay_g2") + "/wal";
  {
    wal::Options wal_options;
    wal_options.dir = dir;
    wal_options.on_fatal = [](const std::string& m) { FAIL() << "fatal: " << m; };
    auto log = wal::WriteAheadLog::open(wal_options);
    std::vector<std::string> payloads;
    for (const std::string token : {"tok-first", "tok-second"}) {
      Event e;
      e.received_ms = now_epoch_ms();
      TriggerEvent t;
      t.token_id = token;
      t.condition_id = "c_replay_g2";
      t.threshold = 0.9;
      t.trigger_timestamp_ms = e.received_ms;
      e.body = t;
      encode_event(e, payloads.emplace_back());
    }
    std::vector<wal::Appended> appended;
    ASSERT_EQ(log->append(payloads, appended), wal::AppendStatus::Ok);
  }
  ReplayOptions options;
  options.sources = {dir};
  const std::string error = replay_error(options, tdb.db());
  EXPECT_NE(error.find("no valid unique index on exactly (condition_id, threshold)"), std::string::npos) << error;
  EXPECT_NE(error.find("refusing to apply events until it is fixed"), std::string::npos) << error;
  EXPECT_EQ(tdb.count("polymarket_first_triggers"), 0);
  EXPECT_EQ(tdb.count("pm_ingest_checkpoints"), 0);

  tdb.exec("DROP INDEX idx_triggers_condition_threshold_unique; "
           "CREATE UNIQUE INDEX idx_triggers_condition_threshold_unique ON polymarket_first_triggers (condition_id, threshold)");
  EXPECT_EQ(ReplayRunner(options).run(&tdb.db()).applied, 2u);
  EXPECT_EQ(tdb.count("SELECT count(*) FROM polymarket_first_triggers WHERE token_id = 'tok-first'"), 1);
  EXPECT_EQ(tdb.count("polymarket_first_triggers"), 1);
  std::filesystem::remove_all(std::filesystem::path(dir).parent_path());
}

// Another writer moving the instance's checkpoint under a replay (a second run of the instance) is
// not taken for a commit in doubt that landed: with nothing in doubt, the batch that finds the
// checkpoint moved past it stops the replay, naming it, and applies nothing.
TEST(ReplayRunnerTest, ACheckpointAnotherWriterMovedStopsTheReplayWhenNothingIsInDoubt) {
  test::TestDatabase tdb("replay_moved");
  const TradeLog log("replay-moved", 300);
  ReplayOptions options;
  options.sources = {log.dir()};
  options.to_lsn = 10;
  ASSERT_EQ(ReplayRunner(options).run(&tdb.db()).applied, 10u);
  pqxx::connection other(tdb.url());
  pqxx::work moving(other);
  moving.exec0("UPDATE pm_ingest_checkpoints SET lsn = 1000 WHERE instance_id = 'replay'");  // holds the row
  options.to_lsn = UINT64_MAX;
  std::future<std::string> replay = std::async(std::launch::async, [&] { return replay_error(options, tdb.db()); });
  const bool waiting = test::wait_until([&] {
    return tdb.count("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()") > 0;
  }, std::chrono::seconds(30));
  moving.commit();
  EXPECT_TRUE(waiting) << "the replay's batch did not wait for the other writer's checkpoint";
  const std::string error = replay.get();
  EXPECT_NE(error.find("was not advanced to lsn 300"), std::string::npos) << error;
  EXPECT_EQ(tdb.count("polymarket_trades"), 10);
}

// A dead letter PostgreSQL refuses to store stops the replay at once with that refusal (it used to
// be retried as if transient, each pass refused again, until retry_for ran out, and then reported
// with the first refusal's message).
TEST(ReplayRunnerTest, ADeadLetterThatCannotBeStoredStopsTheReplayWithItsOwnError) {
  test::TestDatabase tdb("replay_unstorable");
  tdb.exec("ALTER TABLE polymarket_trades ADD CONSTRAINT test_refused CHECK (trade_id <> 't5')");
  tdb.exec("ALTER TABLE pm_dead_letters ADD CONSTRAINT test_no_dead_letter CHECK (lsn <> 6)");
  const TradeLog log("replay-unstorable", 10);
  ReplayOptions options;
  options.sources = {log.dir()};
  options.retry_for = std::chrono::seconds(10);
  const std::string error = replay_error(options, tdb.db());  // not past an event it could not store
  EXPECT_NE(error.find("test_no_dead_letter"), std::string::npos) << error;
  EXPECT_NE(error.find("lsn 6"), std::string::npos) << error;
  EXPECT_EQ(tdb.count("polymarket_trades"), 5);  // t0..t4, before it
  EXPECT_EQ(tdb.count("pm_dead_letters"), 0);
  EXPECT_EQ(tdb.count("SELECT count(*) FROM pm_ingest_checkpoints WHERE instance_id = 'replay' AND lsn = 5"), 1);
}

// A PostgreSQL server of the test's own (commits can be held there: PgCluster), started and
// migrated, with a Database on it.
struct OwnServer {
  OwnServer() {
    server.start();
    DatabaseConfig config;
    config.url = server.url();
    db.emplace(config);
    Migrator(*db).migrate();
  }
  test::PgCluster server;
  std::optional<Database> db;
};

// Replays `log` on one connection while the server holds commits: the session of the first held
// COMMIT is ended (committed locally, its reply lost), then commits are released. The stats.
ReplayStats replay_losing_a_commit_reply(OwnServer& own, const TradeLog& log) {
  own.server.hold_commits();
  ReplayOptions options;
  options.sources = {log.dir()};
  options.connections = 1;
  options.retry_for = std::chrono::seconds(60);
  std::future<ReplayStats> replay = std::async(std::launch::async, [&] { return ReplayRunner(options).run(&*own.db); });
  const bool held = own.server.wait_for_held_commit(std::chrono::seconds(30));
  EXPECT_TRUE(held) << "no COMMIT of the replay waited for the standby";
  try {
    if (held) own.server.end_held_commit_sessions();
  } catch (...) {
    own.server.release_commits();  // else the replay, and the future's destructor, would wait forever
    throw;
  }
  own.server.release_commits();
  EXPECT_EQ(replay.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  return replay.get();
}

// A COMMIT whose reply never arrives (its session ended while the commit waited for a synchronous
// standby that does not exist: committed locally) is in doubt. The next pass reads the checkpoint,
// which shows the batch committed: nothing is applied twice, and its events count as applied
// (before, the stats said 0 of 300 applied, and 0 trades, for a replay that stored all 300).
TEST(ReplayRunnerTest, ABatchWhoseCommitReplyWasLostCountsAsAppliedWhenTheCheckpointShowsIt) {
  OwnServer own;
  const ReplayStats stats = replay_losing_a_commit_reply(own, TradeLog("replay-unseen", 300));
  EXPECT_EQ(own.server.query("SELECT count(*) FROM polymarket_trades"), "300");
  EXPECT_EQ(own.server.query("SELECT lsn FROM pm_ingest_checkpoints WHERE instance_id = 'replay'"), "300");
  EXPECT_EQ(stats.applied, 300u);
  EXPECT_EQ(stats.trades, 300u);
  EXPECT_EQ(stats.trades_unseen, 300u) << "the one batch was in doubt";
  EXPECT_EQ(stats.trades_inserted, 0u) << "unknown for a batch whose reply was lost";
  EXPECT_EQ(stats.first_lsn, 1u);
  EXPECT_EQ(stats.last_lsn, 300u);
}

// The same for a dead letter: the one event is refused (rolled back, nothing held), and the store
// of its dead letter is the COMMIT held and cut off. The next pass's checkpoint read shows it
// stored: it counts as dead-lettered (before: 0 dead-lettered, 0 applied, for a replay that stored
// it), and it is not stored twice.
TEST(ReplayRunnerTest, ADeadLetterWhoseCommitReplyWasLostCountsAsDeadLetteredWhenTheCheckpointShowsIt) {
  OwnServer own;
  own.server.query("ALTER TABLE polymarket_trades ADD CONSTRAINT test_refused CHECK (trade_id <> 't0')");
  const ReplayStats stats = replay_losing_a_commit_reply(own, TradeLog("replay-letter-unseen", 1));
  EXPECT_EQ(own.server.query("SELECT count(*) FROM pm_dead_letters WHERE lsn = 1 AND sqlstate = '23514'"), "1");
  EXPECT_EQ(own.server.query("SELECT count(*) FROM polymarket_trades"), "0");
  EXPECT_EQ(own.server.query("SELECT lsn FROM pm_ingest_checkpoints WHERE instance_id = 'replay'"), "1");
  EXPECT_EQ(stats.dead_lettered, 1u);
  EXPECT_EQ(stats.applied, 0u);
}

// A COMMIT in doubt whose transaction lands only after the next pass read the checkpoint (a
// synchronous standby held it while the client's connection was cut): that pass's copy of the
// batch waits for it, then finds the checkpoint past itself (CheckpointConflict). The checkpoint
// is read again and shows the batch committed: it counts as applied, nothing twice. The replay
// stopped at the conflict ("PostgreSQL refused the replay (fatal)"), though a re-run resumed.
TEST(ReplayRunnerTest, ACommitInDoubtThatLandsAfterTheNextCheckpointReadIsCountedNotAConflict) {
  test::PrivateNetwork network;  // first: the server and the replay run inside it
  if (!network.available()) GTEST_SKIP() << network.why();
  test::PgCluster server;
  server.start();
  DatabaseConfig config;
  config.url = server.url();
  config.keepalives_idle = std::chrono::seconds(1);  // the cut connection is given up within seconds
  config.keepalives_interval = std::chrono::seconds(1);
  config.keepalives_count = 2;
  config.tcp_user_timeout = std::chrono::milliseconds(3000);
  Database db(config);
  Migrator(db).migrate();
  const TradeLog log("replay-late-commit", 300);
  server.hold_commits();
  ReplayOptions options;
  options.sources = {log.dir()};
  options.connections = 1;
  options.retry_for = std::chrono::seconds(120);
  std::atomic<int> reports{0};  // the first when the batch is handed over, the next once it failed
  std::future<ReplayStats> replay = std::async(std::launch::async, [&] {
    return ReplayRunner(options, [&](const ReplayStats&) { ++reports; }).run(&db);
  });
  const test::ReleaseHeldCommits release{network, server};  // whatever fails, the replay is not left waiting
  ASSERT_TRUE(server.wait_for_held_commit(std::chrono::seconds(30))) << "no COMMIT of the replay waited for the standby";
  network.black_hole(server.port());  // the client's COMMIT never hears back: in doubt
  const bool in_doubt = test::wait_until([&] { return reports.load() >= 2; }, std::chrono::seconds(60));
  network.restore();
  // The next pass reads the checkpoint (the held batch is invisible), applies the batch again and
  // waits for the held transaction's locks.
  const bool waiting = in_doubt && test::wait_until([&] {
    return server.query("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'") != "0";
  }, std::chrono::seconds(60));
  server.release_commits();
  EXPECT_TRUE(in_doubt) << "the batch's COMMIT was not given up";
  EXPECT_TRUE(waiting) << "no second copy of the batch waited for the held one";
  ASSERT_EQ(replay.wait_for(std::chrono::seconds(120)), std::future_status::ready);
  ReplayStats stats;
  try {
    stats = replay.get();
  } catch (const std::exception& e) {
    FAIL() << "the replay stopped: " << e.what();
  }
  EXPECT_EQ(server.query("SELECT count(*) FROM polymarket_trades"), "300");
  EXPECT_EQ(server.query("SELECT lsn FROM pm_ingest_checkpoints WHERE instance_id = 'replay'"), "300");
  EXPECT_EQ(server.query("SELECT applied_events FROM pm_ingest_checkpoints WHERE instance_id = 'replay'"), "300");
  EXPECT_EQ(stats.applied, 300u);
  EXPECT_EQ(stats.trades, 300u);
  EXPECT_EQ(stats.trades_unseen, 300u) << "the batch in doubt";
}

}  // namespace
}  // namespace pm
