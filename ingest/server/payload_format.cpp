#include "ingest/server/payload_format.h"

#include <array>
#include <string>

#include "ingest/server/field_rules.h"

namespace pm {

namespace {

constexpr std::array<PayloadFormat, kPayloadFormatCount> kFormats = {
    PayloadFormat::PmIngestd, PayloadFormat::ClobWsMarket, PayloadFormat::DataApiTrades, PayloadFormat::ClobRestTrades};

}  // namespace

const char* to_string(PayloadFormat format) {
  switch (format) {
    case PayloadFormat::PmIngestd: return "pm-ingestd";
    case PayloadFormat::ClobWsMarket: return "clob-ws-market";
    case PayloadFormat::DataApiTrades: return "data-api-trades";
    case PayloadFormat::ClobRestTrades: return "clob-rest-trades";
  }
  return "pm-ingestd";
}

std::optional<PayloadFormat> payload_format_named(std::string_view name) {
  for (PayloadFormat f : kFormats)
    if (name == to_string(f)) return f;
  return std::nullopt;
}

const char* known_formats() { return "pm-ingestd, clob-ws-market, data-api-trades, clob-rest-trades"; }

bool is_hello(simdjson::dom::object obj) {
  return obj.at_key("hello").error() == simdjson::SUCCESS && obj.at_key("type").error() != simdjson::SUCCESS;
}

std::variant<PayloadFormat, Rejection> read_hello(simdjson::dom::object obj) {
  simdjson::dom::object hello;
  std::string_view name;
  if (obj["hello"].get_object().get(hello) != simdjson::SUCCESS || hello["format"].get_string().get(name) != simdjson::SUCCESS)
    return Rejection{RejectReason::Schema,
                     std::string("a hello is {\"hello\":{\"format\":\"<name>\"}}; known formats: ") + known_formats() +
                         " (no later line of this connection is read)"};
  // A key named twice ("format", or "hello" itself): this parser reads the first, a producer's
  // last-key-wins JSON library the other, so the connection's format would be a guess.
  try {
    Fields{obj};
    Fields{hello};
  } catch (const FieldError& e) {
    return Rejection{e.reason, "hello: " + e.detail + " (no later line of this connection is read)"};
  }
  if (auto format = payload_format_named(name)) return *format;
  return Rejection{RejectReason::Schema, "unknown format " + json_quoted(name) + "; known formats: " + known_formats() +
                                             " (no later line of this connection is read)"};
}

std::string hello_not_first_detail() {
  return std::string("a hello is only read on line 1 of a connection (the format cannot change); known formats: ") +
         known_formats();
}

}  // namespace pm
