// Options::preallocate on real files: a thread writes zeros ahead of the appends; they never land
// on a record, recovery reads them as the clean end, and a segment is cut to its records before
// the next one starts.
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

namespace pm::wal {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class WalPreallocateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("pm_wal_prealloc_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  Options options(std::uint64_t segment_bytes, bool preallocate) {
    Options o;
    o.dir = dir_.string();
    o.segment_bytes = segment_bytes;
    o.preallocate = preallocate;
    o.on_warning = [this](const std::string& w) { warnings_.push_back(w); };
    o.on_recovery = [this](const RecoveryFinding& f) { warnings_.push_back(describe(f)); };
    o.on_fatal = [](const std::string& m) { FAIL() << "fatal: " << m; };
    return o;
  }

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

  std::vector<fs::path> segments() {
    std::vector<fs::path> files;
    for (auto& e : fs::directory_iterator(dir_))
      if (e.path().extension() == ".wal") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    return files;
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

  fs::path dir_;
  std::vector<std::string> warnings_;
};

// Polls a condition with a deadline (the filler runs on its own thread).
template <class Fn>
bool eventually(Fn&& done) {
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

TEST_F(WalPreallocateTest, ZerosRunAheadOfTheAppendsAndTheLogReopensClean) {
  {
    auto log = WriteAheadLog::open(options(64ull << 20, true));
    for (int g = 0; g < 3; ++g) append(*log, g * 10, 10);
    const fs::path segment = segments().back();
    const std::uint64_t records_end = log->durable().offset;
    ASSERT_TRUE(eventually([&] { return fs::file_size(segment) >= records_end + (4u << 20); }))
        << "no zeros were written ahead: " << fs::file_size(segment) << " bytes";
    const std::string bytes = bytes_of(segment);
    EXPECT_LE(bytes.size(), records_end + (8u << 20) + SegmentZeroFiller::kChunk) << "the zeros ran further ahead than 8 MiB";
    EXPECT_TRUE(std::all_of(bytes.begin() + static_cast<std::ptrdiff_t>(records_end), bytes.end(), [](char c) { return c == 0; }));
    EXPECT_GE(log->stats().disk_bytes, records_end + (4u << 20)) << "the disk bytes leave the zeros out";
    append(*log, 30, 10);
  }
  auto log = WriteAheadLog::open(options(64ull << 20, true));
  EXPECT_TRUE(warnings_.empty()) << warnings_.front();
  EXPECT_EQ(log->durable().lsn, 40u);
  append(*log, 40, 10);
  expect_payloads(*log, 50);
}

TEST_F(WalPreallocateTest, SealedSegmentsEndWithTheirLastRecordWithAndWithoutTheFiller) {
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
  // A log written with zeros ahead, reopened without the filler: its active segment still ends in
  // zeros, which the next roll cuts.
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

// Many small groups from several threads while the filler fills 256 KiB segments as fast as it can:
// a zero write that landed on a record would show as a torn or lost record on reopening.
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
