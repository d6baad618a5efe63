#pragma once
// groups_in(): where the groups of one segment file's bytes (format 2 or 3) lie, for tests that
// cut or damage a segment at a group's or record's boundary. Reads the bytes as written (no checks
// beyond what it needs to step from record to record); stops at the first zero or short header.
// header_of(), group_bytes(), unkeyed_group(): a segment's header, and groups built as the log
// writes them (keyed by the segment's log id in format 3) or as format 2 wrote them.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "ingest/log/wal_format.h"
#include "repos/util/crc32c.h"

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

// The header of a segment file's bytes; fails the test (and returns an empty header) when invalid.
inline wal::SegmentHeader header_of(const std::string& segment_bytes) {
  wal::SegmentHeader h;
  EXPECT_TRUE(wal::decode_segment_header(segment_bytes.data(), segment_bytes.size(), h)) << "not a segment header";
  return h;
}

// The group of `payloads` from `first_lsn` on (marker + records), as the log writes it into the
// segment `segment` heads (its marker keyed by the log id in format 3).
inline std::string group_bytes(const wal::SegmentHeader& segment, std::uint64_t first_lsn, const std::vector<std::string>& payloads) {
  std::string out;
  const std::size_t marker = wal::begin_group(out, first_lsn);
  for (std::size_t i = 0; i < payloads.size(); ++i) wal::append_record(out, first_lsn + i, wal::kRecordEvent, payloads[i]);
  wal::finish_group(out, marker, static_cast<std::uint32_t>(payloads.size()), segment);
  return out;
}

// The same group with its marker checksummed as format 2 did: the plain record checksum, which
// anyone can compute. What format 2 wrote, and all a producer can forge inside an event payload
// (it never sees the log id). Built here from the format's description, not with finish_group.
inline std::string unkeyed_group(std::uint64_t first_lsn, const std::vector<std::string>& payloads) {
  std::string body;
  for (std::size_t i = 0; i < payloads.size(); ++i) wal::append_record(body, first_lsn + i, wal::kRecordEvent, payloads[i]);
  const std::uint32_t records = static_cast<std::uint32_t>(payloads.size());
  const std::uint32_t body_crc = crc32c::mask(crc32c::value(body.data(), body.size()));
  const std::uint64_t body_bytes = body.size();
  std::string marker_payload(wal::kGroupPayloadSize, '\0');
  std::memcpy(marker_payload.data(), &records, 4);
  std::memcpy(marker_payload.data() + 4, &body_crc, 4);
  std::memcpy(marker_payload.data() + 8, &body_bytes, 8);
  std::string out;
  wal::append_record(out, first_lsn, wal::kRecordGroup, marker_payload);  // checksum over bytes 4..end
  return out + body;
}

}  // namespace pm::test
