// Options::preallocate on real files: a thread prepares the next segment's file as zeros, the roll
// renames it into place, recovery reads the zeros after the records as the clean end, and a
// segment is cut to its records before the next one starts.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "ingest/log/log_fs.h"
#include "ingest/log/wal.h"
#include "ingest/log/wal_reader.h"
#include "ingest/log/wal_scan.h"
#include "tests/ingest/wal_dir_test.h"

namespace pm::wal {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class WalPreallocateTest : public WalDirTest {
 protected:
  static std::string payload(int i) { return "event-" + std::to_string(i) + std::string(static_cast<std::size_t>(i % 900), '#'); }

  void append(WriteAheadLog& log, int from, int count) {
    std::vector<std::string> payloads;
    for (int i = from; i < from + count; ++i) payloads.push_back(payload(i));
    std::vector<Appended> out;
    ASSERT_EQ(log.append(payloads, out), AppendStatus::Ok);
  }

  std::vector<std::string> read_all(const WriteAheadLog& log) {
    WalReader reader(log.dir(), log.log_id(), log.oldest());
    std::vector<std::string> out;
    while (auto r = reader.next(log.durable())) out.push_back(r->payload);
    return out;
  }

  void expect_payloads(const WriteAheadLog& log, int count) {
    const std::vector<std::string> got = read_all(log);
    ASSERT_EQ(got.size(), static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) ASSERT_EQ(got[static_cast<std::size_t>(i)], payload(i)) << "record " << i + 1;
  }

  // Every segment but the newest ends with its last record.
  void expect_sealed_segments_hold_no_zeros() {
    const std::vector<fs::path> files = segments();
    ASSERT_GE(files.size(), 3u);
    for (std::size_t i = 0; i + 1 < files.size(); ++i) {
      const SegmentScan scan = scan_segment(posix_log_fs(), files[i].string());
      EXPECT_EQ(scan.tail, TailState::Clean) << files[i];
      EXPECT_EQ(scan.valid_end.offset, fs::file_size(files[i])) << files[i] << " keeps zeros after its records";
    }
  }

