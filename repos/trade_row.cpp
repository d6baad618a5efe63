#include "repos/trade_row.h"

#include <functional>

namespace pm {

std::size_t trade_key_hash(std::string_view condition_id, std::string_view trade_id) {
  const std::size_t a = std::hash<std::string_view>{}(condition_id);
  return a ^ (std::hash<std::string_view>{}(trade_id) + 0x9e3779b97f4a7c15ull + (a << 6) + (a >> 2));
}


TradeRow trade_row_of(const PolymarketTrade& t) {
  TradeRow r;
  r.condition_id = t.condition_id;
  r.trade_id = t.trade_id;
  r.token_id = optional_view(t.token_id);
  r.price = t.price;
  r.size = t.size;
  r.side = optional_view(t.side);
  r.timestamp = t.timestamp;
  r.raw_json = optional_view(t.raw_json);
  r.outcome = optional_view(t.outcome);
  r.outcome_index = t.outcome_index;
  r.key_hash = trade_key_hash(r.condition_id, r.trade_id);
  return r;
}

}  // namespace pm
