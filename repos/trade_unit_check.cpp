#include "repos/trade_unit_check.h"

#include <cstdint>

#include "repos/rows.h"

namespace pm {

namespace {

std::string unit_words(TimestampUnit unit) {
  return unit == TimestampUnit::Milliseconds ? "epoch milliseconds (ms)" : "epoch seconds (s)";
}

// Whether a stored `newest` (none, or not positive: nothing to tell) agrees with `unit`.
bool agrees(std::optional<std::int64_t> newest, TimestampUnit unit) {
  return !newest || *newest <= 0 || unit_by_size(*newest) == unit;
}

// The message for a stored `newest` of the other size than `unit`, or nullopt when it agrees.
std::optional<std::string> mismatch(std::optional<std::int64_t> newest, TimestampUnit unit, const std::string& where,
                                    const std::string& setting) {
  if (agrees(newest, unit)) return std::nullopt;
  const TimestampUnit stored = unit_by_size(*newest);
  return where + " holds " + unit_words(stored) + " (its newest is " + std::to_string(*newest) + "), but " + setting +
         " is " + unit_words(unit) + ": set it to " + std::string(to_string(stored)) +
         ", the unit the rows were written in (pm-ingestd and this library refuse values of the other unit's size)";
}

std::optional<std::int64_t> newest_watermark(pqxx::transaction_base& tx) {
  return optional_field<std::int64_t>(tx.exec1("SELECT max(last_timestamp) FROM trade_watermarks")[0]);
}

}  // namespace

std::optional<std::string> trade_watermarks_unit_mismatch(pqxx::transaction_base& tx, TimestampUnit unit,
                                                          const std::string& setting) {
  return mismatch(newest_watermark(tx), unit, "trade_watermarks", setting);
}

void require_condition_trades_in_unit(pqxx::transaction_base& tx, const std::string& condition_id, TimestampUnit unit) {
  const auto newest = optional_field<std::int64_t>(
      tx.exec_params1(R"(SELECT max("timestamp") FROM polymarket_trades WHERE condition_id = $1)", condition_id)[0]);
  auto problem = mismatch(newest, unit, "polymarket_trades of condition '" + condition_id + "'", std::string(kTradeUnitSource));
  if (!problem) return;
  // One condition's rows may be another writer's (the original bot's, with no size check): when
  // the table's own signal agrees with the setting, they are read as they are, as before.
  const auto table_wide = newest_watermark(tx);
  if (table_wide && agrees(table_wide, unit)) return;
  throw TimestampUnitError(*problem + (table_wide ? "; trade_watermarks agrees (its newest is " + std::to_string(*table_wide) + ")"
                                                  : std::string()));
}

}  // namespace pm
