#pragma once
// The events producers send (protocol v1), validated and normalised: trade times are epoch
// milliseconds here whatever field the producer used; side is upper-case; raw_json is the
// producer's raw_json field or the received line. Plain values, copyable, no shared state.
#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "repos/timestamp_unit.h"

namespace pm {

struct TradeEvent {
  std::string condition_id;
  std::string trade_id;
  std::optional<std::string> token_id;
  double price = 0;
  double size = 0;
  std::string side;  // "BUY" or "SELL"
  std::int64_t timestamp_ms = 0;
  std::optional<std::string> outcome;
  std::optional<std::int32_t> outcome_index;
  std::string raw_json;
};

struct TriggerEvent {
  std::string token_id;
  std::string condition_id;
  double threshold = 0;
  std::int64_t trigger_timestamp_ms = 0;
  std::optional<double> price;
  std::optional<double> size;
  std::optional<double> model_score;
  std::optional<std::string> model_version;
  std::optional<std::string> outcome;
  std::optional<std::int32_t> outcome_index;
};

enum class EventType : std::uint8_t { Trade = 1, Trigger = 2 };

struct Event {
  std::int64_t received_ms = 0;  // daemon clock when the line arrived
  std::variant<TradeEvent, TriggerEvent> body;

  EventType type() const { return std::holds_alternative<TradeEvent>(body) ? EventType::Trade : EventType::Trigger; }
  // The event's own time in epoch ms (trade timestamp or trigger_timestamp).
  std::int64_t event_time_ms() const;
};

const char* to_string(EventType type);

// Limits every event obeys (the protocol refuses what breaks them; docs/protocol.md).
// Epoch values at or above kMillisecondsThreshold (repos/timestamp_unit.h) look like milliseconds.
inline constexpr std::size_t kMaxKeyBytes = 256;
// Event times later than kMaxFutureMs (repos/timestamp_unit.h) after the line's arrival are refused
// with `range`.

}  // namespace pm
