#include "ingest/log/wal_newer_format.h"

#include "ingest/log/wal_format.h"

namespace pm::wal {

namespace {

constexpr std::size_t kMagicSize = 8;
constexpr std::size_t kPrefixSize = 5;

bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::string readable_versions(const std::string& format, std::uint32_t newest) {
  return newest == 1 ? format + " 1" : format + "s 1.." + std::to_string(newest);
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

void throw_if_newer_segment(const std::string& path, const char* data, std::size_t n) {
  if (const std::uint32_t version = newer_magic_version(data, n, std::string_view(kMagicV3, 5), kFormatVersion); version != 0)
    throw WalNewerFormat(path, "log format", version, kFormatVersion);
}

bool is_newer_format(const std::exception& e) { return dynamic_cast<const WalNewerFormat*>(&e) != nullptr; }

}  // namespace pm::wal
