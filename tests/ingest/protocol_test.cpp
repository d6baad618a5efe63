// Protocol v1 codec: every field rule and every rejection reason of docs/protocol.md.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "ingest/events/event_codec.h"
#include "ingest/server/line_decoder.h"
#include "ingest/server/line_splitter.h"
#include "ingest/server/parser_buffers.h"
#include "ingest/server/protocol.h"

namespace pm {
namespace {

constexpr std::int64_t kNow = 1'700'000'000'000;

const std::string kTrade =
    R"({"type":"trade","condition_id":"0xc","trade_id":"t1","token_id":"0xtok","price":0.953,)"
    R"("size":"12.5","side":"buy","timestamp":1700000000,"outcome":"Yes","outcome_index":0})";

Event parse_ok(const std::string& line) {
  LineParser parser;
  auto r = parser.parse(line, kNow);
  if (auto* rej = std::get_if<Rejection>(&r)) {
    ADD_FAILURE() << "rejected: " << to_string(rej->reason) << ": " << rej->detail << "\n" << line;
    return {};
  }
  return std::get<Event>(r);
}

Rejection parse_bad(const std::string& line) {
  LineParser parser;
  auto r = parser.parse(line, kNow);
  if (std::holds_alternative<Event>(r)) {
    ADD_FAILURE() << "accepted: " << line;
    return {RejectReason::Parse, ""};
  }
  return std::get<Rejection>(r);
}

std::string with(const std::string& base, const std::string& field_json) {
  return base.substr(0, base.size() - 1) + "," + field_json + "}";
}

std::string without(std::string line, const std::string& key) {
  const auto at = line.find("\"" + key + "\":");
  EXPECT_NE(at, std::string::npos) << key;
  auto end = line.find_first_of(",}", line.find(':', at));
  if (line[end] == ',') ++end;
  line.erase(at, end - at);
  if (line[line.size() - 2] == ',') line.erase(line.size() - 2, 1);
  return line;
}

TEST(Protocol, ParsesAFullTrade) {
  const Event e = parse_ok(kTrade);
  ASSERT_EQ(e.type(), EventType::Trade);
  const auto& t = std::get<TradeEvent>(e.body);
  EXPECT_EQ(t.condition_id, "0xc");
  EXPECT_EQ(t.trade_id, "t1");
  EXPECT_EQ(t.token_id, "0xtok");
  EXPECT_DOUBLE_EQ(t.price, 0.953);
  EXPECT_DOUBLE_EQ(t.size, 12.5);  // decimal string
  EXPECT_EQ(t.side, "BUY");        // upper-cased
  EXPECT_EQ(t.timestamp_ms, 1'700'000'000'000);
  EXPECT_EQ(t.outcome, "Yes");
  EXPECT_EQ(t.outcome_index, 0);
  EXPECT_EQ(t.raw_json, kTrade);  // no raw_json field: the line itself
  EXPECT_EQ(e.received_ms, kNow);
}

TEST(Protocol, TradeOptionalFieldsMayBeAbsentOrNull) {
  auto line = without(without(without(without(kTrade, "token_id"), "outcome"), "outcome_index"), "size");
  line = with(line, R"("size":0,"outcome":null)");
  const Event e = parse_ok(line);
  const auto& t = std::get<TradeEvent>(e.body);
  EXPECT_FALSE(t.token_id);
  EXPECT_FALSE(t.outcome);
  EXPECT_FALSE(t.outcome_index);
  EXPECT_EQ(t.size, 0);
}

TEST(Protocol, RawJsonFieldIsStoredAsIs) {
  const Event e = parse_ok(with(kTrade, R"("raw_json":"{\"orig\":1}")"));
  EXPECT_EQ(std::get<TradeEvent>(e.body).raw_json, R"({"orig":1})");
}

TEST(Protocol, TimestampMsIsAcceptedAndSecondsConverted) {
  auto ms = with(without(kTrade, "timestamp"), R"("timestamp_ms":1700000000123)");
  EXPECT_EQ(std::get<TradeEvent>(parse_ok(ms).body).timestamp_ms, 1'700'000'000'123);
  auto both = with(kTrade, R"("timestamp_ms":1700000000123)");
  EXPECT_EQ(std::get<TradeEvent>(parse_ok(both).body).timestamp_ms, 1'700'000'000'123);
}

TEST(Protocol, TimestampUnitsAreNeverRescaledSilently) {
  EXPECT_EQ(parse_bad(with(without(kTrade, "timestamp"), R"("timestamp":1700000000000)")).reason,
            RejectReason::TimestampUnits);
  EXPECT_EQ(parse_bad(with(without(kTrade, "timestamp"), R"("timestamp_ms":1700000000)")).reason,
            RejectReason::TimestampUnits);
  EXPECT_EQ(parse_bad(with(kTrade, R"("timestamp_ms":1800000000000)")).reason, RejectReason::Schema);
}

// simdjson keeps its buffers at the size of the largest line parsed (~15x the line); a connection
// that sent one large line and then sat idle would hold them. They are freed after a large line,
// kept after ordinary ones.
TEST(Protocol, TheParserDoesNotKeepTheBuffersOfALargeLine) {
  LineParser parser;
  ASSERT_TRUE(std::holds_alternative<Event>(parser.parse(kTrade, kNow)));
  EXPECT_GT(parser.buffer_capacity(), 0u) << "an ordinary line's buffers are kept for the next one";
  EXPECT_LE(parser.buffer_capacity(), kKeptParserCapacity);
  const std::string large = with(kTrade, R"("padding":")" + std::string(1 << 20, 'x') + "\"");
  const auto r = parser.parse(large, kNow);
  ASSERT_TRUE(std::holds_alternative<Event>(r)) << to_string(std::get<Rejection>(r).reason);
  EXPECT_EQ(std::get<TradeEvent>(std::get<Event>(r).body).raw_json, large) << "the event outlives the buffers";
  EXPECT_LE(parser.buffer_capacity(), kKeptParserCapacity);
  EXPECT_EQ(parser.parse(large + "]", kNow).index(), 1u) << "a refused large line too";
  EXPECT_LE(parser.buffer_capacity(), kKeptParserCapacity);
}

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
// Lets this process map at most `headroom` bytes more than it maps now (RLIMIT_AS): allocations
// beyond fail as they do when the machine runs out of memory.
void limit_address_space(std::size_t headroom) {
  std::ifstream statm("/proc/self/statm");
  std::size_t pages = 0;
  statm >> pages;
  const rlim_t limit = pages * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)) + headroom;
  rlimit old{};
  if (::getrlimit(RLIMIT_AS, &old) != 0) std::_Exit(3);
  const rlimit lowered{limit, old.rlim_max};  // the soft limit only: lift_address_space_limit() may raise it again
  if (::setrlimit(RLIMIT_AS, &lowered) != 0) std::_Exit(3);
}

void lift_address_space_limit() {
  rlimit old{};
  if (::getrlimit(RLIMIT_AS, &old) != 0) std::_Exit(3);
  const rlimit lifted{old.rlim_max, old.rlim_max};
  if (::setrlimit(RLIMIT_AS, &lifted) != 0) std::_Exit(3);
}

// Decodes line `number` of `decoder` with 32 MiB of address space to spare (a parser needs ~15x
// the line) and exits 0 when it is answered `busy`, printing the answer.
[[noreturn]] void decode_out_of_memory(LineDecoder& decoder, std::uint64_t number, const std::string& line) {
  std::vector<Event> events;
  limit_address_space(32u << 20);
  const std::optional<Rejection> r = decoder.decode(number, line, kNow, events);
  std::fprintf(stderr, "answer: %s %s\n", r ? to_string(r->reason) : "accepted", r ? r->detail.c_str() : "");
  std::_Exit(r && r->reason == RejectReason::Busy ? 0 : 1);
}
#endif

// A valid line whose parse runs out of memory was refused with `parse` ("cannot parse:
// std::bad_alloc", or simdjson's MEMALLOC as "not valid JSON"), which a producer drops as final,
// and a hello line so answered was read as a v1 line. It is `busy`: send it again.
TEST(Protocol, AnAllocationFailureIsNotAParseRefusal) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "a sanitizer reserves terabytes of address space: RLIMIT_AS cannot be lowered just above what is mapped";
#else
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const std::string pad = R"("pad":")" + std::string(8u << 20, 'x') + "\"";
  const std::string trade = with(kTrade, pad);
  const std::string hello = R"({"hello":{"format":"clob-ws-market"},)" + pad + "}";
  const std::string ws_array = R"([{"event_type":"book","market":"0xc",)" + pad + "}]";
  EXPECT_EXIT({
    LineDecoder decoder;
    decode_out_of_memory(decoder, 2, trade);
  }, testing::ExitedWithCode(0), "answer: busy out of memory") << "a v1 line";
  EXPECT_EXIT({
    LineDecoder decoder;
    decode_out_of_memory(decoder, 1, hello);
  }, testing::ExitedWithCode(0), "answer: busy out of memory") << "a hello";
  EXPECT_EXIT({
    LineDecoder decoder;
    std::vector<Event> events;
    if (decoder.decode(1, R"({"hello":{"format":"clob-ws-market"}})", kNow, events)) std::_Exit(2);
    decode_out_of_memory(decoder, 2, ws_array);
  }, testing::ExitedWithCode(0), "answer: busy out of memory") << "a Polymarket array line";
  // The lines after a hello that could not be read are busy too, never read as protocol v1 (a
  // Polymarket trade there was refused for good: schema).
  EXPECT_EXIT({
    LineDecoder decoder;
    std::vector<Event> events;
    limit_address_space(32u << 20);
    const std::optional<Rejection> first = decoder.decode(1, hello, kNow, events);
    lift_address_space_limit();
    const std::optional<Rejection> second = decoder.decode(
        2, R"([{"event_type":"last_trade_price","asset_id":"t","market":"0xc","price":"0.5","side":"BUY","size":"1","timestamp":"1700000000000"}])",
        kNow, events);
    std::fprintf(stderr, "answers: %s, %s %s\n", first ? to_string(first->reason) : "accepted",
                 second ? to_string(second->reason) : "accepted", second ? second->detail.c_str() : "");
    std::_Exit(first && first->reason == RejectReason::Busy && second && second->reason == RejectReason::Busy ? 0 : 1);
  }, testing::ExitedWithCode(0), "answers: busy, busy line 1 \\(a hello\\?\\) could not be read") << "the lines after the hello";
  // Each is valid when memory suffices (after the death tests: their children run the test up to
  // them, and memory these parses freed could serve them there).
  LineDecoder decoder;
  std::vector<Event> events;
  EXPECT_EQ(decoder.decode(1, trade, kNow, events), std::nullopt);
  EXPECT_EQ(events.size(), 1u);
  LineDecoder ws;
  EXPECT_EQ(ws.decode(1, hello, kNow, events), std::nullopt);
  EXPECT_EQ(ws.format(), PayloadFormat::ClobWsMarket);
  EXPECT_EQ(ws.decode(2, ws_array, kNow, events), std::nullopt);
