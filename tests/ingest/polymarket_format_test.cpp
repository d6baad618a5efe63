// Polymarket's own payloads (docs/protocol.md "Polymarket payloads"): the hello line, each shape's
// field mapping and time unit, array lines (all or nothing, `[i]` in the detail), messages that
// are not trades, and the trade id rule for payloads without one.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <optional>

#include "ingest/server/fill_trade_id.h"
#include "ingest/server/json_spans.h"
#include "ingest/server/line_decoder.h"
#include "ingest/server/parser_buffers.h"
#include "ingest/server/polymarket_payloads.h"
#include "tests/support/process.h"

namespace pm {
namespace {

using namespace std::chrono_literals;

constexpr std::int64_t kNow = 1'750'500'000'000;
const std::string kTx = "0x8f2ad1";

std::string ws_trade(const std::string& price = "\".48\"", const std::string& size = "\"219.21\"",
                     const std::string& timestamp = "\"1750428146322\"", const std::string& tx = kTx,
                     const std::string& side = "BUY") {
  return R"({"event_type":"last_trade_price","asset_id":"tok1","market":"0xcond","price":)" + price + R"(,"side":")" +
         side + R"(","size":)" + size + R"(,"fee_rate_bps":"0","timestamp":)" + timestamp + R"(,"transaction_hash":")" +
         tx + R"("})";
}

std::string data_api_trade(const std::string& wallet = "0xw1", const std::string& timestamp = "1750428200",
                           const std::string& size = "100") {
  return R"({"proxyWallet":")" + wallet + R"(","side":"SELL","asset":"tok2","conditionId":"0xcond2","size":)" + size +
         R"(,"price":0.62,"timestamp":)" + timestamp +
         R"(,"title":"Rain?","slug":"rain","outcome":"No","outcomeIndex":1,"name":"alice","pseudonym":"P",)"
         R"("icon":"","eventSlug":"e","transactionHash":"0xtx2"})";
}

std::string clob_rest_trade(const std::string& id = "trade-uuid-1", const std::string& match_time = "\"1750428300\"") {
  return R"({"id":")" + id + R"(","taker_order_id":"0xt","market":"0xcond3","asset_id":"tok3","side":"buy",)"
         R"("size":"50","fee_rate_bps":"0","price":"0.57","status":"CONFIRMED","match_time":)" + match_time +
         R"(,"last_update":"1750428312","outcome":"Yes","maker_address":"0xm","owner":"o","transaction_hash":"0xtx3",)"
         R"("bucket_index":0,"maker_orders":[{"order_id":"0xo","matched_amount":"50","price":"0.57"}],)"
         R"("trader_side":"TAKER","type":"TRADE"})";
}

struct Parsed {
  std::optional<Rejection> rejection;
  std::vector<Event> events;
  MessageTally tally{};
  const TradeEvent& trade(std::size_t i) const { return std::get<TradeEvent>(events.at(i).body); }
};

Parsed parse(PayloadFormat format, const std::string& line) {
  PolymarketParser parser;
  Parsed p;
  p.rejection = parser.parse(format, line, kNow, p.events, p.tally);
  return p;
}

Parsed parse_ok(PayloadFormat format, const std::string& line) {
  Parsed p = parse(format, line);
  if (p.rejection) ADD_FAILURE() << to_string(p.rejection->reason) << ": " << p.rejection->detail << "\n" << line;
  return p;
}

Rejection parse_bad(PayloadFormat format, const std::string& line) {
  Parsed p = parse(format, line);
  if (!p.rejection) {
    ADD_FAILURE() << "accepted: " << line;
    return {RejectReason::Parse, ""};
  }
  EXPECT_TRUE(p.events.empty());
  return *p.rejection;
}

std::size_t count(const MessageTally& tally, PolymarketMessage m) { return tally[static_cast<std::size_t>(m)]; }

TEST(PolymarketClobWs, LastTradePriceMapsFieldByField) {
  const std::string line = ws_trade();
  const Parsed p = parse_ok(PayloadFormat::ClobWsMarket, line);
  ASSERT_EQ(p.events.size(), 1u);
  const TradeEvent& t = p.trade(0);
  EXPECT_EQ(t.condition_id, "0xcond");
  EXPECT_EQ(t.token_id, "tok1");
  EXPECT_DOUBLE_EQ(t.price, 0.48);  // ".48"
  EXPECT_DOUBLE_EQ(t.size, 219.21);
  EXPECT_EQ(t.side, "BUY");
  EXPECT_EQ(t.timestamp_ms, 1'750'428'146'322);  // milliseconds as a string
  EXPECT_FALSE(t.outcome);
  EXPECT_FALSE(t.outcome_index);
  EXPECT_EQ(t.raw_json, line);
  EXPECT_EQ(t.trade_id.substr(0, kTx.size() + 1), kTx + ":");
  EXPECT_EQ(t.trade_id.size(), kTx.size() + 17);
  EXPECT_EQ(p.events[0].received_ms, kNow);
  EXPECT_EQ(count(p.tally, PolymarketMessage::LastTradePrice), 1u);
}

