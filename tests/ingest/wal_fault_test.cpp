// The write-ahead log under injected faults (tests/support/fault_fs.h): torn and damaged last
// groups, fdatasync / write / directory fsync failures, ENOSPC and EDQUOT, damage inside the
// synced prefix (with checksums fixed up), the directory lock, the ceiling, format 1 and 2 logs,
// group markers forged by producers.
#include <gtest/gtest.h>

#include <barrier>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

#include "repos/util/crc32c.h"
#include "ingest/archive/segment_chain.h"
#include "ingest/log/wal.h"
#include "ingest/log/wal_newer_format.h"
#include "ingest/log/wal_reader.h"
#include "ingest/log/wal_salvage.h"
#include "ingest/log/wal_scan.h"
#include "tests/support/fault_fs.h"
#include "tests/support/process.h"
#include "tests/support/sync_gate_fs.h"
#include "tests/support/forwarding_log_fs.h"
#include "tests/support/wal_groups.h"

namespace pm::wal {
namespace {

using test::FaultFs;
using test::FaultRule;
using test::FsOp;
using test::PowerLossMode;

const std::string kDir = "/log";

// A LogFs over another whose files report `extra` bytes more than they hold, as if each had been
// cut after a reader took its size (a roll cutting a segment's zeros while pm-ingestctl scans it).
class CutWhileScannedFs final : public ForwardingLogFs {
 public:
  CutWhileScannedFs(LogFs& fs, std::uint64_t extra) : ForwardingLogFs(fs), extra_(extra) {}

 protected:
  std::unique_ptr<LogFile> wrap(std::unique_ptr<LogFile> file) override { return std::make_unique<LongerFile>(std::move(file), extra_); }

 private:
  class LongerFile final : public ForwardingLogFile {
   public:
    LongerFile(std::unique_ptr<LogFile> file, std::uint64_t extra) : ForwardingLogFile(std::move(file)), extra_(extra) {}
    std::error_code size(std::uint64_t& out) override {
      const std::error_code ec = ForwardingLogFile::size(out);
      out += extra_;
      return ec;
    }

   private:
    std::uint64_t extra_;
  };
  std::uint64_t extra_;
};

// A LogFs over another whose listing leaves one name out, as a readdir failing part way did
// (PosixLogFs took its null for the directory's end and listed what it had read).
class ListingMissesFs : public ForwardingLogFs {
 public:
  ListingMissesFs(LogFs& fs, std::string missed) : ForwardingLogFs(fs), missed_(std::move(missed)) {}
  std::error_code list(const std::string& dir, std::vector<std::string>& names) override {
    const std::error_code ec = ForwardingLogFs::list(dir, names);
    std::erase(names, missed_);
    return ec;
  }

 private:
  std::string missed_;
};

// ListingMissesFs with LogFs's own rename_new (a look, then a rename), as PosixLogFs uses it on a
// file system without renameat2's RENAME_NOREPLACE.
class ListingMissesWithoutNoReplaceFs final : public ListingMissesFs {
 public:
  using ListingMissesFs::ListingMissesFs;
  std::error_code rename_new(const std::string& from, const std::string& to) override { return LogFs::rename_new(from, to); }
};

// A LogFs over another whose directory listing fails (readdir's EIO on a damaged directory block).
class ListingFailsFs final : public ForwardingLogFs {
 public:
  using ForwardingLogFs::ForwardingLogFs;
  std::error_code list(const std::string&, std::vector<std::string>& names) override {
    names = {"partial"};
    return errno_code(EIO);
  }
};

// A LogFs over another that runs out of memory creating a new segment file.
class OutOfMemoryOnNewSegmentFs final : public ForwardingLogFs {
 public:
  using ForwardingLogFs::ForwardingLogFs;
  std::error_code open(const std::string& path, OpenMode mode, std::unique_ptr<LogFile>& out) override {
    if (path.ends_with(".wal.tmp")) throw std::bad_alloc();
    return ForwardingLogFs::open(path, mode, out);
  }
};

class WalFaultTest : public ::testing::Test {
 protected:
  void expect_a_roll_keeps_the_missed_segment_3(LogFs& listing);  // below, with its tests
  Options options(std::uint64_t segment_bytes = 64ull << 20) {
    Options o;
    o.dir = kDir;
    o.fs = &fs_;
    o.segment_bytes = segment_bytes;
    o.on_warning = [this](const std::string& w) { warnings_.push_back(w); };
    o.on_recovery = [this](const RecoveryFinding& f) { findings_.push_back(f); };
    o.on_fatal = [this](const std::string& m) { fatals_.push_back(m); };
    return o;
  }

  static std::string payload(int i) { return "event-" + std::to_string(i) + std::string(static_cast<std::size_t>(i % 50), '#'); }

  AppendStatus append(WriteAheadLog& log, int from, int count, std::vector<Appended>* out = nullptr) {
    std::vector<std::string> payloads;
    for (int i = from; i < from + count; ++i) payloads.push_back(payload(i));
    std::vector<Appended> appended;
    const AppendStatus status = log.append(payloads, appended);
    if (out != nullptr) out->insert(out->end(), appended.begin(), appended.end());
    return status;
  }

  std::vector<std::string> read_all(WriteAheadLog& log) {
    WalReader reader(log.dir(), log.log_id(), log.oldest(), fs_);
    std::vector<std::string> out;
    while (auto r = reader.next(log.durable())) out.push_back(r->payload);
    return out;
  }

  std::string segment(std::uint64_t n) const { return kDir + "/" + segment_file_name(n); }

  // Rewrites one record in place with a changed payload byte and its checksum fixed up, so only
  // the group's body checksum can tell.
  void flip_with_fixed_crc(std::uint64_t segment_no, std::uint64_t record_offset) {
    std::string bytes = fs_.contents(segment(segment_no));
    const RecordHeader h = decode_record_header(bytes.data() + record_offset);
    bytes[record_offset + kRecordHeaderSize + h.length / 2] ^= 0x20;
    const std::uint32_t crc = crc32c::mask(crc32c::value(bytes.data() + record_offset + 4, kRecordHeaderSize - 4 + h.length));
    std::memcpy(bytes.data() + record_offset, &crc, 4);
    fs_.put(segment(segment_no), bytes);
  }