#endif
}

// simdjson reads the first of two equal keys; raw_json keeps the line, which last-key-wins readers
// (Python, JavaScript, jsonb) read as the second: such a line is refused, naming the key.
TEST(Protocol, AKeyNamedTwiceIsRefused) {
  const Rejection twice = parse_bad(with(kTrade, R"("price":0.1)"));
  EXPECT_EQ(twice.reason, RejectReason::Schema);
  EXPECT_NE(twice.detail.find(R"(key "price" appears more than once)"), std::string::npos) << twice.detail;
  EXPECT_EQ(parse_bad(with(kTrade, R"("pr\u0069ce":0.1)")).reason, RejectReason::Schema) << "the same key, escaped";
  EXPECT_EQ(parse_bad(with(kTrade, R"("extra":1,"extra":2)")).reason, RejectReason::Schema) << "an unknown key too";
  // Past the 64 keys compared on the stack.
  std::string many = kTrade;
  for (int i = 0; i < 100; ++i) many = with(many, "\"k" + std::to_string(i) + "\":" + std::to_string(i));
  parse_ok(many);
  EXPECT_EQ(parse_bad(with(many, R"("k3":0)")).reason, RejectReason::Schema);
  EXPECT_EQ(parse_bad(with(many, R"("k99":0)")).reason, RejectReason::Schema);
}

