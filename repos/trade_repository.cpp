#include "repos/trade_repository.h"

#include <algorithm>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>

#include "repos/util/clock.h"
#include "repos/owed_statements.h"
#include "repos/pg_array.h"
#include "repos/pg_errors.h"
#include "repos/rows.h"
#include "repos/trade_copy.h"
#include "repos/trade_key_set.h"
#include "repos/trade_sql.h"
#include "repos/trade_unit_check.h"
#include "repos/watermark_upsert.h"

namespace pm {

namespace {

std::string trade_key(std::string_view condition_id, std::string_view trade_id) {
  std::string key(condition_id);
  key += '\0';
  key += trade_id;
  return key;
}

// Index of the first row of each (condition_id, trade_id), in input order.
std::vector<std::size_t> first_of_each_key(std::span<const TradeRow> rows) {
  TradeKeySet seen;
  seen.reserve(rows.size());
  std::vector<std::size_t> out;
  out.reserve(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i)
    if (seen.insert(rows[i])) out.push_back(i);
  return out;
}

// Which of rows[which[k]] polymarket_trades holds already (true at k).
std::vector<bool> stored(pqxx::transaction_base& tx, std::span<const TradeRow> rows, std::span<const std::size_t> which) {
  PgArray conditions, trade_ids;
  for (std::size_t i : which) {
    conditions.add_text(rows[i].condition_id);
    trade_ids.add_text(rows[i].trade_id);
  }
  const auto result = tx.exec_params(
      R"(SELECT t.condition_id, t.trade_id FROM polymarket_trades t
         JOIN unnest($1::text[], $2::text[]) AS k(condition_id, trade_id) USING (condition_id, trade_id))",
      conditions.str(), trade_ids.str());
  TradeKeySet keys;
  keys.reserve(result.size());
  for (const auto& r : result) keys.insert(std::string_view(r[0].c_str(), r[0].size()), std::string_view(r[1].c_str(), r[1].size()));
  std::vector<bool> out(which.size(), false);
  if (keys.empty()) return out;
  for (std::size_t k = 0; k < which.size(); ++k) out[k] = keys.contains(rows[which[k]]);
  return out;
}

// rows[which] in primary-key order (condition_id, trade_id). Both indexes of polymarket_trades
// lead with condition_id, so rows sent in this order descend to neighbouring index pages that are
// still in cache instead of random ones: psql COPY of the benchmark's rows in 20,000-row chunks
// went from 86,000 to 113,000 rows/s here once each chunk was sorted. Which rows are stored and
// which of equal keys wins is decided before; the order only changes the speed.
// A batch has far fewer conditions than rows: they are ranked once, and rows are then sorted by
// (rank, first 8 bytes of trade_id) as integers, comparing whole trade_ids only on a tie.
std::vector<std::size_t> in_key_order(std::span<const TradeRow> rows, std::span<const std::size_t> which) {
  std::unordered_map<ConditionKey, std::uint64_t, ConditionKeyHash> rank;
  rank.reserve(which.size());
  std::vector<const std::uint64_t*> rank_of;  // per entry of `which`, its condition's rank, once ranked
  rank_of.reserve(which.size());
  for (std::size_t i : which) rank_of.push_back(&rank.try_emplace(ConditionKey::of(rows[i]), 0).first->second);
  std::vector<std::pair<std::string_view, std::uint64_t*>> conditions;
  conditions.reserve(rank.size());
  for (auto& [condition, r] : rank) conditions.emplace_back(condition.id, &r);
  std::sort(conditions.begin(), conditions.end());
  for (std::size_t k = 0; k < conditions.size(); ++k) *conditions[k].second = k;

  struct Entry {
    std::uint64_t condition_rank;
    std::uint64_t trade_prefix;  // big-endian, zero-padded: orders like the bytes it holds
    std::size_t index;
  };
  auto prefix = [](std::string_view v) {
    std::uint64_t p = 0;
    for (std::size_t b = 0; b < 8; ++b)
      p = (p << 8) | (b < v.size() ? static_cast<unsigned char>(v[b]) : 0u);
    return p;
  };
  std::vector<Entry> entries;
  entries.reserve(which.size());
  for (std::size_t k = 0; k < which.size(); ++k) entries.push_back(Entry{*rank_of[k], prefix(rows[which[k]].trade_id), which[k]});
  std::sort(entries.begin(), entries.end(), [&](const Entry& a, const Entry& b) {
    if (a.condition_rank != b.condition_rank) return a.condition_rank < b.condition_rank;
    if (a.trade_prefix != b.trade_prefix) return a.trade_prefix < b.trade_prefix;
    return rows[a.index].trade_id < rows[b.index].trade_id;
  });
  std::vector<std::size_t> ordered;
  ordered.reserve(entries.size());
  for (const Entry& e : entries) ordered.push_back(e.index);
  return ordered;
}

// COPY of rows[which] in key order into `table` (polymarket_trades or the staging table): binary in
// a transaction, text in autocommit (copy_trade_rows' overloads, by the type of tx).
void copy_rows(pqxx::dbtransaction& tx, const std::string& table, std::span<const TradeRow> rows,
               std::span<const std::size_t> which, OwedStatements* owed = nullptr) {
  copy_trade_rows(tx, table, rows, in_key_order(rows, which), owed);
}
void copy_rows(pqxx::nontransaction& tx, const std::string& table, std::span<const TradeRow> rows,
               std::span<const std::size_t> which) {
  copy_trade_rows(tx, table, rows, in_key_order(rows, which));
}

// The rows of `which` whose keys polymarket_trades does not hold yet, in the order of `which`.
std::vector<std::size_t> not_stored(pqxx::transaction_base& tx, std::span<const TradeRow> rows,
                                    std::span<const std::size_t> which) {
  const std::vector<bool> in_table = stored(tx, rows, which);
  std::vector<std::size_t> fresh;
  fresh.reserve(which.size());
  for (std::size_t k = 0; k < which.size(); ++k)
    if (!in_table[k]) fresh.push_back(which[k]);
  return fresh;
}

// The autocommit route (a caller's nontransaction). Every statement commits on its own, so a
// staging table would be empty again by the next statement: look up, then one COPY of the rest,
// which is all or nothing by itself; a concurrent writer's key only makes it look up again.
// Returns the indices inserted. `probe` does not apply: the keys are always looked up first.
std::vector<std::size_t> insert_new_rows(pqxx::nontransaction& tx, std::span<const TradeRow> all, DuplicateProbe,
                                         OwedStatements& owed) {
  owed.flush(tx);
  const std::vector<std::size_t> rows = first_of_each_key(all);
  for (int attempt = 1;; ++attempt) {
    const std::vector<std::size_t> fresh = not_stored(tx, all, rows);
    try {
      if (!fresh.empty()) copy_rows(tx, "polymarket_trades", all, fresh);
      return fresh;
    } catch (const pqxx::unique_violation&) {
      if (attempt == 3) throw;
    }
  }
}

// The transaction's fallback: rows (free of in-batch duplicates) COPYed into the staging table and
// moved with ON CONFLICT on the primary key, so rows another writer stored meanwhile are skipped
// and any other violation still fails loudly. Returns the indices inserted, ascending.
std::vector<std::size_t> insert_through_stage(pqxx::dbtransaction& tx, std::span<const TradeRow> all,
                                              std::span<const std::size_t> rows) {
  tx.exec(trade_stage_ddl());
  tx.exec(std::string("TRUNCATE ") + kTradeStageTable);
  copy_rows(tx, kTradeStageTable, all, rows);
  std::unordered_map<std::string, std::size_t> by_key;
  by_key.reserve(rows.size());
  for (std::size_t i : rows) by_key.emplace(trade_key(all[i].condition_id, all[i].trade_id), i);
  std::vector<std::size_t> inserted;
  for (const auto& row : tx.exec(trade_move_stage_sql())) inserted.push_back(by_key.at(trade_key(row[0].c_str(), row[1].c_str())));
  std::sort(inserted.begin(), inserted.end());
  return inserted;
}

// The transaction route (this repository's own transaction or a caller's). Fast path: COPY
// straight into the table, leaving out the keys already stored. Either look them up first, or
// (duplicates rare) COPY everything and look them up only when the primary key refuses a row. A
// savepoint undoes a refused COPY: its SAVEPOINT travels with the COPY (with whatever else `owed`
// holds) and its RELEASE is left owed, so a caller that carries it on spares both round trips. If
// a concurrent writer stores one of the keys after the look-up, the staging path handles the batch
// instead. Returns the indices inserted, ascending.
constexpr const char* kCopySavepoint = "pm_trades_copy";

std::vector<std::size_t> insert_new_rows(pqxx::dbtransaction& tx, std::span<const TradeRow> all, DuplicateProbe probe,
                                         OwedStatements& owed) {
  const std::vector<std::size_t> rows = first_of_each_key(all);
  for (bool probed = probe == DuplicateProbe::First;; probed = true) {
    if (probed) owed.flush(tx);  // the look-up has parameters: it cannot carry them
    const std::vector<std::size_t> fresh = probed ? not_stored(tx, all, rows) : rows;
    try {
      if (!fresh.empty()) {
        owed.add(std::string("SAVEPOINT ") + kCopySavepoint);
        copy_rows(tx, "polymarket_trades", all, fresh, &owed);
        owed.add(std::string("RELEASE SAVEPOINT ") + kCopySavepoint);
      }
      return fresh;
    } catch (const pqxx::unique_violation&) {
      tx.exec(std::string("ROLLBACK TO SAVEPOINT ") + kCopySavepoint + "; RELEASE SAVEPOINT " + kCopySavepoint);
      if (probed) break;
    }
  }
  return insert_through_stage(tx, all, rows);
}

const WatermarkUpsert& trade_watermarks() {
  static const WatermarkUpsert upsert("trade_watermarks", "condition_id", "text");
  return upsert;
}

// Throws TimestampUnitError unless the row's timestamp is NULL or acceptable (require_timestamp:
// of `unit`'s size and at most `newest`, future_bound of now).
void require_time(const TradeRow& row, TimestampUnit unit, std::int64_t newest) {
  if (!row.timestamp || acceptable_timestamp(*row.timestamp, unit, newest)) return;
  require_timestamp(*row.timestamp, unit, newest,
                    "polymarket_trades.timestamp of trade (" + std::string(row.condition_id) + ", " +
                        std::string(row.trade_id) + ")");
}

// Throws RefusedValueError, naming the empty column and the other, unless the row's key
// (condition_id, trade_id) is whole. The primary key allows '': such a row was stored, and a later
// trade of the same condition without a trade_id (or of the same trade_id without a condition_id)
// was taken for its duplicate and dropped.
void require_key(const TradeRow& row) {
  if (row.condition_id.empty())
    throw RefusedValueError("polymarket_trades.condition_id of trade '" + std::string(row.trade_id) +
                            "' is empty; a trade's key (condition_id, trade_id) must be whole");
  if (row.trade_id.empty())
    throw RefusedValueError("polymarket_trades.trade_id of a trade of condition '" + std::string(row.condition_id) +
                            "' is empty; a trade's key (condition_id, trade_id) must be whole");
}

// require_key, finite price and size (detail::require_finite: a NaN price made every candle of its
// bucket NaN) and require_time: what every write of trade rows refuses, before any SQL.
void require_row(const TradeRow& row, TimestampUnit unit, std::int64_t newest) {
  require_key(row);
  detail::require_finite(row.price, "polymarket_trades.price");
  detail::require_finite(row.size, "polymarket_trades.size");
  require_time(row, unit, newest);
}

void require_rows(std::span<const TradeRow> rows, TimestampUnit unit, std::int64_t newest) {
  for (const TradeRow& row : rows) require_row(row, unit, newest);
}

// The arrays of the trade_watermarks upsert for rows[which]: each condition's newest timestamp and,
// with `written_at_ms` (one per row), the updated_at of the first row holding it (formatted only
// for those rows). `empty` when no row has a timestamp. Throws TimestampUnitError (require_time)
// when a newest timestamp is not acceptable in `unit`, std::invalid_argument (a caller's bug, not
// data) when `written_at_ms` is neither empty nor one per row, or an index of `which` is not a row
// (`caller` names the call in the message).
struct WatermarkArrays {
  PgArray conditions, timestamps, updated_at;
  bool empty = true;
};

WatermarkArrays newest_per_condition(std::span<const TradeRow> rows, std::span<const std::size_t> which,
                                     std::span<const std::int64_t> written_at_ms, TimestampUnit unit, std::int64_t bound,
                                     const char* caller) {
  if (!written_at_ms.empty() && written_at_ms.size() != rows.size())
    throw std::invalid_argument(std::string(caller) + ": written_at_ms holds " + std::to_string(written_at_ms.size()) +
                                " arrival times for " + std::to_string(rows.size()) + " rows; it must hold one per row");
  std::unordered_map<ConditionKey, std::size_t, ConditionKeyHash> newest;  // condition -> row
  for (std::size_t i : which) {
    if (i >= rows.size())
      throw std::invalid_argument(std::string(caller) + ": row index " + std::to_string(i) + " of " +
                                  std::to_string(rows.size()) + " rows");
    const TradeRow& t = rows[i];
    if (!t.timestamp) continue;
    auto [it, fresh] = newest.emplace(ConditionKey::of(t), i);
    if (!fresh && *t.timestamp > *rows[it->second].timestamp) it->second = i;
  }
  WatermarkArrays out;
  out.empty = newest.empty();
  for (const auto& [condition, i] : newest) {
    require_time(rows[i], unit, bound);
    out.conditions.add_text(condition.id);
    out.timestamps.add_integer(*rows[i].timestamp);
    if (!written_at_ms.empty()) out.updated_at.add_text(format_iso_ms(written_at_ms[i]));
  }
  return out;
}

// trade_watermarks moved forward (GREATEST) to the newest timestamp per condition among
// rows[which]; rows that would not advance are left alone rather than rewritten. updated_at as in
// newest_per_condition, or now without `written_at_ms`.
std::size_t advance_trade_watermarks(pqxx::transaction_base& tx, std::span<const TradeRow> rows,
                                     std::span<const std::size_t> which, std::span<const std::int64_t> written_at_ms,
                                     TimestampUnit unit, std::int64_t newest) {
  const WatermarkArrays marks = newest_per_condition(rows, which, written_at_ms, unit, newest, "advance_watermarks");
  if (marks.empty) return 0;
  if (written_at_ms.empty()) return trade_watermarks().many(tx, marks.conditions, marks.timestamps);
  return trade_watermarks().many(tx, marks.conditions, marks.timestamps, marks.updated_at);
}


std::vector<TradeRow> rows_of(const std::vector<PolymarketTrade>& trades) {
  std::vector<TradeRow> rows;
  rows.reserve(trades.size());
  for (const auto& t : trades) rows.push_back(trade_row_of(t));
  return rows;
}

}  // namespace

