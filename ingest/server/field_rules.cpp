#include "ingest/server/field_rules.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <span>
#include <vector>

#include "ingest/events/event_json.h"
#include "ingest/server/json_spans.h"
#include "repos/real_range.h"

namespace pm {

using simdjson::dom::element;
using simdjson::dom::element_type;

void reject(RejectReason reason, std::string detail) { throw FieldError{reason, std::move(detail)}; }

std::string json_quoted(std::string_view text) {
  std::string out;
  append_json_string(out, text.substr(0, 64));
  return out;
}

bool is_decimal(std::string_view s) {
  std::size_t i = 0;
  if (i < s.size() && s[i] == '-') ++i;
  std::size_t digits = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++digits;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++digits;
  }
  if (digits == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    std::size_t exp_digits = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++exp_digits;
    if (exp_digits == 0) return false;
  }
  return i == s.size();
}

void check_epoch(const char* name, std::int64_t value, EpochUnit unit, std::string_view hint) {
  if (value <= 0) reject(RejectReason::Range, std::string("'") + name + "' must be > 0, got " + std::to_string(value));
  const bool looks_like_ms = unit_by_size(value) == TimestampUnit::Milliseconds;
  if (unit == EpochUnit::Seconds && looks_like_ms)
    reject(RejectReason::TimestampUnits,
           std::string("'") + name + "' " + std::to_string(value) + " looks like milliseconds; " + std::string(hint));
  // Below 10^8 it is no plausible time in either unit: the hint (send it in seconds) would only get
  // the line refused again, as before 1973.
  if (unit == EpochUnit::Milliseconds && !looks_like_ms)
    reject(RejectReason::TimestampUnits, std::string("'") + name + "' " + std::to_string(value) + " looks like seconds" +
                                             (value < kMillisecondsThreshold / 1000 ? std::string(" (and is before 1973 even so)")
                                                                                    : "; " + std::string(hint)));
  if (unit == EpochUnit::Seconds && value < kMillisecondsThreshold / 1000)
    reject(RejectReason::Range, std::string("'") + name + "' " + std::to_string(value) +
                                    " is before 1973-03-03 (10^8 s): in milliseconds it would be below 10^11, "
                                    "which the tables' size rule reads as seconds, so it could not be stored");
}

void check_not_far_future(const char* name, std::int64_t event_ms, std::int64_t received_ms) {
  if (event_ms > received_ms + kMaxFutureMs)
    reject(RejectReason::Range, std::string("'") + name + "' " + std::to_string(event_ms) +
                                    " is more than a day after the line arrived (" + std::to_string(received_ms) + " ms)");
}

namespace {

[[noreturn]] void missing(const char* name) {
  reject(RejectReason::Schema, std::string("missing required field '") + name + "'");
}

std::string checked_string(const char* name, element v, bool non_empty, std::size_t max_bytes) {
  if (v.type() != element_type::STRING) reject(RejectReason::Schema, std::string("'") + name + "' must be a string");
  std::string_view s = v.get_string().value_unsafe();
  if (non_empty && s.empty()) reject(RejectReason::Range, std::string("'") + name + "' must not be empty");
  if (max_bytes > 0 && s.size() > max_bytes)
    reject(RejectReason::Range, std::string("'") + name + "' is " + std::to_string(s.size()) + " bytes, at most " +
                                    std::to_string(max_bytes) + " allowed");
  if (s.find('\0') != std::string_view::npos)
    reject(RejectReason::Schema,
           std::string("'") + name + "' contains a NUL character, which PostgreSQL text cannot store");
  return std::string(s);
}

double decimal_string(const char* name, std::string_view s) {
  double out = 0;
  if (!is_decimal(s))
    reject(RejectReason::Schema, std::string("'") + name + "' must be a number or a decimal string, got " + json_quoted(s));
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (ec != std::errc{} || end != s.data() + s.size())
    reject(RejectReason::Range, std::string("'") + name + "' is out of range: " + json_quoted(s));
  return out;
}

double number(const char* name, element v) {
  double out = 0;
  switch (v.type()) {
    case element_type::INT64: out = static_cast<double>(std::int64_t(v)); break;
    case element_type::UINT64: out = static_cast<double>(std::uint64_t(v)); break;
    case element_type::DOUBLE: out = double(v); break;
    case element_type::STRING: out = decimal_string(name, v.get_string().value_unsafe()); break;
    default: reject(RejectReason::Schema, std::string("'") + name + "' must be a number or a decimal string");
  }
  if (!fits_real(out))
    reject(RejectReason::Range,
           std::string("'") + name + "' " + json_number_text(out) +
               (std::isfinite(out) && std::fabs(out) < 1 ? " is too small for a REAL column (it would not be stored as itself)"
                                                         : " is beyond the range of a REAL column"));
  return out == 0 ? 0.0 : out;  // -0 (from "-0" or -0.0) is stored as 0
}

std::int64_t digits_string(const char* name, std::string_view s) {
  std::int64_t out = 0;
  const bool digits = !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
  if (!digits) reject(RejectReason::Schema, std::string("'") + name + "' must be an integer, got " + json_quoted(s));
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (ec != std::errc{} || end != s.data() + s.size())
    reject(RejectReason::Range, std::string("'") + name + "' is too large");
  return out;
}

}  // namespace

