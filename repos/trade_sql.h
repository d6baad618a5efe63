#pragma once
// The statements that write polymarket_trades, derived from the column table (trade_columns.h),
// so their column lists, types and parameter order cannot drift apart. Each text is built once, on
// first use, and lives for the program; any thread may call these (their tx is the caller's).
#include <string>
#include <vector>

#include <pqxx/result>
#include <pqxx/transaction_base>

#include "repos/trade_row.h"

namespace pm {

// The columns, unquoted and in table order: the column list of a COPY into polymarket_trades or
// into the staging table.
const std::vector<std::string>& trade_column_names();

// INSERT of `row` into polymarket_trades in tx, skipping it when its key (condition_id, trade_id)
// is stored already (ON CONFLICT DO NOTHING). Returns the inserted row (RETURNING *), or no rows
// when the key was there. Throws what tx.exec_params throws.
pqxx::result insert_trade(pqxx::transaction_base& tx, const TradeRow& row);

// The staging table of the bulk fallback path: a temporary table with polymarket_trades' columns,
// emptied at every commit. kTradeStageTable is its name, trade_stage_ddl() creates it if missing
// (per session), and trade_move_stage_sql() inserts its rows into polymarket_trades, skipping keys
// stored already, returning (condition_id, trade_id) of each row inserted.
inline constexpr const char* kTradeStageTable = "pm_stage_trades";
const std::string& trade_stage_ddl();
const std::string& trade_move_stage_sql();

}  // namespace pm
