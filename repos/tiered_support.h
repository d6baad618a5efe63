#pragma once
// Helpers shared by the tiered-data repositories (candles, order books, market universe), whose
// time columns are TIMESTAMP without time zone (storage-api.md 2.17).
// - In C++ every such time is the canonical UTC text of clock.h (`YYYY-MM-DDTHH:MM:SS.ffffffZ`).
//   Callers may pass any text parse_iso() accepts; unparseable text throws std::invalid_argument
//   naming the column, before any SQL runs.
// - The columns always hold UTC: values are bound as timestamptz and converted with
//   `AT TIME ZONE 'UTC'`, and "now" is `now() AT TIME ZONE 'UTC'` (kNowUtc), so the session's
//   TimeZone setting never shifts a stored or compared time.
// - Reading a column back needs the session's DateStyle to be ISO: every session of the pool has it
//   (database.h); a caller's own connection with another one (`SQL, DMY`) makes read_time throw
//   "unreadable timestamp".
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <pqxx/result>

#include "repos/util/clock.h"

namespace pm::tiered {

inline constexpr const char* kNowUtc = "(now() AT TIME ZONE 'UTC')";

// Canonical text of a caller's time, or std::invalid_argument naming `column`.
inline std::string write_time(const std::string& text, const char* column) {
  auto canonical = canonical_iso(text);
  if (!canonical) throw std::invalid_argument(std::string(column) + ": '" + text + "' is not an ISO-8601 time");
  return *canonical;
}
inline std::optional<std::string> write_time(const std::optional<std::string>& text, const char* column) {
  if (!text) return std::nullopt;
  return write_time(*text, column);
}
inline SystemTime parse_time(const std::string& text, const char* column) {
  auto t = parse_iso(text);
  if (!t) throw std::invalid_argument(std::string(column) + ": '" + text + "' is not an ISO-8601 time");
  return *t;
}

// A TIMESTAMP column read back as canonical UTC text.
inline std::string read_time(const pqxx::field& field) {
  const std::string raw = field.as<std::string>();
  auto canonical = canonical_iso(raw);
  if (!canonical) throw std::runtime_error(std::string("unreadable timestamp in ") + field.name() + ": " + raw);
  return *canonical;
}
inline std::optional<std::string> read_optional_time(const pqxx::field& field) {
  if (field.is_null()) return std::nullopt;
  return read_time(field);
}

// Appends one element to a PostgreSQL array literal under construction ("{" already written).
inline void append_array_element(std::string& out, const std::string& value) {
  if (out.size() > 1) out += ',';
  out += '"';
  for (const char c : value) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
}
// `{"a","b"}`: a text[] literal (elements quoted and escaped).
inline std::string text_array(const std::vector<std::string>& values) {
  std::string out = "{";
  for (const auto& v : values) append_array_element(out, v);
  return out + "}";
}

}  // namespace pm::tiered
