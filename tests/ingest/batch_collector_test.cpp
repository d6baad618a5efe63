// BatchCollector over a real WriteAheadLog on tests/support/fault_fs: a log that halts (its
// fdatasync failed, and its on_fatal returned, as an embedder's may) must end the collector's
// work with LogHalted once everything durable is handed out; before this, a gap in the events in
// hand made next() return at once, for ever, and the writer thread spun on it.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <string>
#include <vector>

#include "ingest/events/event_codec.h"
#include "ingest/events/event_queue.h"
#include "ingest/log/wal.h"
#include "ingest/writer/batch_collector.h"
#include "metrics/ingest_metrics.h"
#include "tests/support/fault_fs.h"
#include "tests/support/trade_event.h"

namespace pm {
namespace {

using namespace std::chrono_literals;

class BatchCollectorTest : public ::testing::Test {
 protected:
  std::unique_ptr<wal::WriteAheadLog> open_log() {
    wal::Options o;
    o.dir = "/log";
    o.fs = &fs_;
    o.on_fatal = [this](const std::string& m) { fatals_.push_back(m); };  // returns: the log halts
    return wal::WriteAheadLog::open(o);
  }

  static constexpr std::uint64_t kQueueNone = UINT64_MAX;
  // Appends events first..first+count-1 as one group; queues those from lsn `queue_from` on as
  // the log's group leader does (written, before their sync); the others are left out, as a full
  // queue leaves them.
  wal::AppendStatus append(int first, int count, std::uint64_t queue_from) {
    std::vector<std::string> payloads;
    std::vector<Event> events;
    for (int i = first; i < first + count; ++i) {
      events.push_back(test::trade_event("c", "t" + std::to_string(i)));
      payloads.emplace_back();
      encode_event(events.back(), payloads.back());
    }
    std::vector<wal::Appended> appended;
    return log_->append(payloads, appended, [&](std::span<const wal::Appended> written) {
      std::vector<QueuedEvent> queued;
      for (std::size_t i = 0; i < written.size(); ++i)
        if (written[i].lsn >= queue_from)
          queued.push_back(QueuedEvent{written[i].lsn, written[i].end, events[i],
                                       static_cast<std::uint32_t>(wal::kRecordHeaderSize + payloads[i].size()), 0});
      if (!queued.empty()) queue_.push(queued);
    });
  }

  std::vector<QueuedEvent> next(const wal::Position& after) {
    return collector_.next(after, [] { return true; });
  }

