#pragma once
// Wall-clock helpers in UTC. Every TEXT `*_at` column the library writes goes through format_iso(),
// one fixed format (`2026-11-23T22:31:05.123456Z`, always 27 characters; fix for D12). Rows of
// other writers hold other shapes, so SQL orders those columns by pm_text_time() (seed/06), never
// by their text (D8). Epochs come from the system clock, never from a local-time reading (fix for
// D11). Thread-safe; no state.
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace pm {

using SystemTime = std::chrono::system_clock::time_point;

std::int64_t now_epoch_ms();
std::int64_t now_epoch_s();

// A source of "now" in epoch ms, for code that reads the clock and lets a caller (a test) supply
// it; now_epoch_ms is the real one.
using EpochMsClock = std::function<std::int64_t()>;

// `YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC.
std::string format_iso(SystemTime t);
// format_iso of an instant given in epoch milliseconds (an event's arrival, an archive's range).
std::string format_iso_ms(std::int64_t epoch_ms);
std::string now_iso();

// Parses the canonical format and the ISO-8601 variants other writers used:
//   `YYYY-MM-DD` (midnight UTC), or `YYYY-MM-DD{T| }hh:mm[:ss[.f+]][zone]`, zone `Z`, `+hh`,
//   `+hhmm`, `+hh:mm` (or `-`), none meaning UTC; digits below a microsecond are dropped.
// nullopt for anything else, for a time that does not exist (month 13, 30 February, hour 24, an
// offset past 23:59) and outside SystemTime's range. seed/06_text_time.sql's pm_text_time() reads
// the same shapes the same way in SQL (any year from 1 to 9999 there); keep the two in step.
std::optional<SystemTime> parse_iso(std::string_view text);

// Re-renders any text parse_iso accepts in the canonical format; nullopt when unparseable.
std::optional<std::string> canonical_iso(std::string_view text);

}  // namespace pm
