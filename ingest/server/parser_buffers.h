#pragma once
// ReleaseLargeBuffers: simdjson's DOM parser grows its buffers to the largest document it has
// parsed and keeps them, about 15 bytes for each byte of the line. One connection's parser that
// once parsed a 1 MiB line would hold ~15 MiB while the connection sits idle; a thousand such
// connections, gigabytes. Held over one parse and the use of its result (the elements point into
// the buffers), it frees them at its end when they fit more than kKeptParserCapacity bytes of
// line; smaller buffers are kept, so ordinary lines allocate nothing. The parser's thread only.
#include <simdjson.h>

#include <cstddef>

#include "ingest/server/kept_buffers.h"

namespace pm {

inline constexpr std::size_t kKeptParserCapacity = 64 * 1024;
inline constexpr std::size_t kParserBytesPerLineByte = 15;  // roughly, what the buffers hold

class ReleaseLargeBuffers {
 public:
  explicit ReleaseLargeBuffers(simdjson::dom::parser& parser) : parser_(parser) {}
  ~ReleaseLargeBuffers() {
    if (parser_.capacity() <= kKeptParserCapacity) return;
    note_released(parser_.capacity() * kParserBytesPerLineByte);
    parser_ = simdjson::dom::parser{};
  }
  ReleaseLargeBuffers(const ReleaseLargeBuffers&) = delete;
  ReleaseLargeBuffers& operator=(const ReleaseLargeBuffers&) = delete;

 private:
  simdjson::dom::parser& parser_;
};

}  // namespace pm
