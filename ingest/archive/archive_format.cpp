#include "ingest/archive/archive_format.h"

#include <cstdio>
#include <cstring>
#include <tuple>
#include <type_traits>

#include "ingest/log/wal_newer_format.h"
#include "repos/util/crc32c.h"

namespace pm::archive {

namespace {

// Header layout (docs/wal-format.md, "Archive"): offsets of the fields after the magic.
constexpr std::size_t kLogIdAt = 8;
constexpr std::size_t kSegmentAt = 24;
constexpr std::size_t kVersionAt = 32;  // u32, then a reserved u32
constexpr std::size_t kFirstLsnAt = 40;
constexpr std::size_t kCrcAt = kArchiveHeaderSize - 4;
constexpr char kSuffix[] = ".pmarc";
constexpr std::size_t kSuffixLen = sizeof kSuffix - 1;

template <class T>
void put(char* at, T v) {
  std::memcpy(at, &v, sizeof(T));
}

template <class T>
T get(const char* at) {
  T v;
  std::memcpy(&v, at, sizeof(T));
  return v;
}

// The 8-byte fields from first_lsn on, in header order.
template <class Entry>
auto eight_byte_fields(Entry& e) {
  return std::tie(e.first_lsn, e.last_lsn, e.base_offset, e.segment_bytes, e.file_bytes, e.first_arrival_ms,
                  e.last_arrival_ms, e.trades, e.triggers, e.archived_at_ms);
}

}  // namespace

std::string archive_file_name(std::uint64_t segment) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%016llx%s", static_cast<unsigned long long>(segment), kSuffix);
  return buf;
}

bool parse_archive_file_name(const std::string& name, std::uint64_t& segment) {
  if (name.size() != 16 + kSuffixLen || name.compare(16, kSuffixLen, kSuffix) != 0) return false;
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 16; ++i) {
    const char c = name[i];
    const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return false;
    v = (v << 4) | static_cast<std::uint64_t>(d);
  }
  segment = v;
  return true;
}

std::string encode_archive_header(const ArchiveEntry& entry) {
  std::string out(kArchiveHeaderSize, '\0');
  char* p = out.data();
  std::memcpy(p, kArchiveMagic, sizeof kArchiveMagic);
  std::memcpy(p + kLogIdAt, entry.log_id.data(), entry.log_id.size());
  put<std::uint64_t>(p + kSegmentAt, entry.segment);
  put<std::uint32_t>(p + kVersionAt, entry.segment_version);
  std::size_t at = kFirstLsnAt;
  std::apply([&](const auto&... field) { ((put(p + at, field), at += 8), ...); }, eight_byte_fields(entry));
  put<std::uint32_t>(p + kCrcAt, crc32c::mask(crc32c::value(p, kCrcAt)));
  return out;
}

bool decode_archive_header(const char* data, std::size_t n, ArchiveEntry& out, std::string& problem) {
  if (n < kArchiveHeaderSize) {
    problem = "archive header cut short (" + std::to_string(n) + " bytes)";
    return false;
  }
  if (std::memcmp(data, kArchiveMagic, sizeof kArchiveMagic) != 0) {
    problem = "not an archive file (bad magic)";
    return false;
  }
  if (crc32c::unmask(get<std::uint32_t>(data + kCrcAt)) != crc32c::value(data, kCrcAt)) {
    problem = "archive header checksum mismatch";
    return false;
  }
  ArchiveEntry e;
  std::memcpy(e.log_id.data(), data + kLogIdAt, e.log_id.size());
  e.segment = get<std::uint64_t>(data + kSegmentAt);
  e.segment_version = get<std::uint32_t>(data + kVersionAt);
  std::size_t at = kFirstLsnAt;
  std::apply([&](auto&... field) { ((field = get<std::remove_reference_t<decltype(field)>>(data + at), at += 8), ...); },
             eight_byte_fields(e));
  out = e;
  return true;
}

void throw_if_newer_archive(const std::string& path, const char* data, std::size_t n) {
  const std::string_view prefix(kArchiveMagic, 5);
  if (const std::uint32_t version = wal::newer_format_version(data, n, prefix, kArchiveFormatVersion, kCrcAt); version != 0)
    throw wal::WalNewerFormat(path, "archive format", version, kArchiveFormatVersion);
  ArchiveEntry entry;
  std::string problem;
  if (decode_archive_header(data, n, entry, problem) && entry.segment_version > wal::kFormatVersion)
    throw wal::WalNewerFormat(path + " (an archived log segment)", "log format", entry.segment_version, wal::kFormatVersion);
}

ArchiveDamage::ArchiveDamage(const std::string& file, std::uint64_t offset, const std::string& what)
    : std::runtime_error("archive damaged in " + file + " at offset " + std::to_string(offset) + ": " + what),
      file_(file),
      offset_(offset),
      problem_(what) {}

}  // namespace pm::archive
