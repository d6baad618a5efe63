// The archive of applied segments (ingest/archive/): round trip, header fields, damage in every
// part of a file, write faults (tests/support/fault_fs.h), the index and its rebuild, retention,
// and SegmentChain over archive and live directories (gaps, other logs, skip_damaged).
#include <gtest/gtest.h>
#include <zstd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <optional>
#include <thread>

#include "ingest/archive/archive_breaks.h"
#include "ingest/archive/archive_index.h"
#include "ingest/archive/archive_reader.h"
#include "ingest/archive/archive_writer.h"
#include "ingest/archive/damaged_segment.h"
#include "ingest/archive/segment_chain.h"
#include "ingest/events/event_codec.h"
#include "ingest/log/wal.h"
#include "ingest/log/wal_directory.h"
#include "ingest/log/wal_newer_format.h"
#include "ingest/log/wal_reader.h"
#include "ingest/log/wal_scan.h"
#include "ingest/log/wal_state.h"
#include "repos/util/crc32c.h"
#include "tests/support/daemon_harness.h"
#include "tests/support/fault_fs.h"
#include "tests/support/forwarding_log_fs.h"
#include "tests/support/process.h"
#include "tests/support/sync_gate_fs.h"
#include "tests/support/wal_groups.h"

namespace pm::archive {
namespace {

namespace fs = std::filesystem;
using test::FaultFs;
using test::FaultRule;
using test::FsOp;

std::string event_payload(int i) {
  Event e;
  e.received_ms = 1'700'000'000'000 + i * 10;
  if (i % 3 == 2) {
    TriggerEvent t;
    t.token_id = "tok-" + std::to_string(i);
    t.condition_id = "cond";
    t.threshold = 0.5;
    t.trigger_timestamp_ms = e.received_ms;
    e.body = t;
  } else {
    TradeEvent t;
    t.condition_id = "cond";
    t.trade_id = "trade-" + std::to_string(i);
    t.price = 0.25;
    t.size = 10 + i;
    t.side = "BUY";
    t.timestamp_ms = e.received_ms;
    t.raw_json = "{\"trade\":" + std::to_string(i) + "}";
    e.body = t;
  }
  std::string out;
  encode_event(e, out);
  return out;
}

struct Rec {
  std::uint64_t lsn = 0;
  std::uint64_t segment = 0;
  std::string payload;
  int index = 0;  // event_payload(index)
};

// A real log of `events` events in groups of 4, rolled every ~2 KiB; what each segment holds.
struct BuiltLog {
  wal::LogId id{};
  std::vector<Rec> records;
  std::uint64_t newest = 0;
  std::vector<Rec> in(std::uint64_t segment) const {
    std::vector<Rec> out;
    for (const Rec& r : records)
      if (r.segment == segment) out.push_back(r);
    return out;
  }
};

BuiltLog build_log(wal::LogFs& lfs, const std::string& dir, int events) {
  wal::Options o;
  o.dir = dir;
  o.fs = &lfs;
  o.segment_bytes = 2048;
  o.on_fatal = [](const std::string& m) { FAIL() << m; };
  auto log = wal::WriteAheadLog::open(o);
  for (int i = 0; i < events; i += 4) {
    std::vector<std::string> payloads;
    for (int k = i; k < std::min(events, i + 4); ++k) payloads.push_back(event_payload(k));
    std::vector<wal::Appended> out;
    EXPECT_EQ(log->append(payloads, out), wal::AppendStatus::Ok);
  }
  BuiltLog b;
  b.id = log->log_id();
  wal::WalReader reader(dir, b.id, log->oldest(), lfs);
  while (auto r = reader.next(log->durable())) {
    b.records.push_back(Rec{r->lsn, r->start.segment, r->payload, static_cast<int>(r->lsn - 1)});
    b.newest = r->start.segment;
  }
  return b;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

void flip_byte(const std::string& path, std::size_t offset) {
  std::string bytes = read_file(path);
  ASSERT_LT(offset, bytes.size());
  bytes[offset] = static_cast<char>(bytes[offset] ^ 0x40);
  write_file(path, bytes);
}

class ArchiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = test::make_temp_dir("pm_archive_test");
    wal_ = root_ + "/wal";
    arch_ = root_ + "/archive";
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(root_);
  }

  wal::LogFs& pfs() { return wal::posix_log_fs(); }
  std::string archive_path(std::uint64_t segment) const { return arch_ + "/" + archive_file_name(segment); }
  std::string live_path(std::uint64_t segment) const { return wal_ + "/" + wal::segment_file_name(segment); }

