#include "ingest/server/protocol.h"

#include "repos/real_range.h"

#include <cctype>
#include <cfloat>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>

#include <simdjson.h>

namespace pm {

namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

// Thrown inside the parser only; parse() turns it into a Rejection.
struct Reject {
  RejectReason reason;
  std::string detail;
};

[[noreturn]] void reject(RejectReason reason, std::string detail) { throw Reject{reason, std::move(detail)}; }

std::string json_quoted(std::string_view text) {
  std::string out;
  append_json_string(out, text.substr(0, 64));
  return out;
}

// A decimal string such as "0.953", "-1", "1e-3": digits with optional sign, point and exponent.
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

class Fields {
 public:
  explicit Fields(object obj) : obj_(obj) {}

  // The field's element, or nullopt when absent or JSON null.
  std::optional<element> get(const char* name) const {
    element value;
    if (obj_.at_key(name).get(value) != simdjson::SUCCESS) return std::nullopt;
    if (value.type() == element_type::NULL_VALUE) return std::nullopt;
    return value;
  }

  std::string required_string(const char* name, bool non_empty, std::size_t max_bytes = 0) const {
    auto v = get(name);
    if (!v) reject(RejectReason::Schema, std::string("missing required field '") + name + "'");
    return checked_string(name, *v, non_empty, max_bytes);
  }

  std::optional<std::string> optional_string(const char* name) const {
    auto v = get(name);
    if (!v) return std::nullopt;
    return checked_string(name, *v, false, 0);
  }

  double required_number(const char* name) const {
    auto v = get(name);
    if (!v) reject(RejectReason::Schema, std::string("missing required field '") + name + "'");
    return number(name, *v);
  }

  std::optional<double> optional_number(const char* name) const {
    auto v = get(name);
    if (!v) return std::nullopt;
    return number(name, *v);
  }

  std::optional<std::int64_t> optional_integer(const char* name) const {
    auto v = get(name);
    if (!v) return std::nullopt;
    switch (v->type()) {
      case element_type::INT64: return std::int64_t(*v);
      case element_type::UINT64:
        reject(RejectReason::Range, std::string("'") + name + "' is too large");
      default:
        reject(RejectReason::Schema, std::string("'") + name + "' must be an integer");
    }
  }

 private:
  static std::string checked_string(const char* name, element v, bool non_empty, std::size_t max_bytes) {
    if (v.type() != element_type::STRING)
      reject(RejectReason::Schema, std::string("'") + name + "' must be a string");
    std::string_view s = v.get_string().value_unsafe();
    if (non_empty && s.empty()) reject(RejectReason::Range, std::string("'") + name + "' must not be empty");
    if (max_bytes > 0 && s.size() > max_bytes)
      reject(RejectReason::Range, std::string("'") + name + "' is " + std::to_string(s.size()) +
                                      " bytes, at most " + std::to_string(max_bytes) + " allowed");
    if (s.find('\0') != std::string_view::npos)
      reject(RejectReason::Schema, std::string("'") + name + "' contains a NUL character, which PostgreSQL text cannot store");
    return std::string(s);
  }

  static double number(const char* name, element v) {
    double out = 0;
    switch (v.type()) {
      case element_type::INT64: out = static_cast<double>(std::int64_t(v)); break;
      case element_type::UINT64: out = static_cast<double>(std::uint64_t(v)); break;
      case element_type::DOUBLE: out = double(v); break;
      case element_type::STRING: {
        std::string_view s = v.get_string().value_unsafe();
        if (!is_decimal(s))
          reject(RejectReason::Schema, std::string("'") + name + "' must be a number or a decimal string, got " + json_quoted(s));
        auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
        if (ec != std::errc{} || end != s.data() + s.size())
          reject(RejectReason::Range, std::string("'") + name + "' is out of range: " + json_quoted(s));
        break;
      }
      default:
        reject(RejectReason::Schema, std::string("'") + name + "' must be a number or a decimal string");
    }
    if (!fits_real(out))
      reject(RejectReason::Range, std::string("'") + name + "' " + json_number_text(out) +
                                      (std::isfinite(out) && std::fabs(out) < 1 ? " is too small for a REAL column (it would not be stored as itself)"
                                                                                : " is beyond the range of a REAL column"));
    return out == 0 ? 0.0 : out;  // -0 (from "-0" or -0.0) is stored as 0
  }