  FaultFs fs_{42};
  std::vector<std::string> warnings_;
  std::vector<RecoveryFinding> findings_;
  std::vector<std::string> fatals_;
};

TEST_F(WalFaultTest, ZeroedPageInsideTheLastGroupIsATornTailNotCorruption) {
  std::uint64_t first_group_end = 0;
  {
    auto log = WriteAheadLog::open(options());
    ASSERT_EQ(append(*log, 0, 5), AppendStatus::Ok);
    first_group_end = log->durable().offset;
    ASSERT_EQ(append(*log, 5, 400), AppendStatus::Ok);  // one group over several pages
  }
  // What a power loss leaves of a last group whose fdatasync never returned: one page of zeros
  // with valid records on both sides of it.
  std::string bytes = fs_.contents(segment(1));
  ASSERT_GT(bytes.size(), first_group_end + 3 * 4096);
  const std::size_t page = (first_group_end / 4096 + 1) * 4096;
  std::memset(bytes.data() + page, 0, 4096);
  fs_.put(segment(1), bytes);

  // The operator tools see what recovery will do, without doing it.
  const LogExtent seen = inspect_log(kDir, fs_);
  EXPECT_EQ(seen.tail, TailState::Torn);
  ASSERT_EQ(seen.pending_recovery.size(), 1u);
  EXPECT_EQ(seen.pending_recovery[0].bytes, bytes.size() - first_group_end);
  EXPECT_EQ(fs_.contents(segment(1)), bytes);

  auto log = WriteAheadLog::open(options());
  EXPECT_EQ(log->durable().lsn, 5u);
  EXPECT_EQ(log->durable().offset, first_group_end);
  ASSERT_EQ(findings_.size(), 1u);
  EXPECT_EQ(findings_[0].kind, RecoveryFinding::Kind::TornTailCut);
  EXPECT_EQ(findings_[0].offset, first_group_end);
  EXPECT_EQ(findings_[0].bytes, bytes.size() - first_group_end);
  EXPECT_EQ(fs_.contents(segment(1)).size(), first_group_end);
  EXPECT_EQ(read_all(*log).size(), 5u);
  EXPECT_EQ(append(*log, 5, 1), AppendStatus::Ok);
  EXPECT_EQ(log->durable().lsn, 6u);
}

TEST_F(WalFaultTest, ChangedPayloadWithFixedUpChecksumInsideTheSyncedPrefixStopsRecovery) {
  std::vector<Appended> a;
  {
    auto log = WriteAheadLog::open(options());
    for (int i = 0; i < 6; ++i) ASSERT_EQ(append(*log, i * 3, 3, &a), AppendStatus::Ok);  // six groups
  }
  const std::uint64_t group3 = a[5].end.offset;  // the third group's marker
  flip_with_fixed_crc(1, group3 + kGroupMarkerSize);
  try {
    WriteAheadLog::open(options());
    FAIL() << "damage inside the synced prefix was not detected";
  } catch (const WalCorruption& e) {
    EXPECT_EQ(e.offset(), group3);
    EXPECT_EQ(e.file(), segment(1));
    EXPECT_NE(std::string(e.what()).find("group checksum mismatch"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("synced and acknowledged"), std::string::npos) << e.what();
  }
}

TEST_F(WalFaultTest, ChangedLengthWithFixedUpChecksumIsFoundInTheSyncedPrefixAndCutInTheLastGroup) {
  std::vector<Appended> a;
  {
    auto log = WriteAheadLog::open(options());
    for (int i = 0; i < 3; ++i) ASSERT_EQ(append(*log, i * 2, 2, &a), AppendStatus::Ok);
  }
  const std::string pristine = fs_.contents(segment(1));
  // A record one byte shorter than written, its own checksum recomputed over the shorter record.
  auto shorten = [&](std::uint64_t record_offset) {
    std::string bytes = pristine;
    std::uint32_t length;
    std::memcpy(&length, bytes.data() + record_offset + 4, 4);
    length -= 1;
    std::memcpy(bytes.data() + record_offset + 4, &length, 4);
    const std::uint32_t crc = crc32c::mask(crc32c::value(bytes.data() + record_offset + 4, kRecordHeaderSize - 4 + length));
    std::memcpy(bytes.data() + record_offset, &crc, 4);
    fs_.put(segment(1), bytes);
  };
  shorten(a[1].end.offset + kGroupMarkerSize);  // first record of the second group
  EXPECT_THROW(WriteAheadLog::open(options()), WalCorruption);

  shorten(a[3].end.offset + kGroupMarkerSize);  // first record of the last group: never acknowledged
  auto log = WriteAheadLog::open(options());
  EXPECT_EQ(log->durable().lsn, 4u);
  ASSERT_EQ(findings_.size(), 1u);
  EXPECT_EQ(findings_[0].kind, RecoveryFinding::Kind::TornTailCut);
}

TEST_F(WalFaultTest, FailedFdatasyncAcknowledgesNoneOfTheGroupAndHaltsTheLog) {
  {
    auto log = WriteAheadLog::open(options());
    ASSERT_EQ(append(*log, 0, 3), AppendStatus::Ok);
    fs_.add_fault(FaultRule{FsOp::Sync, 1, 1, EIO, ".wal"});
    constexpr int kProducers = 8;
    std::barrier start(kProducers);
    std::vector<AppendStatus> status(kProducers, AppendStatus::Ok);
    std::vector<std::thread> producers;
    for (int p = 0; p < kProducers; ++p)
      producers.emplace_back([&, p] {
        start.arrive_and_wait();
        status[static_cast<std::size_t>(p)] = append(*log, 100 + p * 10, 10);
      });
    for (auto& t : producers) t.join();
    for (int p = 0; p < kProducers; ++p) EXPECT_EQ(status[static_cast<std::size_t>(p)], AppendStatus::IoError) << "producer " << p;
    ASSERT_EQ(fatals_.size(), 1u);
    EXPECT_NE(fatals_[0].find("fdatasync"), std::string::npos);
    EXPECT_TRUE(log->halted());
    EXPECT_EQ(log->durable().lsn, 3u);
    EXPECT_EQ(append(*log, 500, 1), AppendStatus::IoError) << "a halted log accepts nothing";
    fs_.power_loss(PowerLossMode::MixedPages);
  }
  fs_.reboot();
  auto log = WriteAheadLog::open(options());
  EXPECT_EQ(log->durable().lsn, 3u) << "the unsynced group is gone, the synced one is whole";
  EXPECT_EQ(read_all(*log).size(), 3u);
}

TEST(WalFaultDeathTest, FailedFdatasyncExitsWithStatus70ByDefault) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        FaultFs fs(7);
        Options o;
        o.dir = kDir;
        o.fs = &fs;
        auto log = WriteAheadLog::open(o);
        fs.add_fault(FaultRule{FsOp::Sync, 1, 1, EIO, ".wal"});
        std::vector<std::string> payloads{"x"};
        std::vector<Appended> out;
        log->append(payloads, out);
      },
      ::testing::ExitedWithCode(70), "fdatasync");
}

void expect_write_fault_answers_and_resumes(FaultFs& fs, const Options& o, int error, AppendStatus expected) {
  auto log = WriteAheadLog::open(o);
  std::vector<std::string> payloads{std::string(3000, 'a'), std::string(3000, 'b')};
  std::vector<Appended> out;
  ASSERT_EQ(log->append(payloads, out), AppendStatus::Ok);
  const Position before = log->durable();
  fs.add_fault(FaultRule{FsOp::Write, 1, 3, error, ".wal"});
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(log->append(payloads, out), expected);
    EXPECT_TRUE(out.empty());
    EXPECT_EQ(log->durable().lsn, before.lsn);
    EXPECT_EQ(fs.contents(kDir + "/" + segment_file_name(1)).size(), before.offset) << "a partial record stayed in the file";
  }
  ASSERT_EQ(log->append(payloads, out), AppendStatus::Ok) << "appends resume once the fault clears";
  EXPECT_EQ(out.front().lsn, before.lsn + 1);
  log.reset();
  auto reopened = WriteAheadLog::open(o);
  EXPECT_EQ(reopened->durable().lsn, 4u);
}

TEST_F(WalFaultTest, NoSpaceOnWriteAnswersDiskFullLeavesNoPartialRecordAndResumes) {
  expect_write_fault_answers_and_resumes(fs_, options(), ENOSPC, AppendStatus::DiskFull);
  EXPECT_TRUE(fatals_.empty());
}

TEST_F(WalFaultTest, QuotaExceededOnWriteAnswersDiskFull) {
  expect_write_fault_answers_and_resumes(fs_, options(), EDQUOT, AppendStatus::DiskFull);
}

TEST_F(WalFaultTest, IoErrorOnWriteAnswersIoErrorAndResumes) {
  expect_write_fault_answers_and_resumes(fs_, options(), EIO, AppendStatus::IoError);
  EXPECT_TRUE(fatals_.empty());
}

// A write that fails after storing part of a group (ENOSPC) is cut off again. With preallocation,
// the cut segment grows with its appends, so the next group leaves it for the ready spare at once.
// The cut must be synced before that: a truncate is metadata, and a file system that wrote back the
// group's pages but not the truncate brings the segment back with half a group at its end (or, a
// segment started from a spare, with the zeros the cut took). Recovery only scans the newest
// segment, so the damage is found by the reader: WalCorruption (the writer exits, 2), or first the
// whole records of the half group, never acknowledged, under LSNs the log gave to acknowledged
// events after it. Both kinds of segment: one that grew (a new log's first) and one started from a
// spare; every power-loss mode, 8 seeds each.
TEST_F(WalFaultTest, AFailedWriteCutOffBeforeTheNextSegmentStartsIsSyncedFirst) {
  constexpr std::uint64_t kSegment = 64u << 10;  // a spare once a segment holds 16 KiB
  const std::string spare = kDir + "/" + kSpareFileName;
  int damaged = 0, rounds = 0;
  for (const bool grown : {true, false}) {
    for (int m = 0; m < test::kPowerLossModes; ++m) {
      for (std::uint64_t seed = 1; seed <= 8; ++seed) {
        const auto mode = static_cast<PowerLossMode>(m);
        SCOPED_TRACE(std::string(grown ? "grown" : "from a spare") + " segment, " + test::to_string(mode) + ", seed " +
                     std::to_string(seed));
        FaultFs base(seed);
        SyncGateFs fs(base, kSparePartialFileName);  // the test says when the spare becomes ready
        Options o = options(kSegment);
        o.fs = &fs;
        o.preallocate = true;
        o.on_warning = [](const std::string&) {};  // the spare's thread may warn too
        o.on_recovery = {};
        auto spare_ready = [&] { return test::wait_until([&] { return base.exists(spare); }, std::chrono::seconds(20)); };
        int next = 0;
        std::uint64_t cut_segment = 0;
        {
          auto log = WriteAheadLog::open(o);
          auto fill_to_a_quarter = [&] {  // the spare is asked for
            while (log->durable().offset < kSegment / 4) {
              ASSERT_EQ(append(*log, next, 20), AppendStatus::Ok);
              next += 20;
            }
          };
          if (grown) {
            fs.close_gate();  // the spare becomes ready only once the failed write is cut
          } else {
            ASSERT_NO_FATAL_FAILURE(fill_to_a_quarter());
            ASSERT_TRUE(spare_ready());
            ASSERT_EQ(append(*log, next, 20), AppendStatus::Ok);
            next += 20;
            ASSERT_EQ(log->durable().segment, 2u) << "the first segment was not left for the spare";
          }
          ASSERT_NO_FATAL_FAILURE(fill_to_a_quarter());
          // A segment from a spare asks for the next spare at a quarter: its thread writes it now.
          // Once it is ready the thread is idle, and the rule below takes the log's write, not the
          // spare's (it took the spare's under ASan's timing once, and the append succeeded).
          if (!grown) {
            ASSERT_TRUE(spare_ready());
          }
          cut_segment = log->durable().segment;
          const std::uint64_t end = log->durable().offset;
          // The failing write stores half the group first. A segment started from a spare is written
          // through the handle opened as spare.zeros (FaultFs matches the path a handle was opened
          // with), so there the rule takes the next write of any file: the spare is ready, its thread
          // idle. While the gate holds the spare's thread, it may still write, so ".wal" then.
          base.add_fault(FaultRule{FsOp::Write, 1, 1, ENOSPC, grown ? ".wal" : ""});
          ASSERT_EQ(append(*log, 5000, 40), AppendStatus::DiskFull);
          ASSERT_EQ(base.contents(segment(cut_segment)).size(), end) << "the failed write was not cut off";
          fs.open_gate();
          ASSERT_TRUE(spare_ready());
          ASSERT_EQ(append(*log, next, 20), AppendStatus::Ok);
          next += 20;
          ASSERT_EQ(log->durable().segment, cut_segment + 1) << "the group after the cut did not start a new segment";
          base.power_loss(mode);
        }
        base.reboot();
        auto log = WriteAheadLog::open(o);
        ASSERT_EQ(log->durable().lsn, static_cast<std::uint64_t>(next));
        ++rounds;
        // Every acknowledged record, in order; the failed group's records never (the reader checks
        // records, not whether a group is whole: half a group of whole records reads as records).
        std::string problem;
        try {
          WalReader reader(log->dir(), log->log_id(), log->oldest(), base);
          for (int i = 0; problem.empty(); ++i) {
            const std::optional<Record> r = reader.next(log->durable());
            if (!r) {
              if (i != next) problem = "read " + std::to_string(i) + " records of " + std::to_string(next);
              break;
            }
            if (r->payload != payload(i)) problem = "lsn " + std::to_string(r->lsn) + " holds " + r->payload + ", not " + payload(i);
          }
        } catch (const WalCorruption& e) {
          problem = e.what();
        }
        if (!problem.empty()) {
          ++damaged;
          ADD_FAILURE() << "the cut segment came back damaged: " << problem;
        }
        EXPECT_TRUE(fatals_.empty());
      }
    }
  }
  EXPECT_EQ(damaged, 0) << "of " << rounds << " rounds";
}