  std::string root_, wal_, arch_;
};

TEST(ArchiveFormat, FileNamesAndHeaderRoundTrip) {
  EXPECT_EQ(archive_file_name(1), "0000000000000001.pmarc");
  std::uint64_t seg = 0;
  EXPECT_TRUE(parse_archive_file_name("00000000000000ff.pmarc", seg));
  EXPECT_EQ(seg, 255u);
  EXPECT_FALSE(parse_archive_file_name("00000000000000ff.pmarc.tmp", seg));
  EXPECT_FALSE(parse_archive_file_name("00000000000000ff.wal", seg));
  ArchiveEntry e;
  e.log_id[0] = 7;
  e.segment = 9;
  e.first_lsn = 100;
  e.last_lsn = 120;
  e.first_arrival_ms = -5;
  e.archived_at_ms = 123456789;
  e.trades = 3;
  const std::string h = encode_archive_header(e);
  ASSERT_EQ(h.size(), kArchiveHeaderSize);
  ArchiveEntry back;
  std::string problem;
  ASSERT_TRUE(decode_archive_header(h.data(), h.size(), back, problem)) << problem;
  EXPECT_EQ(back, e);
  std::string bad = h;
  bad[40] ^= 1;
  EXPECT_FALSE(decode_archive_header(bad.data(), bad.size(), back, problem));
  EXPECT_NE(problem.find("checksum"), std::string::npos);
}

TEST_F(ArchiveTest, ArchivedSegmentReadsBackByteIdenticalWithItsFields) {
  const BuiltLog log = build_log(pfs(), wal_, 60);
  ASSERT_GE(log.newest, 3u);
  const ArchiveEntry e = archive_segment(pfs(), wal_, 2, arch_);
  const std::vector<Rec> recs = log.in(2);
  ASSERT_FALSE(recs.empty());
  EXPECT_EQ(e.log_id, log.id);
  EXPECT_EQ(e.segment, 2u);
  EXPECT_EQ(e.segment_version, wal::kFormatVersion);
  EXPECT_EQ(e.first_lsn, recs.front().lsn);
  EXPECT_EQ(e.last_lsn, recs.back().lsn);
  std::uint64_t trades = 0, triggers = 0;
  for (const Rec& r : recs) (r.index % 3 == 2 ? triggers : trades) += 1;
  EXPECT_EQ(e.trades, trades);
  EXPECT_EQ(e.triggers, triggers);
  EXPECT_EQ(e.first_arrival_ms, 1'700'000'000'000 + recs.front().index * 10);
  EXPECT_EQ(e.last_arrival_ms, 1'700'000'000'000 + recs.back().index * 10);
  EXPECT_EQ(e.segment_bytes, fs::file_size(live_path(2)));
  EXPECT_EQ(e.file_bytes, fs::file_size(archive_path(2)));
  EXPECT_GT(e.archived_at_ms, 0);
  const ArchivedSegment back = read_archive(pfs(), archive_path(2));
  EXPECT_EQ(back.entry, e);
  EXPECT_EQ(back.segment_bytes, read_file(live_path(2)));
  EXPECT_EQ(verify_archive(pfs(), archive_path(2)), e);
  EXPECT_TRUE(is_archived(pfs(), arch_, log.id, 2));
  EXPECT_FALSE(is_archived(pfs(), arch_, log.id, 1));
  wal::LogId other = log.id;
  other[0] ^= 1;
  EXPECT_FALSE(is_archived(pfs(), arch_, other, 2));
  EXPECT_EQ(fs::file_size(live_path(2)), e.segment_bytes);  // the live segment is untouched
}

// Told to give up (the archiver's stop), archiving stops before the next chunk of the body and
// leaves nothing: no archive file, no .tmp. A stop waited for the whole segment (tens of seconds at
// level 19), past --shutdown-timeout.
TEST_F(ArchiveTest, AnAbandonedArchivingLeavesNoFile) {
  build_log(pfs(), wal_, 60);
  int asked = 0;
  EXPECT_THROW(archive_segment(pfs(), wal_, 2, arch_, kDefaultCompressionLevel, [&] { return ++asked > 0; }), ArchiveAbandoned);
  EXPECT_EQ(asked, 1);
  EXPECT_FALSE(fs::exists(archive_path(2)));
  EXPECT_FALSE(fs::exists(archive_path(2) + ".tmp"));
  EXPECT_EQ(archive_segment(pfs(), wal_, 2, arch_, kDefaultCompressionLevel, [] { return false; }).segment, 2u);
}

// A flipped byte anywhere is ArchiveDamage naming the file and where.
TEST_F(ArchiveTest, FlippedByteInHeaderBodyOrTrailerIsDamageNamingFileAndOffset) {
  build_log(pfs(), wal_, 30);
  const ArchiveEntry e = archive_segment(pfs(), wal_, 1, arch_);
  const std::string path = archive_path(1);
  const std::string good = read_file(path);
  struct Case {
    std::size_t at;
    std::uint64_t offset;
  };
  const std::size_t n = good.size();
  for (const Case c : {Case{20, 0}, Case{kArchiveHeaderSize + 5, kArchiveHeaderSize}, Case{n - 20, kArchiveHeaderSize},
                       Case{n - 6, kArchiveHeaderSize}, Case{n - 2, n - 4}}) {
    write_file(path, good);
    flip_byte(path, c.at);
    try {
      read_archive(pfs(), path);
      ADD_FAILURE() << "no damage found for a flipped byte at " << c.at;
    } catch (const ArchiveDamage& d) {
      EXPECT_EQ(d.file(), path);
      EXPECT_EQ(d.offset(), c.offset) << "byte " << c.at << ": " << d.what();
    }
    EXPECT_THROW(verify_archive(pfs(), path), ArchiveDamage);
  }
  write_file(path, good.substr(0, n - 3));  // cut short
  EXPECT_THROW(read_archive(pfs(), path), ArchiveDamage);
  EXPECT_FALSE(is_archived(pfs(), arch_, e.log_id, 1));
}

// A record damaged inside a well-formed archive (checksums of the file fixed up) is found only by
// verify_archive's walk through the records.
TEST_F(ArchiveTest, VerifyFindsARecordDamagedInsideAWellFormedArchive) {
  build_log(pfs(), wal_, 30);
  ArchiveEntry e = archive_segment(pfs(), wal_, 1, arch_);
  std::string segment = read_file(live_path(1));
  const std::size_t record = wal::kSegmentHeaderSize + wal::kGroupMarkerSize + wal::kRecordHeaderSize + 3;
  segment[record] ^= 0x10;
  std::string body(ZSTD_compressBound(segment.size()), '\0');
  body.resize(ZSTD_compress(body.data(), body.size(), segment.data(), segment.size(), 1));
  e.file_bytes = kArchiveHeaderSize + body.size() + kArchiveTrailerSize;
  std::string file = encode_archive_header(e) + body;
  const std::uint32_t crc = crc32c::mask(crc32c::value(file.data(), file.size()));
  file.append(reinterpret_cast<const char*>(&crc), 4);
  file.append(kTrailerMagic, 4);
  write_file(archive_path(1), file);
  EXPECT_NO_THROW(read_archive(pfs(), archive_path(1)));
  try {
    verify_archive(pfs(), archive_path(1));
    FAIL() << "damage not found";
  } catch (const ArchiveDamage& d) {
    EXPECT_EQ(d.file(), archive_path(1));
    EXPECT_EQ(d.offset(), kArchiveHeaderSize);
    // The group holding it fails its body checksum: named at the group's segment offset.
    EXPECT_NE(d.problem().find("offset " + std::to_string(wal::kSegmentHeaderSize)), std::string::npos) << d.problem();
  }
}

TEST_F(ArchiveTest, DamagedLiveSegmentIsNotArchived) {
  build_log(pfs(), wal_, 30);
  flip_byte(live_path(1), wal::kSegmentHeaderSize + wal::kGroupMarkerSize + wal::kRecordHeaderSize + 2);
  EXPECT_THROW(archive_segment(pfs(), wal_, 1, arch_), wal::WalCorruption);
  EXPECT_FALSE(fs::exists(archive_path(1)));
}

// A segment file that is not there is reported by summarize_segment() itself as the log's reader
// reports it: WalCorruption whose segment_missing() is true, naming the file (it threw
// std::system_error, and archive_segment() opened the segment beforehand only to say so). Damage
// is not segment_missing().
TEST_F(ArchiveTest, SummarizingASegmentThatIsGoneSaysSegmentMissing) {
  build_log(pfs(), wal_, 30);
  ASSERT_TRUE(fs::exists(live_path(1)));
  ASSERT_FALSE(fs::exists(live_path(99)));
  for (const bool archive : {false, true}) {
    SCOPED_TRACE(archive ? "archive_segment" : "summarize_segment");
    try {
      archive ? static_cast<void>(archive_segment(pfs(), wal_, 99, arch_)) : static_cast<void>(summarize_segment(pfs(), wal_, 99));
      ADD_FAILURE() << "no error for a segment that is not there";
    } catch (const wal::WalCorruption& e) {
      EXPECT_TRUE(e.segment_missing()) << e.what();
      EXPECT_EQ(e.problem().rfind(wal::kSegmentMissing, 0), 0u) << e.problem();
      EXPECT_EQ(e.file(), live_path(99));
      EXPECT_EQ(e.offset(), 0u);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not WalCorruption: " << e.what();
    }
  }
  EXPECT_FALSE(fs::exists(archive_path(99)));
  flip_byte(live_path(1), wal::kSegmentHeaderSize + wal::kGroupMarkerSize + wal::kRecordHeaderSize + 2);
  try {
    summarize_segment(pfs(), wal_, 1);
    ADD_FAILURE() << "damage not reported";
  } catch (const wal::WalCorruption& e) {
    EXPECT_FALSE(e.segment_missing()) << e.what();
  }
}

// A LogFs that records the largest single read and write made through it.
class LargestIoFs : public wal::ForwardingLogFs {
 public:
  using wal::ForwardingLogFs::ForwardingLogFs;
  std::size_t largest_read = 0, largest_write = 0;

 protected:
  class File : public wal::ForwardingLogFile {
   public:
    File(std::unique_ptr<wal::LogFile> inner, LargestIoFs& fs) : wal::ForwardingLogFile(std::move(inner)), fs_(fs) {}
    std::error_code write_at(std::uint64_t offset, const char* data, std::size_t n) override {
      fs_.largest_write = std::max(fs_.largest_write, n);
      return wal::ForwardingLogFile::write_at(offset, data, n);
    }
    std::error_code read_at(std::uint64_t offset, char* data, std::size_t n, std::size_t& got) override {
      fs_.largest_read = std::max(fs_.largest_read, n);
      return wal::ForwardingLogFile::read_at(offset, data, n, got);
    }