  object obj_;
};

std::optional<std::int32_t> outcome_index(const Fields& f) {
  auto v = f.optional_integer("outcome_index");
  if (!v) return std::nullopt;
  if (*v < 0 || *v > std::numeric_limits<std::int32_t>::max())
    reject(RejectReason::Range, "'outcome_index' must be between 0 and 2147483647, got " + std::to_string(*v));
  return static_cast<std::int32_t>(*v);
}

std::int64_t trade_timestamp_ms(const Fields& f) {
  auto seconds = f.optional_integer("timestamp");
  auto millis = f.optional_integer("timestamp_ms");
  if (!seconds && !millis) reject(RejectReason::Schema, "missing required field 'timestamp' (epoch seconds) or 'timestamp_ms'");
  if (seconds) {
    if (*seconds <= 0) reject(RejectReason::Range, "'timestamp' must be > 0, got " + std::to_string(*seconds));
    if (*seconds >= kMillisecondsThreshold)
      reject(RejectReason::TimestampUnits, "'timestamp' " + std::to_string(*seconds) +
                                               " looks like milliseconds; send it as 'timestamp_ms'");
  }
  if (millis) {
    if (*millis <= 0) reject(RejectReason::Range, "'timestamp_ms' must be > 0, got " + std::to_string(*millis));
    if (*millis < kMillisecondsThreshold)
      reject(RejectReason::TimestampUnits, "'timestamp_ms' " + std::to_string(*millis) +
                                               " looks like seconds; send it as 'timestamp'");
  }
  if (seconds && millis && *millis / 1000 != *seconds)
    reject(RejectReason::Schema, "'timestamp' and 'timestamp_ms' disagree");
  return millis ? *millis : *seconds * 1000;
}

// An event time more than kMaxFutureMs after the line arrived is refused: no clock is that wrong,
// and one such value would hold the freshness metrics for years.
void check_not_far_future(const char* name, std::int64_t event_ms, std::int64_t received_ms) {
  if (event_ms > received_ms + kMaxFutureMs)
    reject(RejectReason::Range, std::string("'") + name + "' " + std::to_string(event_ms) +
                                    " is more than a day after the line arrived (" + std::to_string(received_ms) + " ms)");
}

TradeEvent parse_trade(const Fields& f, std::string_view line) {
  TradeEvent t;
  t.condition_id = f.required_string("condition_id", true, kMaxKeyBytes);
  t.trade_id = f.required_string("trade_id", true, kMaxKeyBytes);
  t.token_id = f.optional_string("token_id");
  t.price = f.required_number("price");
  if (t.price < 0 || t.price > 1)
    reject(RejectReason::Range, "'price' must be between 0 and 1, got " + json_number_text(t.price));
  t.size = f.required_number("size");
  if (t.size < 0) reject(RejectReason::Range, "'size' must be >= 0, got " + json_number_text(t.size));
  std::string side = f.required_string("side", true);
  for (char& c : side) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (side != "BUY" && side != "SELL")
    reject(RejectReason::Range, "'side' must be BUY or SELL, got " + json_quoted(side));
  t.side = std::move(side);
  t.timestamp_ms = trade_timestamp_ms(f);
  t.outcome = f.optional_string("outcome");
  t.outcome_index = outcome_index(f);
  auto raw = f.optional_string("raw_json");
  t.raw_json = raw ? std::move(*raw) : std::string(line);
  return t;
}

TriggerEvent parse_trigger(const Fields& f) {
  TriggerEvent t;
  t.token_id = f.required_string("token_id", true, kMaxKeyBytes);
  t.condition_id = f.required_string("condition_id", true, kMaxKeyBytes);
  t.threshold = f.required_number("threshold");
  if (!(t.threshold > 0 && t.threshold <= 1))
    reject(RejectReason::Range, "'threshold' must be > 0 and <= 1, got " + json_number_text(t.threshold));
  auto ts = f.optional_integer("trigger_timestamp");
  if (!ts) reject(RejectReason::Schema, "missing required field 'trigger_timestamp' (epoch milliseconds)");
  if (*ts <= 0) reject(RejectReason::Range, "'trigger_timestamp' must be > 0, got " + std::to_string(*ts));
  if (*ts < kMillisecondsThreshold)
    reject(RejectReason::TimestampUnits, "'trigger_timestamp' " + std::to_string(*ts) +
                                             " looks like seconds; it must be epoch milliseconds");
  t.trigger_timestamp_ms = *ts;
  t.price = f.optional_number("price");
  t.size = f.optional_number("size");
  t.model_score = f.optional_number("model_score");
  t.model_version = f.optional_string("model_version");
  t.outcome = f.optional_string("outcome");
  t.outcome_index = outcome_index(f);
  return t;
}

}  // namespace

