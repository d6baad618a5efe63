#include "repos/trade_unit_check.h"

#include <cstdint>

namespace pm {

namespace {

std::string unit_words(TimestampUnit unit) {
  return unit == TimestampUnit::Milliseconds ? "epoch milliseconds (ms)" : "epoch seconds (s)";
}

// The message for a stored `newest` of the other size than `unit`, or nullopt when it agrees.
std::optional<std::string> mismatch(std::optional<std::int64_t> newest, TimestampUnit unit, const std::string& where,
                                    const std::string& setting) {
  if (!newest || *newest <= 0 || unit_by_size(*newest) == unit) return std::nullopt;
  const TimestampUnit stored = unit_by_size(*newest);
  return where + " holds " + unit_words(stored) + " (its newest is " + std::to_string(*newest) + "), but " + setting +
         " is " + unit_words(unit) + ": set it to " + std::string(to_string(stored)) +
         ", the unit the rows were written in (pm-ingestd and this library refuse values of the other unit's size)";
}

std::optional<std::int64_t> newest_value(pqxx::transaction_base& tx, const std::string& sql, const std::string& key) {
  const pqxx::row row = key.empty() ? tx.exec1(sql) : tx.exec_params1(sql, key);
  if (row[0].is_null()) return std::nullopt;
  return row[0].as<std::int64_t>();
}

}  // namespace

std::optional<std::string> trade_watermarks_unit_mismatch(pqxx::transaction_base& tx, TimestampUnit unit,
                                                          const std::string& setting) {
  return mismatch(newest_value(tx, "SELECT max(last_timestamp) FROM trade_watermarks", ""), unit, "trade_watermarks",
                  setting);
}

void require_condition_trades_in_unit(pqxx::transaction_base& tx, const std::string& condition_id, TimestampUnit unit) {
  const auto newest =
      newest_value(tx, R"(SELECT max("timestamp") FROM polymarket_trades WHERE condition_id = $1)", condition_id);
  auto problem = mismatch(newest, unit, "polymarket_trades of condition '" + condition_id + "'", std::string(kTradeUnitSource));
  if (!problem) return;
  // One condition's rows may be another writer's (the original bot's, with no size check): when
  // the table's own signal agrees with the setting, they are read as they are, as before.
  const auto table_wide = newest_value(tx, "SELECT max(last_timestamp) FROM trade_watermarks", "");
  if (table_wide && !mismatch(table_wide, unit, "", "")) return;
  throw TimestampUnitError(*problem + (table_wide ? "; trade_watermarks agrees (its newest is " + std::to_string(*table_wide) + ")"
                                                  : std::string()));
}

}  // namespace pm