   private:
    LargestIoFs& fs_;
  };
  std::unique_ptr<wal::LogFile> wrap(std::unique_ptr<wal::LogFile> file) override {
    return std::make_unique<File>(std::move(file), *this);
  }
};

// A segment is archived a chunk at a time: the memory archiving needs does not grow with
// --wal-segment-bytes (it read the segment whole, then held it compressed and framed: 3-4 times a
// segment, ~14 GiB for a 4 GiB one).
TEST(ArchiveStreaming, ALargeSegmentIsReadAndWrittenAChunkAtATime) {
  FaultFs memory(5);
  wal::Options o;
  o.dir = "/log";
  o.fs = &memory;
  o.segment_bytes = 32u << 20;
  o.on_fatal = [](const std::string& m) { FAIL() << m; };
  auto log = wal::WriteAheadLog::open(o);
  std::vector<std::string> payloads;
  for (int i = 0; i < 64; ++i) payloads.push_back(event_payload(i));
  std::vector<wal::Appended> out;
  while (log->durable().log_offset < (6u << 20)) ASSERT_EQ(log->append(payloads, out), wal::AppendStatus::Ok);
  log.reset();
  const std::uint64_t live_bytes = memory.contents("/log/" + wal::segment_file_name(1)).size();
  ASSERT_GT(live_bytes, 6u << 20);

  LargestIoFs fs(memory);
  const ArchiveEntry e = archive_segment(fs, "/log", 1, "/arch");
  EXPECT_LE(fs.largest_read, 1u << 20);
  EXPECT_LE(fs.largest_write, 1u << 20);
  EXPECT_EQ(e.segment_bytes, live_bytes);
  EXPECT_EQ(e.file_bytes, memory.contents("/arch/" + archive_file_name(1)).size());
  const ArchivedSegment back = read_archive(memory, "/arch/" + archive_file_name(1));
  EXPECT_EQ(back.entry, e);
  EXPECT_EQ(back.segment_bytes, memory.contents("/log/" + wal::segment_file_name(1))) << "not the live segment's bytes";
  EXPECT_EQ(verify_archive(memory, "/arch/" + archive_file_name(1)), e);
}

// archive store-damaged refuses what the daemon would archive itself, and whatever it may not
// take: not the oldest segment (the daemon stops on the oldest), the newest (still appended to),
// one not wholly applied (only the live log holds its events), one already archived.
TEST(StoreDamagedSegment, RefusesWhatItMayNotTakeAndArchivesTheOldestAppliedDamagedOne) {
  FaultFs fs(9);
  const BuiltLog log = build_log(fs, "/log", 60);
  ASSERT_GE(log.newest, 3u);
  const auto refused = [&](std::uint64_t segment) -> std::string {
    try {
      store_damaged_segment(fs, "/log", segment, "/arch");
    } catch (const DamagedSegmentRefused& e) {
      return e.what();
    }
    return "not refused";
  };
  fs.create_dir("/arch");
  EXPECT_NE(refused(1).find("is not wholly applied"), std::string::npos) << refused(1);  // nothing applied yet
  {
    wal::Options o;
    o.dir = "/log";
    o.fs = &fs;
    o.segment_bytes = 2048;
    auto reopened = wal::WriteAheadLog::open(o);
    reopened->note_applied(reopened->durable());
    ASSERT_TRUE(reopened->persist_applied());
  }
  EXPECT_NE(refused(1).find("is not damaged"), std::string::npos) << refused(1);
  EXPECT_NE(refused(2).find("is not the oldest segment"), std::string::npos) << refused(2);
  EXPECT_NE(refused(99).find("there is no"), std::string::npos) << refused(99);
  std::string bytes = fs.contents("/log/" + wal::segment_file_name(1));
  bytes[bytes.size() / 2] ^= 0x40;
  fs.put("/log/" + wal::segment_file_name(1), bytes);
  const StoredDamagedSegment stored = store_damaged_segment(fs, "/log", 1, "/arch");
  EXPECT_EQ(stored.entry.first_lsn, 1u);
  EXPECT_EQ(stored.entry.last_lsn, log.in(2).front().lsn - 1) << "up to where segment 2 begins";
  EXPECT_FALSE(stored.skipped.empty());
  EXPECT_EQ(fs.contents("/arch/" + archive_file_name(1)).size(), stored.entry.file_bytes);
  EXPECT_EQ(ArchiveIndex::read(fs, "/arch").entries(), std::vector<ArchiveEntry>{stored.entry});
  EXPECT_NE(refused(1).find("already holds"), std::string::npos) << refused(1);
  EXPECT_THROW(verify_archive(fs, "/arch/" + archive_file_name(1)), ArchiveDamage) << "the damage is kept, visible";

  FaultFs one(10);
  build_log(one, "/log", 4);  // a single segment: the oldest is the newest
  EXPECT_THROW(
      {
        try {
          store_damaged_segment(one, "/log", 1, "/arch");
        } catch (const DamagedSegmentRefused& e) {
          EXPECT_NE(std::string(e.what()).find("is the newest segment"), std::string::npos) << e.what();
          throw;
        }
      },
      DamagedSegmentRefused);
}

class ArchiveFaultTest : public ::testing::Test {
 protected:
  void SetUp() override { log_ = build_log(fs_, "/log", 40); }
  std::vector<std::string> tmp_files() {
    std::vector<std::string> out;
    for (const std::string& n : fs_.names("/arch"))
      if (n.find(".tmp") != std::string::npos) out.push_back(n);
    return out;
  }
  FaultFs fs_{3};
  BuiltLog log_;
};

TEST_F(ArchiveFaultTest, FailedWriteSyncOrRenameThrowsLeavesNoTmpAndTheRetrySucceeds) {
  const std::string live = "/log/" + wal::segment_file_name(1);
  const std::string before = fs_.contents(live);
  for (const auto& [op, error] : {std::pair{FsOp::Write, ENOSPC}, std::pair{FsOp::Write, EIO}, std::pair{FsOp::Sync, EIO},
                                  std::pair{FsOp::Create, EDQUOT}, std::pair{FsOp::Rename, EIO}}) {
    fs_.add_fault(FaultRule{op, 1, 1, error, "/arch"});
    try {
      archive_segment(fs_, "/log", 1, "/arch");
      ADD_FAILURE() << "no error for fault " << static_cast<int>(op);
    } catch (const ArchiveWriteError& e) {
      EXPECT_EQ(e.code().value(), error);
      EXPECT_EQ(wal::is_disk_full(e.code()), error != EIO);
      EXPECT_NE(std::string(e.what()).find("/arch/0000000000000001.pmarc"), std::string::npos) << e.what();
    }
    fs_.clear_faults();
    EXPECT_TRUE(tmp_files().empty());
    EXPECT_FALSE(fs_.exists("/arch/" + archive_file_name(1)));
    EXPECT_FALSE(is_archived(fs_, "/arch", log_.id, 1));
    EXPECT_EQ(fs_.contents(live), before);
  }
  const ArchiveEntry e = archive_segment(fs_, "/log", 1, "/arch");
  EXPECT_TRUE(is_archived(fs_, "/arch", log_.id, 1));
  EXPECT_EQ(read_archive(fs_, "/arch/" + archive_file_name(1)).segment_bytes, before);
  EXPECT_EQ(e.last_lsn, log_.in(1).back().lsn);
}

TEST_F(ArchiveFaultTest, FailedDirectoryFsyncThrowsAndTheRetrySucceeds) {
  fs_.add_fault(FaultRule{FsOp::SyncDir, 1, 1, EIO, "/arch"});
  EXPECT_THROW(archive_segment(fs_, "/log", 1, "/arch"), ArchiveWriteError);
  EXPECT_TRUE(tmp_files().empty());
  EXPECT_NO_THROW(archive_segment(fs_, "/log", 1, "/arch"));
  EXPECT_TRUE(is_archived(fs_, "/arch", log_.id, 1));
}

TEST_F(ArchiveFaultTest, LeftoverTmpFilesAreRemoved) {
  fs_.create_dir("/arch");
  fs_.put("/arch/" + archive_file_name(1) + ".tmp", "half");
  fs_.put("/arch/index.ndjson.tmp", "{");
  archive_segment(fs_, "/log", 1, "/arch");
  remove_partial_archives(fs_, "/arch");
  EXPECT_TRUE(tmp_files().empty());
  EXPECT_TRUE(is_archived(fs_, "/arch", log_.id, 1));
}

TEST_F(ArchiveFaultTest, IndexWriteFailureLeavesTheListUnchanged) {
  ArchiveIndex index = ArchiveIndex::load(fs_, "/arch");
  index.add(archive_segment(fs_, "/log", 1, "/arch"));
  fs_.add_fault(FaultRule{FsOp::Write, 1, 1, ENOSPC, "index.ndjson"});
  EXPECT_THROW(index.add(archive_segment(fs_, "/log", 2, "/arch")), ArchiveWriteError);
  EXPECT_EQ(index.entries().size(), 1u);
  EXPECT_TRUE(tmp_files().empty());
}

TEST_F(ArchiveFaultTest, RetentionKeepsAFileItCannotDeleteListed) {
  ArchiveIndex index = ArchiveIndex::load(fs_, "/arch");
  index.add(archive_segment(fs_, "/log", 1, "/arch"));
  index.add(archive_segment(fs_, "/log", 2, "/arch"));
  fs_.add_fault(FaultRule{FsOp::Remove, 1, 1, EIO, "/arch"});
  EXPECT_THROW(apply_archive_retention(fs_, index, 1, 0, 0), ArchiveWriteError);
  EXPECT_EQ(index.entries().size(), 2u);
  EXPECT_TRUE(fs_.exists("/arch/" + archive_file_name(1)));
}

TEST_F(ArchiveTest, IndexAddRemoveLoadAndRebuild) {
  build_log(pfs(), wal_, 80);
  {
    ArchiveIndex empty = ArchiveIndex::load(pfs(), arch_);
    EXPECT_TRUE(empty.entries().empty());
  }
  ArchiveIndex index = ArchiveIndex::load(pfs(), arch_);
  std::vector<ArchiveEntry> entries;
  for (std::uint64_t s = 1; s <= 3; ++s) {
    entries.push_back(archive_segment(pfs(), wal_, s, arch_));
    index.add(entries.back());
  }
  index.add(entries.front());  // a listed segment again: its entry replaced, in its place
  EXPECT_EQ(index.entries(), entries);
  // The newest archived again (its file was gone): its entry is the new file's, not the old one's.
  fs::remove(archive_path(3));
  entries.back() = archive_segment(pfs(), wal_, 3, arch_);
  index.add(entries.back());
  EXPECT_EQ(index.entries(), entries);
  const std::string index_path = arch_ + "/" + kIndexFileName;
  EXPECT_EQ(read_file(index_path), ArchiveIndex::render(entries));
  EXPECT_NE(read_file(index_path).find("\"file\":\"0000000000000002.pmarc\""), std::string::npos);
  std::uint64_t total = 0;
  for (const ArchiveEntry& e : entries) total += e.file_bytes;
  EXPECT_EQ(index.total_file_bytes(), total);

  std::vector<std::string> damaged;
  const auto report = [&](const std::string& file, const std::string&) { damaged.push_back(file); };
  EXPECT_EQ(ArchiveIndex::load(pfs(), arch_, report).entries(), entries);  // as written
  fs::remove(index_path);
  EXPECT_EQ(ArchiveIndex::load(pfs(), arch_, report).entries(), entries);  // rebuilt
  EXPECT_EQ(read_file(index_path), ArchiveIndex::render(entries));
  EXPECT_TRUE(damaged.empty());
  write_file(index_path, "{\"segment\":1,\"log_id\":\"zz\"}\nnot json\n");
  EXPECT_EQ(ArchiveIndex::load(pfs(), arch_, report).entries(), entries);
  ASSERT_EQ(damaged.size(), 1u);
  EXPECT_EQ(damaged[0], index_path);
  EXPECT_EQ(read_file(index_path), ArchiveIndex::render(entries));

  // remove() unlists; once the caller deleted the file a load agrees.
  index.remove(1);
  EXPECT_EQ(read_file(index_path), ArchiveIndex::render({entries[1], entries[2]}));
  fs::remove(archive_path(1));
  EXPECT_EQ(ArchiveIndex::load(pfs(), arch_).entries().size(), 2u);
  // A crash between a file and its index line: the files win.
  const ArchiveEntry e4 = archive_segment(pfs(), wal_, 4, arch_);
  EXPECT_EQ(ArchiveIndex::load(pfs(), arch_).entries().back(), e4);
  // A damaged header: reported, not listed, not deleted.
  flip_byte(archive_path(3), 30);
  damaged.clear();
  const ArchiveIndex after = ArchiveIndex::load(pfs(), arch_, report);
  ASSERT_EQ(after.entries().size(), 2u);
  EXPECT_EQ(after.entries()[0].segment, 2u);
  EXPECT_EQ(after.entries()[1].segment, 4u);
  ASSERT_EQ(damaged.size(), 1u);
  EXPECT_EQ(damaged[0], archive_path(3));
  EXPECT_TRUE(fs::exists(archive_path(3)));
}

// An index entry for segment `s` (lsn s*10 .. s*10+9).
ArchiveEntry entry(std::uint64_t s) {
  ArchiveEntry e;
  e.segment = s;
  e.first_lsn = s * 10;
  e.last_lsn = s * 10 + 9;
  return e;
}

// entry(s) holding one trade that arrived (and was archived) at `at_ms`.
ArchiveEntry arrived(std::uint64_t s, std::int64_t at_ms) {
  ArchiveEntry e = entry(s);
  e.trades = 1;
  e.first_arrival_ms = e.last_arrival_ms = e.archived_at_ms = at_ms;
  return e;
}

// Which index entries whose file is gone count as lost (reported, exit 2 in `archive verify`)
// beside a running daemon: those above a listed entry whose file is still there.
TEST(ArchiveIndexLost, BesideARunningDaemonOnlyEntriesAboveAListedFileStillThereCount) {
  const RetentionWindow any = RetentionWindow::AnyOldest;
  const std::vector<ArchiveEntry> listed = {entry(6), entry(7), entry(8), entry(9)};
  EXPECT_TRUE(lost_entries(listed, {6, 7, 8, 9}, any).empty());
  // A crash in retention's midst: the oldest files deleted, still listed.
  EXPECT_TRUE(lost_entries(listed, {8, 9}, any).empty());
  // The newest gone, or one in the middle.
  EXPECT_EQ(lost_entries(listed, {6, 7, 8}, any), std::vector<ArchiveEntry>{entry(9)});
  EXPECT_EQ(lost_entries(listed, {6, 8, 9}, any), std::vector<ArchiveEntry>{entry(7)});
  // An older damaged file (never listed, never taken by retention) is not an older file still there.
  EXPECT_TRUE(lost_entries(listed, {3, 7, 8, 9}, any).empty());
  EXPECT_EQ(lost_entries(listed, {3, 7, 9}, any), std::vector<ArchiveEntry>{entry(8)});
  // None of the listed files is there: retention's leftovers cannot be told from a loss.
  EXPECT_TRUE(lost_entries(listed, {3}, any).empty());
}

// With no daemon writing the directory (its start, a tool while no daemon holds ARCHIVE.LOCK),
// every entry gone but the oldest listed one is lost: retention unlists each file it deletes, so a
// crash leaves at most that one. Files lost from the oldest end (by hand, a partial restore) were
// excused as retention's and dropped from the index at the next start without a word.
TEST(ArchiveIndexLost, WithNoDaemonWritingOnlyTheOldestListedEntryMayBeGone) {
  const RetentionWindow one = RetentionWindow::OneFile;
  const std::vector<ArchiveEntry> listed = {entry(6), entry(7), entry(8), entry(9)};
  EXPECT_TRUE(lost_entries(listed, {6, 7, 8, 9}, one).empty());
  EXPECT_TRUE(lost_entries(listed, {7, 8, 9}, one).empty()) << "a crash between retention's delete and its unlisting";
  EXPECT_EQ(lost_entries(listed, {8, 9}, one), std::vector<ArchiveEntry>{entry(7)});
  EXPECT_EQ(lost_entries(listed, {3, 6, 8}, one), (std::vector<ArchiveEntry>{entry(7), entry(9)}));
  EXPECT_EQ(lost_entries(listed, {}, one), (std::vector<ArchiveEntry>{entry(7), entry(8), entry(9)}));
}

// A listed file gone from the middle was reported by the load that found it, which then saved an
// index without it: at the next start nothing was found (the gauge back to 0, the alert resolved)
// while the gap stayed. Every load reports it now, as a break between its neighbours; retention's
// trim of the oldest end is no gap, at any load.
TEST_F(ArchiveTest, AFileGoneFromTheMiddleIsReportedAtEveryLoadNotOnlyTheFirst) {
  build_log(pfs(), wal_, 80);
  ArchiveIndex index = ArchiveIndex::load(pfs(), arch_);
  for (std::uint64_t s = 1; s <= 4; ++s) index.add(archive_segment(pfs(), wal_, s, arch_));
  std::vector<std::pair<std::string, std::string>> damaged;
  const auto report = [&](const std::string& file, const std::string& problem) { damaged.emplace_back(file, problem); };
  apply_archive_retention(pfs(), index, index.total_file_bytes() - 1, 0, 0);  // the oldest goes
  ASSERT_EQ(index.entries().front().segment, 2u);
  ArchiveIndex::load(pfs(), arch_, report);
  EXPECT_TRUE(damaged.empty()) << "a front trimmed by retention is no gap: " << damaged.front().second;

  fs::remove(archive_path(3));
  for (int load = 1; load <= 3; ++load) {
    damaged.clear();
    ArchiveIndex::load(pfs(), arch_, report);
    ASSERT_EQ(damaged.size(), 1u) << "load " << load;
    EXPECT_EQ(damaged[0].first, archive_path(3)) << "load " << load;
    EXPECT_NE(damaged[0].second.find("missing"), std::string::npos) << damaged[0].second;
  }
  EXPECT_NE(damaged[0].second.find(wal::segment_file_name(3) + ".." + wal::segment_file_name(3)), std::string::npos)
      << damaged[0].second;
  EXPECT_NE(damaged[0].second.find("between " + archive_file_name(2) + " and " + archive_file_name(4)), std::string::npos)
      << damaged[0].second;

  // Accepting the gap: the files before it moved away, the archive begins after it.
  fs::remove(archive_path(2));
  damaged.clear();
  ArchiveIndex::load(pfs(), arch_, report);
  EXPECT_TRUE(damaged.empty()) << damaged.front().second;
}

// archive_breaks: runs of segments no file holds between readable files (a damaged file holds its
// number), and LSNs that do not follow; nothing before the oldest file.
TEST(ArchiveBreaks, RunsOfMissingSegmentsAndLsnsThatDoNotFollow) {
  EXPECT_TRUE(archive_breaks({entry(6), entry(7), entry(8)}, {6, 7, 8}).empty());
  EXPECT_TRUE(archive_breaks({entry(6), entry(8)}, {3, 6, 7, 8}).empty()) << "7 is there, damaged";
  const std::vector<ArchiveBreak> runs = archive_breaks({entry(2), entry(9)}, {2, 5, 9});
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].first_missing, 3u);
  EXPECT_EQ(runs[0].last_missing, 4u);
  EXPECT_EQ(runs[0].reported_segment, 3u);
  EXPECT_EQ(runs[1].first_missing, 6u);
  EXPECT_EQ(runs[1].last_missing, 8u);
  ArchiveEntry off = entry(7);
  off.first_lsn += 1;
  const std::vector<ArchiveBreak> lsns = archive_breaks({entry(6), off}, {6, 7});
  ASSERT_EQ(lsns.size(), 1u);
  EXPECT_EQ(lsns[0].reported_segment, 7u);
  EXPECT_NE(lsns[0].problem.find("starts at lsn 71"), std::string::npos) << lsns[0].problem;
}

