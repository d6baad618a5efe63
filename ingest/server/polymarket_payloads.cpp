#include "ingest/server/polymarket_payloads.h"

#include <cstring>
#include <new>
#include <string>

#include <simdjson.h>

#include "ingest/server/field_rules.h"
#include "ingest/server/fill_trade_id.h"
#include "ingest/server/json_spans.h"
#include "ingest/server/kept_buffers.h"
#include "ingest/server/parser_buffers.h"

namespace pm {

namespace {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

// A derived trade id is "<hash>:<16 hex>": the hash may take what is left of kMaxKeyBytes.
constexpr std::size_t kMaxTransactionHashBytes = kMaxKeyBytes - 17;

// Where a shape keeps the fields every trade has.
struct Shape {
  const char* name;  // the format's name, for details
  const char* condition_id;
  const char* token_id;
  const char* timestamp;
  EpochUnit unit;
};
constexpr Shape kClobWs{"clob-ws-market", "market", "asset_id", "timestamp", EpochUnit::Milliseconds};
constexpr Shape kDataApi{"data-api-trades", "conditionId", "asset", "timestamp", EpochUnit::Seconds};
constexpr Shape kClobRest{"clob-rest-trades", "market", "asset_id", "match_time", EpochUnit::Seconds};

std::string unit_hint(const Shape& shape) {
  return std::string(shape.name) + " sends epoch " + (shape.unit == EpochUnit::Seconds ? "seconds" : "milliseconds");
}

// The fields of `shape` every trade has; `source_timestamp` receives the time in the source's unit.
TradeEvent shared_trade_fields(const Fields& f, const Shape& shape, std::int64_t received_ms, std::int64_t& source_timestamp) {
  TradeEvent t;
  t.condition_id = f.required_string(shape.condition_id, true, kMaxKeyBytes);
  t.token_id = f.required_string(shape.token_id, true, kMaxKeyBytes);
  t.price = f.price("price");
  t.size = f.size("size");
  t.side = f.side("side");
  source_timestamp = f.required_integer_or_digits(shape.timestamp);
  check_epoch(shape.timestamp, source_timestamp, shape.unit, unit_hint(shape));
  t.timestamp_ms = shape.unit == EpochUnit::Seconds ? source_timestamp * 1000 : source_timestamp;
  check_not_far_future(shape.timestamp, t.timestamp_ms, received_ms);
  return t;
}

FillFields fill_of(const TradeEvent& t, std::int64_t source_timestamp) {
  return FillFields{*t.token_id, t.side, t.price, t.size, source_timestamp, std::nullopt};
}

TradeEvent clob_ws_trade(const Fields& f, std::int64_t received_ms) {
  std::int64_t timestamp = 0;
  TradeEvent t = shared_trade_fields(f, kClobWs, received_ms, timestamp);
  const std::string hash = f.required_string("transaction_hash", true, kMaxTransactionHashBytes);
  t.trade_id = fill_trade_id(hash, fill_of(t, timestamp));
  return t;
}

TradeEvent data_api_trade(const Fields& f, std::int64_t received_ms) {
  std::int64_t timestamp = 0;
  TradeEvent t = shared_trade_fields(f, kDataApi, received_ms, timestamp);
  const std::string hash = f.required_string("transactionHash", true, kMaxTransactionHashBytes);
  const std::string wallet = f.required_string("proxyWallet", true, kMaxKeyBytes);
  FillFields fill = fill_of(t, timestamp);
  fill.wallet = wallet;
  t.trade_id = fill_trade_id(hash, fill);
  t.outcome = f.optional_string("outcome");
  t.outcome_index = f.optional_index("outcomeIndex");
  return t;
}

TradeEvent clob_rest_trade(const Fields& f, std::int64_t received_ms) {
  std::int64_t timestamp = 0;
  TradeEvent t = shared_trade_fields(f, kClobRest, received_ms, timestamp);
  t.trade_id = f.required_string("id", true, kMaxKeyBytes);
  t.outcome = f.optional_string("outcome");
  return t;
}

// What a clob-ws-market message is, by its event_type (refused when named twice: it would decide
// whether the message is a trade by a guess).
PolymarketMessage clob_ws_message(object obj) {
  std::optional<element> type;
  for (const simdjson::dom::key_value_pair field : obj) {
    if (field.key != "event_type") continue;
    if (type) reject(RejectReason::Schema, "key \"event_type\" appears more than once in the object");
    type = field.value;
  }
  std::string_view name;
  if (!type || type->get_string().get(name) != simdjson::SUCCESS) return PolymarketMessage::Unknown;
  for (int m = 0; m < static_cast<int>(PolymarketMessage::Unknown); ++m)
    if (name == to_string(static_cast<PolymarketMessage>(m))) return static_cast<PolymarketMessage>(m);
  return PolymarketMessage::Unknown;
}

}  // namespace

const char* to_string(PolymarketMessage message) {
  switch (message) {
    case PolymarketMessage::LastTradePrice: return "last_trade_price";
    case PolymarketMessage::Book: return "book";
    case PolymarketMessage::PriceChange: return "price_change";
    case PolymarketMessage::BestBidAsk: return "best_bid_ask";
    case PolymarketMessage::TickSizeChange: return "tick_size_change";
    case PolymarketMessage::NewMarket: return "new_market";
    case PolymarketMessage::MarketResolved: return "market_resolved";
    case PolymarketMessage::Unknown: return "unknown";
    case PolymarketMessage::Trade: return "trade";
  }
  return "unknown";
}

struct PolymarketParser::Impl {
  simdjson::dom::parser parser;
  std::vector<std::string_view> spans;  // the elements of an array line, as received

