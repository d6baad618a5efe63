#pragma once
// Protocol v1 (docs/protocol.md): one JSON object per line in, one reply per line out.
// LineParser turns a received line into a validated Event or a Rejection whose reason is one of
// the protocol's reasons and whose detail names the field and the rule it broke. Reply helpers
// render `{"ack":N}` and `{"error":..,"line":K,"detail":..}` lines.
// A LineParser reuses its buffers: one per connection thread, not shared.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

#include "ingest/event.h"

namespace pm {

enum class RejectReason { Parse, Schema, Range, TimestampUnits, TooLong, Busy };
inline constexpr int kRejectReasonCount = 6;
const char* to_string(RejectReason reason);

struct Rejection {
  RejectReason reason;
  std::string detail;
};

// Epoch values at or above this look like milliseconds; below it, like seconds (year 5138 vs 1973).
inline constexpr std::int64_t kMillisecondsThreshold = 100'000'000'000;
inline constexpr std::size_t kMaxKeyBytes = 256;
// Event times later than this after the line's arrival are refused with `range`.
inline constexpr std::int64_t kMaxFutureMs = 24LL * 3600 * 1000;

class LineParser {
 public:
  LineParser();
  ~LineParser();
  LineParser(const LineParser&) = delete;
  LineParser& operator=(const LineParser&) = delete;

  // `line` excludes the newline (and a trailing '\r'). Never throws on input.
  std::variant<Event, Rejection> parse(std::string_view line, std::int64_t received_ms);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

void append_ack(std::string& out, std::uint64_t line);
void append_error(std::string& out, RejectReason reason, std::uint64_t line, std::string_view detail);
// JSON string literal (with quotes) of arbitrary bytes; invalid UTF-8 bytes become U+FFFD.
void append_json_string(std::string& out, std::string_view text);

// The event as a protocol line (normalised: timestamp_ms, upper-case side; a trade carries its
// raw_json, which is the received line when the producer sent none). Used for dead letters and
// log inspection. Always valid JSON in valid UTF-8, and for any event LineParser returned, a line
// that LineParser parses back to the same event (so a trade sent in seconds before 1973, below
// what timestamp_ms accepts, keeps `timestamp`). A non-finite number, which only a decoded log
// record can hold, is rendered as null.
std::string event_to_json(const Event& event);

}  // namespace pm
