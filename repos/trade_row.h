#pragma once
// TradeRow: one polymarket_trades row to be written, as views into strings the caller keeps alive
// for as long as the row is used (a PolymarketTrade, or the ingest writer's events), with the hash
// of its key (condition_id, trade_id) computed once. The bulk write path works on these, so a row
// is never copied into owned strings on its way into COPY. Plain value; any thread.
//
// trade_row_from is the one adapter from a trade record to a TradeRow: every writer of trades
// (TradeRepository for PolymarketTrade, the ingest writer for its TradeEvent) fills rows through it.
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
  std::size_t condition_hash = 0;  // condition_hash(condition_id)
  std::size_t key_hash = 0;        // trade_key_hash(condition_hash, trade_id)
};

std::size_t condition_hash(std::string_view condition_id);
std::size_t trade_key_hash(std::size_t of_condition, std::string_view trade_id);  // of_condition: condition_hash()
inline std::size_t trade_key_hash(std::string_view condition_id, std::string_view trade_id) {
  return trade_key_hash(condition_hash(condition_id), trade_id);
}

// A row's condition_id with the hash it carries, as the key of a hash map: maps keyed by a batch's
// conditions do not hash the text of every row again.
struct ConditionKey {
  std::string_view id;
  std::size_t hash;
  static ConditionKey of(const TradeRow& row) { return {row.condition_id, row.condition_hash}; }
  bool operator==(const ConditionKey& o) const { return hash == o.hash && id == o.id; }
};
struct ConditionKeyHash {
  std::size_t operator()(const ConditionKey& k) const noexcept { return k.hash; }
};

// A view of a text field for a TradeRow's optional text: empty when the optional is, always
// present for a plain string.
inline std::optional<std::string_view> optional_view(const std::optional<std::string>& s) {
  if (!s) return std::nullopt;
  return std::string_view(*s);
}
inline std::optional<std::string_view> optional_view(const std::string& s) { return std::string_view(s); }

// The row of `trade`, any record with TradeRow's member names (condition_id, trade_id, token_id,
// price, size, side, raw_json, outcome, outcome_index; text members std::string or
// std::optional<std::string>, numbers plain or optional). `timestamp` is the trade's time already in
// the table's TimestampUnit (records keep it under different names and units). The row views
// `trade`'s strings: `trade` must outlive it.
template <class Trade>
TradeRow trade_row_from(const Trade& trade, std::optional<std::int64_t> timestamp) {
  TradeRow r;
  r.condition_id = trade.condition_id;
  r.trade_id = trade.trade_id;
  r.token_id = optional_view(trade.token_id);
  r.price = trade.price;
  r.size = trade.size;
  r.side = optional_view(trade.side);
  r.timestamp = timestamp;
  r.raw_json = optional_view(trade.raw_json);
  r.outcome = optional_view(trade.outcome);
  r.outcome_index = trade.outcome_index;
  r.condition_hash = condition_hash(r.condition_id);
  r.key_hash = trade_key_hash(r.condition_hash, r.trade_id);
  return r;
}

// Views into `trade`, which must outlive the row (its timestamp is in the table's unit already).
inline TradeRow trade_row_of(const PolymarketTrade& trade) { return trade_row_from(trade, trade.timestamp); }

}  // namespace pm