  element parse_json(std::string_view line);
  void parse_document(PayloadFormat format, element doc, std::string_view line, std::int64_t received_ms,
                      std::vector<Event>& out, MessageTally& tally);
  void parse_array(PayloadFormat format, array elements, std::string_view line, std::int64_t received_ms,
                   std::vector<Event>& out, MessageTally& tally);
  static void parse_element(PayloadFormat format, element e, std::string_view raw, std::int64_t received_ms,
                            std::vector<Event>& out, MessageTally& tally);
};

element PolymarketParser::Impl::parse_json(std::string_view line) {
  if (trim_json_whitespace(line).empty()) reject(RejectReason::Parse, "empty line");
  element doc;
  if (auto error = parser.parse(line.data(), line.size(), true).get(doc); error != simdjson::SUCCESS) {
    if (error == simdjson::MEMALLOC) throw std::bad_alloc();
    reject(RejectReason::Parse, json_error_detail(error, line));
  }
  return doc;
}

void PolymarketParser::Impl::parse_document(PayloadFormat format, element doc, std::string_view line,
                                            std::int64_t received_ms, std::vector<Event>& out, MessageTally& tally) {
  array elements;
  if (doc.get_array().get(elements) == simdjson::SUCCESS) return parse_array(format, elements, line, received_ms, out, tally);
  object obj;
  if (doc.get_object().get(obj) != simdjson::SUCCESS)
    reject(RejectReason::Schema, "a line must be a JSON object or an array of objects");
  if (is_hello(obj)) reject(RejectReason::Schema, hello_not_first_detail());
  parse_element(format, doc, trim_json_whitespace(line), received_ms, out, tally);
}

void PolymarketParser::Impl::parse_array(PayloadFormat format, array elements, std::string_view line,
                                         std::int64_t received_ms, std::vector<Event>& out, MessageTally& tally) {
  spans.clear();
  const bool have_spans = array_element_spans(line, spans) && spans.size() == elements.size();
  // Without the elements' own text (never, for text the parser accepted) numbers are looked for in
  // the whole line: the minified text has them as the 0 the parser read.
  if (!have_spans) refuse_a_number_stored_as_zero(line);
  std::size_t index = 0;
  for (element e : elements) {
    try {
      const std::string minified = have_spans ? std::string() : simdjson::minify(e);
      parse_element(format, e, have_spans ? spans[index] : std::string_view(minified), received_ms, out, tally);
    } catch (FieldError& error) {
      error.detail = "[" + std::to_string(index) + "] " + error.detail;
      throw;
    }
    ++index;
  }
}

void PolymarketParser::Impl::parse_element(PayloadFormat format, element e, std::string_view raw, std::int64_t received_ms,
                                           std::vector<Event>& out, MessageTally& tally) {
  object obj;
  if (e.get_object().get(obj) != simdjson::SUCCESS) reject(RejectReason::Schema, "an element must be a JSON object");
  // Classified first: a message that is not a trade is only counted, so a key it names twice (which
  // matters only for a stored trade's raw_json) does not fail the line and the trades in it.
  const PolymarketMessage message =
      format == PayloadFormat::ClobWsMarket ? clob_ws_message(obj) : PolymarketMessage::Trade;
  ++tally[static_cast<std::size_t>(message)];
  if (message != PolymarketMessage::LastTradePrice && message != PolymarketMessage::Trade) return;
  const Fields f(obj);
  if (std::memchr(raw.data(), '\0', raw.size()) != nullptr)
    reject(RejectReason::Schema, "contains a NUL byte, which PostgreSQL text cannot store");
  // In the trade's own text only: a number that underflows in a message that is not a trade (a
  // book's level) stores nothing and must not refuse the trades of its line.
  refuse_a_number_stored_as_zero(raw);
  Event event;
  event.received_ms = received_ms;
  TradeEvent trade = format == PayloadFormat::ClobWsMarket    ? clob_ws_trade(f, received_ms)
                     : format == PayloadFormat::DataApiTrades ? data_api_trade(f, received_ms)
                                                              : clob_rest_trade(f, received_ms);
  trade.raw_json = std::string(raw);
  event.body = std::move(trade);
  out.push_back(std::move(event));
}

PolymarketParser::PolymarketParser() : impl_(std::make_unique<Impl>()) {}
PolymarketParser::~PolymarketParser() = default;

std::optional<Rejection> PolymarketParser::parse(PayloadFormat format, std::string_view line, std::int64_t received_ms,
                                                 std::vector<Event>& out, MessageTally& tally) {
  tally.fill(0);
  const std::size_t first_new = out.size();
  const ReleaseLargeBuffers release(impl_->parser);
  struct ReleaseSpans {
    std::vector<std::string_view>& spans;
    ~ReleaseSpans() { clear_and_release_if_large(spans); }
  } release_spans{impl_->spans};
  try {
    impl_->parse_document(format, impl_->parse_json(line), line, received_ms, out, tally);
    return std::nullopt;
  } catch (const FieldError& error) {
    out.erase(out.begin() + static_cast<std::ptrdiff_t>(first_new), out.end());
    tally.fill(0);
    return Rejection{error.reason, error.detail};
  } catch (const std::bad_alloc&) {
    out.erase(out.begin() + static_cast<std::ptrdiff_t>(first_new), out.end());
    tally.fill(0);
    return out_of_memory_refusal();
  } catch (const std::exception& e) {
    out.erase(out.begin() + static_cast<std::ptrdiff_t>(first_new), out.end());
    tally.fill(0);
    return Rejection{RejectReason::Parse, std::string("cannot parse: ") + e.what()};
  }
}

std::optional<std::variant<PayloadFormat, Rejection>> PolymarketParser::read_hello_line(std::string_view line) {
  const ReleaseLargeBuffers release(impl_->parser);
  try {
    element doc;
    object obj;
    const auto error = impl_->parser.parse(line.data(), line.size(), true).get(doc);
    // Out of memory, the line may be a hello: "not a hello" would refuse it for good (as a hello
    // not on line 1) or read it as v1.
    if (error == simdjson::MEMALLOC) return out_of_memory_refusal();
    if (error != simdjson::SUCCESS || doc.get_object().get(obj) != simdjson::SUCCESS || !is_hello(obj)) return std::nullopt;
    return read_hello(obj);
  } catch (const std::bad_alloc&) {
    return out_of_memory_refusal();
  }
}

std::size_t PolymarketParser::buffer_capacity() const { return impl_->parser.capacity(); }

void PolymarketParser::release_buffers() { release_parser_buffers(impl_->parser); }

}  // namespace pm