// A segment below the newest listed one is listed in its place. add() refused it, and the
// archiver retried it for ever, every later segment waiting behind it in the live log (producers
// busy), after a rare sequence that brings an older segment back: a log-directory fsync failing
// after an unlink, retention removing that segment's archive copy, a power loss restoring N.wal.
TEST_F(ArchiveTest, IndexAddListsASegmentBelowTheNewestInItsPlace) {
  ArchiveIndex index = ArchiveIndex::load(pfs(), arch_);
  index.add(entry(4));
  index.add(entry(5));
  index.add(entry(3));
  const std::vector<ArchiveEntry> sorted = {entry(3), entry(4), entry(5)};
  EXPECT_EQ(index.entries(), sorted);
  EXPECT_EQ(read_file(arch_ + "/" + kIndexFileName), ArchiveIndex::render(sorted));
  ArchiveEntry again = entry(4);  // archived again: the new file's entry replaces the old one
  again.archived_at_ms = 42;
  index.add(again);
  EXPECT_EQ(index.entries(), (std::vector<ArchiveEntry>{entry(3), again, entry(5)}));
}

TEST_F(ArchiveTest, RetentionRemovesOldestFirstOnlyWhatTheLimitsSay) {
  build_log(pfs(), wal_, 100);
  ArchiveIndex index = ArchiveIndex::load(pfs(), arch_);
  std::vector<ArchiveEntry> entries;
  for (std::uint64_t s = 1; s <= 4; ++s) {
    entries.push_back(archive_segment(pfs(), wal_, s, arch_));
    index.add(entries.back());
  }
  EXPECT_TRUE(apply_archive_retention(pfs(), index, 0, 0, 0).empty());  // no limits
  EXPECT_TRUE(apply_archive_retention(pfs(), index, index.total_file_bytes(), 0, 0).empty());
  // By bytes: one byte over removes exactly the oldest.
  auto removed = apply_archive_retention(pfs(), index, index.total_file_bytes() - 1, 0, 0);
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed[0], entries[0]);
  EXPECT_FALSE(fs::exists(archive_path(1)));
  EXPECT_TRUE(fs::exists(archive_path(2)));
  EXPECT_EQ(index.entries().front().segment, 2u);
  // By age: segments whose newest event is older than the limit; the third one is not.
  const std::int64_t now = entries[2].last_arrival_ms + 1000;
  const std::int64_t age = now - entries[2].last_arrival_ms;  // the third is exactly at the limit: kept
  removed = apply_archive_retention(pfs(), index, 0, age, now);
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed[0].segment, 2u);
  EXPECT_EQ(index.entries().size(), 2u);
  EXPECT_EQ(ArchiveIndex::load(pfs(), arch_).entries(), index.entries());
  // Everything, if need be.
  removed = apply_archive_retention(pfs(), index, 1, 0, 0);
  EXPECT_EQ(removed.size(), 2u);
  EXPECT_TRUE(index.entries().empty());
}

