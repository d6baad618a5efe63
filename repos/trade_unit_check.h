#pragma once
// Whether the rows already stored agree with the configured trade timestamp unit (D10). Each
// process declares the unit by its own setting (the daemon's --trade-timestamp-unit, the library's
// DatabaseConfig::trade_timestamp_unit); a process set to the other unit than the rows were written
// in reads nothing as recent (G1: get_recent returns [] for ever, or every old trade), rebuilds
// candles from no trades after deleting the stored ones, and writes rows of the other size beside
// the old ones. Every writer refuses a value of the other unit's size (require_timestamp_unit), so
// a newest stored value of the other size says the setting is wrong, not the rows.
// Callers: the ingest writer at every (re)connect and pm-ingestctl replay (trade_watermarks: they
// refuse to apply events), and TradeRepository::get_recent and CandleRepository::aggregate_from_trades
// (the condition they read, through the (condition_id, timestamp) index; only when its newest trade
// disagrees, trade_watermarks too: a condition holding another writer's rows in a table whose
// watermarks agree is read as before). Stateless; runs on the caller's transaction; an empty table
// or condition agrees with either unit.
#include <optional>
#include <string>

#include <pqxx/transaction_base>

#include "repos/timestamp_unit.h"

namespace pm {

// What is wrong when the newest trade watermark has the other unit's size (say how to fix it);
// nullopt when it agrees or there is none. `setting` names where `unit` came from.
std::optional<std::string> trade_watermarks_unit_mismatch(pqxx::transaction_base& tx, TimestampUnit unit,
                                                          const std::string& setting);

// Throws TimestampUnitError (what is wrong, how to fix it) when the newest trade of
// `condition_id` has the other unit's size than `unit`, and so does the newest trade watermark
// (or there is none).
void require_condition_trades_in_unit(pqxx::transaction_base& tx, const std::string& condition_id, TimestampUnit unit);

}  // namespace pm