namespace {

bool number_char(char c) { return (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'; }

// A number literal whose mantissa has a digit other than 0 and whose value underflows a double.
bool underflows(std::string_view token) {
  const std::string_view mantissa = token.substr(0, token.find_first_of("eE"));
  if (mantissa.find_first_of("123456789") == std::string_view::npos) return false;
  double value = 0;
  const auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), value);
  return ec == std::errc::result_out_of_range || (ec == std::errc{} && value == 0);
}

}  // namespace

// Whether `line` may hold a number a double cannot hold but as 0: a double's smallest value is
// ~4.9e-324, so such a literal has a digit, 'e' or 'E', '-' and three digits ("1e-400"), or a
// long run of zeros after its point. One memchr pass over the '-'s, one search for the zeros:
// hyphens in ids and titles ("trade-uuid", "9e-4a1b") do not pass.
static bool may_hold_a_number_stored_as_zero(std::string_view line) {
  const auto digit = [](char c) { return c >= '0' && c <= '9'; };
  for (const char* p = line.data(); (p = static_cast<const char*>(std::memchr(p, '-', line.data() + line.size() - p))) != nullptr;
       ++p) {
    const std::size_t at = static_cast<std::size_t>(p - line.data());
    if (at >= 2 && at + 3 < line.size() && (line[at - 1] == 'e' || line[at - 1] == 'E') &&
        (digit(line[at - 2]) || line[at - 2] == '.') && digit(line[at + 1]) && digit(line[at + 2]) && digit(line[at + 3]))
      return true;
  }
  return line.find(".0000000000000000") != std::string_view::npos;
}

std::optional<std::string_view> number_stored_as_zero(std::string_view line) {
  if (!may_hold_a_number_stored_as_zero(line)) return std::nullopt;
  for (std::size_t i = 0; i < line.size();) {
    const char c = line[i];
    if (c == '"') {
      i = json_string_end(line, i);
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      std::size_t end = i;
      while (end < line.size() && number_char(line[end])) ++end;
      if (const std::string_view token = line.substr(i, end - i); underflows(token)) return token;
      i = end;
    } else {
      ++i;
    }
  }
  return std::nullopt;
}

void refuse_a_number_stored_as_zero(std::string_view line) {
  if (const auto number = number_stored_as_zero(line))
    reject(RejectReason::Range, "the number " + std::string(number->substr(0, 64)) +
                                    " is too small for a double: it would be read and stored as 0");
}

namespace {

// Whether `t` follows JSON's number grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
bool json_number_grammar(std::string_view t) {
  std::size_t i = 0;
  const auto digits = [&] {
    const std::size_t from = i;
    while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i;
    return i > from;
  };
  if (i < t.size() && t[i] == '-') ++i;
  if (i < t.size() && t[i] == '0') {
    ++i;
  } else if (!digits()) {
    return false;
  }
  if (i < t.size() && t[i] == '.' && (++i, !digits())) return false;
  if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == t.size();
}

// Why a JSON parser holding numbers as 64-bit integers and doubles refuses the number `t`, or "".
std::string number_refusal(std::string_view t) {
  if (!json_number_grammar(t)) return "is not a valid JSON number";
  const auto out_of_range = [&](auto value) {
    return std::from_chars(t.data(), t.data() + t.size(), value).ec == std::errc::result_out_of_range;
  };
  if (t.find_first_of(".eE") == std::string_view::npos &&
      (t[0] == '-' ? out_of_range(std::int64_t{}) : out_of_range(std::uint64_t{})))
    return "is an integer beyond 64 bits";
  // Only an exponent or more than 308 digits can overflow a double: strtod for those alone (a
  // hostile line of a million small numbers costs one scan).
  if (t.find_first_of("eE") == std::string_view::npos && t.size() <= 308) return "";
  errno = 0;
  if (const double value = std::strtod(std::string(t).c_str(), nullptr); errno == ERANGE && std::isinf(value))
    return "is beyond what a double holds";  // (an underflow is refused as a range error later)
  return "";
}

// The first number of `line` (outside strings) a parser refuses, named with the key it is the
// value of when it is one: "the number 1e400 of \"size\" is beyond what a double holds"; or "".
std::string refused_number(std::string_view line) {
  std::size_t key_begin = 0, key_end = 0;  // the last string seen
  for (std::size_t i = 0; i < line.size();) {
    const char c = line[i];
    if (c == '"') {
      key_begin = i;
      i = key_end = json_string_end(line, i);
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      std::size_t end = i;  // to the next structural character or whitespace, as the parser reads a number
      while (end < line.size() && std::string_view(",:[]{}\" \t\r\n").find(line[end]) == std::string_view::npos) ++end;
      const std::string_view token = line.substr(i, end - i);
      if (const std::string why = number_refusal(token); !why.empty()) {
        const std::string_view between = key_end > 0 ? line.substr(key_end, i - key_end) : std::string_view("?");
        const bool member = between.find_first_not_of(" \t\r\n:") == std::string_view::npos &&
                            std::count(between.begin(), between.end(), ':') == 1;
        const std::string_view key = line.substr(key_begin, key_end - key_begin);
        return "the number " + std::string(token.substr(0, 64)) + (token.size() > 64 ? "..." : "") +
               (member ? " of " + std::string(key.substr(0, 66)) + (key.size() > 66 ? "..." : "") : "") + " " + why;
      }
      i = end;
    } else {
      ++i;
    }
  }
  return "";
}

}  // namespace

