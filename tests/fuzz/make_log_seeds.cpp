// Writes the log reader's seed corpus: real segments written by WriteAheadLog on a FaultFs (one
// group, several groups, a torn last group, a format 1 segment), each as a file whose first byte
// is 0 (raw bytes, header included; see fuzz_log_reader.cpp). Run by hand when the format changes
// (keep the older format's seeds under other names: *_format_two.bin are format 2):
//   make_log_seeds tests/fuzz/corpus/fuzz_log_reader
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "ingest/log/wal.h"
#include "tests/support/fault_fs.h"

namespace {

std::string write_log(int groups, int records_per_group) {
  pm::test::FaultFs fs(3);
  pm::wal::Options o;
  o.dir = "/log";
  o.fs = &fs;
  auto log = pm::wal::WriteAheadLog::open(o);
  for (int g = 0; g < groups; ++g) {
    std::vector<std::string> payloads;
    for (int r = 0; r < records_per_group; ++r) payloads.push_back("payload-" + std::to_string(g) + "-" + std::to_string(r));
    std::vector<pm::wal::Appended> out;
    log->append(payloads, out);
  }
  return fs.contents("/log/" + pm::wal::segment_file_name(1));
}

void save(const std::string& dir, const std::string& name, const std::string& segment) {
  std::ofstream(dir + "/" + name, std::ios::binary) << std::string(1, '\0') << segment;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_log_seeds DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  save(dir, "one_group.bin", write_log(1, 3));
  save(dir, "five_groups.bin", write_log(5, 2));
  const std::string many = write_log(4, 4);
  save(dir, "torn_last_group.bin", many.substr(0, many.size() - 9));
  std::string zeroed = many;
  for (std::size_t i = zeroed.size() - 40; i < zeroed.size() - 20; ++i) zeroed[i] = '\0';
  save(dir, "zeroed_in_last_group.bin", zeroed);
  std::string v1 = pm::wal::encode_segment_header(pm::wal::SegmentHeader{pm::wal::LogId{1}, 1, 1, 0, 1});
  for (int i = 1; i <= 3; ++i) pm::wal::append_record(v1, static_cast<std::uint64_t>(i), pm::wal::kRecordEvent, "v1-" + std::to_string(i));
  save(dir, "format_one.bin", v1);
  return 0;
}
