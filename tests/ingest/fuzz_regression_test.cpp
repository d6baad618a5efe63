// Inputs the libFuzzer targets (tests/fuzz/) found, each kept as a regression test:
// event_to_json must be valid JSON in valid UTF-8, and for an event LineParser returned, a line
// that parses back to the same event (dead letters and `pm-ingestctl wal-dump` print it).
#include <gtest/gtest.h>
#include <simdjson.h>

#include <cmath>
#include <limits>
#include <string>
#include <variant>

#include "ingest/events/event_codec.h"
#include "ingest/server/protocol.h"

namespace pm {
namespace {

constexpr std::int64_t kNow = 1'700'000'000'123;

std::string encoded(const Event& e) {
  std::string out;
  encode_event(e, out);
  return out;
}

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
  if (auto* rej = std::get_if<Rejection>(&r)) return *rej;
  ADD_FAILURE() << "accepted: " << line;
  return {};
}

bool valid_json(const std::string& text) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  return parser.parse(text).get(doc) == simdjson::SUCCESS && doc.is_object();
}

// What fuzz_line_parser checks: the event's JSON line is accepted and is the same event, bit for bit.
void expect_json_parses_back(const std::string& line) {
  const Event e = parse_ok(line);
  const std::string json = event_to_json(e);
  EXPECT_TRUE(valid_json(json)) << json;
  EXPECT_EQ(encoded(parse_ok(json)), encoded(e)) << json;
}

TEST(FuzzRegression, TradeSentInSecondsBefore1973IsRefusedAsItCouldNotBeStored) {
  // 1700999 s is 1970-01-20. It used to be accepted (and acked) as 1700999000 ms, which is below
  // 10^11: the trade repository's size rule reads that as seconds, so the writer dead-lettered the
  // acknowledged event in a milliseconds table. Now the line is refused, naming the field.
  const std::string line =
      R"({"type":"trade","condition_id":"c","trade_id":"t2","price":1,"size":"1.e-3","side":"Sell",)"
      R"("timestamp":1700999,"ran_json":"{\"orig\":\"\\u00e9\"}","token_id":null})";
  const Rejection refused = parse_bad(line);
  EXPECT_EQ(refused.reason, RejectReason::Range);
  EXPECT_NE(refused.detail.find("'timestamp' 1700999 is before 1973-03-03"), std::string::npos) << refused.detail;
  EXPECT_EQ(parse_bad(R"({"type":"trade","condition_id":"c","trade_id":"t","price":0.5,"size":1,)"
                      R"("side":"BUY","timestamp":99999999})")
                .reason,
            RejectReason::Range);
  // From 10^8 s on (1973-03-03), milliseconds as before.
  const std::string later = R"({"type":"trade","condition_id":"c","trade_id":"t","price":0.5,"size":1,)"
                            R"("side":"BUY","timestamp":100000000})";
  EXPECT_NE(event_to_json(parse_ok(later)).find(R"("timestamp_ms":100000000000,)"), std::string::npos);
  expect_json_parses_back(later);
}

TEST(FuzzRegression, NegativeZeroIsStoredAsZero) {
  for (const char* price : {R"("-0")", R"("-0.0")", "-0.0", "-0"}) {
    const std::string line = std::string(R"({"type":"trade","condition_id":"c","trade_id":"t","price":)") + price +
                             R"(,"size":0,"side":"BUY","timestamp_ms":1700000000000})";
    const Event e = parse_ok(line);
    EXPECT_FALSE(std::signbit(std::get<TradeEvent>(e.body).price)) << price;
    expect_json_parses_back(line);
  }
}

TEST(FuzzRegression, LargeNumbersRenderAsJsonParsersReadThem) {
  // 2^64 and more used to render as integer literals beyond 64 bits ("18446744073709551616"),
  // which simdjson refuses.
  expect_json_parses_back(R"({"type":"trade","condition_id":"c","trade_id":"t","price":0,)"
                          R"("size":18446744073709551615,"side":"BUY","timestamp_ms":1700000000101})");
  expect_json_parses_back(R"({"type":"trigger","token_id":"0xtok","condition_id":"0xc","threshold":0.9,)"
                          R"("trigger_timestamp":177370955615,"size":"101844674407370955161",)"
                          R"("model_score":2.71844674407370955161571e19})");
  expect_json_parses_back(R"({"type":"trigger","token_id":"a","condition_id":"b","threshold":1,)"
                          R"("trigger_timestamp":177370955615,"model_score":"-36893488147419103232"})");
  // Small ones and integers keep their short form.
  const Event e = parse_ok(R"({"type":"trade","condition_id":"c","trade_id":"t","price":0.953,)"
                           R"("size":123456789012345,"side":"BUY","timestamp_ms":1700000000101})");
  EXPECT_NE(event_to_json(e).find(R"("price":0.953,"size":123456789012345,)"), std::string::npos)
      << event_to_json(e);
}

