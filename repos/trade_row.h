#pragma once
// TradeRow: one polymarket_trades row to be written, as views into strings the caller keeps alive
// for as long as the row is used (a PolymarketTrade, or the ingest writer's events), with the hash
// of its key (condition_id, trade_id) computed once. The bulk write path works on these, so a row
// is never copied into owned strings on its way into COPY. Plain value; any thread.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "repos/models.h"

namespace pm {

struct TradeRow {
  std::string_view condition_id;
  std::string_view trade_id;
  std::optional<std::string_view> token_id;
  std::optional<double> price;
  std::optional<double> size;
  std::optional<std::string_view> side;
  std::optional<std::int64_t> timestamp;  // in the table's TimestampUnit
  std::optional<std::string_view> raw_json;
  std::optional<std::string_view> outcome;
  std::optional<std::int32_t> outcome_index;
  std::size_t key_hash = 0;  // trade_key_hash(condition_id, trade_id)
};

std::size_t trade_key_hash(std::string_view condition_id, std::string_view trade_id);

// A view of an optional string (empty when it is), for filling a TradeRow's text fields.
inline std::optional<std::string_view> optional_view(const std::optional<std::string>& s) {
  if (!s) return std::nullopt;
  return std::string_view(*s);
}

// Views into `trade`, which must outlive the row.
TradeRow trade_row_of(const PolymarketTrade& trade);

}  // namespace pm