std::string json_error_detail(simdjson::error_code error, std::string_view line) {
  std::string detail = std::string("not valid JSON: ") + simdjson::error_message(error);
  if (error != simdjson::NUMBER_ERROR) return detail;
  if (const std::string number = refused_number(line); !number.empty()) return detail + ": " + number;
  return detail + " (malformed, or beyond what a double holds, like 1e400, or an integer beyond 64 bits)";
}

namespace {

// The first key `keys` holds twice, or nullopt; sorts `keys`.
std::optional<std::string_view> repeated_key(std::span<std::string_view> keys) {
  std::sort(keys.begin(), keys.end());
  const auto twice = std::adjacent_find(keys.begin(), keys.end());
  if (twice == keys.end()) return std::nullopt;
  return *twice;
}

}  // namespace

Fields::Fields(simdjson::dom::object obj) : obj_(obj) {
  constexpr std::size_t kOnStack = 64;  // an event's object has a dozen keys; more go to the heap
  std::array<std::string_view, kOnStack> few;
  std::vector<std::string_view> many;
  std::size_t n = 0;
  for (const simdjson::dom::key_value_pair field : obj) {
    if (n < kOnStack) {
      few[n++] = field.key;
      continue;
    }
    if (many.empty()) many.assign(few.begin(), few.end());
    many.push_back(field.key);
  }
  const std::optional<std::string_view> twice = many.empty() ? repeated_key(std::span(few.data(), n)) : repeated_key(many);
  if (twice) reject(RejectReason::Schema, "key " + json_quoted(*twice) + " appears more than once in the object");
}

std::optional<element> Fields::get(const char* name) const {
  element value;
  if (obj_.at_key(name).get(value) != simdjson::SUCCESS) return std::nullopt;
  if (value.type() == element_type::NULL_VALUE) return std::nullopt;
  return value;
}

std::string Fields::required_string(const char* name, bool non_empty, std::size_t max_bytes) const {
  auto v = get(name);
  if (!v) missing(name);
  return checked_string(name, *v, non_empty, max_bytes);
}

std::optional<std::string> Fields::optional_string(const char* name) const {
  auto v = get(name);
  if (!v) return std::nullopt;
  return checked_string(name, *v, false, 0);
}

double Fields::required_number(const char* name) const {
  auto v = get(name);
  if (!v) missing(name);
  return number(name, *v);
}

std::optional<double> Fields::optional_number(const char* name) const {
  auto v = get(name);
  if (!v) return std::nullopt;
  return number(name, *v);
}

std::optional<std::int64_t> Fields::optional_integer(const char* name) const {
  auto v = get(name);
  if (!v) return std::nullopt;
  switch (v->type()) {
    case element_type::INT64: return std::int64_t(*v);
    case element_type::UINT64: reject(RejectReason::Range, std::string("'") + name + "' is too large");
    default: reject(RejectReason::Schema, std::string("'") + name + "' must be an integer");
  }
}

std::int64_t Fields::required_integer_or_digits(const char* name) const {
  auto v = get(name);
  if (!v) missing(name);
  if (v->type() == element_type::STRING) return digits_string(name, v->get_string().value_unsafe());
  return *optional_integer(name);
}

std::optional<std::int32_t> Fields::optional_index(const char* name) const {
  auto v = optional_integer(name);
  if (!v) return std::nullopt;
  if (*v < 0 || *v > std::numeric_limits<std::int32_t>::max())
    reject(RejectReason::Range,
           std::string("'") + name + "' must be between 0 and 2147483647, got " + std::to_string(*v));
  return static_cast<std::int32_t>(*v);
}

std::string Fields::side(const char* name) const {
  const std::string sent = required_string(name, true);
  std::string side = sent;
  for (char& c : side) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (side != "BUY" && side != "SELL")
    reject(RejectReason::Range, std::string("'") + name + "' must be BUY or SELL, got " + json_quoted(sent));
  return side;
}

double Fields::price(const char* name) const {
  const double price = required_number(name);
  if (price < 0 || price > 1)
    reject(RejectReason::Range, std::string("'") + name + "' must be between 0 and 1, got " + json_number_text(price));
  return price;
}

double Fields::size(const char* name) const {
  const double size = required_number(name);
  if (size < 0) reject(RejectReason::Range, std::string("'") + name + "' must be >= 0, got " + json_number_text(size));
  return size;
}

}  // namespace pm