// The refusal names the number, the key it belongs to and why (it said only "beyond what a double
// holds, or an integer beyond 64 bits, or malformed", naming neither).
TEST(Protocol, ANumberBeyondADoubleIsRefusedNamingItAndItsKey) {
  const std::pair<const char*, const char*> cases[] = {
      {R"("extra":1e400)", R"(the number 1e400 of "extra" is beyond what a double holds)"},
      {R"("extra":-2.5E+999)", R"(the number -2.5E+999 of "extra" is beyond what a double holds)"},
      {R"("extra":123456789012345678901234567890)",
       R"(the number 123456789012345678901234567890 of "extra" is an integer beyond 64 bits)"},
      {R"("extra" : [1, 1e400])", R"(the number 1e400 is beyond what a double holds)"},  // no key of its own
      {R"("extra":-Infinity)", R"(the number -Infinity of "extra" is not a valid JSON number)"},
      {R"("extra":1x,"other":1e400)", R"(the number 1x of "extra" is not a valid JSON number)"},  // the first, as the parser
  };
  for (const auto& [member, expected] : cases) {
    const Rejection r = parse_bad(with(kTrade, member));
    EXPECT_EQ(r.reason, RejectReason::Parse) << member;
    EXPECT_NE(r.detail.find(expected), std::string::npos) << member << ": " << r.detail;
  }
  // Strings are not read as numbers: only the value after them is.
  const Rejection r = parse_bad(with(with(kTrade, R"("note":"1e400 -9e999")"), R"("size2":9e999)"));
  EXPECT_NE(r.detail.find(R"(the number 9e999 of "size2" is beyond what a double holds)"), std::string::npos) << r.detail;
}

