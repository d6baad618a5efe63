// libFuzzer target: arbitrary bytes as the newest segment of a log, read by everything that reads
// a log: recovery's scan, the operator's inspection and salvage, WriteAheadLog::open (recovery,
// which may cut a torn tail) and then a full read of what it recovered. None may crash, hang or
// read out of bounds; WalCorruption is the only acceptable complaint (and WalNewerFormat, for bytes
// that begin with a later format's magic: salvage too stops there); and a log that recovery
// accepted must read back to its durable end without complaint.
// The first input byte picks a shape, so the fuzzer does not spend its time on segment headers:
// bit 0 set: a valid segment header (format 2; 1 with bit 1 set, else 3 with bit 2 set) precedes the
// other bytes.
#include <cstdint>
#include <string>
#include <system_error>

#include "ingest/log/wal.h"
#include "ingest/log/wal_newer_format.h"
#include "ingest/log/wal_reader.h"
#include "ingest/log/wal_salvage.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/support/fault_fs.h"

namespace {

const std::string kDir = "/log";

std::string segment_bytes(const std::uint8_t* data, std::size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  if (bytes.empty() || (bytes[0] & 1) == 0) return bytes;
  pm::wal::SegmentHeader header;
  header.log_id = pm::wal::LogId{7, 7, 7};
  header.segment = 1;
  header.first_lsn = 1;
  header.base_offset = 0;
  header.version = (bytes[0] & 2) != 0 ? 1 : (bytes[0] & 4) != 0 ? 3 : 2;
  return pm::wal::encode_segment_header(header) + bytes.substr(1);
}

template <class Fn>
void tolerate_corruption(Fn&& fn) {
  try {
    fn();
  } catch (const pm::wal::WalCorruption&) {
  } catch (const pm::wal::WalNewerFormat&) {
  }
}

// Salvage steps over damage; only a newer format stops it.
template <class Fn>
void tolerate_newer_format(Fn&& fn) {
  try {
    fn();
  } catch (const pm::wal::WalNewerFormat&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  pm::test::FaultFs fs(1);
  fs.create_dir(kDir);
  const std::string path = kDir + "/" + pm::wal::segment_file_name(1);
  fs.put(path, segment_bytes(data, size));

  tolerate_corruption([&] { pm::wal::scan_segment(fs, path); });
  tolerate_corruption([&] { pm::wal::inspect_log(kDir, fs); });
  tolerate_newer_format(
      [&] { pm::wal::salvage_log(fs, kDir, [](const pm::wal::Record&) { return true; }, [](const pm::wal::SkippedRange&) {}); });

  pm::wal::Options options;
  options.dir = kDir;
  options.fs = &fs;
  options.on_fatal = [](const std::string& m) { pm::fuzz::fail("recovery called on_fatal", m); };
  std::unique_ptr<pm::wal::WriteAheadLog> log;
  tolerate_corruption([&] { log = pm::wal::WriteAheadLog::open(options); });
  if (!log) return 0;
  // Recovered: everything up to the durable end reads back, and the log takes a new record.
  pm::wal::WalReader reader(kDir, log->log_id(), log->oldest(), fs);
  std::uint64_t records = 0;
  while (auto r = reader.next(log->durable())) ++records;
  PM_FUZZ_CHECK(reader.position().lsn == log->durable().lsn, "a recovered log did not read to its end");
  std::vector<std::string> payloads{"x"};
  std::vector<pm::wal::Appended> out;
  PM_FUZZ_CHECK(log->append(payloads, out) == pm::wal::AppendStatus::Ok, "a recovered log refused an append");
  PM_FUZZ_CHECK(out.size() == 1 && out[0].lsn == log->oldest().lsn + records + 1, "the new record's lsn does not follow");
  // The whole log reads back, across the new segment an older format's log goes on in (the old
  // segment, sealed, must end at its records: its file is read to its end).
  pm::wal::WalReader again(kDir, log->log_id(), log->oldest(), fs);
  std::uint64_t read_back = 0;
  while (auto r = again.next(log->durable())) ++read_back;
  PM_FUZZ_CHECK(read_back == records + 1, "the log did not read back to its end after an append");
  return 0;
}
