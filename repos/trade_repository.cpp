#include "repos/trade_repository.h"

#include <map>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "repos/clock.h"
#include "repos/copy_in.h"
#include "repos/pg_array.h"
#include "repos/rows.h"

namespace pm {

namespace {

const char* const kInsertTrade = R"SQL(
INSERT INTO polymarket_trades
  (condition_id, trade_id, token_id, price, size, side, "timestamp", raw_json, outcome, outcome_index)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (condition_id, trade_id) DO NOTHING
RETURNING *)SQL";

const char* const kCreateStage = R"SQL(
CREATE TEMP TABLE IF NOT EXISTS pm_stage_trades (
  condition_id text, trade_id text, token_id text, price real, size real, side text,
  "timestamp" bigint, raw_json text, outcome text, outcome_index integer
) ON COMMIT DELETE ROWS)SQL";

// The fallback bulk path: staged rows (already free of in-batch duplicates) inserted with
// ON CONFLICT on the primary key, so rows another writer stored meanwhile are skipped and any
// other violation still fails loudly. Returns the key of each row inserted.
const char* const kMoveStage = R"SQL(
INSERT INTO polymarket_trades
  (condition_id, trade_id, token_id, price, size, side, "timestamp", raw_json, outcome, outcome_index)
SELECT s.condition_id, s.trade_id, s.token_id, s.price, s.size, s.side, s."timestamp", s.raw_json, s.outcome, s.outcome_index
FROM pm_stage_trades s
ON CONFLICT (condition_id, trade_id) DO NOTHING
RETURNING condition_id, trade_id)SQL";

const std::vector<std::string> kTradeColumns = {
    "condition_id", "trade_id", "token_id", "price", "size", "side",
    "timestamp", "raw_json", "outcome", "outcome_index"};


// One COPY text row of the trade's ten columns (kTradeColumns order), appended to `row`.
void append_trade_fields(std::string& row, const PolymarketTrade& t) {
  append_copy_text(row, t.condition_id);
  row += '\t';
  append_copy_text(row, t.trade_id);
  row += '\t';
  append_copy_optional(row, t.token_id, [](std::string& o, const std::string& v) { append_copy_text(o, v); });
  row += '\t';
  append_copy_optional(row, t.price, append_copy_real);
  row += '\t';
  append_copy_optional(row, t.size, append_copy_real);
  row += '\t';
  append_copy_optional(row, t.side, [](std::string& o, const std::string& v) { append_copy_text(o, v); });
  row += '\t';
  append_copy_optional(row, t.timestamp, [](std::string& o, std::int64_t v) { append_copy_int(o, v); });
  row += '\t';
  append_copy_optional(row, t.raw_json, [](std::string& o, const std::string& v) { append_copy_text(o, v); });
  row += '\t';
  append_copy_optional(row, t.outcome, [](std::string& o, const std::string& v) { append_copy_text(o, v); });
  row += '\t';
  append_copy_optional(row, t.outcome_index, [](std::string& o, std::int32_t v) { append_copy_int(o, v); });
}


std::string trade_key(std::string_view condition_id, std::string_view trade_id) {
  std::string key(condition_id);
  key += '\0';
  key += trade_id;
  return key;
}

std::string trade_key(const PolymarketTrade& t) { return trade_key(t.condition_id, t.trade_id); }

// The first trade of each (condition_id, trade_id), in input order.
std::vector<const PolymarketTrade*> first_of_each_key(const std::vector<PolymarketTrade>& trades) {
  std::unordered_set<std::string> seen;
  seen.reserve(trades.size() * 2);
  std::vector<const PolymarketTrade*> out;
  out.reserve(trades.size());
  for (const auto& t : trades)
    if (seen.insert(trade_key(t)).second) out.push_back(&t);
  return out;
}

// A PostgreSQL text[] literal of one field of each row.
template <class Get>
std::string text_array(const std::vector<const PolymarketTrade*>& rows, Get&& get) {
  PgArray array;
  for (const auto* row : rows) array.add_text(std::string_view(get(*row)));
  return array.str();
}

