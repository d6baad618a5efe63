#pragma once
// LineDecoder: the lines of one connection into events, by the connection's format
// (payload_format.h). Line 1 may be a hello: it sets the format and yields no event. A hello
// refused (an unknown format, a key named twice) is `schema`, and so is every later line of the
// connection: the producer declared a format this daemon does not read, and its lines read as
// protocol v1 instead could be stored as what they are not. Protocol v1 lines go to LineParser (one
// event each, the fast path: nothing else is done for them); lines of a Polymarket format go to
// PolymarketParser (0..N events each). A line longer than kKeptParserCapacity is parsed under a
// share of `budget` (parse_memory_budget.h), waiting while other connections' large lines hold it.
// A line 1 whose hello check ran out of memory is answered busy, and so is every later line of
// the connection: its format is unknown, and a Polymarket line read as protocol v1 would be
// refused for good (schema); the producer sends the hello and the lines again on a new connection.
// Only the parser of the connection's format keeps buffers between lines (the Polymarket parser
// that checked a line 1 that declared no format is emptied); release_buffers() empties both.
// One per connection; not thread-safe.
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "ingest/events/event.h"
#include "ingest/server/parse_memory_budget.h"
#include "ingest/server/payload_format.h"
#include "ingest/server/polymarket_payloads.h"
#include "ingest/server/protocol.h"

namespace pm {

// What an accepted line held besides its events (for the metrics).
struct LineTally {
  std::optional<PayloadFormat> hello;  // the line was a hello declaring this format
  MessageTally messages{};             // Polymarket formats: its messages by type
};

class LineDecoder {
 public:
  explicit LineDecoder(ParseMemoryBudget& budget = ParseMemoryBudget::process()) : budget_(budget) {}

  // Appends the events of line `number` to `events`; nullopt when the line is accepted. A
  // rejected line appends nothing.
  std::optional<Rejection> decode(std::uint64_t number, std::string_view text, std::int64_t received_ms,
                                  std::vector<Event>& events);

  PayloadFormat format() const { return format_; }
  // Frees the parsers' buffers (the connection is idle): the next line allocates them again.
  void release_buffers();
  // The bytes of line the parsers' buffers fit now, together.
  std::size_t buffer_capacity() const { return v1_.buffer_capacity() + polymarket_.buffer_capacity(); }
  // About the last accepted line.
  const LineTally& tally() const { return tally_; }

 private:
  std::optional<Rejection> decode_v1(std::string_view text, std::int64_t received_ms, std::vector<Event>& events);

  ParseMemoryBudget& budget_;
  PayloadFormat format_ = PayloadFormat::PmIngestd;
  // Set by a line 1 that was a hello and was refused (schema) or could not be read (busy): the
  // answer of every later line of the connection.
  std::optional<Rejection> later_lines_;
  LineParser v1_;
  PolymarketParser polymarket_;
  LineTally tally_;
};

}  // namespace pm