// simdjson reads a number below a double's smallest (~4.9e-324) as 0 and says nothing: the event
// was acknowledged and stored with that field 0 (1e-50 was refused, 1e-400 stored as 0).
TEST(Protocol, ANumberThatUnderflowsADoubleIsRefusedNotStoredAsZero) {
  const std::string point_zeros = "0." + std::string(400, '0') + "5";
  for (const std::string& number : {std::string("1e-400"), std::string("-2.5E-999"), std::string("1e-340"), point_zeros}) {
    for (const char* key : {"size", "price", "extra"}) {
      const std::string base = std::string(key) == "extra" ? kTrade : without(kTrade, key);
      const Rejection r = parse_bad(with(base, "\"" + std::string(key) + "\":" + number));
      EXPECT_EQ(r.reason, RejectReason::Range) << key << " " << number;
      EXPECT_NE(r.detail.find("the number " + number.substr(0, 64) + " is too small for a double"), std::string::npos)
          << key << " " << number << ": " << r.detail;
    }
  }
  // Zeros written as such, exponents a double holds, and such text inside strings are not refused.
  for (const char* fine : {R"("extra":0e-400)", R"("extra":-0.0E-999)", R"("extra":1e-300)", R"("note":"1e-400")",
                           R"("note":"\"1e-400")"})
    parse_ok(with(kTrade, fine));
}

TEST(Protocol, TradeTimestampRules) {
  EXPECT_EQ(parse_bad(without(kTrade, "timestamp")).reason, RejectReason::Schema);
  EXPECT_EQ(parse_bad(with(without(kTrade, "timestamp"), R"("timestamp":0)")).reason, RejectReason::Range);
  EXPECT_EQ(parse_bad(with(without(kTrade, "timestamp"), R"("timestamp":-5)")).reason, RejectReason::Range);
  // Before 10^8 s (1973-03-03) the milliseconds would read as seconds in the tables: refused.
  EXPECT_EQ(parse_bad(with(without(kTrade, "timestamp"), R"("timestamp":99999999)")).reason, RejectReason::Range);
  EXPECT_EQ(parse_bad(with(without(kTrade, "timestamp"), R"("timestamp":1.7e9)")).reason, RejectReason::Schema);
  EXPECT_EQ(parse_bad(with(without(kTrade, "timestamp"), R"("timestamp":"1700000000")")).reason, RejectReason::Schema);
}

TEST(Protocol, RequiredTradeFields) {
  for (const char* key : {"condition_id", "trade_id", "price", "size", "side"}) {
    auto r = parse_bad(without(kTrade, key));
    EXPECT_EQ(r.reason, RejectReason::Schema) << key;
    EXPECT_NE(r.detail.find(key), std::string::npos) << r.detail;
  }
}

TEST(Protocol, TradeRanges) {
  auto set = [](const std::string& key, const std::string& json) { return with(without(kTrade, key), json); };
  EXPECT_EQ(parse_bad(set("price", R"("price":1.5)")).reason, RejectReason::Range);
  EXPECT_EQ(parse_bad(set("price", R"("price":-0.1)")).reason, RejectReason::Range);
  EXPECT_EQ(std::get<TradeEvent>(parse_ok(set("price", R"("price":1)")).body).price, 1.0);
  EXPECT_EQ(std::get<TradeEvent>(parse_ok(set("price", R"("price":"0")")).body).price, 0.0);
  EXPECT_EQ(parse_bad(set("size", R"("size":-1)")).reason, RejectReason::Range);
  EXPECT_EQ(parse_bad(set("size", R"("size":1e39)")).reason, RejectReason::Range);  // beyond REAL
  EXPECT_EQ(parse_bad(set("side", R"("side":"HOLD")")).reason, RejectReason::Range);
  EXPECT_EQ(std::get<TradeEvent>(parse_ok(set("side", R"("side":"Sell")")).body).side, "SELL");
  EXPECT_EQ(parse_bad(set("condition_id", R"("condition_id":"")")).reason, RejectReason::Range);
  EXPECT_EQ(parse_bad(set("trade_id", "\"trade_id\":\"" + std::string(257, 'x') + "\"")).reason, RejectReason::Range);
  EXPECT_NO_THROW(parse_ok(set("trade_id", "\"trade_id\":\"" + std::string(256, 'x') + "\"")));
  EXPECT_EQ(parse_bad(set("outcome_index", R"("outcome_index":-1)")).reason, RejectReason::Range);
  EXPECT_EQ(parse_bad(set("outcome_index", R"("outcome_index":3000000000)")).reason, RejectReason::Range);
  EXPECT_EQ(parse_bad(set("outcome_index", R"("outcome_index":"1")")).reason, RejectReason::Schema);
}

TEST(Protocol, DecimalStrings) {
  auto price = [](const std::string& v) { return with(without(kTrade, "price"), "\"price\":" + v); };
  EXPECT_DOUBLE_EQ(std::get<TradeEvent>(parse_ok(price(R"("0.953")")).body).price, 0.953);
  EXPECT_DOUBLE_EQ(std::get<TradeEvent>(parse_ok(price(R"(".5")")).body).price, 0.5);
  EXPECT_DOUBLE_EQ(std::get<TradeEvent>(parse_ok(price(R"("5e-1")")).body).price, 0.5);
  for (const char* bad : {R"("")", R"("abc")", R"(" 0.5")", R"("0.5 ")", R"("nan")", R"("inf")", R"("0x1")", R"("+0.5")", R"("1e")"}) {
    EXPECT_EQ(parse_bad(price(bad)).reason, RejectReason::Schema) << bad;
  }
  EXPECT_EQ(parse_bad(price("true")).reason, RejectReason::Schema);
  EXPECT_EQ(parse_bad(price("[0.5]")).reason, RejectReason::Schema);
}

TEST(Protocol, MistypedStringsAreSchemaErrors) {
  EXPECT_EQ(parse_bad(with(without(kTrade, "trade_id"), R"("trade_id":12)")).reason, RejectReason::Schema);
  EXPECT_EQ(parse_bad(with(without(kTrade, "token_id"), R"("token_id":{})")).reason, RejectReason::Schema);
  EXPECT_EQ(parse_bad(with(without(kTrade, "trade_id"), R"("trade_id":"a\u0000b")")).reason, RejectReason::Schema);
}

TEST(Protocol, UnknownFieldsAreIgnored) {
  const Event e = parse_ok(with(kTrade, R"("extra":{"nested":[1,2,3]},"another":"x")"));
  EXPECT_EQ(std::get<TradeEvent>(e.body).trade_id, "t1");
}

TEST(Protocol, TypeRules) {
  EXPECT_EQ(parse_bad(without(kTrade, "type")).reason, RejectReason::Schema);
  auto r = parse_bad(R"({"type":"quote","x":1})");
  EXPECT_EQ(r.reason, RejectReason::Schema);
  EXPECT_NE(r.detail.find("quote"), std::string::npos);
  EXPECT_EQ(parse_bad(R"({"type":7})").reason, RejectReason::Schema);
  EXPECT_EQ(parse_bad(R"([1,2])").reason, RejectReason::Schema);
  EXPECT_EQ(parse_bad(R"("trade")").reason, RejectReason::Schema);
}

// The details name what was wrong as it was sent: a 'type' of the wrong kind was "missing", a bad
// side was quoted upper-cased (got "HOLD" for "hold"), and a millisecond field of 5 was told to
// be sent as seconds, where it would be refused as before 1973.
TEST(Protocol, DetailsDescribeTheValueAsSent) {
  EXPECT_EQ(parse_bad(R"({"type":7})").detail, R"('type' must be a string ("trade" or "trigger"))");
  EXPECT_EQ(parse_bad(without(kTrade, "type")).detail, "missing required string field 'type'");
  auto set = [](const std::string& key, const std::string& json) { return with(without(kTrade, key), json); };
  EXPECT_EQ(parse_bad(set("side", R"("side":"hold")")).detail, R"('side' must be BUY or SELL, got "hold")");
  const Rejection tiny = parse_bad(set("timestamp", R"("timestamp_ms":5)"));
  EXPECT_EQ(tiny.reason, RejectReason::TimestampUnits);
  EXPECT_EQ(tiny.detail, "'timestamp_ms' 5 looks like seconds (and is before 1973 even so)");
  const Rejection seconds = parse_bad(set("timestamp", R"("timestamp_ms":1700000000)"));
  EXPECT_NE(seconds.detail.find("looks like seconds; "), std::string::npos) << seconds.detail;
}

TEST(Protocol, NotJsonIsAParseError) {
  EXPECT_EQ(parse_bad("{\"type\":\"trade\"").reason, RejectReason::Parse);
  EXPECT_EQ(parse_bad("hello").reason, RejectReason::Parse);
  EXPECT_EQ(parse_bad("").reason, RejectReason::Parse);
  EXPECT_EQ(parse_bad("   ").reason, RejectReason::Parse);
  EXPECT_EQ(parse_bad("{\"type\":\"trade\",\"x\":\"\xff\xfe\"}").reason, RejectReason::Parse);  // not UTF-8
}

const std::string kTrigger =
    R"({"type":"trigger","token_id":"0xtok","condition_id":"0xc","threshold":"0.95",)"
    R"("trigger_timestamp":1700000000000,"price":0.96,"size":"10","model_score":0.87,)"
    R"("model_version":"v3","outcome":"Yes","outcome_index":1})";

TEST(Protocol, ParsesAFullTrigger) {
  const Event e = parse_ok(kTrigger);
  ASSERT_EQ(e.type(), EventType::Trigger);
  const auto& g = std::get<TriggerEvent>(e.body);
  EXPECT_EQ(g.token_id, "0xtok");
  EXPECT_EQ(g.condition_id, "0xc");
  EXPECT_DOUBLE_EQ(g.threshold, 0.95);
  EXPECT_EQ(g.trigger_timestamp_ms, 1'700'000'000'000);
  EXPECT_DOUBLE_EQ(*g.price, 0.96);
  EXPECT_DOUBLE_EQ(*g.size, 10);
  EXPECT_DOUBLE_EQ(*g.model_score, 0.87);
  EXPECT_EQ(g.model_version, "v3");
  EXPECT_EQ(g.outcome_index, 1);
  EXPECT_EQ(e.event_time_ms(), 1'700'000'000'000);
}

TEST(Protocol, TriggerRules) {
  auto set = [](const std::string& key, const std::string& json) { return with(without(kTrigger, key), json); };
  for (const char* key : {"token_id", "condition_id", "threshold", "trigger_timestamp"})
    EXPECT_EQ(parse_bad(without(kTrigger, key)).reason, RejectReason::Schema) << key;
  EXPECT_EQ(parse_bad(set("condition_id", R"("condition_id":"")")).reason, RejectReason::Range);  // G2 needs it
  EXPECT_EQ(parse_bad(set("token_id", R"("token_id":"")")).reason, RejectReason::Range);
  EXPECT_EQ(parse_bad(set("threshold", R"("threshold":0)")).reason, RejectReason::Range);
  EXPECT_EQ(parse_bad(set("threshold", R"("threshold":1.01)")).reason, RejectReason::Range);
  EXPECT_EQ(std::get<TriggerEvent>(parse_ok(set("threshold", R"("threshold":1)")).body).threshold, 1.0);
  EXPECT_EQ(parse_bad(set("trigger_timestamp", R"("trigger_timestamp":0)")).reason, RejectReason::Range);
  EXPECT_EQ(parse_bad(set("trigger_timestamp", R"("trigger_timestamp":1700000000)")).reason,
            RejectReason::TimestampUnits);
  EXPECT_EQ(parse_bad(set("model_score", R"("model_score":"high")")).reason, RejectReason::Schema);
  EXPECT_EQ(parse_bad(set("outcome_index", R"("outcome_index":-2)")).reason, RejectReason::Range);
  const auto minimal = R"({"type":"trigger","token_id":"a","condition_id":"c","threshold":0.5,"trigger_timestamp":1700000000000})";
  const Event e = parse_ok(minimal);
  const auto& g = std::get<TriggerEvent>(e.body);
  EXPECT_FALSE(g.price);
  EXPECT_FALSE(g.model_version);
}

TEST(Protocol, RepliesAreJsonLines) {
  std::string out;
  append_ack(out, 42);
  EXPECT_EQ(out, "{\"ack\":42}\n");
  out.clear();
  append_error(out, RejectReason::TimestampUnits, 3, "say \"ms\"\n\\");
  EXPECT_EQ(out, R"({"error":"timestamp_units","line":3,"detail":"say \"ms\"\u000a\\"})" "\n");
  out.clear();
  append_json_string(out, "a\xffz");
  EXPECT_EQ(out, "\"a\xef\xbf\xbdz\"");
  for (int r = 0; r < kRejectReasonCount; ++r) EXPECT_STRNE(to_string(static_cast<RejectReason>(r)), "");
  EXPECT_STREQ(to_string(RejectReason::TooLong), "too_long");
  EXPECT_STREQ(to_string(RejectReason::Busy), "busy");
}

