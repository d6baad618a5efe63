#pragma once
// PolymarketParser: a line of one of Polymarket's own payload formats (payload_format.h;
// docs/protocol.md "Polymarket payloads") into the trades it holds. A line is one JSON object or
// an array of them. Trades become TradeEvents (raw_json: the element's text byte for byte as
// received); other messages (clob-ws-market book, price_change, ...) are only counted.
// A line is all or nothing: the first bad element refuses it, its detail prefixed with the
// element's index ("[3] 'price' must be ..."); messages that are not trades never fail a line
// (a number in one that a double holds only as 0 included: only trades are checked for that).
// One per connection thread (it reuses its buffers); not shared.
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <variant>
#include <vector>

#include "ingest/events/event.h"
#include "ingest/server/payload_format.h"
#include "ingest/server/protocol.h"

namespace pm {

enum class PolymarketMessage : std::uint8_t {
  LastTradePrice, Book, PriceChange, BestBidAsk, TickSizeChange, NewMarket, MarketResolved, Unknown,  // clob-ws-market
  Trade,  // an element of data-api-trades or clob-rest-trades
};
inline constexpr int kPolymarketMessageCount = 9;
const char* to_string(PolymarketMessage message);

// The messages of one line, by PolymarketMessage.
using MessageTally = std::array<std::uint32_t, kPolymarketMessageCount>;

class PolymarketParser {
 public:
  PolymarketParser();
  ~PolymarketParser();
  PolymarketParser(const PolymarketParser&) = delete;
  PolymarketParser& operator=(const PolymarketParser&) = delete;

  // Appends the line's trades to `out` and sets `tally` to its messages. On a rejection `out` is
  // as it was and `tally` all zero. REQUIRES: format is not PmIngestd. Never throws on input.
  std::optional<Rejection> parse(PayloadFormat format, std::string_view line, std::int64_t received_ms,
                                 std::vector<Event>& out, MessageTally& tally);

  // nullopt when `line` is not a hello; else the format it declares or its refusal (`busy` when
  // memory ran out reading it: it may be a hello, so it is not passed on as another line).
  std::optional<std::variant<PayloadFormat, Rejection>> read_hello_line(std::string_view line);

  // The bytes of line the parser's buffers fit now: at most kKeptParserCapacity between calls
  // (parser_buffers.h), whatever size the lines had.
  std::size_t buffer_capacity() const;
  // Frees the parser's buffers (a connection gone idle, or one that is not of a Polymarket format).
  void release_buffers();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pm