TEST_F(WalFaultTest, FailedDirectoryFsyncAtRollOverIsFatalAndNothingOfTheGroupIsAcked) {
  std::vector<Appended> acked;
  {
    auto log = WriteAheadLog::open(options(1024));
    while (log->durable().offset < 1024) ASSERT_EQ(append(*log, static_cast<int>(acked.size()), 4, &acked), AppendStatus::Ok);
    fs_.add_fault(FaultRule{FsOp::SyncDir, 1, 1, EIO, ""});
    std::vector<Appended> lost;
    EXPECT_EQ(append(*log, 1000, 4, &lost), AppendStatus::IoError);
    EXPECT_TRUE(lost.empty());
    ASSERT_EQ(fatals_.size(), 1u);
    EXPECT_NE(fatals_[0].find("fsync of log directory"), std::string::npos);
    fs_.power_loss(PowerLossMode::MixedPages);
  }
  fs_.reboot();
  auto log = WriteAheadLog::open(options(1024));
  EXPECT_EQ(log->durable().lsn, acked.back().lsn);
  EXPECT_EQ(read_all(*log).size(), acked.size());
}

// Salvage is for failing disks: a segment whose header cannot be read (EIO) is counted unreadable
// and the later segments are still read; the read error escaped salvage_log, and the command died.
TEST_F(WalFaultTest, SalvageReadsPastASegmentWhoseHeaderReadFails) {
  std::uint64_t records = 0;
  {
    auto log = WriteAheadLog::open(options(1024));
    for (int i = 0; log->durable().segment < 4; i += 4) ASSERT_EQ(append(*log, i, 4), AppendStatus::Ok);
    records = log->durable().lsn;
  }
  fs_.add_fault(FaultRule{FsOp::Read, 2, 1, EIO, segment_file_name(1)});  // the open, then the header's read
  std::uint64_t read = 0;
  std::vector<SkippedRange> skipped;
  const SalvageCounts counts = salvage_log(
      fs_, kDir, [&](const Record&) { return ++read > 0; }, [&](const SkippedRange& s) { skipped.push_back(s); });
  EXPECT_EQ(counts.unreadable_segments, 1u);
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_EQ(skipped[0].file, segment(1));
  EXPECT_NE(skipped[0].problem.find("Input/output error"), std::string::npos) << skipped[0].problem;
  EXPECT_GT(read, 0u);
  EXPECT_LT(read, records);
  EXPECT_EQ(counts.records, read);

  // A read of the body failing: the rest of that segment is a skipped range, the later ones are read.
  fs_.add_fault(FaultRule{FsOp::Read, 3, 1, EIO, segment_file_name(1)});  // the open, the header, the body
  std::uint64_t read_again = 0;
  skipped.clear();
  const SalvageCounts again = salvage_log(
      fs_, kDir, [&](const Record&) { return ++read_again > 0; }, [&](const SkippedRange& s) { skipped.push_back(s); });
  EXPECT_EQ(again.unreadable_segments, 0u);
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_EQ(skipped[0].file, segment(1));
  EXPECT_EQ(skipped[0].from_offset, kSegmentHeaderSize);
  EXPECT_NE(skipped[0].problem.find("Input/output error"), std::string::npos) << skipped[0].problem;
  EXPECT_EQ(read_again, read) << "the segments after it are read";
}

// A sync that fails while the log is opened is WalSyncFailed (the daemon exits 70, as for a sync
// failing while it runs, and is restarted), not a plain std::system_error (exit 1): the newest
// segment's fdatasync, the directory's fsync, and the cut of a torn tail.
TEST_F(WalFaultTest, ASyncThatFailsAtRecoveryIsWalSyncFailed) {
  { auto log = WriteAheadLog::open(options()); ASSERT_EQ(append(*log, 0, 4), AppendStatus::Ok); }
  fs_.add_fault(FaultRule{FsOp::Sync, 1, 1, EIO, ".wal"});
  EXPECT_THROW(WriteAheadLog::open(options()), WalSyncFailed);
  fs_.add_fault(FaultRule{FsOp::SyncDir, 1, 1, EIO, ""});
  EXPECT_THROW(WriteAheadLog::open(options()), WalSyncFailed);
  auto log = WriteAheadLog::open(options());
  EXPECT_EQ(log->durable().lsn, 4u) << "opens once the storage syncs again";
}

// The same for a new log: its state file's and its first segment's fdatasync.
TEST_F(WalFaultTest, ASyncThatFailsWhileANewLogIsCreatedIsWalSyncFailed) {
  fs_.add_fault(FaultRule{FsOp::Sync, 1, 1, EIO, kStateFileName});
  EXPECT_THROW(WriteAheadLog::open(options()), WalSyncFailed);
  fs_.add_fault(FaultRule{FsOp::Sync, 1, 1, EIO, ".wal.tmp"});
  EXPECT_THROW(WriteAheadLog::open(options()), WalSyncFailed);
  EXPECT_EQ(WriteAheadLog::open(options())->durable().lsn, 0u) << "opens once the storage syncs again";
}

// kill -9 (the process dies, the machine and its page cache do not) between creating a segment
// and the directory sync that makes its name durable; the restarted log appends there and
// acknowledges; then the power fails. The segment's name must have been made durable first.
TEST_F(WalFaultTest, ASegmentAKilledProcessCreatedIsMadeDurableBeforeTheRestartedLogAppendsToIt) {
  std::vector<Appended> acked;
  std::uint64_t created = 0;
  {
    auto log = WriteAheadLog::open(options(1024));
    while (log->durable().offset < 1024) ASSERT_EQ(append(*log, static_cast<int>(acked.size()), 4, &acked), AppendStatus::Ok);
    created = log->durable().segment + 1;
    fs_.add_fault(FaultRule{FsOp::SyncDir, 1, 1, EIO, ""});
    ASSERT_EQ(append(*log, 1000, 4), AppendStatus::IoError);
    ASSERT_TRUE(fs_.exists(segment(created))) << "the new segment's name is in the page cache only";
  }
  {
    auto log = WriteAheadLog::open(options(1024));
    ASSERT_EQ(append(*log, 2000, 4, &acked), AppendStatus::Ok);
    ASSERT_EQ(acked.back().end.segment, created) << "the restarted log appends to the segment it found";
    fs_.power_loss(PowerLossMode::DropUnsynced);  // every name not synced into its directory is gone
  }
  fs_.reboot();
  auto log = WriteAheadLog::open(options(1024));
  EXPECT_EQ(log->durable().lsn, acked.back().lsn) << "an acknowledged group was lost with its segment";
  EXPECT_EQ(read_all(*log).size(), acked.size());
}

// kill -9 between a group's write and its fdatasync: the restarted log finds the group whole in
// the page cache and counts it. It must make it durable before it builds on it: here the next
// group starts a new segment, which is synced, and the power fails.
TEST_F(WalFaultTest, AGroupAKilledProcessWroteButDidNotSyncIsSyncedBeforeTheRestartedLogBuildsOnIt) {
  std::uint64_t first_segment = 0;
  {
    auto log = WriteAheadLog::open(options(1024));
    for (int i = 0; log->durable().offset < 900; i += 4) ASSERT_EQ(append(*log, i, 4), AppendStatus::Ok);
    first_segment = log->durable().segment;
    fs_.add_fault(FaultRule{FsOp::Sync, 1, 1, EIO, ".wal"});
    ASSERT_EQ(append(*log, 1000, 40), AppendStatus::IoError) << "written, not synced, never acknowledged";
  }
  std::vector<Appended> acked;
  std::uint64_t found_lsn = 0;
  {
    auto log = WriteAheadLog::open(options(1024));
    found_lsn = log->durable().lsn;
    ASSERT_GE(log->durable().offset, 1024u) << "the restarted log counts the unsynced group";
    ASSERT_EQ(append(*log, 2000, 4, &acked), AppendStatus::Ok);
    ASSERT_EQ(acked.back().end.segment, first_segment + 1);
    fs_.power_loss(PowerLossMode::DropUnsynced);
  }
  fs_.reboot();
  std::unique_ptr<WriteAheadLog> log;
  ASSERT_NO_THROW(log = WriteAheadLog::open(options(1024))) << "a hole below an acknowledged group";
  EXPECT_EQ(log->durable().lsn, acked.back().lsn);
  EXPECT_EQ(read_all(*log).size(), found_lsn + 4);
}