TEST(Protocol, EventToJsonParsesBack) {
  for (const auto& line : {kTrade, kTrigger}) {
    const Event e = parse_ok(line);
    const Event again = parse_ok(event_to_json(e));
    std::string a, b;
    Event e2 = e, again2 = again;
    e2.received_ms = again2.received_ms = 0;
    if (auto* t = std::get_if<TradeEvent>(&again2.body)) t->raw_json = std::get<TradeEvent>(e2.body).raw_json;
    encode_event(e2, a);
    encode_event(again2, b);
    EXPECT_EQ(a, b) << event_to_json(e);
  }
}

TEST(EventCodec, RoundTripsEveryField) {
  for (const auto& line : {kTrade, kTrigger, without(without(kTrade, "token_id"), "outcome_index")}) {
    const Event e = parse_ok(line);
    std::string bytes;
    encode_event(e, bytes);
    auto back = decode_event(bytes);
    ASSERT_TRUE(back);
    std::string again;
    encode_event(*back, again);
    EXPECT_EQ(bytes, again);
    EXPECT_EQ(event_to_json(*back), event_to_json(e));
  }
}

TEST(EventCodec, RejectsEveryTruncationAndTrailingBytes) {
  std::string bytes;
  encode_event(parse_ok(kTrigger), bytes);
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    std::string error;
    EXPECT_FALSE(decode_event(std::string_view(bytes).substr(0, n), &error)) << n;
    EXPECT_FALSE(error.empty());
  }
  EXPECT_FALSE(decode_event(bytes + "x"));
}

