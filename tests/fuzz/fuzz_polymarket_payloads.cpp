// libFuzzer target: arbitrary bytes as one line of each Polymarket payload format
// (docs/protocol.md "Polymarket payloads"). PolymarketParser::parse must never crash or throw; a
// rejection leaves nothing behind; an accepted line's trades are as many as its trade messages,
// each trade's raw_json is bytes of the line, and that element sent alone as a line is the same
// event (the element scan found the element's own text); every trade survives the log's codec.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ingest/events/event_codec.h"
#include "ingest/server/polymarket_payloads.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

constexpr std::int64_t kReceivedMs = 1'750'500'000'000;

void check_format(pm::PolymarketParser& parser, pm::PolymarketParser& reparser, pm::PayloadFormat format,
                  std::string_view line) {
  using namespace pm;
  std::vector<Event> events;
  MessageTally tally{};
  if (auto rejection = parser.parse(format, line, kReceivedMs, events, tally)) {
    PM_FUZZ_CHECK(!rejection->detail.empty(), "a rejection names what was wrong");
    PM_FUZZ_CHECK(events.empty(), "a refused line leaves no event");
    return;
  }
  const auto trades = tally[static_cast<std::size_t>(PolymarketMessage::LastTradePrice)] +
                      tally[static_cast<std::size_t>(PolymarketMessage::Trade)];
  PM_FUZZ_CHECK(trades == events.size(), "one event per trade message");
  for (const Event& event : events) {
    const std::string bytes = fuzz::encoded(event);
    auto decoded = decode_event(bytes);
    PM_FUZZ_CHECK(decoded && fuzz::encoded(*decoded) == bytes, "decode(encode(e)) re-encodes identically", bytes);
    const std::string& raw = std::get<TradeEvent>(event.body).raw_json;
    PM_FUZZ_CHECK(line.find(raw) != std::string_view::npos, "raw_json is bytes of the line", raw, line);
    if (raw.find("\"hello\"") != std::string::npos) continue;  // alone, it could be a (refused) hello
    std::vector<Event> alone;
    auto again = reparser.parse(format, raw, kReceivedMs, alone, tally);
    PM_FUZZ_CHECK(!again && alone.size() == 1, "the element alone is accepted", raw);
    PM_FUZZ_CHECK(fuzz::encoded(alone[0]) == bytes, "the element alone is the same event", raw);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace pm;
  static PolymarketParser parser;
  static PolymarketParser reparser;
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  for (auto format : {PayloadFormat::ClobWsMarket, PayloadFormat::DataApiTrades, PayloadFormat::ClobRestTrades})
    check_format(parser, reparser, format, line);
  return 0;
}