  test::FaultFs fs_{1};  // the seed only matters to power loss, which these tests do not use
  std::vector<std::string> fatals_;
  std::unique_ptr<wal::WriteAheadLog> log_ = open_log();
  EventQueue queue_{1000};
  IngestMetrics metrics_;
  std::atomic<bool> stopping_{false};
  BatchCollector collector_{queue_, *log_, metrics_, 100, UINT64_MAX, 5ms, stopping_};
};

TEST_F(BatchCollectorTest, AHaltedLogEndsTheBatchesOnceItsDurableEventsAreHandedOut) {
  ASSERT_EQ(append(1, 3, kQueueNone), wal::AppendStatus::Ok);
  const std::vector<QueuedEvent> durable = next(log_->oldest());
  ASSERT_EQ(durable.size(), 3u) << "read back from the log";
  fs_.add_fault(test::FaultRule{test::FsOp::Sync, 1, 1, EIO, ".wal"});
  ASSERT_EQ(append(4, 5, 0), wal::AppendStatus::IoError);
  ASSERT_TRUE(log_->halted());
  ASSERT_EQ(fatals_.size(), 1u);
  ASSERT_EQ(log_->durable().lsn, 3u);
  // Events 4..8 are queued but never durable: a batch of them could never commit.
  EXPECT_THROW(next(durable.back().end), LogHalted);
  EXPECT_THROW(next(durable.back().end), LogHalted) << "and again: nothing after lsn 3 will come";
}

// The case that spun: events in hand behind a gap the log never made durable. next() waited for
// the gap's sync (which returns at once on a halted log), found the events in hand and returned
// empty at once, every time.
TEST_F(BatchCollectorTest, AHaltedLogBehindAGapInTheEventsInHandThrowsRatherThanSpins) {
  ASSERT_EQ(append(1, 3, kQueueNone), wal::AppendStatus::Ok);
  const std::vector<QueuedEvent> durable = next(log_->oldest());
  ASSERT_EQ(durable.size(), 3u);
  fs_.add_fault(test::FaultRule{test::FsOp::Sync, 1, 1, EIO, ".wal"});
  ASSERT_EQ(append(4, 7, 8), wal::AppendStatus::IoError);  // 8..10 queued, 4..7 left out; none durable
  ASSERT_EQ(log_->durable().lsn, 3u);
  EXPECT_THROW(next(durable.back().end), LogHalted);
}

TEST_F(BatchCollectorTest, EventsDurableBeforeTheHaltAreStillHandedOut) {
  ASSERT_EQ(append(1, 3, kQueueNone), wal::AppendStatus::Ok);
  const std::vector<QueuedEvent> first = next(log_->oldest());
  ASSERT_EQ(first.size(), 3u);
  ASSERT_EQ(append(4, 2, kQueueNone), wal::AppendStatus::Ok);  // durable, not queued: read from the log
  fs_.add_fault(test::FaultRule{test::FsOp::Sync, 1, 1, EIO, ".wal"});
  ASSERT_EQ(append(6, 5, 0), wal::AppendStatus::IoError);  // queued (6..10), never durable
  ASSERT_TRUE(log_->halted());
  const std::vector<QueuedEvent> last = next(first.back().end);
  ASSERT_EQ(last.size(), 2u);
  EXPECT_EQ(last.front().lsn, 4u);
  EXPECT_EQ(last.back().lsn, 5u);
  EXPECT_THROW(next(last.back().end), LogHalted);
}

TEST_F(BatchCollectorTest, ALogThatIsNotHaltedWaitsForMoreInsteadOfThrowing) {
  ASSERT_EQ(append(1, 3, 0), wal::AppendStatus::Ok);
  const std::vector<QueuedEvent> batch = next(log_->oldest());
  ASSERT_EQ(batch.size(), 3u);
  EXPECT_TRUE(next(batch.back().end).empty()) << "nothing new arrived within its wait";
}

// A batch goes once its record bytes reach the bound (one event past it at most), from the queue
// and from the log alike: with lines of a megabyte, batch_max_events of them held gigabytes.
TEST_F(BatchCollectorTest, ABatchGoesOnceItsRecordBytesReachTheBound) {
  ASSERT_EQ(append(1, 6, kQueueNone), wal::AppendStatus::Ok);  // read back from the log
  ASSERT_EQ(append(7, 6, 0), wal::AppendStatus::Ok);           // from the queue
  const std::uint64_t record = log_->durable().log_offset / 12;  // the same size each ("t1".."t9" aside)
  BatchCollector by_bytes{queue_, *log_, metrics_, 100, 2 * record + record / 2, 5ms, stopping_};
  wal::Position after = log_->oldest();
  std::vector<std::size_t> sizes;
  std::vector<std::uint64_t> first_lsns;
  while (after.lsn < 12) {
    const std::vector<QueuedEvent> batch = by_bytes.next(after, [] { return true; });
    ASSERT_FALSE(batch.empty());
    sizes.push_back(batch.size());
    first_lsns.push_back(batch.front().lsn);
    after = batch.back().end;
  }
  EXPECT_EQ(sizes, (std::vector<std::size_t>{3, 3, 3, 3}));
  EXPECT_EQ(first_lsns, (std::vector<std::uint64_t>{1, 4, 7, 10}));
}

// Events read back from the log are counted once each in pm_ingest_log_catchup_events_total: a
// batch read again after a failure (reset(), the writer's start over) counted each retry's
// re-read as new catch-up, so a batch PostgreSQL refused n times counted its events n + 1 times.
TEST_F(BatchCollectorTest, EventsReadAgainFromTheLogAfterAResetAreCountedOnce) {
  ASSERT_EQ(append(1, 5, kQueueNone), wal::AppendStatus::Ok);
  const wal::Position start = log_->oldest();
  ASSERT_EQ(next(start).size(), 5u) << "read back from the log";
  EXPECT_EQ(metrics_.log_catchup_events.Value(), 5);
  for (int retry = 0; retry < 3; ++retry) {
    collector_.reset();
    ASSERT_EQ(next(start).size(), 5u) << "read again from the log";
  }
  EXPECT_EQ(metrics_.log_catchup_events.Value(), 5) << "the same events counted again";
  ASSERT_EQ(append(6, 3, kQueueNone), wal::AppendStatus::Ok);
  collector_.reset();
  const std::vector<QueuedEvent> all = next(start);  // events 1-5 again, and 6-8 for the first time
  ASSERT_EQ(all.size(), 8u);
  EXPECT_EQ(metrics_.log_catchup_events.Value(), 8);
}

}  // namespace
}  // namespace pm
