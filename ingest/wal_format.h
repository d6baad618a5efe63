#pragma once
// The write-ahead log's on-disk format (docs/wal-format.md has the full description).
//
// A log is a directory of segment files named `<segment as 16 hex digits>.wal`, created
// atomically (written as `.tmp`, fsynced, renamed, directory fsynced). Each starts with a 56-byte
// header, followed by records:
//
//   segment header: magic "PMWAL01\n" | log_id[16] | segment u64 | first_lsn u64 |
//                   base_offset u64 | masked crc32c(bytes 0..47) u32 | reserved u32
//   record:         masked crc32c(bytes 4..end) u32 | payload length u32 | lsn u64 | type u8 | payload
//
// Integers are little-endian. LSNs number records 1, 2, 3, ... across segments with no gaps. A
// position (segment, offset) points at a record boundary; its log offset counts record bytes from
// the log's beginning (base_offset + offset - header size), which makes "bytes not yet applied"
// a subtraction.
#include <array>
#include <cstdint>
#include <string>

namespace pm::wal {

inline constexpr char kMagic[8] = {'P', 'M', 'W', 'A', 'L', '0', '1', '\n'};
inline constexpr std::size_t kSegmentHeaderSize = 56;
inline constexpr std::size_t kRecordHeaderSize = 17;
inline constexpr std::uint32_t kMaxPayload = 16u << 20;  // far above the 1 MiB line limit
inline constexpr std::uint8_t kRecordEvent = 1;

using LogId = std::array<unsigned char, 16>;

struct SegmentHeader {
  LogId log_id{};
  std::uint64_t segment = 0;
  std::uint64_t first_lsn = 0;
  std::uint64_t base_offset = 0;
};

std::string encode_segment_header(const SegmentHeader& header);
// false when the bytes are not a valid header (bad magic or checksum).
bool decode_segment_header(const char* data, std::size_t n, SegmentHeader& out);

// Appends one record (header + payload) to `out`.
void append_record(std::string& out, std::uint64_t lsn, std::uint8_t type, const std::string& payload);

struct RecordHeader {
  std::uint32_t masked_crc = 0;
  std::uint32_t length = 0;
  std::uint64_t lsn = 0;
  std::uint8_t type = 0;
};
RecordHeader decode_record_header(const char* data);
// Checks the record's checksum; `record` points at its header, `n` = header + payload bytes.
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

}  // namespace pm::wal