TradeRepository::TradeRepository(Database& db) : target_(db), unit_(db.config().trade_timestamp_unit) {}

TradeRepository::TradeRepository(pqxx::dbtransaction& tx, TimestampUnit unit, FutureBound bound)
    : target_(tx), unit_(unit), bound_(bound), in_tx_(&tx) {}

TradeRepository::TradeRepository(pqxx::nontransaction& tx, TimestampUnit unit, FutureBound bound)
    : target_(tx), unit_(unit), bound_(bound), autocommit_(&tx) {}

template <class Fn>
auto TradeRepository::bulk(Fn&& fn) const {
  if (autocommit_ != nullptr) return fn(*autocommit_);
  if (in_tx_ != nullptr) return fn(*in_tx_);
  return target_.database()->transaction([&](pqxx::work& tx) { return fn(static_cast<pqxx::dbtransaction&>(tx)); },
                                         kKeepSession);
}

WriteResult<PolymarketTrade> TradeRepository::create(const PolymarketTrade& t) const {
  require_row(trade_row_of(t), unit_, newest_accepted());
  return target_.run([&](pqxx::transaction_base& tx) {
    auto inserted = insert_trade(tx, trade_row_of(t));
    if (!inserted.empty()) return WriteResult<PolymarketTrade>{true, from_row<PolymarketTrade>(inserted[0])};
    auto stored = tx.exec_params1(
        "SELECT * FROM polymarket_trades WHERE condition_id = $1 AND trade_id = $2",
        t.condition_id, t.trade_id);
    return WriteResult<PolymarketTrade>{false, from_row<PolymarketTrade>(stored)};
  });
}

