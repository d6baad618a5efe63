#pragma once
// Wall-clock helpers in UTC. Every TEXT `*_at` column is written through format_iso(), one fixed
// format (`2026-11-23T22:31:05.123456Z`, always 27 characters), so that text ordering, GREATEST
// and time ordering agree (fix for D8/D12). Epochs come from the system clock, never from a
// local-time reading (fix for D11). Thread-safe; no state.
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

// Parses the canonical format and the common ISO-8601 variants other writers used (space or `T`,
// optional fraction, `Z`, `+00:00`, `+HH:MM`, or no zone meaning UTC). nullopt when unparseable.
std::optional<SystemTime> parse_iso(std::string_view text);

// Re-renders any text parse_iso accepts in the canonical format; nullopt when unparseable.
std::optional<std::string> canonical_iso(std::string_view text);

}  // namespace pm