// Age retention looked only at the oldest segment's time: one stamped in the future by a clock
// that was ahead (then corrected) stopped it until real time caught up, the archive growing
// meanwhile. A segment's events came before a later one's: it counts as that old, and goes.
TEST_F(ArchiveTest, AnOldestSegmentStampedInTheFutureDoesNotHoldBackAgeRetention) {
  const std::int64_t now = 1'800'000'000'000, day = 86'400'000;
  ArchiveIndex index = ArchiveIndex::load(pfs(), arch_);
  index.add(arrived(1, now + 30 * day));  // the clock a month ahead
  index.add(arrived(2, now - 10 * day));
  index.add(arrived(3, now - 9 * day));
  index.add(arrived(4, now - day / 24));
  const auto removed = apply_archive_retention(pfs(), index, 0, 7 * day, now);
  ASSERT_EQ(removed.size(), 3u);
  EXPECT_EQ(removed.back().segment, 3u);
  ASSERT_EQ(index.entries().size(), 1u);
  EXPECT_EQ(index.entries().front().segment, 4u);
}

// The mirror case: a segment stamped by a clock that was behind (1970 at boot, before NTP) is old
// by its own time only. Giving older segments the earliest later time (as a future stamp does)
// removed every fresh segment archived before it at once.
TEST_F(ArchiveTest, ASegmentStampedInThePastDoesNotAgeTheSegmentsBeforeIt) {
  const std::int64_t now = 1'800'000'000'000, day = 86'400'000;
  ArchiveIndex index = ArchiveIndex::load(pfs(), arch_);
  index.add(arrived(1, now - day / 24));
  index.add(arrived(2, now - day / 48));
  index.add(arrived(3, 1000));  // 1970
  index.add(arrived(4, now - day / 96));
  EXPECT_TRUE(apply_archive_retention(pfs(), index, 0, 7 * day, now).empty());
  EXPECT_EQ(index.entries().size(), 4u);
}

// The daemon archives a segment, applies the limits, then removes it from the live log, which
// removes only what the archive holds: limits that took the segment just archived (a limit below
// one segment, or --archive-max-age behind a backlog) left it in the log for ever, the log only
// growing until every line got `busy`.
TEST_F(ArchiveTest, RetentionNeverRemovesASegmentStillInTheLiveLog) {
  build_log(pfs(), wal_, 100);
  ArchiveIndex index = ArchiveIndex::load(pfs(), arch_);
  for (std::uint64_t s = 1; s <= 4; ++s) index.add(archive_segment(pfs(), wal_, s, arch_));
  const auto removed = apply_archive_retention(pfs(), index, 1, 0, 0, 3);
  ASSERT_EQ(removed.size(), 2u);
  EXPECT_EQ(removed[1].segment, 2u);
  ASSERT_EQ(index.entries().size(), 2u);
  EXPECT_EQ(index.entries().front().segment, 3u);
  EXPECT_TRUE(fs::exists(archive_path(3)));
  EXPECT_TRUE(apply_archive_retention(pfs(), index, 1, 1, 1'000'000'000'000'000, 3).empty());  // by age neither
}

// ---- SegmentChain ----

class ChainTest : public ArchiveTest {
 protected:
  // Segments 1..3 archived; 1 and 2 deleted from the live log, 3 in both.
  void SetUp() override {
    ArchiveTest::SetUp();
    log_ = build_log(pfs(), wal_, 120);
    ASSERT_GE(log_.newest, 5u);
    for (std::uint64_t s = 1; s <= 3; ++s) archive_segment(pfs(), wal_, s, arch_);
    fs::remove(live_path(1));
    fs::remove(live_path(2));
  }

  std::vector<std::uint64_t> read_lsns(SegmentChain& chain, std::uint64_t from, bool skip = false) {
    chain.start(from, skip, [this](const SkippedRange& r) { skipped_.push_back(r); });
    std::vector<std::uint64_t> out;
    while (auto r = chain.next()) {
      EXPECT_EQ(r->payload, log_.records[r->lsn - 1].payload);
      out.push_back(r->lsn);
    }
    return out;
  }

  // A second archive directory holding a copy of the archive file of segment `copy_of`, named as
  // the file of segment `named`; its path.
  std::string second_archive_holding(std::uint64_t copy_of, std::uint64_t named) {
    const std::string second = root_ + "/archive2";
    fs::create_directories(second);
    fs::copy_file(archive_path(copy_of), second + "/" + archive_file_name(named));
    return second;
  }

  static std::vector<std::uint64_t> range(std::uint64_t first, std::uint64_t last) {
    std::vector<std::uint64_t> out;
    for (std::uint64_t l = first; l <= last; ++l) out.push_back(l);
    return out;
  }

  BuiltLog log_;
  std::vector<SkippedRange> skipped_;
};

TEST_F(ChainTest, ArchiveAndLiveDirsYieldEveryEventOnceInOrder) {
  SegmentChain chain = SegmentChain::discover(pfs(), {arch_, wal_});
  EXPECT_EQ(chain.log_id(), log_.id);
  ASSERT_EQ(chain.segments().size(), log_.newest);
  EXPECT_TRUE(chain.segments()[0].archived);
  EXPECT_TRUE(chain.segments()[1].archived);
  EXPECT_FALSE(chain.segments()[2].archived);  // in both: the live file is read
  EXPECT_EQ(chain.segments()[2].path, live_path(3));
  EXPECT_GT(chain.segments()[0].events, 0u);
  EXPECT_TRUE(chain.gaps().empty());
  const std::uint64_t last = log_.records.back().lsn;
  EXPECT_EQ(read_lsns(chain, 0), range(1, last));
  EXPECT_EQ(chain.bytes_done(), chain.total_bytes());
  const std::uint64_t mid = log_.in(4).front().lsn + 1;
  EXPECT_EQ(read_lsns(chain, mid), range(mid, last));
  EXPECT_EQ(read_lsns(chain, 2), range(2, last));
  EXPECT_TRUE(read_lsns(chain, last + 1).empty());
  EXPECT_TRUE(skipped_.empty());
}

TEST_F(ChainTest, TornTailOfTheNewestLiveSegmentIsNotAnError) {
  std::string bytes = read_file(live_path(log_.newest));
  write_file(live_path(log_.newest), bytes + std::string(30, '\x07'));
  SegmentChain chain = SegmentChain::discover(pfs(), {wal_, arch_});
  EXPECT_EQ(read_lsns(chain, 1), range(1, log_.records.back().lsn));
  EXPECT_TRUE(skipped_.empty());
}

TEST_F(ChainTest, LiveSegmentDeletedAfterDiscoveryIsReadFromItsArchive) {
  SegmentChain chain = SegmentChain::discover(pfs(), {arch_, wal_});
  fs::remove(live_path(3));
  EXPECT_EQ(read_lsns(chain, 1), range(1, log_.records.back().lsn));
}

// The daemon archives and deletes a live segment while a replay runs: the copy made after
// discovery is found in the source directories.
TEST_F(ChainTest, LiveSegmentArchivedAndDeletedAfterDiscoveryIsReadFromTheNewCopy) {
  ASSERT_FALSE(fs::exists(archive_path(4)));
  SegmentChain chain = SegmentChain::discover(pfs(), {arch_, wal_});
  archive_segment(pfs(), wal_, 4, arch_);
  fs::remove(live_path(4));
  EXPECT_EQ(read_lsns(chain, 1), range(1, log_.records.back().lsn));
  EXPECT_TRUE(skipped_.empty());
}

// A live segment archived and deleted by the daemon after discovery, its archive not among the
// sources: the replay ended with "read .../N.wal: No such file or directory", true (no damage) but
// no help. It names the removal and the advice now.
TEST_F(ChainTest, ASegmentRemovedAfterDiscoveryWithNoOtherCopyNamesTheRemovalAndTheAdvice) {
  SegmentChain chain = SegmentChain::discover(pfs(), {wal_});
  fs::remove(live_path(4));
  try {
    read_lsns(chain, 0);
    ADD_FAILURE() << "read through a segment that is gone";
  } catch (const std::system_error& e) {
    const std::string what = e.what();
    EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory) << what;
    EXPECT_NE(what.find(live_path(4)), std::string::npos) << what;
    EXPECT_NE(what.find("was removed since the replay began"), std::string::npos) << what;
    EXPECT_NE(what.find("Give the daemon's --archive-dir as a --source too"), std::string::npos) << what;
  }
}

// A file of another segment under the removed one's name is no copy of it (its header says so):
// the removal is named, instead of that file being read in its place.
TEST_F(ChainTest, AFileOfAnotherSegmentUnderTheRemovedOnesNameIsNotTakenForItsCopy) {
  const std::string second = second_archive_holding(2, 1);
  SegmentChain chain = SegmentChain::discover(pfs(), {arch_, second, wal_});
  ASSERT_EQ(chain.segments()[0].path, archive_path(1));
  fs::remove(archive_path(1));
  try {
    read_lsns(chain, 1);
    ADD_FAILURE() << "read through a segment that is gone";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find("was removed since the replay began"), std::string::npos) << e.what();
  }
}