// fdatasync fails and Linux marks the group's pages clean without storing them: the page cache
// shows a whole group the storage never got. The restarted log must read the storage. Counting
// the group from the cache, it would build on it; a power loss (or an eviction) then takes the
// group from under the acknowledged groups written after it.
TEST_F(WalFaultTest, AGroupWhoseWriteBackFailedIsReadFromTheStorageNotThePageCacheAtRecovery) {
  std::vector<Appended> acked;
  {
    auto log = WriteAheadLog::open(options());
    ASSERT_EQ(append(*log, 0, 5, &acked), AppendStatus::Ok);
    FaultRule lost{FsOp::Sync, 1, 1, EIO, ".wal"};
    lost.loses_pages = true;
    fs_.add_fault(lost);
    ASSERT_EQ(append(*log, 5, 400), AppendStatus::IoError) << "a group over several pages, never acknowledged";
    ASSERT_EQ(fatals_.size(), 1u);
    ASSERT_EQ(scan_segment(fs_, segment(1)).valid_end.lsn, 405u) << "the page cache still shows the whole group";
  }
  {
    auto log = WriteAheadLog::open(options());
    EXPECT_EQ(log->durable().lsn, 5u) << "the group the storage never got is not counted";
    ASSERT_EQ(append(*log, 1000, 4, &acked), AppendStatus::Ok);
    fs_.power_loss(PowerLossMode::DropUnsynced);
  }
  fs_.reboot();
  std::unique_ptr<WriteAheadLog> log;
  ASSERT_NO_THROW(log = WriteAheadLog::open(options())) << "damage below an acknowledged group";
  EXPECT_EQ(log->durable().lsn, acked.back().lsn);
  const std::vector<std::string> records = read_all(*log);
  ASSERT_EQ(records.size(), 9u);
  EXPECT_EQ(records[4], payload(4));
  EXPECT_EQ(records[5], payload(1000));
}

// The same for the state file: its fdatasync fails and Linux keeps the new slot cached but never
// stores it. Read from the cache, that slot was taken for the newest, and the next write went over
// the only slot the storage holds: a power loss during that write (its page zeroed, for some
// seeds) left no valid slot, and an intact log refused to start (exit 2).
TEST_F(WalFaultTest, AStateSlotWhoseWriteBackFailedIsNotTakenForTheNewestSoTheNextWriteSparesTheStoredOne) {
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    FaultFs fs(seed);
    Options o = options();
    o.fs = &fs;
    {
      auto log = WriteAheadLog::open(o);
      ASSERT_EQ(append(*log, 0, 10), AppendStatus::Ok);
      FaultRule lost{FsOp::Sync, 1, 1, EIO, "state"};
      lost.loses_pages = true;
      fs.add_fault(lost);
      EXPECT_FALSE(log->persist_applied());
    }
    {
      auto log = WriteAheadLog::open(o);
      ASSERT_EQ(append(*log, 10, 5), AppendStatus::Ok);
      fs.crash_after(2, PowerLossMode::ZeroPages);  // the slot is written, the power fails at its sync
      EXPECT_FALSE(log->persist_applied());
    }
    fs.reboot();
    std::unique_ptr<WriteAheadLog> log;
    ASSERT_NO_THROW(log = WriteAheadLog::open(o)) << "seed " << seed << ": the write damaged the only stored slot";
    EXPECT_EQ(log->durable().lsn, 15u);
  }
}

// A log without a state file (format 1, or a crash while it was created) gets one at recovery. A
// process killed after creating it, before writing it, must not leave an empty one beside the
// records (both copies damaged: exit 2).
TEST_F(WalFaultTest, AProcessKilledWhileTheStateFileIsCreatedBesideRecordsLeavesNoDamagedStateFile) {
  {
    auto log = WriteAheadLog::open(options());
    ASSERT_EQ(append(*log, 0, 10), AppendStatus::Ok);
  }
  ASSERT_FALSE(fs_.remove(kDir + "/state"));
  FaultRule killed{FsOp::Write, 1, 1, EIO, "state"};
  killed.stores_part = false;
  fs_.add_fault(killed);
  EXPECT_THROW(WriteAheadLog::open(options()), std::system_error);
  std::unique_ptr<WriteAheadLog> log;
  ASSERT_NO_THROW(log = WriteAheadLog::open(options())) << "both copies of the state file damaged";
  EXPECT_EQ(log->durable().lsn, 10u);
  EXPECT_FALSE(fs_.exists(kDir + "/state.tmp"));
}

// A state file recovery refuses (both copies damaged beside records, or another log's) is damage to
// the inspection tools too (wal-verify, status): they called such a log ok, and said recovery would
// create the state file, while the daemon refused to start (exit 2).
TEST_F(WalFaultTest, AStateFileRecoveryRefusesIsDamageToTheToolsToo) {
  {
    auto log = WriteAheadLog::open(options());
    ASSERT_EQ(append(*log, 0, 3), AppendStatus::Ok);
  }
  const std::string state_path = kDir + "/state";
  const std::string sound = fs_.contents(state_path);
  ASSERT_EQ(sound.size(), 2 * kStateSlotSize);
  std::string damaged = sound;
  for (const std::size_t slot : {std::size_t{0}, kStateSlotSize}) damaged.replace(slot, 8, "garbage!");
  fs_.put(state_path, damaged);
  EXPECT_THROW(WriteAheadLog::open(options()), WalCorruption);
  try {
    inspect_log(kDir, fs_);
    ADD_FAILURE() << "a log whose state file's copies are both damaged was inspected as sound";
  } catch (const WalCorruption& e) {
    EXPECT_NE(std::string(e.what()).find("both copies of the log's state file are damaged"), std::string::npos) << e.what();
  }

  // Another log's state file.
  const std::string other_dir = "/other";
  {
    Options o = options();
    o.dir = other_dir;
    auto other = WriteAheadLog::open(o);
    ASSERT_EQ(append(*other, 0, 1), AppendStatus::Ok);
  }
  fs_.put(state_path, fs_.contents(other_dir + "/state"));
  EXPECT_THROW(WriteAheadLog::open(options()), WalCorruption);
  try {
    inspect_log(kDir, fs_);
    ADD_FAILURE() << "a log with another log's state file was inspected as sound";
  } catch (const WalCorruption& e) {
    EXPECT_NE(std::string(e.what()).find("the state file belongs to log"), std::string::npos) << e.what();
  }

  fs_.put(state_path, sound);
  EXPECT_NO_THROW(inspect_log(kDir, fs_));
  EXPECT_NO_THROW(WriteAheadLog::open(options()));
}

// The model the test above stands on: a sync that loses its pages leaves them readable, stores
// them with no later sync, and a page written again is stored whole by the next one.
TEST_F(WalFaultTest, AFaultFsSyncThatLosesItsPagesKeepsThemReadableButNeverStoresThem) {
  ASSERT_FALSE(fs_.create_dir(kDir));
  std::unique_ptr<LogFile> file;
  ASSERT_FALSE(fs_.open(kDir + "/f", OpenMode::CreateTruncate, file));
  const std::string first(3 * 4096, 'a');
  ASSERT_FALSE(file->write_at(0, first.data(), first.size()));
  FaultRule lost{FsOp::Sync, 1, 1, EIO, ""};
  lost.loses_pages = true;
  fs_.add_fault(lost);
  ASSERT_EQ(file->sync(), std::errc::io_error);
  EXPECT_EQ(fs_.contents(kDir + "/f"), first) << "still in the page cache";
  ASSERT_FALSE(file->write_at(4096 + 10, "b", 1));  // the middle page is dirty again
  ASSERT_FALSE(file->sync());
  ASSERT_FALSE(file->drop_clean_pages());
  const std::string read_back = fs_.contents(kDir + "/f");
  ASSERT_EQ(read_back.size(), first.size());
  EXPECT_EQ(read_back.substr(0, 4096), std::string(4096, '\0')) << "a lost page reads as the storage holds it";
  EXPECT_EQ(read_back.substr(4096, 10), std::string(10, 'a')) << "a page written again is stored whole";
  EXPECT_EQ(read_back[4096 + 10], 'b');
  EXPECT_EQ(read_back.substr(2 * 4096), std::string(4096, '\0'));
}

// A live segment whose header read fails (EIO) is damage the chain names, skipped with
// skip_damaged: the std::system_error escaped discover(), so `pm-ingestctl replay` stopped (exit 1)
// on one bad block with or without --skip-damaged.
TEST_F(WalFaultTest, AChainSkipsALiveSegmentWhoseHeaderReadFails) {
  std::uint64_t records = 0;
  {
    auto log = WriteAheadLog::open(options(1024));
    for (int i = 0; log->durable().segment < 4; i += 4) ASSERT_EQ(append(*log, i, 4), AppendStatus::Ok);
    records = log->durable().lsn;
  }
  fs_.add_fault(FaultRule{FsOp::Read, 3, 1, EIO, segment_file_name(2)});  // its size's open, the header's open, its read
  archive::SegmentChain chain = archive::SegmentChain::discover(fs_, {kDir});
  std::vector<archive::SkippedRange> skipped;
  chain.start(1, true, [&](const archive::SkippedRange& s) { skipped.push_back(s); });
  std::uint64_t read = 0;
  while (chain.next()) ++read;
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_EQ(skipped[0].file, segment(2));
  EXPECT_NE(skipped[0].problem.find("Input/output error"), std::string::npos) << skipped[0].problem;
  EXPECT_GT(read, 0u);
  EXPECT_LT(read, records);
}

