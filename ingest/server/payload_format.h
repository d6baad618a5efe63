#pragma once
// PayloadFormat: what the lines of one connection are (docs/protocol.md, "Polymarket payloads").
// A connection declares it in a hello on its first line, {"hello":{"format":"<name>"}}; without
// one it speaks protocol v1 (pm-ingestd). The format is never guessed from the payloads. A hello
// is a JSON object with a `hello` member and no `type` member (a v1 event always has a type).
// Stateless helpers; any thread.
#include <optional>
#include <string_view>
#include <variant>

#include <simdjson.h>

#include "ingest/server/protocol.h"

namespace pm {

enum class PayloadFormat { PmIngestd, ClobWsMarket, DataApiTrades, ClobRestTrades };
inline constexpr int kPayloadFormatCount = 4;

const char* to_string(PayloadFormat format);
std::optional<PayloadFormat> payload_format_named(std::string_view name);
// "pm-ingestd, clob-ws-market, data-api-trades, clob-rest-trades".
const char* known_formats();

bool is_hello(simdjson::dom::object obj);
// The format a hello declares, or a `schema` Rejection naming the known formats. REQUIRES: is_hello(obj).
std::variant<PayloadFormat, Rejection> read_hello(simdjson::dom::object obj);
// The detail of a hello anywhere but line 1 (refused with `schema`).
std::string hello_not_first_detail();

}  // namespace pm
