#include "repos/trade_row.h"

#include <functional>

namespace pm {

std::size_t condition_hash(std::string_view condition_id) { return std::hash<std::string_view>{}(condition_id); }

std::size_t trade_key_hash(std::size_t of_condition, std::string_view trade_id) {
  const std::size_t a = of_condition;
  return a ^ (std::hash<std::string_view>{}(trade_id) + 0x9e3779b97f4a7c15ull + (a << 6) + (a >> 2));
}

}  // namespace pm