// Any exception in a roll fails the group: it escaped append() with the leader's request still at
// the front of the queue, and every later append waited for ever behind it.
TEST_F(WalFaultTest, AnExceptionInARollFailsTheGroupAndLeavesTheQueue) {
  { auto created = WriteAheadLog::open(options(1024)); }
  OutOfMemoryOnNewSegmentFs oom(fs_);
  Options o = options(1024);
  o.fs = &oom;
  auto log = WriteAheadLog::open(std::move(o));
  AppendStatus status = AppendStatus::Ok;
  for (int i = 0; i < 100 && status == AppendStatus::Ok; ++i) status = append(*log, i * 3, 3);
  EXPECT_EQ(status, AppendStatus::IoError);
  std::promise<AppendStatus> second_status;
  std::future<AppendStatus> second_done = second_status.get_future();
  std::thread second([&, raw = log.get()] { second_status.set_value(append(*raw, 900, 1)); });
  if (second_done.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
    second.detach();
    (void)log.release();  // the hung thread still uses it: a failure, not a hang until ctest's timeout
    FAIL() << "a later append waits for ever behind the failed group";
  }
  second.join();
  EXPECT_EQ(second_done.get(), AppendStatus::IoError);
  ASSERT_FALSE(warnings_.empty());
  EXPECT_NE(warnings_.back().find("cannot start a new log segment"), std::string::npos) << warnings_.back();
}

// An applied segment whose unlink fails (EACCES, EIO) stays the log's oldest: counted in its
// stats, asked for again and removed then. It was forgotten though still on disk (the disk budget
// and segment count undercounted it, the remover took the removal for done until a restart).
TEST_F(WalFaultTest, AnAppliedSegmentThatCannotBeRemovedStaysTheOldestUntilItIs) {
  std::vector<Appended> a;
  auto log = WriteAheadLog::open(options(1024));
  for (int i = 0; i < 30; ++i) ASSERT_EQ(append(*log, i * 4, 4, &a), AppendStatus::Ok);
  const WalStats before = log->stats();
  const Position applied = a[80].end;
  ASSERT_GT(applied.segment, 3u);
  log->note_applied(applied);
  fs_.add_fault(FaultRule{FsOp::Remove, 1, 1, EACCES, segment_file_name(2)});
  log->remove_segments_before(applied.segment);
  EXPECT_FALSE(fs_.exists(segment(1)));
  EXPECT_TRUE(fs_.exists(segment(2)));
  EXPECT_TRUE(fs_.exists(segment(3))) << "nothing after the one kept is removed: no hole";
  EXPECT_EQ(log->oldest().segment, 2u);
  EXPECT_EQ(log->stats().segments, before.segments - 1);
  ASSERT_FALSE(warnings_.empty());
  EXPECT_NE(warnings_.back().find("cannot remove applied segment"), std::string::npos) << warnings_.back();
  const std::size_t warned = warnings_.size();
  fs_.add_fault(FaultRule{FsOp::Remove, 1, 1, EACCES, segment_file_name(2)});
  log->remove_segments_before(applied.segment);  // the same failure again: not warned again
  EXPECT_EQ(warnings_.size(), warned);
  EXPECT_TRUE(fs_.exists(segment(2)));
  log->remove_segments_before(applied.segment);  // asked again: the fault has passed
  EXPECT_FALSE(fs_.exists(segment(2)));
  EXPECT_EQ(log->oldest().segment, applied.segment);
  EXPECT_TRUE(fatals_.empty());
}

// Recovery keeps an applied segment it cannot remove, and the later ones, as the running log does:
// the removal failing threw out of open(), so the daemon restarted in a loop on it.
TEST_F(WalFaultTest, RecoveryKeepsAnAppliedSegmentItCannotRemove) {
  std::vector<Appended> a;
  Position applied;
  {
    auto log = WriteAheadLog::open(options(1024));
    for (int i = 0; i < 30; ++i) ASSERT_EQ(append(*log, i * 4, 4, &a), AppendStatus::Ok);
    applied = a[80].end;
    ASSERT_GT(applied.segment, 3u);
    log->note_applied(applied);
    log->refresh_ceiling();
    fs_.add_fault(FaultRule{FsOp::Remove, 1, UINT64_MAX, EACCES, ""});
    log->remove_segments_before(applied.segment);  // the applied position persisted, nothing removed
    ASSERT_TRUE(fs_.exists(segment(1)));
  }
  fs_.clear_faults();
  fs_.add_fault(FaultRule{FsOp::Remove, 1, UINT64_MAX, EACCES, segment_file_name(2)});
  auto log = WriteAheadLog::open(options(1024));
  EXPECT_FALSE(fs_.exists(segment(1)));
  EXPECT_TRUE(fs_.exists(segment(2)));
  EXPECT_TRUE(fs_.exists(segment(3)));
  EXPECT_EQ(log->oldest().segment, 2u);
  EXPECT_EQ(log->durable().lsn, 120u);
  EXPECT_NE(warnings_.back().find("cannot remove applied segment"), std::string::npos) << warnings_.back();
  fs_.clear_faults();
  log->remove_segments_before(applied.segment);
  EXPECT_FALSE(fs_.exists(segment(2)));
}

TEST_F(WalFaultTest, FailedDirectoryFsyncAfterRemovalLetsSegmentsComeBackAndRecoveryRemovesThem) {
  std::vector<Appended> a;
  {
    auto log = WriteAheadLog::open(options(1024));
    for (int i = 0; i < 30; ++i) ASSERT_EQ(append(*log, i * 4, 4, &a), AppendStatus::Ok);
    ASSERT_GT(log->stats().segments, 4u);
    const Position applied = a[80].end;
    log->note_applied(applied);
    fs_.add_fault(FaultRule{FsOp::SyncDir, 1, 1, EIO, ""});
    log->remove_segments_before(applied.segment);
    EXPECT_TRUE(fatals_.empty()) << "a removal that may not persist is not fatal";
    ASSERT_FALSE(warnings_.empty());
    EXPECT_NE(warnings_.back().find("may bring them back"), std::string::npos);
    fs_.power_loss(PowerLossMode::DropUnsynced);  // every removal is undone
  }
  fs_.reboot();
  ASSERT_TRUE(fs_.exists(segment(1))) << "the power loss brought the removed segments back";
  // And a crash that brought back only some of them leaves a gap below the applied position.
  fs_.put(segment(1), "");
  fs_.remove(segment(1));
  auto log = WriteAheadLog::open(options(1024));
  EXPECT_EQ(log->durable().lsn, 120u);
  EXPECT_FALSE(fs_.exists(segment(2)));
  std::size_t removed = 0;
  for (const auto& f : findings_) removed += f.kind == RecoveryFinding::Kind::AppliedSegmentRemoved;
  EXPECT_GT(removed, 0u);
  EXPECT_EQ(read_all(*log).size(), 120u - log->oldest().lsn);
}

