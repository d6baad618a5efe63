#pragma once
// Helpers shared by the repositories of issue 5 (candidates, orders, positions, approvals,
// markets, watchlists):
// - BaseRepository<Model, Key>: storage-api.md 2.0 (get_by_id, exists, delete, count) for one
//   table whose name, primary-key column and key type are compile-time constants of the deriving
//   repository (fix for D19: nothing a caller passes is pasted into SQL, and natural-key tables
//   use their real key). remove() uses affected_rows(), never the command tag (fix for D20).
// - Text timestamps: every TEXT *_at a repository writes goes through write_iso()/now_iso(), so
//   each one is the canonical `YYYY-MM-DDTHH:MM:SS.ffffffZ` of clock.h (fix for D8/D12). A caller
//   may pass any text parse_iso() accepts; unparseable text throws std::invalid_argument naming
//   the column, before any SQL runs.
// - Time order (D8): a list ordered by a TEXT *_at column orders by the instant the text names,
//   `pm_text_time(col)` (seed/06_text_time.sql: the shapes parse_iso() accepts, no zone = UTC,
//   whatever the session's TimeZone), then by the text, then by the list's own tie-breaker, all in
//   the list's direction; so rows of other writers (`2024-01-10 10:00`, `+02:00`, ...) sort among
//   canonical ones by time. Text naming no time (only another writer can store it) sorts after
//   every time in either direction: never taken for the newest nor the oldest, never dropped.
//   The repositories need migration 06 applied (`pm-ingestctl migrate`).
// - Closed sets (D25): EnumText tables map C++ enums to the exact text the original stores.
// Thread-safety: stateless; repositories are as thread-safe as their DbTarget.
#include <array>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <initializer_list>
#include <utility>

#include "repos/db_target.h"
#include "repos/models.h"
#include "repos/rows.h"

namespace pm {

template <class Model, class Key>
class BaseRepository {
 public:
  // The row whose primary key equals `key`, or nullopt.
  std::optional<Model> get_by_id(const Key& key) const {
    return target_.run([&](pqxx::transaction_base& tx) {
      return to_optional_model<Model>(tx.exec_params(
          std::string("SELECT * FROM ") + table_ + " WHERE " + key_column_ + " = $1::" + key_type_, key));
    });
  }
  bool exists(const Key& key) const {
    return target_.run([&](pqxx::transaction_base& tx) {
      return !tx.exec_params(std::string("SELECT 1 FROM ") + table_ + " WHERE " + key_column_ +
                                 " = $1::" + key_type_,
                             key)
                  .empty();
    });
  }
  // True when a row was deleted.
  bool remove(const Key& key) const {
    return target_.run([&](pqxx::transaction_base& tx) {
      return tx.exec_params(std::string("DELETE FROM ") + table_ + " WHERE " + key_column_ +
                                " = $1::" + key_type_,
                            key)
                 .affected_rows() > 0;
    });
  }
  std::int64_t count() const {
    return target_.run([&](pqxx::transaction_base& tx) {
      return tx.exec1(std::string("SELECT count(*) FROM ") + table_)[0].template as<std::int64_t>();
    });
  }

 protected:
  // All three are string literals of the deriving repository.
  BaseRepository(DbTarget target, const char* table, const char* key_column, const char* key_type)
      : target_(target), table_(table), key_column_(key_column), key_type_(key_type) {}

  DbTarget target_;

 private:
  const char* table_;
  const char* key_column_;
  const char* key_type_;
};

// One value of a closed set and the text stored for it.
template <class E>
struct EnumText {
  E value;
  std::string_view text;
};

template <class E, std::size_t N>
std::optional<E> parse_enum(std::string_view text, const std::array<EnumText<E>, N>& table) {
  for (const auto& entry : table)
    if (entry.text == text) return entry.value;
  return std::nullopt;
}

template <class E, std::size_t N>
std::string_view enum_text(E value, const std::array<EnumText<E>, N>& table) {
  for (const auto& entry : table)
    if (entry.value == value) return entry.text;
  return "";
}

namespace detail {

// Canonical text of `text`; empty means now. Throws std::invalid_argument naming `column`.
std::string write_iso_or_now(const std::string& text, const char* column);
// Canonical text of a nullable column (nullopt stays NULL).
std::optional<std::string> write_iso(const std::optional<std::string>& text, const char* column);
// Throws std::invalid_argument for a negative LIMIT.
void check_limit(int limit);
// A REAL column's value (a price, a size, money, a score) must be a finite number: PostgreSQL
// stores NaN and the infinities, and orders NaN above every number, so a NaN max_price approved
// every price and one NaN entry_cost made the total exposure NaN (every `exposure + cost > limit`
// false). Throws RefusedValueError naming `column` and the value; nullopt (NULL) passes.
void require_finite(double value, const char* column);
void require_finite(const std::optional<double>& value, const char* column);
// The same for each (value, column) pair, in order.
void require_finite(std::initializer_list<std::pair<std::optional<double>, const char*>> values);
// `{a,b}`: a text[] literal of closed-set names (never of caller text).
template <class E, std::size_t N, class Pred>
std::string text_array(const std::array<EnumText<E>, N>& table, Pred&& keep) {
  std::string out = "{";
  for (const auto& entry : table) {
    if (!keep(entry.value)) continue;
    if (out.size() > 1) out += ',';
    out += entry.text;
  }
  return out + "}";
}
// Parses a closed-set value held in a model, or throws std::invalid_argument naming the column.
template <class E, std::size_t N>
E require_enum(const std::string& text, const std::array<EnumText<E>, N>& table, const char* column) {
  auto value = parse_enum(text, table);
  if (!value) throw std::invalid_argument(std::string(column) + ": '" + text + "' is not a known value");
  return *value;
}

}  // namespace detail
}  // namespace pm
