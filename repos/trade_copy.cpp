#include "repos/trade_copy.h"

#include <optional>
#include <type_traits>

#include "repos/binary_copy_in.h"
#include "repos/copy_in.h"
#include "repos/trade_columns.h"
#include "repos/trade_sql.h"

namespace pm {

namespace {

template <class V>
constexpr bool kIsOptional = false;
template <class V>
constexpr bool kIsOptional<std::optional<V>> = true;

// One field of a column of type Type, COPY text format.
template <PgType Type, class V>
void append_text_field(std::string& out, const V& value) {
  if constexpr (kIsOptional<V>) {
    if (value) append_text_field<Type>(out, *value); else append_copy_null(out);
  } else if constexpr (Type == PgType::Text) {
    append_copy_text(out, value);
  } else if constexpr (Type == PgType::Real) {
    append_copy_real(out, value);
  } else {
    static_assert(Type == PgType::Bigint || Type == PgType::Integer);
    append_copy_int(out, value);
  }
}

// One field of a column of type Type, COPY binary format.
template <PgType Type, class V>
void write_binary_field(BinaryCopyIn& copy, const V& value) {
  if constexpr (kIsOptional<V>) {
    if (value) write_binary_field<Type>(copy, *value); else copy.null();
  } else if constexpr (Type == PgType::Text) {
    copy.text(value);
  } else if constexpr (Type == PgType::Real) {
    copy.float4(value);
  } else if constexpr (Type == PgType::Bigint) {
    copy.int8(value);
  } else {
    static_assert(Type == PgType::Integer);
    copy.int4(value);
  }
}

// One COPY text row of `row` (tab-separated, no newline), appended to `out`.
void append_text_row(std::string& out, const TradeRow& row) {
  for_each_trade_column([&](const auto& column, std::size_t i) {
    using Column = std::remove_cvref_t<decltype(column)>;
    if (i > 0) out += '\t';
    append_text_field<Column::type>(out, row.*Column::field);
  });
}

void write_binary_row(BinaryCopyIn& copy, const TradeRow& row) {
  copy.begin_row(static_cast<std::int16_t>(kTradeColumnCount));
  for_each_trade_column([&](const auto& column, std::size_t) {
    using Column = std::remove_cvref_t<decltype(column)>;
    write_binary_field<Column::type>(copy, row.*Column::field);
  });
}

}  // namespace

void copy_trade_rows(pqxx::dbtransaction& tx, const std::string& table, std::span<const TradeRow> rows,
                     std::span<const std::size_t> which, OwedStatements* owed) {
  BinaryCopyIn copy(tx, table, trade_column_names(), owed);
  for (std::size_t i : which) write_binary_row(copy, rows[i]);
  copy.complete();
}

void copy_trade_rows(pqxx::nontransaction& tx, const std::string& table, std::span<const TradeRow> rows,
                     std::span<const std::size_t> which) {
  constexpr std::size_t kBlockBytes = 256 * 1024;
  CopyIn copy(tx, table, trade_column_names());
  std::string block;
  block.reserve(kBlockBytes + 4096);
  for (std::size_t i : which) {
    if (!block.empty()) block += '\n';
    append_text_row(block, rows[i]);
    if (block.size() >= kBlockBytes) {
      copy.write_rows(block);
      block.clear();
    }
  }
  if (!block.empty()) copy.write_rows(block);
  copy.complete();
}

}  // namespace pm
