#pragma once
// PgArray: builds the text literal of a PostgreSQL array ({"a",NULL,"b\"c"} or {1.5,NULL}) to bind
// as one parameter (`$1::text[]`, `$2::real[]`, ...), so a whole batch travels in one statement
// with `unnest`. Elements are appended in order; a null optional becomes NULL. Not thread-safe.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pm {

class PgArray {
 public:
  void add_text(std::string_view value);
  void add_text(const std::string& value) { add_text(std::string_view(value)); }
  void add_text(const std::optional<std::string>& value);
  void add_number(double value);
  void add_number(const std::optional<double>& value);
  void add_integer(std::int64_t value);
  void add_integer(const std::optional<std::int64_t>& value);
  void add_null();

  // The literal, e.g. {"a","b"}; {} when empty.
  std::string str() const { return body_ + "}"; }

 private:
  void separator();
  std::string body_ = "{";
};

// The REAL (float4) PostgreSQL makes of `value` as add_number sends it: its shortest decimal text,
// read with correct rounding (float4in). The key a REAL column compares, where
// static_cast<float>(value) can differ (a double halfway between two floats, such as
// 0.5000000298023223876953125, rounds to even in C++ and up from its shortest text). Group REAL
// keys by this, never by a cast. For a value fits_real accepts (others are refused by the server).
// PostgreSQL 12 and later (11 and earlier read the text as a double and cast it, as a cast does).
float real_as_sent(double value);

}  // namespace pm