// With skip_damaged too: a removed file is no damage to skip (its events may be safe in the
// daemon's archive, and a skipping run's checkpoint would pass them for good).
TEST_F(ChainTest, ASegmentRemovedAfterDiscoveryIsNotSkippedAsDamage) {
  SegmentChain chain = SegmentChain::discover(pfs(), {wal_});
  fs::remove(live_path(4));
  EXPECT_THROW(read_lsns(chain, 0, /*skip=*/true), std::system_error);
  EXPECT_TRUE(skipped_.empty());
}

// An archive file retention removed after discovery is read from another archive's copy of it.
TEST_F(ChainTest, AnArchiveFileRemovedAfterDiscoveryIsReadFromAnotherSourcesCopy) {
  const std::string second = second_archive_holding(1, 1);
  SegmentChain chain = SegmentChain::discover(pfs(), {arch_, second, wal_});
  ASSERT_EQ(chain.segments()[0].path, archive_path(1));
  fs::remove(archive_path(1));
  EXPECT_EQ(read_lsns(chain, 1), range(1, log_.records.back().lsn));
  EXPECT_TRUE(skipped_.empty());
}

// The daemon archives and deletes a live segment between two of discover()'s listings: listed
// archive first (the README's replay example names the archive first), the segment was in neither
// listing, and the replay stopped on a gap that was not there. Tried before each listing in turn,
// so that any order of the listings that can miss it fails.
class ArchivesBeforeAListing : public wal::ForwardingLogFs {
 public:
  ArchivesBeforeAListing(std::string wal, std::string archive, std::uint64_t segment, int nth)
      : ForwardingLogFs(wal::posix_log_fs()), wal_(std::move(wal)), archive_(std::move(archive)), segment_(segment), nth_(nth) {}
  std::error_code list(const std::string& dir, std::vector<std::string>& names) override {
    if (++listings_ == nth_) {  // the daemon's archiver, just before this listing
      archive_segment(wal::posix_log_fs(), wal_, segment_, archive_);
      fs::remove(wal::segment_path(wal_, segment_));
    }
    return ForwardingLogFs::list(dir, names);
  }
  int listings() const { return listings_; }

 private:
  const std::string wal_, archive_;
  const std::uint64_t segment_;
  const int nth_;
  int listings_ = 0;
};

TEST_F(ChainTest, ASegmentArchivedBetweenTheListingsIsFoundNotAGap) {
  ASSERT_FALSE(fs::exists(archive_path(4)));
  const std::string live4 = read_file(live_path(4));
  int listings = 0;
  for (int nth = 1; nth == 1 || nth <= listings; ++nth) {
    SCOPED_TRACE("archived before listing " + std::to_string(nth));
    write_file(live_path(4), live4);  // as before: live, not archived
    fs::remove(archive_path(4));
    ArchivesBeforeAListing racing(wal_, arch_, 4, nth);
    SegmentChain chain = SegmentChain::discover(racing, {arch_, wal_});
    listings = racing.listings();
    EXPECT_TRUE(chain.gaps().empty());
    skipped_.clear();
    EXPECT_EQ(read_lsns(chain, 1), range(1, log_.records.back().lsn));
    EXPECT_TRUE(skipped_.empty());
  }
  EXPECT_GE(listings, 2);
}

TEST_F(ChainTest, MissingSegmentIsAGapAndDamageUnlessSkipped) {
  fs::remove(archive_path(2));
  SegmentChain chain = SegmentChain::discover(pfs(), {arch_, wal_});
  ASSERT_EQ(chain.gaps().size(), 1u);
  EXPECT_EQ(chain.gaps()[0], std::make_pair(std::uint64_t{2}, std::uint64_t{2}));
  try {
    read_lsns(chain, 1);
    FAIL() << "gap not reported";
  } catch (const ArchiveDamage& d) {
    EXPECT_EQ(d.file(), live_path(3));
    EXPECT_NE(d.problem().find("missing"), std::string::npos) << d.problem();
  }
  // Starting after the gap needs nothing from before it.
  const std::uint64_t first3 = log_.in(3).front().lsn;
  EXPECT_EQ(read_lsns(chain, first3).front(), first3);
  const std::vector<std::uint64_t> got = read_lsns(chain, 1, true);
  const std::vector<Rec> lost = log_.in(2);
  ASSERT_EQ(skipped_.size(), 1u);
  EXPECT_EQ(skipped_[0].first_lsn, lost.front().lsn);
  EXPECT_EQ(skipped_[0].last_lsn, lost.back().lsn);
  EXPECT_EQ(got.size(), log_.records.size() - lost.size());
  EXPECT_TRUE(std::is_sorted(got.begin(), got.end()));
}

TEST_F(ChainTest, SegmentsOfAnotherLogAreRefused) {
  const std::string other = root_ + "/other";
  build_log(pfs(), other, 8);
  try {
    SegmentChain::discover(pfs(), {wal_, other});
    FAIL() << "two logs accepted";
  } catch (const ChainError& e) {
    EXPECT_NE(std::string(e.what()).find(other), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(wal_), std::string::npos) << e.what();
  }
}

TEST_F(ChainTest, DamagedRecordIsSkippedByLsnWithSkipDamaged) {
  // The third event record of segment 4 (live), inside its first group.
  const std::vector<Rec> seg4 = log_.in(4);
  std::string bytes = read_file(live_path(4));
  std::size_t at = wal::kSegmentHeaderSize + wal::kGroupMarkerSize;
  for (int i = 0; i < 2; ++i) at += wal::kRecordHeaderSize + wal::decode_record_header(bytes.data() + at).length;
  flip_byte(live_path(4), at + wal::kRecordHeaderSize + 1);
  const std::uint64_t bad = seg4[2].lsn;
  SegmentChain chain = SegmentChain::discover(pfs(), {arch_, wal_});
  try {
    read_lsns(chain, 1);
    FAIL() << "damage not reported";
  } catch (const wal::WalCorruption& e) {
    EXPECT_EQ(e.file(), live_path(4));
    EXPECT_EQ(e.offset(), at);
  }
  std::vector<std::uint64_t> got = read_lsns(chain, 1, true);
  ASSERT_EQ(skipped_.size(), 1u);
  EXPECT_EQ(skipped_[0].first_lsn, bad);
  EXPECT_EQ(skipped_[0].last_lsn, bad);
  EXPECT_EQ(skipped_[0].file, live_path(4));
  std::vector<std::uint64_t> want = range(1, log_.records.back().lsn);
  want.erase(want.begin() + static_cast<std::ptrdiff_t>(bad - 1));
  EXPECT_EQ(got, want);
}

// A live segment that is not the newest but ends inside its last group, after whole records:
// replay calls it damage at the group's marker and returns none of that group's records; with
// --skip-damaged the salvage decides what of it can be read.
TEST_F(ChainTest, HalfAGroupAtTheEndOfAnOlderLiveSegmentIsDamageNotEvents) {
  const std::string bytes = read_file(live_path(4));
  const std::vector<test::GroupSpan> groups = test::groups_in(bytes);
  ASSERT_GE(groups.size(), 2u);
  ASSERT_EQ(groups.back().record_ends.size(), 4u);
  write_file(live_path(4), bytes.substr(0, groups.back().record_ends[1]));
  const std::vector<Rec> seg4 = log_.in(4);
  const std::uint64_t first_of_cut_group = seg4[seg4.size() - 4].lsn;
  SegmentChain chain = SegmentChain::discover(pfs(), {arch_, wal_});
  chain.start(1, false, [this](const SkippedRange& r) { skipped_.push_back(r); });
  std::uint64_t last_read = 0;
  try {
    while (auto r = chain.next()) last_read = r->lsn;
    FAIL() << "damage not reported";
  } catch (const wal::WalCorruption& e) {
    EXPECT_EQ(e.file(), live_path(4));
    EXPECT_EQ(e.offset(), groups.back().marker);
    EXPECT_NE(std::string(e.what()).find("group cut short"), std::string::npos) << e.what();
  }
  EXPECT_EQ(last_read, first_of_cut_group - 1);
}

// Group `first_lsn`.. of `payloads`, whole ("marker + records"), as the log writes it into the
// segment file `segment_path`.
std::string group_bytes(const std::string& segment_path, std::uint64_t first_lsn, const std::vector<std::string>& payloads) {
  return test::group_bytes(test::header_of(read_file(segment_path)), first_lsn, payloads);
}

// The shape a cut undone by a power loss leaves: segment 4 ends in half a group whose LSNs the
// next segment starts with (its records are the ones acknowledged). Without --skip-damaged it is
// damage at the stale group's marker; with it, the salvage of segment 4 must not hand out the stale
// records, or the next segment's records of the same LSNs would be dropped as read already.
TEST_F(ChainTest, AStaleHalfGroupWhoseLsnsTheNextSegmentStartsWithIsNeverRead) {
  const std::uint64_t next_first = log_.in(5).front().lsn;
  const std::string stale = group_bytes(live_path(4), next_first, {"stale-1", "stale-2", "stale-3", "stale-4"});
  const std::vector<test::GroupSpan> spans = test::groups_in(std::string(wal::kSegmentHeaderSize, '\0') + stale);
  ASSERT_EQ(spans.size(), 1u);
  const std::string bytes = read_file(live_path(4));
  write_file(live_path(4), bytes + stale.substr(0, spans[0].record_ends[1] - wal::kSegmentHeaderSize));
  SegmentChain chain = SegmentChain::discover(pfs(), {arch_, wal_});
  std::uint64_t last_read = 0;
  try {
    chain.start(1, false);
    while (auto r = chain.next()) last_read = r->lsn;
    FAIL() << "damage not reported";
  } catch (const wal::WalCorruption& e) {
    EXPECT_EQ(e.file(), live_path(4));
    EXPECT_EQ(e.offset(), bytes.size());
    EXPECT_NE(std::string(e.what()).find("group cut short"), std::string::npos) << e.what();
  }
  EXPECT_EQ(last_read, next_first - 1);
  // read_lsns() compares every payload with the log's own.
  EXPECT_EQ(read_lsns(chain, 1, true), range(1, log_.records.back().lsn));
  EXPECT_TRUE(skipped_.empty());
  // The stale marker and first record damaged too (torn): salvage resumes at the second stale
  // record; neither it nor the damaged range may stand for the next segment's LSNs.
  std::string torn = bytes + stale.substr(0, spans[0].record_ends[1] - wal::kSegmentHeaderSize);
  torn[bytes.size() + 3] = static_cast<char>(torn[bytes.size() + 3] ^ 0x40);
  torn[bytes.size() + wal::kGroupMarkerSize + 20] = static_cast<char>(torn[bytes.size() + wal::kGroupMarkerSize + 20] ^ 0x40);
  write_file(live_path(4), torn);
  SegmentChain again = SegmentChain::discover(pfs(), {arch_, wal_});
  EXPECT_EQ(read_lsns(again, 1, true), range(1, log_.records.back().lsn));
  EXPECT_TRUE(skipped_.empty());
}