std::vector<std::size_t> TradeRepository::insert_rows(std::span<const TradeRow> all, DuplicateProbe probe) const {
  if (all.empty()) return {};
  require_rows(all, unit_, newest_accepted());
  return bulk([&](auto& tx) {
    OwedStatements owed;
    auto inserted = insert_new_rows(tx, all, probe, owed);
    owed.flush(tx);
    return inserted;
  });
}

std::vector<std::size_t> TradeRepository::insert_rows(std::span<const TradeRow> all, DuplicateProbe probe,
                                                      OwedStatements& owed) const {
  if (in_tx_ == nullptr) throw std::logic_error("TradeRepository::insert_rows with owed statements needs a caller's transaction");
  if (all.empty()) return {};
  require_rows(all, unit_, newest_accepted());
  return insert_new_rows(*in_tx_, all, probe, owed);
}

std::string TradeRepository::watermark_statement(std::span<const TradeRow> rows, std::span<const std::size_t> which,
                                                 std::span<const std::int64_t> written_at_ms) const {
  if (in_tx_ == nullptr) throw std::logic_error("TradeRepository::watermark_statement needs a caller's transaction");
  if (written_at_ms.size() != rows.size()) throw std::invalid_argument("watermark_statement: one arrival time per row");
  const WatermarkArrays marks = newest_per_condition(rows, which, written_at_ms, unit_, newest_accepted(), "watermark_statement");
  if (marks.empty) return {};
  return trade_watermarks().many_statement(*in_tx_, marks.conditions, marks.timestamps, marks.updated_at);
}