TEST(PolymarketClobWs, TimestampIsMillisecondsOnly) {
  EXPECT_EQ(parse_bad(PayloadFormat::ClobWsMarket, ws_trade("\".48\"", "\"1\"", "\"1750428146\"")).reason,
            RejectReason::TimestampUnits);
  EXPECT_EQ(parse_bad(PayloadFormat::ClobWsMarket, ws_trade("\".48\"", "\"1\"", "\"0\"")).reason, RejectReason::Range);
  EXPECT_EQ(parse_bad(PayloadFormat::ClobWsMarket, ws_trade("\".48\"", "\"1\"", "\"17504x\"")).reason, RejectReason::Schema);
  // A JSON integer is read as well as a string of digits.
  EXPECT_EQ(parse_ok(PayloadFormat::ClobWsMarket, ws_trade("\".48\"", "\"1\"", "1750428146322")).trade(0).timestamp_ms,
            1'750'428'146'322);
  const Rejection far = parse_bad(PayloadFormat::ClobWsMarket, ws_trade("\".48\"", "\"1\"", std::to_string(kNow + 2 * 86'400'000)));
  EXPECT_EQ(far.reason, RejectReason::Range);
}

TEST(PolymarketClobWs, FieldRulesAreV1s) {
  EXPECT_EQ(parse_bad(PayloadFormat::ClobWsMarket, ws_trade("\"1.5\"")).reason, RejectReason::Range);
  EXPECT_EQ(parse_bad(PayloadFormat::ClobWsMarket, ws_trade("\"abc\"")).reason, RejectReason::Schema);
  EXPECT_EQ(parse_bad(PayloadFormat::ClobWsMarket, ws_trade("\".48\"", "\"-1\"")).reason, RejectReason::Range);
  EXPECT_EQ(parse_bad(PayloadFormat::ClobWsMarket, ws_trade("\".48\"", "\"1\"", "\"1750428146322\"", kTx, "HOLD")).reason,
            RejectReason::Range);
  EXPECT_EQ(parse_ok(PayloadFormat::ClobWsMarket, ws_trade("\".48\"", "\"1\"", "\"1750428146322\"", kTx, "sell")).trade(0).side,
            "SELL");
  const Rejection no_hash = parse_bad(PayloadFormat::ClobWsMarket, ws_trade("\".48\"", "\"1\"", "\"1750428146322\"", ""));
  EXPECT_EQ(no_hash.reason, RejectReason::Range);
  EXPECT_NE(no_hash.detail.find("transaction_hash"), std::string::npos);
}

TEST(PolymarketClobWs, ANumericPriceThatUnderflowsADoubleIsRefusedNotStoredAsZero) {
  const Rejection r = parse_bad(PayloadFormat::ClobWsMarket, ws_trade("1e-400"));
  EXPECT_EQ(r.reason, RejectReason::Range);
  EXPECT_NE(r.detail.find("1e-400 is too small for a double"), std::string::npos) << r.detail;
}

TEST(PolymarketClobWs, ANumericPriceBeyondADoubleIsRefusedNamingIt) {
  const Rejection r = parse_bad(PayloadFormat::ClobWsMarket, ws_trade("4e999"));
  EXPECT_EQ(r.reason, RejectReason::Parse);
  EXPECT_NE(r.detail.find(R"(the number 4e999 of "price" is beyond what a double holds)"), std::string::npos) << r.detail;
}

