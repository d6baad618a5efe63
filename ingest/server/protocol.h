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

#include "ingest/events/event.h"
#include "ingest/events/event_json.h"

namespace pm {

enum class RejectReason { Parse, Schema, Range, TimestampUnits, TooLong, Busy };
inline constexpr int kRejectReasonCount = 6;
const char* to_string(RejectReason reason);

struct Rejection {
  RejectReason reason;
  std::string detail;
};

class LineParser {
 public:
  LineParser();
  ~LineParser();
  LineParser(const LineParser&) = delete;
  LineParser& operator=(const LineParser&) = delete;

  // `line` excludes the newline (and a trailing '\r'). Never throws on input.
  std::variant<Event, Rejection> parse(std::string_view line, std::int64_t received_ms);
  // The bytes of line the parser's buffers fit now: at most kKeptParserCapacity between calls
  // (parser_buffers.h), whatever size the lines had.
  std::size_t buffer_capacity() const;
  // Frees the parser's buffers (a connection gone idle).
  void release_buffers();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The answer to a line whose parse ran out of memory (simdjson's MEMALLOC, std::bad_alloc): `busy`,
// send it again. Never `parse`: the line may be valid, and a `parse` refusal is final (the
// producer drops the line).
Rejection out_of_memory_refusal();

void append_ack(std::string& out, std::uint64_t line);
void append_error(std::string& out, RejectReason reason, std::uint64_t line, std::string_view detail);
}  // namespace pm
