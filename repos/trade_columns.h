#pragma once
// The columns of polymarket_trades, written once: for each, its name, its PostgreSQL type and the
// TradeRow member it is written from, in table order. Everything that writes trades is derived
// from this table: the statements (trade_sql.h: INSERT, staging table, move from stage, COPY
// column list) and the COPY rows (trade_copy.h: text and binary). A column added here is added to
// all of them; the schema itself is seed/01_schema.sql.
// The table is a constexpr tuple, so a row is written by a fold over it: straight-line code per
// row, no loop, no indirect call per field. Constants; any thread.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <tuple>
#include <type_traits>

#include "repos/trade_row.h"

namespace pm {

// The PostgreSQL types polymarket_trades uses, each with one TradeRow member type (see
// TradeColumn): text <- std::string_view or std::optional<std::string_view>, real <-
// std::optional<double>, bigint <- std::optional<std::int64_t>, integer <-
// std::optional<std::int32_t>.
enum class PgType { Text, Real, Bigint, Integer };

constexpr std::string_view pg_type_name(PgType type) {
  switch (type) {
    case PgType::Text: return "text";
    case PgType::Real: return "real";
    case PgType::Bigint: return "bigint";
    case PgType::Integer: return "integer";
  }
  return "";
}

// One column: `Field` is a pointer to the TradeRow member written to it.
template <PgType Type, auto Field>
struct TradeColumn {
  static constexpr PgType type = Type;
  static constexpr auto field = Field;
  using Value = std::remove_cvref_t<decltype(std::declval<const TradeRow&>().*Field)>;
  static_assert(Type != PgType::Text || std::is_same_v<Value, std::string_view> ||
                    std::is_same_v<Value, std::optional<std::string_view>>,
                "a text column is written from a string_view or an optional one");
  static_assert(Type != PgType::Real || std::is_same_v<Value, std::optional<double>>);
  static_assert(Type != PgType::Bigint || std::is_same_v<Value, std::optional<std::int64_t>>);
  static_assert(Type != PgType::Integer || std::is_same_v<Value, std::optional<std::int32_t>>);

  std::string_view name;  // unquoted
};

inline constexpr std::tuple kTradeColumns{
    TradeColumn<PgType::Text, &TradeRow::condition_id>{"condition_id"},
    TradeColumn<PgType::Text, &TradeRow::trade_id>{"trade_id"},
    TradeColumn<PgType::Text, &TradeRow::token_id>{"token_id"},
    TradeColumn<PgType::Real, &TradeRow::price>{"price"},
    TradeColumn<PgType::Real, &TradeRow::size>{"size"},
    TradeColumn<PgType::Text, &TradeRow::side>{"side"},
    TradeColumn<PgType::Bigint, &TradeRow::timestamp>{"timestamp"},
    TradeColumn<PgType::Text, &TradeRow::raw_json>{"raw_json"},
    TradeColumn<PgType::Text, &TradeRow::outcome>{"outcome"},
    TradeColumn<PgType::Integer, &TradeRow::outcome_index>{"outcome_index"},
};

inline constexpr std::size_t kTradeColumnCount = std::tuple_size_v<decltype(kTradeColumns)>;

// Calls fn(column, index) for each column of kTradeColumns, in table order; unrolled at compile time.
template <class Fn>
constexpr void for_each_trade_column(Fn&& fn) {
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (fn(std::get<I>(kTradeColumns), I), ...);
  }(std::make_index_sequence<kTradeColumnCount>{});
}

}  // namespace pm