TEST_F(WalFaultTest, ALogThatEndsBelowItsCeilingRefusesToOpen) {
  {
    auto log = WriteAheadLog::open(options());
    ASSERT_EQ(append(*log, 0, 50), AppendStatus::Ok);
    ASSERT_TRUE(log->persist_applied());  // the state file's ceiling: lsn 50 had been synced
    ASSERT_EQ(append(*log, 50, 10), AppendStatus::Ok);
  }
  // The storage loses synced records (restored from an old copy, or cut by hand).
  std::string bytes = fs_.contents(segment(1));
  bytes.resize(kSegmentHeaderSize);
  fs_.put(segment(1), bytes);
  try {
    WriteAheadLog::open(options());
    FAIL() << "a log below its ceiling opened";
  } catch (const WalCorruption& e) {
    EXPECT_NE(std::string(e.what()).find("ends at lsn 0, but records up to lsn 50 had been synced"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("reuse"), std::string::npos) << e.what();
  }
}

TEST_F(WalFaultTest, DamageInTheLastGroupBelowTheCeilingIsCorruptionAndNothingIsCut) {
  {
    auto log = WriteAheadLog::open(options());
    ASSERT_EQ(append(*log, 0, 20), AppendStatus::Ok);  // one group, the last one
    ASSERT_TRUE(log->persist_applied());               // ... synced, and the state file says so
  }
  std::string bytes = fs_.contents(segment(1));
  bytes[kSegmentHeaderSize + kGroupMarkerSize + 40] ^= 0x01;
  fs_.put(segment(1), bytes);
  try {
    WriteAheadLog::open(options());
    FAIL() << "acknowledged records were cut as a torn tail";
  } catch (const WalCorruption& e) {
    EXPECT_EQ(e.offset(), kSegmentHeaderSize);
    EXPECT_NE(std::string(e.what()).find("had been synced"), std::string::npos) << e.what();
  }
  EXPECT_EQ(fs_.contents(segment(1)), bytes) << "recovery changed a log it refused";
  EXPECT_EQ(inspect_log(kDir, fs_).tail, TailState::Corrupt) << "the tools give the same verdict";
}

TEST_F(WalFaultTest, TheAppliedPositionSurvivesARestart) {
  Position applied;
  {
    auto log = WriteAheadLog::open(options());
    std::vector<Appended> a;
    ASSERT_EQ(append(*log, 0, 40, &a), AppendStatus::Ok);
    applied = a[29].end;
    log->note_applied(applied);
    ASSERT_TRUE(log->persist_applied());
  }
  fs_.power_loss(PowerLossMode::MixedPages);
  fs_.reboot();
  auto log = WriteAheadLog::open(options());
  EXPECT_EQ(log->applied_at_open().lsn, applied.lsn);
  EXPECT_EQ(log->applied_at_open().log_offset, applied.log_offset);
}

TEST_F(WalFaultTest, ASecondOpenOfTheDirectoryIsRefused) {
  auto log = WriteAheadLog::open(options());
  try {
    WriteAheadLog::open(options());
    FAIL() << "two logs on one directory";
  } catch (const WalLocked& e) {
    EXPECT_NE(std::string(e.what()).find("in use by another pm-ingestd (pid "), std::string::npos) << e.what();
  }
  log.reset();
  EXPECT_NO_THROW(WriteAheadLog::open(options())) << "the lock goes with the log";
}

// The operator tools scan and salvage segments beside a running daemon, which may cut a segment's
// zeros at a roll while they read: they say the file changed, never read past its end.
TEST_F(WalFaultTest, AScanOrASalvageOfAFileCutWhileItIsReadSaysSoInsteadOfReadingPastItsEnd) {
  {
    auto log = WriteAheadLog::open(options());
    for (int i = 0; i < 10; ++i) ASSERT_EQ(append(*log, i, 1), AppendStatus::Ok);
  }
  for (const std::uint64_t extra : {4ull, 24ull, 4096ull}) {
    CutWhileScannedFs cut(fs_, extra);
    const SegmentScan scan = scan_segment(cut, segment(1));
    EXPECT_EQ(scan.valid_end.lsn, 10u) << extra;
    if (extra >= kGroupMarkerSize) {
      EXPECT_NE(scan.problem.find("changed meanwhile"), std::string::npos) << extra << ": " << scan.problem;
    }
    std::size_t salvaged = 0;
    std::vector<SkippedRange> skipped;
    salvage_log(cut, kDir, [&](const Record&) { return ++salvaged > 0; }, [&](const SkippedRange& r) { skipped.push_back(r); });
    EXPECT_EQ(salvaged, 10u) << extra;
    ASSERT_EQ(skipped.size(), 1u) << extra;
    if (extra >= kRecordHeaderSize) {
      EXPECT_NE(skipped[0].problem.find("changed meanwhile"), std::string::npos) << extra << ": " << skipped[0].problem;
    }
  }
}

// A producer may put any bytes into an event, a valid group marker among them. When the group
// holding it was torn (the last group, cut by a power loss), the search for a later group, which
// tells damage in acknowledged data from a torn tail, began inside that group's own body and took
// the forged marker for a group written after it: "corrupt", and the daemon refused to start (exit
// 2). A later group can only begin after the body its group's valid marker states.
// (Format 3 also keys a marker's checksum by the log id, which no producer sees: the forged marker
// here, computed the only way a producer can, is no marker in a format 3 segment at all.)
TEST_F(WalFaultTest, AMarkerForgedInsideATornGroupIsNotTakenForALaterGroup) {
  const std::string forged = test::unkeyed_group(1ull << 31, {"x"});
  {
    auto log = WriteAheadLog::open(options());
    ASSERT_EQ(append(*log, 0, 3), AppendStatus::Ok);
    const std::vector<std::string> payloads = {"before " + forged + " after"};
    std::vector<Appended> out;
    ASSERT_EQ(log->append(payloads, out), AppendStatus::Ok);
  }
  std::string bytes = fs_.contents(segment(1));
  bytes.back() ^= 0x40;  // the last group's last byte, as a write cut short by a power loss leaves it
  fs_.put(segment(1), bytes);
  const SegmentScan scan = scan_segment(fs_, segment(1));
  EXPECT_EQ(scan.tail, TailState::Torn) << scan.problem << ", a later group at " << scan.later_valid_offset;
  EXPECT_EQ(scan.valid_end.lsn, 3u);
}

// The same forgery when the power loss took the torn group's own marker (its page zero-filled) but
// left the page of the event holding the forged marker: no valid marker states where the torn
// group ends, so the search for a later group runs through its body. In format 2 the forged marker
// (a plain checksum anyone can compute) was taken for a group written after the torn one:
// "corrupt", and the daemon refused to start (exit 2) after a power loss. Format 3 keys a marker's
// checksum by the log id, which producers never see.
TEST_F(WalFaultTest, AMarkerForgedInATornGroupWhoseOwnMarkerIsLostIsNotTakenForALaterGroup) {
  const std::string forged = test::unkeyed_group(4, {"x"});  // the LSN the next group would start at
  {
    auto log = WriteAheadLog::open(options());
    ASSERT_EQ(append(*log, 0, 3), AppendStatus::Ok);
    const std::vector<std::string> payloads = {"before " + forged + " after", payload(4)};
    std::vector<Appended> out;
    ASSERT_EQ(log->append(payloads, out), AppendStatus::Ok);
  }
  std::string bytes = fs_.contents(segment(1));
  ASSERT_EQ(test::header_of(bytes).version, 3u);
  const std::vector<test::GroupSpan> groups = test::groups_in(bytes);
  ASSERT_EQ(groups.size(), 2u);
  const std::size_t torn = groups[1].marker;
  ASSERT_NE(bytes.find(forged, torn), std::string::npos) << "the forged marker lies in the torn group's body";
  std::memset(bytes.data() + torn, 0, kGroupMarkerSize);  // the marker's page lost, the forged marker's page kept
  fs_.put(segment(1), bytes);

  const SegmentScan scan = scan_segment(fs_, segment(1));
  EXPECT_EQ(scan.tail, TailState::Torn) << scan.problem << ", a later group at " << scan.later_valid_offset;
  EXPECT_EQ(scan.valid_end.offset, torn);
  EXPECT_EQ(inspect_log(kDir, fs_).tail, TailState::Torn) << "the tools give the same verdict";

  auto log = WriteAheadLog::open(options());  // the daemon starts by itself
  EXPECT_EQ(log->durable().lsn, 3u);
  ASSERT_EQ(findings_.size(), 1u);
  EXPECT_EQ(findings_[0].kind, RecoveryFinding::Kind::TornTailCut);
  EXPECT_EQ(findings_[0].offset, torn);
  EXPECT_EQ(fs_.contents(segment(1)).size(), torn);
  ASSERT_EQ(append(*log, 10, 1), AppendStatus::Ok);
  EXPECT_EQ(log->durable().lsn, 4u);
  EXPECT_EQ(read_all(*log), (std::vector<std::string>{payload(0), payload(1), payload(2), payload(10)}));
}

// A genuine later group still proves the bad group before it was synced: a group whose marker was
// lost (zeroed) with the log's own keyed groups after it is corruption, found at the first of them.
TEST_F(WalFaultTest, ALostMarkerFollowedByTheLogsOwnGroupsIsCorruption) {
  {
    auto log = WriteAheadLog::open(options());
    for (int i = 0; i < 3; ++i) ASSERT_EQ(append(*log, i * 2, 2), AppendStatus::Ok);
  }
  std::string bytes = fs_.contents(segment(1));
  ASSERT_EQ(test::header_of(bytes).version, 3u);
  const std::vector<test::GroupSpan> groups = test::groups_in(bytes);
  ASSERT_EQ(groups.size(), 3u);
  std::memset(bytes.data() + groups[1].marker, 0, kGroupMarkerSize);
  fs_.put(segment(1), bytes);

  const SegmentScan scan = scan_segment(fs_, segment(1));
  EXPECT_EQ(scan.tail, TailState::Corrupt) << scan.problem;
  EXPECT_EQ(scan.later_valid_offset, groups[2].marker);
  try {
    WriteAheadLog::open(options());
    FAIL() << "damage before a later group was not detected";
  } catch (const WalCorruption& e) {
    EXPECT_EQ(e.offset(), groups[1].marker);
    EXPECT_NE(std::string(e.what()).find("a valid group follows at offset " + std::to_string(groups[2].marker)), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(fs_.contents(segment(1)), bytes) << "recovery changed a log it refused";
}

// A log written in format 2 (markers with the plain checksum) is read as before: a torn last group
// is cut, damage before a later format 2 group is corruption, salvage steps over its markers; and
// it goes on in a new format 3 segment, read together with the old one.
TEST_F(WalFaultTest, AFormatTwoLogIsReadAndContinuedInFormatThree) {
  const LogId id{9, 8, 7};
  const std::string header = encode_segment_header(SegmentHeader{id, 1, 1, 0, 2});
  ASSERT_EQ(header.substr(0, 8), std::string("PMWAL02\n"));
  const std::string synced = header + test::unkeyed_group(1, {payload(0), payload(1)}) + test::unkeyed_group(3, {payload(2)});
  const std::string last = test::unkeyed_group(4, {payload(3), payload(4)});
  ASSERT_EQ(fs_.create_dir(kDir), std::error_code{});

  // Damage in the first group, a format 2 group after it: corruption.
  std::string damaged = synced + last;
  damaged[kSegmentHeaderSize + kGroupMarkerSize + kRecordHeaderSize + 2] ^= 0x01;
  fs_.put(segment(1), damaged);
  EXPECT_EQ(scan_segment(fs_, segment(1)).tail, TailState::Corrupt);
  EXPECT_THROW(WriteAheadLog::open(options()), WalCorruption);

  // The last group torn: cut, and the log goes on in format 3.
  fs_.put(segment(1), synced + last.substr(0, last.size() - 3));
  std::size_t salvaged = 0;
  std::vector<SkippedRange> skipped;
  salvage_log(fs_, kDir, [&](const Record&) { return ++salvaged > 0; }, [&](const SkippedRange& r) { skipped.push_back(r); });
  EXPECT_EQ(salvaged, 4u) << "the torn group's first record is whole";
  EXPECT_EQ(skipped.size(), 1u);
  {
    auto log = WriteAheadLog::open(options());
    EXPECT_EQ(log->log_id(), id);
    EXPECT_EQ(log->durable().lsn, 3u);
    EXPECT_EQ(log->durable().segment, 2u) << "appends go to a new segment in the current format";
    EXPECT_EQ(fs_.contents(segment(1)), synced);
    ASSERT_EQ(append(*log, 3, 2), AppendStatus::Ok);
    EXPECT_EQ(read_all(*log).size(), 5u);
  }
  const std::string second = fs_.contents(segment(2));
  const SegmentHeader h = test::header_of(second);
  EXPECT_EQ(h.version, 3u);
  EXPECT_EQ(second.substr(0, 8), std::string("PMWAL03\n"));
  EXPECT_EQ(h.log_id, id);
  const std::vector<test::GroupSpan> groups = test::groups_in(second);
  ASSERT_EQ(groups.size(), 1u);
  const std::string written = second.substr(groups[0].marker, groups[0].record_ends.back() - groups[0].marker);
  EXPECT_EQ(written, test::group_bytes(h, 4, {payload(3), payload(4)}));
  EXPECT_NE(written, test::unkeyed_group(4, {payload(3), payload(4)})) << "the new segment's marker is keyed";

  auto log = WriteAheadLog::open(options());  // a format 3 newest segment after a format 2 one
  EXPECT_EQ(log->durable().lsn, 5u);
  EXPECT_EQ(log->durable().segment, 2u);
  const std::vector<std::string> all = read_all(*log);
  ASSERT_EQ(all.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(all[static_cast<std::size_t>(i)], payload(i));
  EXPECT_EQ(inspect_log(kDir, fs_).tail, TailState::Clean);
  salvaged = 0;
  skipped.clear();
  salvage_log(fs_, kDir, [&](const Record&) { return ++salvaged > 0; }, [&](const SkippedRange& r) { skipped.push_back(r); });
  EXPECT_EQ(salvaged, 5u);
  EXPECT_TRUE(skipped.empty());
}

// A format 2 newest segment ending in preallocated zeros (clean there): the log goes on in a new
// format 3 segment, and the old one must first lose its zeros, as at every roll. Kept, they were
// read as damage once the segment was no longer the newest (the reader reads a sealed segment to
// its file's end): the writer, the archiver and wal-verify all stopped at them.
TEST_F(WalFaultTest, AFormatTwoSegmentEndingInZerosIsCutToItsRecordsWhenTheLogGoesOnInFormatThree) {
  const LogId id{9, 8, 6};
  const std::string records = encode_segment_header(SegmentHeader{id, 1, 1, 0, 2}) +
                              test::unkeyed_group(1, {payload(0), payload(1)}) + test::unkeyed_group(3, {payload(2)});
  ASSERT_EQ(fs_.create_dir(kDir), std::error_code{});
  fs_.put(segment(1), records + std::string(64 << 10, '\0'));
  ASSERT_EQ(scan_segment(fs_, segment(1)).tail, TailState::Clean) << "zeros after format 2 groups are a clean end";
  {
    auto log = WriteAheadLog::open(options());
    EXPECT_EQ(log->durable().segment, 2u);
    EXPECT_EQ(fs_.contents(segment(1)).size(), records.size()) << "the zeros are cut before the next segment starts";
    ASSERT_EQ(append(*log, 3, 2), AppendStatus::Ok);
    EXPECT_EQ(read_all(*log).size(), 5u);
  }
  fs_.power_loss(PowerLossMode::MixedPages);  // an unsynced cut may come undone
  fs_.reboot();
  EXPECT_TRUE(fs_.contents(segment(1)) == records) << "the cut was synced";
  EXPECT_EQ(inspect_log(kDir, fs_).tail, TailState::Clean);
  std::size_t salvaged = 0;
  std::vector<SkippedRange> skipped;
  salvage_log(fs_, kDir, [&](const Record&) { return ++salvaged > 0; }, [&](const SkippedRange& r) { skipped.push_back(r); });
  EXPECT_EQ(salvaged, 5u);
  EXPECT_TRUE(skipped.empty());
}

// A version 1 segment (as written before group markers: records only) ending in a torn tail: some
// bytes of a record, or zeros (a file system that extended the file before a power loss). Zeros are
// no clean end in version 1, which never preallocated: the segment is cut like any torn tail. (They
// were taken for a preallocated rest and kept; the segment, no longer the newest once appends go to
// segment 2, then read as damage at its zeros, and the writer stopped on it at every start.)
class FormatOneTail : public WalFaultTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(FormatOneTail, AFormatOneLogIsReadAndContinuedInTheCurrentFormat) {
  const LogId id{1, 2, 3};
  std::string bytes = encode_segment_header(SegmentHeader{id, 1, 1, 0, 1});
  for (int i = 0; i < 5; ++i) append_record(bytes, static_cast<std::uint64_t>(i + 1), kRecordEvent, payload(i));
  const std::size_t whole = bytes.size();
  bytes += GetParam() == "zeros" ? std::string(4096, '\0') : std::string(7, '\x5a');
  ASSERT_EQ(fs_.create_dir(kDir), std::error_code{});
  fs_.put(segment(1), bytes);

  auto log = WriteAheadLog::open(options());
  EXPECT_EQ(log->log_id(), id);
  EXPECT_EQ(log->durable().lsn, 5u);
  EXPECT_EQ(log->durable().segment, 2u) << "appends go to a new segment in the current format";
  EXPECT_EQ(fs_.contents(segment(1)).size(), whole);
  ASSERT_EQ(append(*log, 5, 3), AppendStatus::Ok);
  const auto all = read_all(*log);
  ASSERT_EQ(all.size(), 8u);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(all[static_cast<std::size_t>(i)], payload(i));
  SegmentHeader h;
  ASSERT_TRUE(decode_segment_header(fs_.contents(segment(2)).data(), kSegmentHeaderSize, h));
  EXPECT_EQ(h.version, 3u);
}

// The segment after the newest the listing showed exists: recovery refuses to append before it
// (its LSNs would go to new events), naming it; not damage (exit 1: the next start lists again).
TEST_F(WalFaultTest, RecoveryRefusesALogWhoseListingMissedTheNextSegment) {
  {
    auto log = WriteAheadLog::open(options(1024));
    ASSERT_EQ(append(*log, 0, 3), AppendStatus::Ok);
  }
  fs_.put(segment(2), "records of segment 2, acknowledged");
  ListingMissesFs listing(fs_, segment_file_name(2));
  Options o = options(1024);
  o.fs = &listing;
  try {
    WriteAheadLog::open(std::move(o));
    ADD_FAILURE() << "opened";
  } catch (const WalCorruption& e) {
    ADD_FAILURE() << "damage: " << e.what();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(segment(2) + " exists, but the listing of /log ended at segment 1"), std::string::npos)
        << e.what();
  }
}

// A log of segments 1 and 2, and a segment 3 of acknowledged records that `listing` (over fs_)
// misses: two after the newest listed, so recovery's look at the next one passes. The log opened
// through `listing` rolls until it reaches 3: it must keep the file and stop (fatal).
void WalFaultTest::expect_a_roll_keeps_the_missed_segment_3(LogFs& listing) {
  {
    auto log = WriteAheadLog::open(options(1024));
    ASSERT_EQ(append(*log, 0, 3), AppendStatus::Ok);
  }
  const std::string missed = "records of segment 3, acknowledged";
  fs_.put(segment(3), missed);
  Options o = options(1024);
  o.fs = &listing;
  auto log = WriteAheadLog::open(std::move(o));
  AppendStatus status = AppendStatus::Ok;
  for (int i = 0; i < 200 && status == AppendStatus::Ok; ++i) status = append(*log, i * 3, 3);
  EXPECT_EQ(status, AppendStatus::IoError);
  EXPECT_EQ(fs_.contents(segment(3)), missed);
  ASSERT_EQ(fatals_.size(), 1u);
  EXPECT_NE(fatals_[0].find("cannot start log segment 3"), std::string::npos) << fatals_[0];
  EXPECT_NE(fatals_[0].find("exists"), std::string::npos) << fatals_[0];
  EXPECT_EQ(append(*log, 900, 1), AppendStatus::IoError);  // halted
}

// A segment the log's listing missed at recovery is never replaced by a later roll: its records
// were acknowledged. A new segment took its name through a rename over it; the roll now finds the
// name taken (EEXIST), keeps the file and stops the log (fatal: a restart lists again).
TEST_F(WalFaultTest, ARollNeverReplacesASegmentTheListingMissed) {
  ListingMissesFs listing(fs_, segment_file_name(3));
  expect_a_roll_keeps_the_missed_segment_3(listing);
}

// The same through LogFs's own rename_new (the fallback on a file system without
// RENAME_NOREPLACE): the look before the rename finds the name taken.
TEST_F(WalFaultTest, ARollWithoutNoReplaceNeverReplacesASegmentTheListingMissed) {
  ListingMissesWithoutNoReplaceFs listing(fs_, segment_file_name(3));
  expect_a_roll_keeps_the_missed_segment_3(listing);
}

// A listing of the log's directory that fails (EIO from readdir) stops the open, naming the
// directory and the error, and changes nothing on disk: a partial listing would hide segments.
TEST_F(WalFaultTest, RecoveryRefusesToOpenWhenTheDirectoryCannotBeListed) {
  {
    auto log = WriteAheadLog::open(options(1024));
    ASSERT_EQ(append(*log, 0, 3), AppendStatus::Ok);
  }
  const std::vector<std::string> before = fs_.names(kDir);
  const std::string first = fs_.contents(segment(1));
  const std::uint64_t calls = fs_.mutating_calls();
  ListingFailsFs failing(fs_);
  Options o = options(1024);
  o.fs = &failing;
  try {
    WriteAheadLog::open(std::move(o));
    ADD_FAILURE() << "opened";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("list " + kDir), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("Input/output error"), std::string::npos) << e.what();
  }
  EXPECT_EQ(fs_.names(kDir), before);
  EXPECT_EQ(fs_.contents(segment(1)), first);
  EXPECT_EQ(fs_.mutating_calls(), calls) << "the failed open changed the log";
}

// ---- A segment of a newer format (wal_newer_format.h) ----

// What a later pm-ingestd's segment may look like to this build: its magic, then bytes whose
// layout and checksums this build does not know.
std::string newer_segment(char tens = '0', char ones = '4') {
  return std::string("PMWAL") + tens + ones + "\n" + std::string(200, '\x5a');
}

// Expects `fn` to throw WalNewerFormat naming `file` and format 4, not WalCorruption (damage).
template <class Fn>
void expect_newer_format(const std::string& file, Fn&& fn) {
  try {
    fn();
    ADD_FAILURE() << "no error for a segment of a newer format";
  } catch (const WalCorruption& e) {
    ADD_FAILURE() << "called damage: " << e.what();
  } catch (const WalNewerFormat& e) {
    EXPECT_EQ(e.file(), file);
    EXPECT_EQ(e.version(), 4u);
    EXPECT_NE(std::string(e.what()).find(file + " was written by a newer pm-ingestd (log format 4; this build reads log formats 1..3)"),
              std::string::npos)
        << e.what();
  }
}

TEST(NewerFormat, OnlyPmwalAndTwoDigitsAboveTheNewestVersionAndANewlineAreANewerFormat) {
  const auto version = [](const std::string& magic) { return newer_magic_version(magic.data(), magic.size(), "PMWAL", kFormatVersion); };
  EXPECT_EQ(version("PMWAL04\n"), 4u);
  EXPECT_EQ(version("PMWAL10\n...more"), 10u);
  EXPECT_EQ(version("PMWAL99\n"), 99u);
  for (const char* not_newer : {"PMWAL03\n", "PMWAL01\n", "PMWAL00\n", "PMWAL4\n\n", "PMWAL04 ", "PMWALx4\n", "PMWAL0:\n",
                                       "PMARC04\n", "pmwal04\n", "PMWAL04", ""})
    EXPECT_EQ(version(not_newer), 0u) << not_newer;
}

// A log whose only segment a later pm-ingestd wrote: refused as a newer format, not as damage.
TEST_F(WalFaultTest, ALogWhoseOnlySegmentIsOfANewerFormatIsRefusedAsSuchNotAsDamage) {
  ASSERT_EQ(fs_.create_dir(kDir), std::error_code{});
  fs_.put(segment(1), newer_segment());
  expect_newer_format(segment(1), [&] { WriteAheadLog::open(options()); });
  expect_newer_format(segment(1), [&] { scan_segment(fs_, segment(1)); });
  expect_newer_format(segment(1), [&] { inspect_log(kDir, fs_); });
  // Salvage steps over damage, never over a newer format.
  std::vector<SkippedRange> skipped;
  expect_newer_format(segment(1), [&] {
    salvage_log(fs_, kDir, [](const Record&) { return true; }, [&](const SkippedRange& s) { skipped.push_back(s); });
  });
  EXPECT_TRUE(skipped.empty());
  // Even a file too short for this build's header (a newer header may be shorter).
  fs_.put(segment(1), "PMWAL05\n");
  try {
    WriteAheadLog::open(options());
    ADD_FAILURE() << "opened";
  } catch (const WalNewerFormat& e) {
    EXPECT_EQ(e.version(), 5u);
  }
  // Not a newer format: this build's own magic with a bad checksum, or no digits, is damage.
  for (const std::string& damaged : {std::string("PMWAL03\n") + std::string(200, '\x5a'), newer_segment('x', '4')}) {
    fs_.put(segment(1), damaged);
    EXPECT_THROW(WriteAheadLog::open(options()), WalCorruption);
  }
}

// A log a later pm-ingestd went on in its own format (segment 2, after this build's segment 1):
// refused before anything in the directory changes (a leftover .tmp file would have been removed),
// and a chain read with skip_damaged stops there after segment 1's records, skipping nothing (it
// skipped segment 2 whole, "invalid segment header": acknowledged events dropped after a downgrade).
TEST_F(WalFaultTest, ALogANewerVersionWentOnInIsRefusedAndNeverSkipped) {
  std::uint64_t records = 0;
  {
    auto log = WriteAheadLog::open(options());
    ASSERT_EQ(append(*log, 0, 3), AppendStatus::Ok);
    records = log->durable().lsn;
  }
  fs_.put(segment(2), newer_segment());
  fs_.put(segment(3) + ".tmp", "a segment the later version had begun");
  const std::vector<std::string> before = fs_.names(kDir);
  const std::string first = fs_.contents(segment(1));
  const std::uint64_t calls = fs_.mutating_calls();
  expect_newer_format(segment(2), [&] { WriteAheadLog::open(options()); });
  EXPECT_EQ(fs_.names(kDir), before);
  EXPECT_EQ(fs_.contents(segment(1)), first);
  EXPECT_EQ(fs_.mutating_calls(), calls) << "the refused open changed the log";
  expect_newer_format(segment(2), [&] { inspect_log(kDir, fs_); });

  for (const bool skip_damaged : {false, true}) {
    archive::SegmentChain chain = archive::SegmentChain::discover(fs_, {kDir});
    std::vector<archive::SkippedRange> skipped;
    chain.start(1, skip_damaged, [&](const archive::SkippedRange& s) { skipped.push_back(s); });
    std::uint64_t read = 0;
    expect_newer_format(segment(2), [&] {
      while (chain.next()) ++read;
    });
    EXPECT_EQ(read, records) << "segment 1 is read before the chain stops";
    EXPECT_TRUE(skipped.empty()) << skipped.front().problem;
  }
}

// The state file of a later pm-ingestd: its next slot written in a newer state format, the other
// slot still this build's. It was "no valid slot" (damage, once records exist) or, as here, the
// older slot taken for the log's latest state. Refused as a newer format before anything in the
// directory changes, by the daemon's open and the tools' read alike.
TEST_F(WalFaultTest, AStateFileOfANewerFormatIsRefusedAsSuchNotReadFromItsOlderSlot) {
  {
    auto log = WriteAheadLog::open(options());
    ASSERT_EQ(append(*log, 0, 3), AppendStatus::Ok);
  }
  const std::string state = kDir + "/state";
  std::string bytes = fs_.contents(state);
  bytes.resize(std::max<std::size_t>(bytes.size(), 2 * kStateSlotSize), '\0');
  LocalState older;
  ASSERT_EQ(read_state(fs_, state, older), StateRead::Valid);
  // The slot after the valid one this build reads (slot 0's when that is not valid), written whole
  // by the newer build: its checksum is not this format's over the same bytes (no flipped bit).
  const std::size_t newer_slot = bytes.compare(0, 8, "PMWST01\n") == 0 ? kStateSlotSize : 0;
  bytes.replace(newer_slot, kStateSlotSize, "PMWST02\n" + std::string(kStateSlotSize - 8, '\x5a'));
  fs_.put(state, bytes);
  fs_.put(segment(2) + ".tmp", "a segment the later version had begun");
  const std::vector<std::string> before = fs_.names(kDir);
  const std::uint64_t calls = fs_.mutating_calls();
  for (const auto& [what, fn] : std::vector<std::pair<std::string, std::function<void()>>>{
           {"open", [&] { WriteAheadLog::open(options()); }}, {"inspect_log", [&] { inspect_log(kDir, fs_); }}}) {
    try {
      fn();
      ADD_FAILURE() << what << ": no error for a state file of a newer format";
    } catch (const WalNewerFormat& e) {
      EXPECT_EQ(e.file(), state) << what;
      EXPECT_EQ(e.version(), 2u) << what;
      EXPECT_NE(std::string(e.what()).find("(log state format 2; this build reads log state format 1)"), std::string::npos)
          << what << ": " << e.what();
    }
  }
  EXPECT_EQ(fs_.names(kDir), before);
  EXPECT_EQ(fs_.mutating_calls(), calls) << "the refused open changed the log";
}

// A bit flipped in the version digits of this build's own magic is damage, not a newer format:
// with a known magic in its place the header's checksum checks out. A segment "PMWAL03\n" read as
// "PMWAL07\n" was "written by a newer pm-ingestd": every tool refused it, replay --skip-damaged
// and salvage included, with advice to run a version that does not exist.
TEST_F(WalFaultTest, ABitFlippedInAMagicsDigitsIsDamageNotANewerFormat) {
  {
    auto log = WriteAheadLog::open(options());
    ASSERT_EQ(append(*log, 0, 3), AppendStatus::Ok);
  }
  const std::string good = fs_.contents(segment(1));
  ASSERT_EQ(good.compare(0, 8, "PMWAL03\n"), 0);
  std::string flipped = good;
  flipped[6] = '7';  // 0x33 -> 0x37: one bit
  fs_.put(segment(1), flipped);
  EXPECT_THROW(scan_segment(fs_, segment(1)), WalCorruption);
  EXPECT_THROW(inspect_log(kDir, fs_), WalCorruption);
  std::vector<SkippedRange> skipped;
  EXPECT_NO_THROW(salvage_log(fs_, kDir, [](const Record&) { return true; }, [&](const SkippedRange& s) { skipped.push_back(s); }));
  EXPECT_FALSE(skipped.empty()) << "salvage steps over a damaged header";
  fs_.put(segment(1), good);

  const std::string state = kDir + "/state";
  std::string slots = fs_.contents(state);
  slots.resize(std::max<std::size_t>(slots.size(), 2 * kStateSlotSize), '\0');
  const std::size_t valid = slots.compare(0, 8, "PMWST01\n") == 0 ? 0 : kStateSlotSize;
  ASSERT_EQ(slots.compare(valid, 8, "PMWST01\n"), 0);
  slots[valid + 6] = '3';  // 0x31 -> 0x33: one bit
  fs_.put(state, slots);
  LocalState read;
  EXPECT_NO_THROW(read_state(fs_, state, read)) << "a slot with a flipped magic is a damaged slot";
}

INSTANTIATE_TEST_SUITE_P(Tails, FormatOneTail, ::testing::Values(std::string("part_of_a_record"), std::string("zeros")),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
}  // namespace pm::wal