TEST_F(ChainTest, UnreadableArchiveIsSkippedWholeWithTheRangeOfItsHeader) {
  flip_byte(archive_path(2), kArchiveHeaderSize + 10);  // the body: the header still names the range
  SegmentChain chain = SegmentChain::discover(pfs(), {arch_, wal_});
  EXPECT_THROW(read_lsns(chain, 1), ArchiveDamage);
  const std::vector<std::uint64_t> got = read_lsns(chain, 1, true);
  const std::vector<Rec> lost = log_.in(2);
  ASSERT_EQ(skipped_.size(), 1u);
  EXPECT_EQ(skipped_[0].first_lsn, lost.front().lsn);
  EXPECT_EQ(skipped_[0].last_lsn, lost.back().lsn);
  EXPECT_EQ(skipped_[0].file, archive_path(2));
  EXPECT_EQ(got.size(), log_.records.size() - lost.size());

  // A damaged header: the range comes from the neighbours.
  skipped_.clear();
  flip_byte(archive_path(1), 12);
  SegmentChain again = SegmentChain::discover(pfs(), {arch_, wal_});
  EXPECT_FALSE(again.segments()[0].problem.empty());
  const std::vector<std::uint64_t> rest = read_lsns(again, 1, true);
  ASSERT_EQ(skipped_.size(), 2u);
  EXPECT_EQ(skipped_[0].last_lsn, log_.in(1).back().lsn);
  EXPECT_EQ(skipped_[1].first_lsn, lost.front().lsn);
  EXPECT_EQ(rest.front(), log_.in(3).front().lsn);
}

// ---- Files of a newer format (wal_newer_format.h) ----

// `good` (an archive file) as a later pm-ingestd may write it, with what its WalNewerFormat says: in
// a newer archive format ("PMARC02\n", its layout unknown), or in this one holding a segment of a
// newer log format (segment_version 4).
std::vector<std::pair<std::string, std::string>> newer_variants(const std::string& good) {
  std::string newer_file = good;
  newer_file.replace(0, 8, "PMARC02\n");
  // As a newer build would write it: its header checksum over its own magic (with this build's
  // magic in place, the checksum does not check out: not a flipped bit).
  const std::uint32_t crc = crc32c::mask(crc32c::value(newer_file.data(), kArchiveHeaderSize - 4));
  std::memcpy(newer_file.data() + kArchiveHeaderSize - 4, &crc, sizeof crc);
  ArchiveEntry entry;
  std::string problem;
  EXPECT_TRUE(decode_archive_header(good.data(), good.size(), entry, problem)) << problem;
  entry.segment_version = 4;
  std::string newer_segment = good;
  newer_segment.replace(0, kArchiveHeaderSize, encode_archive_header(entry));
  return {{newer_file, "was written by a newer pm-ingestd (archive format 2; this build reads archive format 1)"},
          {newer_segment, "(an archived log segment) was written by a newer pm-ingestd (log format 4; this build reads log formats 1..3)"}};
}

// Expects `fn` to throw wal::WalNewerFormat saying `says` about `path`, not ArchiveDamage.
template <class Fn>
void expect_newer_format(const std::string& path, const std::string& says, Fn&& fn) {
  try {
    fn();
    ADD_FAILURE() << "no error for " << path;
  } catch (const ArchiveDamage& e) {
    ADD_FAILURE() << "called damage: " << e.what();
  } catch (const wal::WalNewerFormat& e) {
    EXPECT_NE(std::string(e.what()).find(path + " " + says), std::string::npos) << e.what();
  }
}

// An archive file of a newer format is no damage: every reader throws WalNewerFormat (they called
// it damage: "bad magic", or a segment header that "does not match"), the index is neither listed
// nor rebuilt without it, and the log keeps a live segment whose archive this build cannot read.
TEST_F(ArchiveTest, AnArchiveFileOfANewerFormatIsNotDamage) {
  const BuiltLog log = build_log(pfs(), wal_, 60);
  archive_segment(pfs(), wal_, 1, arch_);
  ArchiveIndex::load(pfs(), arch_);
  const std::string index_path = arch_ + "/" + kIndexFileName;
  const std::string index_before = read_file(index_path);
  const std::string path = archive_path(1);
  for (const auto& [bytes, says] : newer_variants(read_file(path))) {
    write_file(path, bytes);
    expect_newer_format(path, says, [&] { read_archive(pfs(), path); });
    expect_newer_format(path, says, [&] { verify_archive(pfs(), path); });
    expect_newer_format(path, says, [&] {
      ArchiveEntry e;
      std::string problem;
      read_archive_header(pfs(), path, e, problem);
    });
    expect_newer_format(path, says, [&] { ArchiveIndex::read(pfs(), arch_); });
    expect_newer_format(path, says, [&] { ArchiveIndex::load(pfs(), arch_); });
    EXPECT_EQ(read_file(index_path), index_before) << "the index was rebuilt without it";
    EXPECT_FALSE(is_archived(pfs(), arch_, log.id, 1));
  }
}

// A bit flipped in the version digits of this build's magic ("PMARC01\n" read as "PMARC03\n") is
// damage, not a newer format: with this build's magic in place the header's checksum checks out.
// Called a newer format, one such file in an old archive stopped the daemon's start (exit 1, "run
// the pm-ingestd that wrote it"), where damage is counted and alerted on and ingestion goes on.
TEST_F(ArchiveTest, ABitFlippedInTheArchiveMagicsDigitsIsDamageNotANewerFormat) {
  build_log(pfs(), wal_, 60);
  archive_segment(pfs(), wal_, 1, arch_);
  const std::string path = archive_path(1);
  std::string bytes = read_file(path);
  ASSERT_EQ(bytes.compare(0, 8, "PMARC01\n"), 0);
  bytes[6] = '3';  // 0x31 -> 0x33: one bit
  write_file(path, bytes);
  EXPECT_THROW(read_archive(pfs(), path), ArchiveDamage);
  EXPECT_THROW(verify_archive(pfs(), path), ArchiveDamage);
  ArchiveEntry e;
  std::string problem;
  EXPECT_NO_THROW(read_archive_header(pfs(), path, e, problem));
  EXPECT_FALSE(problem.empty());
}

// A replay stops at an archive file of a newer format, --skip-damaged or not, after the events
// before it: it skipped the file whole, its events dropped as if they were damaged.
TEST_F(ChainTest, AnArchiveFileOfANewerFormatStopsTheChainEvenWithSkipDamaged) {
  const std::string path = archive_path(2);
  for (const auto& [bytes, says] : newer_variants(read_file(path))) {
    write_file(path, bytes);
    for (const bool skip_damaged : {false, true}) {
      SegmentChain chain = SegmentChain::discover(pfs(), {arch_, wal_});
      skipped_.clear();
      chain.start(1, skip_damaged, [this](const SkippedRange& r) { skipped_.push_back(r); });
      std::vector<std::uint64_t> read;
      expect_newer_format(path, says, [&] {
        while (auto r = chain.next()) read.push_back(r->lsn);
      });
      EXPECT_EQ(read, range(1, log_.in(1).back().lsn)) << "segment 1 is read before the chain stops";
      EXPECT_TRUE(skipped_.empty()) << describe(skipped_.front());
    }
  }
}

// ---- A running daemon's live log ----

std::vector<std::uint64_t> lsns_of(SegmentChain& chain) {
  chain.start(1, false);
  std::vector<std::uint64_t> out;
  while (auto r = chain.next()) out.push_back(r->lsn);
  return out;
}

// A group appended to `log` while `gate` holds its fdatasync: in the file, never durable. Its sync
// is made to fail, and the appending thread joined, by fail() or the destructor (so a test may
// ASSERT meanwhile); the log then halts.
class UnsyncedGroup {
 public:
  UnsyncedGroup(wal::WriteAheadLog& log, wal::SyncGateFs& gate, std::vector<std::string> payloads) : gate_(gate) {
    gate_.close_gate();
    std::promise<void> written;
    auto on_disk = written.get_future();
    appender_ = std::thread([&log, payloads = std::move(payloads), written = std::move(written)]() mutable {
      std::vector<wal::Appended> out;
      const wal::WrittenCallback cb = [&](std::span<const wal::Appended>) { written.set_value(); };
      EXPECT_EQ(log.append(payloads, out, cb), wal::AppendStatus::IoError);
    });
    on_disk.get();
    gate_.wait_for_held_sync();
  }
  ~UnsyncedGroup() { fail(); }
  void fail() {
    if (!appender_.joinable()) return;
    gate_.fail_syncs();
    appender_.join();
  }