struct LineParser::Impl {
  simdjson::dom::parser parser;
};

LineParser::LineParser() : impl_(std::make_unique<Impl>()) {}
LineParser::~LineParser() = default;

std::variant<Event, Rejection> LineParser::parse(std::string_view line, std::int64_t received_ms) {
  try {
    std::size_t first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos) return Rejection{RejectReason::Parse, "empty line"};
    element doc;
    if (auto error = impl_->parser.parse(line.data(), line.size(), true).get(doc); error != simdjson::SUCCESS)
      return Rejection{RejectReason::Parse, std::string("not valid JSON: ") + simdjson::error_message(error)};
    object obj;
    if (doc.get_object().get(obj) != simdjson::SUCCESS)
      return Rejection{RejectReason::Schema, "a line must be a JSON object"};
    Fields fields(obj);
    auto type = fields.get("type");
    if (!type || type->type() != element_type::STRING)
      return Rejection{RejectReason::Schema, "missing required string field 'type'"};
    std::string_view kind = type->get_string().value_unsafe();
    Event event;
    event.received_ms = received_ms;
    if (kind == "trade") {
      TradeEvent trade = parse_trade(fields, line);
      check_not_far_future(fields.get("timestamp_ms") ? "timestamp_ms" : "timestamp", trade.timestamp_ms, received_ms);
      event.body = std::move(trade);
    } else if (kind == "trigger") {
      TriggerEvent trigger = parse_trigger(fields);
      check_not_far_future("trigger_timestamp", trigger.trigger_timestamp_ms, received_ms);
      event.body = std::move(trigger);
    } else {
      return Rejection{RejectReason::Schema, "unknown type " + json_quoted(kind) + " (expected \"trade\" or \"trigger\")"};
    }
    return event;
  } catch (const Reject& r) {
    return Rejection{r.reason, r.detail};
  } catch (const std::exception& e) {
    return Rejection{RejectReason::Parse, std::string("cannot parse: ") + e.what()};
  }
}

const char* to_string(RejectReason reason) {
  switch (reason) {
    case RejectReason::Parse: return "parse";
    case RejectReason::Schema: return "schema";
    case RejectReason::Range: return "range";
    case RejectReason::TimestampUnits: return "timestamp_units";
    case RejectReason::TooLong: return "too_long";
    case RejectReason::Busy: return "busy";
  }
  return "parse";
}

void append_ack(std::string& out, std::uint64_t line) {
  out += "{\"ack\":";
  out += std::to_string(line);
  out += "}\n";
}

void append_error(std::string& out, RejectReason reason, std::uint64_t line, std::string_view detail) {
  out += "{\"error\":\"";
  out += to_string(reason);
  out += "\",\"line\":";
  out += std::to_string(line);
  out += ",\"detail\":";
  append_json_string(out, detail);
  out += "}\n";
}

}  // namespace pm