TEST(PolymarketClobWs, OtherEventsAreCountedNotStored) {
  const std::string line =
      R"([{"event_type":"book","asset_id":"t","market":"m","bids":[],"asks":[],"timestamp":"1"},)"
      R"({"event_type":"price_change","market":"m","price_changes":[]},{"event_type":"best_bid_ask"},)"
      R"({"event_type":"tick_size_change"},{"event_type":"new_market"},{"event_type":"market_resolved"},)"
      R"({"event_type":"brand_new"},{"no_event_type":1},{"event_type":7},)" + ws_trade() + "]";
  const Parsed p = parse_ok(PayloadFormat::ClobWsMarket, line);
  ASSERT_EQ(p.events.size(), 1u);
  for (auto m : {PolymarketMessage::Book, PolymarketMessage::PriceChange, PolymarketMessage::BestBidAsk,
                 PolymarketMessage::TickSizeChange, PolymarketMessage::NewMarket, PolymarketMessage::MarketResolved,
                 PolymarketMessage::LastTradePrice})
    EXPECT_EQ(count(p.tally, m), 1u) << to_string(m);
  EXPECT_EQ(count(p.tally, PolymarketMessage::Unknown), 3u);
  EXPECT_EQ(count(p.tally, PolymarketMessage::Trade), 0u);
}

TEST(PolymarketClobWs, AnEmptyArrayIsAcceptedAndHoldsNothing) {
  for (const std::string line : {"[]", " [ ] "}) {
    const Parsed p = parse_ok(PayloadFormat::ClobWsMarket, line);
    EXPECT_TRUE(p.events.empty());
    for (auto n : p.tally) EXPECT_EQ(n, 0u);
  }
}

TEST(PolymarketArrays, EachElementKeepsItsOwnTextByteForByte) {
  const std::string first = R"({ "event_type" : "last_trade_price", "asset_id":"tok1","market":"0xcond","price":".48",)"
                            R"("side":"BUY","size":"1","timestamp":"1750428146322","transaction_hash":"0xa","note":"a,]}\"[{" })";
  const std::string second = ws_trade("\"0.5\"", "\"2\"");
  const Parsed p = parse_ok(PayloadFormat::ClobWsMarket, "  [ " + first + " ,\t" + second + "\r\n ]  ");
  ASSERT_EQ(p.events.size(), 2u);
  EXPECT_EQ(p.trade(0).raw_json, first);
  EXPECT_EQ(p.trade(1).raw_json, second);
}

TEST(PolymarketArrays, OneBadElementRefusesTheWholeLineWithItsIndex) {
  const std::string line = "[" + ws_trade() + R"(,{"event_type":"book"},)" + ws_trade("\".5\"", "\"1\"") + "," +
                           ws_trade("\"2\"") + "," + ws_trade("\"x\"") + "]";
  PolymarketParser parser;
  std::vector<Event> out(1);  // what earlier lines left: kept
  MessageTally tally{};
  const auto rejection = parser.parse(PayloadFormat::ClobWsMarket, line, kNow, out, tally);
  ASSERT_TRUE(rejection);
  EXPECT_EQ(rejection->reason, RejectReason::Range);  // the first bad element's reason, not the second's
  EXPECT_EQ(rejection->detail.rfind("[3] 'price'", 0), 0u) << rejection->detail;
  EXPECT_EQ(out.size(), 1u);
  for (auto n : tally) EXPECT_EQ(n, 0u);
}

TEST(PolymarketArrays, LinesThatAreNotObjectsOrArraysOfObjects) {
  EXPECT_EQ(parse_bad(PayloadFormat::DataApiTrades, "42").reason, RejectReason::Schema);
  EXPECT_EQ(parse_bad(PayloadFormat::DataApiTrades, "").reason, RejectReason::Parse);
  EXPECT_EQ(parse_bad(PayloadFormat::DataApiTrades, "[{").reason, RejectReason::Parse);
  const Rejection r = parse_bad(PayloadFormat::ClobWsMarket, "[" + ws_trade() + ",5]");
  EXPECT_EQ(r.reason, RejectReason::Schema);
  EXPECT_EQ(r.detail.rfind("[1] ", 0), 0u) << r.detail;
}

TEST(PolymarketDataApi, MapsFieldByFieldInSeconds) {
  const std::string line = data_api_trade();
  const Parsed p = parse_ok(PayloadFormat::DataApiTrades, line);
  ASSERT_EQ(p.events.size(), 1u);
  const TradeEvent& t = p.trade(0);
  EXPECT_EQ(t.condition_id, "0xcond2");
  EXPECT_EQ(t.token_id, "tok2");
  EXPECT_DOUBLE_EQ(t.price, 0.62);
  EXPECT_DOUBLE_EQ(t.size, 100);
  EXPECT_EQ(t.side, "SELL");
  EXPECT_EQ(t.timestamp_ms, 1'750'428'200'000);
  EXPECT_EQ(t.outcome, "No");
  EXPECT_EQ(t.outcome_index, 1);
  EXPECT_EQ(t.raw_json, line);
  EXPECT_EQ(t.trade_id.rfind("0xtx2:", 0), 0u);
  EXPECT_EQ(count(p.tally, PolymarketMessage::Trade), 1u);
}