// Keys among `rows` that polymarket_trades holds already.
std::unordered_set<std::string> stored_keys(pqxx::transaction_base& tx, const std::vector<const PolymarketTrade*>& rows) {
  const auto result = tx.exec_params(
      R"(SELECT t.condition_id, t.trade_id FROM polymarket_trades t
         JOIN unnest($1::text[], $2::text[]) AS k(condition_id, trade_id) USING (condition_id, trade_id))",
      text_array(rows, [](const PolymarketTrade& t) -> const std::string& { return t.condition_id; }),
      text_array(rows, [](const PolymarketTrade& t) -> const std::string& { return t.trade_id; }));
  std::unordered_set<std::string> keys;
  for (const auto& r : result) keys.insert(trade_key(r[0].c_str(), r[1].c_str()));
  return keys;
}

// COPY of the rows' ten trade columns into `table` (polymarket_trades or the staging table).
void copy_rows(pqxx::transaction_base& tx, const std::string& table, const std::vector<const PolymarketTrade*>& rows) {
  CopyIn copy(tx, table, kTradeColumns);
  std::string row;
  row.reserve(1024);
  for (const auto* t : rows) {
    row.clear();
    append_trade_fields(row, *t);
    copy.write_row(row);
  }
  copy.complete();
}

// trade_watermarks moved forward (GREATEST) to the newest timestamp per condition among `rows`;
// rows that would not advance are left alone rather than rewritten.
std::size_t advance_trade_watermarks(pqxx::transaction_base& tx, const std::vector<const PolymarketTrade*>& rows) {
  std::map<std::string_view, std::int64_t> newest;
  for (const auto* t : rows) {
    if (!t->timestamp) continue;
    auto [it, fresh] = newest.emplace(t->condition_id, *t->timestamp);
    if (!fresh) it->second = std::max(it->second, *t->timestamp);
  }
  if (newest.empty()) return 0;
  PgArray conditions, timestamps;
  for (const auto& [cid, ts] : newest) {
    conditions.add_text(cid);
    timestamps.add_integer(ts);
  }
  return tx.exec_params(
               R"(INSERT INTO trade_watermarks (condition_id, last_timestamp, updated_at)
                  SELECT cid, ts, $3 FROM unnest($1::text[], $2::bigint[]) AS w(cid, ts) ORDER BY cid
                  ON CONFLICT (condition_id) DO UPDATE
                    SET last_timestamp = GREATEST(trade_watermarks.last_timestamp, EXCLUDED.last_timestamp),
                        updated_at = EXCLUDED.updated_at
                    WHERE trade_watermarks.last_timestamp < EXCLUDED.last_timestamp)",
               conditions.str(), timestamps.str(), now_iso())
      .affected_rows();
}

}  // namespace

TradeRepository::TradeRepository(Database& db) : target_(db), unit_(db.config().trade_timestamp_unit) {}

TradeRepository::TradeRepository(pqxx::transaction_base& tx, TimestampUnit unit)
    : target_(tx), unit_(unit) {}

WriteResult<PolymarketTrade> TradeRepository::create(const PolymarketTrade& t) const {
  return target_.run([&](pqxx::transaction_base& tx) {
    auto inserted = tx.exec_params(kInsertTrade, t.condition_id, t.trade_id, t.token_id, t.price,
                                   t.size, t.side, t.timestamp, t.raw_json, t.outcome, t.outcome_index);
    if (!inserted.empty()) return WriteResult<PolymarketTrade>{true, from_row<PolymarketTrade>(inserted[0])};
    auto stored = tx.exec_params1(
        "SELECT * FROM polymarket_trades WHERE condition_id = $1 AND trade_id = $2",
        t.condition_id, t.trade_id);
    return WriteResult<PolymarketTrade>{false, from_row<PolymarketTrade>(stored)};
  });
}

