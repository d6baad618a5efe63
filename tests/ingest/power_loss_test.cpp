// Randomized power-loss rounds (issue 11): each round runs the daemon's real ingestion path
// (IngestPipeline -> WriteAheadLog -> EventQueue -> BatchWriter -> PostgreSQL) on a FaultFs, with
// concurrent producers, group commits, segment roll-over and removal, and the writer applying (in
// half the rounds the log's segments start from spare files of zeros, made on a thread of their
// own), then loses power at a random file-system call in a random way (tests/support/fault_fs.h),
// reboots, recovers without an operator and replays into PostgreSQL. After every round:
// - every acknowledged event is in PostgreSQL, and every stored row was sent (nothing invented);
// - the checkpoint is at the log's last LSN and its applied count equals that LSN (each event
//   applied exactly once);
// - recovery needed no operator: the log opened and the writer never stopped on a fatal error.
// PM_POWER_LOSS_ROUNDS scales the rounds per test case (default 250, four cases: 1,000 rounds);
// PM_POWER_LOSS_SEED replays one round. A failure prints the round's seed and parameters.
#include <gtest/gtest.h>
#include <pqxx/pqxx>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <future>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "ingest/events/event_codec.h"
#include "ingest/log/wal_reader.h"
#include "ingest/writer/batch_writer.h"
#include "ingest/server/ingest_pipeline.h"
#include "repos/migrator.h"
#include "repos/util/clock.h"
#include "ingest/writer/ingest_checkpoint_repository.h"
#include "tests/support/fault_fs.h"
#include "tests/support/sync_gate_fs.h"
#include "tests/support/trade_event.h"
#include "tests/support/process.h"
#include "tests/support/refusing_open_fs.h"
#include "tests/support/test_database.h"

namespace pm {
namespace {

using namespace std::chrono_literals;
using test::FaultFs;
using test::PowerLossMode;

// The writer's on_fatal message, set on the writer's thread and read on the test's.
class FatalMessage {
 public:
  std::function<void(const std::string&)> callback() {
    return [this](const std::string& m) {
      std::lock_guard lock(mu_);
      message_ = m;
    };
  }
  std::string get() const {
    std::lock_guard lock(mu_);
    return message_;
  }

 private:
  mutable std::mutex mu_;
  std::string message_;
};

struct RoundPlan {
  std::uint64_t seed = 0;
  int producers = 1;
  int events_per_producer = 1;
  int chunk = 1;
  std::uint64_t segment_bytes = 1024;
  std::size_t writer_connections = 1;
  std::uint64_t crash_after_calls = 1;
  PowerLossMode mode = PowerLossMode::DropUnsynced;
  bool preallocate = false;  // segments started from spare files of zeros (wal::Options::preallocate)

  static RoundPlan from_seed(std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    RoundPlan p;
    p.seed = seed;
    p.producers = 1 + static_cast<int>(rng() % 4);
    p.events_per_producer = 10 + static_cast<int>(rng() % 60);
    p.chunk = 1 + static_cast<int>(rng() % 8);
    p.segment_bytes = 1024ull << (rng() % 4);
    p.writer_connections = 1 + rng() % 2;
    p.crash_after_calls = 3 + rng() % 250;
    p.mode = static_cast<PowerLossMode>(rng() % test::kPowerLossModes);
    p.preallocate = rng() % 2 == 0;
    return p;
  }

  std::string describe() const {
    return "seed " + std::to_string(seed) + " (replay: PM_POWER_LOSS_SEED=" + std::to_string(seed) + "): " +
           std::to_string(producers) + " producers x " + std::to_string(events_per_producer) + " events in chunks of " +
           std::to_string(chunk) + ", segments of " + std::to_string(segment_bytes) + " bytes, " +
           std::to_string(writer_connections) + " writer connection(s), power loss at call " +
           std::to_string(crash_after_calls) + " (" + test::to_string(mode) + ")" +
           (preallocate ? ", segments from spare files" : "");
  }
};

using test::trade_event;

class PowerLossRounds : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { database_ = new test::TestDatabase("power_loss"); }
  static void TearDownTestSuite() {
    delete database_;
    database_ = nullptr;
  }

  wal::Options log_options(FaultFs& fs, const RoundPlan& plan, std::vector<std::string>& fatals, std::mutex& mu) {
    wal::Options o;
    o.dir = "/wal";
    o.fs = &fs;
    o.segment_bytes = plan.segment_bytes;
    o.preallocate = plan.preallocate;
    o.on_recovery = [this](const wal::RecoveryFinding& f) {
      tally_.torn_tails += f.kind == wal::RecoveryFinding::Kind::TornTailCut;
      tally_.applied_removed += f.kind == wal::RecoveryFinding::Kind::AppliedSegmentRemoved;
    };
    o.on_fatal = [&](const std::string& m) {
      std::lock_guard lock(mu);
      fatals.push_back(m);
    };
    return o;
  }

  WriterConfig writer_config(const RoundPlan& plan, const std::string& instance) {
    WriterConfig c;
    c.instance_id = instance;
    c.batch_max_events = 16;
    c.batch_max_delay = 1ms;
    c.writer_connections = plan.writer_connections;
    c.retry_initial_delay = 5ms;
    c.retry_max_delay = 20ms;
    return c;
  }

  void run_round(std::uint64_t seed);
  void run_rounds(std::uint64_t first_seed);

  // The single-life tests below: one writer lane, segments large enough never to roll.
  static RoundPlan single_life_plan() {
    RoundPlan plan;
    plan.segment_bytes = 1 << 20;
    return plan;
  }
  static int stored_trades(Database& db, const std::string& condition) {
    return db.transaction([&](pqxx::work& tx) {
      return tx.exec_params1("SELECT count(*) FROM polymarket_trades WHERE condition_id = $1", condition)[0].as<int>();
    });
  }

