// The write-ahead log: round trip, group commit, roll-over, torn tails at every byte, flipped
// bits, replay from a position, segment removal, crc32c.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <condition_variable>
#include <mutex>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <thread>

#include "repos/util/crc32c.h"
#include "ingest/log/wal.h"
#include "ingest/log/wal_directory.h"
#include "ingest/log/wal_reader.h"
#include "ingest/log/wal_salvage.h"
#include "tests/ingest/wal_dir_test.h"
#include "tests/support/sync_gate_fs.h"
#include "tests/support/wal_groups.h"

namespace pm::wal {
namespace {

namespace fs = std::filesystem;

class WalTest : public WalDirTest {
 protected:
  static std::string payload(int i) { return "event-" + std::to_string(i) + std::string(static_cast<std::size_t>(i % 7), '#'); }

  std::vector<Appended> append(WriteAheadLog& log, int from, int count) {
    std::vector<std::string> payloads;
    for (int i = from; i < from + count; ++i) payloads.push_back(payload(i));
    std::vector<Appended> out;
    EXPECT_EQ(log.append(payloads, out), AppendStatus::Ok);
    return out;
  }

  std::vector<std::string> read_all(const WriteAheadLog& log, Position from) {
    WalReader reader(log.dir(), log.log_id(), from);
    std::vector<std::string> out;
    while (auto r = reader.next(log.durable())) out.push_back(r->payload);
    return out;
  }

  fs::path newest_segment() const { return segments().back(); }