std::size_t TradeRepository::advance_watermarks(std::span<const TradeRow> rows, std::span<const std::size_t> which,
                                               std::span<const std::int64_t> written_at_ms) const {
  if (which.empty()) return 0;
  return target_.run([&](pqxx::transaction_base& tx) { return advance_trade_watermarks(tx, rows, which, written_at_ms, unit_, newest_accepted()); });
}

std::size_t TradeRepository::create_many(const std::vector<PolymarketTrade>& trades) const {
  const std::vector<TradeRow> rows = rows_of(trades);
  return insert_rows(rows, DuplicateProbe::First).size();
}

TradeBatchResult TradeRepository::ingest_batch(const std::vector<PolymarketTrade>& trades,
                                               DuplicateProbe probe) const {
  if (trades.empty()) return {};
  const std::vector<TradeRow> rows = rows_of(trades);
  require_rows(rows, unit_, newest_accepted());
  return bulk([&](auto& tx) {
    TradeRepository in_tx(tx, unit_, bound_);
    const auto inserted = in_tx.insert_rows(rows, probe);
    return TradeBatchResult{inserted.size(), in_tx.advance_watermarks(rows, inserted)};
  });
}

std::vector<PolymarketTrade> TradeRepository::get_by_condition(const std::string& condition_id,
                                                               int limit) const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_models<PolymarketTrade>(tx.exec_params(
        R"(SELECT * FROM polymarket_trades WHERE condition_id = $1
           ORDER BY "timestamp" DESC NULLS LAST, trade_id LIMIT $2)",
        condition_id, limit));
  });
}