TEST(LineSplitter, NumbersLinesAndHandlesChunking) {
  LineSplitter s(100);
  std::vector<std::pair<std::uint64_t, std::string>> lines;
  auto on = [&](std::uint64_t n, std::string_view text, bool too_long) {
    EXPECT_FALSE(too_long);
    lines.emplace_back(n, std::string(text));
  };
  s.feed("ab", on);
  s.feed("c\r\nde", on);
  s.feed("f\n\ng", on);
  s.finish(on);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0], (std::pair<std::uint64_t, std::string>{1, "abc"}));
  EXPECT_EQ(lines[1], (std::pair<std::uint64_t, std::string>{2, "def"}));
  EXPECT_EQ(lines[2], (std::pair<std::uint64_t, std::string>{3, ""}));
  EXPECT_EQ(lines[3], (std::pair<std::uint64_t, std::string>{4, "g"}));
}

TEST(LineSplitter, OverLongLineIsSkippedWithoutLosingTheNext) {
  LineSplitter s(10);
  std::vector<std::tuple<std::uint64_t, std::string, bool>> lines;
  auto on = [&](std::uint64_t n, std::string_view text, bool too_long) { lines.emplace_back(n, std::string(text), too_long); };
  s.feed("short\n" + std::string(6, 'x'), on);
  s.feed(std::string(50, 'y'), on);  // still the same line, now far too long
  EXPECT_TRUE(s.has_partial());
  s.feed("zz\nnext\n" + std::string(11, 'w') + "\nlast\n", on);
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[0], std::make_tuple(std::uint64_t{1}, std::string("short"), false));
  EXPECT_EQ(lines[1], std::make_tuple(std::uint64_t{2}, std::string(), true));
  EXPECT_EQ(lines[2], std::make_tuple(std::uint64_t{3}, std::string("next"), false));
  EXPECT_EQ(lines[3], std::make_tuple(std::uint64_t{4}, std::string(), true));
  EXPECT_EQ(lines[4], std::make_tuple(std::uint64_t{5}, std::string("last"), false));
  EXPECT_EQ(s.lines(), 5u);
}

