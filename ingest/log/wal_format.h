#pragma once
// The write-ahead log's on-disk format (docs/wal-format.md has the full description).
//
// A log is a directory of segment files named `<segment as 16 hex digits>.wal`, created
// atomically (written as `.tmp`, fsynced, renamed, directory fsynced). Each starts with a 56-byte
// header, followed by records:
//
//   segment header: magic "PMWAL03\n" | log_id[16] | segment u64 | first_lsn u64 |
//                   base_offset u64 | masked crc32c(bytes 0..47) u32 | reserved u32
//   record:         masked crc32c(bytes 4..end) u32 | payload length u32 | lsn u64 | type u8 | payload
//
// Versions 2 and 3 frame every group commit: a group marker record (type 2, lsn = the group's first
// event lsn, payload: records u32 | masked crc32c of the body u32 | body bytes u64) precedes the
// group's event records (its body). A marker consumes no lsn. Since a group is written only after
// the previous group's fdatasync returned, any valid marker after a bad record proves the bad
// record was synced (corruption); without one, the bad record lies in the last group, which a
// power loss may leave damaged anywhere (a torn tail).
//
// Version 3 differs from version 2 in one thing: a group marker's checksum is keyed by the log id,
// masked crc32c(log_id[16] followed by the marker's bytes 4..end), where version 2 has the plain
// record checksum. Producers choose the bytes of event payloads, so they can embed a version 2
// marker that checks out; they never see the log id, so they cannot embed a version 3 one, and
// a marker found in a torn group's body is never taken for a later group. Event records keep the
// plain checksum. group_marker_ok() is the one check of a marker against its segment's header.
//
// Versions 1 (magic "PMWAL01\n", no markers) and 2 ("PMWAL02\n") are still read; new segments are
// written in version 3, and a log whose newest segment is older goes on in a new segment. A later
// version ("PMWAL04\n".."PMWAL99\n") is a newer format, not damage: wal_newer_format.h.
#include <array>
#include <cstdint>
#include <string>

namespace pm::wal {

inline constexpr char kMagicV1[8] = {'P', 'M', 'W', 'A', 'L', '0', '1', '\n'};
inline constexpr char kMagicV2[8] = {'P', 'M', 'W', 'A', 'L', '0', '2', '\n'};
inline constexpr char kMagicV3[8] = {'P', 'M', 'W', 'A', 'L', '0', '3', '\n'};
inline constexpr std::uint32_t kFormatVersion = 3;  // what new segments are written in
inline constexpr std::size_t kSegmentHeaderSize = 56;
inline constexpr std::size_t kSegmentHeaderCrcAt = 48;  // masked crc32c of the header's bytes before it
inline constexpr std::size_t kRecordHeaderSize = 17;
inline constexpr std::uint32_t kMaxPayload = 16u << 20;  // twice the largest --max-line-bytes (8 MiB), derived from it
inline constexpr std::uint8_t kRecordEvent = 1;
inline constexpr std::uint8_t kRecordGroup = 2;  // versions 2 and 3: the marker before each group
inline constexpr std::size_t kGroupPayloadSize = 16;
inline constexpr std::size_t kGroupMarkerSize = kRecordHeaderSize + kGroupPayloadSize;
inline constexpr std::uint64_t kMaxGroupBody = 1ull << 30;  // far above Options::max_group_bytes (8 MiB)

using LogId = std::array<unsigned char, 16>;

struct SegmentHeader {
  LogId log_id{};
  std::uint64_t segment = 0;
  std::uint64_t first_lsn = 0;
  std::uint64_t base_offset = 0;
  std::uint32_t version = kFormatVersion;  // 1, 2 or 3, from the magic
};

// Whether the segment frames its groups with markers (versions 2 and 3).
inline bool has_group_markers(const SegmentHeader& header) { return header.version >= 2; }

std::string encode_segment_header(const SegmentHeader& header);
// false when the bytes are not a valid header (bad magic or checksum), a newer format's included:
// throw_if_newer_segment (wal_newer_format.h) tells that one apart before it is called damage.
bool decode_segment_header(const char* data, std::size_t n, SegmentHeader& out);

// Appends one record (header + payload) to `out`.
void append_record(std::string& out, std::uint64_t lsn, std::uint8_t type, const std::string& payload);

// A group marker's payload.
struct GroupMarker {
  std::uint32_t records = 0;
  std::uint32_t body_masked_crc = 0;
  std::uint64_t body_bytes = 0;
};
// Appends a group marker for events starting at `first_lsn`; returns its offset in `out`, for
// finish_group() once the group's records follow it in `out`. `segment` is the header of the
// segment the group goes into: its version and log id decide the marker's checksum.
std::size_t begin_group(std::string& out, std::uint64_t first_lsn);
void finish_group(std::string& out, std::size_t marker_offset, std::uint32_t records, const SegmentHeader& segment);
// Whether the kGroupMarkerSize bytes at `marker` are a valid group marker of a segment with the
// header `segment` (type, length, and the checksum of the segment's version: keyed by its log id
// in version 3); its payload in `out` when so. The only check of a marker: every reader uses it.
bool group_marker_ok(const SegmentHeader& segment, const char* marker, GroupMarker& out);
bool group_body_ok(const GroupMarker& marker, const char* body);

struct RecordHeader {
  std::uint32_t masked_crc = 0;
  std::uint32_t length = 0;
  std::uint64_t lsn = 0;
  std::uint8_t type = 0;
};
RecordHeader decode_record_header(const char* data);
// Checks an event record's checksum (a group marker's is group_marker_ok's); `record` points at its
// header, `n` = header + payload bytes.
bool record_checksum_ok(const char* record, std::size_t n);

std::string segment_file_name(std::uint64_t segment);
// Parses "<16 hex>.wal"; false for any other name.
bool parse_segment_file_name(const std::string& name, std::uint64_t& segment);
std::string log_id_hex(const LogId& id);

// A place in the log: the boundary after record `lsn` (0 = before the first record).
struct Position {
  std::uint64_t segment = 0;
  std::uint64_t offset = 0;      // byte offset in the segment file
  std::uint64_t log_offset = 0;  // record bytes before this position, over the whole log
  std::uint64_t lsn = 0;         // last record before this position
};

// The position `bytes` further on in the same segment, after record `lsn`.
inline Position advanced(const Position& p, std::uint64_t bytes, std::uint64_t lsn) {
  return Position{p.segment, p.offset + bytes, p.log_offset + bytes, lsn};
}

}  // namespace pm::wal
