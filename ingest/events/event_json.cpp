#include "ingest/events/event_json.h"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace pm {

// Shortest text that reads back as the same double. From 1e15 on, always in scientific notation:
// the fixed form of a large double is an integer literal, and one beyond 64 bits (2^64 as
// "18446744073709551616") is a number JSON parsers such as simdjson refuse.
std::string json_number_text(double v) {
  char buf[32];
  auto [end, ec] = std::fabs(v) >= 1e15 ? std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific)
                                         : std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc{} ? std::string(buf, end) : "?";
}

namespace {

// Length of the valid UTF-8 sequence at s[i], or 0 when invalid (Unicode's table of well-formed
// sequences: no overlong forms, no surrogates, nothing above U+10FFFF).
std::size_t utf8_length(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = byte(0);
  if (c < 0x80) return 1;
  std::size_t n = 0;
  unsigned char second_min = 0x80, second_max = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c == 0xe0) second_min = 0xa0;  // overlong below U+0800
    if (c == 0xed) second_max = 0x9f;  // U+D800..U+DFFF, surrogates
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c == 0xf0) second_min = 0x90;  // overlong below U+10000
    if (c == 0xf4) second_max = 0x8f;  // above U+10FFFF
  } else {
    return 0;  // a continuation byte, C0/C1 (overlong) or F5..FF
  }
  if (i + n > s.size() || byte(1) < second_min || byte(1) > second_max) return 0;
  for (std::size_t k = 2; k < n; ++k)
    if ((byte(k) & 0xc0) != 0x80) return 0;
  return n;
}

}  // namespace

void append_json_string(std::string& out, std::string_view text) {
  out += '"';
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
      ++i;
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
      ++i;
    } else if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
    } else if (std::size_t n = utf8_length(text, i); n > 0) {
      out.append(text.substr(i, n));
      i += n;
    } else {
      out += "\xef\xbf\xbd";
      ++i;
    }
  }
  out += '"';
}

namespace {

void field(std::string& out, const char* name) {
  out += ",\"";
  out += name;
  out += "\":";
}

void string_field(std::string& out, const char* name, const std::optional<std::string>& v) {
  if (!v) return;
  field(out, name);
  append_json_string(out, *v);
}

void number_field(std::string& out, const char* name, const std::optional<double>& v) {
  if (!v) return;
  field(out, name);
  // JSON has no NaN or infinity; the parser never accepts one, but a decoded log record may hold any
  // double, and the line must stay valid JSON.
  out += std::isfinite(*v) ? json_number_text(*v) : "null";
}

void integer_field(std::string& out, const char* name, const std::optional<std::int64_t>& v) {
  if (!v) return;
  field(out, name);
  out += std::to_string(*v);
}

}  // namespace

std::string event_to_json(const Event& event) {
  std::string out;
  if (const auto* t = std::get_if<TradeEvent>(&event.body)) {
    out = "{\"type\":\"trade\"";
    string_field(out, "condition_id", t->condition_id);
    string_field(out, "trade_id", t->trade_id);
    string_field(out, "token_id", t->token_id);
    number_field(out, "price", t->price);
    number_field(out, "size", t->size);
    string_field(out, "side", t->side);
    // A trade sent in seconds before 1973-03-03 (timestamp < 10^8) has fewer milliseconds than
    // timestamp_ms accepts; it is rendered in seconds, as it was sent, so that the line parses back.
    if (t->timestamp_ms < kMillisecondsThreshold && t->timestamp_ms % 1000 == 0)
      integer_field(out, "timestamp", t->timestamp_ms / 1000);
    else
      integer_field(out, "timestamp_ms", t->timestamp_ms);
    string_field(out, "outcome", t->outcome);
    if (t->outcome_index) integer_field(out, "outcome_index", *t->outcome_index);
    string_field(out, "raw_json", t->raw_json);
  } else {
    const auto& g = std::get<TriggerEvent>(event.body);
    out = "{\"type\":\"trigger\"";
    string_field(out, "token_id", g.token_id);
    string_field(out, "condition_id", g.condition_id);
    number_field(out, "threshold", g.threshold);
    integer_field(out, "trigger_timestamp", g.trigger_timestamp_ms);
    number_field(out, "price", g.price);
    number_field(out, "size", g.size);
    number_field(out, "model_score", g.model_score);
    string_field(out, "model_version", g.model_version);
    string_field(out, "outcome", g.outcome);
    if (g.outcome_index) integer_field(out, "outcome_index", *g.outcome_index);
  }
  out += '}';
  return out;
}

}  // namespace pm