  // A closed log of 120 events (payload(0..119)) in 30 groups of 4 over 1 KiB segments, several of
  // them; the bytes of its first (sealed) segment.
  std::string sealed_first_segment_of_a_log() {
    {
      auto log = WriteAheadLog::open(options(1024));
      for (int i = 0; i < 30; ++i) append(*log, i * 4, 4);
      EXPECT_GT(log->stats().segments, 2u);
    }
    std::ifstream in(dir_ / segment_file_name(1), std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
};

TEST(Crc32c, KnownValuesAndBothPathsAgree) {
  // RFC 3720 test vector: 32 bytes of zeros.
  std::string zeros(32, '\0');
  EXPECT_EQ(crc32c::value(zeros.data(), zeros.size()), 0x8a9136aau);
  EXPECT_EQ(crc32c::value("123456789", 9), 0xe3069283u);
  std::string text;
  for (int i = 0; i < 1000; ++i) text += static_cast<char>(i * 31);
  for (std::size_t n : {0ul, 1ul, 7ul, 8ul, 9ul, 63ul, 1000ul}) {
    EXPECT_EQ(crc32c::value(text.data(), n), crc32c::extend_portable_for_test(0, text.data(), n)) << n;
  }
  EXPECT_EQ(crc32c::extend(crc32c::value(text.data(), 10), text.data() + 10, 90), crc32c::value(text.data(), 100));
  const std::uint32_t c = crc32c::value("abc", 3);
  EXPECT_NE(crc32c::mask(c), c);
  EXPECT_EQ(crc32c::unmask(crc32c::mask(c)), c);
}

TEST_F(WalTest, RoundTripAcrossReopen) {
  LogId id;
  {
    auto log = WriteAheadLog::open(options());
    id = log->log_id();
    auto a = append(*log, 0, 10);
    ASSERT_EQ(a.size(), 10u);
    EXPECT_EQ(a.front().lsn, 1u);
    EXPECT_EQ(a.back().lsn, 10u);
    EXPECT_EQ(log->durable().lsn, 10u);
  }
  auto log = WriteAheadLog::open(options());
  EXPECT_EQ(log->log_id(), id);
  EXPECT_EQ(log->durable().lsn, 10u);
  auto b = append(*log, 10, 5);
  EXPECT_EQ(b.front().lsn, 11u);
  auto all = read_all(*log, log->oldest());
  ASSERT_EQ(all.size(), 15u);
  for (int i = 0; i < 15; ++i) EXPECT_EQ(all[static_cast<std::size_t>(i)], payload(i));
  EXPECT_TRUE(warnings_.empty());
}

TEST_F(WalTest, PositionsAndLogOffsetsAreConsistent) {
  auto log = WriteAheadLog::open(options());
  auto a = append(*log, 0, 3);
  std::uint64_t expected = kGroupMarkerSize;  // one group: its marker, then its records
  for (int i = 0; i < 3; ++i) {
    expected += kRecordHeaderSize + payload(i).size();
    EXPECT_EQ(a[static_cast<std::size_t>(i)].end.log_offset, expected);
  }
  EXPECT_EQ(log->durable().log_offset, expected);
  EXPECT_EQ(log->stats().appended_bytes, expected);
}

TEST_F(WalTest, ReplayFromAPosition) {
  auto log = WriteAheadLog::open(options(1024));
  std::vector<Appended> a;
  for (int i = 0; i < 20; ++i) {  // one group never spans segments: several appends roll over
    auto part = append(*log, i * 10, 10);
    a.insert(a.end(), part.begin(), part.end());
  }
  ASSERT_GT(log->stats().segments, 2u);
  const Position checkpoint = a[119].end;
  auto rest = read_all(*log, checkpoint);
  ASSERT_EQ(rest.size(), 80u);
  EXPECT_EQ(rest.front(), payload(120));
  EXPECT_EQ(rest.back(), payload(199));
  EXPECT_TRUE(read_all(*log, log->durable()).empty());
}

TEST_F(WalTest, RollsOverToNewSegmentsAndRemovesOldOnes) {
  auto log = WriteAheadLog::open(options(2048));
  std::vector<Appended> all;
  for (int i = 0; i < 40; ++i) {
    auto a = append(*log, i * 10, 10);
    all.insert(all.end(), a.begin(), a.end());
  }
  const auto stats = log->stats();
  EXPECT_GT(stats.segments, 5u);
  EXPECT_EQ(read_all(*log, log->oldest()).size(), 400u);

  const Position checkpoint = all[250].end;
  log->note_applied(checkpoint);
  log->remove_segments_before(checkpoint.segment);
  EXPECT_LT(log->stats().segments, stats.segments);
  EXPECT_EQ(log->oldest().segment, checkpoint.segment);
  EXPECT_LE(log->oldest().lsn, checkpoint.lsn);
  EXPECT_EQ(read_all(*log, checkpoint).size(), 149u);
  // What remains reopens cleanly and continues the numbering.
  log.reset();
  log = WriteAheadLog::open(options(2048));
  EXPECT_EQ(log->durable().lsn, 400u);
  EXPECT_EQ(append(*log, 400, 1).front().lsn, 401u);
  EXPECT_EQ(read_all(*log, log->oldest()).size(), 401u - log->oldest().lsn);
}

// With an archive, Options::may_remove says which applied segments may go: removal and recovery
// delete from the oldest up to the first one it refuses and keep that one and all later ones, so
// what stays is contiguous and nothing unarchived is lost, even across a restart.
TEST_F(WalTest, MayRemoveKeepsRefusedSegmentsThroughRemovalAndRecovery) {
  std::uint64_t removable_below = 0;  // segments below this one are "archived"
  Options o = options(2048);
  o.may_remove = [&](const LogId&, std::uint64_t segment) { return segment < removable_below; };
  auto log = WriteAheadLog::open(o);
  std::vector<Appended> all;
  for (int i = 0; i < 40; ++i) {
    auto a = append(*log, i * 10, 10);
    all.insert(all.end(), a.begin(), a.end());
  }
  const std::uint64_t first = log->oldest().segment;
  const Position applied = all[350].end;
  log->note_applied(applied);
  log->remove_segments_before(applied.segment);
  EXPECT_EQ(log->oldest().segment, first) << "nothing is archived: nothing may go";
  removable_below = first + 2;
  log->remove_segments_before(applied.segment);
  EXPECT_EQ(log->oldest().segment, first + 2);
  ASSERT_TRUE(log->persist_applied());
  // Recovery removes below the recorded applied position only what may_remove allows.
  log.reset();
  removable_below = first + 4;
  log = WriteAheadLog::open(o);
  EXPECT_EQ(log->oldest().segment, first + 4);
  EXPECT_EQ(read_all(*log, log->oldest()).size(), 400u - log->oldest().lsn);
  removable_below = UINT64_MAX;
  log.reset();
  log = WriteAheadLog::open(o);
  EXPECT_EQ(log->oldest().segment, applied.segment);
}

// Applied segments Options::may_remove refused (an archive directory unusable at start) are kept,
// and a crash while some of them were removed can leave a hole among them: here segment 3 is gone
// while 2 and 4 remain, the applied position in segment 5. The hole lies below the applied
// position: no corruption. The log opens, keeps 2 and 4, reads from the applied position on and
// appends. (It threw "segment 0000000000000003.wal is missing before it".)
class WalHoleTest : public WalTest {
 protected:
  // Segments 2 to 7 or more with segment 3 missing, segment 1 removed, the applied position (the
  // end of segment 5's last record) in the state file. Returns what was appended.
  std::vector<Appended> make_hole_below_the_applied_position(Options& o) {
    std::vector<Appended> all;
    auto log = WriteAheadLog::open(o);
    for (int i = 0; log->durable().segment < 7; i += 10) {
      const auto part = append(*log, i, 10);
      all.insert(all.end(), part.begin(), part.end());
    }
    applied_ = *std::find_if(all.rbegin(), all.rend(), [](const Appended& a) { return a.end.segment == 5; });
    log->note_applied(applied_.end);
    removable_below_ = 2;  // segment 1 was archived, the rest not yet
    log->remove_segments_before(applied_.end.segment);
    EXPECT_EQ(log->oldest().segment, 2u);
    EXPECT_TRUE(log->persist_applied());
    log.reset();
    fs::remove(dir_ / segment_file_name(3));  // archived, and removed before the crash; 4's removal was lost
    removable_below_ = 0;  // at the restart the archive directory cannot be used: nothing may go
    return all;
  }

  Options hole_options() {
    Options o = options(1024);
    o.may_remove = [this](const LogId&, std::uint64_t segment) { return segment < removable_below_; };
    return o;
  }

  std::uint64_t removable_below_ = 0;
  Appended applied_;
};

TEST_F(WalHoleTest, AHoleAmongTheKeptAppliedSegmentsIsNotCorruption) {
  Options o = hole_options();
  const std::vector<Appended> all = make_hole_below_the_applied_position(o);
  std::unique_ptr<WriteAheadLog> log;
  ASSERT_NO_THROW(log = WriteAheadLog::open(o)) << "a hole below the applied position";
  EXPECT_TRUE(fs::exists(dir_ / segment_file_name(2)));
  EXPECT_TRUE(fs::exists(dir_ / segment_file_name(4)));
  EXPECT_EQ(log->oldest().segment, 2u);
  EXPECT_EQ(log->durable().lsn, all.back().lsn);
  EXPECT_EQ(log->applied_at_open().lsn, applied_.lsn);
  const auto more = append(*log, 1000, 3);
  ASSERT_EQ(more.size(), 3u);
  EXPECT_EQ(more.front().lsn, all.back().lsn + 1);
  const std::vector<std::string> rest = read_all(*log, log->applied_at_open());
  ASSERT_EQ(rest.size(), all.size() - applied_.lsn + 3);
  EXPECT_EQ(rest.front(), payload(static_cast<int>(applied_.lsn)));
  EXPECT_EQ(rest.back(), payload(1002));
  // Once segment 2 may go, it goes like any applied segment, and the log reopens with no hole.
  removable_below_ = UINT64_MAX;
  log->remove_segments_before(applied_.end.segment);
  EXPECT_EQ(log->oldest().segment, 5u);
  log.reset();
  ASSERT_NO_THROW(log = WriteAheadLog::open(o));
  EXPECT_EQ(log->durable().lsn, all.back().lsn + 3);
}

// pm-ingestctl wal-verify and status read the log as its recovery does: the hole is no damage (it
// was reported with the advice to move the log away and reset the checkpoint), and every record
// from the run that ends at the newest segment reads back.
TEST_F(WalHoleTest, InspectingALogWithAHoleBelowTheAppliedPositionFindsNoDamage) {
  Options o = hole_options();
  const std::vector<Appended> all = make_hole_below_the_applied_position(o);
  LogExtent extent;
  ASSERT_NO_THROW(extent = inspect_log(dir_.string())) << "a hole below the applied position";
  EXPECT_EQ(extent.oldest.segment, 4u);
  EXPECT_EQ(extent.runs_below_hole, (std::vector<std::pair<std::uint64_t, std::uint64_t>>{{2, 2}})) << "segment 2, kept below the hole";
  EXPECT_EQ(extent.end.lsn, all.back().lsn);
  WalReader reader(dir_.string(), extent.log_id, extent.oldest);
  std::uint64_t last = 0, read = 0;
  while (const auto r = reader.next(extent.end)) {
    last = r->lsn;
    ++read;
  }
  EXPECT_EQ(last, all.back().lsn);
  EXPECT_GT(read, 0u);
}

// A hole above the applied position is still corruption: unapplied records are gone.
TEST_F(WalHoleTest, ASegmentMissingFromTheAppliedOneOnIsStillCorruption) {
  for (const std::uint64_t missing : {5u, 6u}) {
    SCOPED_TRACE("segment " + std::to_string(missing) + " missing");
    fs::remove_all(dir_);
    Options o = hole_options();
    make_hole_below_the_applied_position(o);
    fs::remove(dir_ / segment_file_name(missing));
    try {
      WriteAheadLog::open(o);
      ADD_FAILURE() << "a log without segment " << missing << " opened";
    } catch (const WalCorruption& e) {
      EXPECT_NE(std::string(e.what()).find(segment_file_name(missing) + " is missing"), std::string::npos) << e.what();
    }
  }
}

// While applied segments wait for PostgreSQL's standbys, the log holds the applied position it
// records at or below what they confirmed: the oldest segment's start when nothing is confirmed
// yet (LogRetention). Recorded below the hole, that position would put the hole above it, and the
// next start would refuse the log ("segment 0000000000000003.wal is missing before it"): the
// position recorded stops at the first segment after the hole.
TEST_F(WalHoleTest, AnAppliedPositionHeldForTheStandbysIsNotRecordedBelowTheHole) {
  Options o = hole_options();
  const std::vector<Appended> all = make_hole_below_the_applied_position(o);
  {
    auto log = WriteAheadLog::open(o);
    log->hold_applied_at(log->oldest());
    ASSERT_TRUE(log->persist_applied());
    append(*log, 1000, 3);
  }
  std::unique_ptr<WriteAheadLog> log;
  ASSERT_NO_THROW(log = WriteAheadLog::open(o)) << "the applied position was recorded below the hole";
  EXPECT_EQ(log->oldest().segment, 2u);
  EXPECT_EQ(log->applied_at_open().segment, 4u) << "held at the first segment after the hole";
  EXPECT_EQ(read_all(*log, log->applied_at_open()).size(), all.size() + 3 - log->applied_at_open().lsn);
}

// A reader tailing the log must not trust bytes it saw past the durable end: a failed append is
// cut off and those offsets are written again with other bytes.
TEST_F(WalTest, ReaderNeverReusesBytesItSawPastTheDurableEnd) {
  auto log = WriteAheadLog::open(options());
  append(*log, 0, 5);
  const Position durable = log->durable();
  const fs::path segment = newest_segment();
  { std::ofstream(segment, std::ios::binary | std::ios::app) << std::string(300, 'G'); }  // a write in flight
  WalReader reader(log->dir(), log->log_id(), log->oldest());
  int read = 0;
  while (reader.next(durable)) ++read;
  ASSERT_EQ(read, 5);
  fs::resize_file(segment, durable.offset);  // the failed write is cut off ...
  append(*log, 5, 3);                        // ... and the same offsets hold new records
  std::vector<std::string> more;
  while (auto r = reader.next(log->durable())) more.push_back(r->payload);
  ASSERT_EQ(more.size(), 3u);
  EXPECT_EQ(more[0], payload(5));
  EXPECT_EQ(more[2], payload(7));
}

TEST_F(WalTest, NeverRemovesTheActiveSegment) {
  auto log = WriteAheadLog::open(options());
  append(*log, 0, 5);
  log->remove_segments_before(1000);
  EXPECT_EQ(log->stats().segments, 1u);
  EXPECT_EQ(read_all(*log, log->oldest()).size(), 5u);
}

TEST_F(WalTest, ConcurrentAppendersAreGroupedAndOrdered) {
  auto log = WriteAheadLog::open(options(1 << 16));
  constexpr int kThreads = 8, kPerThread = 200;
  std::mutex mu;
  std::vector<std::uint64_t> callback_lsns;
  std::barrier start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < kPerThread; ++i) {
        std::vector<std::string> p = {"t" + std::to_string(t) + "-" + std::to_string(i)};
        std::vector<Appended> out;
        WrittenCallback cb = [&](std::span<const Appended> recs) {
          std::lock_guard lock(mu);
          for (const auto& r : recs) callback_lsns.push_back(r.lsn);
        };
        ASSERT_EQ(log->append(p, out, cb), AppendStatus::Ok);
        ASSERT_EQ(out.size(), 1u);
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(callback_lsns.size(), static_cast<std::size_t>(kThreads * kPerThread));
  for (std::size_t i = 0; i < callback_lsns.size(); ++i) EXPECT_EQ(callback_lsns[i], i + 1) << "callbacks out of LSN order";
  EXPECT_LT(log->stats().groups, static_cast<std::uint64_t>(kThreads * kPerThread)) << "no group ever held two appends";
  EXPECT_EQ(read_all(*log, log->oldest()).size(), static_cast<std::size_t>(kThreads * kPerThread));
}

// Records written by a group reach the consumer (on_written) while their fdatasync still runs;
// wait_durable() returns only once it has ended, and append() only then.
TEST_F(WalTest, RecordsReachTheConsumerWhileTheirSyncRunsAndWaitDurableWaitsForIt) {
  SyncGateFs gate;
  Options o = options();
  o.fs = &gate;
  auto log = WriteAheadLog::open(o);
  gate.close_gate();
  std::promise<std::vector<std::uint64_t>> written;
  std::atomic<bool> returned{false};
  std::thread appender([&] {
    std::vector<Appended> out;
    const WrittenCallback cb = [&](std::span<const Appended> records) {
      std::vector<std::uint64_t> lsns;
      for (const Appended& r : records) lsns.push_back(r.lsn);
      written.set_value(lsns);
    };
    EXPECT_EQ(log->append(std::vector<std::string>{"a", "b"}, out, cb), AppendStatus::Ok);
    returned = true;
  });
  EXPECT_EQ(written.get_future().get(), (std::vector<std::uint64_t>{1, 2}));
  gate.wait_for_held_sync();
  EXPECT_EQ(log->durable().lsn, 0u);
  auto durable = std::async(std::launch::async, [&] { return log->wait_durable(2); });
  // Bounded check that it still waits; a wait_durable that did not wait would return at once.
  EXPECT_EQ(durable.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout);
  EXPECT_FALSE(returned.load());
  gate.open_gate();
  EXPECT_TRUE(durable.get());
  appender.join();
  EXPECT_TRUE(returned.load());
  EXPECT_EQ(log->durable().lsn, 2u);
  EXPECT_TRUE(log->wait_durable(1));
}

// A record whose group's fdatasync failed never becomes durable: wait_durable() says so (false)
// instead of waiting for ever, the log halts, and the append is not acknowledged.
TEST_F(WalTest, AFailedSyncTellsWaitDurableTheRecordNeverWillBe) {
  SyncGateFs gate;
  Options o = options();
  o.fs = &gate;
  std::atomic<int> fatals{0};
  o.on_fatal = [&](const std::string&) { ++fatals; };
  auto log = WriteAheadLog::open(o);
  gate.close_gate();
  std::promise<void> written;
  std::thread appender([&] {
    std::vector<Appended> out;
    const WrittenCallback cb = [&](std::span<const Appended>) { written.set_value(); };
    EXPECT_EQ(log->append(std::vector<std::string>{"a"}, out, cb), AppendStatus::IoError);
  });
  written.get_future().get();
  gate.wait_for_held_sync();
  auto durable = std::async(std::launch::async, [&] { return log->wait_durable(1); });
  gate.fail_syncs();
  EXPECT_FALSE(durable.get());
  appender.join();
  EXPECT_EQ(fatals.load(), 1);
  EXPECT_TRUE(log->halted());
  EXPECT_EQ(log->durable().lsn, 0u);
}

// Group delay (PostgreSQL's commit_delay with commit_siblings): a leader waits for more calls only
// when its previous group held several, and what arrives while it waits joins its group.
TEST_F(WalTest, ALeaderWaitsForOtherAppendersOnlyWhileTheyAreActive) {
  SyncGateFs gate;
  Options o = options();
  o.fs = &gate;
  o.group_delay = std::chrono::milliseconds(1);
  // E's thread must queue while D's leader waits: the leader's delay is held until it has (a
  // delay long enough for any machine, 3 s, was the test's only timing assumption).
  std::unique_ptr<WriteAheadLog> log;
  std::atomic<bool> hold_delay_for_a_second_call{false};
  o.after_group_delay = [&] {
    if (!hold_delay_for_a_second_call.exchange(false)) return;
    while (log->stats().waiting_appends < 2) std::this_thread::yield();
  };
  log = WriteAheadLog::open(o);
  auto append_one = [&](const std::string& p) {
    std::vector<Appended> out;
    EXPECT_EQ(log->append(std::vector<std::string>{p}, out), AppendStatus::Ok) << p;
  };
  auto wait_for_waiting = [&](std::uint64_t n) {
    while (log->stats().waiting_appends < n) std::this_thread::yield();
  };

  // A alone leads at once (nothing was appended before), its sync held; B and C queue behind it
  // and form the next group together: two calls in one group.
  gate.close_gate();
  std::thread a(append_one, "a");
  gate.wait_for_held_sync();
  std::thread b(append_one, "b"), c(append_one, "c");
  wait_for_waiting(3);
  const std::uint64_t groups_before = log->stats().groups;
  gate.open_gate();
  a.join();
  b.join();
  c.join();
  EXPECT_EQ(log->stats().groups, groups_before + 2) << "A alone, then B and C together";
  EXPECT_EQ(log->stats().delayed_groups, 0u) << "neither A's nor B's group followed a group of several calls";

  // Siblings were active: D's leader waits, and E, arriving meanwhile, joins its group.
  hold_delay_for_a_second_call = true;
  std::thread d(append_one, "d");
  wait_for_waiting(1);
  std::thread e(append_one, "e");
  d.join();
  e.join();
  EXPECT_EQ(log->stats().delayed_groups, 1u);
  EXPECT_EQ(log->stats().groups, groups_before + 3) << "D and E in one group";

  // Alone from now on: F still waits once (its previous group held D and E), G no more.
  append_one("f");
  append_one("g");
  EXPECT_EQ(log->stats().delayed_groups, 2u);
  EXPECT_EQ(log->stats().groups, groups_before + 5);
  EXPECT_EQ(read_all(*log, log->oldest()).size(), 7u);
}

// A crash can stop the last write at any byte: every cut is recovered to the records before it.
TEST_F(WalTest, TornTailIsCutAtEveryByteOfTheLastRecord) {
  std::uint64_t full_size = 0, before_last = 0;
  {
    auto log = WriteAheadLog::open(options());
    append(*log, 0, 5);
    before_last = log->durable().offset;
    append(*log, 5, 1);
    full_size = log->durable().offset;
  }
  const fs::path seg = newest_segment();
  const std::string pristine = [&] {
    std::ifstream in(seg, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();
  for (std::uint64_t cut = before_last + 1; cut < full_size; ++cut) {
    {
      std::ofstream out(seg, std::ios::binary | std::ios::trunc);
      out.write(pristine.data(), static_cast<std::streamsize>(cut));
    }
    warnings_.clear();
    auto log = WriteAheadLog::open(options());
    EXPECT_EQ(log->durable().lsn, 5u) << "cut at " << cut;
    EXPECT_EQ(log->durable().offset, before_last);
    EXPECT_EQ(fs::file_size(seg), before_last);
    ASSERT_EQ(warnings_.size(), 1u) << "cut at " << cut;
    EXPECT_NE(warnings_[0].find("torn tail"), std::string::npos);
    EXPECT_EQ(read_all(*log, log->oldest()).size(), 5u);
  }
}

// Zeros after the last group are the preallocated rest of a segment (Options::preallocate): the
// clean end of the log, not damage, and the next appends write over them.
TEST_F(WalTest, ZeroFilledTailIsTheCleanEndAndIsWrittenOver) {
  {
    auto log = WriteAheadLog::open(options());
    append(*log, 0, 3);
  }
  const std::uint64_t records_end = fs::file_size(newest_segment());
  {
    std::ofstream out(newest_segment(), std::ios::binary | std::ios::app);
    out << std::string(4096, '\0');
  }
  {
    auto log = WriteAheadLog::open(options());
    EXPECT_EQ(log->durable().lsn, 3u);
    EXPECT_EQ(log->durable().offset, records_end);
    EXPECT_TRUE(warnings_.empty()) << warnings_.front();
    append(*log, 3, 2);
  }
  auto log = WriteAheadLog::open(options());
  EXPECT_EQ(log->durable().lsn, 5u);
  EXPECT_EQ(read_all(*log, log->oldest()).size(), 5u);
  EXPECT_TRUE(warnings_.empty()) << warnings_.front();
}

// Salvage reads the zero tail as recovery does: the clean end. It reported it as a damaged range
// "with nothing readable after it", so `wal-verify --salvage` exited 2 on every healthy log of a
// daemon with its defaults (spare files of zeros) once its segment was started from a spare.
TEST_F(WalTest, SalvageTakesAZeroFilledTailForTheCleanEnd) {
  {
    auto log = WriteAheadLog::open(options());
    append(*log, 0, 3);
  }
  {
    std::ofstream out(newest_segment(), std::ios::binary | std::ios::app);
    out << std::string(4096, '\0');
  }
  std::vector<std::string> skipped;
  std::uint64_t records = 0;
  const SalvageCounts counts = salvage_log(posix_log_fs(), dir_.string(), [&](const Record&) { return ++records, true; },
                                           [&](const SkippedRange& r) { skipped.push_back(r.problem); });
  EXPECT_EQ(records, 3u);
  EXPECT_EQ(counts.skipped_ranges, 0u) << skipped.front();
  EXPECT_EQ(counts.skipped_bytes, 0u);

  {  // Zeros with anything after them are still a range to skip.
    std::ofstream out(newest_segment(), std::ios::binary | std::ios::app);
    out << 'x';
  }
  EXPECT_EQ(salvage_log(posix_log_fs(), dir_.string(), [](const Record&) { return true; }, [](const SkippedRange&) {}).skipped_ranges, 1u);
}

// LSNs that no segment holds are what salvage is for: `wal-verify --salvage` said "0 damaged
// range(s)" and exited 0 for a log missing a segment, or whose synced records were lost, where
// plain wal-verify called it damaged. A hole below the applied segment is no damage, as in recovery.
TEST_F(WalTest, SalvageNamesTheLsnsNoSegmentHolds) {
  std::uint64_t newest = 0;
  {
    auto log = WriteAheadLog::open(options(1024));
    for (int i = 0; i < 30; ++i) append(*log, i * 4, 4);
    ASSERT_TRUE(log->persist_applied());  // the ceiling: everything
    newest = log->durable().segment;
    ASSERT_GE(newest, 5u);
  }
  const auto salvage = [&](std::vector<SkippedRange>& skipped) {
    return salvage_log(posix_log_fs(), dir_.string(), [](const Record&) { return true; },
                       [&](const SkippedRange& r) { skipped.push_back(r); });
  };
  std::vector<SkippedRange> none;
  EXPECT_EQ(salvage(none).skipped_ranges, 0u);
  ASSERT_TRUE(none.empty()) << none.front().problem;

  const SegmentHeader third = read_segment_header(posix_log_fs(), dir_.string(), 3);
  const SegmentHeader fourth = read_segment_header(posix_log_fs(), dir_.string(), 4);
  fs::remove(dir_ / segment_file_name(3));
  std::vector<SkippedRange> gap;
  EXPECT_EQ(salvage(gap).skipped_ranges, 1u);
  ASSERT_EQ(gap.size(), 1u);
  EXPECT_EQ(gap[0].last_lsn_before, third.first_lsn - 1);
  EXPECT_EQ(gap[0].next_lsn_after, fourth.first_lsn);
  EXPECT_NE(gap[0].problem.find("lsn " + std::to_string(third.first_lsn) + ".." + std::to_string(fourth.first_lsn - 1) +
                                " are in no segment"),
            std::string::npos)
      << gap[0].problem;

  // The newest segment lost its records (below the ceiling).
  const SegmentHeader last = read_segment_header(posix_log_fs(), dir_.string(), newest);
  fs::resize_file(dir_ / segment_file_name(newest), kSegmentHeaderSize);
  std::vector<SkippedRange> lost;
  salvage(lost);
  ASSERT_EQ(lost.size(), 2u);
  EXPECT_NE(lost[1].problem.find("lsn " + std::to_string(last.first_lsn) + ".."), std::string::npos) << lost[1].problem;
  EXPECT_NE(lost[1].problem.find("acknowledged records were lost"), std::string::npos) << lost[1].problem;

  // Every segment gone (recovery refuses such a directory): the state file's ceiling names the loss.
  for (const fs::path& segment : segments()) fs::remove(segment);
  std::vector<SkippedRange> all_gone;
  salvage(all_gone);
  ASSERT_EQ(all_gone.size(), 1u);
  EXPECT_NE(all_gone[0].problem.find("lsn 1..120 "), std::string::npos) << all_gone[0].problem;  // 30 groups of 4
  EXPECT_NE(all_gone[0].problem.find("the log holds no segment"), std::string::npos) << all_gone[0].problem;
}

// Damage that runs to the end of a segment is one skipped range: the next segment's start does not
// report its LSNs again as "in no segment".
TEST_F(WalTest, SalvageReportsDamageToTheEndOfASegmentOnce) {
  {
    auto log = WriteAheadLog::open(options(1024));
    for (int i = 0; i < 30; ++i) append(*log, i * 4, 4);
    ASSERT_TRUE(log->persist_applied());
  }
  const fs::path second = dir_ / segment_file_name(2);
  const std::uintmax_t size = fs::file_size(second);
  {
    std::fstream f(second, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(size - 200));
    f << std::string(200, '\x5a');
  }
  std::vector<SkippedRange> skipped;
  const SalvageCounts counts = salvage_log(posix_log_fs(), dir_.string(), [](const Record&) { return true; },
                                           [&](const SkippedRange& r) { skipped.push_back(r); });
  EXPECT_EQ(counts.skipped_ranges, 1u);
  ASSERT_EQ(skipped.size(), 1u) << skipped.back().problem;
  EXPECT_EQ(skipped[0].file, second.string());
}

TEST_F(WalTest, SalvageTakesAHoleBelowTheAppliedSegmentForNoDamage) {
  {
    auto log = WriteAheadLog::open(options(1024));
    for (int i = 0; i < 30; ++i) append(*log, i * 4, 4);
    log->note_applied(log->durable());
    ASSERT_TRUE(log->persist_applied());
  }
  fs::remove(dir_ / segment_file_name(2));  // applied: removed apart from its neighbours by a crash
  std::vector<std::string> skipped;
  const SalvageCounts counts = salvage_log(posix_log_fs(), dir_.string(), [](const Record&) { return true; },
                                           [&](const SkippedRange& r) { skipped.push_back(r.problem); });
  EXPECT_EQ(counts.skipped_ranges, 0u) << skipped.front();
}

TEST_F(WalTest, ZerosFollowedByAnythingElseAreATornTail) {
  {
    auto log = WriteAheadLog::open(options());
    append(*log, 0, 3);
  }
  const std::uint64_t records_end = fs::file_size(newest_segment());
  {
    std::ofstream out(newest_segment(), std::ios::binary | std::ios::app);
    out << std::string(4096, '\0') << 'x';
  }
  auto log = WriteAheadLog::open(options());
  EXPECT_EQ(log->durable().lsn, 3u);
  ASSERT_EQ(warnings_.size(), 1u);
  EXPECT_NE(warnings_[0].find("torn"), std::string::npos) << warnings_[0];
  EXPECT_EQ(fs::file_size(newest_segment()), records_end);
}

void flip_bit(const fs::path& file, std::uint64_t offset) {
  std::fstream f(file, std::ios::binary | std::ios::in | std::ios::out);
  f.seekg(static_cast<std::streamoff>(offset));
  char c;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x10);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

TEST_F(WalTest, FlippedBitBeforeTheTailStopsRecoveryWithFileAndOffset) {
  std::vector<Appended> a;
  {
    auto log = WriteAheadLog::open(options());
    for (int i = 0; i < 10; ++i) a.push_back(append(*log, i, 1).front());  // ten groups
  }
  // Every byte of record 4's group (marker and record) is covered by a checksum, and a later
  // group proves it was synced.
  const std::uint64_t rec4 = a[2].end.offset;
  for (std::uint64_t off = rec4; off < a[3].end.offset; off += 3) {
    flip_bit(newest_segment(), off);
    try {
      WriteAheadLog::open(options());
      FAIL() << "corruption at " << off << " was not detected";
    } catch (const WalCorruption& e) {
      EXPECT_EQ(e.offset(), rec4);
      EXPECT_NE(std::string(e.what()).find(newest_segment().filename().string()), std::string::npos);
    }
    flip_bit(newest_segment(), off);  // restore
  }
  EXPECT_EQ(WriteAheadLog::open(options())->durable().lsn, 10u);
}

// A record longer than the readers take (kMaxPayload) was acknowledged, and then refused as damage
// by every reader of the log (the writer's read-back included). Refused at append, nothing written.
TEST_F(WalTest, ARecordLongerThanTheReadersTakeIsRefusedAtAppendAndNothingIsWritten) {
  auto log = WriteAheadLog::open(options());
  append(*log, 0, 2);
  const Position before = log->durable();
  const std::vector<std::string> payloads{payload(2), std::string(kMaxPayload + 1, 'x')};
  std::vector<Appended> out;
  try {
    log->append(payloads, out);
    ADD_FAILURE() << "appended";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(kMaxPayload + 1) + " bytes is longer than the"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(log->durable().lsn, before.lsn);
  EXPECT_EQ(log->durable().offset, before.offset);
  append(*log, 2, 1);  // the log goes on
  EXPECT_EQ(read_all(*log, log->oldest()).size(), 3u);
  std::vector<std::string> largest{std::string(kMaxPayload, 'y')};  // the longest a reader takes
  ASSERT_EQ(log->append(largest, out), AppendStatus::Ok);
  EXPECT_EQ(read_all(*log, log->oldest()).back().size(), kMaxPayload);
}

TEST_F(WalTest, ReaderDetectsCorruptionInOlderSegments) {
  {
    auto log = WriteAheadLog::open(options(1024));
    for (int i = 0; i < 10; ++i) append(*log, i * 10, 10);
    ASSERT_GT(log->stats().segments, 2u);
  }
  const fs::path first = dir_ / segment_file_name(1);
  flip_bit(first, kSegmentHeaderSize + 20);
  auto log = WriteAheadLog::open(options(1024));  // only the newest segment is scanned at open
  WalReader reader(log->dir(), log->log_id(), log->oldest());
  try {
    while (reader.next(log->durable())) {
    }
    FAIL() << "expected WalCorruption";
  } catch (const WalCorruption& e) {
    EXPECT_EQ(e.file(), first.string());
    EXPECT_EQ(e.offset(), kSegmentHeaderSize);
  }
}

// A sealed segment that ends after some whole records of its last group (a power loss that
// undid the cut of a failed write, or a copy cut short) holds records no one acknowledged: the
// reader calls it damage at the group's marker and returns none of them.
TEST_F(WalTest, HalfAGroupOfWholeRecordsAtTheEndOfASealedSegmentIsDamageNotEvents) {
  const std::string bytes = sealed_first_segment_of_a_log();
  const fs::path first = dir_ / segment_file_name(1);
  const std::vector<test::GroupSpan> groups = test::groups_in(bytes);
  ASSERT_GE(groups.size(), 2u);
  ASSERT_EQ(groups.back().record_ends.size(), 4u);
  ASSERT_EQ(groups.back().record_ends.back(), bytes.size());
  fs::resize_file(first, groups.back().record_ends[1]);  // two of its four records left, both whole
  const std::uint64_t events_before = 4 * (groups.size() - 1);

  auto log = WriteAheadLog::open(options(1024));  // only the newest segment is scanned at open
  WalReader reader(log->dir(), log->log_id(), log->oldest());
  std::uint64_t last_read = 0;
  try {
    while (auto r = reader.next(log->durable())) last_read = r->lsn;
    FAIL() << "expected WalCorruption";
  } catch (const WalCorruption& e) {
    EXPECT_EQ(e.file(), first.string());
    EXPECT_EQ(e.offset(), groups.back().marker);
    EXPECT_NE(std::string(e.what()).find("group cut short"), std::string::npos) << e.what();
  }
  EXPECT_EQ(last_read, events_before);  // not one record of the cut group
}

// A group whose body checksum is right but whose records do not come to the count its marker
// states (more or fewer) is damage at its marker, found before any of its records is returned.
TEST_F(WalTest, AGroupWhoseRecordCountIsNotItsMarkersIsDamage) {
  const std::string bytes = sealed_first_segment_of_a_log();
  const fs::path first = dir_ / segment_file_name(1);
  const std::uint64_t events_before = 4 * test::groups_in(bytes).size();
  for (const std::uint32_t stated : {1u, 3u}) {
    std::string group;
    const std::size_t marker = begin_group(group, events_before + 1);
    append_record(group, events_before + 1, kRecordEvent, payload(1));
    append_record(group, events_before + 2, kRecordEvent, payload(2));
    finish_group(group, marker, stated, test::header_of(bytes));  // two records, `stated` in the marker
    {
      std::ofstream out(first, std::ios::binary | std::ios::trunc);
      out << bytes << group;
    }
    auto log = WriteAheadLog::open(options(1024));
    WalReader reader(log->dir(), log->log_id(), log->oldest());
    std::uint64_t last_read = 0;
    try {
      while (auto r = reader.next(log->durable())) last_read = r->lsn;
      ADD_FAILURE() << "expected WalCorruption for a marker stating " << stated;
    } catch (const WalCorruption& e) {
      EXPECT_EQ(e.file(), first.string());
      EXPECT_EQ(e.offset(), bytes.size());
      EXPECT_NE(std::string(e.what()).find("do not fill its body"), std::string::npos) << e.what();
    }
    EXPECT_EQ(last_read, events_before) << "stated " << stated;  // none of the group's records
  }
}

// A segment ending in half a group whose LSNs the next segment starts with: the stale copy of a
// write that failed and was cut, which a power loss brought back. Salvage returns the next
// segment's records of those LSNs (the acknowledged ones), never the stale ones, and says so.
TEST_F(WalTest, SalvageSkipsAStaleHalfGroupWhoseLsnsTheNextSegmentStartsWith) {
  const std::string bytes = sealed_first_segment_of_a_log();
  const fs::path first = dir_ / segment_file_name(1);
  std::vector<std::string> written;
  for (int k = 0; k < 120; ++k) written.push_back(payload(k));
  const std::uint64_t next_first = 4 * test::groups_in(bytes).size() + 1;
  std::string stale;
  const std::size_t marker = begin_group(stale, next_first);
  for (std::uint64_t k = 0; k < 4; ++k) append_record(stale, next_first + k, kRecordEvent, "stale-" + std::to_string(k));
  finish_group(stale, marker, 4, test::header_of(bytes));
  const std::size_t kept = kGroupMarkerSize + 2 * (kRecordHeaderSize + 7);  // the marker and two whole records
  // As it was written, and with its marker and first record damaged (torn): the salvage of the
  // second would resume at the second stale record.
  for (const bool damaged : {false, true}) {
    std::string tail = stale.substr(0, kept);
    if (damaged) {
      tail[3] = static_cast<char>(tail[3] ^ 0x40);
      tail[kGroupMarkerSize + 20] = static_cast<char>(tail[kGroupMarkerSize + 20] ^ 0x40);
    }
    {
      std::ofstream out(first, std::ios::binary | std::ios::trunc);
      out << bytes << tail;
    }
    std::vector<std::string> salvaged;
    std::vector<SkippedRange> skipped;
    const SalvageCounts counts = salvage_log(
        posix_log_fs(), dir_.string(),
        [&](const Record& r) {
          EXPECT_EQ(r.lsn, salvaged.size() + 1);
          salvaged.push_back(r.payload);
          return true;
        },
        [&](const SkippedRange& r) { skipped.push_back(r); });
    EXPECT_EQ(salvaged, written) << "damaged " << damaged;
    EXPECT_TRUE(skipped.empty()) << "damaged " << damaged;
    EXPECT_EQ(counts.superseded_tails, 1u);
    EXPECT_EQ(counts.superseded_bytes, kept);
  }
}

TEST_F(WalTest, MissingSegmentInTheMiddleIsReported) {
  {
    auto log = WriteAheadLog::open(options(1024));
    for (int i = 0; i < 10; ++i) append(*log, i * 10, 10);
    ASSERT_GT(log->stats().segments, 2u);
  }
  fs::remove(dir_ / segment_file_name(2));
  EXPECT_THROW(WriteAheadLog::open(options(1024)), WalCorruption);
}

// Only a segment file that is not there is "missing" (what tools beside a running daemon take for a
// segment removed meanwhile, and retry); any other failure to open one is damage of its own.
TEST_F(WalTest, ASegmentThatCannotBeOpenedIsNotMissing) {
  Position oldest;
  LogId id{};
  {
    auto log = WriteAheadLog::open(options(1024));
    for (int i = 0; i < 10; ++i) append(*log, i * 10, 10);
    ASSERT_GT(log->stats().segments, 2u);
    oldest = log->oldest();
    id = log->log_id();
  }
  const fs::path second = dir_ / segment_file_name(2);
  fs::remove(second);
  fs::create_symlink(second.filename(), second);  // a loop: open() fails with ELOOP
  const auto read_all_of = [&] {
    WalReader reader(dir_.string(), id, oldest);
    while (reader.next(Position{3, UINT64_MAX, 0, UINT64_MAX})) {
    }
  };
  for (const auto& attempt : std::vector<std::function<void()>>{[&] { read_segment_header(posix_log_fs(), dir_.string(), 2); }, read_all_of}) {
    try {
      attempt();
      ADD_FAILURE() << "no error";
    } catch (const WalCorruption& e) {
      EXPECT_EQ(e.file(), second.string());
      EXPECT_FALSE(e.segment_missing()) << e.what();
      EXPECT_TRUE(e.unreadable()) << "the system's refusal, not damage: " << e.what();
      EXPECT_NE(e.problem().find("cannot open segment"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("cannot read write-ahead log file"), std::string::npos) << e.what();
    }
  }
  fs::remove(second);
  try {
    read_all_of();
    ADD_FAILURE() << "no error";
  } catch (const WalCorruption& e) {
    EXPECT_TRUE(e.segment_missing()) << e.what();
    EXPECT_FALSE(e.unreadable()) << e.what();
  }
}

TEST_F(WalTest, LeftoverTemporarySegmentIsRemoved) {
  {
    auto log = WriteAheadLog::open(options());
    append(*log, 0, 2);
  }
  { std::ofstream(dir_ / (segment_file_name(2) + ".tmp")) << "half a header"; }
  auto log = WriteAheadLog::open(options());
  EXPECT_FALSE(fs::exists(dir_ / (segment_file_name(2) + ".tmp")));
  EXPECT_EQ(log->durable().lsn, 2u);
}

TEST_F(WalTest, SegmentsOfAnotherLogAreRefused) {
  { WriteAheadLog::open(options()); }
  const fs::path other = fs::temp_directory_path() / ("pm_wal_other_" + std::to_string(::getpid()));
  fs::remove_all(other);
  {
    Options o = options(1024);
    o.dir = other.string();
    auto log = WriteAheadLog::open(o);
    for (int i = 0; i < 10; ++i) append(*log, i * 10, 10);
  }
  fs::copy_file(other / segment_file_name(2), dir_ / segment_file_name(2));
  fs::remove_all(other);
  EXPECT_THROW(WriteAheadLog::open(options()), WalCorruption);
}

}  // namespace
}  // namespace pm::wal
