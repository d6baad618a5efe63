#pragma once
// The field rules every accepted payload obeys, shared by protocol v1 (protocol.cpp) and the
// Polymarket formats (polymarket_payloads.cpp): typed reads of a simdjson object's fields that
// throw FieldError (a protocol reason and a detail naming the field) when a field breaks its
// rule. Internal to the parsers: they catch FieldError and turn it into a Rejection.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <simdjson.h>

#include "ingest/server/protocol.h"
#include "repos/timestamp_unit.h"

namespace pm {

struct FieldError {
  RejectReason reason;
  std::string detail;
};

[[noreturn]] void reject(RejectReason reason, std::string detail);

// `text` (its first 64 bytes) as a JSON string, for details.
std::string json_quoted(std::string_view text);

// A decimal string such as "0.953", ".48", "-1", "1e-3": digits with optional sign, point and exponent.
bool is_decimal(std::string_view s);

// The unit a source's epoch values are in; a value of the other size is refused with
// timestamp_units (unit_by_size of repos/timestamp_unit.h tells them apart: one rule for the
// daemon and the library).
using EpochUnit = TimestampUnit;

// Refuses `value` of field `name` unless it is > 0 (range) and of `unit`'s size
// (timestamp_units; `hint` ends the detail, e.g. "send it as 'timestamp_ms'"). A seconds value
// before 10^8 (1973-03-03) is refused too (range): its milliseconds would be below 10^11, which
// the library's size rule reads as seconds, so a milliseconds table could not take it; refused
// whatever the table's unit, so every daemon answers one line alike.
void check_epoch(const char* name, std::int64_t value, EpochUnit unit, std::string_view hint);

// An event time more than kMaxFutureMs after the line arrived is refused (range): no clock is
// that wrong, and one such value would hold the freshness metrics for years.
void check_not_far_future(const char* name, std::int64_t event_ms, std::int64_t received_ms);

// The detail of a line simdjson could not parse: its message, and for a number error the number
// and the key it is the value of, and why (not valid JSON, an integer beyond 64 bits, beyond what
// a double holds, like 1e400); the limits in general when no number in `line` explains it.
std::string json_error_detail(simdjson::error_code error, std::string_view line);

// The first number of `line` (JSON text outside strings) whose digits are not all zero but which a
// double holds only as 0 (1e-400: simdjson reads it as 0 and says nothing), or nullopt. The
// parsers refuse such a line (range): the event would be stored with that field 0. Cheap on a
// line without a digit followed by "e-"/"E-" and three digits, or a long run of zeros after a point
// (a memchr pass and one search).
std::optional<std::string_view> number_stored_as_zero(std::string_view line);
// Throws FieldError (range, naming the number) when number_stored_as_zero finds one.
void refuse_a_number_stored_as_zero(std::string_view line);

class Fields {
 public:
  // Refuses (schema) an object that names one key twice: its fields would be read from the first,
  // while raw_json keeps the line, which readers' last-key-wins parsers (Python, JavaScript,
  // PostgreSQL's jsonb) read as the other value.
  explicit Fields(simdjson::dom::object obj);

  // The field's element, or nullopt when absent or JSON null.
  std::optional<simdjson::dom::element> get(const char* name) const;
  std::string required_string(const char* name, bool non_empty, std::size_t max_bytes = 0) const;
  std::optional<std::string> optional_string(const char* name) const;
  // A number or a decimal string, within the range of a REAL column; -0 becomes 0.
  double required_number(const char* name) const;
  std::optional<double> optional_number(const char* name) const;
  // A JSON integer (an integer in a string is refused: schema).
  std::optional<std::int64_t> optional_integer(const char* name) const;
  // A JSON integer or a string of decimal digits (how some sources send epochs).
  std::int64_t required_integer_or_digits(const char* name) const;
  // 0 to 2147483647.
  std::optional<std::int32_t> optional_index(const char* name) const;
  // "BUY" or "SELL" in any case, upper-cased.
  std::string side(const char* name) const;
  // A trade's price (0 to 1) and size (>= 0), as required_number.
  double price(const char* name) const;
  double size(const char* name) const;

 private:
  simdjson::dom::object obj_;
};

}  // namespace pm