 private:
  wal::SyncGateFs& gate_;
  std::thread appender_;
};

// A replay beside the running daemon read the newest segment to its valid end, which may hold a
// group whose fdatasync is still running. Here that sync fails: the group is never acknowledged,
// the log halts, and its recovery would cut the group and give those LSNs to new events. The
// chain reads a log in use only up to the state file's ceiling (what had been synced).
TEST_F(ArchiveTest, ARunningLogIsReadOnlyUpToWhatItHadSynced) {
  wal::SyncGateFs gate;
  wal::Options o;
  o.dir = wal_;
  o.fs = &gate;
  std::atomic<int> fatals{0};
  o.on_fatal = [&](const std::string&) { ++fatals; };
  auto log = wal::WriteAheadLog::open(o);
  std::vector<wal::Appended> out;
  ASSERT_EQ(log->append(std::vector<std::string>{event_payload(0), event_payload(1), event_payload(2)}, out), wal::AppendStatus::Ok);
  ASSERT_TRUE(log->persist_applied());  // the state's ceiling: lsn 3
  UnsyncedGroup unsynced(*log, gate, {event_payload(3), event_payload(4)});  // lsn 4 and 5

  SegmentChain running = SegmentChain::discover(pfs(), {wal_});
  ASSERT_TRUE(running.live_limit().has_value());
  EXPECT_EQ(running.live_limit()->lsn, 3u);
  EXPECT_EQ(lsns_of(running), (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_TRUE(running.stopped_at_live_limit());
  unsynced.fail();
  EXPECT_EQ(fatals.load(), 1);
  EXPECT_EQ(log->durable().lsn, 3u);  // lsn 4 and 5 never were durable, and never will be
}

// Past the ceiling of a log in use a group may be half written, with a later one already there
// (a scan calls that damage, not a torn tail): the chain stops at the ceiling before it reads
// there, instead of calling the half group damage (the reader checks a group whole at its marker,
// before the record past the ceiling that stops the chain).
TEST_F(ArchiveTest, ARunningLogIsNotCalledDamagedForAHalfGroupPastItsCeiling) {
  wal::Options o;
  o.dir = wal_;
  o.on_fatal = [](const std::string& m) { FAIL() << m; };
  auto log = wal::WriteAheadLog::open(o);
  std::vector<wal::Appended> out;
  ASSERT_EQ(log->append(std::vector<std::string>{event_payload(0), event_payload(1), event_payload(2)}, out), wal::AppendStatus::Ok);
  ASSERT_TRUE(log->persist_applied());  // the state's ceiling: lsn 3
  // A group whose second record is not all there yet (a byte of it still different), then a whole
  // later one: the scan calls that damage, so the chain does not cut it off as a torn tail.
  const std::string live = live_path(1);
  std::string unfinished = group_bytes(live, 4, {event_payload(3), event_payload(4)});
  unfinished[unfinished.size() - 5] = static_cast<char>(unfinished[unfinished.size() - 5] ^ 0x40);
  write_file(live, read_file(live) + unfinished + group_bytes(live, 6, {event_payload(5)}));
  ASSERT_EQ(wal::scan_segment(pfs(), live).tail, wal::TailState::Corrupt);
  SegmentChain running = SegmentChain::discover(pfs(), {wal_});
  ASSERT_TRUE(running.live_limit().has_value());
  EXPECT_EQ(running.live_limit()->lsn, 3u);
  EXPECT_EQ(lsns_of(running), (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_TRUE(running.stopped_at_live_limit());
}

// Synced records past the state's ceiling (a daemon killed before its next state write) are read
// once no process holds the log; while one does, the ceiling bounds them.
TEST_F(ArchiveTest, ALogNobodyHoldsIsReadToItsLastValidRecord) {
  wal::Options o;
  o.dir = wal_;
  o.on_fatal = [](const std::string& m) { FAIL() << m; };
  auto log = wal::WriteAheadLog::open(o);
  std::vector<wal::Appended> out;
  ASSERT_EQ(log->append(std::vector<std::string>{event_payload(0)}, out), wal::AppendStatus::Ok);
  ASSERT_TRUE(log->persist_applied());
  ASSERT_EQ(log->append(std::vector<std::string>{event_payload(1), event_payload(2)}, out), wal::AppendStatus::Ok);
  SegmentChain held = SegmentChain::discover(pfs(), {wal_});
  EXPECT_EQ(lsns_of(held), (std::vector<std::uint64_t>{1}));
  EXPECT_TRUE(held.stopped_at_live_limit());
  log.reset();
  SegmentChain free = SegmentChain::discover(pfs(), {wal_});
  EXPECT_EQ(lsns_of(free), (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_FALSE(free.stopped_at_live_limit());
}

// A daemon whose group's fdatasync failed exits (70) and frees its log before systemd restarts
// it. Linux keeps that group's pages cached and marked clean though the storage never got them;
// the restarted daemon's recovery reads the storage, cuts the group and gives its LSNs to new
// events. A replay in that window read the group from the page cache.
TEST_F(ArchiveTest, AFreedLogIsReadAsTheStorageHoldsItNotFromThePageCache) {
  test::FaultFs fs(1);
  wal::Options o;
  o.dir = wal_;
  o.fs = &fs;
  std::atomic<int> fatals{0};
  o.on_fatal = [&](const std::string&) { ++fatals; };
  std::vector<wal::Appended> out;
  {
    auto log = wal::WriteAheadLog::open(o);
    ASSERT_EQ(log->append(std::vector<std::string>{event_payload(0), event_payload(1), event_payload(2)}, out), wal::AppendStatus::Ok);
    test::FaultRule lost{test::FsOp::Sync, 1, 1, EIO, ".wal"};
    lost.loses_pages = true;
    fs.add_fault(lost);
    ASSERT_EQ(log->append(std::vector<std::string>{event_payload(3), event_payload(4)}, out), wal::AppendStatus::IoError);
    ASSERT_EQ(fatals.load(), 1);
  }  // the daemon exits: its lock is free
  SegmentChain chain = SegmentChain::discover(fs, {wal_});
  ASSERT_FALSE(chain.live_limit().has_value());
  EXPECT_EQ(lsns_of(chain), (std::vector<std::uint64_t>{1, 2, 3})) << "lsn 4 and 5 were never stored";
  auto restarted = wal::WriteAheadLog::open(o);
  EXPECT_EQ(restarted->durable().lsn, 3u) << "the restarted daemon's recovery agrees";
}

// A daemon that starts on the log after discover(): its newest segment, read later, may end in a
// group not synced yet; the lock is looked at again when that segment is read.
TEST_F(ArchiveTest, ALogADaemonOpensAfterDiscoveryIsStillReadOnlyUpToWhatItHadSynced) {
  wal::Options o;
  o.dir = wal_;
  o.on_fatal = [](const std::string& m) { FAIL() << m; };
  std::vector<wal::Appended> out;
  {
    auto log = wal::WriteAheadLog::open(o);
    ASSERT_EQ(log->append(std::vector<std::string>{event_payload(0), event_payload(1), event_payload(2)}, out), wal::AppendStatus::Ok);
  }
  SegmentChain chain = SegmentChain::discover(pfs(), {wal_});
  ASSERT_FALSE(chain.live_limit().has_value());
  wal::SyncGateFs gate;
  o.fs = &gate;
  std::atomic<int> fatals{0};
  o.on_fatal = [&](const std::string&) { ++fatals; };
  auto log = wal::WriteAheadLog::open(o);
  ASSERT_TRUE(log->persist_applied());  // ceiling: lsn 3
  UnsyncedGroup unsynced(*log, gate, {event_payload(3)});
  EXPECT_EQ(lsns_of(chain), (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_TRUE(chain.stopped_at_live_limit());
  unsynced.fail();
  EXPECT_EQ(fatals.load(), 1);
}

// refresh_ceiling() raises the ceiling to the durable end, at most once a second, so a
// replay beside an idle daemon reaches its last event.
TEST_F(ArchiveTest, AnIdleLogRaisesItsCeilingToItsDurableEnd) {
  wal::Options o;
  o.dir = wal_;
  o.on_fatal = [](const std::string& m) { FAIL() << m; };
  auto log = wal::WriteAheadLog::open(o);
  std::vector<wal::Appended> out;
  ASSERT_EQ(log->append(std::vector<std::string>{event_payload(0), event_payload(1)}, out), wal::AppendStatus::Ok);
  const auto ceiling = [&] {
    wal::LocalState state;
    EXPECT_EQ(wal::read_state(pfs(), wal_ + "/" + wal::kStateFileName, state), wal::StateRead::Valid);
    return state.ceiling.lsn;
  };
  EXPECT_EQ(ceiling(), 0u);
  EXPECT_TRUE(test::wait_until([&] {
    log->refresh_ceiling();
    return ceiling() == 2;
  }, std::chrono::seconds(5)));
  SegmentChain chain = SegmentChain::discover(pfs(), {wal_});
  EXPECT_EQ(lsns_of(chain), (std::vector<std::uint64_t>{1, 2}));
  EXPECT_FALSE(chain.stopped_at_live_limit());  // nothing was held back: replay says nothing of it
}

}  // namespace
}  // namespace pm::archive
