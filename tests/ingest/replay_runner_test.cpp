// ReplayRunner (pm-ingestctl replay) against a real PostgreSQL, on a log of real files.
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ingest/events/event_codec.h"
#include "ingest/log/wal.h"
#include "ingest/replay/replay_runner.h"
#include "repos/migrator.h"
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

// A database an older pm-ingestctl migrated lacks the checkpoint's record columns: replay names the
// missing migration and what to run, applies nothing, and applies everything once it is there.
TEST(ReplayRunnerTest, OnADatabaseMissingAMigrationItNamesItAndAppliesNothing) {
  test::TestDatabase tdb("replay_pending");
  tdb.exec("DELETE FROM pm_schema_migrations WHERE name = '07_checkpoint_record.sql'");
  tdb.exec("ALTER TABLE pm_ingest_checkpoints DROP COLUMN record_bytes, DROP COLUMN record_crc");
  const TradeLog log("replay-pending", 3);
  ReplayOptions options;
  options.sources = {log.dir()};
  try {
    ReplayRunner(options).run(&tdb.db());
    FAIL() << "replay ran on a database lacking a migration";
  } catch (const ReplayError& e) {
    EXPECT_NE(std::string(e.what()).find("07_checkpoint_record.sql"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("run `pm-ingestctl migrate`"), std::string::npos) << e.what();
  }
  EXPECT_EQ(tdb.count("polymarket_trades"), 0);
  EXPECT_EQ(tdb.count("pm_ingest_checkpoints"), 0);

  Migrator(tdb.db()).migrate();
  const ReplayStats stats = ReplayRunner(options).run(&tdb.db());
  EXPECT_EQ(stats.applied, 3u);
  EXPECT_EQ(tdb.count("polymarket_trades"), 3);
}

}  // namespace
}  // namespace pm
