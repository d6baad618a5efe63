#pragma once
// trade_event(): a valid trade arriving now, for tests that send events through the daemon's parts.
#include <string>
#include <utility>

#include "ingest/events/event.h"
#include "repos/util/clock.h"

namespace pm::test {

// A BUY of 3 at 0.5, its timestamp and arrival now (epoch ms), raw JSON "{}".
inline Event trade_event(const std::string& condition, const std::string& trade_id) {
  TradeEvent t;
  t.condition_id = condition;
  t.trade_id = trade_id;
  t.price = 0.5;
  t.size = 3;
  t.side = "BUY";
  t.timestamp_ms = now_epoch_ms();
  t.raw_json = "{}";
  Event e;
  e.received_ms = t.timestamp_ms;
  e.body = std::move(t);
  return e;
}

}  // namespace pm::test
