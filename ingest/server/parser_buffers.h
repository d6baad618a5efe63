#pragma once
// ReleaseLargeBuffers: simdjson's DOM parser grows its buffers to the largest document it has
// parsed and keeps them, about 15 bytes for each byte of the line. One connection's parser that
// once parsed a 1 MiB line would hold ~15 MiB while the connection sits idle; a thousand such
// connections, gigabytes. Held over one parse and the use of its result (the elements point into
// the buffers), it frees them at its end when they fit more than kKeptParserCapacity bytes of
// line; smaller buffers are kept, so ordinary lines allocate nothing. The parser's thread only.
//
// kKeptParserCapacity is 8 KiB: a v1 line is ~250 bytes and a Polymarket payload line of a few
// messages ~1-2 KiB, while what a parser keeps (~120 KiB at most) is outside the parse memory
// budget (parse_memory_budget.h), once per connection: 1,024 connections ~120 MiB at most. It was
// 64 KiB (~1 MiB kept per parser; two on a connection whose line 1 was checked for a hello).
// A line longer than that pays for its buffers (~15x the line, allocated and freed) on each parse.
#include <simdjson.h>

#include <cstddef>

#include "ingest/server/kept_buffers.h"

namespace pm {

inline constexpr std::size_t kKeptParserCapacity = 8 * 1024;
inline constexpr std::size_t kParserBytesPerLineByte = 15;  // roughly, what the buffers hold

// Frees all of the parser's buffers (counted for give_back_released_memory); the next parse
// allocates them again.
inline void release_parser_buffers(simdjson::dom::parser& parser) {
  if (parser.capacity() == 0) return;
  note_released(parser.capacity() * kParserBytesPerLineByte);
  parser = simdjson::dom::parser{};
}

class ReleaseLargeBuffers {
 public:
  explicit ReleaseLargeBuffers(simdjson::dom::parser& parser) : parser_(parser) {}
  ~ReleaseLargeBuffers() {
    if (parser_.capacity() > kKeptParserCapacity) release_parser_buffers(parser_);
  }
  ReleaseLargeBuffers(const ReleaseLargeBuffers&) = delete;
  ReleaseLargeBuffers& operator=(const ReleaseLargeBuffers&) = delete;

 private:
  simdjson::dom::parser& parser_;
};

}  // namespace pm
