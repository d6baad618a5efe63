#pragma once
// JSON rendering of events and strings: the protocol's reply details, dead letters and log
// inspection print through these. Pure functions; any thread.
#include <string>
#include <string_view>

#include "ingest/events/event.h"

namespace pm {

// JSON string literal (with quotes) of arbitrary bytes; invalid UTF-8 bytes become U+FFFD.
void append_json_string(std::string& out, std::string_view text);

// Shortest text that reads back as the same double; scientific from 1e15 on ("?" if unprintable).
std::string json_number_text(double v);

// The event as a protocol line (normalised: timestamp_ms, upper-case side; a trade carries its
// raw_json, which is the received line when the producer sent none). Used for dead letters and
// log inspection. Always valid JSON in valid UTF-8, and for any event LineParser returned, a line
// that LineParser parses back to the same event (so a trade sent in seconds before 1973, below
// what timestamp_ms accepts, keeps `timestamp`). A non-finite number, which only a decoded log
// record can hold, is rendered as null.
std::string event_to_json(const Event& event);

}  // namespace pm