std::vector<PolymarketTrade> TradeRepository::get_recent(const std::string& condition_id,
                                                         std::int64_t max_age_seconds) const {
  return get_recent(condition_id, max_age_seconds, EpochMsClock(now_epoch_ms));
}

std::vector<PolymarketTrade> TradeRepository::get_recent_at(const std::string& condition_id,
                                                            std::int64_t max_age_seconds,
                                                            std::int64_t now_ms) const {
  return get_recent(condition_id, max_age_seconds, EpochMsClock([now_ms] { return now_ms; }));
}

std::vector<PolymarketTrade> TradeRepository::get_recent(const std::string& condition_id,
                                                         std::int64_t max_age_seconds,
                                                         const EpochMsClock& now) const {
  return target_.run([&](pqxx::transaction_base& tx) {
    // Here, not before run(): a body re-run after a lost connection reads the clock again.
    const std::int64_t now_ms = now();
    require_condition_trades_in_unit(tx, condition_id, unit_);  // a wrong unit: never an empty answer
    const std::int64_t cutoff = staleness_cutoff(now_ms, max_age_seconds, unit_);
    return to_models<PolymarketTrade>(tx.exec_params(
        R"(SELECT * FROM polymarket_trades WHERE condition_id = $1 AND "timestamp" >= $2 AND "timestamp" <= $3
           ORDER BY "timestamp" DESC, trade_id)",
        condition_id, cutoff, future_bound(now_ms, unit_)));
  });
}