  static std::string bytes_of(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

};

// Polls a condition with a deadline (the spare is written on a thread of its own).
template <class Fn>
bool eventually(Fn&& done) {
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

TEST_F(WalPreallocateTest, APreparedFileOfZerosBecomesTheNextSegmentAndTheLogReopensClean) {
  const fs::path spare = dir_ / kSpareFileName;
  int next = 0;
  {
    auto log = WriteAheadLog::open(options(256u << 10, true));
    EXPECT_FALSE(fs::exists(spare)) << "prepared before the first segment was a quarter full";
    while (log->durable().offset < (256u << 10) / 4) {
      append(*log, next, 10);
      next += 10;
    }
    ASSERT_TRUE(eventually([&] { return fs::exists(spare); })) << "no spare was prepared";
    const std::string zeros = bytes_of(spare);
    EXPECT_EQ(zeros.size(), 256u << 10);
    EXPECT_TRUE(std::all_of(zeros.begin(), zeros.end(), [](char c) { return c == 0; }));
    EXPECT_EQ(log->stats().disk_bytes, log->durable().offset + (256u << 10)) << "the disk bytes leave the spare out";
    while (segments().size() < 2) {  // the roll takes the spare
      append(*log, next, 10);
      next += 10;
    }
    const fs::path second = segments().back();
    EXPECT_EQ(fs::file_size(second), 256u << 10) << "the new segment was not the spare";
    EXPECT_LT(log->durable().offset, fs::file_size(second));
    expect_payloads(*log, next);
  }
  auto log = WriteAheadLog::open(options(256u << 10, true));
  EXPECT_TRUE(warnings_.empty()) << warnings_.front();
  EXPECT_EQ(log->durable().lsn, static_cast<std::uint64_t>(next));
  append(*log, next, 10);
  next += 10;
  expect_payloads(*log, next);
}

// A new log's first segment grows with its appends (no spare existed when it started). Once it
// holds kGrowingSegmentSpareBytes, far below a quarter of these 4 MiB segments, a spare is asked
// for, and the first group after the spare is ready starts the next segment from it.
TEST_F(WalPreallocateTest, AGrowingSegmentIsLeftForASpareAsSoonAsOneIsReady) {
  constexpr std::uint64_t kSegment = 4u << 20;
  const fs::path spare = dir_ / kSpareFileName;
  int next = 0;
  {
    auto log = WriteAheadLog::open(options(kSegment, true));
    while (log->durable().offset < kGrowingSegmentSpareBytes) {
      append(*log, next, 10);
      next += 10;
    }
    ASSERT_LT(log->durable().offset, kSegment / 4);
    ASSERT_EQ(segments().size(), 1u);
    ASSERT_TRUE(eventually([&] { return fs::exists(spare); })) << "a growing segment asked for no spare";
    const std::uint64_t first_end = log->durable().offset;
    append(*log, next, 10);
    next += 10;
    const std::vector<fs::path> files = segments();
    ASSERT_EQ(files.size(), 2u) << "the growing segment was not left for the ready spare";
    EXPECT_EQ(fs::file_size(files[0]), first_end) << "the first segment holds its records alone";
    EXPECT_EQ(fs::file_size(files[1]), kSegment) << "the second segment is not the spare";
    EXPECT_FALSE(fs::exists(spare));
    append(*log, next, 10);  // a segment from a spare is kept until it is full
    next += 10;
    EXPECT_EQ(segments().size(), 2u);
    expect_payloads(*log, next);
  }
  auto log = WriteAheadLog::open(options(kSegment, true));
  EXPECT_TRUE(warnings_.empty()) << warnings_.front();
  EXPECT_EQ(log->durable().lsn, static_cast<std::uint64_t>(next));
  expect_payloads(*log, next);
}

TEST_F(WalPreallocateTest, APartialSpareIsRemovedAtOpenAndACompleteOneOfAnotherSizeToo) {
  fs::create_directories(dir_);
  { std::ofstream(dir_ / kSparePartialFileName) << std::string(1000, '\0'); }
  { std::ofstream(dir_ / kSpareFileName) << std::string(1000, '\0'); }
  auto log = WriteAheadLog::open(options(256u << 10, true));
  EXPECT_FALSE(fs::exists(dir_ / kSparePartialFileName));
  EXPECT_FALSE(fs::exists(dir_ / kSpareFileName) && fs::file_size(dir_ / kSpareFileName) == 1000u);
  EXPECT_TRUE(warnings_.empty()) << warnings_.front();
}

// Spare files are removed by SpareSegment's constructor only, which a log without preallocation
// never runs: a spare left by a run with it (and a partial one, as a writer stopped mid-way leaves
// it) stayed for ever, uncounted in stats().disk_bytes. Reopened without preallocation, the log
// removes both, and its disk bytes are all the directory holds but the state file and the lock.
TEST_F(WalPreallocateTest, SpareFilesOfARunWithPreallocationAreRemovedByAnOpenWithout) {
  const fs::path spare = dir_ / kSpareFileName;
  const fs::path partial = dir_ / kSparePartialFileName;
  int next = 0;
  {
    auto log = WriteAheadLog::open(options(256u << 10, true));
    while (log->durable().offset < (256u << 10) / 4) {
      append(*log, next, 10);
      next += 10;
    }
    ASSERT_TRUE(eventually([&] { return fs::exists(spare); })) << "no spare was prepared";
  }
  { std::ofstream(partial) << std::string(1000, '\0'); }
  auto log = WriteAheadLog::open(options(256u << 10, false));
  EXPECT_FALSE(fs::exists(spare));
  EXPECT_FALSE(fs::exists(partial));
  std::uint64_t log_bytes = 0;  // every file but the state file and the lock
  for (const auto& e : fs::directory_iterator(dir_))
    if (e.path().filename() != kStateFileName && e.path().filename() != kLockFileName) log_bytes += fs::file_size(e.path());
  EXPECT_EQ(log->stats().disk_bytes, log_bytes);
  EXPECT_EQ(log->durable().lsn, static_cast<std::uint64_t>(next));
  EXPECT_TRUE(warnings_.empty()) << warnings_.front();
}

TEST_F(WalPreallocateTest, SealedSegmentsEndWithTheirLastRecordWithAndWithoutSpares) {
  int next = 0;
  {
    auto log = WriteAheadLog::open(options(256u << 10, true));
    while (segments().size() < 4) {
      append(*log, next, 20);
      next += 20;
    }
    expect_sealed_segments_hold_no_zeros();
    expect_payloads(*log, next);
  }
  // A log whose segments came from spares, reopened without them: its active segment still ends
  // in zeros, which the next roll cuts.
  auto log = WriteAheadLog::open(options(256u << 10, false));
  const std::size_t before = segments().size();
  while (segments().size() < before + 2) {
    append(*log, next, 20);
    next += 20;
  }
  expect_sealed_segments_hold_no_zeros();
  expect_payloads(*log, next);
  EXPECT_TRUE(warnings_.empty()) << warnings_.front();
}

// Many small groups from several threads, 256 KiB segments started from spares prepared meanwhile:
// every record is read back in order after reopening, and sealed segments hold no zeros.
TEST_F(WalPreallocateTest, ZerosNeverLandOnRecordsUnderConcurrentAppends) {
  constexpr int kThreads = 4;
  constexpr int kGroups = 300;
  std::uint64_t appended = 0;
  {
    auto log = WriteAheadLog::open(options(256u << 10, true));
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&, t] {
        for (int g = 0; g < kGroups; ++g) {
          std::vector<std::string> payloads{"t" + std::to_string(t) + "-" + std::to_string(g) + std::string(static_cast<std::size_t>(100 + g * 7 % 3000), '.')};
          std::vector<Appended> out;
          ASSERT_EQ(log->append(payloads, out), AppendStatus::Ok);
        }
      });
    for (auto& t : threads) t.join();
    appended = log->durable().lsn;
    ASSERT_EQ(appended, static_cast<std::uint64_t>(kThreads * kGroups));
    ASSERT_EQ(read_all(*log).size(), appended);
  }
  auto log = WriteAheadLog::open(options(256u << 10, true));
  EXPECT_TRUE(warnings_.empty()) << warnings_.front();
  EXPECT_EQ(log->durable().lsn, appended);
  const std::vector<std::string> got = read_all(*log);
  ASSERT_EQ(got.size(), appended);
  for (int t = 0; t < kThreads; ++t) {  // each thread's records in its own order
    int expected = 0;
    for (const std::string& p : got) {
      if (p.rfind("t" + std::to_string(t) + "-", 0) != 0) continue;
      EXPECT_EQ(p.substr(0, p.find('.')), "t" + std::to_string(t) + "-" + std::to_string(expected++));
    }
    EXPECT_EQ(expected, kGroups);
  }
  expect_sealed_segments_hold_no_zeros();
}

}  // namespace
}  // namespace pm::wal
