#include "repos/pg_array.h"

#include <charconv>

namespace pm {

void PgArray::separator() {
  if (body_.size() > 1) body_ += ',';
}

void PgArray::add_null() {
  separator();
  body_ += "NULL";
}

void PgArray::add_text(std::string_view value) {
  separator();
  body_ += '"';
  for (const char c : value) {
    if (c == '"' || c == '\\') body_ += '\\';
    body_ += c;
  }
  body_ += '"';
}

void PgArray::add_text(const std::optional<std::string>& value) {
  if (value) add_text(std::string_view(*value)); else add_null();
}

void PgArray::add_number(double value) {
  separator();
  char buf[40];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  body_.append(buf, ec == std::errc{} ? end : buf);
}

float real_as_sent(double value) {
  PgArray one;
  one.add_number(value);
  const std::string text = one.str();  // {text}
  float real = 0;
  std::from_chars(text.data() + 1, text.data() + text.size() - 1, real);  // correctly rounded; no locale
  return real;
}

void PgArray::add_number(const std::optional<double>& value) {
  if (value) add_number(*value); else add_null();
}

void PgArray::add_integer(std::int64_t value) {
  separator();
  body_ += std::to_string(value);
}

void PgArray::add_integer(const std::optional<std::int64_t>& value) {
  if (value) add_integer(*value); else add_null();
}

}  // namespace pm