std::optional<std::int64_t> TradeRepository::get_latest_timestamp(const std::string& condition_id) const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return optional_field<std::int64_t>(
        tx.exec_params1(R"(SELECT max("timestamp") FROM polymarket_trades WHERE condition_id = $1)",
                        condition_id)[0]);
  });
}

std::optional<PolymarketTrade> TradeRepository::get(const std::string& condition_id,
                                                    const std::string& trade_id) const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_optional_model<PolymarketTrade>(tx.exec_params(
        "SELECT * FROM polymarket_trades WHERE condition_id = $1 AND trade_id = $2", condition_id,
        trade_id));
  });
}

bool TradeRepository::exists(const std::string& condition_id, const std::string& trade_id) const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return !tx.exec_params("SELECT 1 FROM polymarket_trades WHERE condition_id = $1 AND trade_id = $2",
                           condition_id, trade_id)
                .empty();
  });
}

bool TradeRepository::remove(const std::string& condition_id, const std::string& trade_id) const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return tx.exec_params("DELETE FROM polymarket_trades WHERE condition_id = $1 AND trade_id = $2",
                          condition_id, trade_id)
               .affected_rows() > 0;
  });
}

std::int64_t TradeRepository::count() const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return tx.exec1("SELECT count(*) FROM polymarket_trades")[0].as<std::int64_t>();
  });
}

std::optional<TradeWatermark> TradeWatermarkRepository::get(const std::string& condition_id) const {
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_optional_model<TradeWatermark>(
        tx.exec_params("SELECT * FROM trade_watermarks WHERE condition_id = $1", condition_id));
  });
}

std::int64_t TradeWatermarkRepository::get_timestamp(const std::string& condition_id) const {
  auto wm = get(condition_id);
  return wm ? wm->last_timestamp : 0;
}

TradeWatermark TradeWatermarkRepository::update(const std::string& condition_id,
                                                std::int64_t timestamp) const {
  require_timestamp(timestamp, unit_, future_bound(now_epoch_ms(), unit_), "trade watermark of " + condition_id + ": last_timestamp");
  return target_.run([&](pqxx::transaction_base& tx) {
    return from_row<TradeWatermark>(trade_watermarks().one(tx, condition_id, timestamp));
  });
}

}  // namespace pm
