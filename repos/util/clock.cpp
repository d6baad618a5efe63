#include "repos/util/clock.h"

#include <charconv>
#include <ctime>

namespace pm {

using namespace std::chrono;

std::int64_t now_epoch_ms() {
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::int64_t now_epoch_s() {
  return duration_cast<seconds>(system_clock::now().time_since_epoch()).count();
}

std::string format_iso(SystemTime t) {
  const auto us = duration_cast<microseconds>(t.time_since_epoch()).count();
  std::int64_t secs = us / 1'000'000;
  std::int64_t frac = us % 1'000'000;
  if (frac < 0) {
    frac += 1'000'000;
    secs -= 1;
  }
  const std::time_t tt = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(frac));
  return buf;
}

std::string format_iso_ms(std::int64_t epoch_ms) { return format_iso(SystemTime(milliseconds(epoch_ms))); }

std::string now_iso() { return format_iso(system_clock::now()); }

namespace {

// Reads exactly `width` digits at text[pos]; advances pos.
bool read_digits(std::string_view text, std::size_t& pos, int width, int& out) {
  if (pos + static_cast<std::size_t>(width) > text.size()) return false;
  out = 0;
  for (int i = 0; i < width; ++i) {
    const char c = text[pos + static_cast<std::size_t>(i)];
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  pos += static_cast<std::size_t>(width);
  return true;
}

bool expect(std::string_view text, std::size_t& pos, char c) {
  if (pos >= text.size() || text[pos] != c) return false;
  ++pos;
  return true;
}

// The fields of an ISO 8601 timestamp as read, before any range check.
struct IsoFields {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  std::int64_t micros = 0, offset_minutes = 0;
};

// YYYY-MM-DD
bool read_date(std::string_view text, std::size_t& pos, IsoFields& f) {
  return read_digits(text, pos, 4, f.year) && expect(text, pos, '-') && read_digits(text, pos, 2, f.month) &&
         expect(text, pos, '-') && read_digits(text, pos, 2, f.day);
}

// 'T' or ' ', then hh:mm and an optional :ss; `has_seconds` tells whether :ss was there.
bool read_time(std::string_view text, std::size_t& pos, IsoFields& f, bool& has_seconds) {
  if (pos >= text.size() || (text[pos] != 'T' && text[pos] != ' ')) return false;
  ++pos;
  if (!read_digits(text, pos, 2, f.hour) || !expect(text, pos, ':') || !read_digits(text, pos, 2, f.minute))
    return false;
  f.second = 0;
  has_seconds = false;
  if (pos < text.size() && text[pos] == ':') {
    ++pos;
    if (!read_digits(text, pos, 2, f.second)) return false;
    has_seconds = true;
  }
  return true;
}

// An optional '.' and at least one digit; digits past the sixth (below a microsecond) are dropped.
// Only after seconds: in ISO 8601 `hh:mm.5` is half a minute, a reading no writer of ours meant.
bool read_fraction(std::string_view text, std::size_t& pos, bool has_seconds, std::int64_t& micros) {
  micros = 0;
  if (pos >= text.size() || text[pos] != '.') return true;
  if (!has_seconds) return false;
  ++pos;
  int digits = 0;
  while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
    if (digits < 6) micros = micros * 10 + (text[pos] - '0');
    ++digits;
    ++pos;
  }
  if (digits == 0) return false;
  for (int i = digits; i < 6; ++i) micros *= 10;
  return true;
}

// An optional 'Z' or +hh, +hhmm, +hh:mm (or '-'); anything else is left for the caller to reject.
bool read_offset(std::string_view text, std::size_t& pos, std::int64_t& offset_minutes) {
  offset_minutes = 0;
  if (pos >= text.size()) return true;
  if (text[pos] == 'Z') {
    ++pos;
  } else if (text[pos] == '+' || text[pos] == '-') {
    const int sign = text[pos] == '-' ? -1 : 1;
    ++pos;
    int oh, om = 0;
    if (!read_digits(text, pos, 2, oh)) return false;
    if (pos < text.size() && text[pos] == ':') {
      ++pos;
      if (!read_digits(text, pos, 2, om)) return false;  // `+hh:` alone is not an offset
    } else if (pos < text.size() && !read_digits(text, pos, 2, om)) {
      return false;
    }
    if (oh > 23 || om > 59) return false;
    offset_minutes = sign * (oh * 60 + om);
  }
  return true;
}

// The instant the fields name, or nullopt when one is out of range, the date does not exist, or the
// instant lies outside what SystemTime holds (nanoseconds in libstdc++: about 1678 to 2261).
std::optional<SystemTime> to_time(const IsoFields& f) {
  if (f.year < 1 || f.month < 1 || f.month > 12 || f.day < 1 || f.day > 31 || f.hour > 23 || f.minute > 59 || f.second > 60)
    return std::nullopt;
  const year_month_day ymd{std::chrono::year{f.year}, std::chrono::month{static_cast<unsigned>(f.month)},
                           std::chrono::day{static_cast<unsigned>(f.day)}};
  if (!ymd.ok()) return std::nullopt;
  const auto days = sys_days{ymd};
  const auto t = days + hours{f.hour} + minutes{f.minute} + seconds{f.second} + microseconds{f.micros} -
                 minutes{f.offset_minutes};
  if (t < time_point_cast<microseconds>(SystemTime::min()) || t > time_point_cast<microseconds>(SystemTime::max()))
    return std::nullopt;
  return time_point_cast<system_clock::duration>(t);
}

}  // namespace

std::optional<SystemTime> parse_iso(std::string_view text) {
  std::size_t pos = 0;
  IsoFields f;
  if (!read_date(text, pos, f)) return std::nullopt;
  if (pos == text.size()) return to_time(f);  // a date alone: midnight UTC
  bool has_seconds = false;
  if (!read_time(text, pos, f, has_seconds) || !read_fraction(text, pos, has_seconds, f.micros) ||
      !read_offset(text, pos, f.offset_minutes))
    return std::nullopt;
  if (pos != text.size()) return std::nullopt;
  return to_time(f);
}

std::optional<std::string> canonical_iso(std::string_view text) {
  auto t = parse_iso(text);
  if (!t) return std::nullopt;
  return format_iso(*t);
}

}  // namespace pm
