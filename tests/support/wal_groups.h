#pragma once
// groups_in(): where the groups of one format-2 segment file's bytes lie, for tests that cut or
// damage a segment at a group's or record's boundary. Reads the bytes as written (no checks
// beyond what it needs to step from record to record); stops at the first zero or short header.
#include <cstdint>
#include <string>
#include <vector>

#include "ingest/log/wal_format.h"

namespace pm::test {

struct GroupSpan {
  std::size_t marker = 0;                // offset of the group's marker
  std::vector<std::size_t> record_ends;  // offset after each of its event records
};

inline std::vector<GroupSpan> groups_in(const std::string& segment_bytes) {
  std::vector<GroupSpan> groups;
  std::size_t at = wal::kSegmentHeaderSize;
  while (at + wal::kRecordHeaderSize <= segment_bytes.size()) {
    const wal::RecordHeader h = wal::decode_record_header(segment_bytes.data() + at);
    if (h.length == 0 && h.masked_crc == 0) break;
    const std::size_t end = at + wal::kRecordHeaderSize + h.length;
    if (end > segment_bytes.size()) break;
    if (h.type == wal::kRecordGroup)
      groups.push_back(GroupSpan{at, {}});
    else if (!groups.empty())
      groups.back().record_ends.push_back(end);
    at = end;
  }
  return groups;
}

}  // namespace pm::test