TEST(PolymarketDataApi, TimestampIsSecondsOnly) {
  const Rejection r = parse_bad(PayloadFormat::DataApiTrades, data_api_trade("0xw1", "1750428200000"));
  EXPECT_EQ(r.reason, RejectReason::TimestampUnits);
  EXPECT_NE(r.detail.find("data-api-trades sends epoch seconds"), std::string::npos) << r.detail;
  EXPECT_EQ(parse_bad(PayloadFormat::DataApiTrades, data_api_trade("0xw1", "1750428200.5")).reason, RejectReason::Schema);
  // Seconds before 10^8 (1973-03-03) would be milliseconds below 10^11, read as seconds by the
  // tables' size rule: refused on the line, never acked and then dead-lettered.
  const Rejection early = parse_bad(PayloadFormat::DataApiTrades, data_api_trade("0xw1", "99999999"));
  EXPECT_EQ(early.reason, RejectReason::Range);
  EXPECT_NE(early.detail.find("'timestamp' 99999999 is before 1973-03-03"), std::string::npos) << early.detail;
  EXPECT_EQ(parse_ok(PayloadFormat::DataApiTrades, data_api_trade("0xw1", "100000000")).trade(0).timestamp_ms,
            100'000'000'000);
}

TEST(PolymarketArrays, TheParserDoesNotKeepTheBuffersOfALargeLine) {
  PolymarketParser parser;
  std::string large = "[";
  while (large.size() < (1u << 20)) large += data_api_trade("0xw" + std::to_string(large.size())) + ",";
  large.back() = ']';
  std::vector<Event> events;
  MessageTally tally{};
  ASSERT_FALSE(parser.parse(PayloadFormat::DataApiTrades, large, kNow, events, tally));
  EXPECT_GT(events.size(), 1000u);
  EXPECT_LE(parser.buffer_capacity(), kKeptParserCapacity);
  ASSERT_FALSE(parser.read_hello_line(large));
  EXPECT_LE(parser.buffer_capacity(), kKeptParserCapacity);
  ASSERT_FALSE(parser.parse(PayloadFormat::DataApiTrades, data_api_trade("0xw1"), kNow, events, tally));
  EXPECT_GT(parser.buffer_capacity(), 0u) << "an ordinary line's buffers are kept for the next one";
}

TEST(PolymarketDataApi, AKeyNamedTwiceInAnElementRefusesTheLine) {
  std::string twice = data_api_trade("0xw1");
  twice.insert(twice.size() - 1, R"(,"price":0.99)");
  const Rejection r = parse_bad(PayloadFormat::DataApiTrades, "[" + data_api_trade("0xw2") + "," + twice + "]");
  EXPECT_EQ(r.reason, RejectReason::Schema);
  EXPECT_NE(r.detail.find(R"(key "price" appears more than once)"), std::string::npos) << r.detail;
}

// A clob-ws-market message that is not a trade is only counted: a key it names twice refused the
// whole line, the trades in it included. Its event_type named twice still refuses the line (whether
// it is a trade would be a guess).
TEST(PolymarketClobWs, AKeyNamedTwiceInAMessageThatIsNotATradeDoesNotFailTheLine) {
  const Parsed p = parse_ok(PayloadFormat::ClobWsMarket, R"([{"event_type":"book","market":"m","market":"m"},)" + ws_trade() + "]");
  EXPECT_EQ(p.events.size(), 1u);
  EXPECT_EQ(count(p.tally, PolymarketMessage::Book), 1u);
  const Rejection r = parse_bad(PayloadFormat::ClobWsMarket, R"([{"event_type":"book","event_type":"last_trade_price"}])");
  EXPECT_EQ(r.reason, RejectReason::Schema);
  EXPECT_NE(r.detail.find(R"([0] key "event_type" appears more than once)"), std::string::npos) << r.detail;
}

// The underflow check (a number a double holds only as 0) ran on the whole line before its
// messages were told apart: a book level of 1e-400 refused the line and the trades beside it,
// while a message that is not a trade never fails a line. Only trades are checked now.
TEST(PolymarketClobWs, ANumberThatUnderflowsInAMessageThatIsNotATradeDoesNotFailTheLine) {
  const std::string book = R"({"event_type":"book","market":"m","bids":[{"price":".5","size":1e-400}],"asks":[]})";
  const Parsed p = parse_ok(PayloadFormat::ClobWsMarket, "[" + book + "," + ws_trade() + "]");
  ASSERT_EQ(p.events.size(), 1u);
  EXPECT_EQ(p.trade(0).raw_json, ws_trade());
  EXPECT_EQ(count(p.tally, PolymarketMessage::Book), 1u);
  EXPECT_TRUE(parse_ok(PayloadFormat::ClobWsMarket, book).events.empty()) << "an object line too";
  // In a trade, an unknown field too, it still refuses the line, naming the element.
  std::string trade = ws_trade();
  trade.insert(trade.size() - 1, R"(,"extra":1e-400)");
  const Rejection r = parse_bad(PayloadFormat::ClobWsMarket, "[" + book + "," + trade + "]");
  EXPECT_EQ(r.reason, RejectReason::Range);
  EXPECT_NE(r.detail.find("[1] the number 1e-400 is too small for a double"), std::string::npos) << r.detail;
}

TEST(PolymarketDataApi, AnArrayIsTheRestResponse) {
  const Parsed p = parse_ok(PayloadFormat::DataApiTrades, "[" + data_api_trade("0xw1") + "," + data_api_trade("0xw2") + "]");
  ASSERT_EQ(p.events.size(), 2u);
  EXPECT_EQ(count(p.tally, PolymarketMessage::Trade), 2u);
  EXPECT_NE(p.trade(0).trade_id, p.trade(1).trade_id);  // two makers of one transaction
}

TEST(PolymarketClobRest, MapsFieldByFieldWithItsOwnId) {
  const std::string line = clob_rest_trade();
  const Parsed p = parse_ok(PayloadFormat::ClobRestTrades, line);
  ASSERT_EQ(p.events.size(), 1u);
  const TradeEvent& t = p.trade(0);
  EXPECT_EQ(t.trade_id, "trade-uuid-1");
  EXPECT_EQ(t.condition_id, "0xcond3");
  EXPECT_EQ(t.token_id, "tok3");
  EXPECT_DOUBLE_EQ(t.price, 0.57);
  EXPECT_DOUBLE_EQ(t.size, 50);
  EXPECT_EQ(t.side, "BUY");
  EXPECT_EQ(t.timestamp_ms, 1'750'428'300'000);  // match_time, seconds as a string
  EXPECT_EQ(t.outcome, "Yes");
  EXPECT_FALSE(t.outcome_index);
  EXPECT_EQ(t.raw_json, line);
}

TEST(PolymarketClobRest, MatchTimeIsSecondsOnlyAndIdIsRequired) {
  EXPECT_EQ(parse_bad(PayloadFormat::ClobRestTrades, clob_rest_trade("x", "\"1750428300000\"")).reason,
            RejectReason::TimestampUnits);
  EXPECT_EQ(parse_bad(PayloadFormat::ClobRestTrades, clob_rest_trade("x", "\"1700999\"")).reason, RejectReason::Range);
  const Rejection r = parse_bad(PayloadFormat::ClobRestTrades, clob_rest_trade(""));
  EXPECT_NE(r.detail.find("'id'"), std::string::npos) << r.detail;
}

TEST(FillTradeId, TheSameFillGetsTheSameIdWhateverItsDecimalSpelling) {
  const auto id = [](const std::string& line) { return parse_ok(PayloadFormat::ClobWsMarket, line).trade(0).trade_id; };
  EXPECT_EQ(id(ws_trade()), id(ws_trade()));
  EXPECT_EQ(id(ws_trade("\".48\"")), id(ws_trade("\"0.48\"")));
  EXPECT_EQ(id(ws_trade("\".48\"", "\"219.21\"")), id(ws_trade("0.48", "\"219.210\"")));
  EXPECT_EQ(id(ws_trade("\".5\"", "\"100\"")), id(ws_trade("\"5e-1\"", "\"1e2\"")));
}

TEST(FillTradeId, DifferentFillsOfOneTransactionGetDifferentIds) {
  const auto id = [](const std::string& line) { return parse_ok(PayloadFormat::ClobWsMarket, line).trade(0).trade_id; };
  const std::string base = id(ws_trade());
  EXPECT_NE(base, id(ws_trade("\".49\"")));
  EXPECT_NE(base, id(ws_trade("\".48\"", "\"219.22\"")));
  EXPECT_NE(base, id(ws_trade("\".48\"", "\"219.21\"", "\"1750428146323\"")));
  EXPECT_NE(base, id(ws_trade("\".48\"", "\"219.21\"", "\"1750428146322\"", kTx, "SELL")));
  // data-api: two makers of one transaction differ only by their wallet.
  const auto data_id = [](const std::string& w) { return parse_ok(PayloadFormat::DataApiTrades, data_api_trade(w)).trade(0).trade_id; };
  EXPECT_NE(data_id("0xw1"), data_id("0xw2"));
  EXPECT_EQ(data_id("0xw1"), data_id("0xw1"));
}

TEST(FillTradeId, IsTheFnv1a64OfTheCanonicalFields) {
  EXPECT_EQ(fnv1a_64(""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(fnv1a_64("a"), 0xaf63dc4c8601ec8cULL);  // the published FNV-1a 64 test vector
  const FillFields fill{"tok1", "BUY", 0.48, 219.21, 1750428146322, std::nullopt};
  EXPECT_EQ(canonical_fill_text(fill), "tok1|BUY|0.48|219.21|1750428146322");
  FillFields with_wallet = fill;
  with_wallet.wallet = "0xw";
  EXPECT_EQ(canonical_fill_text(with_wallet), "tok1|BUY|0.48|219.21|1750428146322|0xw");
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fnv1a_64(canonical_fill_text(fill))));
  EXPECT_EQ(fill_trade_id("0xabc", fill), std::string("0xabc:") + hex);
  EXPECT_EQ(parse_ok(PayloadFormat::ClobWsMarket, ws_trade()).trade(0).trade_id, fill_trade_id(kTx, fill));
}

TEST(JsonSpans, SplitsTopLevelElementsOnly) {
  std::vector<std::string_view> spans;
  ASSERT_TRUE(array_element_spans(R"( [1, "a,\"]", {"x":[1,2]} , [] ] )", spans));
  ASSERT_EQ(spans.size(), 4u);
  EXPECT_EQ(spans[0], "1");
  EXPECT_EQ(spans[1], R"("a,\"]")");
  EXPECT_EQ(spans[2], R"({"x":[1,2]})");
  EXPECT_EQ(spans[3], "[]");
  spans.clear();
  EXPECT_TRUE(array_element_spans("[]", spans));
  EXPECT_TRUE(spans.empty());
  EXPECT_FALSE(array_element_spans("{}", spans));
}

// The hello line, through the decoder a connection uses.
struct Decoded {
  std::optional<Rejection> rejection;
  std::vector<Event> events;
};

Decoded decode(LineDecoder& decoder, std::uint64_t number, const std::string& line) {
  Decoded d;
  d.rejection = decoder.decode(number, line, kNow, d.events);
  return d;
}

const std::string kV1Trade =
    R"({"type":"trade","condition_id":"0xc","trade_id":"t1","price":0.5,"size":1,"side":"buy","timestamp":1750428146})";

TEST(Hello, DeclaresTheFormatOnLineOneAndYieldsNoEvent) {
  LineDecoder decoder;
  const Decoded hello = decode(decoder, 1, R"({"hello":{"format":"clob-ws-market"}})");
  EXPECT_FALSE(hello.rejection);
  EXPECT_TRUE(hello.events.empty());
  EXPECT_EQ(decoder.tally().hello, PayloadFormat::ClobWsMarket);
  EXPECT_EQ(decoder.format(), PayloadFormat::ClobWsMarket);
  const Decoded trade = decode(decoder, 2, "[" + ws_trade() + "]");
  EXPECT_FALSE(trade.rejection);
  EXPECT_EQ(trade.events.size(), 1u);
  EXPECT_FALSE(decoder.tally().hello);
  EXPECT_EQ(count(decoder.tally().messages, PolymarketMessage::LastTradePrice), 1u);
}

std::string with_field(const std::string& object, const std::string& field_json) {
  return object.substr(0, object.size() - 1) + "," + field_json + "}";
}

// A hello whose key is spelled with an escape is the same key to the parser: it was refused as "a
// hello is only read on line 1" on line 1, and the connection stayed v1.
TEST(Hello, AnEscapedHelloKeyIsAHello) {
  LineDecoder decoder;
  const Decoded hello = decode(decoder, 1, R"({"\u0068ello":{"format":"clob-ws-market"}})");
  EXPECT_FALSE(hello.rejection) << hello.rejection->detail;
  EXPECT_EQ(decoder.format(), PayloadFormat::ClobWsMarket);
  LineDecoder v1;
  EXPECT_EQ(decode(v1, 1, with_field(kV1Trade, R"("note":"\u00e9")")).events.size(), 1u) << "an escape alone is no hello";
  EXPECT_EQ(v1.format(), PayloadFormat::PmIngestd);
}

// Lines longer than kKeptParserCapacity are parsed under a share of the connections' common
// parse memory budget, waiting while other large lines hold it; ordinary lines never wait.
TEST(ParseMemory, ALargeLineWaitsForTheBudgetAndASmallOneDoesNot) {
  ParseMemoryBudget budget(4u << 20);
  const std::string large = with_field(kV1Trade, "\"pad\":\"" + std::string(200'000, 'x') + "\"");
  std::optional<ParseMemoryBudget::Lease> held(budget.take(200'000));  // 3 MB of the 4 MiB
  ASSERT_EQ(budget.in_use(), 200'000u * kParserBytesPerLineByte);
  LineDecoder small_lines(budget);
  EXPECT_EQ(decode(small_lines, 1, kV1Trade).events.size(), 1u) << "a small line takes nothing";
  auto decoded = std::async(std::launch::async, [&] {
    LineDecoder decoder(budget);
    return decode(decoder, 1, large).events.size();
  });
  // Checked once the parse asked for its share (not after a fixed time, which a slow machine could
  // spend before the thread got there): it must still be waiting a while after.
  // (On a failure the share held is given back first: the futures' destructors wait for their threads.)
  if (!test::wait_until([&] { return budget.waiting() == 1 || decoded.wait_for(0s) == std::future_status::ready; }, 30s)) {
    held.reset();
    FAIL() << "the large line never asked for its share";
  }
  EXPECT_EQ(decoded.wait_for(200ms), std::future_status::timeout) << "parsed while the budget was held";
  held.reset();
  ASSERT_EQ(decoded.wait_for(30s), std::future_status::ready);
  EXPECT_EQ(decoded.get(), 1u);
  EXPECT_EQ(budget.in_use(), 0u) << "given back after the parse";
  EXPECT_EQ(budget.take(10u << 20).bytes(), 4u << 20) << "a share above the whole budget is capped at it";
}

// In arrival order: a line waiting for a large share is not passed by later smaller ones that
// would fit beside what is held (a steady stream of them kept the large one waiting for ever).
TEST(ParseMemory, ALargeShareWaitingIsNotPassedByASmallerOneThatWouldFit) {
  ParseMemoryBudget budget(4u << 20);
  std::optional<ParseMemoryBudget::Lease> held(budget.take(200'000));  // 3 MB of the 4 MiB
  std::atomic<int> order{0};
  std::atomic<int> large_at{0}, small_at{0};
  auto large = std::async(std::launch::async, [&] {
    const ParseMemoryBudget::Lease all = budget.take(1u << 20);  // capped at the whole budget
    large_at = ++order;
  });
  if (!test::wait_until([&] { return budget.waiting() == 1; }, 30s)) {  // held given back: the futures' destructors wait
    held.reset();
    FAIL() << "the large one never queued";
  }
  auto small = std::async(std::launch::async, [&] {
    const ParseMemoryBudget::Lease some = budget.take(70'000);  // 1.05 MB: fits beside the 3 MB held
    small_at = ++order;
  });
  // Once the small one asked for its share (queued behind the large one, or through already), not
  // after a fixed time a slow machine could spend before that thread reached take().
  if (!test::wait_until([&] { return budget.waiting() == 2 || small.wait_for(0s) == std::future_status::ready; }, 30s)) {
    held.reset();
    FAIL() << "the small one never asked for its share";
  }
  EXPECT_EQ(small.wait_for(200ms), std::future_status::timeout) << "a later, smaller share passed the waiting one";
  held.reset();
  ASSERT_EQ(large.wait_for(30s), std::future_status::ready);
  ASSERT_EQ(small.wait_for(30s), std::future_status::ready);
  EXPECT_EQ(large_at.load(), 1);
  EXPECT_EQ(small_at.load(), 2);
  EXPECT_EQ(budget.in_use(), 0u);
}

TEST(Hello, WithoutOneTheConnectionSpeaksV1) {
  LineDecoder decoder;
  EXPECT_FALSE(decode(decoder, 1, kV1Trade).rejection);
  EXPECT_EQ(decoder.format(), PayloadFormat::PmIngestd);
  EXPECT_EQ(decode(decoder, 2, ws_trade()).rejection->reason, RejectReason::Schema);  // never guessed
  LineDecoder explicit_v1;
  EXPECT_FALSE(decode(explicit_v1, 1, R"({"hello":{"format":"pm-ingestd"}})").rejection);
  EXPECT_EQ(decode(explicit_v1, 2, kV1Trade).events.size(), 1u);
}

// A hello refused: every later line of the connection is refused too (schema), a protocol v1 line
// included. The producer declared a format this daemon does not read; read as protocol v1, its
// lines could be stored as what they are not (they were: the connection stayed v1).
TEST(Hello, AnUnknownFormatIsRefusedAndSoIsEveryLaterLine) {
  LineDecoder decoder;
  const Decoded d = decode(decoder, 1, R"({"hello":{"format":"clob-ws-user"}})");
  ASSERT_TRUE(d.rejection);
  EXPECT_EQ(d.rejection->reason, RejectReason::Schema);
  EXPECT_NE(d.rejection->detail.find("pm-ingestd, clob-ws-market, data-api-trades, clob-rest-trades"), std::string::npos);
  for (std::uint64_t line = 2; line <= 3; ++line) {
    const Decoded later = decode(decoder, line, kV1Trade);
    ASSERT_TRUE(later.rejection) << "line " << line << " was read after a refused hello";
    EXPECT_EQ(later.rejection->reason, RejectReason::Schema);
    EXPECT_NE(later.rejection->detail.find("line 1, a hello, was refused"), std::string::npos) << later.rejection->detail;
    EXPECT_TRUE(later.events.empty());
  }
  LineDecoder other;
  EXPECT_EQ(decode(other, 1, R"({"hello":"clob-ws-market"})").rejection->reason, RejectReason::Schema);
  EXPECT_EQ(decode(other, 2, kV1Trade).rejection->reason, RejectReason::Schema);
  // A line 1 that is no hello (a type, or not an object) leaves the connection v1 whatever it holds.
  LineDecoder v1;
  EXPECT_EQ(decode(v1, 1, R"({"type":"trade","hello":{"format":"x"}})").rejection->reason, RejectReason::Schema);
  EXPECT_EQ(decode(v1, 2, kV1Trade).events.size(), 1u);
}

// A key named twice in a hello: the first value won here, while a producer's last-key-wins JSON
// library (Python, JavaScript) read the other, so the connection's format was a guess.
TEST(Hello, AKeyNamedTwiceIsRefusedAndSoIsEveryLaterLine) {
  for (const char* line : {R"({"hello":{"format":"clob-ws-market","format":"data-api-trades"}})",
                           R"({"hello":{"format":"clob-ws-market"},"hello":{"format":"data-api-trades"}})"}) {
    LineDecoder decoder;
    const Decoded d = decode(decoder, 1, line);
    ASSERT_TRUE(d.rejection) << line;
    EXPECT_EQ(d.rejection->reason, RejectReason::Schema);
    EXPECT_NE(d.rejection->detail.find("hello: key \"") , std::string::npos) << d.rejection->detail;
    EXPECT_NE(d.rejection->detail.find("appears more than once"), std::string::npos) << d.rejection->detail;
    EXPECT_EQ(decoder.format(), PayloadFormat::PmIngestd) << line;
    const Decoded later = decode(decoder, 2, kV1Trade);
    ASSERT_TRUE(later.rejection) << line;
    EXPECT_EQ(later.rejection->reason, RejectReason::Schema);
  }
}

TEST(Hello, OnAnyLaterLineIsRefused) {
  LineDecoder v1;
  EXPECT_FALSE(decode(v1, 1, kV1Trade).rejection);
  const Decoded late = decode(v1, 2, R"({"hello":{"format":"clob-ws-market"}})");
  ASSERT_TRUE(late.rejection);
  EXPECT_EQ(late.rejection->reason, RejectReason::Schema);
  EXPECT_NE(late.rejection->detail.find("known formats: pm-ingestd"), std::string::npos) << late.rejection->detail;
  EXPECT_EQ(v1.format(), PayloadFormat::PmIngestd);

  LineDecoder ws;
  EXPECT_FALSE(decode(ws, 1, R"({"hello":{"format":"clob-ws-market"}})").rejection);
  const Decoded again = decode(ws, 3, R"({"hello":{"format":"data-api-trades"}})");
  ASSERT_TRUE(again.rejection);
  EXPECT_NE(again.rejection->detail.find("only read on line 1"), std::string::npos);
  EXPECT_EQ(ws.format(), PayloadFormat::ClobWsMarket);
}

}  // namespace
}  // namespace pm