  // What the rounds went through, so a suite that never reached the interesting cases fails.
  struct Tally {
    std::uint64_t rounds = 0, sent = 0, acked = 0, cut_short = 0, torn_tails = 0, applied_removed = 0, segments_rolled = 0;
  } tally_;

  static test::TestDatabase* database_;
  std::shared_ptr<spdlog::logger> quiet_ = std::make_shared<spdlog::logger>("power_loss", std::make_shared<spdlog::sinks::null_sink_mt>());
};

test::TestDatabase* PowerLossRounds::database_ = nullptr;

void PowerLossRounds::run_round(std::uint64_t seed) {
  const RoundPlan plan = RoundPlan::from_seed(seed);
  SCOPED_TRACE(plan.describe());
  const std::string instance = "round-" + std::to_string(seed);
  const std::string condition = "power-loss-" + std::to_string(seed);
  FaultFs fs(seed);
  std::mutex mu;
  std::set<std::string> sent, acked;
  std::vector<std::string> first_life_fatals, second_life_fatals;

  {  // The first life: producers, group commits and the writer, until the power goes.
    auto log = wal::WriteAheadLog::open(log_options(fs, plan, first_life_fatals, mu));
    fs.crash_after(plan.crash_after_calls, plan.mode);
    IngestMetrics metrics;
    EventQueue queue(1024);
    BatchWriter writer(writer_config(plan, instance), database_->db(), *log, queue, metrics, quiet_, nullptr);
    IngestPipeline pipeline(1ull << 30, *log, queue, metrics, [&] { return writer.applied_log_offset(); });
    writer.start();
    std::vector<std::thread> producers;
    for (int p = 0; p < plan.producers; ++p) {
      producers.emplace_back([&, p] {
        for (int i = 0; i < plan.events_per_producer; i += plan.chunk) {
          std::vector<Event> events;
          std::vector<std::string> ids;
          for (int k = i; k < std::min(i + plan.chunk, plan.events_per_producer); ++k) {
            ids.push_back("p" + std::to_string(p) + "-" + std::to_string(k));
            events.push_back(trade_event(condition, ids.back()));
          }
          {
            std::lock_guard lock(mu);
            sent.insert(ids.begin(), ids.end());
          }
          if (pipeline.submit(events) != SubmitResult::Durable) return;  // the power is gone
          std::lock_guard lock(mu);
          acked.insert(ids.begin(), ids.end());
        }
      });
    }
    for (auto& t : producers) t.join();
    fs.power_loss(plan.mode);  // a round whose calls did not reach the crash point loses power now
    writer.stop();
  }
  fs.reboot();

  {  // The second life: recovery and replay, with nobody to help.
    std::unique_ptr<wal::WriteAheadLog> log;
    try {
      log = wal::WriteAheadLog::open(log_options(fs, plan, second_life_fatals, mu));
    } catch (const std::exception& e) {
      FAIL() << "recovery needed an operator: " << e.what();
    }
    IngestMetrics metrics;
    EventQueue queue(1024);
    FatalMessage writer_fatal;
    BatchWriter writer(writer_config(plan, instance), database_->db(), *log, queue, metrics, quiet_,
                       writer_fatal.callback());
    writer.start();
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (writer.applied_lsn() < log->durable().lsn && writer_fatal.get().empty() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(2ms);  // polls a condition with a deadline
    writer.stop();
    ASSERT_EQ(writer_fatal.get(), "") << "the writer stopped on a fatal error after recovery";
    EXPECT_TRUE(second_life_fatals.empty()) << second_life_fatals.front();
    const std::uint64_t last_lsn = log->durable().lsn;
    tally_.segments_rolled += log->durable().segment > 1;
    ASSERT_EQ(writer.applied_lsn(), last_lsn) << "replay did not finish";
    const auto checkpoint = IngestCheckpointRepository(database_->db()).get(instance);
    if (last_lsn > 0) {
      ASSERT_TRUE(checkpoint.has_value());
      EXPECT_EQ(static_cast<std::uint64_t>(checkpoint->lsn), last_lsn);
      EXPECT_EQ(static_cast<std::uint64_t>(checkpoint->applied_events), last_lsn) << "an event was applied twice, or skipped";
    }
  }

  std::set<std::string> stored;
  database_->db().transaction([&](pqxx::work& tx) {
    for (const auto& row : tx.exec_params("SELECT trade_id FROM polymarket_trades WHERE condition_id = $1", condition))
      stored.insert(row[0].c_str());
  });
  ++tally_.rounds;
  tally_.sent += sent.size();
  tally_.acked += acked.size();
  tally_.cut_short += acked.size() < sent.size();
  for (const std::string& id : acked) EXPECT_TRUE(stored.count(id)) << "acknowledged trade " << id << " was lost";
  for (const std::string& id : stored) EXPECT_TRUE(sent.count(id)) << "trade " << id << " was never sent";
}

void PowerLossRounds::run_rounds(std::uint64_t first_seed) {
  if (const char* one = std::getenv("PM_POWER_LOSS_SEED")) {
    if (first_seed == 1) run_round(std::strtoull(one, nullptr, 10));
    return;
  }
  const char* env = std::getenv("PM_POWER_LOSS_ROUNDS");
  const std::uint64_t rounds = env != nullptr ? std::strtoull(env, nullptr, 10) : 250;
  for (std::uint64_t i = 0; i < rounds && !HasFailure(); ++i) run_round(first_seed + i);
  std::printf("%llu rounds: %llu events sent, %llu acknowledged; power lost mid-stream in %llu rounds; recovery cut "
              "%llu torn tails and removed %llu applied segments a crash left behind; %llu rounds rolled segments\n",
              static_cast<unsigned long long>(tally_.rounds), static_cast<unsigned long long>(tally_.sent),
              static_cast<unsigned long long>(tally_.acked), static_cast<unsigned long long>(tally_.cut_short),
              static_cast<unsigned long long>(tally_.torn_tails), static_cast<unsigned long long>(tally_.applied_removed),
              static_cast<unsigned long long>(tally_.segments_rolled));
  if (rounds >= 100) {  // the suite must have met the faults it exists for
    EXPECT_GT(tally_.cut_short, tally_.rounds / 4);
    EXPECT_GT(tally_.torn_tails, 0u);
    EXPECT_GT(tally_.segments_rolled, tally_.rounds / 4);
  }
}

// The state file's ceiling trails the log's end (it is written at most once a second, and no
// batch waits for it), so storage that loses synced records may leave a log the ceiling does not
// catch at open: here records 3-5 are applied (checkpoint 5), the ceiling says 2, and the storage
// loses 3-5. New events then get LSNs 3-5 again; resuming after checkpoint 5 would skip them as
// applied. The writer reads back the record its checkpoint names, finds another, and refuses.
TEST_F(PowerLossRounds, AWriterRefusesALogThatGaveAppliedLsnsToNewEvents) {
  FaultFs fs(11);
  std::mutex mu;
  std::vector<std::string> fatals;
  const RoundPlan plan = single_life_plan();
  const std::string condition = "lsns-given-again";
  const auto stored = [&] { return stored_trades(database_->db(), condition); };
  const auto submit = [&](IngestPipeline& pipeline, const std::string& prefix, int n) {
    std::vector<Event> events;
    for (int i = 0; i < n; ++i) events.push_back(trade_event(condition, prefix + std::to_string(i)));
    return pipeline.submit(events);
  };
  std::uint64_t end_of_record_2 = 0;
  {
    auto log = wal::WriteAheadLog::open(log_options(fs, plan, fatals, mu));
    IngestMetrics metrics;
    EventQueue queue(1024);
    BatchWriter writer(writer_config(plan, condition), database_->db(), *log, queue, metrics, quiet_, nullptr);
    IngestPipeline pipeline(1ull << 30, *log, queue, metrics, [&] { return writer.applied_log_offset(); });
    writer.start();
    ASSERT_EQ(submit(pipeline, "a", 2), SubmitResult::Durable);
    ASSERT_TRUE(test::wait_until([&] { return writer.applied_lsn() == 2; }, 20s));
    end_of_record_2 = static_cast<std::uint64_t>(IngestCheckpointRepository(database_->db()).get(condition)->segment_offset);
    ASSERT_TRUE(log->persist_applied());  // the ceiling: lsn 2
    fs.add_fault(test::FaultRule{test::FsOp::Write, 1, UINT64_MAX, EIO, "/wal/state"});  // and no later one
    ASSERT_EQ(submit(pipeline, "b", 3), SubmitResult::Durable);
    ASSERT_TRUE(test::wait_until([&] { return writer.applied_lsn() == 5; }, 20s));
    writer.stop();
  }
  fs.power_loss(PowerLossMode::DropUnsynced);  // a failed write of the state file never reached the disk
  fs.reboot();
  fs.clear_faults();
  ASSERT_EQ(stored(), 5);
  // The storage loses records 3-5, synced and applied.
  const std::string segment = "/wal/" + wal::segment_file_name(1);
  std::string bytes = fs.contents(segment);
  ASSERT_GT(bytes.size(), end_of_record_2);
  bytes.resize(end_of_record_2);
  fs.put(segment, bytes);

  auto log = wal::WriteAheadLog::open(log_options(fs, plan, fatals, mu));  // the ceiling (2) does not see it
  ASSERT_EQ(log->durable().lsn, 2u);
  IngestMetrics metrics;
  EventQueue queue(1024);
  FatalMessage writer_fatal;
  BatchWriter writer(writer_config(plan, condition), database_->db(), *log, queue, metrics, quiet_,
                     writer_fatal.callback());
  IngestPipeline pipeline(1ull << 30, *log, queue, metrics, [&] { return writer.applied_log_offset(); });
  ASSERT_EQ(submit(pipeline, "new", 3), SubmitResult::Durable);  // LSNs 3-5 again
  writer.start();
  ASSERT_TRUE(test::wait_until([&] { return !writer_fatal.get().empty() || writer.applied_lsn() == 5; }, 20s));
  writer.stop();
  const std::string fatal = writer_fatal.get();
  EXPECT_NE(fatal.find("names record 5"), std::string::npos) << fatal;
  EXPECT_NE(fatal.find("new events took their LSNs"), std::string::npos) << fatal;
  EXPECT_EQ(stored(), 5) << "the new events were applied over a checkpoint they do not belong to";
  EXPECT_EQ(IngestCheckpointRepository(database_->db()).get(condition)->lsn, 5);
  EXPECT_EQ(log->durable().lsn, 5u) << "the new events stay in the log";
}

// A checkpoint names its last record, whether the event came through the queue or was read back
// from the log: each restart finds that record and resumes.
TEST_F(PowerLossRounds, ACheckpointNamesItsLastRecordAndARestartFindsIt) {
  FaultFs fs(12);
  std::mutex mu;
  std::vector<std::string> fatals;
  const RoundPlan plan = single_life_plan();
  const std::string condition = "checkpoint-names-record";
  for (int life = 0; life < 3; ++life) {
    SCOPED_TRACE("life " + std::to_string(life));
    auto log = wal::WriteAheadLog::open(log_options(fs, plan, fatals, mu));
    IngestMetrics metrics;
    // In life 1 the queue cannot take the 4 events: the writer reads them back from the log.
    EventQueue queue(life == 1 ? 1 : 1024);
    FatalMessage writer_fatal;
    BatchWriter writer(writer_config(plan, condition), database_->db(), *log, queue, metrics, quiet_,
                       writer_fatal.callback());
    IngestPipeline pipeline(1ull << 30, *log, queue, metrics, [&] { return writer.applied_log_offset(); });
    std::vector<Event> events;
    for (int i = 0; i < 4; ++i) events.push_back(trade_event(condition, "l" + std::to_string(life) + "-" + std::to_string(i)));
    writer.start();
    ASSERT_EQ(pipeline.submit(events), SubmitResult::Durable);
    ASSERT_TRUE(test::wait_until([&] { return !writer_fatal.get().empty() || writer.applied_lsn() == 4u * (life + 1); }, 20s));
    writer.stop();
    ASSERT_EQ(writer_fatal.get(), "");
    const auto checkpoint = IngestCheckpointRepository(database_->db()).get(condition);
    ASSERT_TRUE(checkpoint.has_value());
    EXPECT_EQ(checkpoint->lsn, 4 * (life + 1));
    ASSERT_TRUE(checkpoint->record.has_value());
    const CheckpointRecord& record = *checkpoint->record;
    EXPECT_EQ(wal::record_mismatch("/wal", log->log_id(), log->durable(), record.bytes, record.payload_crc, fs), "");
    EXPECT_NE(wal::record_mismatch("/wal", log->log_id(), log->durable(), record.bytes, record.payload_crc ^ 1u, fs), "");
  }
  EXPECT_TRUE(fatals.empty()) << fatals.front();
}

// A database an older pm-ingestctl migrated lacks the checkpoint's record columns: the writer says
// which migration is missing and what to run, applies nothing meanwhile (the events stay in the
// log, acknowledged), and applies them once the migration is there.
TEST_F(PowerLossRounds, AWriterOnADatabaseMissingAMigrationSaysSoAndAppliesOnceItIsThere) {
  test::TestDatabase tdb("pending_migration");
  tdb.db().transaction([](pqxx::work& tx) {
    tx.exec("DELETE FROM pm_schema_migrations WHERE name = '07_checkpoint_record.sql'");
    tx.exec("ALTER TABLE pm_ingest_checkpoints DROP COLUMN record_bytes, DROP COLUMN record_crc");
  });
  FaultFs fs(13);
  std::mutex mu;
  std::vector<std::string> fatals;
  const RoundPlan plan = single_life_plan();
  auto log = wal::WriteAheadLog::open(log_options(fs, plan, fatals, mu));
  auto lines = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(256);
  auto logger = std::make_shared<spdlog::logger>("pending_migration", lines);
  const auto told = [&] {
    for (const std::string& line : lines->last_formatted())
      if (line.find("07_checkpoint_record.sql") != std::string::npos && line.find("run `pm-ingestctl migrate`") != std::string::npos)
        return true;
    return false;
  };
  const std::string condition = "pending-migration";
  const auto stored = [&] { return stored_trades(tdb.db(), condition); };
  IngestMetrics metrics;
  EventQueue queue(1024);
  BatchWriter writer(writer_config(plan, condition), tdb.db(), *log, queue, metrics, logger, nullptr);
  IngestPipeline pipeline(1ull << 30, *log, queue, metrics, [&] { return writer.applied_log_offset(); });
  writer.start();
  std::vector<Event> events;
  for (int i = 0; i < 3; ++i) events.push_back(trade_event(condition, "m" + std::to_string(i)));
  ASSERT_EQ(pipeline.submit(events), SubmitResult::Durable);
  ASSERT_TRUE(test::wait_until(told, 20s)) << "the writer did not name the missing migration";
  EXPECT_EQ(stored(), 0);
  Migrator(tdb.db()).migrate();
  EXPECT_TRUE(test::wait_until([&] { return writer.applied_lsn() == 3; }, 20s));
  writer.stop();
  EXPECT_EQ(stored(), 3);
  const auto checkpoint = IngestCheckpointRepository(tdb.db()).get(condition);
  ASSERT_TRUE(checkpoint.has_value());
  EXPECT_TRUE(checkpoint->record.has_value());
  EXPECT_TRUE(fatals.empty()) << fatals.front();
}

// Each lane's connection, and one for the writer thread's own queries, opens when the writer
// connects, before a batch needs it (a new backend took tens of milliseconds here, with events
// queued behind it).
TEST_F(PowerLossRounds, TheWriterOpensEveryConnectionItUsesWhenItConnects) {
  test::TestDatabase tdb("lane_connections");
  FaultFs fs(14);
  std::mutex mu;
  std::vector<std::string> fatals;
  RoundPlan plan = single_life_plan();
  plan.writer_connections = 3;
  auto log = wal::WriteAheadLog::open(log_options(fs, plan, fatals, mu));
  IngestMetrics metrics;
  EventQueue queue(1024);
  BatchWriter writer(writer_config(plan, "lane-connections"), tdb.db(), *log, queue, metrics, quiet_, nullptr);
  const auto backends = [&] {  // on a connection of its own, not one of the writer's pool
    pqxx::connection observer(tdb.url());
    pqxx::nontransaction tx(observer);
    return tx.exec_params1("SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                           tdb.name())[0].as<int>();
  };
  writer.start();
  ASSERT_TRUE(test::wait_until([&] { return writer.database_up(); }, 20s));
  EXPECT_GE(backends(), 4) << "the lanes' connections and the writer's own were not opened when it connected";
  writer.stop();
}

// An event the queue could not take is read back from the log. When the system refuses to open
// the segment (a permission, no descriptor left: unreadable(), not damage), the writer says it
// cannot read events back from the log and retries, the events staying in the log (it stopped
// the daemon with exit 2, which systemd does not restart); once the segment opens again, every
// acknowledged event is applied, once. The refusal starts after one event is applied, so each
// retry also reads the record the checkpoint names while the segment is still refused. Meanwhile
// pm_ingest_wal_read_errors_total counts the failed reads and the lag gauge grows.
TEST_F(PowerLossRounds, AWriterRetriesReadingBackASegmentTheSystemRefusesAndAppliesOnceItOpens) {
  FaultFs fs(15);
  test::RefusingOpenFs refusing(fs);
  std::mutex mu;
  std::vector<std::string> fatals;
  const RoundPlan plan = single_life_plan();
  const std::string condition = "segment-refused";
  wal::Options options = log_options(fs, plan, fatals, mu);
  options.fs = &refusing;
  auto log = wal::WriteAheadLog::open(options);
  auto lines = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(256);
  auto logger = std::make_shared<spdlog::logger>("segment_refused", lines);
  const auto logged = [&](const std::string& text) {
    for (const std::string& line : lines->last_formatted())
      if (line.find(text) != std::string::npos) return true;
    return false;
  };
  IngestMetrics metrics;
  EventQueue queue(1);  // takes one event at most: the others of a submit are read back from the log
  FatalMessage writer_fatal;
  BatchWriter writer(writer_config(plan, condition), database_->db(), *log, queue, metrics, logger, writer_fatal.callback());
  IngestPipeline pipeline(1ull << 30, *log, queue, metrics, [&] { return writer.applied_log_offset(); });
  const auto submit = [&](const std::string& prefix, int n) {
    std::vector<Event> events;
    for (int i = 0; i < n; ++i) events.push_back(trade_event(condition, prefix + std::to_string(i)));
    return pipeline.submit(events);
  };
  writer.start();
  ASSERT_EQ(submit("a", 1), SubmitResult::Durable);
  ASSERT_TRUE(test::wait_until([&] { return !writer_fatal.get().empty() || writer.applied_lsn() == 1; }, 20s));
  ASSERT_EQ(writer_fatal.get(), "");

  refusing.refuse(EACCES);
  ASSERT_EQ(submit("b", 4), SubmitResult::Durable);  // acknowledged: lsn 2-5
  // Three refused opens: the read back, then at least one retry.
  ASSERT_TRUE(test::wait_until(
      [&] { return !writer_fatal.get().empty() || (refusing.refused() >= 3 && logged("cannot read events back from the log")); }, 20s))
      << "refused opens: " << refusing.refused();
  EXPECT_EQ(writer_fatal.get(), "") << "the writer stopped on a segment it may not open";
  EXPECT_LT(writer.applied_lsn(), 5u) << "the events were applied without reading the refused segment";
  EXPECT_FALSE(logged("PostgreSQL operation failed")) << "a log it cannot read was reported as PostgreSQL's failure";
  // Seen on /metrics: the failed reads are counted, and the lag grows (it read 0, caught up, when
  // the refusal began) although the event after the applied one cannot be read to date it.
  EXPECT_TRUE(test::wait_until([&] { return metrics.wal_read_errors.Value() > 0; }, 20s))
      << "no failed read back counted in pm_ingest_wal_read_errors_total";
  EXPECT_TRUE(test::wait_until([&] { return metrics.lag_oldest_unapplied_seconds.Value() >= 1.0; }, 20s))
      << "the lag gauge stayed at " << metrics.lag_oldest_unapplied_seconds.Value() << " while events waited unapplied";
  EXPECT_LT(writer.applied_lsn(), 5u) << "the refused segment was read meanwhile";

  refusing.allow();
  EXPECT_TRUE(test::wait_until([&] { return !writer_fatal.get().empty() || writer.applied_lsn() == 5; }, 20s))
      << "applied lsn " << writer.applied_lsn();
  EXPECT_TRUE(test::wait_until([&] { return metrics.lag_oldest_unapplied_seconds.Value() == 0; }, 20s))
      << "caught up, the lag gauge stayed at " << metrics.lag_oldest_unapplied_seconds.Value();
  writer.stop();
  EXPECT_EQ(writer_fatal.get(), "");
  EXPECT_EQ(stored_trades(database_->db(), condition), 5);
  const auto checkpoint = IngestCheckpointRepository(database_->db()).get(condition);
  ASSERT_TRUE(checkpoint.has_value());
  EXPECT_EQ(checkpoint->lsn, 5);
  EXPECT_EQ(checkpoint->applied_events, 5) << "an event was applied twice, or skipped";
  EXPECT_TRUE(fatals.empty()) << fatals.front();
}

// The writer and the ingest path on a log whose fdatasync is held at a gate (SyncGateFs over a
// FaultFs, one writer lane), to see what the writer does while a group's sync runs.
class SyncOverlap {
 public:
  SyncOverlap(test::TestDatabase& tdb, std::uint64_t seed, WriterConfig config, std::shared_ptr<spdlog::logger> logger)
      : tdb_(tdb), fs_(seed), gate_(fs_), log_(wal::WriteAheadLog::open(log_options())),
        writer_(std::move(config), tdb.db(), *log_, queue_, metrics_, std::move(logger), writer_fatal_.callback()),
        pipeline_(1ull << 30, *log_, queue_, metrics_, [this] { return writer_.applied_log_offset(); }) {
    writer_.start();
  }
  ~SyncOverlap() { gate_.open_gate(); }  // a failed ASSERT must not leave a sync held

  BatchWriter& writer() { return writer_; }
  IngestMetrics& metrics() { return metrics_; }
  wal::SyncGateFs& gate() { return gate_; }
  std::vector<std::string> fatals() const {  // the log's
    std::lock_guard lock(mu_);
    return fatals_;
  }
  std::string writer_fatal() const { return writer_fatal_.get(); }  // "" until the writer's on_fatal ran

  // Holds the log's syncs, submits `n` trades of `condition` on a thread of its own and waits
  // until their batch waits, in an open transaction, for their sync (false: no batch did in 20 s).
  // The submit's outcome is in submitted().
  bool submit_while_sync_held(const std::string& condition, int n) {
    gate_.close_gate();
    events_.clear();
    for (int i = 0; i < n; ++i) events_.push_back(trade_event(condition, condition + "-" + std::to_string(i)));
    submitted_ = std::async(std::launch::async, [this] { return pipeline_.submit(events_); });
    gate_.wait_for_held_sync();
    return test::wait_until([&] { return batch_waits_in_transaction(); }, 20s);
  }
  std::future<SubmitResult>& submitted() { return submitted_; }
  SubmitResult submit(std::vector<Event>& events) { return pipeline_.submit(events); }  // the gate open

  // A session of the writer's, idle in a transaction whose last statement saved its checkpoint.
  bool batch_waits_in_transaction() const {  // on a connection of its own, not one of the writer's
    pqxx::connection observer(tdb_.url());
    pqxx::nontransaction tx(observer);
    return tx.exec_params1("SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND state = 'idle in transaction' "
                           "AND query LIKE '%pm_ingest_checkpoints%'",
                           tdb_.name())[0].as<int>() > 0;
  }
  long long checkpoints() const { return tdb_.count("pm_ingest_checkpoints"); }
  std::string log_id() const { return wal::log_id_hex(log_->log_id()); }  // as the checkpoint stores it

 private:
  wal::Options log_options() {
    wal::Options o;
    o.dir = "/wal";
    o.fs = &gate_;
    o.segment_bytes = 1 << 20;
    o.on_fatal = [this](const std::string& m) {
      std::lock_guard lock(mu_);
      fatals_.push_back(m);
    };
    return o;
  }

  test::TestDatabase& tdb_;
  FaultFs fs_;
  wal::SyncGateFs gate_;
  mutable std::mutex mu_;
  std::vector<std::string> fatals_;  // the log's on_fatal; guarded by mu_
  FatalMessage writer_fatal_;
  std::unique_ptr<wal::WriteAheadLog> log_;
  IngestMetrics metrics_;
  EventQueue queue_{1024};
  BatchWriter writer_;
  IngestPipeline pipeline_;
  std::vector<Event> events_;
  std::future<SubmitResult> submitted_;  // last: destroyed first, once the gate is open
};

// The writer starts a batch while its events' fdatasync runs (the log hands them over once
// written), and commits it only once they are durable: while the sync is held, the batch waits in
// an open transaction and nothing is visible; once it ends, the events are acked and committed.
TEST_F(PowerLossRounds, ABatchStartsWhileItsEventsAreSyncedAndCommitsOnlyOnceTheyAreDurable) {
  test::TestDatabase tdb("sync_overlap");
  const std::string condition = "sync-overlap";
  SyncOverlap h(tdb, 15, writer_config(single_life_plan(), condition), quiet_);
  ASSERT_TRUE(test::wait_until([&] { return h.writer().database_up(); }, 20s));
  ASSERT_TRUE(h.submit_while_sync_held(condition, 3)) << "no batch started while its events were being synced";
  EXPECT_EQ(stored_trades(tdb.db(), condition), 0) << "committed before its events were durable";
  EXPECT_EQ(h.checkpoints(), 0);
  EXPECT_EQ(h.submitted().wait_for(0s), std::future_status::timeout) << "acked before durable";
  h.gate().open_gate();
  EXPECT_EQ(h.submitted().get(), SubmitResult::Durable);
  EXPECT_TRUE(test::wait_until([&] { return h.writer().applied_lsn() == 3; }, 20s));
  h.writer().stop();
  EXPECT_EQ(stored_trades(tdb.db(), condition), 3);
  EXPECT_TRUE(h.fatals().empty()) << h.fatals().front();
  EXPECT_EQ(h.writer_fatal(), "");
}

// Events written to the log whose fdatasync then fails were never durable (nor acked): the batch
// the writer started on them rolls back, nothing of them is ever committed, and the writer tells it
// as the log's failure, not as a PostgreSQL error. The log has halted (its on_fatal returned, as an
// embedder's may): with nothing durable left to apply, the writer stops on a fatal error naming it
// (it used to go on retrying, or spin on a gap, for ever).
TEST_F(PowerLossRounds, ABatchOfEventsWhoseSyncFailedRollsBack) {
  test::TestDatabase tdb("sync_failed");
  const std::string condition = "sync-failed";
  auto lines = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(256);
  std::string told_line;
  const auto told = [&] {
    for (const std::string& line : lines->last_formatted())
      if (line.find("fdatasync of lsn 3 failed") != std::string::npos) {
        told_line = line;
        return true;
      }
    return false;
  };
  SyncOverlap h(tdb, 16, writer_config(single_life_plan(), condition), std::make_shared<spdlog::logger>("sync_failed", lines));
  ASSERT_TRUE(test::wait_until([&] { return h.writer().database_up(); }, 20s));
  ASSERT_TRUE(h.submit_while_sync_held(condition, 3)) << "no batch started while its events were being synced";
  h.gate().fail_syncs();
  EXPECT_EQ(h.submitted().get(), SubmitResult::IoError);
  ASSERT_TRUE(test::wait_until(told, 20s)) << "the writer did not report the batch it could not commit";
  // Told as the log's failure, not PostgreSQL's: no database error counted.
  EXPECT_NE(told_line.find("rolled back"), std::string::npos) << told_line;
  EXPECT_EQ(told_line.find("PostgreSQL"), std::string::npos) << told_line;
  for (const PgErrorKind kind : kPgErrorKinds)
    EXPECT_EQ(h.metrics().database_errors(to_string(kind)).Value(), 0) << to_string(kind);
  EXPECT_TRUE(test::wait_until([&] { return !h.batch_waits_in_transaction(); }, 20s));
  ASSERT_TRUE(test::wait_until([&] { return !h.writer_fatal().empty(); }, 20s)) << "the writer did not stop";
  EXPECT_NE(h.writer_fatal().find("has stopped (an fdatasync failed)"), std::string::npos) << h.writer_fatal();
  h.writer().stop();
  EXPECT_EQ(stored_trades(tdb.db(), condition), 0);
  EXPECT_EQ(h.checkpoints(), 0);
  EXPECT_EQ(h.writer().applied_lsn(), 0u);
  const std::vector<std::string> fatals = h.fatals();
  ASSERT_EQ(fatals.size(), 1u);
  EXPECT_NE(fatals.front().find("fdatasync"), std::string::npos) << fatals.front();
}

// An event the table's unit refuses (a trade time of 5000 ms: seconds by the size rule) in the log,
// as a daemon before the parser refused such lines would have logged it: the writer dead-letters
// that one event with the library's error (a data error, not one that stalls the log) and applies
// the events around it.
TEST_F(PowerLossRounds, AnEventTheTableUnitRefusesInTheLogIsDeadLetteredAndTheRestApplied) {
  test::TestDatabase tdb("unit_refused");
  const std::string condition = "unit-refused";
  SyncOverlap h(tdb, 13, writer_config(single_life_plan(), condition), quiet_);
  std::vector<Event> events{trade_event(condition, "before"), trade_event(condition, "too_early"), trade_event(condition, "after")};
  std::get<TradeEvent>(events[1].body).timestamp_ms = 5000;
  ASSERT_EQ(h.submit(events), SubmitResult::Durable);
  ASSERT_TRUE(test::wait_until([&] { return h.writer().applied_lsn() == 3; }, 20s)) << h.writer_fatal();
  EXPECT_EQ(stored_trades(tdb.db(), condition), 2);
  const int dead = tdb.db().transaction([&](pqxx::work& tx) {
    return tx.exec1("SELECT count(*) FROM pm_dead_letters WHERE lsn = 2 AND event_type = 'trade' AND error LIKE "
                    "'%too_early) 5000 looks like epoch seconds but the configured trade_timestamp_unit is milliseconds (ms)%'")[0]
        .as<int>();
  });
  EXPECT_EQ(dead, 1);
  EXPECT_TRUE(h.fatals().empty());
}

// The documented recovery from a damaged log (the directory moved away, `pm-ingestctl
// checkpoint-reset`, an empty --wal-dir) starts a new log whose LSNs begin at 1 again, while
// pm_dead_letters keeps the old log's dead letters: one at lsn 5 here (log id '', as rows written
// before log ids were). The new log's lsn 5 is refused: its dead letter must be stored beside the
// old one, under the new log's id, and the rest applied. With the key (instance_id, lsn) the insert
// was dropped (ON CONFLICT DO NOTHING) and the checkpoint moved past it anyway: the event was
// neither applied nor stored, while the log said it was.
TEST_F(PowerLossRounds, ADeadLetterOfAnotherLogAtTheSameLsnDoesNotHideANewOne) {
  test::TestDatabase tdb("dead_letter_other_log");
  const std::string condition = "other-log";
  tdb.exec("INSERT INTO pm_dead_letters (instance_id, lsn, event_type, payload, error, created_at) VALUES ('" + condition +
           "', 5, 'trade', 'an event of the log before', 'refused', '2026-01-01T00:00:00.000000Z')");
  SyncOverlap h(tdb, 17, writer_config(single_life_plan(), condition), quiet_);
  std::vector<Event> events;
  for (const char* id : {"a", "b", "c", "d", "too_early", "after"}) events.push_back(trade_event(condition, id));
  std::get<TradeEvent>(events[4].body).timestamp_ms = 5000;
  ASSERT_EQ(h.submit(events), SubmitResult::Durable);
  ASSERT_TRUE(test::wait_until([&] { return h.writer().applied_lsn() == 6; }, 20s)) << h.writer_fatal();
  EXPECT_EQ(stored_trades(tdb.db(), condition), 5);
  const std::string new_letter = "SELECT count(*) FROM pm_dead_letters WHERE instance_id = '" + condition +
                                 "' AND lsn = 5 AND event_type = 'trade' AND convert_from(payload, 'UTF8') LIKE "
                                 "'%\"trade_id\":\"too_early\"%' AND error LIKE '%5000 looks like epoch seconds%'";
  EXPECT_EQ(tdb.count(new_letter), 1) << "the refused event of the new log was not stored";
  EXPECT_EQ(tdb.count("SELECT count(*) FROM pm_dead_letters WHERE convert_from(payload, 'UTF8') = 'an event of the log before'"), 1);
  EXPECT_EQ(tdb.count(new_letter + " AND log_id = '" + h.log_id() + "'"), 1);
  EXPECT_TRUE(h.fatals().empty());
}

// A crash among the removals of applied segments kept for the archive can leave a hole below the
// applied position (the log opens since 82fb949). A writer with no checkpoint started at the oldest
// segment, applied it again and stopped on the hole as on damage (exit 2): it starts after the hole
// now. A checkpoint below the hole is refused at once, naming where the log can be read from.
TEST_F(PowerLossRounds, AWriterStartsAfterAHoleAmongTheKeptAppliedSegmentsAndRefusesACheckpointBelowIt) {
  test::TestDatabase tdb("hole_writer");
  const std::string condition = "hole";
  FaultFs fs(31);
  std::mutex mu;
  std::vector<std::string> fatals;
  wal::Options o;
  o.dir = "/wal";
  o.fs = &fs;
  o.segment_bytes = 4096;
  o.on_fatal = [&](const std::string& m) {
    std::lock_guard lock(mu);
    fatals.push_back(m);
  };
  o.may_remove = [](const wal::LogId&, std::uint64_t) { return false; };  // an archive that cannot be used: all kept
  std::uint64_t last_lsn = 0;
  {
    auto log = wal::WriteAheadLog::open(o);
    for (int i = 0; log->durable().segment < 6; ++i) {
      std::vector<std::string> payloads(1);
      encode_event(trade_event(condition, "t" + std::to_string(i)), payloads[0]);
      std::vector<wal::Appended> out;
      ASSERT_EQ(log->append(payloads, out), wal::AppendStatus::Ok);
    }
    log->note_applied(log->durable());
    ASSERT_TRUE(log->persist_applied());
    last_lsn = log->durable().lsn;
  }
  ASSERT_FALSE(fs.remove("/wal/" + wal::segment_file_name(3)));  // the part of a crash's removals that reached the disk
  auto log = wal::WriteAheadLog::open(o);
  ASSERT_EQ(log->oldest().segment, 1u);
  ASSERT_EQ(log->readable_oldest().segment, 4u);
  const auto run_writer = [&](const std::function<bool(BatchWriter&, FatalMessage&)>& until) {
    IngestMetrics metrics;
    EventQueue queue(1024);
    FatalMessage fatal;
    BatchWriter writer(writer_config(single_life_plan(), condition), tdb.db(), *log, queue, metrics, quiet_, fatal.callback());
    writer.start();
    EXPECT_TRUE(test::wait_until([&] { return until(writer, fatal); }, 20s)) << fatal.get();
    writer.stop();
    return fatal.get();
  };
  const int after_the_hole = static_cast<int>(last_lsn - log->readable_oldest().lsn);
  EXPECT_EQ(run_writer([&](BatchWriter&, FatalMessage& f) {
              return stored_trades(tdb.db(), condition) == after_the_hole || !f.get().empty();
            }),
            "");
  EXPECT_EQ(stored_trades(tdb.db(), condition), after_the_hole);
  ASSERT_EQ(tdb.count("SELECT lsn FROM pm_ingest_checkpoints WHERE instance_id = '" + condition + "'"), static_cast<long long>(last_lsn));
  tdb.exec("UPDATE pm_ingest_checkpoints SET lsn = 1, segment = 1, segment_offset = 56, log_offset = 0, record_bytes = NULL, "
           "record_crc = NULL WHERE instance_id = '" + condition + "'");
  const std::string refused = run_writer([](BatchWriter&, FatalMessage& f) { return !f.get().empty(); });
  EXPECT_NE(refused.find("points into segment 1 but the oldest segment in /wal it can read on from is 4"), std::string::npos)
      << refused;
  EXPECT_TRUE(fatals.empty());
}

// Triggers the library refuses before any SQL (an empty condition_id or token_id, a threshold that
// is not a finite number), in the log as a daemon before the parser's checks would have logged
// them, or an embedder of the library may: each is dead-lettered with the repository's message and
// the events around them are applied. The refusal was a plain std::invalid_argument, classified as
// Other (fatal), so the writer retried the batch for ever instead of isolating the event.
TEST_F(PowerLossRounds, ATriggerTheRepositoryRefusesInTheLogIsDeadLetteredAndTheRestApplied) {
  test::TestDatabase tdb("trigger_refused");
  const std::string condition = "trigger-refused";
  SyncOverlap h(tdb, 18, writer_config(single_life_plan(), condition), quiet_);
  const auto trigger = [](const std::string& token, const std::string& condition_id, double threshold) {
    TriggerEvent g;
    g.token_id = token;
    g.condition_id = condition_id;
    g.threshold = threshold;
    g.trigger_timestamp_ms = now_epoch_ms();
    Event e;
    e.received_ms = g.trigger_timestamp_ms;
    e.body = std::move(g);
    return e;
  };
  std::vector<Event> events{trade_event(condition, "before"),
                            trigger("tok", "", 0.9),
                            trigger("", condition, 0.9),
                            trigger("tok", condition, std::numeric_limits<double>::quiet_NaN()),
                            trigger("tok", condition, std::numeric_limits<double>::infinity()),
                            trigger("tok", condition, 0.8),
                            trade_event(condition, "after")};
  ASSERT_EQ(h.submit(events), SubmitResult::Durable);
  ASSERT_TRUE(test::wait_until([&] { return h.writer().applied_lsn() == 7; }, 20s))
      << "applied up to lsn " << h.writer().applied_lsn() << "; " << h.writer_fatal();
  EXPECT_EQ(stored_trades(tdb.db(), condition), 2);
  EXPECT_EQ(tdb.count("SELECT count(*) FROM polymarket_first_triggers WHERE token_id = 'tok' AND condition_id = '" + condition +
                      "' AND threshold = 0.8::real"),
            1);
  const auto letter = [&](int lsn, const std::string& error) {
    return tdb.count("SELECT count(*) FROM pm_dead_letters WHERE lsn = " + std::to_string(lsn) +
                     " AND event_type = 'trigger' AND error LIKE '%" + error + "%'");
  };
  EXPECT_EQ(letter(2, "has an empty condition_id; G2 deduplication needs it"), 1);
  EXPECT_EQ(letter(3, "trigger has an empty token_id"), 1);
  EXPECT_EQ(letter(4, "has threshold nan; a threshold must be a finite number"), 1);
  EXPECT_EQ(letter(5, "has threshold inf; a threshold must be a finite number"), 1);
  EXPECT_EQ(tdb.count("pm_dead_letters"), 4);
  EXPECT_EQ(h.metrics().database_errors(to_string(PgErrorKind::Other)).Value(), 0);  // none taken for fatal
  EXPECT_TRUE(h.fatals().empty());
}

// Four cases of 250 rounds each (seeds 1-250, 100001-100250, ...), so ctest runs them in parallel.
TEST_F(PowerLossRounds, Seeds1) { run_rounds(1); }
TEST_F(PowerLossRounds, Seeds100001) { run_rounds(100001); }
TEST_F(PowerLossRounds, Seeds200001) { run_rounds(200001); }
TEST_F(PowerLossRounds, Seeds300001) { run_rounds(300001); }

}  // namespace
}  // namespace pm