// A line that arrived in pieces is assembled in the splitter's buffer; a 1 MiB one grew it to
// 1 MiB, kept while the connection sat idle (a thousand such connections, a gigabyte). Freed once
// the line is done; an ordinary line's buffer is kept for the next one.
TEST(LineSplitter, DoesNotKeepTheBufferOfALargeLineItAssembled) {
  LineSplitter s(2 << 20);
  std::size_t emitted = 0;
  auto on = [&](std::uint64_t, std::string_view text, bool) { emitted = text.size(); };
  s.feed("small", on);
  s.feed(" line\n", on);
  EXPECT_EQ(emitted, 10u);
  EXPECT_LE(s.partial_capacity(), LineSplitter::kKeptPartialCapacity);
  s.feed(std::string(1 << 20, 'x'), on);
  EXPECT_GE(s.partial_capacity(), 1u << 20);
  s.feed("x\n", on);
  EXPECT_EQ(emitted, (1u << 20) + 1);
  EXPECT_LE(s.partial_capacity(), LineSplitter::kKeptPartialCapacity);
  s.feed(std::string(1 << 20, 'y'), on);  // unfinished at the end of the stream
  s.finish(on);
  EXPECT_LE(s.partial_capacity(), LineSplitter::kKeptPartialCapacity);
}

}  // namespace
}  // namespace pm

