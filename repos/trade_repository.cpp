#include "repos/trade_repository.h"

#include "repos/clock.h"
#include "repos/copy_in.h"
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
  ord bigint, condition_id text, trade_id text, token_id text, price real, size real, side text,
  "timestamp" bigint, raw_json text, outcome text, outcome_index integer
) ON COMMIT DELETE ROWS)SQL";

// Rows are inserted in staging order, so the first of equal keys wins; ON CONFLICT names the
// primary key so that any other violation still fails loudly.
const std::string kInsertFromStage = R"SQL(
WITH ins AS (
  INSERT INTO polymarket_trades
    (condition_id, trade_id, token_id, price, size, side, "timestamp", raw_json, outcome, outcome_index)
  SELECT condition_id, trade_id, token_id, price, size, side, "timestamp", raw_json, outcome, outcome_index
  FROM pm_stage_trades ORDER BY ord
  ON CONFLICT (condition_id, trade_id) DO NOTHING
  RETURNING condition_id, "timestamp"))SQL";

const std::string kMoveStage = kInsertFromStage + "\nSELECT count(*) FROM ins";

// The same, plus trade_watermarks moved (GREATEST) to the newest inserted time per condition.
const std::string kMoveStageWithWatermarks = kInsertFromStage + R"SQL(,
wm AS (
  INSERT INTO trade_watermarks (condition_id, last_timestamp, updated_at)
  SELECT condition_id, max("timestamp"), $1 FROM ins
  WHERE "timestamp" IS NOT NULL GROUP BY condition_id ORDER BY condition_id
  ON CONFLICT (condition_id) DO UPDATE
    SET last_timestamp = GREATEST(trade_watermarks.last_timestamp, EXCLUDED.last_timestamp),
        updated_at = EXCLUDED.updated_at
  RETURNING 1)
SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM wm))SQL";

const std::vector<std::string> kStageColumns = {
    "ord", "condition_id", "trade_id", "token_id", "price", "size", "side",
    "timestamp", "raw_json", "outcome", "outcome_index"};

void append_stage_row(std::string& row, std::size_t ord, const PolymarketTrade& t) {
  row.clear();
  append_copy_int(row, static_cast<long long>(ord));
  row += '\t';
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

TradeBatchResult TradeRepository::copy_in(const std::vector<PolymarketTrade>& trades,
                                          bool advance_watermarks) const {
  if (trades.empty()) return {};
  return target_.run([&](pqxx::transaction_base& tx) {
    tx.exec(kCreateStage);
    tx.exec("TRUNCATE pm_stage_trades");
    {
      CopyIn copy(tx, "pm_stage_trades", kStageColumns);
      std::string row;
      row.reserve(1024);
      for (std::size_t i = 0; i < trades.size(); ++i) {
        append_stage_row(row, i, trades[i]);
        copy.write_row(row);
      }
      copy.complete();
    }
    TradeBatchResult result;
    if (advance_watermarks) {
      auto r = tx.exec_params1(kMoveStageWithWatermarks, now_iso());
      result.inserted = r[0].as<std::size_t>();
      result.watermarks_advanced = r[1].as<std::size_t>();
    } else {
      result.inserted = tx.exec1(kMoveStage)[0].as<std::size_t>();
    }
    return result;
  });
}

std::size_t TradeRepository::create_many(const std::vector<PolymarketTrade>& trades) const {
  return copy_in(trades, false).inserted;
}

TradeBatchResult TradeRepository::ingest_batch(const std::vector<PolymarketTrade>& trades) const {
  return copy_in(trades, true);
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
