#include "ingest/log/wal_newer_format.h"

#include <cstring>

#include "ingest/log/wal_format.h"
#include "repos/util/crc32c.h"

namespace pm::wal {

namespace {

constexpr std::size_t kMagicSize = 8;
constexpr std::size_t kPrefixSize = 5;

bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::string readable_versions(const std::string& format, std::uint32_t newest) {
  return newest == 1 ? format + " 1" : format + "s 1.." + std::to_string(newest);
}

// Whether the header at `data` checks out with the magic of a version up to `newest` in place of its own.
bool checks_out_with_a_known_magic(const char* data, std::size_t crc_at, std::string_view prefix, std::uint32_t newest) {
  std::uint32_t stored = 0;
  std::memcpy(&stored, data + crc_at, sizeof stored);
  std::string header(data, crc_at);
  for (std::uint32_t version = 1; version <= newest && version < 100; ++version) {
    header.replace(0, kMagicSize, std::string(prefix) + static_cast<char>('0' + version / 10) +
                                      static_cast<char>('0' + version % 10) + "\n");
    if (crc32c::unmask(stored) == crc32c::value(header.data(), header.size())) return true;
  }
  return false;
}

}  // namespace

WalNewerFormat::WalNewerFormat(const std::string& file, const std::string& format, std::uint32_t version, std::uint32_t newest)
    : std::runtime_error(file + " was written by a newer pm-ingestd (" + format + " " + std::to_string(version) +
                         "; this build reads " + readable_versions(format, newest) + ")"),
      file_(file),
      version_(version) {}

std::uint32_t newer_magic_version(const char* data, std::size_t n, std::string_view prefix, std::uint32_t newest) {
  if (n < kMagicSize || prefix.size() != kPrefixSize || std::string_view(data, kPrefixSize) != prefix) return 0;
  const char tens = data[kPrefixSize], ones = data[kPrefixSize + 1];
  if (!is_digit(tens) || !is_digit(ones) || data[kMagicSize - 1] != '\n') return 0;
  const auto version = static_cast<std::uint32_t>((tens - '0') * 10 + (ones - '0'));
  return version > newest ? version : 0;
}

std::uint32_t newer_format_version(const char* data, std::size_t n, std::string_view prefix, std::uint32_t newest,
                                   std::size_t crc_at) {
  const std::uint32_t version = newer_magic_version(data, n, prefix, newest);
  if (version == 0 || crc_at < kMagicSize || n < crc_at + sizeof(std::uint32_t)) return version;
  return checks_out_with_a_known_magic(data, crc_at, prefix, newest) ? 0 : version;
}

void throw_if_newer_segment(const std::string& path, const char* data, std::size_t n) {
  if (const std::uint32_t version =
          newer_format_version(data, n, std::string_view(kMagicV3, 5), kFormatVersion, kSegmentHeaderCrcAt);
      version != 0)
    throw WalNewerFormat(path, "log format", version, kFormatVersion);
}

bool is_newer_format(const std::exception& e) { return dynamic_cast<const WalNewerFormat*>(&e) != nullptr; }

}  // namespace pm::wal