namespace pm {
namespace {

// Issue 18, item 2: what a REAL column refuses is refused on the line, before it is acked.
TEST(Protocol, ValuesTooSmallForARealAreRefusedOnTheLine) {
  auto set = [](const std::string& key, const std::string& json) { return with(without(kTrade, key), json); };
  const Rejection price = parse_bad(set("price", R"("price":1e-50)"));
  EXPECT_EQ(price.reason, RejectReason::Range);
  EXPECT_NE(price.detail.find("too small for a REAL"), std::string::npos) << price.detail;
  EXPECT_EQ(parse_bad(set("size", R"("size":"1e-46")")).reason, RejectReason::Range);
  EXPECT_FLOAT_EQ(static_cast<float>(std::get<TradeEvent>(parse_ok(set("size", R"("size":"1e-40")")).body).size),
                  static_cast<float>(1e-40))
      << "a subnormal REAL is stored by the server, so it is accepted";
  EXPECT_EQ(std::get<TradeEvent>(parse_ok(set("size", R"("size":0)")).body).size, 0.0);
  const std::string trigger = R"({"type":"trigger","token_id":"t","condition_id":"c","trigger_timestamp":1700000000000,)";
  EXPECT_EQ(parse_bad(trigger + R"("threshold":1e-50})").reason, RejectReason::Range);
  EXPECT_EQ(parse_bad(trigger + R"("threshold":0.5,"model_score":1e-60})").reason, RejectReason::Range);
}

// Issue 18, item 3: an event time far in the future would hold the freshness metrics for years.
TEST(Protocol, EventTimesMoreThanADayInTheFutureAreRefused) {
  auto trade_at = [](std::int64_t ms) {
    return with(without(kTrade, "timestamp"), "\"timestamp_ms\":" + std::to_string(ms));
  };
  EXPECT_NO_THROW(parse_ok(trade_at(kNow + kMaxFutureMs)));
  const Rejection r = parse_bad(trade_at(kNow + kMaxFutureMs + 1));
  EXPECT_EQ(r.reason, RejectReason::Range);
  EXPECT_NE(r.detail.find("more than a day after the line arrived"), std::string::npos) << r.detail;
  EXPECT_EQ(parse_bad(trade_at(9223372036854775807LL)).reason, RejectReason::Range);
  const std::string trigger = R"({"type":"trigger","token_id":"t","condition_id":"c","threshold":0.5,"trigger_timestamp":)";
  EXPECT_EQ(parse_bad(trigger + std::to_string(kNow + 2 * kMaxFutureMs) + "}").reason, RejectReason::Range);
  EXPECT_NO_THROW(parse_ok(trigger + std::to_string(kNow - 1000) + "}"));
}

// Issue 18, item 7: "\r\n" ends a line exactly as "\n" does, also at the length limit.
TEST(LineSplitter, CrLfAtTheLengthLimitIsNotTooLong) {
  for (std::size_t split = 0; split <= 13; ++split) {
    LineSplitter s(10);
    std::vector<std::tuple<std::uint64_t, std::string, bool>> lines;
    auto on = [&](std::uint64_t n, std::string_view text, bool too_long) { lines.emplace_back(n, std::string(text), too_long); };
    const std::string bytes = std::string(10, 'a') + "\r\n" + std::string(11, 'b') + "\r\n";
    const std::size_t cut = std::min(split, bytes.size());
    s.feed(bytes.substr(0, cut), on);
    s.feed(bytes.substr(cut), on);
    ASSERT_EQ(lines.size(), 2u) << "split at " << split;
    EXPECT_EQ(lines[0], std::make_tuple(std::uint64_t{1}, std::string(10, 'a'), false)) << "split at " << split;
    EXPECT_EQ(lines[1], std::make_tuple(std::uint64_t{2}, std::string(), true)) << "split at " << split;
  }
}

}  // namespace
}  // namespace pm
