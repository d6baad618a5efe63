#include "ingest/events/event.h"

namespace pm {

std::int64_t Event::event_time_ms() const {
  if (const auto* t = std::get_if<TradeEvent>(&body)) return t->timestamp_ms;
  return std::get<TriggerEvent>(body).trigger_timestamp_ms;
}

const char* to_string(EventType type) { return type == EventType::Trade ? "trade" : "trigger"; }

}  // namespace pm
