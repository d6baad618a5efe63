#include "ingest/server/protocol.h"

#include <simdjson.h>

#include <new>

#include "ingest/server/field_rules.h"
#include "ingest/server/parser_buffers.h"
#include "ingest/server/payload_format.h"

namespace pm {

namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

std::int64_t trade_timestamp_ms(const Fields& f) {
  auto seconds = f.optional_integer("timestamp");
  auto millis = f.optional_integer("timestamp_ms");
  if (!seconds && !millis) reject(RejectReason::Schema, "missing required field 'timestamp' (epoch seconds) or 'timestamp_ms'");
  if (seconds) check_epoch("timestamp", *seconds, EpochUnit::Seconds, "send it as 'timestamp_ms'");
  if (millis) check_epoch("timestamp_ms", *millis, EpochUnit::Milliseconds, "send it as 'timestamp'");
  if (seconds && millis && *millis / 1000 != *seconds)
    reject(RejectReason::Schema, "'timestamp' and 'timestamp_ms' disagree");
  return millis ? *millis : *seconds * 1000;
}

TradeEvent parse_trade(const Fields& f, std::string_view line) {
  TradeEvent t;
  t.condition_id = f.required_string("condition_id", true, kMaxKeyBytes);
  t.trade_id = f.required_string("trade_id", true, kMaxKeyBytes);
  t.token_id = f.optional_string("token_id");
  t.price = f.price("price");
  t.size = f.size("size");
  t.side = f.side("side");
  t.timestamp_ms = trade_timestamp_ms(f);
  t.outcome = f.optional_string("outcome");
  t.outcome_index = f.optional_index("outcome_index");
  auto raw = f.optional_string("raw_json");
  t.raw_json = raw ? std::move(*raw) : std::string(line);
  return t;
}

TriggerEvent parse_trigger(const Fields& f) {
  TriggerEvent t;
  t.token_id = f.required_string("token_id", true, kMaxKeyBytes);
  t.condition_id = f.required_string("condition_id", true, kMaxKeyBytes);
  t.threshold = f.required_number("threshold");
  if (!(t.threshold > 0 && t.threshold <= 1))
    reject(RejectReason::Range, "'threshold' must be > 0 and <= 1, got " + json_number_text(t.threshold));
  auto ts = f.optional_integer("trigger_timestamp");
  if (!ts) reject(RejectReason::Schema, "missing required field 'trigger_timestamp' (epoch milliseconds)");
  check_epoch("trigger_timestamp", *ts, EpochUnit::Milliseconds, "it must be epoch milliseconds");
  t.trigger_timestamp_ms = *ts;
  t.price = f.optional_number("price");
  t.size = f.optional_number("size");
  t.model_score = f.optional_number("model_score");
  t.model_version = f.optional_string("model_version");
  t.outcome = f.optional_string("outcome");
  t.outcome_index = f.optional_index("outcome_index");
  return t;
}

}  // namespace

struct LineParser::Impl {
  simdjson::dom::parser parser;
};

LineParser::LineParser() : impl_(std::make_unique<Impl>()) {}
LineParser::~LineParser() = default;

std::variant<Event, Rejection> LineParser::parse(std::string_view line, std::int64_t received_ms) {
  const ReleaseLargeBuffers release(impl_->parser);
  try {
    std::size_t first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos) return Rejection{RejectReason::Parse, "empty line"};
    element doc;
    if (auto error = impl_->parser.parse(line.data(), line.size(), true).get(doc); error != simdjson::SUCCESS)
      return error == simdjson::MEMALLOC ? out_of_memory_refusal() : Rejection{RejectReason::Parse, json_error_detail(error, line)};
    refuse_a_number_stored_as_zero(line);
    object obj;
    if (doc.get_object().get(obj) != simdjson::SUCCESS)
      return Rejection{RejectReason::Schema, "a line must be a JSON object"};
    Fields fields(obj);
    auto type = fields.get("type");
    if (!type || type->type() != element_type::STRING) {
      if (is_hello(obj)) return Rejection{RejectReason::Schema, hello_not_first_detail()};
      return Rejection{RejectReason::Schema, type ? "'type' must be a string (\"trade\" or \"trigger\")"
                                                  : "missing required string field 'type'"};
    }
    std::string_view kind = type->get_string().value_unsafe();
    Event event;
    event.received_ms = received_ms;
    if (kind == "trade") {
      TradeEvent trade = parse_trade(fields, line);
      check_not_far_future(fields.get("timestamp_ms") ? "timestamp_ms" : "timestamp", trade.timestamp_ms, received_ms);
      event.body = std::move(trade);
    } else if (kind == "trigger") {
      TriggerEvent trigger = parse_trigger(fields);
      check_not_far_future("trigger_timestamp", trigger.trigger_timestamp_ms, received_ms);
      event.body = std::move(trigger);
    } else {
      return Rejection{RejectReason::Schema, "unknown type " + json_quoted(kind) + " (expected \"trade\" or \"trigger\")"};
    }
    return event;
  } catch (const FieldError& r) {
    return Rejection{r.reason, r.detail};
  } catch (const std::bad_alloc&) {
    return out_of_memory_refusal();
  } catch (const std::exception& e) {
    return Rejection{RejectReason::Parse, std::string("cannot parse: ") + e.what()};
  }
}

std::size_t LineParser::buffer_capacity() const { return impl_->parser.capacity(); }

void LineParser::release_buffers() { release_parser_buffers(impl_->parser); }

Rejection out_of_memory_refusal() {
  return Rejection{RejectReason::Busy, "out of memory parsing the line; not stored, retry later"};
}

const char* to_string(RejectReason reason) {
  switch (reason) {
    case RejectReason::Parse: return "parse";
    case RejectReason::Schema: return "schema";
    case RejectReason::Range: return "range";
    case RejectReason::TimestampUnits: return "timestamp_units";
    case RejectReason::TooLong: return "too_long";
    case RejectReason::Busy: return "busy";
  }
  return "parse";
}

void append_ack(std::string& out, std::uint64_t line) {
  out += "{\"ack\":";
  out += std::to_string(line);
  out += "}\n";
}

void append_error(std::string& out, RejectReason reason, std::uint64_t line, std::string_view detail) {
  out += "{\"error\":\"";
  out += to_string(reason);
  out += "\",\"line\":";
  out += std::to_string(line);
  out += ",\"detail\":";
  append_json_string(out, detail);
  out += "}\n";
}

}  // namespace pm
