#pragma once
// Binary encoding of an Event as a write-ahead log record payload (docs/wal-format.md):
// little-endian fixed-width numbers, u32-length-prefixed strings, a presence byte before each
// optional. decode_event() validates every length against the payload and never reads past it:
// a payload that passed its CRC but does not decode is reported, not trusted. Stateless.
#include <optional>
#include <string>
#include <string_view>

#include "ingest/events/event.h"

namespace pm {

// Appends the encoding of `event` to `out`.
void encode_event(const Event& event, std::string& out);

// nullopt (with `error` set) when the payload is not a valid encoding.
std::optional<Event> decode_event(std::string_view payload, std::string* error = nullptr);

}  // namespace pm
