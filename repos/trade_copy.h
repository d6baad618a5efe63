#pragma once
// COPY of trade rows into polymarket_trades, or into a table with its columns (the staging table),
// each row written field by field from the column table (trade_columns.h). The format follows the
// transaction's declared type, chosen by overload when the caller is compiled:
// - a real transaction (pqxx::dbtransaction: pqxx::work, a subtransaction): binary COPY;
// - autocommit (pqxx::nontransaction): text COPY, sent in blocks of rows.
// Either copies rows[which[0]], rows[which[1]], ... in that order, as one statement (all or
// nothing), and throws what BinaryCopyIn / CopyIn throw (the server's SQLSTATE kept). No
// allocation per row beyond the send buffer. Single-threaded, like the transaction. `owed`: what the
// transaction owes (OwedStatements), sent in front of the binary COPY in the same query.
#include <cstddef>
#include <span>
#include <string>

#include <pqxx/dbtransaction>
#include <pqxx/nontransaction>

#include "repos/owed_statements.h"
#include "repos/trade_row.h"

namespace pm {

void copy_trade_rows(pqxx::dbtransaction& tx, const std::string& table, std::span<const TradeRow> rows,
                     std::span<const std::size_t> which, OwedStatements* owed = nullptr);
void copy_trade_rows(pqxx::nontransaction& tx, const std::string& table, std::span<const TradeRow> rows,
                     std::span<const std::size_t> which);

}  // namespace pm
