#include "ingest/trade_key_set.h"

namespace pm {

TradeKeySet::TradeKeySet(std::span<const QueuedEvent> events) {
  keys_.reserve(events.size());
  for (const auto& q : events)
    if (const auto* t = std::get_if<TradeEvent>(&q.event.body)) keys_.emplace(t->condition_id, t->trade_id);
}

}  // namespace pm