TEST(FuzzRegression, NonFiniteNumbersOfADecodedRecordRenderAsNull) {
  // A log record passed its CRC and decodes with NaN or infinity (the parser never accepts them).
  Event e = parse_ok(R"({"type":"trigger","token_id":"a","condition_id":"b","threshold":0.5,)"
                     R"("trigger_timestamp":1700000000000,"price":0.5,"size":1,"model_score":0.1})");
  auto& g = std::get<TriggerEvent>(e.body);
  g.threshold = std::numeric_limits<double>::quiet_NaN();
  g.price = std::numeric_limits<double>::infinity();
  g.size = -std::numeric_limits<double>::infinity();
  auto decoded = decode_event(encoded(e));
  ASSERT_TRUE(decoded);
  const std::string json = event_to_json(*decoded);
  EXPECT_TRUE(valid_json(json)) << json;
  EXPECT_NE(json.find(R"("threshold":null,)"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("price":null,"size":null,"model_score":0.1)"), std::string::npos) << json;
}

TEST(FuzzRegression, IllFormedUtf8BecomesReplacementCharacters) {
  const std::string fffd = "\xef\xbf\xbd";
  struct Case {
    std::string in, out;
  };
  const Case cases[] = {
      {"\xc1\xa9", fffd + fffd},                          // overlong 2-byte form (found: c1 a9)
      {"\xc0\x9f", fffd + fffd},                          // overlong 2-byte form (found: c0 9f)
      {"\xe0\x9f\xbf", fffd + fffd + fffd},               // overlong 3-byte form (found: e0 9f)
      {"\xf0\x80\x80\x80", fffd + fffd + fffd + fffd},    // overlong 4-byte form (found: f0 80)
      {"\xed\xa0\x80", fffd + fffd + fffd},               // surrogate U+D800
      {"\xf4\x90\x80\x80", fffd + fffd + fffd + fffd},    // above U+10FFFF (found: f4 9f)
      {"\xf5\xb2\x80\x80", fffd + fffd + fffd + fffd},    // lead byte F5 (found: f5 b2)
      {"\xf7\xbf\xbf\xbf", fffd + fffd + fffd + fffd},    // lead byte F7 (found: f7 b2)
      {"a\xe2\x82", "a" + fffd + fffd},                   // truncated at the end
      // Well-formed boundaries stay as they are.
      {"\xc2\x80\xdf\xbf", "\xc2\x80\xdf\xbf"},
      {"\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf", "\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf"},
      {"\xf0\x90\x80\x80\xf4\x8f\xbf\xbf", "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf"},
  };
  for (const auto& c : cases) {
    std::string out;
    append_json_string(out, c.in);
    EXPECT_EQ(out, "\"" + c.out + "\"");
    EXPECT_TRUE(simdjson::validate_utf8(out)) << out;
  }
  // Through event_to_json, as fuzz_event_codec found it: a decoded trade whose strings hold any bytes.
  Event e = parse_ok(R"({"type":"trade","condition_id":"c","trade_id":"t","price":0.5,"size":1,)"
                     R"("side":"BUY","timestamp_ms":1700000000000})");
  auto& t = std::get<TradeEvent>(e.body);
  t.condition_id = "\xc1\xa9t\xed\xa0\x80";
  t.outcome = "\xf4\x9f\x80\x80";
  t.raw_json = std::string("\0\x01\xc0", 3);
  auto decoded = decode_event(encoded(e));
  ASSERT_TRUE(decoded);
  const std::string json = event_to_json(*decoded);
  EXPECT_TRUE(valid_json(json)) << json;
}

}  // namespace
}  // namespace pm