std::vector<const PolymarketTrade*> TradeRepository::insert_new(const std::vector<PolymarketTrade>& trades,
                                                                 DuplicateProbe probe) const {
  if (trades.empty()) return {};
  return target_.run([&](pqxx::transaction_base& tx) -> std::vector<const PolymarketTrade*> {
    const std::vector<const PolymarketTrade*> rows = first_of_each_key(trades);
    // Fast path: COPY straight into the table, leaving out the keys already stored. Either look
    // them up first, or (duplicates rare) COPY everything and look them up only when the primary
    // key refuses a row. A savepoint undoes a refused COPY. If a concurrent writer stores one of
    // the keys after the look-up, the staging path below handles the batch instead.
    if (auto* db_tx = dynamic_cast<pqxx::dbtransaction*>(&tx)) {
      for (bool probed = probe == DuplicateProbe::First;; probed = true) {
        std::vector<const PolymarketTrade*> fresh;
        if (probed) {
          const auto stored = stored_keys(tx, rows);
          fresh.reserve(rows.size());
          for (const auto* t : rows)
            if (stored.empty() || !stored.count(trade_key(*t))) fresh.push_back(t);
        } else {
          fresh = rows;
        }
        try {
          if (!fresh.empty()) {
            pqxx::subtransaction savepoint(*db_tx, "pm_trades_copy");
            copy_rows(savepoint, "polymarket_trades", fresh);
            savepoint.commit();
          }
          return fresh;
        } catch (const pqxx::unique_violation&) {
          if (probed) break;
        }
      }
    }
    tx.exec(kCreateStage);
    tx.exec("TRUNCATE pm_stage_trades");
    copy_rows(tx, "pm_stage_trades", rows);
    std::unordered_map<std::string, const PolymarketTrade*> by_key;
    by_key.reserve(rows.size());
    for (const auto* t : rows) by_key.emplace(trade_key(*t), t);
    std::vector<const PolymarketTrade*> inserted;
    for (const auto& row : tx.exec(kMoveStage)) inserted.push_back(by_key.at(trade_key(row[0].c_str(), row[1].c_str())));
    return inserted;
  });
}

std::size_t TradeRepository::advance_watermarks(const std::vector<const PolymarketTrade*>& inserted) const {
  if (inserted.empty()) return 0;
  return target_.run([&](pqxx::transaction_base& tx) { return advance_trade_watermarks(tx, inserted); });
}

std::size_t TradeRepository::create_many(const std::vector<PolymarketTrade>& trades) const {
  return insert_new(trades, DuplicateProbe::First).size();
}

TradeBatchResult TradeRepository::ingest_batch(const std::vector<PolymarketTrade>& trades,
                                               DuplicateProbe probe) const {
  if (trades.empty()) return {};
  return target_.run([&](pqxx::transaction_base& tx) {
    TradeRepository in_tx(tx, unit_);
    const auto inserted = in_tx.insert_new(trades, probe);
    return TradeBatchResult{inserted.size(), in_tx.advance_watermarks(inserted)};
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
  return get_recent_at(condition_id, max_age_seconds, now_epoch_ms());
}

std::vector<PolymarketTrade> TradeRepository::get_recent_at(const std::string& condition_id,
                                                            std::int64_t max_age_seconds,
                                                            std::int64_t now_ms) const {
  const std::int64_t cutoff = staleness_cutoff(now_ms, max_age_seconds, unit_);
  return target_.run([&](pqxx::transaction_base& tx) {
    return to_models<PolymarketTrade>(tx.exec_params(
        R"(SELECT * FROM polymarket_trades WHERE condition_id = $1 AND "timestamp" >= $2
           ORDER BY "timestamp" DESC, trade_id)",
        condition_id, cutoff));
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
  return target_.run([&](pqxx::transaction_base& tx) {
    return from_row<TradeWatermark>(tx.exec_params1(
        R"(INSERT INTO trade_watermarks (condition_id, last_timestamp, updated_at)
           VALUES ($1, $2, $3)
           ON CONFLICT (condition_id) DO UPDATE
             SET last_timestamp = GREATEST(trade_watermarks.last_timestamp, EXCLUDED.last_timestamp),
                 updated_at = EXCLUDED.updated_at
           RETURNING *)",
        condition_id, timestamp, now_iso()));
  });
}

}  // namespace pm
