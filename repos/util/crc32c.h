#pragma once
// CRC-32C (Castagnoli), the checksum of write-ahead log records. Uses the CPU's crc32 instruction
// (SSE4.2) when present, a table-driven fallback otherwise; both give identical results.
// mask()/unmask() keep a CRC stored next to data from looking like a CRC of that data (the
// LevelDB convention). Thread-safe, no state besides read-only tables.
#include <cstddef>
#include <cstdint>

namespace pm::crc32c {

// CRC of data, continuing from `crc` (0 to start).
std::uint32_t extend(std::uint32_t crc, const void* data, std::size_t n);
inline std::uint32_t value(const void* data, std::size_t n) { return extend(0, data, n); }

inline std::uint32_t mask(std::uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }
inline std::uint32_t unmask(std::uint32_t masked) {
  const std::uint32_t rot = masked - 0xa282ead8u;
  return (rot >> 17) | (rot << 15);
}

bool hardware_accelerated();

}  // namespace pm::crc32c

namespace pm::crc32c {
// The table-driven path alone, so tests can check it against the hardware path.
std::uint32_t extend_portable_for_test(std::uint32_t crc, const void* data, std::size_t n);
}  // namespace pm::crc32c
