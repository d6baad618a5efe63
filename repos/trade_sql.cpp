#include "repos/trade_sql.h"

#include <optional>
#include <string>
#include <tuple>
#include <type_traits>

#include "repos/trade_columns.h"

namespace pm {

namespace {

constexpr const char* kTable = "polymarket_trades";
constexpr const char* kKey = "condition_id, trade_id";

std::string quoted(std::string_view name) { return "\"" + std::string(name) + "\""; }

// Each column as `prefix"name"suffix`, separated by ", ".
template <class Fn>
std::string column_list(Fn&& item) {
  std::string out;
  for_each_trade_column([&](const auto& column, std::size_t i) {
    if (i > 0) out += ", ";
    out += item(column, i);
  });
  return out;
}

std::string quoted_columns() {
  return column_list([](const auto& column, std::size_t) { return quoted(column.name); });
}

// A parameter value of a TradeRow field: libpqxx 6.4 binds std::string, not std::string_view.
std::string param(std::string_view v) { return std::string(v); }
std::optional<std::string> param(const std::optional<std::string_view>& v) {
  if (!v) return std::nullopt;
  return std::string(*v);
}
template <class T>
const std::optional<T>& param(const std::optional<T>& v) { return v; }

const std::string& insert_sql() {
  static const std::string sql = std::string("INSERT INTO ") + kTable + "\n  (" + quoted_columns() + ")\nVALUES (" +
                                 column_list([](const auto&, std::size_t i) { return "$" + std::to_string(i + 1); }) +
                                 ")\nON CONFLICT (" + kKey + ") DO NOTHING\nRETURNING *";
  return sql;
}

}  // namespace

const std::vector<std::string>& trade_column_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for_each_trade_column([&](const auto& column, std::size_t) { out.emplace_back(column.name); });
    return out;
  }();
  return names;
}

pqxx::result insert_trade(pqxx::transaction_base& tx, const TradeRow& row) {
  return std::apply(
      [&](const auto&... column) {
        return tx.exec_params(insert_sql(), param(row.*(std::remove_cvref_t<decltype(column)>::field))...);
      },
      kTradeColumns);
}

const std::string& trade_stage_ddl() {
  static const std::string sql =
      std::string("CREATE TEMP TABLE IF NOT EXISTS ") + kTradeStageTable + " (\n  " +
      column_list([](const auto& column, std::size_t) {
        return quoted(column.name) + " " + std::string(pg_type_name(column.type));
      }) +
      "\n) ON COMMIT DELETE ROWS";
  return sql;
}

const std::string& trade_move_stage_sql() {
  static const std::string sql =
      std::string("INSERT INTO ") + kTable + "\n  (" + quoted_columns() + ")\nSELECT " +
      column_list([](const auto& column, std::size_t) { return "s." + quoted(column.name); }) + "\nFROM " +
      kTradeStageTable + " s\nON CONFLICT (" + kKey + ") DO NOTHING\nRETURNING " + kKey;
  return sql;
}

}  // namespace pm
